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

    /// The recording disks' mounts on the appliance: one mount unit per disk named as `systemd-escape --path`
    /// names it (a path with a space and a `%` included), the device timeouts, the recorder's drop-in; a disk
    /// whose label would not fit ext4's 16 bytes refuses the configuration (the loader's rule, so the stick and
    /// `config validate` refuse it too): nothing is written; `systemd-analyze verify` accepts what was written.
    @Test(.timeLimit(.minutes(1))) func theGeneratorMountsEachRecordingDiskByLabel() throws {
        let dir = try Self.scratch("generator-disks")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let paths = ["disk0": "/var/lib/hallwatch/disk0", "bay2": "/srv/bay 2/rec%1"]
        let config = dir + "/hallwatch.yaml"
        let yaml = """
            box: mounts
            recorder:
              disks:
                - name: disk0
                  path: \(paths["disk0"]!)
                - name: bay2
                  path: \(paths["bay2"]!)
            cameras:
              - id: lobby
                source: rtsp://127.0.0.1:9/lobby
            """
        try yaml.replacingOccurrences(
            of: "\ncameras:", with: "\n    - name: archive\n      path: /srv/archive\ncameras:"
        ).write(toFile: config, atomically: true, encoding: .utf8)
        let long = try E2E.run(E2E.tool("hallwatch-generator"), ["--config", config, dir + "/out"])
        #expect(long.status == 78, "\(long.stderr)")
        #expect(
            long.stderr.contains(
                "\(config):8: recorder.disks.[2].name: expected 1-6 characters a-z, 0-9, '-' or '_' (not starting with '-' or '_'; the disk's ext4 label is hallwatch-<name>, at most 16 bytes), got \"archive\""
            ), "\(long.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out/hallwatch.target.wants"))
        try yaml.write(toFile: config, atomically: true, encoding: .utf8)
        let r = try E2E.run(E2E.tool("hallwatch-generator"), ["--config", config, dir + "/out"])
        #expect(r.status == 0 && r.stderr.isEmpty, "\(r.stderr)")
        func escaped(_ path: String) throws -> String {
            try E2E.run("/usr/bin/systemd-escape", ["--path", path]).stdout.trimmingCharacters(in: .newlines)
        }
        let disk0 = try escaped(paths["disk0"]!) + ".mount"
        let bay2 = try escaped(paths["bay2"]!) + ".mount"
        #expect(disk0 == "var-lib-hallwatch-disk0.mount")
        let units = try FileManager.default.contentsOfDirectory(atPath: dir + "/out").sorted()
        #expect(
            units
                == [
                    "dev-disk-by\\x2dlabel-hallwatch\\x2dbay2.device.d",
                    "dev-disk-by\\x2dlabel-hallwatch\\x2ddisk0.device.d", "hallwatch-recorder.service.d",
                    "hallwatch.target.wants", bay2, disk0,
                ].sorted(), "\(units)")
        let mount = try String(contentsOfFile: dir + "/out/" + disk0, encoding: .utf8)
        #expect(mount.contains("What=/dev/disk/by-label/hallwatch-disk0\nWhere=/var/lib/hallwatch/disk0\nType=ext4\n"))
        #expect(mount.contains("Options=rw,noatime,nodev,nosuid,noexec\n"))
        let bayMount = try String(contentsOfFile: dir + "/out/" + bay2, encoding: .utf8)
        #expect(bayMount.contains("Where=/srv/bay 2/rec%%1\n"), "a % is not a specifier: \(bayMount)")
        let timeout0 = try String(
            contentsOfFile: dir + "/out/dev-disk-by\\x2dlabel-hallwatch\\x2ddisk0.device.d/50-hallwatch-timeout.conf",
            encoding: .utf8)
        let timeout2 = try String(
            contentsOfFile: dir + "/out/dev-disk-by\\x2dlabel-hallwatch\\x2dbay2.device.d/50-hallwatch-timeout.conf",
            encoding: .utf8)
        #expect(timeout0.contains("JobRunningTimeoutSec=90s") && timeout2.contains("JobRunningTimeoutSec=10s"))
        let dropIn = try String(
            contentsOfFile: dir + "/out/hallwatch-recorder.service.d/50-hallwatch-disks.conf", encoding: .utf8)
        #expect(dropIn.contains("Wants=\(disk0) \(bay2)\nAfter=\(disk0) \(bay2)\n"), "\(dropIn)")
        #expect(
            dropIn.contains(
                "ExecStartPre=-+/bin/chown hallwatch-rec:hallwatch \"/var/lib/hallwatch/disk0\" \"/srv/bay 2/rec%%1\"\n"
            )
                && dropIn.contains(
                    "ReadWritePaths=\"-/var/lib/hallwatch/disk0\" \"-/srv/bay 2/rec%%1\"\n"
                ),
            "\(dropIn)")
        // systemd itself reads the mount units: no complaint about names, paths or options.
        let verify = try E2E.run(
            "/usr/bin/systemd-analyze", ["verify", "--man=no", dir + "/out/" + disk0, dir + "/out/" + bay2])
        #expect(verify.status == 0 && (verify.stdout + verify.stderr).isEmpty, "\(verify.stdout) \(verify.stderr)")
    }

    /// `hallwatch-generator --sync` as `hallwatch-config.service` runs it after a switch of `current` (steps
    /// S3–S6 of `CaptureUnitSync`), against a recording `systemctl` that lists three loaded capture
    /// instances: the spool is emptied first, then daemon-reload, the target started, and only the instance of
    /// the camera no longer configured (`hall`, a failed unit with its status glyph) stopped and reset. A
    /// configuration that does not load stops nothing.
    @Test(.timeLimit(.minutes(1))) func theSyncAfterASwitchStartsNewCamerasAndStopsRemovedOnes() throws {
        let dir = try Self.scratch("unit-sync")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try Self.config(dir: dir, cameras: ["lobby", "gym-north"])
        let spool = dir + "/config-switched"
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        for name in ["1765080000-12-applied-v3-0123456789abcdef", "1765080001-12-reverted-v2-0123456789abcdef"] {
            try "applied\n".write(toFile: spool + "/" + name, atomically: true, encoding: .utf8)
        }
        let log = dir + "/systemctl.log"
        let fake = dir + "/systemctl"
        try """
        #!/bin/sh
        echo "$*" >> \(log)
        if [ "$1" = list-units ]; then
          printf '%s\\n' 'hallwatch-capture@lobby.service      loaded active running Hallwatch capture worker for camera lobby'
          printf '%s\\n' 'hallwatch-capture@gym\\x2dnorth.service loaded active running Hallwatch capture worker for camera gym-north'
          printf '%s\\n' '● hallwatch-capture@hall.service     loaded failed failed  Hallwatch capture worker for camera hall'
        fi
        exit 0

        """.write(toFile: fake, atomically: true, encoding: .utf8)
        chmod(fake, 0o755)
        let r = try E2E.run(
            E2E.tool("hallwatch-generator"), ["--sync", "--config", config, "--spool", spool, "--systemctl", fake])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty)
        let calls = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(
            calls == [
                "daemon-reload", "start --no-block hallwatch.target",
                "list-units --all --plain --no-legend --full --no-pager hallwatch-capture@*.service",
                "stop hallwatch-capture@hall.service", "reset-failed hallwatch-capture@hall.service",
            ], "\(calls)")
        #expect(r.stderr.contains("2 switch(es) noted") && r.stderr.contains("stopped: hallwatch-capture@hall.service"))
        #expect(
            CaptureUnitSync.loaded(listUnitsOutput: "● hallwatch-capture@hall.service loaded failed failed x\n")
                == ["hallwatch-capture@hall.service"])
        // The removed camera's worker, restarted once by systemd after the switch, exits 3 (not configured),
        // which its unit counts as success and does not restart: the instance ends stopped, not failed.
        let removed = try E2E.run(E2E.tool("hallwatch-capture"), ["--config", config, "--camera", "hall"])
        #expect(removed.status == ExitStatus.notConfigured && removed.status == 3, "\(removed.stderr)")
        let unit = try String(contentsOfFile: E2E.repoRoot + "/Systemd/hallwatch-capture@.service", encoding: .utf8)
        #expect(unit.contains("\nSuccessExitStatus=3\n") && unit.contains("\nRestartPreventExitStatus=3 64 78\n"))
        // A configuration that does not load: the reload and the start still run, nothing is stopped.
        try FileManager.default.removeItem(atPath: log)
        try "cameras: [".write(toFile: config, atomically: true, encoding: .utf8)
        let bad = try E2E.run(
            E2E.tool("hallwatch-generator"), ["--sync", "--config", config, "--spool", spool, "--systemctl", fake])
        #expect(bad.status == 78, "\(bad.stderr)")
        let badCalls = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(badCalls == ["daemon-reload", "start --no-block hallwatch.target"], "\(badCalls)")
        #expect(bad.stderr.contains("no capture worker stopped"))
    }
}
