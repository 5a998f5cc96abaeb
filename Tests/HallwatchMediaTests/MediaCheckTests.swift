import HallwatchCore
import Logging
import Testing

@testable import HallwatchMedia

/// Issue 12, case 12: `check --level media` reads stored runs as a player meets them, without decoding.
/// Before: `hallwatchctl check` compared bytes with the index only, so a run with duplicate PTS, DTS after
/// PTS, or keyframe flags on half a keyframe passed.
@Suite("Media check of a stored run")
struct MediaCheckTests {
    /// Runs 20 frames (10 fps, an IDR every 10) through the remuxer's sample step as `shape` hands them over
    /// (bypassing the timeline's repairs) and returns the run's bytes: init segment, then fragments.
    static func run(_ shape: (Int, inout [[UInt8]], inout Int64, inout Bool) -> Void) throws -> [UInt8] {
        let units = try RTSPClientTests.encodedClip()
        let source = MuxerRefusalTests.DescribedSource()
        let sink = CollectingSink()
        let remuxer = try Remuxer(
            source: source, camera: CameraID("checked")!, policy: FragmentPolicy(), sink: sink,
            logger: Logger(label: "test"))
        let ps = ParameterSets(codec: .h264, par: source.videoParameters)
        var previousPTS: Int64 = 0
        for (i, original) in units.enumerated() {
            var unit = original
            let t = Int64(i) * 9000
            var pts = t + 9000  // a reorder delay of one frame, as with B-frames
            var key = i % 10 == 0
            shape(i, &unit, &pts, &key)
            if pts == -1 { pts = previousPTS }
            previousPTS = pts
            let p = MuxerRefusalTests.packet(unit, key: key)
            let s = VideoTimeline<Remuxer.Unit>.Sample(
                dts90k: t, pts90k: pts, duration90k: 9000, keyframe: key,
                payload: Remuxer.Unit(
                    packet: p, arrival: UTCMicros(1_000_000 + t * 100 / 9),
                    parameterSets: i % 10 == 0 ? ps.extract(from: p) : nil))
            try remuxer.handle([.sample(s)])
        }
        remuxer.finish()
        #expect(sink.frames.filter { $0.meta.kind == .initSegment }.count == 1)
        return sink.frames.flatMap(\.payload)
    }

    @Test func aSoundRunHasNoProblems() throws {
        let report = try MediaCheck.check(run: MemoryByteSource(Self.run { _, _, _, _ in }))
        #expect(report.samples == 20)
        #expect(report.problemCount == 0, "\(report.problems)")
    }

    @Test func duplicatePTSWrongKeyframeFlagsAndASplitPictureAreEachNamed() throws {
        let bytes = try Self.run { i, unit, pts, key in
            switch i {
            case 4: pts = -1  // the PTS of sample 3 again (case 10's re-stamp)
            case 6: key = true  // a P picture flagged a sync sample (case 6: "keyframes" on half a keyframe)
            case 10: key = false  // an IDR picture not flagged a sync sample
            case 13:
                // The picture's second slice: first_mb_in_slice ≠ 0 (its first header bit 0).
                let slice = unit.firstIndex { $0[0] & 0x1F == 1 }!
                unit[slice][1] &= 0x7F
            default: break
            }
        }
        let report = try MediaCheck.check(run: MemoryByteSource(bytes))
        #expect(report.samples == 20)
        #expect(report.problemCount == 4, "\(report.problems)")
        #expect(report.problems.contains { $0.hasPrefix("sample 4 ") && $0.contains("PTS already used") })
        #expect(report.problems.contains { $0.hasPrefix("sample 6 ") && $0.contains("holds no IDR picture") })
        #expect(report.problems.contains { $0.hasPrefix("sample 10 ") && $0.contains("not flagged a keyframe") })
        #expect(report.problems.contains { $0.hasPrefix("sample 13 ") && $0.contains("middle of a picture") })
    }

    @Test func lengthPrefixesPastTheSampleAreCaught() {
        // One NAL unit claiming 200 bytes in a 10-byte sample; an IDR slice of a sample that is whole.
        let overrun = NALUnits.scan([0, 0, 0, 200, 0x65, 0x88, 1, 2, 3, 4], lengthBytes: 4, codec: .h264)
        #expect(overrun.overrun && !overrun.hasRandomAccessPicture)
        let idr = NALUnits.scan([0, 0, 0, 3, 0x65, 0x88, 1], lengthBytes: 4, codec: .h264)
        #expect(!idr.overrun && idr.hasRandomAccessPicture && !idr.startsMidPicture)
        // H.265: a CRA (type 21) whose slice segment is not the picture's first.
        let cra = NALUnits.scan([0, 0, 0, 4, 21 << 1, 1, 0x40, 9], lengthBytes: 4, codec: .hevc)
        #expect(cra.hasRandomAccessPicture && cra.startsMidPicture)
    }
}
