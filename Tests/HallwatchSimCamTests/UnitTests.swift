import Testing

@testable import HallwatchSimCam

@Suite("Mount specs")
struct MountSpecTests {
    @Test func parsesNameAndFile() throws {
        let m = try MountSpec(parsing: "lobby=.media/h264-aac.mp4")
        #expect(m.name == "lobby")
        #expect(m.file == ".media/h264-aac.mp4")
        #expect(m.absolutePath.hasSuffix("/.media/h264-aac.mp4"))
        #expect(try MountSpec(parsing: "cam-1.main=/a=b.mp4").file == "/a=b.mp4")
    }

    @Test(arguments: ["nofile", "=x.mp4", "a b=x.mp4", "a/b=x.mp4", "..=x.mp4", "a=", "é=x.mp4"])
    func refusesBadSpecs(_ spec: String) {
        #expect(throws: SimCamError.self) { try MountSpec(parsing: spec) }
    }

    @Test func badSpecsAreUsageErrors() {
        #expect(SimCamError.badMountSpec("x").isUsageError)
        #expect(SimCamError.missingFile("x").isUsageError)
        #expect(!SimCamError.listen("x").isUsageError)
    }
}

@Suite("Loop timeline")
struct LoopTimelineTests {
    static let ms: UInt64 = 1_000_000

    /// bigbuckbunny: video 132 frames at 25 fps (segment 0…5.28 s), AAC frames of 1024/48000 s (0…5.312 s).
    @Test func videoContinuesExactlyAcrossPasses() {
        var t = LoopTimeline(period: 5280 * Self.ms, primaryStart: 0)
        var out: [UInt64] = []
        for _ in 0..<3 {
            for f in 0..<132 {
                let pts = UInt64(f) * 40 * Self.ms
                guard
                    case .keep(let p?, let d?) = t.restamp(
                        pts: pts, dts: pts, duration: 40 * Self.ms, segmentStart: 0, isPrimary: true)
                else {
                    Issue.record("frame \(f) dropped")
                    return
                }
                #expect(p == d)
                out.append(p)
            }
            t.advance()
        }
        #expect(out.count == 396)
        #expect(zip(out, out.dropFirst()).allSatisfy { $1 - $0 == 40 * Self.ms })
        #expect(out[132] == 5280 * Self.ms)
        #expect(t.pass == 3)
    }

    @Test func audioIsCutAtThePrimaryPeriod() {
        let t = LoopTimeline(period: 5280 * Self.ms, primaryStart: 0)
        let frame: UInt64 = 21_333_333
        // frame 246 ends at 5.269 s: kept; frame 247 ends at 5.291 s, after the video: dropped.
        #expect(
            t.restamp(pts: 246 * frame, dts: nil, duration: frame, segmentStart: 0, isPrimary: false)
                == .keep(pts: 246 * frame, dts: nil))
        #expect(t.restamp(pts: 247 * frame, dts: nil, duration: frame, segmentStart: 0, isPrimary: false) == .drop)
        // A video frame past the period would collide with the next pass's first frame.
        #expect(t.restamp(pts: 5280 * Self.ms, dts: nil, duration: nil, segmentStart: 0, isPrimary: true) == .drop)
    }

    /// bikes (B-frames): segment start 80 ms, first DTS 0, PTS 80 ms; period 10 s.
    @Test func bFrameStreamKeepsDecodeTimesNonNegative() {
        var t = LoopTimeline(period: 10_000 * Self.ms, primaryStart: 80 * Self.ms)
        #expect(
            t.restamp(pts: 80 * Self.ms, dts: 0, duration: 40 * Self.ms, segmentStart: 80 * Self.ms, isPrimary: true)
                == .keep(pts: 80 * Self.ms, dts: 0))
        t.advance()
        #expect(
            t.restamp(pts: 80 * Self.ms, dts: 0, duration: 40 * Self.ms, segmentStart: 80 * Self.ms, isPrimary: true)
                == .keep(pts: 10_080 * Self.ms, dts: 10_000 * Self.ms))
    }

    @Test func secondaryStreamIsAlignedByRunningTime() {
        // Audio segment starts at 0, video (primary) at 80 ms: audio running time 0 lines up with video's first frame.
        let t = LoopTimeline(period: 10_000 * Self.ms, primaryStart: 80 * Self.ms)
        #expect(
            t.restamp(pts: 0, dts: 0, duration: 20 * Self.ms, segmentStart: 0, isPrimary: false)
                == .keep(pts: 80 * Self.ms, dts: 80 * Self.ms))
    }
}

@Suite("Launch descriptions")
struct LaunchTests {
    @Test func mediaAndReaderPipelinesHaveOneBranchPerStream() {
        let s = { (pad: String, codec: StreamCodec) in
            StreamDescription(
                padName: pad, codec: codec, caps: "", width: nil, height: nil, channels: nil, sampleRate: nil,
                segmentStart: 0, segmentStop: nil)
        }
        let media = MediaDescription(
            path: "/x/a \"b\".mp4", streams: [s("video_0", .h264), s("audio_0", .aac)], primaryIndex: 0,
            period: 1)
        #expect(
            LoopingFeeder.mediaLaunch(for: media)
                == "( appsrc name=src0 ! rtph264pay config-interval=-1 name=pay0 pt=96"
                + "  appsrc name=src1 ! rtpmp4gpay name=pay1 pt=97 )")
        let reader = LoopingFeeder.readerLaunch(for: media)
        #expect(reader.contains("demux.video_0 ! h264parse ! appsink name=sink0"))
        #expect(reader.contains("demux.audio_0 ! aacparse ! appsink name=sink1"))
        #expect(!reader.contains("/x/a"))  // the location is set as a property, never parsed
    }
}
