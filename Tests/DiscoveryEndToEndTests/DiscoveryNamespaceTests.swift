import Foundation
import Glibc
import HallwatchCore
import Testing

/// Real processes in network namespaces the test makes: simcams as ONVIF devices in two camera namespaces,
/// the agent (`hallwatch-discovery`) in a third with one link to each (no default route anywhere), a
/// mosquitto on a Unix socket, and the independent PyPI peers. No packet leaves the namespaces.
@Suite(
    "ONVIF discovery end to end (namespaces)", .serialized,
    .enabled(if: Repo.canMakeNamespaces, "needs root and iproute2 to create network namespaces; skipped"),
    .enabled(if: Repo.clipsPresent, "needs the clips in .media (make clips); skipped"))
struct DiscoveryNamespaceTests {
    @Test func agentFindsDescribesAndLosesSimcamsOnTwoInterfaces() async throws {
        let net = TestNetwork()
        try net.create()
        defer { net.remove() }
        try await Children.scope { kids in try await run(net, kids) }
    }

    func run(_ net: TestNetwork, _ kids: Children) async throws {
        let dir = try TempDir("disc")
        let good = try dir.write("onvif.password", randomPassword() + "\n")
        let other = try dir.write("other.password", randomPassword() + "\n")
        let simcam = try Repo.executable("hallwatch-simcam")
        func sim(_ name: String, ns: String, address: String, mounts: [String], _ extra: [String]) throws -> Child {
            kids.add(
                try Child(
                    name, simcam,
                    ["--address", address, "--port", "0", "--onvif", "--onvif-user", "hallwatch"]
                        + mounts.flatMap { ["--mount", $0] } + extra, log: dir.path + "/\(name).log", namespace: ns))
        }
        // Link A: two devices that accept the box's password; one whose password differs.
        let simA = try sim(
            "simA", ns: net.camA, address: TestNetwork.cameraA,
            mounts: ["lobby=\(Repo.clip("h264-aac.mp4"))", "hallway=\(Repo.clip("hevc.mp4"))"],
            ["--onvif-password-file", good])
        let simWrong = try sim(
            "simWrong", ns: net.camA, address: TestNetwork.cameraA, mounts: ["office=\(Repo.clip("h264-aac.mp4"))"],
            ["--onvif-password-file", other])
        // Link B (the agent's second interface): Digest only, clock 1 h ahead, and three discovery quirks.
        let simB = try sim(
            "simB", ns: net.camB, address: TestNetwork.cameraB, mounts: ["gym=\(Repo.clip("hevc.mp4"))"],
            [
                "--onvif-password-file", good, "--onvif-auth", "digest", "--clock-offset", "3600",
                "--quirk", "link-local-xaddr-first", "--quirk", "no-scopes", "--quirk", "bad-relates-to",
            ])
        let rtspA = try rtspPort(await simA.waitForLine("simcam ready"))
        let rtspB = try rtspPort(await simB.waitForLine("simcam ready"))
        _ = try await simWrong.waitForLine("simcam onvif")
        _ = try await simA.waitForLine("simcam onvif")
        _ = try await simB.waitForLine("simcam onvif")

        let (broker, socket) = try await startBroker(dir)
        kids.add(broker)
        let config = try dir.write(
            "hallwatch.yaml",
            """
            box: nstest
            bus:
              socket: \(socket)
            discovery:
              interfaces: [hwva\(net.tag), \(TestNetwork.agentOnB)]
              period: 5s
              listen: 1s
              missedProbes: 2
              username: hallwatch
              passwordFile: \(good)
            """, mode: 0o644)
        let watch = try await DiscoveredWatch(socket: socket, box: "nstest")
        let agent = kids.add(
            try Child(
                "agent", try Repo.executable("hallwatch-discovery"), ["--config", config],
                log: dir.path + "/agent.log", namespace: net.agent))

        let devices = try await watch.wait(seconds: 30, "four described devices") { ds in
            ds.filter { $0.presence == .present && $0.auth != "unknown" }.count >= 4
        }
        let byMount = Dictionary(
            devices.compactMap { d in d.mainStream?.uri.map { (String($0.split(separator: "/").last ?? ""), d) } },
            uniquingKeysWith: { a, _ in a })
        // Link A, UsernameToken.
        let lobby = try #require(byMount["lobby"])
        #expect(lobby.manufacturer == "Hallwatch" && lobby.model == "SimCam")
        #expect(lobby.serial?.hasPrefix("SIM-0-") == true)
        #expect(lobby.auth == "usernameToken")
        #expect(lobby.name == "lobby")
        #expect(lobby.addresses == [TestNetwork.cameraA])
        #expect(lobby.interface == "hwva\(net.tag)")
        #expect(lobby.mainStream?.uri == "rtsp://\(TestNetwork.cameraA):\(rtspA)/lobby")
        #expect(lobby.mainStream?.profileToken == "main")  // the JPEG profile named "mainStream" is skipped
        #expect(lobby.profiles.map(\.encoding) == ["JPEG", "H264"])
        #expect(abs(lobby.clockOffsetMs ?? 99_999) < 2_000)
        let hallway = try #require(byMount["hallway"])
        #expect(hallway.profiles.first { $0.token == "main" }?.encoding == "H265")
        // Link B: Digest after the UsernameToken was refused, 1 h offset, link-local rewritten, no scopes.
        let gym = try #require(byMount["gym"])
        #expect(gym.auth == "digest")
        #expect(abs((gym.clockOffsetMs ?? 0) - 3_600_000) < 3_000)
        #expect(gym.mainStream?.uri == "rtsp://\(TestNetwork.cameraB):\(rtspB)/gym")
        #expect(gym.xAddrs.last?.contains("169.254.") == true)  // link-local announced first, tried last
        #expect(gym.name == nil)
        #expect(gym.interface == TestNetwork.agentOnB)
        // The wrong password: a typed auth failure, published, no crash.
        let wrong = try #require(devices.first { $0.auth == "failed" })
        #expect(wrong.error?.code == "onvif.notAuthorized")
        #expect(wrong.streams.isEmpty)
        #expect(!agent.hasExited)

        // Bye: stopping simB marks its device gone at once.
        await simB.stop()
        let afterBye = try await watch.wait(seconds: 5, "gym gone after Bye") { ds in
            ds.contains { $0.id == gym.id && $0.presence == .gone }
        }
        #expect(afterBye.first { $0.id == gym.id }?.goneReason == "bye")

        // Independent peers (PyPI wsdiscovery), when the test virtualenv is there.
        if let python = Repo.python {
            // It finds our simcam…
            let probe = kids.add(
                try Child(
                    "wsd-probe", python, [Repo.root.appendingPathComponent("Tests/Interop/wsd_probe.py").path, "3"],
                    log: dir.path + "/wsd-probe.log", namespace: net.agent))
            let line = try await probe.waitForLine("[", seconds: 20)
            let found = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [[String: Any]] ?? []
            let eprs = Set(found.compactMap { $0["epr"] as? String })
            #expect(eprs.contains(lobby.endpoint) && eprs.contains(hallway.endpoint), "wsdiscovery found \(eprs)")
            await probe.stop()
            // …and our agent finds a service that it publishes (Hello, then ProbeMatches).
            let publisher = kids.add(
                try Child(
                    "wsd-publish", python,
                    [
                        Repo.root.appendingPathComponent("Tests/Interop/wsd_publish.py").path,
                        "http://\(TestNetwork.cameraA):9/onvif/device_service", "30",
                    ],
                    log: dir.path + "/wsd-publish.log", namespace: net.camA))
            let epr =
                try await publisher.waitForLine("published", seconds: 20).split(separator: " ").last.map(String.init)
                ?? ""
            let py = try await watch.wait(seconds: 15, "the wsdiscovery service") { ds in
                ds.contains { $0.endpoint == epr.lowercased() && $0.presence == .present }
            }
            let dev = try #require(py.first { $0.endpoint == epr.lowercased() })
            #expect(dev.name == "pyservice")
            #expect(dev.xAddrs == ["http://\(TestNetwork.cameraA):9/onvif/device_service"])
            await publisher.stop()
        } else if ProcessInfo.processInfo.environment["CI"] != nil {
            Issue.record("the PyPI cross-checks need .venv-test (make test-deps), which CI must have")
        } else {
            print("note: PyPI wsdiscovery cross-checks skipped: no .venv-test (run make test-deps)")
        }
        await watch.close()
    }
}

func randomPassword() -> String {
    String((0..<16).map { _ in "abcdefghijkmnopqrstuvwxyz23456789".randomElement()! })
}

/// The RTSP port from a `simcam ready rtsp://ADDR:PORT/…` line.
func rtspPort(_ readyLine: String) throws -> Int {
    guard let url = readyLine.split(separator: " ").dropFirst(2).first,
        let port = URLComponents(string: String(url))?.port
    else {
        throw TestFailure("no RTSP URL in \(readyLine)")
    }
    return port
}
