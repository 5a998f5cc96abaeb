import CFFmpeg
import Crypto
import Foundation
import HallwatchCore

/// Per-packet SHA-256 of a media file, in exactly the text FFmpeg's `framehash` muxer prints for
/// `ffmpeg -i FILE -map 0 -c copy -fflags +bitexact -f framehash -hash sha256 -` (format version 2: a
/// `#`-header naming each stream's time base, type, codec, extradata hash and size, then one line per packet
/// `stream, dts, pts, duration, size, sha256`).
///
/// The text is made by the same libavformat `framehash` muxer, in process, fed the packets of the file read
/// with the `mov` demuxer and timestamps moved as the `ffmpeg` command line moves them without `-copyts`
/// (minus the file's start time, rescaled through µs): anyone can recompute it with stock FFmpeg and compare.
/// For a file of one stream (a camera's video) the muxer writes the header and each packet's line is printed
/// here in its format, hashed by swift-crypto: libavutil's SHA-256 is plain C, and it was the slowest part of
/// an evidence export (``line(_:)``; `BundleTests` compares the text with stock `ffmpeg`'s).
/// `+bitexact` leaves out the `#software` line, which names the libavformat version and would differ between
/// a recipient's FFmpeg and the box's.
public enum FrameHash {
    /// What ``compute(path:)`` read.
    public struct Result: Sendable, Equatable {
        /// The framehash text, UTF-8, ending in a newline.
        public var text: String
        /// Video packets (access units) in the file.
        public var videoFrames: Int
        /// Smallest and largest presentation time of a video packet, µs on the file's timeline (no start
        /// offset applied); `nil` without video.
        public var firstVideoMicros: Int64?
        /// Largest presentation time of a video packet, µs on the file's timeline.
        public var lastVideoMicros: Int64?
    }

    /// Reads every packet of the file at `path` and returns its framehash text.
    /// - Throws: ``MediaError`` `media.file` when the file cannot be opened or read as media.
    public static func compute(path: String) throws -> Result { try compute(path: path, printing: true) }

    static func compute(path: String, printing: Bool) throws -> Result {
        FFmpegLog.install()
        var input: UnsafeMutablePointer<AVFormatContext>?
        let r = avformat_open_input(&input, path, nil, nil)
        guard r >= 0, let ic = input else {
            throw MediaError("media.file", "cannot open \(path): \(averrorText(r))", averror: r)
        }
        defer { avformat_close_input(&input) }
        let found = avformat_find_stream_info(ic, nil)
        guard found >= 0 else { throw MediaError("media.file", "cannot read the streams of \(path)", averror: found) }
        do {
            return try hash(ic, name: path, printing: printing) { p in av_read_frame(ic, p.p) }
        } catch is NeedsTheMuxer {
            avformat_close_input(&input)
            return try compute(path: path, printing: false)
        }
    }

    /// The same for an MP4 (ISO/IEC 14496-12) read from `source` through custom I/O, with the same `mov`
    /// demuxer and stream probing, so the text equals stock `ffmpeg`'s on a file of those bytes. The evidence
    /// bundle passes a source that writes the file as it is read (one pass: `HallwatchEvidence`'s
    /// `ProgressiveRunWriter`).
    /// - Throws: what `source` throws, unchanged; ``MediaError`` `media.export` when its bytes are not an MP4,
    ///   `media.file` when a packet cannot be read or hashed.
    /// - Parameter textPath: When given, the text goes to this file (created or truncated) instead of
    ///   ``Result/text``, which is then empty: memory does not grow with the number of packets.
    public static func compute(source: any SeekableByteSource, textPath: String? = nil) throws -> Result {
        do {
            let demuxer = try MP4Demuxer(source)
            return try hash(demuxer.ctx, name: "the export", printing: true, textPath: textPath) { p in
                try demuxer.read(into: p) ? 0 : hw_averror_eof()
            }
        } catch is NeedsTheMuxer {
            let demuxer = try MP4Demuxer(source)
            return try hash(demuxer.ctx, name: "the export", printing: false, textPath: textPath) { p in
                try demuxer.read(into: p) ? 0 : hw_averror_eof()
            }
        }
    }

    /// Thrown by ``hash(_:name:printing:textPath:next:)`` when a file needs the `framehash` muxer itself: the caller
    /// starts again without printing.
    struct NeedsTheMuxer: Error {}

    /// One packet's line as FFmpeg 5.1's `framehash` muxer (`libavformat/hashenc.c`, format version 2) writes
    /// it: `stream, dts, pts, duration, size, sha256` with widths 10, 10, 8 and 8; the SHA-256 taken by
    /// swift-crypto (SHA-NI or ARMv8 SHA2 instructions where the CPU has them, ~4× libavutil's C SHA-256).
    static func line(_ p: Packet) -> [UInt8] {
        var hasher = SHA256()
        hasher.update(bufferPointer: UnsafeRawBufferPointer(start: p.p.pointee.data, count: p.size))
        let pkt = p.p.pointee
        // printf's `%d, %10lld, %10lld, %8lld, %8d, ` then the digest in lower-case hex (no Foundation
        // formatting: it cost more than the hash, per packet).
        var out: [UInt8] = []
        out.reserveCapacity(128)
        func field(_ value: Int64, width: Int) {
            let digits = Array(String(value).utf8)
            if digits.count < width {
                out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: width - digits.count))
            }
            out.append(contentsOf: digits)
            out.append(contentsOf: [UInt8(ascii: ","), UInt8(ascii: " ")])
        }
        field(Int64(pkt.stream_index), width: 0)
        field(pkt.dts, width: 10)
        field(pkt.pts, width: 10)
        field(pkt.duration, width: 8)
        field(Int64(pkt.size), width: 8)
        let hex = Array("0123456789abcdef".utf8)
        for byte in hasher.finalize() {
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0x0F)])
        }
        out.append(UInt8(ascii: "\n"))
        return out
    }

    /// Feeds every packet `next` reads from `ic` to the `framehash` muxer (SHA-256).
    ///
    /// With `printing`, a file of one stream whose packets all have a timestamp, a duration and no side data
    /// gets its header from the muxer and its packet lines from ``line(_:)`` (the same text: nothing in such a
    /// packet is changed by the muxer, and one stream needs no interleaving); anything else throws
    /// ``NeedsTheMuxer`` and every packet goes through the muxer.
    /// - Parameter next: Reads the next packet into its argument: 0, `AVERROR_EOF` at the end, or a negative
    ///   AVERROR.
    static func hash(
        _ ic: UnsafeMutablePointer<AVFormatContext>, name path: String, printing: Bool, textPath: String? = nil,
        next: (Packet) throws -> Int32
    ) throws -> Result {
        let printing = printing && ic.pointee.nb_streams == 1
        var r: Int32
        var output: UnsafeMutablePointer<AVFormatContext>?
        r = avformat_alloc_output_context2(&output, nil, "framehash", nil)
        guard r >= 0, let oc = output else { throw MediaError("media.file", "no framehash muxer", averror: r) }
        defer {
            if oc.pointee.pb != nil && textPath != nil {
                avio_closep(&oc.pointee.pb)
            } else if oc.pointee.pb != nil {
                var buffer: UnsafeMutablePointer<UInt8>?
                _ = avio_close_dyn_buf(oc.pointee.pb, &buffer)
                av_free(buffer)
                oc.pointee.pb = nil
            }
            avformat_free_context(oc)
        }
        oc.pointee.flags |= AVFMT_FLAG_BITEXACT
        let count = Int(ic.pointee.nb_streams)
        var video: Int?
        for i in 0..<count {
            let src = ic.pointee.streams[i]!
            guard let st = avformat_new_stream(oc, nil) else { throw MediaError("media.file", "cannot add a stream") }
            avcodec_parameters_copy(st.pointee.codecpar, src.pointee.codecpar)
            st.pointee.time_base = src.pointee.time_base
            // As ffmpeg's stream copy: the stream's aspect ratio, else the codec parameters' (from the SPS).
            var sar = src.pointee.sample_aspect_ratio
            if sar.num == 0 { sar = src.pointee.codecpar.pointee.sample_aspect_ratio }
            st.pointee.sample_aspect_ratio = sar
            st.pointee.codecpar.pointee.sample_aspect_ratio = sar
            if video == nil && src.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO { video = i }
        }
        if let textPath {
            r = avio_open(&oc.pointee.pb, textPath, AVIO_FLAG_WRITE)
            guard r >= 0 else { throw MediaError("media.file", "cannot write \(textPath)", averror: r) }
        } else {
            r = avio_open_dyn_buf(&oc.pointee.pb)
            guard r >= 0 else { throw MediaError("media.file", "out of memory", averror: r) }
        }
        let opts = Options([("hash", "sha256")])
        r = avformat_write_header(oc, &opts.dict)
        guard r >= 0 else { throw MediaError("media.file", "the framehash muxer refused \(path)", averror: r) }

        // As ffmpeg without -copyts: every timestamp minus the file's start time (µs), in the stream's time base.
        let start = ic.pointee.start_time == hw_nopts_value() ? 0 : ic.pointee.start_time
        let micro = hw_rational(1, 1_000_000)
        var result = Result(text: "", videoFrames: 0, firstVideoMicros: nil, lastVideoMicros: nil)
        let p = Packet()
        var lastDTS = Int64.min
        while true {
            av_packet_unref(p.p)
            r = try next(p)
            if r == hw_averror_eof() { break }
            guard r >= 0 else { throw MediaError("media.file", "cannot read a packet of \(path)", averror: r) }
            let i = p.streamIndex
            guard i < count else { continue }
            let tb = ic.pointee.streams[i]!.pointee.time_base
            if i == video {
                result.videoFrames += 1
                if let pts = p.pts ?? p.dts {
                    let us = av_rescale_q(pts, tb, micro)
                    result.firstVideoMicros = min(result.firstVideoMicros ?? us, us)
                    result.lastVideoMicros = max(result.lastVideoMicros ?? us, us)
                }
            }
            let shift = av_rescale_q(-start, hw_time_base_q(), tb)
            if let d = p.dts { p.p.pointee.dts = d + shift }
            if let t = p.pts { p.p.pointee.pts = t + shift }
            p.p.pointee.pos = -1
            if printing {
                let pkt = p.p.pointee
                guard pkt.duration > 0, pkt.side_data_elems == 0, p.dts != nil, p.pts != nil, pkt.pts >= pkt.dts,
                    pkt.dts >= lastDTS
                else { throw NeedsTheMuxer() }
                lastDTS = pkt.dts
                line(p).withUnsafeBufferPointer { avio_write(oc.pointee.pb, $0.baseAddress, Int32($0.count)) }
                continue
            }
            r = av_interleaved_write_frame(oc, p.p)
            guard r >= 0 else { throw MediaError("media.file", "framehash of \(path) failed", averror: r) }
        }
        r = av_write_trailer(oc)
        guard r >= 0 else { throw MediaError("media.file", "framehash of \(path) failed", averror: r) }
        if textPath != nil {
            r = avio_closep(&oc.pointee.pb)
            guard r >= 0 else { throw MediaError("media.file", "cannot write the framehash text", averror: r) }
            return result
        }
        var buffer: UnsafeMutablePointer<UInt8>?
        let size = avio_close_dyn_buf(oc.pointee.pb, &buffer)
        oc.pointee.pb = nil
        defer { av_free(buffer) }
        if let buffer, size > 0 {
            result.text = String(decoding: UnsafeBufferPointer(start: buffer, count: Int(size)), as: UTF8.self)
        }
        return result
    }
}
