import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchMedia
import Testing

/// Issue 12, case 6, against a real RTSP server: the simulated camera (gst-rtsp-server, `rtph264pay
/// config-interval=-1`, which sends SPS/PPS before every IDR slice) serving a clip whose every picture is 6
/// slices (`x264 slices=6`), read over UDP by libavformat and over TCP by Hallwatch's client. Before (UDP):
/// 383 samples instead of 378, 18 "keyframes" instead of 12, duplicate PTS, fragments starting on half a
/// keyframe. Checked with `MediaCheck`, which reads the samples as stored.
@Suite("Multi-slice pictures from a real RTSP server", .serialized)
struct MultiSliceEndToEndTests {
    @Test(arguments: [CameraConfig.Transport.udp, .tcp])
    func everyPictureIsOneSample(transport: CameraConfig.Transport) async throws {
        try E2E.ensureClips()
        let dir = "/tmp/hw-slices-\(getpid())-\(transport.rawValue)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clip = dir + "/slices.mp4"
        let ff = try E2E.run(
            "/usr/bin/ffmpeg",
            [
                "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=1280x720:rate=25", "-t", "10",
                "-c:v", "libx264", "-x264-params", "slices=6", "-g", "25", "-bf", "0", "-pix_fmt", "yuv420p", clip,
            ])
        #expect(ff.status == 0, "\(ff.stderr)")
        let port = E2E.freePort()
        let simcam = try Child(
            "simcam", E2E.tool("hallwatch-simcam"), ["--port", "\(port)", "--mount", "cam=\(clip)"],
            logDirectory: dir + "/logs")
        defer { simcam.stop() }
        #expect(E2E.waitFor(15) { simcam.log.contains("simcam ready") })

        let run = try await CaptureRun.record(url: "rtsp://127.0.0.1:\(port)/cam", transport: transport, seconds: 6)
        #expect(run.error == nil)
        let runs = run.runs
        let keyFragments = run.segments.filter { $0.meta.kind == .fragment && $0.meta.keyframe }.count
        #expect(runs.count == 1)
        var samples = 0
        var problems: [String] = []
        for bytes in runs {
            let report = try MediaCheck.check(run: MemoryByteSource(bytes))
            samples += report.samples
            problems += report.problems
        }
        let recorded = run.recordedSeconds
        #expect(problems.isEmpty, "\(transport): \(problems)")
        // One sample per picture at 25 fps (GOP of 1 s: one keyframe fragment per second).
        #expect(abs(Double(samples) - recorded * 25) <= 1, "\(transport): \(samples) samples for \(recorded) s")
        #expect(abs(Double(keyFragments) - recorded) <= 1.5, "\(transport): \(keyFragments) keyframe fragments")
        print(
            "multi-slice, \(transport): \(samples) samples, \(keyFragments) keyframe fragments in \(String(format: "%.2f", recorded)) s, \(problems.count) problems"
        )
    }
}
