import Foundation
import HallwatchCore
import Logging
import Testing

@testable import HallwatchMedia

/// Issue 12, case 2: after a reconnect an old live555 plays while still sending the previous session's RTP
/// (its SSRC, sequence numbers and timestamps continued) one for one with the new session's packets. The
/// scripted camera does that for the whole 2 s clip. Before: every FU-A broke and nothing was recorded
/// until the old packets stopped.
@Suite("RTP of another SSRC on the session", .serialized)
struct ForeignSSRCTests {
    /// The clip as interleaved RTP: this session's packets (SSRC 0xDEADBEEF, seq from 100) one for one with
    /// a previous session's (SSRC 0x01020304, seq from 40 000, other timestamps), the old one first.
    static func mixedStream() throws -> (bytes: [UInt8], old: Int) {
        let units = try RTSPClientTests.encodedClip()
        func packets(firstSeq: UInt16, firstTS: UInt32, ssrc: [UInt8]) -> [[UInt8]] {
            var out: [[UInt8]] = []
            var seq = firstSeq
            for (i, unit) in units.enumerated() {
                for (j, nal) in unit.enumerated() {
                    let pieces = RTPBuilder.h264(nal)
                    for (k, piece) in pieces.enumerated() {
                        var p = RTPBuilder.packet(
                            seq: seq, ts: firstTS + UInt32(i) * 9000,
                            marker: j == unit.count - 1 && k == pieces.count - 1, payload: piece)
                        p.replaceSubrange(8..<12, with: ssrc)
                        out.append(p)
                        seq &+= 1
                    }
                }
            }
            return out
        }
        let ours = packets(firstSeq: 100, firstTS: 5_000_000, ssrc: [0xDE, 0xAD, 0xBE, 0xEF])
        let old = packets(firstSeq: 40_000, firstTS: 77_000_000, ssrc: [1, 2, 3, 4])
        var bytes: [UInt8] = []
        for i in 0..<max(ours.count, old.count) {
            if i < old.count { bytes += RTPBuilder.interleaved(0, old[i]) }
            if i < ours.count { bytes += RTPBuilder.interleaved(0, ours[i]) }
        }
        return (bytes, old.count)
    }

    @Test(arguments: ["ssrc in SETUP", "RTP-Info seq"])
    func thisSessionsPacketsAreRecordedAndTheOthersCounted(howKnown: String) throws {
        let (rtp, old) = try Self.mixedStream()
        let setup =
            "Transport: RTP/AVP/TCP;unicast;interleaved=0-1" + (howKnown == "ssrc in SETUP" ? ";ssrc=DEADBEEF" : "")
            + "\r\nSession: 7\r\n"
        let rtpInfo =
            howKnown == "RTP-Info seq" ? "RTP-Info: url=rtsp://127.0.0.1/stream/track1;seq=100;rtptime=5000000\r\n" : ""
        let server = try RTSPHostileCameraTests.camera(
            setup: setup,
            play: { cseq in
                Array("RTSP/1.0 200 OK\r\nCSeq: \(cseq)\r\nSession: 7\r\n\(rtpInfo)\r\n".utf8) + rtp
            })
        let session = CaptureSession(
            camera: CameraID("live555")!, source: RTSPSourceOptions(url: server.url, ioTimeout: .seconds(2)),
            policy: FragmentPolicy(), clocks: SystemClocks(), logger: Logger(label: "test"))
        let sink = CollectingSink()
        let ended = #expect(throws: MediaError.self) { try session.run(stop: StopFlag(), sink: sink) { _ in } }
        #expect(ended?.code == "rtsp.timeout", "\(String(describing: ended))")
        server.stop()
        // Every frame of this session, from its first keyframe: 2 s in two keyframe fragments, one run.
        let fragments = sink.frames.filter { $0.meta.kind == .fragment }
        #expect(sink.frames.filter { $0.meta.kind == .initSegment }.count == 1)
        #expect(fragments.map(\.meta.duration90k) == [90_000, 90_000], "\(howKnown)")
        #expect(fragments.allSatisfy { $0.meta.keyframe })
        // The previous session's packets are dropped and counted, all of them.
        #expect(session.packetsOtherSSRC == old, "\(howKnown): \(session.packetsOtherSSRC) of \(old)")
        print(
            "foreign SSRC (\(howKnown)): \(fragments.count) fragments, \(Double(fragments.reduce(0) { $0 + Int($1.meta.duration90k) }) / 90_000) s, \(session.packetsOtherSSRC) of \(old) old packets dropped"
        )
    }
}
