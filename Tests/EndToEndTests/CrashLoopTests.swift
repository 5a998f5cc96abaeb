import Foundation
import HallwatchCore
import HallwatchStorage
import Testing

/// The oracle of the storage promise (HallwatchStorage DocC, <doc:WriteProtocol>): **after `kill -9` of
/// the recorder, at most the fsync cadence (1 s) plus one fragment per camera is lost, and no index row
/// ever points at bytes that are not durable.**
///
/// Four simulated cameras (the demo's clips: H.264+AAC, H.264 with B-frames, H.265, 1080p) record under
/// the supervisor on a disk made by `hallwatchctl disk init`. Each round waits a random 0.5–3 s, kills
/// the recorder with SIGKILL, waits for the supervisor to restart it and for every camera to be recorded
/// past the kill again, and runs `hallwatchctl check --level crc`, which must pass every round.
///
/// Loss per camera per crash: the capture workers keep what the dead recorder never read and resend it
/// (their backlog), so what a crash loses shows as holes in a run's media timeline: the gap between a
/// fragment's end and the next recorded fragment's start (more than one frame), for holes that open
/// between the previous kill and this one. Asserted ≤ fsync cadence + one fragment (1 s + 1 s); the
/// distribution is printed at the end.
///
/// Rounds: `HALLWATCH_CRASH_ROUNDS` (default 50, as the storage issue asks; `HALLWATCH_CRASH_ROUNDS=1000`
/// for a soak). The supervisor runs with `--max-restart-delay 300ms`: its normal back-off (1 s doubling to
/// 10 s for a process that keeps dying soon after its start) is right for a crashing process, but here the
/// crashes are the test's own.
@Suite("Recorder crash loop", .serialized)
struct CrashLoopTests {
    static let cadenceSeconds = 1.0
    static let maxFragmentSeconds = 1.0

    struct Camera {
        var id: String
        var file: String
        var audio = false
    }
    let cameras = [
        // audio: true as in the demo. (With audio: false this clip's worker times out every few seconds
        // against the simcam, "no data from the camera for 3s", and starts a new run each time: a
        // capture/simcam problem outside this test, reported separately.)
        Camera(id: "lobby", file: "h264-aac.mp4", audio: true),
        Camera(id: "gym", file: "h264-bframes.mp4"),
        Camera(id: "hallway", file: "hevc.mp4"),
        // A second B-frame camera rather than the 4 Mbit/s 1080p clip: every round's `check --level crc`
        // reads every indexed byte, and a debug build's CRC would make the rounds ever slower.
        Camera(id: "entrance", file: "h264-bframes.mp4"),
    ]

    @Test func killNineTheRecorder() async throws {
        try E2E.ensureClips()
        let rounds = Int(ProcessInfo.processInfo.environment["HALLWATCH_CRASH_ROUNDS"] ?? "") ?? 50
        let dir = "/tmp/hw-crash-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/disk0", withIntermediateDirectories: true)
        defer {
            if ProcessInfo.processInfo.environment["HALLWATCH_KEEP_E2E"] == nil {
                try? FileManager.default.removeItem(atPath: dir)
            }
        }

        let port = E2E.freePort()
        let simcam = try Child(
            "simcam", E2E.tool("hallwatch-simcam"),
            ["--port", "\(port)"] + cameras.flatMap { ["--mount", "\($0.id)=\(E2E.media)/\($0.file)"] },
            logDirectory: dir + "/logs")
        #expect(E2E.waitFor(15) { simcam.log.contains("simcam ready") }, "simcam did not start: \(simcam.log)")

        let configPath = dir + "/hallwatch.yaml"
        let disk = dir + "/disk0"
        var yaml = """
            box: crash
            bus:
              socket: \(dir)/bus.sock
            recorder:
              socket: \(dir)/recorder.sock
              disks:
                - name: disk0
                  path: \(disk)
              fsyncCadence: 1s
              slotSizeBytes: 8388608
              slotCount: 32
            capture:
              maxFragmentDuration: 1s
              ioTimeout: 3s
              backoffInitial: 250ms
              backoffMax: 2s
            cameras:

            """
        for c in cameras {
            yaml += "  - id: \(c.id)\n    source: rtsp://127.0.0.1:\(port)/\(c.id)\n    audio: \(c.audio)\n"
        }
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)

        // The disk is made by the operator's command, as on a real box (a full ring reuses slots, which
        // the check must tolerate while the recorder runs).
        let ctl = E2E.tool("hallwatchctl")
        let initialized = try E2E.run(
            ctl, ["disk", "init", disk, "--config", configPath, "--slots", "32", "--slot-size", "8M"])
        #expect(initialized.status == 0, "disk init: \(initialized.stdout) \(initialized.stderr)")
        let again = try E2E.run(
            ctl, ["disk", "init", disk, "--config", configPath, "--slots", "32", "--slot-size", "8M", "--force"])
        #expect(again.status == 2, "a second disk init must leave the disk alone: \(again.stderr)")

        let supervisor = try Child(
            "supervise", ctl,
            [
                "supervise", "--config", configPath, "--run-directory", dir + "/run", "--status-every", "0",
                "--max-restart-delay", "300ms",
            ],
            logDirectory: dir + "/logs")
        defer {
            supervisor.stop()
            for file in (try? FileManager.default.contentsOfDirectory(atPath: dir + "/run/pids")) ?? [] {
                if let p = pid(file.replacingOccurrences(of: ".pid", with: "")), p > 1 { kill(p, SIGKILL) }
            }
        }
        func pid(_ name: String) -> Int32? {
            (try? String(contentsOfFile: "\(dir)/run/pids/\(name).pid", encoding: .utf8)).flatMap {
                Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        /// Every camera has a fragment recorded (indexed) that ends after `instant`.
        func allRecorded(after instant: UTCMicros) -> Bool {
            guard let reader = try? RecordingReader(at: disk, box: "crash") else { return false }
            return cameras.allSatisfy { c in
                guard let id = CameraID(c.id), let last = try? reader.runs(camera: id).last else { return false }
                return last.endUTC > instant
            }
        }

        #expect(
            E2E.waitFor(40) {
                allRecorded(after: SystemClocks().utcNow().adding(micros: -30_000_000)) && pid("recorder") != nil
            },
            "the cameras did not start recording")
        try await Task.sleep(for: .seconds(3))

        var losses: [String: [Double]] = [:]  // camera → seconds lost per crash
        var roundSeconds: [Double] = []
        var previousKill = SystemClocks().utcNow().adding(micros: -60_000_000)
        var rng = SystemRandomNumberGenerator()
        let started = Date()
        for round in 1...rounds {
            let roundStarted = Date()
            try await Task.sleep(for: .milliseconds(Int.random(in: 500...3000, using: &rng)))
            let victim = try #require(pid("recorder"), "round \(round): no recorder pid")
            let killedAt = SystemClocks().utcNow()
            #expect(kill(victim, SIGKILL) == 0)

            let restarted = E2E.waitFor(30) { pid("recorder").map { $0 != victim } ?? false }
            #expect(restarted, "round \(round): the supervisor did not restart the recorder")
            let resumed = E2E.waitFor(45) { allRecorded(after: killedAt.adding(micros: 1_000_000)) }
            #expect(resumed, "round \(round): recording did not resume after the kill")
            let check = try E2E.run(ctl, ["check", "--config", configPath, "--level", "crc"])
            #expect(check.status == 0, "round \(round): check after kill -9: \(check.stdout) \(check.stderr)")
            guard restarted && resumed && check.status == 0 else { break }

            let reader = try RecordingReader(at: disk, box: "crash")
            for c in cameras {
                let id = try #require(CameraID(c.id))
                let lost = try holes(reader, camera: id, from: previousKill, to: killedAt).reduce(0, +)
                losses[c.id, default: []].append(lost)
                #expect(
                    lost <= Self.cadenceSeconds + Self.maxFragmentSeconds,
                    "round \(round): \(c.id) lost \(String(format: "%.3f", lost)) s to one kill -9 (allowed: cadence + one fragment)"
                )
            }
            previousKill = killedAt
            roundSeconds.append(Date().timeIntervalSince(roundStarted))
        }

        let all = losses.values.flatMap { $0 }.sorted()
        func q(_ p: Double) -> Double {
            all.isEmpty ? 0 : all[min(all.count - 1, Int((Double(all.count - 1) * p).rounded()))]
        }
        let f = { (x: Double) in String(format: "%.3f", x) }
        var summary =
            "crash loop: \(roundSeconds.count) rounds of kill -9 in \(Int(Date().timeIntervalSince(started))) s "
            + "(round median \(String(format: "%.1f", roundSeconds.sorted()[roundSeconds.count / 2])) s); "
            + "media lost per camera per crash, s: min \(f(q(0))) median \(f(q(0.5))) p95 \(f(q(0.95))) max \(f(q(1))) "
            + "(\(all.filter { $0 > 0 }.count) of \(all.count) with any loss)"
        for c in cameras {
            summary +=
                "\n  \(c.id): max \(f(losses[c.id]?.max() ?? 0)) s, total \(f(losses[c.id]?.reduce(0, +) ?? 0)) s"
        }
        print(summary)
        #expect(roundSeconds.count == rounds)
    }

    /// Holes in `camera`'s recorded timeline that open in `(from, to]`, in seconds: within a run, the gap
    /// between a fragment's end and the next fragment's start when longer than one frame at 25 fps;
    /// between runs, the UTC gap. A fragment lost to a crash was sent before the kill, so the hole it
    /// leaves opens before the kill time.
    func holes(_ reader: RecordingReader, camera: CameraID, from: UTCMicros, to: UTCMicros) throws -> [Double] {
        let runs = try reader.segments(
            camera: camera, from: from.adding(micros: -5_000_000), to: SystemClocks().utcNow(), startAtKeyframe: false)
        var out: [Double] = []
        var previous: FragmentMeta?
        for run in runs {
            for f in run.fragments.map(\.meta) {
                defer { previous = f }
                guard let p = previous else { continue }
                let opens = p.utc.adding(MediaTime90k(Int64(p.duration90k)))
                guard opens > from, opens <= to else { continue }
                let gap =
                    p.run == f.run
                    ? Double(f.start90k.ticks - p.end90k.ticks) / 90_000
                    : Double(f.utc.micros - opens.micros) / 1e6
                if gap > 3600.0 / 90_000 { out.append(gap) }
            }
        }
        return out
    }
}
