import CFFmpeg
import Foundation
import HallwatchCore
import Logging
import Testing

@testable import HallwatchMedia

/// A sink that watches when told to, collecting segments and live chunks apart.
final class WatchingSink: LiveChunkSink {
    var frames: [MediaSegment] = []
    var chunks: [MediaSegment] = []
    var watching = true
    var wantsLiveChunks: Bool { watching }
    func deliver(_ frame: MediaSegment) { frames.append(frame) }
    func deliverChunk(_ chunk: MediaSegment) { chunks.append(chunk) }
}

/// HallwatchDataPlane's `Protocol.md`, P6: the capture side's per-frame chunks, made beside the stored fragments
/// while someone watches.
@Suite("Live chunks from the capture worker (P6)")
struct LiveChunkTests {
    static let t0: Int64 = 1_800_000_000_000_000

    /// Feeds `frames` frames of `units` (10 fps, an IDR every 10) in real time; `watching(k)` says whether
    /// someone watches when frame k arrives.
    static func record(
        _ units: [[[UInt8]]], codec: AVCodecID = AV_CODEC_ID_H264, frames: Int, watching: (Int) -> Bool = { _ in true }
    ) throws -> WatchingSink {
        let sink = WatchingSink()
        let remuxer = try Remuxer(
            source: MuxerRefusalTests.DescribedSource(codec), camera: CameraID("chunks")!, policy: FragmentPolicy(),
            sink: sink,
            logger: Logger(label: "test"))
        for k in 0..<frames {
            sink.watching = watching(k)
            let p = MuxerRefusalTests.packet(units[k % units.count], key: k % 10 == 0)
            p.p.pointee.pts = Int64(k) * 9000
            try remuxer.video(p, arrival: UTCMicros(t0 + Int64(k) * 100_000))
        }
        remuxer.finish()
        return sink
    }

    static func write(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hw-chunks-\(UUID().uuidString).mp4")
        try Data(bytes).write(to: path)
        return path.path
    }

    @Test("one moof+mdat per frame from a keyframe of the settled run, on the run's timeline; off when nobody watches")
    func chunksArePerFrameAndPlayAfterTheRunsInit() throws {
        let units = try RTSPClientTests.encodedClip()  // 20 frames at 10 fps, an IDR every 10
        // Watched throughout, except while frames 35 and 36 arrive. The timeline holds 5 frames back (its look-ahead),
        // so frames 30 and 31 leave then: chunks stop at 30 and resume at the next keyframe (40).
        let sink = try Self.record(units, frames: 60) { !(35...36).contains($0) }
        let run = try #require(sink.frames.first?.meta.run)
        #expect(Set(sink.frames.map(\.meta.run)) == [run] && Set(sink.chunks.map(\.meta.run)) == [run])
        // The run settles after 1 s of arrivals (frame 10, a keyframe): chunks start there.
        let starts = sink.chunks.map { Int($0.meta.start90k.ticks / 9000) }
        #expect(starts == Array(10...29) + Array(40...59))
        #expect(sink.chunks.allSatisfy { $0.meta.duration90k == 9000 })
        #expect(sink.chunks.filter(\.meta.keyframe).map { Int($0.meta.start90k.ticks / 9000) } == [10, 20, 40, 50])
        #expect(sink.chunks.map(\.meta.sequence) == (1...UInt32(sink.chunks.count)).map { $0 })
        // Each chunk's UTC is its frame's place on the box's clock (frames arrive every 100 ms from t0).
        for c in sink.chunks {
            let arrival = Self.t0 + c.meta.start90k.ticks * 100 / 9
            #expect(abs(c.meta.utc.micros - arrival) <= 1000, "chunk at \(c.meta.utc.micros - arrival) µs")
        }
        // The bytes: the run's own init segment, then the chunks, parse as a fragmented MP4 whose tfdt are the
        // chunks' starts, and hold exactly the stored frames.
        let initSegment = try #require(sink.frames.first { $0.meta.kind == .initSegment }?.payload)
        let parsed = try FragmentedMP4(initSegment + sink.chunks.flatMap(\.payload))
        #expect(parsed.fragments.count == sink.chunks.count)
        #expect(
            parsed.fragments.map { $0.decodeTime[parsed.videoTrack] }
                == sink.chunks.map { UInt64($0.meta.start90k.ticks) })
        let live = try VideoTrackFile.read(path: try Self.write(initSegment + sink.chunks.flatMap(\.payload)))
        let stored = try VideoTrackFile.read(
            path: try Self.write(sink.frames.flatMap(\.payload)))
        let storedByDTS = Dictionary(stored.samples.map { ($0.dts90k, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(live.samples.count == 40)
        for s in live.samples {
            let match = storedByDTS[s.dts90k]
            #expect(match?.data == s.data && match?.pts90k == s.pts90k && match?.isKey == s.isKey)
        }
        print(
            "live chunks: \(sink.chunks.count) chunks, \(sink.chunks.map(\.payload.count).reduce(0, +) / sink.chunks.count) bytes each on average"
        )
    }

    @Test("NAL units are found as libavformat's MP4 muxer finds them: 3- and 4-byte start codes, leading bytes")
    func nalUnitsAsLibavformatFindsThem() {
        func units(_ bytes: [UInt8]) -> [[UInt8]] {
            bytes.withUnsafeBufferPointer { d in LiveChunkWriter.nalUnits(d).map { Array(d[$0]) } }
        }
        // A 01 inside a NAL unit is not a start code; a 4-byte start code's first zero is not the NAL's.
        #expect(
            units([0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5])
                == [[0x67, 1, 2], [0x68, 3], [0x65, 4, 5]])
        // Bytes before the first start code are not a NAL unit; nor is anything without one.
        #expect(units([5, 6, 0, 0, 1, 9]) == [[9]])
        #expect(units([1, 2, 3]).isEmpty && units([]).isEmpty)
        // A start code at the very end opens nothing.
        #expect(units([0, 0, 1, 0x41, 7, 0, 0, 0, 1]) == [[0x41, 7]])
    }

    @Test("nobody watching: no chunk and no chunk writer (a sink without live view gets none either)")
    func noChunksWhenUnwatched() throws {
        let units = try RTSPClientTests.encodedClip()
        let sink = try Self.record(units, frames: 30) { _ in false }
        #expect(sink.chunks.isEmpty)
        #expect(sink.frames.filter { $0.meta.kind == .fragment }.count == 3)
    }

    /// 2 s of 320×240 H.265 at 10 fps, an IRAP every 10 frames, no B-frames, as access units of NAL units.
    static func hevcClip() throws -> [[[UInt8]]] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hw-hevc-\(UUID().uuidString).hevc")
        defer { try? FileManager.default.removeItem(at: path) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        p.arguments = [
            "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-t", "2", "-c:v",
            "libx265",
            "-x265-params", "keyint=10:min-keyint=10:bframes=0:log-level=error", "-f", "hevc", "-y", path.path,
        ]
        try p.run()
        p.waitUntilExit()
        var units: [[[UInt8]]] = []
        var pending: [[UInt8]] = []
        for nal in ParameterSets.nalUnits(Array(try Data(contentsOf: path))) {
            let type = (nal[0] >> 1) & 0x3F
            if type <= 31 {
                if nal[2] & 0x80 != 0 || units.isEmpty {
                    units.append(pending + [nal])
                } else {
                    units[units.count - 1] += pending + [nal]
                }
                pending = []
            } else if type != 35 {  // parameter sets and SEI go with the next picture; access unit delimiters go
                pending.append(nal)
            }
        }
        return units
    }

    @Test("HEVC is written as hvc1, parameter sets in the hvcC, in the init segment and the chunks play after it")
    func hevcIsHvc1() throws {
        let units = try Self.hevcClip()
        #expect(units.count == 20)
        let sink = try Self.record(units, codec: AV_CODEC_ID_HEVC, frames: 30)
        let initSegment = try #require(sink.frames.first { $0.meta.kind == .initSegment }?.payload)
        let bytes = Data(initSegment)
        #expect(bytes.range(of: Data("hvc1".utf8)) != nil && bytes.range(of: Data("hev1".utf8)) == nil)
        #expect(bytes.range(of: Data("hvcC".utf8)) != nil)
        let live = try VideoTrackFile.read(path: try Self.write(initSegment + sink.chunks.flatMap(\.payload)))
        #expect(live.codec == .hevc && live.samples.count == 20 && live.samples.first?.isKey == true)
        // hvcC (ISO/IEC 14496-15 §8.3.3.1): numOfArrays at byte 22, VPS, SPS and PPS.
        #expect(live.extradata.count > 22 && live.extradata[22] >= 3)
    }
}
