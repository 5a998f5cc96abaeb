import CFFmpeg
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
    public static func compute(path: String) throws -> Result {
        FFmpegLog.install()
        var input: UnsafeMutablePointer<AVFormatContext>?
        var r = avformat_open_input(&input, path, nil, nil)
        guard r >= 0, let ic = input else {
            throw MediaError("media.file", "cannot open \(path): \(averrorText(r))", averror: r)
        }
        defer { avformat_close_input(&input) }
        r = avformat_find_stream_info(ic, nil)
        guard r >= 0 else { throw MediaError("media.file", "cannot read the streams of \(path)", averror: r) }

        var output: UnsafeMutablePointer<AVFormatContext>?
        r = avformat_alloc_output_context2(&output, nil, "framehash", nil)
        guard r >= 0, let oc = output else { throw MediaError("media.file", "no framehash muxer", averror: r) }
        defer {
            if oc.pointee.pb != nil {
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
            st.pointee.sample_aspect_ratio = src.pointee.sample_aspect_ratio
            if video == nil && src.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO { video = i }
        }
        r = avio_open_dyn_buf(&oc.pointee.pb)
        guard r >= 0 else { throw MediaError("media.file", "out of memory", averror: r) }
        let opts = Options([("hash", "sha256")])
        r = avformat_write_header(oc, &opts.dict)
        guard r >= 0 else { throw MediaError("media.file", "the framehash muxer refused \(path)", averror: r) }

        // As ffmpeg without -copyts: every timestamp minus the file's start time (µs), in the stream's time base.
        let start = ic.pointee.start_time == hw_nopts_value() ? 0 : ic.pointee.start_time
        let micro = hw_rational(1, 1_000_000)
        var result = Result(text: "", videoFrames: 0, firstVideoMicros: nil, lastVideoMicros: nil)
        let p = Packet()
        while true {
            av_packet_unref(p.p)
            r = av_read_frame(ic, p.p)
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
            r = av_interleaved_write_frame(oc, p.p)
            guard r >= 0 else { throw MediaError("media.file", "framehash of \(path) failed", averror: r) }
        }
        r = av_write_trailer(oc)
        guard r >= 0 else { throw MediaError("media.file", "framehash of \(path) failed", averror: r) }
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
