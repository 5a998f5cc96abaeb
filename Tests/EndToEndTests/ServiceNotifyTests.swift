import Foundation
import HallwatchProcess
import Testing

/// A Unix datagram socket standing in for systemd's `NOTIFY_SOCKET` (sd_notify(3)): the test binds it and
/// reads what a real process sends.
final class NotifySocket {
    let path: String
    let fd: Int32

    init(path: String) throws {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.prefix(raw.count - 1).enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// The datagrams that arrive within `seconds` (or until `until` holds for the ones read so far).
    func read(for seconds: Double, until: ([String]) -> Bool = { _ in false }) -> [String] {
        var got: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline, !until(got) {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 { got.append(String(decoding: buffer[0..<n], as: UTF8.self)) }
        }
        return got
    }
}

@Suite("systemd integration: sd_notify and the generator", .serialized)
struct ServiceNotifyTests {
    /// A fresh `/tmp/hw-NAME-PID` with a `logs` folder (the caller removes it).
    static func scratch(_ name: String) throws -> String {
        let dir = "/tmp/hw-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        return dir
    }

    static func config(dir: String, cameras: [String]) throws -> String {
        try FileManager.default.createDirectory(atPath: dir + "/disk0", withIntermediateDirectories: true)
        var yaml = """
            box: notify
            bus:
              socket: \(dir)/bus.sock
            recorder:
              socket: \(dir)/recorder.sock
              fsyncCadence: 250ms
              slotSizeBytes: 1048576
              slotCount: 8
              disks:
                - name: disk0
                  path: \(dir)/disk0
            cameras:

            """
        for c in cameras { yaml += "  - id: \(c)\n    source: rtsp://127.0.0.1:9/\(c)\n" }
        let path = dir + "/hallwatch.yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The real recorder under a real NOTIFY_SOCKET: `READY=1` (with a status line) once it listens, then
    /// `WATCHDOG=1` from its fsync loop (WATCHDOG_USEC 2 s: at most one ping per 0.5 s), `STOPPING=1` on SIGTERM.
    @Test(.timeLimit(.minutes(1))) func theRecorderNotifiesReadyWatchdogAndStopping() throws {
        let dir = try Self.scratch("notify")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try Self.config(dir: dir, cameras: ["lobby"])
        let socket = try NotifySocket(path: dir + "/notify.sock")
        let recorder = try Child(
            "recorder", E2E.tool("hallwatch-recorder"), ["--config", config], logDirectory: dir + "/logs",
            environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "2000000"])
        defer { recorder.stop() }
        let messages = socket.read(for: 15) { got in got.filter { $0 == "WATCHDOG=1" }.count >= 3 }
        let ready = messages.first { $0.hasPrefix("READY=1\n") }
        #expect(ready?.contains("STATUS=listening on \(dir)/recorder.sock") == true, "\(messages) \(recorder.log)")
        #expect(messages.filter { $0 == "WATCHDOG=1" }.count >= 3, "\(messages)")
        kill(recorder.pid, SIGTERM)
        let after = socket.read(for: 10) { got in got.contains { $0.hasPrefix("STOPPING=1") } }
        #expect(after.contains { $0.hasPrefix("STOPPING=1") }, "\(after)")
    }

    /// A real capture worker whose camera refuses connections: `READY=1` as its loop starts, then `WATCHDOG=1`
    /// while it legitimately backs off (no media at all); and a real pruner: `READY=1` and its heartbeat.
    @Test(.timeLimit(.minutes(1))) func aBackingOffCaptureWorkerAndThePrunerFeedTheirWatchdogs() throws {
        let dir = try Self.scratch("notify-cap")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try Self.config(dir: dir, cameras: ["lobby"])
        for (tool, args, readyStatus) in [
            ("hallwatch-capture", ["--camera", "lobby"], "STATUS=capture lobby: connecting"),
            ("hallwatch-pruner", [], "STATUS=pruning every"),
        ] {
            let socket = try NotifySocket(path: dir + "/\(tool).sock")
            let child = try Child(
                tool, E2E.tool(tool), ["--config", config] + args, logDirectory: dir + "/logs",
                environment: ["NOTIFY_SOCKET": socket.path, "WATCHDOG_USEC": "1000000"])
            defer { child.stop() }
            let messages = socket.read(for: 15) { got in got.filter { $0 == "WATCHDOG=1" }.count >= 3 }
            #expect(
                messages.contains { $0.hasPrefix("READY=1\n") && $0.contains(readyStatus) }, "\(tool): \(messages)")
            #expect(messages.filter { $0 == "WATCHDOG=1" }.count >= 3, "\(tool): \(messages) \(child.log)")
        }
    }

    /// Without NOTIFY_SOCKET nothing is sent and nothing fails (the development supervisor, a shell).
    @Test func withoutANotifySocketTheNotifierIsANoOp() {
        let n = ServiceNotifier(environment: [:])
        #expect(!n.isEnabled)
        #expect(n.watchdogInterval == nil)
        #expect(!n.send("READY=1"))
    }

    /// The generator run as systemd runs it (an output directory), on a configuration of three cameras:
    /// exactly one wants symlink per camera, named as the real `systemd-escape` names the instance; one more for a
    /// camera's sub stream.
    @Test(.timeLimit(.minutes(1))) func theGeneratorWantsOneCaptureInstancePerCamera() throws {
        let dir = try Self.scratch("generator")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cameras = ["lobby", "gym-north", "door_2"]
        let config = try Self.config(dir: dir, cameras: cameras)
        let r = try E2E.run(
            E2E.tool("hallwatch-generator"), ["--config", config, dir + "/out", dir + "/early", dir + "/late"])
        #expect(r.status == 0, "\(r.stderr)")
        let wants = dir + "/out/hallwatch.target.wants"
        let links = try FileManager.default.contentsOfDirectory(atPath: wants).sorted()
        var expected: [String] = []
        for c in cameras + ["lobby/sub", ".hidden", "ümlaut x"] {
            let escaped = try E2E.run("/usr/bin/systemd-escape", [c]).stdout.trimmingCharacters(in: .newlines)
            #expect(SystemdEscape.instance(c) == escaped, "\(c)")
            if cameras.contains(c) { expected.append("hallwatch-capture@\(escaped).service") }
        }
        #expect(links == expected.sorted())
        for l in links {
            #expect(
                try FileManager.default.destinationOfSymbolicLink(atPath: wants + "/" + l)
                    == "/usr/lib/systemd/system/hallwatch-capture@.service")
        }
        // A camera with a sub stream pulls in a second instance, `lobby/sub` escaped as systemd-escape does.
        var text = try String(contentsOfFile: config, encoding: .utf8)
        text = text.replacingOccurrences(
            of: "source: rtsp://127.0.0.1:9/lobby\n",
            with: "source: rtsp://127.0.0.1:9/lobby\n    subStream:\n      source: rtsp://127.0.0.1:9/lobby-sub\n")
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let withSub = try E2E.run(E2E.tool("hallwatch-generator"), ["--config", config, dir + "/out3"])
        #expect(withSub.status == 0, "\(withSub.stderr)")
        let subLinks = try FileManager.default.contentsOfDirectory(atPath: dir + "/out3/hallwatch.target.wants")
        #expect(subLinks.sorted() == (expected + ["hallwatch-capture@lobby-sub.service"]).sorted(), "\(subLinks)")
        // A refused configuration: nothing pulled in, exit 78, the reason on stderr.
        try "cameras: [".write(toFile: config, atomically: true, encoding: .utf8)
        let bad = try E2E.run(E2E.tool("hallwatch-generator"), ["--config", config, dir + "/out2"])
        #expect(bad.status == 78)
        #expect(!FileManager.default.fileExists(atPath: dir + "/out2/hallwatch.target.wants"))
    }
}
