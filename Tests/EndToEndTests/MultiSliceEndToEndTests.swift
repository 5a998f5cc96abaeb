import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchMedia
import Logging
import Synchronization
import Testing

/// Issue 12, case 6, against a real RTSP server: the simulated camera (gst-rtsp-server, `rtph264pay
/// config-interval=-1`, which sends SPS/PPS before every IDR slice) serving a clip whose every picture is 6
/// slices (`x264 slices=6`), read over UDP by libavformat and over TCP by Hallwatch's client. Before (UDP):
/// 383 samples instead of 378, 18 "keyframes" instead of 12, duplicate PTS, fragments starting on half a
/// keyframe. Checked with `MediaCheck`, which reads the samples as stored.
@Suite("Multi-slice pictures from a real RTSP server", .serialized)
struct MultiSliceEndToEndTests {
    final class Collector: FragmentSink, @unchecked Sendable {
        let frames = Mutex<[MediaSegment]>([])
        func deliver(_ frame: MediaSegment) { frames.withLock { $0.append(frame) } }
    }

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

        let sink = Collector()
        let stop = StopFlag()
        let failure = Mutex<String?>(nil)
        let thread = Thread {
            let session = CaptureSession(
                camera: CameraID("cam")!,
                source: RTSPSourceOptions(
                    url: "rtsp://127.0.0.1:\(port)/cam", transport: transport, ioTimeout: .seconds(5)),
                policy: FragmentPolicy(), clocks: SystemClocks(), logger: Logger(label: "slices-test"))
            do { try session.run(stop: stop, sink: sink) { _ in } } catch { failure.withLock { $0 = "\(error)" } }
        }
        thread.start()
        try await Task.sleep(for: .seconds(6))
        stop.stop()
        #expect(E2E.waitFor(10) { thread.isFinished })
        #expect(failure.withLock { $0 } == nil)

        var runs: [[UInt8]] = []
        var keyFragments = 0
        for f in sink.frames.withLock({ $0 }) {
            if f.meta.kind == .initSegment {
                runs.append(f.payload)
            } else if !runs.isEmpty {
                runs[runs.count - 1] += f.payload
                if f.meta.keyframe { keyFragments += 1 }
            }
        }
        #expect(runs.count == 1)
        var samples = 0
        var problems: [String] = []
        for bytes in runs {
            let report = try MediaCheck.check(run: MemoryByteSource(bytes))
            samples += report.samples
            problems += report.problems
        }
        let recorded =
            Double(
                sink.frames.withLock { $0.filter { $0.meta.kind == .fragment } }.reduce(0) { $0 + $1.meta.duration90k })
            / 90_000
        #expect(problems.isEmpty, "\(transport): \(problems)")
        // One sample per picture at 25 fps (GOP of 1 s: one keyframe fragment per second).
        #expect(abs(Double(samples) - recorded * 25) <= 1, "\(transport): \(samples) samples for \(recorded) s")
        #expect(abs(Double(keyFragments) - recorded) <= 1.5, "\(transport): \(keyFragments) keyframe fragments")
        print(
            "multi-slice, \(transport): \(samples) samples, \(keyFragments) keyframe fragments in \(String(format: "%.2f", recorded)) s, \(problems.count) problems"
        )
    }
}
