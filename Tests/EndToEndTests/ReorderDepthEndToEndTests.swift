import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchMedia
import Testing

/// Issue 12, case 3, on both capture paths: the simulated camera serves the issue's reproduction
/// (`h264-bframes.mp4` cut with `ffmpeg -ss 1.2 -c copy`, so every loop starts on a GOP of reorder depth 1
/// followed by depth 2), read once by Hallwatch's own TCP client and once by libavformat over UDP. Before:
/// the TCP session ended with `media.mux` (`pts (18000) < dts (18001)`) within 0.9 s, nothing recorded.
@Suite("Reorder depth growing mid-run, TCP and UDP", .serialized)
struct ReorderDepthEndToEndTests {
    @Test(arguments: [CameraConfig.Transport.tcp, .udp])
    func everyFrameRecordedWithUniquePTS(transport: CameraConfig.Transport) async throws {
        try E2E.ensureClips()
        let dir = "/tmp/hw-reorder-\(getpid())-\(transport.rawValue)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        defer {
            if ProcessInfo.processInfo.environment["HALLWATCH_KEEP_E2E"] == nil {
                try? FileManager.default.removeItem(atPath: dir)
            }
        }
        let cut = dir + "/bf-k30.mp4"
        let ff = try E2E.run(
            "/usr/bin/ffmpeg",
            ["-nostdin", "-v", "error", "-y", "-ss", "1.2", "-i", E2E.media + "/h264-bframes.mp4", "-c", "copy", cut])
        #expect(ff.status == 0, "\(ff.stderr)")
        let port = E2E.freePort()
        let simcam = try Child(
            "simcam", E2E.tool("hallwatch-simcam"), ["--port", "\(port)", "--mount", "bf=\(cut)"],
            logDirectory: dir + "/logs")
        defer { simcam.stop() }
        #expect(E2E.waitFor(15) { simcam.log.contains("simcam ready") })

        // 12 s: more than one loop of the 8.8 s clip.
        let run = try await CaptureRun.record(url: "rtsp://127.0.0.1:\(port)/bf", transport: transport, seconds: 12)
        #expect(run.error == nil, "the session ended with \(run.error ?? "")")
        #expect(run.status?.samplesRefused == 0)
        let recorded = run.recordedSeconds
        let elapsed = run.elapsed
        // All but the connect, the first look-ahead window and the fragment open at the stop.
        #expect(recorded >= elapsed - 2.5, "\(transport): \(recorded) s recorded in \(elapsed) s")

        // Each run exported and read back: PTS unique, DTS strictly increasing and never after PTS.
        let runs = run.runs
        var samples = 0
        for (i, bytes) in runs.enumerated() {
            let out = dir + "/run\(i).mp4"
            _ = try Exporter.write([MemoryByteSource(bytes)], to: out)
            let track = try VideoTrackFile.read(path: out)
            let pts = track.samples.map(\.pts90k)
            let dts = track.samples.map(\.dts90k)
            #expect(Set(pts).count == pts.count, "\(transport) run \(i): duplicate PTS")
            #expect(zip(dts, pts).allSatisfy { $0 <= $1 }, "\(transport) run \(i): DTS after PTS")
            #expect(zip(dts, dts.dropFirst()).allSatisfy { $0 < $1 })
            samples += track.samples.count
        }
        // 25 fps; the simcam's loop boundary leaves a hole of up to two frame times in the timeline (0.08 s seen).
        #expect(Double(samples) >= (recorded - 0.1) * 25, "\(transport): \(samples) frames for \(recorded) s at 25 fps")
        print(
            "reorder depth, \(transport): \(String(format: "%.2f", recorded)) s recorded in \(String(format: "%.2f", elapsed)) s, \(runs.count) run(s), \(samples) frames"
        )
    }
}
