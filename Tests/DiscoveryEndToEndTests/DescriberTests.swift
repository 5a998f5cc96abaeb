import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import HallwatchProcess
import HallwatchSimONVIF
import Logging
import Testing

@testable import HallwatchCapture
@testable import HallwatchDiscovery

/// The HTTP half against the simulated device in this process, on 127.0.0.1 only (no multicast).
@Suite("ONVIF device conversation against the simulated device (127.0.0.1)", .serialized)
struct DescriberTests {
    static let user = "hallwatch"
    let password = randomPassword()

    func simulator(
        auth: SimAuthMode = .both, offset: Int64 = 0, quirks: Set<SimQuirk> = [], advertise: String? = nil,
        sub: SimulatedDevice.SubProfile? = nil
    ) async throws -> ONVIFSimulator {
        var lobby = SimulatedDevice(
            index: 0, seed: "test", mount: "lobby", encoding: "H264", width: 1280, height: 720, fps: 25)
        lobby.sub = sub
        let devices = [
            lobby,
            SimulatedDevice(
                index: 1, seed: "test", mount: "hallway", encoding: "H265", width: 640, height: 272, fps: 25),
        ]
        var configuration = ONVIFSimConfiguration(
            address: "127.0.0.1", httpPort: 0, rtspPort: 8554, devices: devices,
            credentials: ONVIFCredentials(username: Self.user, password: password), authMode: auth,
            clockOffsetSeconds: offset, quirks: quirks, discovery: false)
        configuration.advertisedHost = advertise
        let sim = ONVIFSimulator(configuration: configuration, logger: Logger(label: "sim"))
        try await sim.start()
        return sim
    }

    func describe(_ sim: ONVIFSimulator, index: Int = 0, password: String?) async -> DeviceDescription {
        let http = BoundedHTTPClient()
        defer { http.shutdown() }
        let d = DeviceDescriber(
            http: http, credentials: password.map { ONVIFCredentials(username: Self.user, password: $0) },
            logger: Logger(label: "test"))
        return await d.describe(xAddrs: [sim.deviceXAddr(index)], fallbackHost: nil)
    }

    @Test func usernameTokenWithOneHourOffsetDescribesEverything() async throws {
        let sim = try await simulator(offset: 3600)
        let d = await describe(sim, password: password)
        await sim.stop()
        #expect(d.error == nil)
        #expect(d.auth == .usernameToken)
        #expect(abs(d.clockOffset.micros - 3_600_000_000) < 2_000_000)
        #expect(d.information?.manufacturer == "Hallwatch")
        #expect(d.information?.serialNumber?.hasPrefix("SIM-0-") == true)
        #expect(d.profiles.map(\.token) == ["snapshot", "main"])
        #expect(d.streams.map(\.role) == ["main"])
        #expect(d.streams.first?.profile.token == "main")
        #expect(d.streams.first?.uri?.uri == "rtsp://127.0.0.1:8554/lobby")
    }

    /// The simcam's sub-stream mount is the device's second profile: discovery picks it as the sub stream (by
    /// resolution, not by name), with its own mount's URI.
    @Test func aSubProfileIsDescribedAsTheSubStream() async throws {
        let sim = try await simulator(sub: .init(mount: "lobby-sub", encoding: "H264", width: 640, height: 360))
        let d = await describe(sim, password: password)
        await sim.stop()
        #expect(d.error == nil)
        #expect(d.profiles.map(\.token) == ["snapshot", "main", "sub"])
        #expect(d.streams.map(\.role) == ["main", "sub"])
        #expect(d.streams.map { $0.uri?.uri } == ["rtsp://127.0.0.1:8554/lobby", "rtsp://127.0.0.1:8554/lobby-sub"])
        #expect(d.streams.last?.profile.videoEncoder?.resolution?.pixels == 640 * 360)
    }

    @Test func digestOnlyDeviceIsAuthenticatedWithDigest() async throws {
        let sim = try await simulator(auth: .digest)
        let d = await describe(sim, index: 1, password: password)
        await sim.stop()
        #expect(d.error == nil)
        #expect(d.auth == .digest)
        #expect(d.streams.first?.profile.videoEncoder?.encoding == .h265)
    }

    @Test func wrongPasswordIsAnAuthFailureNotACrash() async throws {
        for mode in SimAuthMode.allCases {
            let sim = try await simulator(auth: mode)
            let d = await describe(sim, password: "not-" + password)
            await sim.stop()
            #expect(d.auth == .failed, "mode \(mode)")
            #expect(d.error?.code == .notAuthorized, "mode \(mode)")
            #expect(d.information == nil)
        }
    }

    @Test func noCredentialsIsReportedAsMissing() async throws {
        let sim = try await simulator()
        let d = await describe(sim, password: nil)
        await sim.stop()
        #expect(d.auth == .credentialsMissing)
        #expect(d.error?.code == .notAuthorized)
    }

    @Test func strictDeviceAnswersTheClockToCredentials() async throws {
        let sim = try await simulator(offset: -7200, quirks: [.strictAuth])
        let d = await describe(sim, password: password)
        await sim.stop()
        #expect(d.error == nil)
        #expect(d.auth == .usernameToken)
        #expect(abs(d.clockOffset.micros + 7_200_000_000) < 2_000_000)
    }

    @Test func linkLocalServiceAndStreamHostsAreRewritten() async throws {
        let sim = try await simulator(quirks: [.linkLocalXAddrFirst])
        let d = await describe(sim, password: password)
        await sim.stop()
        #expect(d.error == nil)
        #expect(d.streams.first?.uri?.uri == "rtsp://127.0.0.1:8554/lobby")
    }

    @Test func oneTimeStreamURIsAreAskedAgainBeforeEachConnection() async throws {
        let sim = try await simulator(quirks: [.invalidAfterConnect])
        let d = await describe(sim, password: password)
        #expect(d.streams.first?.uri?.invalidAfterConnect == true)
        var device = DiscoveredDevice(
            id: "dev-1", endpoint: "urn:uuid:x", presence: .present, addresses: [], xAddrs: [],
            auth: "usernameToken", firstSeen: UTCMicros(0), lastSeen: UTCMicros(0))
        device.deviceXAddr = d.deviceXAddr
        device.mediaXAddr = d.mediaXAddr
        device.streams = [
            .init(
                role: "main", profileToken: "main", videoSourceToken: "vs0", uri: d.streams.first?.uri?.uri,
                invalidAfterConnect: true)
        ]
        var camera = CameraConfig(id: CameraID("lobby")!, source: "rtsp://127.0.0.1:8554/lobby")
        camera.username = Self.user
        camera.onvifEndpoint = "urn:uuid:x"
        let bus = BusClient(
            clientID: "unused", socketPath: "/nonexistent/bus.sock", will: nil, logger: Logger(label: "test"))
        let fresh = try #require(
            FreshStreamURI(camera: camera, bus: bus, topics: BusTopics(box: "t"), logger: Logger(label: "test")))
        fresh.latest.device.withLock { $0 = device }
        let pw = password
        let (first, second) = try await withCheckedThrowingContinuation {
            (c: CheckedContinuation<(String, String), any Error>) in
            Thread {
                c.resume(
                    with: Result {
                        (try fresh.uriForNextConnection(password: pw), try fresh.uriForNextConnection(password: pw))
                    })
            }.start()
        }
        await sim.stop()
        #expect(first.hasPrefix("rtsp://127.0.0.1:8554/lobby?onetime="))
        #expect(second.hasPrefix("rtsp://127.0.0.1:8554/lobby?onetime="))
        #expect(first != second)
    }

    @Test func unreachableAdvertisedHostsAreRewritten() async throws {
        // 127.0.0.2 is loopback too, but nothing listens there: the media XAddr and the stream URI name it.
        let sim = try await simulator(advertise: "127.0.0.2")
        let d = await describe(sim, password: password)
        await sim.stop()
        #expect(d.error == nil)
        #expect(d.mediaXAddr?.hasPrefix("http://127.0.0.1:") == true)
        #expect(d.streams.first?.uri?.uri == "rtsp://127.0.0.1:8554/lobby")
    }

    @Test func oversizeRepliesAreRefused() async throws {
        let sim = try await simulator()
        let http = BoundedHTTPClient(maxBodyBytes: 300)
        let d = await DeviceDescriber(
            http: http, credentials: ONVIFCredentials(username: Self.user, password: password),
            logger: Logger(label: "test")
        ).describe(xAddrs: [sim.deviceXAddr(0)], fallbackHost: nil)
        http.shutdown()
        await sim.stop()
        #expect(d.error?.code == .tooLarge)
    }

    @Test func unreachableDeviceIsTyped() async throws {
        let http = BoundedHTTPClient()
        defer { http.shutdown() }
        let d = await DeviceDescriber(http: http, credentials: nil, timeout: .seconds(2), logger: Logger(label: "test"))
            .describe(xAddrs: ["http://127.0.0.1:9/onvif/device_service"], fallbackHost: nil)
        #expect(d.error?.code == .unreachable)
    }

    @Test func serverSideChecksAcceptTheProgrammersGuideVector() throws {
        // ONVIF Application Programmer's Guide: nonce LKqI6G/AikKCQrN0zqZFlg==, 2010-09-16T07:50:45Z, userpassword.
        let header = try XMLReader.parse(
            Data(
                """
                <s:Header xmlns:s="\(NS.soap12)"><wsse:Security xmlns:wsse="\(NS.wsse)" xmlns:wsu="\(NS.wsu)"><wsse:UsernameToken>\
                <wsse:Username>user</wsse:Username><wsse:Password>tuOSpGlFlIXsozq4HFNeeGeFLEI=</wsse:Password>\
                <wsse:Nonce>LKqI6G/AikKCQrN0zqZFlg==</wsse:Nonce><wsu:Created>2010-09-16T07:50:45Z</wsu:Created>\
                </wsse:UsernameToken></wsse:Security></s:Header>
                """.utf8))
        let at = try #require(ISO8601.parse("2010-09-16T07:50:47Z"))
        #expect(
            ServerAuth.checkUsernameToken(header: header, username: "user", password: "userpassword", deviceNow: at)
                == nil)
        #expect(
            ServerAuth.checkUsernameToken(header: header, username: "user", password: "wrong", deviceNow: at)
                == .wrongCredentials)
        #expect(
            ServerAuth.checkUsernameToken(
                header: header, username: "user", password: "userpassword",
                deviceNow: at.adding(micros: 3_600_000_000)) == .timeCheck)
    }

    @Test(.enabled(if: Repo.interopRuns, "needs .venv-test (make test-deps)"))
    func onvifZeepAsyncReadsTheSimulatedDevice() async throws {
        guard let python = Repo.interopPython() else { return }
        let sim = try await simulator(offset: 3600)
        let dir = try TempDir("zeep")
        let pw = try dir.write("pw", password + "\n")
        let child = try Child(
            "onvif-zeep-async", python,
            [
                Repo.root.appendingPathComponent("Tests/Interop/onvif_read.py").path,
                "127.0.0.1", "\(sim.httpPort)", Self.user, pw,
            ], log: dir.path + "/py.log")
        let line = try await child.waitForLine("{", seconds: 60)
        await child.stop()
        await sim.stop()
        let out = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(out["manufacturer"] as? String == "Hallwatch")
        #expect(out["model"] as? String == "SimCam")
        #expect((out["serial"] as? String)?.hasPrefix("SIM-0-") == true)
        #expect(abs((out["dt_diff_seconds"] as? Double ?? 0) - 3600) < 3)
        let profiles = out["profiles"] as? [[String: Any]] ?? []
        #expect(profiles.compactMap { $0["token"] as? String } == ["snapshot", "main"])
        #expect(profiles.compactMap { $0["uri"] as? String }.allSatisfy { $0 == "rtsp://127.0.0.1:8554/lobby" })
        #expect(profiles.last?["width"] as? Int == 1280)
    }
}

@Suite("Adoption and the discovery configuration")
struct AdoptionTests {
    static let base = """
        box: t
        # the cameras
        cameras:
          - id: lobby
            source: rtsp://10.0.0.1/x
            # trailing comment of lobby

        # a comment before discovery
        discovery:
          interfaces: [eth1]
          username: hallwatch
          passwordFile: /etc/hallwatch/secrets/onvif.password
        """

    func device() -> DiscoveredDevice {
        var d = DiscoveredDevice(
            id: "dev-0a1b2c3d", endpoint: "urn:uuid:1234", presence: .present, addresses: ["10.0.0.2"],
            xAddrs: [], auth: "digest", firstSeen: UTCMicros(0), lastSeen: UTCMicros(0))
        d.name = "Gym \"East\""
        d.streams = [
            .init(
                role: "main", profileToken: "main", videoSourceToken: "vs0", uri: "rtsp://10.0.0.2:554/gym",
                invalidAfterConnect: false)
        ]
        return d
    }

    @Test func adoptAppendsToTheCameraListKeepingComments() throws {
        let dir = try TempDir("adopt")
        let path = try dir.write("hallwatch.yaml", Self.base, mode: 0o640)
        let cam = try CameraAdoption.adopt(device(), configPath: path)
        #expect(cam.id.rawValue == "dev-0a1b2c3d")  // the name is not a valid id
        let cfg = try ConfigLoader.load(path: path)
        #expect(cfg.cameras.map(\.id.rawValue) == ["lobby", "dev-0a1b2c3d"])
        #expect(cfg.cameras[1].name == "Gym \"East\"")
        #expect(cfg.cameras[1].source == "rtsp://10.0.0.2:554/gym")
        #expect(cfg.cameras[1].username == "hallwatch")
        #expect(cfg.cameras[1].passwordFile == "/etc/hallwatch/secrets/onvif.password")
        #expect(cfg.cameras[1].onvifEndpoint == "urn:uuid:1234")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains("# a comment before discovery\ndiscovery:"))
        #expect(text.contains("# trailing comment of lobby"))
        let again = #expect(throws: CameraAdoption.Failure.self) {
            try CameraAdoption.adopt(device(), configPath: path, as: CameraID("gym"))
        }
        #expect(again?.code == "adopt.already")
        // A device with a sub stream: both are written, the sub one as `subStream.source`.
        var withSub = device()
        withSub.endpoint = "urn:uuid:9999"
        withSub.streams.append(
            .init(
                role: "sub", profileToken: "sub", videoSourceToken: "vs0", uri: "rtsp://10.0.0.2:554/gym-sub",
                invalidAfterConnect: false))
        let sub = try CameraAdoption.adopt(withSub, configPath: path, as: CameraID("gym"))
        let reloaded = try ConfigLoader.load(path: path)
        #expect(sub.subStream?.source == "rtsp://10.0.0.2:554/gym-sub")
        #expect(reloaded.camera(CameraID("gym")!)?.subStream == SubStreamConfig(source: "rtsp://10.0.0.2:554/gym-sub"))
        #expect(reloaded.streams.map(\.id.rawValue) == ["lobby", "dev-0a1b2c3d", "gym", "gym/sub"])
        var attrs = stat()
        stat(path, &attrs)
        #expect(attrs.st_mode & 0o777 == 0o640)
    }

    /// A configuration that is a signed release (the path resolves into the provisioner's `releases/<id>/`) is
    /// never written, by `hallwatchctl camera adopt` or by `adopt: auto`: refused with `adopt.signedRelease`,
    /// the release byte for byte unchanged, and the proposed entry for the next bundle loads when appended.
    @Test func aSignedReleaseIsNeverWrittenTheEntryIsProposed() throws {
        let dir = try TempDir("adopt-release")
        let release = "v7-0123456789abcdef"
        let releaseDir = dir.path + "/store/releases/" + release
        try FileManager.default.createDirectory(atPath: releaseDir, withIntermediateDirectories: true)
        try Self.base.write(toFile: releaseDir + "/hallwatch.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(
            atPath: dir.path + "/store/current", withDestinationPath: "releases/" + release)
        let path = dir.path + "/hallwatch.yaml"  // /etc/hallwatch/hallwatch.yaml → current/hallwatch.yaml
        try FileManager.default.createSymbolicLink(
            atPath: path, withDestinationPath: dir.path + "/store/current/hallwatch.yaml")
        let refused = #expect(throws: CameraAdoption.Failure.self) {
            try CameraAdoption.adopt(device(), configPath: path)
        }
        #expect(refused?.code == "adopt.signedRelease")
        #expect(refused?.message.contains(release) == true)
        #expect(try String(contentsOfFile: releaseDir + "/hallwatch.yaml", encoding: .utf8) == Self.base)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: path).hasSuffix("current/hallwatch.yaml"))
        let proposed = try CameraAdoption.propose(device(), configPath: path)
        #expect(proposed.camera.id.rawValue == "dev-0a1b2c3d")
        #expect(
            proposed.yaml
                == """
                  - id: dev-0a1b2c3d
                    name: "Gym \\"East\\""
                    source: "rtsp://10.0.0.2:554/gym"
                    username: "hallwatch"
                    passwordFile: "/etc/hallwatch/secrets/onvif.password"
                    onvifEndpoint: "urn:uuid:1234"

                """)
        let next = try ConfigLoader.parse("box: t\ncameras:\n" + proposed.yaml, file: "next.yaml")
        #expect(next.cameras.first?.source == "rtsp://10.0.0.2:554/gym")
        // Its bus message carries the proposal (the field is optional: older readers ignore it).
        var d = device()
        d.proposal = proposed.yaml
        let decoded = try JSONDecoder().decode(DiscoveredDevice.self, from: JSONEncoder().encode(d))
        #expect(decoded.proposal == proposed.yaml)
    }

    @Test func adoptIntoAnEmptyListAndRefusals() throws {
        let dir = try TempDir("adopt")
        let path = try dir.write("hallwatch.yaml", "box: t\ncameras: []\n")
        var d = device()
        d.name = "gym"
        try CameraAdoption.adopt(d, configPath: path)
        #expect(try ConfigLoader.load(path: path).cameras.map(\.id.rawValue) == ["gym"])
        var other = device()
        other.endpoint = "urn:uuid:5678"
        other.name = "gym"
        let taken = #expect(throws: CameraAdoption.Failure.self) {
            try CameraAdoption.adopt(other, configPath: path, as: CameraID("gym"))
        }
        #expect(taken?.code == "adopt.idTaken")
        other.streams = []
        let none = #expect(throws: CameraAdoption.Failure.self) { try CameraAdoption.adopt(other, configPath: path) }
        #expect(none?.code == "adopt.noStream")
    }

    @Test func discoverySectionIsSchemaChecked() throws {
        let e = #expect(throws: ConfigError.self) {
            try ConfigLoader.parse(
                """
                box: t
                discovery:
                  interfaces: []
                  period: 1s
                  adopt: sometimes
                  username: u
                """, file: "d.yaml")
        }
        let text = e?.diagnostics.map(\.description) ?? []
        #expect(text.contains { $0.hasPrefix("d.yaml:4: discovery.period: expected 5s to 3600s") }, "\(text)")
        #expect(text.contains { $0.hasPrefix("d.yaml:5: discovery.adopt: expected one of manual, auto") }, "\(text)")
        let ok = try ConfigLoader.parse("box: t\ndiscovery:\n  interfaces: [lo]\n  adopt: auto\n")
        #expect(ok.discovery?.adopt == .auto)
        #expect(ok.discovery?.period == .seconds(60))
        #expect(ok.discovery?.missedProbes == 3)
        #expect(ok.discovery?.eventDevices == [])
    }

    @Test func eventDevicesAreChecked() throws {
        let e = #expect(throws: ConfigError.self) {
            try ConfigLoader.parse(
                """
                box: t
                discovery:
                  interfaces: [lo]
                  eventDevices:
                    - { id: door1, xaddr: "http://10.0.0.5/onvif/device_service" }
                    - { id: door1, xaddr: "ftp://10.0.0.6/x" }
                """, file: "d.yaml")
        }
        let text = e?.diagnostics.map(\.description) ?? []
        #expect(text.contains { $0.contains("duplicate id 'door1'") }, "\(text)")
        #expect(text.contains { $0.contains("expected an http(s) URL") }, "\(text)")
        // Without an id: a schema error naming the key.
        let missing = #expect(throws: ConfigError.self) {
            try ConfigLoader.parse(
                "box: t\ndiscovery:\n  interfaces: [lo]\n  eventDevices:\n    - { xaddr: \"http://10.0.0.7/\" }\n",
                file: "d.yaml")
        }
        let missingText = missing?.diagnostics.map(\.description) ?? []
        #expect(missingText.contains { $0.contains("eventDevices") && $0.contains("id") }, "\(missingText)")
        let ok = try ConfigLoader.parse(
            "box: t\ndiscovery:\n  interfaces: [lo]\n  eventDevices:\n    - { id: door1, xaddr: \"http://10.0.0.5/onvif/device_service\" }\n"
        )
        #expect(
            ok.discovery?.eventDevices
                == [DiscoveryConfig.EventDevice(id: "door1", xaddr: "http://10.0.0.5/onvif/device_service")])
    }

    /// A door controller rarely shares the cameras' ONVIF account: an event device may name its own.
    @Test func anEventDeviceMayHaveItsOwnCredentials() throws {
        let e = #expect(throws: ConfigError.self) {
            try ConfigLoader.parse(
                """
                box: t
                discovery:
                  interfaces: [lo]
                  eventDevices:
                    - { id: door1, xaddr: "http://10.0.0.5/", username: doors }
                    - { id: door2, xaddr: "http://10.0.0.6/", username: doors, passwordFile: doors.pw }
                """, file: "d.yaml")
        }
        let text = e?.diagnostics.map(\.description) ?? []
        #expect(
            text.contains {
                $0.hasPrefix("d.yaml:5: discovery.eventDevices.[0].username: username and passwordFile go together")
            },
            "\(text)")
        #expect(text.contains { $0.contains("eventDevices") && $0.contains("absolute") }, "\(text)")

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hw-evcred-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "door-secret\nignored\n".write(toFile: dir + "/doors.pw", atomically: true, encoding: .utf8)
        let config = try ConfigLoader.parse(
            """
            box: t
            discovery:
              interfaces: [lo]
              username: cams
              passwordFile: \(dir)/cams.pw
              eventDevices:
                - { id: door1, xaddr: "http://10.0.0.5/", username: doors, passwordFile: \(dir)/doors.pw }
                - { id: door2, xaddr: "http://10.0.0.6/" }
                - { id: door3, xaddr: "http://10.0.0.7/", username: doors, passwordFile: \(dir)/missing.pw }
            """)
        let devices = try #require(config.discovery?.eventDevices)
        let shared = ONVIFCredentials(username: "cams", password: "cam-secret")
        let own = DiscoveryService.eventCredentials(devices[0], shared: shared)
        #expect(own.credentials == ONVIFCredentials(username: "doors", password: "door-secret") && own.error == nil)
        let inherited = DiscoveryService.eventCredentials(devices[1], shared: shared)
        #expect(inherited.credentials == shared && inherited.error == nil)
        // Its own file unreadable: no credentials at all (never the cameras' account), and a typed error.
        let unreadable = DiscoveryService.eventCredentials(devices[2], shared: shared)
        #expect(unreadable.credentials == nil)
        #expect(unreadable.error?.code == "discovery.credentials")
        #expect(unreadable.error?.message.contains("door3") == true)
        // A changed door password restarts discovery (ReloadPolicy.discovery reads it as a secret file).
        #expect(ReloadPolicy.discovery.secretFiles(config).contains(dir + "/doors.pw"))
    }
}
