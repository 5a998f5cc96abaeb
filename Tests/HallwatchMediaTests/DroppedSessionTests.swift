import Foundation
import HallwatchCore
import Logging
import Testing

@testable import HallwatchMedia

/// Issue 12, case 11: what a session that played for 2 s and was then reset by the camera reports. Before:
/// typed `rtsp.connect` ("cannot connect") though the camera was reachable, and a bitrate of 0 b/s since
/// the first measurement came after 5 s.
@Suite("A session dropped mid-stream", .serialized)
struct DroppedSessionTests {
    @Test func typedDroppedWithABitrateAndFinalCounts() throws {
        let units = try RTSPClientTests.encodedClip()  // 2 s at 10 fps
        let server = try RTSPHostileCameraTests.camera()
        server.afterPlay = { fd in
            var seq: UInt16 = 1
            for (i, unit) in units.enumerated() {
                let frame = RTPBuilder.interleavedUnit(unit, seq: &seq, ts: UInt32(i) * 9000)
                _ = frame.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                usleep(100_000)
            }
            // Reset: SO_LINGER 0, then the socket's last descriptor replaced by /dev/null (the server closes that).
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            let null = open("/dev/null", O_RDONLY)
            dup2(null, fd)
            close(null)
        }
        let session = CaptureSession(
            camera: CameraID("dropped")!, source: RTSPSourceOptions(url: server.url, ioTimeout: .seconds(3)),
            policy: FragmentPolicy(), clocks: SystemClocks(), logger: Logger(label: "test"))
        let sink = CollectingSink()
        var statuses: [CaptureStatus] = []
        let ended = #expect(throws: MediaError.self) {
            try session.run(stop: StopFlag(), sink: sink) { statuses.append($0) }
        }
        server.stop()
        #expect(ended?.code == "rtsp.dropped", "\(String(describing: ended))")
        // A bitrate within the 2 s session (the clip is about 20 kB/s).
        let bitrate = statuses.last?.bitrateBps ?? 0
        #expect(bitrate > 10_000, "\(statuses.map(\.bitrateBps))")
        // Final counts, up to the last frame.
        #expect(session.finalStatus?.outliersRestamped == 0 && session.finalStatus?.missingStamped == 0)
        print("dropped session: \(ended?.code ?? "-"), bitrate \(bitrate) b/s after \(statuses.count) status(es)")
    }
}
