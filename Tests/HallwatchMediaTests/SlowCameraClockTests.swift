import HallwatchCore
import Logging
import Testing

@testable import HallwatchMedia

/// Issue 12, case 9: a frame rate that lies by much — timestamps step as at 10 fps, frames arrive at 8.4 per
/// second (16 % slow), for 70 s of box time — through the remuxer. Before: recorded time fell behind the
/// box's clock without bound (the wall clock slews at most 500 ppm): 10.75 s after 60 s at 25/21 fps.
@Suite("A camera clock far slower than it says")
struct SlowCameraClockTests {
    @Test func theRunIsReanchoredWhenItFallsASecondBehind() throws {
        let units = try RTSPClientTests.encodedClip()  // 10 fps, an IDR every 10 frames
        let sink = CollectingSink()
        let remuxer = try Remuxer(
            source: MuxerRefusalTests.DescribedSource(), camera: CameraID("slow")!, policy: FragmentPolicy(),
            sink: sink, logger: Logger(label: "test"))
        let t0: Int64 = 1_800_000_000_000_000
        let frames = 588  // 70 s of arrivals at 8.4 frames per second
        var arrivalOf: [Int64] = []
        for k in 0..<frames {
            let arrival = t0 + Int64((Double(k) / 8.4 * 1e6).rounded()) + 5_000
            arrivalOf.append(arrival)
            let p = MuxerRefusalTests.packet(units[k % 20], key: k % 10 == 0)
            p.p.pointee.pts = Int64(k) * 9000
            try remuxer.video(p, arrival: UTCMicros(arrival))
        }
        remuxer.finish()
        let fragments = sink.frames.filter { $0.meta.kind == .fragment }
        // Each fragment's box time against the arrival of its first frame: never more than ~1 s behind.
        var worst = 0.0
        var runStartFrame: [UInt64: Int] = [:]
        var framesBefore = 0
        for f in fragments {
            if runStartFrame[f.meta.run] == nil { runStartFrame[f.meta.run] = framesBefore }
            let k = runStartFrame[f.meta.run]! + Int(f.meta.start90k.ticks / 9000)
            worst = max(worst, Double(arrivalOf[k] - f.meta.utc.micros) / 1e6)
            framesBefore += Int(f.meta.duration90k / 9000)
        }
        let runs = Set(fragments.map(\.meta.run)).count
        print(
            "slow camera clock: \(runs) runs, worst \(String(format: "%.2f", worst)) s behind the arrivals, \(remuxer.status.clockReanchors) re-anchors"
        )
        #expect(worst <= 1.5, "fell \(worst) s behind")
        #expect(remuxer.status.clockReanchors >= 5 && runs == remuxer.status.clockReanchors + 1)
        // Nothing dropped: every frame is in a fragment.
        #expect(framesBefore == frames)
        // The status says both rates: frames arriving at 8.4 per second, timestamps of 10 fps. Before: "10.0 fps".
        remuxer.measureArrivalRate()
        let status = remuxer.currentStatus()
        #expect(abs(status.fps - 8.4) < 0.05, "\(status.fps) fps measured from arrivals")
        #expect(status.timestampFPS == 10)
    }
}
