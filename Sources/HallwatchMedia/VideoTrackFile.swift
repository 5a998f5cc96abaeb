import CFFmpeg

/// The first video track of a media file, read whole into memory with libavformat (no decoding).
///
/// For tools that replay a file many times from memory (the benchmark's RTSP load generator): the file is
/// read once, and the samples keep the container's bitstream as is — in MP4 that is length-prefixed NAL
/// units (ISO/IEC 14496-15 §5.3.2 for H.264, §8.3.2 for H.265) described by ``extradata``.
public struct VideoTrackFile: Sendable {
    /// One coded picture (access unit) as the container stores it.
    public struct Sample: Sendable {
        /// The sample's bytes: NAL units each behind a big-endian length of ``VideoTrackFile/nalLengthBytes``.
        public var data: [UInt8]
        /// Presentation and decoding time, 90 kHz ticks, in the file's own origin.
        public var pts90k: Int64
        /// Decoding time, 90 kHz ticks, in the file's own origin.
        public var dts90k: Int64
        /// How long the picture is shown, 90 kHz ticks (0 when the file does not say).
        public var duration90k: Int64
        /// A random access point (an IDR/IRAP picture).
        public var isKey: Bool
    }

    /// H.264 or H.265.
    public var codec: VideoCodec
    /// The decoder configuration record: `avcC` (ISO/IEC 14496-15 §5.3.3.1) or `hvcC` (§8.3.3.1) bytes.
    public var extradata: [UInt8]
    /// Coded width, pixels.
    public var width: Int
    /// Coded height, pixels.
    public var height: Int
    /// Samples in decoding order.
    public var samples: [Sample]

    /// Reads the first H.264 or H.265 track of the file at `path`.
    /// - Throws: ``MediaError`` `media.file` when the file cannot be opened or read, `media.noVideo`,
    ///   `media.unsupportedCodec`.
    public static func read(path: String) throws -> VideoTrackFile {
        FFmpegLog.install()
        var ctx: UnsafeMutablePointer<AVFormatContext>?
        let r = avformat_open_input(&ctx, path, nil, nil)
        guard r >= 0, let c = ctx else {
            throw MediaError("media.file", "cannot open \(path): \(averrorText(r))", averror: r)
        }
        defer { avformat_close_input(&ctx) }
        let f = avformat_find_stream_info(c, nil)
        guard f >= 0 else { throw MediaError("media.file", "cannot read \(path): \(averrorText(f))", averror: f) }
        let index = av_find_best_stream(c, AVMEDIA_TYPE_VIDEO, -1, -1, nil, 0)
        guard index >= 0, let stream = c.pointee.streams[Int(index)] else {
            throw MediaError("media.noVideo", "\(path) has no video track")
        }
        let par = stream.pointee.codecpar.pointee
        guard let codec = VideoCodec(par.codec_id) else {
            throw MediaError(
                "media.unsupportedCodec", "\(path) holds \(codecName(par.codec_id)) video; H.264 and H.265 only")
        }
        let extradata =
            par.extradata.map { Array(UnsafeBufferPointer(start: $0, count: Int(par.extradata_size))) } ?? []
        let timeBase = stream.pointee.time_base
        let tick = hw_rational(1, 90_000)
        func to90k(_ t: Int64) -> Int64 { av_rescale_q(t, timeBase, tick) }
        var samples: [Sample] = []
        let packet = Packet()
        while true {
            av_packet_unref(packet.p)
            let e = av_read_frame(c, packet.p)
            if e == hw_averror_eof() { break }
            guard e >= 0 else {
                throw MediaError("media.file", "reading \(path) failed: \(averrorText(e))", averror: e)
            }
            guard packet.streamIndex == Int(index), packet.size > 0 else { continue }
            let dts = packet.dts ?? packet.pts ?? 0
            samples.append(
                Sample(
                    data: Array(packet.data), pts90k: to90k(packet.pts ?? dts), dts90k: to90k(dts),
                    duration90k: to90k(packet.p.pointee.duration), isKey: packet.isKey))
        }
        return VideoTrackFile(
            codec: codec, extradata: extradata, width: Int(par.width), height: Int(par.height), samples: samples)
    }

    /// Bytes of each NAL unit's length prefix in ``Sample/data`` (1, 2 or 4), from the configuration record's
    /// `lengthSizeMinusOne`; `nil` when ``extradata`` is not an `avcC`/`hvcC` record (an Annex-B stream).
    public var nalLengthBytes: Int? { NALUnits.lengthBytes(codec: codec, configuration: extradata) }
}
