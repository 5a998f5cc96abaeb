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
        /// The last status the session gave, and the error it ended with (`nil`: stopped or a clean end).
        func run(stop: StopFlag) -> (status: CaptureStatus?, error: (any Error)?) {
            var status: CaptureStatus?
            do {
                try session.run(stop: stop, sink: sink) { status = $0 }
                return (status, nil)
            } catch { return (status, error) }
        }
    }

    /// A session that recorded something and then failed (a camera resetting the connection mid-stream):
    /// the report of what was recorded — written to the MP4 when one was asked for — and the error.
    public struct Failure: Error, CustomStringConvertible {
        /// The probe's report, its last line naming the error.
        public var report: String
        /// What ended the session: usually a ``MediaError``.
        public var cause: any Error
        public var description: String { "\(cause)" }
    }

    /// - Throws: ``MediaError`` when the camera cannot be recorded at all; ``Failure`` when the session failed
    ///   after recording (what was recorded is reported and written first, as `ffmpeg` keeps it too).
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
        let (final, failure) = await withCheckedContinuation {
            (done: CheckedContinuation<(CaptureStatus?, (any Error)?), Never>) in
            let t = Thread { done.resume(returning: job.run(stop: stop)) }
            t.start()
            Task {
                try? await clocks.sleep(for: .milliseconds(Int64(seconds * 1000)))
                stop.stop()
            }
        }
        let sink = job.sink
        let fragments = sink.frames.filter { $0.meta.kind == .fragment }
        if let failure, fragments.isEmpty { throw failure }
        // A camera that talks but yields no frame (an access unit that never ends, oversized frames) is a
        // failure too, not "recorded: 0.00 s" with exit 0 (a fresh user's report).
        if fragments.isEmpty {
            throw MediaError(
                "rtsp.noFrames",
                "nothing was recorded in \(String(format: "%.1f", seconds)) s: no complete video frame with a keyframe arrived"
            )
        }
        let runs = sink.frames.filter { $0.meta.kind == .initSegment }.count
        let media = Double(fragments.reduce(0) { $0 + Int64($1.meta.duration90k) }) / 90_000
        let bytes = fragments.reduce(0) { $0 + $1.payload.count }
        var lines = ["camera: \(url)"]
        // The session's final counts (the status it last published can be seconds old).
        if let s = job.session.finalStatus ?? final {
            // Frames per second as they arrived; the timestamps' rate beside it when the two disagree (case 9).
            let rates =
                abs(s.fps - s.timestampFPS) > max(0.5, s.timestampFPS * 0.05)
                ? "\(String(format: "%.2f", s.fps)) fps arriving, but timestamps say \(String(format: "%.2f", s.timestampFPS)) fps"
                : "\(String(format: "%.2f", s.fps)) fps measured"
            lines.append("video: \(s.codec) \(s.width)x\(s.height), \(rates)")
            lines.append("transport: \(s.transport)\(transport == .auto ? " (auto)" : "")")
            lines.append("audio: \(s.audioCodec ?? "none recorded")")
            lines.append(
                "repairs: \(s.missingStamped) missing timestamps, \(s.outliersRestamped) outliers re-stamped, \(s.joinedUnits) split access units joined"
            )
            if s.clockReanchors > 0 {
                lines.append(
                    "camera clock: wrong — its timestamps run slower than real time; re-anchored \(s.clockReanchors) time(s) (a new run each)"
                )
            }
        }
        lines.append(
            "recorded: \(String(format: "%.2f", media)) s in \(fragments.count) fragments over \(runs) run(s), \(bytes) bytes (\(String(format: "%.2f", media > 0 ? Double(bytes * 8) / media / 1e6 : 0)) Mbit/s)"
        )
        lines.append("keyframe fragments: \(fragments.filter(\.meta.keyframe).count)")
        if job.session.packetsOtherSSRC > 0 {
            lines.append(
                "dropped: \(job.session.packetsOtherSSRC) RTP packets of another SSRC than this session's (a previous session's still arriving?)"
            )
        }
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
        if let failure {
            lines.append("error: \(failure)")
            throw Failure(report: lines.joined(separator: "\n"), cause: failure)
        }
        return lines.joined(separator: "\n")
    }
}
