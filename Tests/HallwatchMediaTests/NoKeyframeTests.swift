import Foundation
import HallwatchCore
import Logging
import Synchronization
import Testing

@testable import HallwatchMedia

/// README § "What the capture worker repairs": frames that never include a keyframe end the session with
/// `media.noKeyframe` after 30 s (a reconnect usually starts with an IDR), never a silent `connecting`.
/// The session runs on clocks ten times faster than real time, so its 30 s pass in 3 s.
@Suite("A camera that never sends a keyframe", .serialized)
struct NoKeyframeTests {
    /// Real time, monotonic time ×10 (the wall clock too, so no clock step is seen).
    struct FastClocks: Clocks {
        let origin = SystemClocks().monotonicNanos()
        let utcOrigin = SystemClocks().utcNow()
        func monotonicNanos() -> UInt64 { origin + (SystemClocks().monotonicNanos() - origin) * 10 }
        func utcNow() -> UTCMicros { utcOrigin.adding(micros: Int64((monotonicNanos() - origin) / 1000)) }
    }

    @Test func predictedFramesAloneEndTheSessionAfter30s() throws {
        let units = try RTSPClientTests.encodedClip()  // 10 fps, IDR at frames 0 and 10
        let pFrames = units.enumerated().filter { $0.offset % 10 != 0 }.map(\.element)
        let server = try RTSPHostileCameraTests.camera()
        let stopped = Atomic<Bool>(false)
        server.afterPlay = { fd in
            var seq: UInt16 = 1
            // Up to 6 s of P pictures, 25 per second, until the client goes away.
            for i in 0..<150 where !stopped.load(ordering: .relaxed) {
                let frame = RTPBuilder.interleavedUnit(pFrames[i % pFrames.count], seq: &seq, ts: UInt32(i) * 3600)
                if frame.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) < 0 {
                    break
                }
                usleep(40_000)
            }
        }
        defer {
            stopped.store(true, ordering: .relaxed)
            server.stop()
        }
        let session = CaptureSession(
            camera: CameraID("nokey")!, source: RTSPSourceOptions(url: server.url, ioTimeout: .seconds(50)),
            policy: FragmentPolicy(), clocks: FastClocks(), logger: Logger(label: "test"))
        let sink = CollectingSink()
        let started = Date()
        let ended = #expect(throws: MediaError.self) { try session.run(stop: StopFlag(), sink: sink) { _ in } }
        let took = Date().timeIntervalSince(started)
        #expect(ended?.code == "media.noKeyframe", "\(String(describing: ended))")
        #expect(ended?.message.contains("30 s") == true)
        // 30 s of the session's clock: 3 s of real time, give or take the handshake.
        #expect(took >= 2.9 && took < 5, "ended after \(took) s")
        #expect(sink.frames.isEmpty)
    }
}
