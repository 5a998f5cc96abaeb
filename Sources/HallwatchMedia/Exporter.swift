import CFFmpeg
import Foundation
import HallwatchCore

/// One recorded run as the exporter takes it: its init segment and the fragments chosen, in order.
public struct RecordedRun: Sendable {
    public var run: UInt64
    /// `ftyp`+`moov` bytes (ISO/IEC 14496-12 §4.3, §8.2.1).
    public var initSegment: [UInt8]
    /// `moof`+`mdat` pairs (§8.8.4), each with its metadata.
    public var fragments: [(meta: FragmentMeta, bytes: [UInt8])]
    public init(run: UInt64, initSegment: [UInt8], fragments: [(meta: FragmentMeta, bytes: [UInt8])]) {
        self.run = run
        self.initSegment = initSegment
        self.fragments = fragments
    }
}

/// What an export wrote.
public struct ExportSummary: Sendable, Equatable {
    /// Files written, in time order (more than one when codec parameters change between runs).
    public var files: [String]
    /// Media written, seconds (gaps between runs are not included).
    public var mediaSeconds: Double
    /// Video samples written.
    public var videoFrames: Int
    /// Bytes written across all files.
    public var bytes: Int64
}

/// Writes stored runs as one playable, non-fragmented MP4 per set of codec parameters, remuxing with
/// libavformat (never re-encoding): the bytes of every sample are the camera's.
///
/// Consecutive runs with identical codec parameters go into one file, the later run's timestamps moved to
/// follow the earlier one's end (the gap between runs is collapsed; `hallwatchctl recordings` lists gaps).
/// A change of parameters (resolution, codec) starts a new file `NAME-2.mp4`, `NAME-3.mp4`, … since one
/// MP4 track cannot change them. Output uses `movflags=+faststart` so playback can start before the file
/// is fully downloaded.
public enum Exporter {
    /// - Throws: ``MediaError`` `media.export` when a run cannot be read or the file cannot be written.
    public static func write(_ runs: [RecordedRun], to path: String) throws -> ExportSummary {
        FFmpegLog.install()
        var summary = ExportSummary(files: [], mediaSeconds: 0, videoFrames: 0, bytes: 0)
        var output: OutputFile?
        for run in runs where !run.fragments.isEmpty {
            let reader = try MemoryMP4Reader(bytes: run.initSegment + run.fragments.flatMap(\.bytes))
            if let out = output, !out.accepts(reader) {
                summary.add(try out.finish())
                output = nil
            }
            if output == nil {
                let name = summary.files.isEmpty ? path : numbered(path, summary.files.count + 1)
                output = try OutputFile(path: name, like: reader)
            }
            try output!.append(reader)
        }
        if let out = output { summary.add(try out.finish()) }
        return summary
    }

    static func numbered(_ path: String, _ n: Int) -> String {
        let url = URL(fileURLWithPath: path)
        let ext = url.pathExtension
        let base = url.deletingPathExtension().path
        return ext.isEmpty ? "\(base)-\(n)" : "\(base)-\(n).\(ext)"
    }
}

extension ExportSummary {
    mutating func add(_ file: (path: String, seconds: Double, frames: Int, bytes: Int64)) {
        files.append(file.path)
        mediaSeconds += file.seconds
        videoFrames += file.frames
        bytes += file.bytes
    }
}

/// Demuxes an MP4 byte buffer in memory (an init segment followed by fragments) with libavformat.
final class MemoryMP4Reader {
    private(set) var ctx: UnsafeMutablePointer<AVFormatContext>?
    private let buffer: Buffer

    final class Buffer {
        let bytes: [UInt8]
        var position = 0
        init(_ b: [UInt8]) { bytes = b }
    }

    /// - Throws: ``MediaError`` `media.export` when the bytes are not an MP4 libavformat can read.
    init(bytes: [UInt8]) throws {
        buffer = Buffer(bytes)
        guard let c = avformat_alloc_context() else { throw MediaError("media.export", "out of memory") }
        let size: Int32 = 64 * 1024
        let ioBuffer = av_malloc(Int(size))!.assumingMemoryBound(to: UInt8.self)
        let opaque = Unmanaged.passUnretained(buffer).toOpaque()
        let read: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt8>?, Int32) -> Int32 = {
            opaque, dst, want in
            let b = Unmanaged<Buffer>.fromOpaque(opaque!).takeUnretainedValue()
            let n = min(Int(want), b.bytes.count - b.position)
            guard n > 0 else { return hw_averror_eof() }
            b.bytes.withUnsafeBufferPointer { src in dst!.update(from: src.baseAddress! + b.position, count: n) }
            b.position += n
            return Int32(n)
        }
        let seek: @convention(c) (UnsafeMutableRawPointer?, Int64, Int32) -> Int64 = { opaque, offset, whence in
            let b = Unmanaged<Buffer>.fromOpaque(opaque!).takeUnretainedValue()
            if whence & AVSEEK_SIZE != 0 { return Int64(b.bytes.count) }
            let base: Int64
            switch whence & ~AVSEEK_FORCE {
            case SEEK_SET: base = 0
            case SEEK_CUR: base = Int64(b.position)
            case SEEK_END: base = Int64(b.bytes.count)
            default: return -1
            }
            let target = base + offset
            guard target >= 0 && target <= Int64(b.bytes.count) else { return -1 }
            b.position = Int(target)
            return target
        }
        c.pointee.pb = avio_alloc_context(ioBuffer, size, 0, opaque, read, nil, seek)
        c.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        var cp: UnsafeMutablePointer<AVFormatContext>? = c
        let r = avformat_open_input(&cp, nil, av_find_input_format("mp4"), nil)
        guard r >= 0 else {
            // On failure avformat_open_input frees the context but not a custom AVIOContext.
            var pb: UnsafeMutablePointer<AVIOContext>? = c.pointee.pb
            if let p = pb { av_freep(&p.pointee.buffer) }
            avio_context_free(&pb)
            throw MediaError("media.export", "a stored run is not a readable MP4: \(averrorText(r))", averror: r)
        }
        ctx = cp
        let s = avformat_find_stream_info(cp, nil)
        guard s >= 0 else {
            throw MediaError("media.export", "cannot read the stored streams: \(averrorText(s))", averror: s)
        }
    }

    deinit {
        guard let c = ctx else { return }
        var pb: UnsafeMutablePointer<AVIOContext>? = c.pointee.pb
        var cp: UnsafeMutablePointer<AVFormatContext>? = c
        avformat_close_input(&cp)
        if let p = pb { av_freep(&p.pointee.buffer) }
        avio_context_free(&pb)
    }

    var streamCount: Int { Int(ctx!.pointee.nb_streams) }
    func stream(_ i: Int) -> UnsafeMutablePointer<AVStream> { ctx!.pointee.streams[i]! }

    /// Reads the next packet; `false` at the end.
    func read(into p: Packet) -> Bool {
        av_packet_unref(p.p)
        return av_read_frame(ctx, p.p) >= 0
    }

    /// A fingerprint of the codec parameters of every stream: codec, size, extradata.
    var parameterKey: [[UInt8]] {
        (0..<streamCount).map { i in
            let par = stream(i).pointee.codecpar.pointee
            var key = [UInt8](String("\(par.codec_id.rawValue)/\(par.width)x\(par.height)/\(par.sample_rate)/").utf8)
            if let e = par.extradata, par.extradata_size > 0 {
                key += UnsafeBufferPointer(start: e, count: Int(par.extradata_size))
            }
            return key
        }
    }
}

/// One export file being written.
final class OutputFile {
    let path: String
    private var ctx: UnsafeMutablePointer<AVFormatContext>?
    private let key: [[UInt8]]
    private var endMicros: Int64 = 0  // end of everything written, µs on the output timeline
    private var lastDTS: [Int64]
    private var videoIndex: Int?
    private(set) var frames = 0

    init(path: String, like reader: MemoryMP4Reader) throws {
        self.path = path
        key = reader.parameterKey
        var oc: UnsafeMutablePointer<AVFormatContext>?
        var r = avformat_alloc_output_context2(&oc, nil, "mp4", path)
        guard r >= 0, let oc else { throw MediaError("media.export", "cannot create \(path)", averror: r) }
        ctx = oc
        lastDTS = Array(repeating: .min, count: reader.streamCount)
        for i in 0..<reader.streamCount {
            let src = reader.stream(i)
            guard let st = avformat_new_stream(oc, nil) else { throw MediaError("media.export", "cannot add a track") }
            avcodec_parameters_copy(st.pointee.codecpar, src.pointee.codecpar)
            st.pointee.codecpar.pointee.codec_tag = 0
            st.pointee.time_base = src.pointee.time_base
            if src.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO && videoIndex == nil { videoIndex = i }
        }
        r = avio_open(&oc.pointee.pb, path, AVIO_FLAG_WRITE)
        guard r >= 0 else {
            throw MediaError("media.export", "cannot open \(path) for writing: \(averrorText(r))", averror: r)
        }
        let opts = Options([("movflags", "+faststart")])
        r = avformat_write_header(oc, &opts.dict)
        guard r >= 0 else { throw MediaError("media.export", "the MP4 muxer refused the recording", averror: r) }
    }

    deinit {
        if let oc = ctx {
            if oc.pointee.pb != nil { avio_closep(&oc.pointee.pb) }
            avformat_free_context(oc)
        }
    }

    func accepts(_ reader: MemoryMP4Reader) -> Bool { reader.parameterKey == key }

    /// Appends a run, shifted to start where the file currently ends.
    func append(_ reader: MemoryMP4Reader) throws {
        guard let oc = ctx else { return }
        let micro = hw_rational(1, 1_000_000)
        let p = Packet()
        var shiftMicros: Int64?
        var runEnd = endMicros
        while reader.read(into: p) {
            let i = p.streamIndex
            guard i < lastDTS.count, let dts = p.dts ?? p.pts else { continue }
            let inTB = reader.stream(i).pointee.time_base
            if shiftMicros == nil {
                // Runs start with their video keyframe; align that with the end of what is written.
                shiftMicros = endMicros - av_rescale_q(dts, inTB, micro)
            }
            let shift = av_rescale_q(shiftMicros!, micro, inTB)
            let outDTS = dts + shift
            guard outDTS > lastDTS[i] else { continue }  // never hand the muxer a non-increasing DTS
            lastDTS[i] = outDTS
            p.p.pointee.dts = outDTS
            p.p.pointee.pts = (p.pts ?? dts) + shift
            let outTB = oc.pointee.streams[i]!.pointee.time_base
            av_packet_rescale_ts(p.p, inTB, outTB)
            // The next run follows the video track's end (audio may run a little past it and is trimmed).
            if i == videoIndex || videoIndex == nil {
                runEnd = max(
                    runEnd, av_rescale_q(outDTS, inTB, micro) + av_rescale_q(p.p.pointee.duration, outTB, micro))
            }
            if i == videoIndex { frames += 1 }
            p.p.pointee.pos = -1
            let r = av_interleaved_write_frame(oc, p.p)
            guard r >= 0 else {
                throw MediaError("media.export", "writing \(path) failed: \(averrorText(r))", averror: r)
            }
        }
        endMicros = runEnd
    }

    /// Writes the index (`moov`, moved to the front) and closes the file.
    func finish() throws -> (path: String, seconds: Double, frames: Int, bytes: Int64) {
        guard let oc = ctx else { return (path, 0, 0, 0) }
        let r = av_write_trailer(oc)
        guard r >= 0 else {
            throw MediaError("media.export", "finishing \(path) failed: \(averrorText(r))", averror: r)
        }
        avio_closep(&oc.pointee.pb)
        avformat_free_context(oc)
        ctx = nil
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes?[.size] as? NSNumber)?.int64Value ?? 0
        return (path, Double(endMicros) / 1e6, frames, size)
    }
}
