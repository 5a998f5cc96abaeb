import Foundation
import HallwatchCore
import Testing

/// The box end to end, with real processes: a simulated camera (gst-rtsp-server) serving real clips,
/// mosquitto, the recorder and capture workers under the development supervisor. One scenario, run in
/// phases, because each phase builds on what the previous one recorded.
@Suite("Box end to end", .serialized)
struct BoxEndToEndTests {
    struct Recordings: Decodable {
        struct Run: Decodable {
            var run: UInt64
            var startMicros: Int64
            var endMicros: Int64
            var mediaSeconds: Double
            var fragments: Int
            var bytes: Int64
            var maxFragmentGap90k: Int64
        }
        struct Gap: Decodable {
            var fromMicros: Int64
            var toMicros: Int64
            var seconds: Double
        }
        var camera: String
        var runs: [Run]
        var gaps: [Gap]
        var totalSeconds: Double
    }

    struct Clip {
        var camera: String
        var file: String
        var codec: String
        var hevc: Bool
        var audio: Bool
    }
    let clips = [
        Clip(camera: "aac", file: "h264-aac.mp4", codec: "h264", hevc: false, audio: true),
        Clip(camera: "bframes", file: "h264-bframes.mp4", codec: "h264", hevc: false, audio: false),
        Clip(camera: "hevc", file: "hevc.mp4", codec: "hevc", hevc: true, audio: false),
    ]

    @Test func recordsRepairsAndRecovers() async throws {
        try E2E.ensureClips()
        let dir = "/tmp/hw-e2e-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/disk0", withIntermediateDirectories: true)
        defer {
            if ProcessInfo.processInfo.environment["HALLWATCH_KEEP_E2E"] == nil {
                try? FileManager.default.removeItem(atPath: dir)
            }
        }
        let port = E2E.freePort()
        let latePort = E2E.freePort()
        let mounts = clips.flatMap { ["--mount", "\($0.camera)=\(E2E.media)/\($0.file)"] }
        var simcam: Child? = try Child(
            "simcam", E2E.tool("hallwatch-simcam"), ["--port", "\(port)"] + mounts, logDirectory: dir + "/logs")
        #expect(E2E.waitFor(15) { simcam!.log.contains("simcam ready") }, "simcam did not start: \(simcam!.log)")

        let configPath = dir + "/hallwatch.yaml"
        var yaml = """
            box: e2e
            bus:
              socket: \(dir)/bus.sock
            recorder:
              socket: \(dir)/recorder.sock
              disks:
                - name: disk0
                  path: \(dir)/disk0
              fsyncCadence: 1s
              slotSizeBytes: 8388608
              slotCount: 48
            capture:
              maxFragmentDuration: 1s
              ioTimeout: 3s
              backoffInitial: 250ms
              backoffMax: 2s
            cameras:

            """
        for c in clips {
            yaml += "  - id: \(c.camera)\n    source: rtsp://127.0.0.1:\(port)/\(c.camera)\n    audio: \(c.audio)\n"
        }
        yaml += "  - id: late\n    source: rtsp://127.0.0.1:\(latePort)/late\n"
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)

        let ctl = E2E.tool("hallwatchctl")
        let supervisor = try Child(
            "supervise", ctl,
            ["supervise", "--config", configPath, "--run-directory", dir + "/run", "--status-every", "0"],
            logDirectory: dir + "/logs")
        // Whatever happens, nothing this test started outlives it: the supervisor's children by their pid files.
        defer {
            supervisor.stop()
            for file in (try? FileManager.default.contentsOfDirectory(atPath: dir + "/run/pids")) ?? [] {
                if let text = try? String(contentsOfFile: "\(dir)/run/pids/\(file)", encoding: .utf8),
                    let p = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), p > 1
                {
                    kill(p, SIGKILL)
                }
            }
        }
        let watcher = try await BusWatcher(socket: dir + "/bus.sock", box: "e2e")
        let startedAt = Date()
        func pid(_ name: String) -> Int32? {
            (try? String(contentsOfFile: "\(dir)/run/pids/\(name).pid", encoding: .utf8)).flatMap {
                Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        func recordings(_ camera: String) throws -> Recordings {
            let r = try E2E.run(ctl, ["recordings", "--config", configPath, "--camera", camera, "--json"])
            #expect(r.status == 0, "recordings failed: \(r.stderr)")
            return try JSONDecoder().decode(Recordings.self, from: Data(r.stdout.utf8))
        }
        func export(_ camera: String, _ out: String, from: String = "-10m", to: String = "now") throws -> E2E.Output {
            try E2E.run(
                ctl, ["export", "--config", configPath, "--camera", camera, "--from", from, "--to", to, "--out", out])
        }

        // The "late" camera's worker starts while nothing answers on its port; the camera appears 5 s later.
        #expect(E2E.waitFor(10) { pid("capture-late") != nil })
        let latePID = pid("capture-late")
        try await Task.sleep(for: .seconds(5))
        let lateSim = try Child(
            "simcam-late", E2E.tool("hallwatch-simcam"),
            ["--port", "\(latePort)", "--mount", "late=\(E2E.media)/h264-bframes.mp4"], logDirectory: dir + "/logs")

        // Phase 1: record for 30 s.
        try await Task.sleep(for: .seconds(max(0, 32 - Date().timeIntervalSince(startedAt))))
        for c in clips {
            let rec = try recordings(c.camera)
            #expect(rec.totalSeconds >= 27, "\(c.camera): recorded \(rec.totalSeconds) s in 32 s")
            // Fragments of a run follow each other exactly: not one tick of gap (one frame would be 3600).
            for run in rec.runs {
                #expect(
                    run.maxFragmentGap90k <= 3600,
                    "\(c.camera): gap of \(run.maxFragmentGap90k) ticks inside run \(run.run)")
            }
            #expect(rec.runs.count == 1, "\(c.camera): \(rec.runs.count) runs for an uninterrupted camera")

            let out = "\(dir)/\(c.camera).mp4"
            let ex = try export(c.camera, out)
            #expect(ex.status == 0, "export \(c.camera): \(ex.stderr)")
            let source = try #require(try Inspect.probe("\(E2E.media)/\(c.file)", "v"))
            let video = try #require(try Inspect.probe(out, "v"))
            #expect(video.codec == c.codec && video.codec == source.codec)
            #expect(video.width == source.width && video.height == source.height)
            let gopFrames = try Inspect.keyframeSlices("\(E2E.media)/\(c.file)", hevc: c.hevc).count
            let expected = video.duration * source.fps
            let gop = Double(source.frames) / Double(max(1, gopFrames))
            #expect(
                abs(Double(video.frames) - expected) <= gop,
                "\(c.camera): \(video.frames) frames for \(video.duration) s at \(source.fps) fps")
            #expect(video.duration >= 27)
            if c.audio {
                let audio = try #require(try Inspect.probe(out, "a"), "\(c.camera): no audio track")
                #expect(audio.codec == "aac")
                #expect(abs(audio.duration - video.duration) < 1)
            } else {
                #expect(try Inspect.probe(out, "a") == nil)
            }
            #expect(try Inspect.decodeErrors(out) == 0, "\(c.camera): the export does not decode cleanly")
            // No transcoding: every recorded keyframe's slices are byte-identical to a source frame's.
            let sourceKeys = Set(try Inspect.keyframeSlices("\(E2E.media)/\(c.file)", hevc: c.hevc, allFrames: true))
            let recordedKeys = try Inspect.keyframeSlices(out, hevc: c.hevc)
            #expect(recordedKeys.count >= 5)
            #expect(
                recordedKeys.allSatisfy { k in sourceKeys.contains(k) },
                "\(c.camera): a keyframe differs from the source")
        }

        // A second worker for a camera that is already recording is refused by the recorder; the first
        // worker's run is not disturbed.
        let duplicate = try Child(
            "capture-dup", E2E.tool("hallwatch-capture"), ["--config", configPath, "--camera", "hevc"],
            logDirectory: dir + "/logs")
        try await Task.sleep(for: .seconds(5))
        duplicate.stop()
        let hevcAfterDuplicate = try recordings("hevc")
        #expect(
            hevcAfterDuplicate.runs.count == 1,
            "a duplicate worker split or overlapped the recording: \(hevcAfterDuplicate.runs.count) runs")
        #expect(hevcAfterDuplicate.gaps.allSatisfy { $0.seconds >= 0 })
        #expect(try E2E.run(ctl, ["check", "--config", configPath]).status == 0)
        let recorderLog = (try? String(contentsOfFile: dir + "/run/logs/recorder.log", encoding: .utf8)) ?? ""
        #expect(recorderLog.contains("dataplane.duplicateCamera"))

        // The late camera recorded without its worker restarting, after being seen offline first.
        let late = try recordings("late")
        #expect(late.totalSeconds >= 15, "late camera recorded \(late.totalSeconds) s")
        #expect(pid("capture-late") == latePID, "the late camera's worker was restarted")
        let lateStates = watcher.history("late").map(\.state)
        #expect(lateStates.contains(.offline) && lateStates.last == .online, "late states: \(lateStates)")
        #expect(watcher.history("late").first { $0.state == .offline }?.reason?.code.hasPrefix("rtsp.") == true)
        lateSim.stop()

        // Phase 2: kill -9 a capture worker; the supervisor restarts it and recording resumes within 3 s.
        let victim = try #require(pid("capture-aac"))
        let killedAt = SystemClocks().utcNow()
        kill(victim, SIGKILL)
        #expect(
            E2E.waitFor(5) { pid("capture-aac").map { $0 != victim } ?? false }, "the capture worker was not restarted")
        try await Task.sleep(for: .seconds(6))
        let afterKill = try recordings("aac")
        #expect(afterKill.runs.count >= 2)
        let resumed = try #require(afterKill.runs.first { $0.startMicros > killedAt.micros })
        let resumeSeconds = Double(resumed.startMicros - killedAt.micros) / 1e6
        #expect(resumeSeconds <= 3, "recording resumed \(resumeSeconds) s after the kill")
        let hole = try #require(afterKill.gaps.last)
        #expect(hole.seconds > 0 && hole.seconds <= 4, "the hole is a gap of \(hole.seconds) s")

        // Phase 3: kill -9 the recorder; after its restart every index row's bytes match their CRC.
        let recorder = try #require(pid("recorder"))
        let before = try recordings("bframes").totalSeconds
        kill(recorder, SIGKILL)
        #expect(E2E.waitFor(5) { pid("recorder").map { $0 != recorder } ?? false })
        try await Task.sleep(for: .seconds(5))
        // Level media: the CRCs, and every stored run demuxed: DTS increase, PTS unique, keyframe flags on
        // IDR/IRAP pictures, no split access units (issue 12, case 12) — on H.264, H.265, B-frames and AAC.
        let check = try E2E.run(ctl, ["check", "--config", configPath, "--level", "media"])
        #expect(check.status == 0, "check after kill -9: \(check.stdout) \(check.stderr)")
        let after = try recordings("bframes")
        #expect(after.totalSeconds > before + 2, "recording did not continue after the recorder restart")
        let ex2 = try export("bframes", "\(dir)/after-crash.mp4")
        #expect(ex2.status == 0)
        #expect(try Inspect.decodeErrors("\(dir)/after-crash.mp4") == 0)

        // Phase 4: the camera goes away for 10 s; the worker says so on the bus and reconnects by itself.
        let bframesWorker = pid("capture-bframes")
        simcam!.stop()
        simcam = nil
        let lostAt = Date()
        #expect(
            E2E.waitFor(8) { watcher.latest("bframes")?.state == .offline },
            "no offline state after the camera went away")
        let offline = watcher.latest("bframes")
        #expect(
            offline?.reason?.code.hasPrefix("rtsp.") == true, "offline reason: \(String(describing: offline?.reason))")
        try await Task.sleep(for: .seconds(max(0, 10 - Date().timeIntervalSince(lostAt))))
        simcam = try Child(
            "simcam2", E2E.tool("hallwatch-simcam"), ["--port", "\(port)"] + mounts, logDirectory: dir + "/logs")
        #expect(E2E.waitFor(15) { watcher.latest("bframes")?.state == .online }, "the worker did not come back online")
        #expect(pid("capture-bframes") == bframesWorker, "the worker was restarted instead of reconnecting")

        supervisor.stop()
        simcam?.stop()
        let final = try E2E.run(ctl, ["check", "--config", configPath, "--level", "crc"])
        #expect(final.status == 0, "final check: \(final.stdout)")
    }
}
