import CFFmpeg
import HallwatchCore
import Logging
import Testing

@testable import HallwatchMedia

/// Issue 12, case 8: a camera that sends its 2 s pre-event buffer on PLAY (20 frames at 10 fps within the
/// first 100 ms), then real time. Driven through the remuxer (timeline, muxer, run wall clock) with the
/// arrival times the test chooses. Before: the run started at PLAY instead of 2 s earlier and the first
/// fragments were stamped within a few ms of each other (media squeezed into less UTC than it lasted).
@Suite("A burst of buffered frames on PLAY")
struct PlayBurstTests {
    @Test func fragmentsArePlacedAtTheirSendTimesAndNeverOverlap() throws {
        let units = try RTSPClientTests.encodedClip()  // 2 s at 10 fps, an IDR every 10 frames
        let sink = CollectingSink()
        let remuxer = try Remuxer(
            source: MuxerRefusalTests.DescribedSource(), camera: CameraID("burst")!, policy: FragmentPolicy(),
            sink: sink, logger: Logger(label: "test"))
        let play: Int64 = 1_800_000_000_000_000  // box UTC µs of the PLAY reply
        let frames = 260  // 26 s of media
        for k in 0..<frames {
            let sent = play - 2_000_000 + Int64(k) * 100_000  // the camera captured frame k then
            let arrival = k < 20 ? play + Int64(k) * 5_000 : sent + 5_000
            let p = MuxerRefusalTests.packet(units[k % 20], key: k % 10 == 0)
            p.p.pointee.pts = 900_000 + Int64(k) * 9000
            try remuxer.video(p, arrival: UTCMicros(arrival))
        }
        remuxer.finish()
        let fragments = sink.frames.filter { $0.meta.kind == .fragment }
        #expect(fragments.count == 26)
        #expect(Set(sink.frames.map(\.meta.run)).count == 1)
        // Each fragment at the send time of its first frame (5 ms network delay), the first 2 s before PLAY.
        for f in fragments {
            let sent = play - 2_000_000 + f.meta.start90k.ticks * 100 / 9
            #expect(
                abs(f.meta.utc.micros - sent) <= 10_000,
                "fragment \(f.meta.sequence) at \(Double(f.meta.utc.micros - sent) / 1e3) ms from its send time")
        }
        // Never overlapping: each fragment starts where the previous one ended (1 µs of rounding).
        for (a, b) in zip(fragments, fragments.dropFirst()) {
            #expect(
                b.meta.utc.micros >= a.meta.utc.micros + Int64(a.meta.duration90k) * 100 / 9 - 1,
                "fragment \(b.meta.sequence) starts \(Double(a.meta.utc.micros + Int64(a.meta.duration90k) * 100 / 9 - b.meta.utc.micros) / 1e3) ms before \(a.meta.sequence) ends"
            )
        }
        let span =
            Double(
                fragments.last!.meta.utc.micros + Int64(fragments.last!.meta.duration90k) * 100 / 9
                    - fragments[0].meta.utc.micros) / 1e6
        let media = Double(fragments.reduce(0) { $0 + Int64($1.meta.duration90k) }) / 90_000
        print(
            "PLAY burst: \(media) s of media in \(String(format: "%.3f", span)) s of UTC, first fragment \(String(format: "%.3f", Double(fragments[0].meta.utc.micros - play) / 1e6)) s from PLAY"
        )
        #expect(abs(span - media) < 0.01)
    }
}
