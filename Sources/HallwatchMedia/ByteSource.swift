import CFFmpeg
import Foundation

/// A readable, seekable byte source of known length: what ``Exporter`` demuxes, one recorded run per source
/// (an init segment, `ftyp`+`moov`, ISO/IEC 14496-12 §8.2, then `moof`+`mdat` fragments, §8.8.4).
///
/// libavformat pulls the bytes through custom I/O (`avio_alloc_context` with read and seek callbacks) a
/// piece at a time, so a source can read them lazily from disk and hold only what it is asked for. The
/// media library knows nothing of where the bytes live; a source over stored records is composed above it
/// (`HallwatchEvidence`).
public protocol SeekableByteSource: AnyObject {
    /// Total length of the source, bytes.
    var lengthBytes: Int64 { get }

    /// Copies bytes from `offset` (bytes from the start) into `buffer`.
    /// - Returns: How many bytes were copied: `buffer.count`, fewer only at the end of the source, 0 at
    ///   or past it.
    /// - Throws: Whatever reading the bytes throws; the demuxer stops and ``Exporter`` rethrows it unchanged.
    func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// Bytes in memory as a ``SeekableByteSource``: for short recordings held anyway (a camera probe's few
/// seconds) and for tests. Long recordings are read from disk through a source that holds a bounded part.
public final class MemoryByteSource: SeekableByteSource {
    /// The bytes served.
    public let bytes: [UInt8]

    /// A source serving `bytes`.
    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// `bytes.count`, bytes.
    public var lengthBytes: Int64 { Int64(bytes.count) }

    /// Copies from `bytes`; never throws.
    public func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard offset >= 0, offset < lengthBytes else { return 0 }
        let n = min(buffer.count, bytes.count - Int(offset))
        bytes.withUnsafeBytes { src in
            buffer.baseAddress!.copyMemory(from: src.baseAddress! + Int(offset), byteCount: n)
        }
        return n
    }
}

/// libavformat custom I/O over a ``SeekableByteSource``: owns the `AVIOContext` and its buffer (64 KiB,
/// freed in `deinit`) and the read position. A failure of the source is kept in ``failure`` and reported to
/// libavformat as `AVERROR(EIO)`, so the demuxer stops and its caller can rethrow the original error.
final class ByteSourceIO {
    let source: any SeekableByteSource
    private var context: UnsafeMutablePointer<AVIOContext>?
    /// The I/O context libavformat reads through (set once `init` returns).
    var io: UnsafeMutablePointer<AVIOContext> { context! }
    /// Position of the next read, bytes.
    private var position: Int64 = 0
    /// The first error the source threw, if any.
    private(set) var failure: (any Error)?

    /// Size of libavformat's read buffer, bytes.
    static let bufferBytes: Int32 = 64 * 1024

    /// - Throws: ``MediaError`` `media.export` when FFmpeg cannot allocate the context.
    init(_ source: any SeekableByteSource) throws {
        self.source = source
        guard let buffer = av_malloc(Int(Self.bufferBytes)) else { throw MediaError("media.export", "out of memory") }
        // The context points back at this object (unretained: the object owns the context, not the reverse).
        let read: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt8>?, Int32) -> Int32 = {
            opaque, dst, want in
            Unmanaged<ByteSourceIO>.fromOpaque(opaque!).takeUnretainedValue().read(
                into: UnsafeMutableRawBufferPointer(start: dst, count: Int(want)))
        }
        let seek: @convention(c) (UnsafeMutableRawPointer?, Int64, Int32) -> Int64 = { opaque, offset, whence in
            Unmanaged<ByteSourceIO>.fromOpaque(opaque!).takeUnretainedValue().seek(offset, whence: whence)
        }
        let made = avio_alloc_context(
            buffer.assumingMemoryBound(to: UInt8.self), Self.bufferBytes, 0,
            Unmanaged.passUnretained(self).toOpaque(), read, nil, seek)
        guard let made else {
            var b: UnsafeMutableRawPointer? = buffer
            av_freep(&b)
            throw MediaError("media.export", "out of memory")
        }
        context = made
    }

    deinit {
        // libavformat may have replaced the buffer it was given; free the one it holds now.
        guard context != nil else { return }
        av_freep(&context!.pointee.buffer)
        avio_context_free(&context)
    }

    private func read(into buffer: UnsafeMutableRawBufferPointer) -> Int32 {
        guard failure == nil else { return hw_averror(EIO) }
        do {
            let n = try source.read(at: position, into: buffer)
            guard n > 0 else { return hw_averror_eof() }
            position += Int64(n)
            return Int32(n)
        } catch {
            failure = error
            return hw_averror(EIO)
        }
    }

    private func seek(_ offset: Int64, whence: Int32) -> Int64 {
        let length = source.lengthBytes
        if whence & AVSEEK_SIZE != 0 { return length }
        let base: Int64
        switch whence & ~AVSEEK_FORCE {
        case SEEK_SET: base = 0
        case SEEK_CUR: base = position
        case SEEK_END: base = length
        default: return Int64(hw_averror(EINVAL))
        }
        let target = base + offset
        guard target >= 0, target <= length else { return Int64(hw_averror(EINVAL)) }
        position = target
        return target
    }
}

/// Demuxes one MP4 (ISO/IEC 14496-12; here a fragmented one: init segment then `moof`+`mdat` pairs,
/// §8.8) from a ``SeekableByteSource`` with libavformat's `mov` demuxer, reading lazily: fragments are
/// parsed as packets are read, so memory stays bounded by libavformat's buffers and per-sample index, not
/// by the length of the recording. Owns the `AVFormatContext` (closed in `deinit`, before the I/O context
/// it reads through is freed).
final class MP4Demuxer {
    private let input: ByteSourceIO
    private(set) var ctx: UnsafeMutablePointer<AVFormatContext>

    /// - Parameter asStored: Report samples exactly as the container stores them: no parser re-deriving
    ///   keyframe flags or timestamps from the bitstream (`AVFMT_FLAG_NOPARSE | AVFMT_FLAG_NOFILLIN`), for
    ///   ``MediaCheck``. Default `false`.
    /// - Throws: the source's own error when reading it failed; ``MediaError`` `media.export` when the
    ///   bytes are not an MP4 libavformat can read.
    init(_ source: any SeekableByteSource, asStored: Bool = false) throws {
        FFmpegLog.install()
        input = try ByteSourceIO(source)
        guard let c = avformat_alloc_context() else { throw MediaError("media.export", "out of memory") }
        c.pointee.pb = input.io
        c.pointee.flags |= AVFMT_FLAG_CUSTOM_IO
        if asStored { c.pointee.flags |= AVFMT_FLAG_NOPARSE | AVFMT_FLAG_NOFILLIN }
        var cp: UnsafeMutablePointer<AVFormatContext>? = c
        // On failure avformat_open_input frees the context (never a custom AVIOContext: `input` does).
        let r = avformat_open_input(&cp, nil, av_find_input_format("mp4"), nil)
        if let e = input.failure { throw e }
        guard r >= 0, let cp else {
            throw MediaError("media.export", "a stored run is not a readable MP4: \(averrorText(r))", averror: r)
        }
        ctx = cp
        let s = avformat_find_stream_info(cp, nil)
        if let e = input.failure { throw e }
        guard s >= 0 else {
            throw MediaError("media.export", "cannot read the stored streams: \(averrorText(s))", averror: s)
        }
    }

    deinit {
        var cp: UnsafeMutablePointer<AVFormatContext>? = ctx
        avformat_close_input(&cp)
    }

    var streamCount: Int { Int(ctx.pointee.nb_streams) }
    func stream(_ i: Int) -> UnsafeMutablePointer<AVStream> { ctx.pointee.streams[i]! }

    /// Reads the next packet into `p`.
    /// - Returns: `false` at the end of the source.
    /// - Throws: the source's error when reading it failed (a record overwritten or failing its CRC);
    ///   ``MediaError`` `media.export` when libavformat cannot parse what it read. An export never ends
    ///   early without saying so.
    func read(into p: Packet) throws -> Bool {
        av_packet_unref(p.p)
        let r = av_read_frame(ctx, p.p)
        if let e = input.failure { throw e }
        if r == hw_averror_eof() { return false }
        guard r >= 0 else {
            throw MediaError("media.export", "cannot read a stored sample: \(averrorText(r))", averror: r)
        }
        return true
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
