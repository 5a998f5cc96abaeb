import Foundation
import HallwatchBus
import HallwatchCore
import HallwatchSodium
import Logging
import Synchronization
import Testing

@testable import HallwatchProvision

/// Steps 7–8 with real processes: mosquitto, the recorder, the pruner, the web and a capture worker per camera
/// (a simcam serving a real clip), run by `hallwatchctl supervise` from the store's `current` link, and the real
/// `hallwatch-provision --once` applying sticks. A good bundle is reported healthy by every process (the
/// recorder and the unchanged camera's worker adopt it without a restart: same pids), capture workers follow
/// the cameras; a bundle that breaks the recorder is reverted byte for byte and the receipt says why.
@Suite(
    "Activation and the health gate (real processes)", .serialized,
    .enabled(if: getuid() == 0, "the reader sandbox, loop devices and FUSE need root"))
struct ActivationTests {
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    static var bin: String? { CrashTests.tool.map { ($0 as NSString).deletingLastPathComponent } }

    /// The latest retained state of every process of box `act`.
    final class States: Sendable {
        let client: BusClient
        let latest = Mutex<[String: ProcessState]>([:])
        let task = Mutex<Task<Void, Never>?>(nil)
        init(socket: String) async throws {
            client = BusClient(clientID: "act-watch", socketPath: socket, will: nil, logger: Logger(label: "test"))
            try await client.connect(timeout: .seconds(20))
            let stream = try await client.subscribe(BusTopics(box: "act").allProcesses, timeout: .seconds(5))
            let t = Task { [weak self] in
                for await m in stream {
                    if let s = try? m.decode(ProcessState.self) { self?.latest.withLock { $0[s.process] = s } }
                }
            }
            task.withLock { $0 = t }
        }
        subscript(_ name: String) -> ProcessState? { latest.withLock { $0[name] } }
        func up(_ names: [String], version: String) -> Bool {
            names.allSatisfy { self[$0]?.state == .up && self[$0]?.configVersion == version }
        }
        deinit { task.withLock { $0?.cancel() } }
    }

    /// The configuration; `lobby` connects with a user name and the release's `secrets/lobby.password` (the
    /// simulated camera asks for none, so any password records).
    static func yaml(
        _ dir: String, port: Int, cameras: [String], maxAge: String, recorderSocket: String? = nil,
        store: String? = nil
    ) -> String {
        var s = """
            box: act
            bus:
              socket: \(dir)/bus.sock
            recorder:
              socket: \(recorderSocket ?? dir + "/rec.sock")
              slotSizeBytes: 8388608
              slotCount: 32
              disks:
                - name: disk0
                  path: \(dir)/disk0
            retention:
              maxAge: \(maxAge)
            capture:
              maxFragmentDuration: 1s
              ioTimeout: 3s
              backoffInitial: 250ms
              backoffMax: 1s
            cameras:

            """
        for c in cameras {
            s += "  - id: \(c)\n    source: rtsp://127.0.0.1:\(port)/\(c)\n"
            if c == "lobby", let store {
                s += "    username: admin\n    passwordFile: \(store)/current/secrets/lobby.password\n"
            }
        }
        return s
    }

    /// Every entry under `root`: files by bytes, links by target, directories by name.
    static func tree(_ root: String) -> [String: String] {
        var out: [String: String] = [:]
        let walker = FileManager.default.enumerator(atPath: root)
        while let rel = walker?.nextObject() as? String {
            let path = root + "/" + rel
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: path) {
                out[rel] = "-> " + target
            } else if let data = FileManager.default.contents(atPath: path) {
                out[rel] = hex(Array(data))
            } else {
                out[rel] = "dir"
            }
        }
        return out
    }

    /// Runs the real provisioner on a thread of its own (never blocking the test's concurrency pool).
    static func provision(_ argv: [String]) async -> Fx.RunResult {
        await withCheckedContinuation { c in
            Thread {
                c.resume(returning: (try? Fx.run(argv)) ?? Fx.RunResult(status: -1, out: "did not run"))
            }.start()
        }
    }

    @Test func aGoodBundleIsReportedHealthyAndABreakingOneIsRevertedByteForByte() async throws {
        let bin = try #require(Self.bin, "build the executables first (swift build)")
        let clip = Self.repoRoot + "/.media/h264-bframes.mp4"
        try #require(FileManager.default.fileExists(atPath: clip), "run `make clips` first")
        var box = try TestBox("act")
        defer { box.cleanup() }
        box.nowUnix = Int64(Date().timeIntervalSince1970)
        let dir = box.dir
        let port = LoopbackPort.pickFree()
        let webPort = LoopbackPort.pickFree()
        try FileManager.default.createDirectory(atPath: dir + "/disk0", withIntermediateDirectories: true)
        // One user, to show a session made before an apply still works after the web restarted for it.
        let password = SessionCookie.randomPassword()
        let hash = try Fx.run([bin + "/hallwatchctl", "user", "hash"], input: password + "\n").out
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try """
        web:
          listen: [127.0.0.1]
          httpsPort: \(webPort)
          stateDirectory: \(dir)/web
        users:
          - name: admin
            role: district-admin
            passwordHash: "\(hash)"

        """.write(toFile: dir + "/web.yaml", atomically: true, encoding: .utf8)

        // v2, applied before anything runs (the box's first configuration).
        var v2 = Fx.Bundle()
        v2.files = [
            (
                "hallwatch.yaml",
                Array(Self.yaml(dir, port: port, cameras: ["lobby", "gym"], maxAge: "30d", store: box.store.root).utf8)
            )
        ]
        // lobby's password travels in clear text here (allowed by the manifest; the receipt warns).
        let password1 = ("secrets/lobby.password", Array("first-password\n".utf8))
        v2.files.append(password1)
        v2.cleartextSecrets = true
        #expect(box.process(try box.stick([v2], name: "v2.img")).result == .applied)
        let release2 = try #require(box.store.current())

        let simcam = Process()
        simcam.executableURL = URL(fileURLWithPath: bin + "/hallwatch-simcam")
        simcam.arguments = ["--port", "\(port)"] + ["lobby", "gym", "hall"].flatMap { ["--mount", "\($0)=\(clip)"] }
        simcam.standardOutput = FileHandle.nullDevice
        simcam.standardError = FileHandle.nullDevice
        try simcam.run()
        let supervisor = Process()
        supervisor.executableURL = URL(fileURLWithPath: bin + "/hallwatchctl")
        supervisor.arguments = [
            "supervise", "--config", box.store.root + "/current/hallwatch.yaml", "--run-directory", dir + "/run",
            "--status-every", "0", "--max-restart-delay", "300ms", "--web-config", dir + "/web.yaml",
        ]
        supervisor.standardOutput = FileHandle.nullDevice
        supervisor.standardError = FileHandle.nullDevice
        try supervisor.run()
        defer {
            for p in [supervisor, simcam] where p.isRunning {
                kill(p.processIdentifier, SIGTERM)
                let deadline = Date().addingTimeInterval(15)
                while p.isRunning && Date() < deadline { usleep(50_000) }
                if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            }
        }
        let states = try await States(socket: dir + "/bus.sock")
        let everyone = ["recorder", "pruner", "web", "capture-lobby", "capture-gym"]
        #expect(await wait(60) { states.up(everyone, version: release2) }, "\(states.latest.withLock { $0 })")
        let recorderPID = try #require(states["recorder"]?.pid)
        let lobbyPID = try #require(states["capture-lobby"]?.pid)
        let prunerPID = try #require(states["pruner"]?.pid)
        let webPID = try #require(states["web"]?.pid)
        let cookie = SessionCookie(jar: dir + "/cookies", port: webPort)
        // The web publishes `up` before its listeners are bound: sign in once it answers.
        #expect(try cookie.status("/login", waitingUpTo: 20) == 200)
        let signIn = try cookie.signIn(user: "admin", password: password)
        #expect(signIn.jar.contains("\tTRUE\t") || signIn.jar.contains("\tFALSE\t"), "no session cookie: \(signIn)")
        #expect(try cookie.status("/api/v1/cameras") == 200)

        // v3: gym removed, hall added, lobby unchanged, retention changed (the pruner restarts).
        var v3 = Fx.Bundle()
        v3.version = 3
        v3.files = [
            (
                "hallwatch.yaml",
                Array(
                    Self.yaml(dir, port: port, cameras: ["lobby", "hall"], maxAge: "20d", store: box.store.root).utf8)
            )
        ]
        v3.files.append(password1)
        v3.cleartextSecrets = true
        let image3 = try box.stick([v3], name: "v3.img")
        let argv = [
            bin + "/hallwatch-provision", "--once", "--keyring", dir + "/keyring", "--store", box.store.root,
            "--serial", box.identity.serial, "--building", "north-es", "--district", "lincoln-usd",
        ]
        let applied = await Self.provision(argv + ["--device", image3])
        #expect(applied.status == 0 && applied.out.contains("result: applied"), "\(applied.out)")
        let release3 = try #require(box.store.current())
        #expect(release3 != release2 && release3.hasPrefix("v3-"))
        let receipt3 = try #require(try Fx.receipts(image3).first)
        for service in ["bus", "recorder", "web", "pruner"] {
            #expect(receipt3.contains("health: \(service): healthy"), "\(receipt3)")
        }
        #expect(receipt3.contains("camera-started: hall") && receipt3.contains("camera-stopped: gym"), "\(receipt3)")
        #expect(!receipt3.contains("camera-restarted: lobby"), "\(receipt3)")
        // The inventory from the bus: cameras configured and answering, the web's TLS fingerprint.
        #expect(receipt3.contains("cameras-configured: hall lobby\n"), "\(receipt3)")
        let answering = receipt3.split(separator: "\n").first { $0.hasPrefix("cameras-answering: ") } ?? ""
        #expect(answering.contains("lobby"), "\(receipt3)")
        #expect(receipt3.contains("tls-sha256: ") && !receipt3.contains("tls-sha256: -\n"), "\(receipt3)")
        // Every process reports v3; the recorder and lobby's worker adopted it without a restart (no gap).
        #expect(
            await wait(30) {
                states.up(["recorder", "pruner", "web", "capture-lobby", "capture-hall"], version: release3)
            },
            "\(states.latest.withLock { $0 })")
        #expect(states["recorder"]?.pid == recorderPID && states["capture-lobby"]?.pid == lobbyPID)
        #expect(states["pruner"]?.pid != prunerPID)
        // The web restarted for v3 (a new pid); the session made before it is still signed in: sessions are
        // rows in the web's own SQLite (hashed ids, expiry kept), not in the process.
        #expect(states["web"]?.pid != webPID)
        #expect(
            try cookie.status("/api/v1/cameras", waitingUpTo: 20) == 200,
            "the session did not survive the web's restart for v3")
        #expect(await wait(10) { states["capture-gym"]?.state != .up }, "gym's worker still runs")

        // A replug of the same stick: already applied, nothing announced, nothing restarted.
        let pids = ["recorder", "pruner", "web", "capture-lobby", "capture-hall"].map { states[$0]?.pid }
        let again = await Self.provision(argv + ["--device", image3])
        #expect(again.status == 0 && again.out.contains("result: already-applied"), "\(again.out)")
        try await Task.sleep(for: .seconds(2))
        #expect(["recorder", "pruner", "web", "capture-lobby", "capture-hall"].map { states[$0]?.pid } == pids)

        // v4 points the recorder at a socket in a directory that does not exist: it restarts and fails.
        let before = Self.tree(box.store.root)
        var v4 = Fx.Bundle()
        v4.version = 4
        v4.files = [
            (
                "hallwatch.yaml",
                Array(
                    Self.yaml(
                        dir, port: port, cameras: ["lobby", "hall"], maxAge: "20d",
                        recorderSocket: dir + "/missing/rec.sock", store: box.store.root
                    ).utf8)
            )
        ]
        v4.files.append(password1)
        v4.cleartextSecrets = true
        let image4 = try box.stick([v4], name: "v4.img")
        let t0 = Date()
        let reverted = await Self.provision(argv + ["--device", image4, "--health-timeout", "10"])
        #expect(reverted.status == 1 && reverted.out.contains("result: reverted"), "\(reverted.out)")
        #expect(Date().timeIntervalSince(t0) < 25)
        #expect(Self.tree(box.store.root) == before, "the store is not what it was before v4")
        #expect(box.store.current() == release3 && box.store.state().versionFloor == 3)
        let receipt4 = try #require(try Fx.receipts(image4).first)
        #expect(
            receipt4.contains("result: reverted") && receipt4.contains("health: recorder: UNHEALTHY"), "\(receipt4)")
        #expect(receipt4.contains("reason: provision.health: recorder:") && receipt4.contains(release3), "\(receipt4)")
        #expect(receipt4.contains("version-after: 3"), "\(receipt4)")
        // The old release announced again: everything comes back on v3.
        #expect(
            await wait(40) {
                states.up(["recorder", "pruner", "web", "capture-lobby", "capture-hall"], version: release3)
            },
            "\(states.latest.withLock { $0 })")

        // v5: the same hallwatch.yaml as v3, only lobby's password changed in secrets/: lobby's worker restarts
        // (connects again with it); the recorder and hall's worker keep their pids.
        let settled = ["recorder", "capture-lobby", "capture-hall"].map { states[$0]?.pid }
        var v5 = v3
        v5.version = 5
        v5.files = [v3.files[0], ("secrets/lobby.password", Array("second-password\n".utf8))]
        let image5 = try box.stick([v5], name: "v5.img")
        let applied5 = await Self.provision(argv + ["--device", image5])
        #expect(applied5.status == 0 && applied5.out.contains("result: applied"), "\(applied5.out)")
        let release5 = try #require(box.store.current())
        #expect(
            await wait(30) { states.up(["recorder", "capture-lobby", "capture-hall"], version: release5) },
            "\(states.latest.withLock { $0 })")
        #expect(states["capture-lobby"]?.pid != settled[1], "lobby's worker kept running with the old password")
        #expect(states["recorder"]?.pid == settled[0] && states["capture-hall"]?.pid == settled[2])
        let receipt5 = try #require(try Fx.receipts(image5).first)
        #expect(!receipt5.contains("second-password") && !receipt5.contains("first-password"), "\(receipt5)")
    }

    func wait(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(200))
        }
        return condition()
    }
}

/// A browser's session cookie, through the real `curl` (the web's certificate is self-signed: `-k`).
struct SessionCookie {
    let jar: String
    let port: Int

    static func randomPassword() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<20).map { _ in String("abcdefghijkmnopqrstuvwxyz23456789".randomElement(using: &g)!) }.joined()
    }

    /// `POST /login` (with the Origin the CSRF check wants): curl's output (the HTTP status) and the cookie jar.
    func signIn(user: String, password: String) throws -> (status: String, jar: String) {
        let r = try Fx.run([
            "curl", "-sSk", "-c", jar, "-o", "/dev/null", "-w", "%{http_code}", "-H",
            "Origin: https://127.0.0.1:\(port)", "-d", "username=\(user)", "--data-urlencode", "password=\(password)",
            "https://127.0.0.1:\(port)/login",
        ])
        return (r.out, (try? String(contentsOfFile: jar, encoding: .utf8)) ?? "")
    }

    /// The HTTP status of `GET path` with the cookie (0 when curl failed), asked again every 200 ms while
    /// nothing answers, for at most `seconds`.
    func status(_ path: String, waitingUpTo seconds: Double = 0) throws -> Int {
        let deadline = Date().addingTimeInterval(seconds)
        var code = try statusOnce(path)
        while code == 0 && Date() < deadline {
            usleep(200_000)
            code = try statusOnce(path)
        }
        return code
    }

    private func statusOnce(_ path: String) throws -> Int {
        let r = try Fx.run([
            "curl", "-sk", "-b", jar, "-o", "/dev/null", "-w", "%{http_code}", "https://127.0.0.1:\(port)\(path)",
        ])
        return Int(r.out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }
}
