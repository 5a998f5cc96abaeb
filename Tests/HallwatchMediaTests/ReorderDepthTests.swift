import CFFmpeg
import Foundation
import HallwatchCore
import Logging
import Testing

@testable import HallwatchMedia

/// Issue 12, case 3: a B-frame stream whose reorder depth grows after the run starts, through Hallwatch's
/// own RTSP client and a scripted camera. The stream is the reproduction — `h264-bframes.mp4` cut
/// with `ffmpeg -ss 1.2 -c copy` so it starts on a GOP of depth 1 (`I P B B`) followed by depth 2 (x264
/// b-pyramid) — sent as RTP (RFC 6184: single NAL units and FU-A, SPS/PPS in-band before each IDR, the
/// file's PTS as RTP timestamps, RFC 3550 §5.1). Skipped without the clips in `.media`.
@Suite("Reorder depth growing mid-run", .serialized)
struct ReorderDepthTests {
    static let media =
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path + "/.media"

    /// SPS and PPS NAL units of an `avcC` record (ISO/IEC 14496-15 §5.3.3.1).
    static func parameterSets(avcC c: [UInt8]) -> [[UInt8]] {
        var sets: [[UInt8]] = []
        var i = 5
        for counterMask in [UInt8(0x1F), 0xFF] {
            guard i < c.count else { break }
            let n = Int(c[i] & counterMask)
            i += 1
            for _ in 0..<n where i + 2 <= c.count {
                let len = Int(c[i]) << 8 | Int(c[i + 1])
                i += 2
                sets.append(Array(c[i..<min(c.count, i + len)]))
                i += len
            }
        }
        return sets
    }

    @Test func everyFrameIsRecordedWithDTSNeverAfterPTS() throws {
        let source = Self.media + "/h264-bframes.mp4"
        try #require(FileManager.default.fileExists(atPath: source), "no clips: bash Image/fetch-clips.sh .media")
        let cut = FileManager.default.temporaryDirectory.appendingPathComponent("hw-bf-k30-\(getpid()).mp4").path
        let exported = FileManager.default.temporaryDirectory.appendingPathComponent("hw-bf-out-\(getpid()).mp4").path
        defer {
            try? FileManager.default.removeItem(atPath: cut)
            try? FileManager.default.removeItem(atPath: exported)
        }
        let ff = Process()
        ff.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        ff.arguments = ["-nostdin", "-v", "error", "-y", "-ss", "1.2", "-i", source, "-c", "copy", cut]
        try ff.run()
        ff.waitUntilExit()
        let clip = try VideoTrackFile.read(path: cut)
        let lengthBytes = try #require(clip.nalLengthBytes)
        let sets = Self.parameterSets(avcC: clip.extradata)
        #expect(sets.count == 2)

        var stream: [UInt8] = []
        var seq: UInt16 = 1
        for sample in clip.samples {
            var nals: [[UInt8]] = sample.isKey ? sets : []
            var i = 0
            while i + lengthBytes <= sample.data.count {
                let len = sample.data[i..<(i + lengthBytes)].reduce(0) { $0 << 8 | Int($1) }
                i += lengthBytes
                nals.append(Array(sample.data[i..<min(sample.data.count, i + len)]))
                i += len
            }
            let ts = UInt32(truncatingIfNeeded: 900_000 + sample.pts90k)
            for (j, nal) in nals.enumerated() {
                let pieces = RTPBuilder.h264(nal)
                for (k, piece) in pieces.enumerated() {
                    stream += RTPBuilder.interleaved(
                        0,
                        RTPBuilder.packet(
                            seq: seq, ts: ts, marker: j == nals.count - 1 && k == pieces.count - 1, payload: piece))
                    seq &+= 1
                }
            }
        }
        let rtp = stream
        let server = try RTSPHostileCameraTests.camera(play: { cseq in
            Array("RTSP/1.0 200 OK\r\nCSeq: \(cseq)\r\nSession: 7\r\n\r\n".utf8) + rtp
        })
        let session = CaptureSession(
            camera: CameraID("bframes")!, source: RTSPSourceOptions(url: server.url, ioTimeout: .seconds(2)),
            policy: FragmentPolicy(), clocks: SystemClocks(), logger: Logger(label: "test"))
        let sink = CollectingSink()
        var status: CaptureStatus?
        // The camera keeps the connection open after the clip: the session ends at the I/O timeout — not
        // with `media.mux` within 0.5 s, as before.
        let ended = #expect(throws: MediaError.self) { try session.run(stop: StopFlag(), sink: sink) { status = $0 } }
        #expect(ended?.code == "rtsp.timeout", "\(String(describing: ended))")
        server.stop()

        let inits = sink.frames.filter { $0.meta.kind == .initSegment }
        let fragments = sink.frames.filter { $0.meta.kind == .fragment }
        #expect(inits.count == 1, "one run")
        #expect(status?.samplesRefused == 0)
        let recorded = Double(fragments.reduce(0) { $0 + Int64($1.meta.duration90k) }) / 90_000
        // 220 frames of 3600 ticks = 8.8 s; the decode timeline is one frame shorter where the delay grew.
        #expect(recorded >= 8.75 && recorded <= 8.81, "recorded \(recorded) s")

        // Every frame is in the recording, presented when the camera said, PTS unique, DTS ≤ PTS.
        _ = try Exporter.write([MemoryByteSource(sink.frames.flatMap(\.payload))], to: exported)
        let out = try VideoTrackFile.read(path: exported)
        #expect(out.samples.count == clip.samples.count && clip.samples.count == 220)
        let pts = out.samples.map(\.pts90k)
        #expect(Set(pts).count == pts.count, "duplicate PTS")
        #expect(out.samples.allSatisfy { $0.dts90k <= $0.pts90k })
        let dts = out.samples.map(\.dts90k)
        #expect(zip(dts, dts.dropFirst()).allSatisfy { $0 < $1 })
        let p0 = pts[0]
        let s0 = clip.samples[0].pts90k
        #expect(pts.map { $0 - p0 } == clip.samples.map { $0.pts90k - s0 })
    }
}

/// A muxer refusal (`media.mux`) is never fatal to the session: the run ends with what it holds and the
/// next keyframe starts a new one. Driven at the remuxer, since the timeline no longer hands the muxer a
/// sample it refuses (before, the refusal ended the session and the camera was reconnected).
@Suite("Muxer refusals")
struct MuxerRefusalTests {
    /// A packet source that only describes a video track, H.264 unless told (the test feeds the remuxer directly).
    final class DescribedSource: PacketSource {
        let par = avcodec_parameters_alloc()!
        init(_ codec: AVCodecID = AV_CODEC_ID_H264) {
            par.pointee.codec_type = AVMEDIA_TYPE_VIDEO
            par.pointee.codec_id = codec
        }
        deinit {
            var p: UnsafeMutablePointer<AVCodecParameters>? = par
            avcodec_parameters_free(&p)
        }
        var videoParameters: UnsafePointer<AVCodecParameters> { UnsafePointer(par) }
        var videoTimeBase: AVRational { hw_rational(1, 90_000) }
        var audioTrack: (parameters: UnsafePointer<AVCodecParameters>, timeBase: AVRational)? { nil }
        func read(into packet: Packet) throws -> Bool { false }
    }

    static func packet(_ unit: [[UInt8]], key: Bool) -> Packet {
        let bytes = annexB(unit)
        let p = Packet()
        _ = av_new_packet(p.p, Int32(bytes.count))
        bytes.withUnsafeBufferPointer { p.p.pointee.data.update(from: $0.baseAddress!, count: $0.count) }
        if key { p.p.pointee.flags |= AV_PKT_FLAG_KEY }
        return p
    }

    @Test func aRefusedSampleEndsTheRunNotTheSession() throws {
        let units = try RTSPClientTests.encodedClip()  // 20 frames at 10 fps, an IDR every 10
        let source = DescribedSource()
        let sink = CollectingSink()
        let remuxer = try Remuxer(
            source: source, camera: CameraID("refused")!, policy: FragmentPolicy(), sink: sink,
            logger: Logger(label: "test"))
        let ps = ParameterSets(codec: .h264, par: source.videoParameters)
        for (i, unit) in units.enumerated() {
            let key = i % 10 == 0
            let p = Self.packet(unit, key: key)
            let t = Int64(i) * 9000
            // Frame 3 as a broken timeline would hand it over: DTS after PTS, which the MP4 muxer refuses.
            let pts = i == 3 ? t - 1 : t
            let s = VideoTimeline<Remuxer.Unit>.Sample(
                dts90k: t, pts90k: pts, duration90k: 9000, keyframe: key,
                payload: Remuxer.Unit(
                    packet: p, arrival: UTCMicros(1_000_000 + t * 100 / 9),
                    parameterSets: key ? ps.extract(from: p) : nil))
            try remuxer.handle([.sample(s)])
        }
        remuxer.finish()
        #expect(remuxer.status.samplesRefused == 1)
        let inits = sink.frames.filter { $0.meta.kind == .initSegment }
        let fragments = sink.frames.filter { $0.meta.kind == .fragment }
        // Run 1: frames 0–2 (3 × 0.1 s); frames 4–9 wait for a keyframe; run 2: frames 10–19.
        #expect(inits.count == 2)
        #expect(fragments.map(\.meta.duration90k) == [27_000, 90_000])
    }
}
