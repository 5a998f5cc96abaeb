import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchMedia
import Logging

/// `hallwatchctl probe`: records a camera for a few seconds through the real capture path, without a
/// recorder, and describes what it sends — what an installer needs before adding it to the config.
public enum CameraProbe {
    final class MemorySink: FragmentSink {
        var frames: [MediaSegment] = []
        func deliver(_ frame: MediaSegment) { frames.append(frame) }
    }

    /// The session and what it produced; touched by the capture thread only until `run` returns.
    final class ProbeJob: @unchecked Sendable {
        let session: CaptureSession
        let sink = MemorySink()
        init(session: CaptureSession) { self.session = session }
        func run(stop: StopFlag) -> Result<CaptureStatus?, any Error> {
            var status: CaptureStatus?
            do {
                try session.run(stop: stop, sink: sink) { status = $0 }
                return .success(status)
            } catch { return .failure(error) }
        }
    }

    /// - Throws: ``MediaError`` when the camera cannot be recorded.
    public static func run(
        url: String, username: String?, password: String?, transport: CameraConfig.Transport,
        audio: Bool, seconds: Double, exportTo: String?, clocks: any Clocks = SystemClocks(), logger: Logger
    ) async throws -> String {
        let job = ProbeJob(
            session: CaptureSession(
                camera: CameraID("probe")!,
                source: RTSPSourceOptions(
                    url: url, username: username, password: password, transport: transport, audio: audio),
                policy: FragmentPolicy(), clocks: clocks, logger: logger))
        let stop = StopFlag()
        let result: Result<CaptureStatus?, any Error> = await withCheckedContinuation { done in
            let t = Thread { done.resume(returning: job.run(stop: stop)) }
            t.start()
            Task {
                try? await clocks.sleep(for: .milliseconds(Int64(seconds * 1000)))
                stop.stop()
            }
        }
        let sink = job.sink
        let final = try result.get()
        let fragments = sink.frames.filter { $0.meta.kind == .fragment }
        let runs = sink.frames.filter { $0.meta.kind == .initSegment }.count
        let media = Double(fragments.reduce(0) { $0 + Int64($1.meta.duration90k) }) / 90_000
        let bytes = fragments.reduce(0) { $0 + $1.payload.count }
        var lines = ["camera: \(url)"]
        if let s = final {
            lines.append("video: \(s.codec) \(s.width)x\(s.height), \(String(format: "%.2f", s.fps)) fps measured")
            lines.append("audio: \(s.audioCodec ?? "none recorded")")
            lines.append(
                "repairs: \(s.missingStamped) missing timestamps, \(s.outliersRestamped) outliers re-stamped, \(s.joinedUnits) split access units joined"
            )
        }
        lines.append(
            "recorded: \(String(format: "%.2f", media)) s in \(fragments.count) fragments over \(runs) run(s), \(bytes) bytes (\(String(format: "%.2f", media > 0 ? Double(bytes * 8) / media / 1e6 : 0)) Mbit/s)"
        )
        lines.append("keyframe fragments: \(fragments.filter(\.meta.keyframe).count)")
        if let out = exportTo {
            // A probe's few seconds are in memory anyway: one byte source per run (init segment + fragments).
            var runsOut: [(bytes: [UInt8], fragments: Int)] = []
            for f in sink.frames {
                if f.meta.kind == .initSegment {
                    runsOut.append((f.payload, 0))
                } else if !runsOut.isEmpty {
                    runsOut[runsOut.count - 1].bytes += f.payload
                    runsOut[runsOut.count - 1].fragments += 1
                }
            }
            let summary = try Exporter.write(
                runsOut.filter { $0.fragments > 0 }.map { MemoryByteSource($0.bytes) }, to: out)
            lines.append(
                "wrote: \(summary.files.joined(separator: ", ")) (\(summary.videoFrames) frames, \(summary.bytes) bytes)"
            )
        }
        return lines.joined(separator: "\n")
    }
}
