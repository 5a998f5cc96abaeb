import Testing

@testable import HallwatchMedia

/// Drives a timeline with integer payloads (frame numbers) and collects what comes out.
struct Harness {
    var timeline = VideoTimeline<[Int]>(join: { $0 += $1 })
    var samples: [VideoTimeline<[Int]>.Sample] = []
    var breaks: [String] = []

    mutating func push(_ pts: Int64?, key: Bool = false, id: Int) {
        take(timeline.push(pts90k: pts, keyframe: key, payload: [id]))
    }
    mutating func finish() { take(timeline.flush()) }
    mutating func take(_ events: [VideoTimeline<[Int]>.Event]) {
        for e in events {
            switch e {
            case .sample(let s): samples.append(s)
            case .runBreak(let r): breaks.append(r)
            }
        }
    }
    /// Checks the invariants every output must keep: DTS strictly increasing within a run, DTS ≤ PTS,
    /// durations positive and equal to the DTS step.
    func checkInvariants() {
        var last: VideoTimeline<[Int]>.Sample?
        for s in samples {
            #expect(s.dts90k <= s.pts90k, "DTS after PTS at frame \(s.payload)")
            #expect(s.duration90k > 0)
            if let l = last, s.dts90k > l.dts90k { #expect(s.dts90k - l.dts90k == l.duration90k) }
            last = s
        }
    }
}

@Suite("Timestamp repair")
struct VideoTimelineTests {
    @Test func steadyStreamKeepsExactDurations() {
        var h = Harness()
        for i in 0..<100 { h.push(Int64(1_000_000 + i * 3003), key: i % 30 == 0, id: i) }
        h.finish()
        #expect(h.samples.count == 100)
        #expect(h.samples.map(\.payload) == (0..<100).map { [$0] })
        #expect(h.samples.first?.dts90k == 0)
        #expect(h.samples.allSatisfy { $0.duration90k == 3003 })
        #expect(h.samples[99].dts90k == 99 * 3003)
        #expect(h.breaks.isEmpty)
        #expect(h.timeline.measuredFPS > 29.96 && h.timeline.measuredFPS < 29.98)
        h.checkInvariants()
    }

    @Test func framesBeforeTheFirstKeyframeAreNotARun() {
        var h = Harness()
        for i in 0..<5 { h.push(Int64(i * 3600), id: i) }
        for i in 5..<20 { h.push(Int64(i * 3600), key: i == 5, id: i) }
        h.finish()
        #expect(h.samples.first?.payload == [5])
        #expect(h.samples.count == 15)
    }

    @Test func firstKeyframeWithoutTimestampGetsOne() {
        // Seen from GStreamer and several cameras: the IDR right after PLAY carries no timestamp.
        var h = Harness()
        h.push(nil, key: true, id: 0)
        for i in 1..<20 { h.push(Int64(500_000 + i * 3600), id: i) }
        h.finish()
        #expect(h.samples.count == 20)
        #expect(h.samples[0].pts90k == 0 && h.samples[1].pts90k == 3600)
        #expect(h.samples.allSatisfy { $0.duration90k == 3600 })
        #expect(h.timeline.missingStamped == 1)
        h.checkInvariants()
    }

    @Test func bFramesGetAValidDecodeTimeline() {
        // Decode order I P B b P B b … with PTS in frames: 0 3 1 2 6 4 5 …; RTP gives no DTS.
        var h = Harness()
        var pts: [Int64] = [0]
        for g in 0..<20 {
            let b = Int64(g * 3)
            pts += [b + 3, b + 1, b + 2]
        }
        for (i, p) in pts.enumerated() { h.push(p * 3600, key: i == 0, id: i) }
        h.finish()
        #expect(h.samples.count == pts.count)
        h.checkInvariants()
        #expect(h.samples.allSatisfy { $0.duration90k == 3600 })
        // Presentation order is preserved exactly.
        let presented = h.samples.map(\.pts90k)
        #expect(Set(presented).count == presented.count)
        #expect(zip(presented, pts).allSatisfy { $0 - presented[0] == ($1 - pts[0]) * 3600 })
    }

    @Test func reorderDepthGrowingAfterTheRunStartsKeepsDTSBeforePTS() {
        // Issue 12, case 3: x264 adaptive B-frames cut at -ss 1.2 (`bf-k30.mp4`). Decode order in frames:
        // I0 P3 B1 B2 (depth 1, all the first window shows), then P7 B5 b4 b6, P11 B9 b8 b10 … (depth 2).
        // Before: b4 got DTS 4 frames + 1 tick > PTS, the muxer refused it, and the session ended.
        var h = Harness()
        var pts: [Int64] = [0, 3, 1, 2]
        for g in 1..<50 {
            let b = Int64(4 * g)
            pts += [b + 3, b + 1, b, b + 2]
        }
        for (i, p) in pts.enumerated() { h.push(90_000 + p * 3600, key: i == 0, id: i) }
        h.finish()
        #expect(h.samples.count == 200)
        #expect(h.breaks.isEmpty)
        h.checkInvariants()
        #expect(h.samples.allSatisfy { $0.dts90k <= $0.pts90k })
        let dts = h.samples.map(\.dts90k)
        #expect(zip(dts, dts.dropFirst()).allSatisfy { $0 < $1 })
        // PTS untouched and unique; the delay grew once, to two frames, and stays there.
        #expect(h.samples.map(\.pts90k) == pts.map { ($0 + 1) * 3600 })
        #expect(h.timeline.reorderDelayGrown == 1 && h.timeline.ptsRaised == 0)
        // b196: 2 frames late in decode order.
        #expect(h.samples[198].pts90k == h.samples[198].dts90k && h.samples[198].payload == [198])
        // The catch-up shortens only the steps before the first unit that needs it; durations add up.
        #expect(h.samples.filter { $0.duration90k != 3600 }.count <= 3)
        #expect(h.samples.reduce(0) { $0 + $1.duration90k } == dts[199] - dts[0] + h.samples[199].duration90k)
    }

    @Test func outliersInABFrameStreamAreRestampedInPresentationOrder() {
        // Issue 12, case 10: decode order I0 P3 B1 B2 P6 B4 B5 … at 25 fps, 24 s; 8 frames (P and B) an hour
        // off. Before: each was re-stamped to "previous PTS in decode order + one frame", another frame's PTS —
        // 8 duplicate pairs and 8 holes of 80 ms.
        var h = Harness()
        var pts: [Int64] = [0]
        for g in 0..<200 {
            let b = Int64(g * 3)
            pts += [b + 3, b + 1, b + 2]
        }
        let outliers: Set<Int> = [50, 121, 182, 250, 311, 403, 470, 545]  // P frames are i % 3 == 1
        #expect(outliers.contains { $0 % 3 == 1 } && outliers.contains { $0 % 3 != 1 })
        for (i, p) in pts.enumerated() {
            h.push(3_000_000 + p * 3600 + (outliers.contains(i) ? 324_000_000 : 0), key: i == 0, id: i)
        }
        h.finish()
        #expect(h.samples.count == pts.count && h.breaks.isEmpty)
        #expect(h.timeline.outliersRestamped == 8)
        h.checkInvariants()
        let presented = h.samples.map(\.pts90k)
        let duplicates = presented.count - Set(presented).count
        let sorted = presented.sorted()
        let holes = zip(sorted, sorted.dropFirst()).filter { $1 - $0 != 3600 }.count
        print("B-frame outliers: \(duplicates) duplicate PTS, \(holes) holes")
        #expect(duplicates == 0 && holes == 0)
        // Each re-stamped frame is shown exactly where the camera meant it.
        let p0 = presented[0]
        #expect(zip(presented, pts).allSatisfy { $0 - p0 == $1 * 3600 })
    }

    @Test func splitAccessUnitsAreJoined() {
        var h = Harness()
        for i in 0..<10 {
            h.push(Int64(i * 3000), key: i == 0, id: i * 10)
            h.push(Int64(i * 3000), id: i * 10 + 1)  // second slice of the same picture
        }
        h.finish()
        #expect(h.samples.count == 10)
        #expect(h.samples[3].payload == [30, 31])
        #expect(h.timeline.joined == 10)
        #expect(h.samples.allSatisfy { $0.duration90k == 3000 })
    }

    @Test func singleWildTimestampIsRestampedNotARunEnd() {
        // One frame an hour ahead, then back on track (plain ffmpeg ends or squeezes the recording here).
        var h = Harness()
        for i in 0..<60 {
            let p: Int64 = i == 30 ? Int64(i * 3000) + 324_000_000 : Int64(i * 3000)
            h.push(p, key: i % 25 == 0, id: i)
        }
        h.finish()
        #expect(h.samples.count == 60)
        #expect(h.breaks.isEmpty)
        #expect(h.timeline.outliersRestamped == 1)
        #expect(h.timeline.missingStamped == 0, "an outlier is not also a missing timestamp")
        #expect(h.samples[30].pts90k == 30 * 3000)
        #expect(h.samples.allSatisfy { $0.duration90k == 3000 })
        h.checkInvariants()
    }

    @Test func backwardOutlierIsRestamped() {
        var h = Harness()
        for i in 0..<40 { h.push(i == 20 ? 5 : Int64(900_000 + i * 3000), key: i == 0, id: i) }
        h.finish()
        #expect(h.samples.count == 40 && h.breaks.isEmpty && h.timeline.outliersRestamped == 1)
        h.checkInvariants()
    }

    @Test func discontinuityStartsANewRunAtTheNextKeyframeWithoutLosingFrames() {
        // The camera's clock steps back 10 minutes at frame 40; keyframes every 25 frames.
        var h = Harness()
        for i in 0..<100 {
            let p = i < 40 ? Int64(60_000_000 + i * 3600) : Int64(6_000_000 + i * 3600)
            h.push(p, key: i % 25 == 0, id: i)
        }
        h.finish()
        #expect(h.samples.count == 100)  // nothing dropped
        #expect(h.breaks.count == 1)
        #expect(h.breaks.first?.contains("discontinuity") == true)
        // Frames 40…49 continue the old run seamlessly; frame 50 (keyframe) starts the new run at 0.
        #expect(h.samples[45].dts90k == 45 * 3600)
        #expect(h.samples[50].dts90k == 0 && h.samples[50].keyframe)
        #expect(h.samples.allSatisfy { $0.duration90k == 3600 })
        #expect(h.timeline.outliersRestamped == 0)
    }

    @Test func lyingFrameRateDoesNotMatter() {
        // 12.5 fps delivered while the SDP may claim 30: durations follow the timestamps.
        var h = Harness()
        for i in 0..<50 { h.push(Int64(i * 7200), key: i % 10 == 0, id: i) }
        h.finish()
        #expect(h.samples.allSatisfy { $0.duration90k == 7200 })
        #expect(h.timeline.measuredFPS == 12.5)
    }
}
