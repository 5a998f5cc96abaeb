import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchMedia
import Logging
import Synchronization

/// One capture session run against a real RTSP server (the simulated camera) for a while, then stopped:
/// what the capture-path end-to-end tests inspect.
struct CaptureRun {
    /// Segments as the session delivered them, in order.
    final class Collector: FragmentSink, @unchecked Sendable {
        let frames = Mutex<[MediaSegment]>([])
        func deliver(_ frame: MediaSegment) { frames.withLock { $0.append(frame) } }
    }

    /// Every segment delivered (init segments and fragments).
    var segments: [MediaSegment]
    /// The error the session ended with, if any.
    var error: String?
    /// The last status it published.
    var status: CaptureStatus?
    /// The transport it connected with.
    var usedTransport: CameraConfig.Transport?
    /// Wall time from start to stop, seconds.
    var elapsed: Double

    /// Media seconds of the fragments.
    var recordedSeconds: Double {
        Double(segments.filter { $0.meta.kind == .fragment }.reduce(0) { $0 + $1.meta.duration90k }) / 90_000
    }
    /// Each run's bytes: its init segment, then its fragments.
    var runs: [[UInt8]] {
        var out: [[UInt8]] = []
        for f in segments {
            if f.meta.kind == .initSegment {
                out.append(f.payload)
            } else if !out.isEmpty {
                out[out.count - 1] += f.payload
            }
        }
        return out
    }

    /// Runs a session against `url` over `transport` on its own thread for `seconds`, then stops it (and
    /// waits up to 10 s for it to return).
    static func record(url: String, transport: CameraConfig.Transport, seconds: Double) async throws -> CaptureRun {
        let sink = Collector()
        let stop = StopFlag()
        let outcome = Mutex<(error: String?, status: CaptureStatus?, used: CameraConfig.Transport?)>((nil, nil, nil))
        let thread = Thread {
            let session = CaptureSession(
                camera: CameraID("cam")!,
                source: RTSPSourceOptions(url: url, transport: transport, ioTimeout: .seconds(5)),
                policy: FragmentPolicy(), clocks: SystemClocks(), logger: Logger(label: "capture-run"))
            do { try session.run(stop: stop, sink: sink) { s in outcome.withLock { $0.status = s } } } catch {
                outcome.withLock { $0.error = "\(error)" }
            }
            outcome.withLock { $0.used = session.usedTransport }
        }
        thread.start()
        let started = Date()
        try await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
        stop.stop()
        _ = E2E.waitFor(10) { thread.isFinished }
        let elapsed = Date().timeIntervalSince(started)
        let (error, status, used) = outcome.withLock { $0 }
        return CaptureRun(
            segments: sink.frames.withLock { $0 }, error: thread.isFinished ? error : "the session did not stop",
            status: status, usedTransport: used, elapsed: elapsed)
    }
}
