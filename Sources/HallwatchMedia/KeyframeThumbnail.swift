import CFFmpeg
import Foundation

/// A JPEG picture of one recorded keyframe: the web page's camera thumbnails.
public struct JPEGThumbnail: Sendable, Equatable {
    /// The JPEG file's bytes (JFIF, baseline, 4:2:0, full-range YCbCr).
    public var jpeg: [UInt8]
    /// Picture size, pixels.
    public var width: Int
    public var height: Int

    public init(jpeg: [UInt8], width: Int, height: Int) {
        self.jpeg = jpeg
        self.width = width
        self.height = height
    }
}

/// Decodes the first keyframe of a stored run with libavcodec and encodes it as a JPEG with FFmpeg's own
/// MJPEG encoder, scaled down to at most `maxWidth` pixels wide. Video is decoded here and nowhere else in
/// Hallwatch (recording never transcodes); this is the one place pictures are made.
///
/// Owns its FFmpeg objects (``ThumbnailCodec``, ``ThumbnailFrame``: freed when it returns or throws).
/// Steps of ``make(from:maxWidth:quality:)``:
/// 1. Demux the run (an init segment then fragments) with libavformat's `mov` demuxer; read packets of the
///    video track until a keyframe.
/// 2. Decode it alone (send it, then flush): the decoder's first picture is the keyframe, also with B-frames.
/// 3. Scale by an integer factor `k = ceil(width / maxWidth)` with a box filter on each plane (no libswscale),
///    converting limited-range luma and chroma (ITU-R BT.601/709 "video range") to full range (JFIF).
/// 4. Encode one picture with the MJPEG encoder at fixed quantiser `quality` (2 best … 31 worst).
///
/// Blocking and CPU-bound (a 1080p H.264 keyframe: tens of milliseconds): call it off the cooperative pool.
public enum KeyframeThumbnail {
    /// Widest thumbnail, pixels.
    public static let defaultMaxWidth = 320

    /// The thumbnail of `run`'s first keyframe (steps above).
    /// - Throws: the source's own error when reading it failed; ``MediaError`` `media.thumbnail` when there is no
    ///   video keyframe, it does not decode, its pixel format is not 8-bit 4:2:0, or the encoder fails;
    ///   `media.export` when the bytes are not an MP4.
    public static func make(from run: any SeekableByteSource, maxWidth: Int = defaultMaxWidth, quality: Int = 5)
        throws -> JPEGThumbnail
    {
        let demuxer = try MP4Demuxer(run)
        guard
            let video = (0..<demuxer.streamCount).first(where: {
                demuxer.stream($0).pointee.codecpar?.pointee.codec_type == AVMEDIA_TYPE_VIDEO
            }), let par = demuxer.stream(video).pointee.codecpar
        else { throw MediaError("media.thumbnail", "the recording has no video track") }
        guard let decoderCodec = avcodec_find_decoder(par.pointee.codec_id) else {
            throw MediaError("media.thumbnail", "no decoder for the recorded codec")
        }
        let decoder = try ThumbnailCodec(decoderCodec)
        var r = avcodec_parameters_to_context(decoder.ctx, par)
        guard r >= 0 else { throw MediaError("media.thumbnail", "decoder parameters refused", averror: r) }
        decoder.ctx.pointee.thread_count = 1
        r = avcodec_open2(decoder.ctx, decoderCodec, nil)
        guard r >= 0 else { throw MediaError("media.thumbnail", "the decoder did not open", averror: r) }

        // 1–2: the first keyframe, decoded alone.
        let packet = Packet()
        var found = false
        for _ in 0..<10_000 {
            guard try demuxer.read(into: packet) else { break }
            if packet.streamIndex == video && packet.isKey {
                found = true
                break
            }
        }
        guard found else { throw MediaError("media.thumbnail", "no keyframe in the recording") }
        r = avcodec_send_packet(decoder.ctx, packet.p)
        guard r >= 0 else { throw MediaError("media.thumbnail", "the keyframe does not decode", averror: r) }
        _ = avcodec_send_packet(decoder.ctx, nil)
        let picture = try ThumbnailFrame()
        r = avcodec_receive_frame(decoder.ctx, picture.f)
        guard r >= 0 else { throw MediaError("media.thumbnail", "the keyframe gave no picture", averror: r) }

        // 3: scale and range-convert into a YUVJ420P frame.
        let src = picture.f.pointee
        let format = src.format
        guard format == AV_PIX_FMT_YUV420P.rawValue || format == AV_PIX_FMT_YUVJ420P.rawValue else {
            throw MediaError("media.thumbnail", "pixel format \(format) is not 8-bit 4:2:0")
        }
        let limited = format == AV_PIX_FMT_YUV420P.rawValue && src.color_range != AVCOL_RANGE_JPEG
        let (w, h) = (Int(src.width), Int(src.height))
        let k = max(1, (w + maxWidth - 1) / maxWidth)
        let (ow, oh) = ((w / k) & ~1, (h / k) & ~1)
        guard ow >= 2, oh >= 2 else { throw MediaError("media.thumbnail", "picture too small (\(w)×\(h))") }
        let out = try ThumbnailFrame()
        out.f.pointee.format = AV_PIX_FMT_YUVJ420P.rawValue
        out.f.pointee.width = Int32(ow)
        out.f.pointee.height = Int32(oh)
        r = av_frame_get_buffer(out.f, 0)
        guard r >= 0 else { throw MediaError("media.thumbnail", "out of memory", averror: r) }
        for plane in 0..<3 {
            let chroma = plane > 0
            let (pw, ph) = chroma ? (ow / 2, oh / 2) : (ow, oh)
            let (sw, sh) = chroma ? ((w + 1) / 2, (h + 1) / 2) : (w, h)
            let (s, sStride) = Self.plane(src, plane)
            let (d, dStride) = Self.plane(out.f.pointee, plane)
            guard let s, let d else { throw MediaError("media.thumbnail", "a picture plane is missing") }
            Self.boxScale(
                from: s, stride: sStride, width: sw, height: sh, to: d, stride: dStride, width: pw, height: ph,
                factor: k, range: limited ? (chroma ? .limitedChroma : .limitedLuma) : .full)
        }

        // 4: one JPEG.
        guard let mjpeg = avcodec_find_encoder(AV_CODEC_ID_MJPEG) else {
            throw MediaError("media.thumbnail", "FFmpeg has no MJPEG encoder")
        }
        let encoder = try ThumbnailCodec(mjpeg)
        let e = encoder.ctx
        e.pointee.width = Int32(ow)
        e.pointee.height = Int32(oh)
        e.pointee.pix_fmt = AV_PIX_FMT_YUVJ420P
        e.pointee.time_base = hw_rational(1, 25)
        e.pointee.flags |= Int32(AV_CODEC_FLAG_QSCALE)
        e.pointee.global_quality = Int32(FF_QP2LAMBDA) * Int32(min(31, max(2, quality)))
        r = avcodec_open2(e, mjpeg, nil)
        guard r >= 0 else { throw MediaError("media.thumbnail", "the MJPEG encoder did not open", averror: r) }
        out.f.pointee.quality = e.pointee.global_quality
        out.f.pointee.pts = 0
        r = avcodec_send_frame(e, out.f)
        guard r >= 0 else { throw MediaError("media.thumbnail", "the MJPEG encoder refused the picture", averror: r) }
        let jpeg = Packet()
        r = avcodec_receive_packet(e, jpeg.p)
        guard r >= 0 else { throw MediaError("media.thumbnail", "the MJPEG encoder gave no picture", averror: r) }
        return JPEGThumbnail(jpeg: Array(jpeg.data), width: ow, height: oh)
    }

    /// Plane `i` (0 luma, 1 Cb, 2 Cr) of `f` and its line size, bytes.
    static func plane(_ f: AVFrame, _ i: Int) -> (UnsafeMutablePointer<UInt8>?, Int) {
        switch i {
        case 0: (f.data.0, Int(f.linesize.0))
        case 1: (f.data.1, Int(f.linesize.1))
        default: (f.data.2, Int(f.linesize.2))
        }
    }

    /// What a sample's range is converted with.
    enum Range {
        /// Already full range (JFIF): copied.
        case full
        /// Luma 16–235 → 0–255.
        case limitedLuma
        /// Chroma 16–240 around 128 → 0–255.
        case limitedChroma
    }

    /// Averages `factor`×`factor` boxes of one 8-bit plane into `dst` (its `width`×`height` pixels), converting
    /// each average's range.
    static func boxScale(
        from src: UnsafePointer<UInt8>, stride sStride: Int, width sw: Int, height sh: Int,
        to dst: UnsafeMutablePointer<UInt8>, stride dStride: Int, width: Int, height: Int, factor k: Int, range: Range
    ) {
        for y in 0..<height {
            for x in 0..<width {
                var sum = 0
                var n = 0
                for dy in 0..<k {
                    let sy = y * k + dy
                    guard sy < sh else { break }
                    let row = src + sy * sStride
                    for dx in 0..<k {
                        let sx = x * k + dx
                        guard sx < sw else { break }
                        sum += Int(row[sx])
                        n += 1
                    }
                }
                let v = n > 0 ? (sum + n / 2) / n : 0
                let out: Int
                switch range {
                case .full: out = v
                case .limitedLuma: out = ((v - 16) * 255 + 109) / 219
                case .limitedChroma: out = 128 + ((v - 128) * 255) / 224
                }
                dst[y * dStride + x] = UInt8(clamping: out)
            }
        }
    }
}

/// An owned `AVCodecContext` (freed in `deinit`).
final class ThumbnailCodec {
    let ctx: UnsafeMutablePointer<AVCodecContext>
    init(_ codec: UnsafePointer<AVCodec>) throws {
        guard let c = avcodec_alloc_context3(codec) else { throw MediaError("media.thumbnail", "out of memory") }
        ctx = c
    }
    deinit {
        var c: UnsafeMutablePointer<AVCodecContext>? = ctx
        avcodec_free_context(&c)
    }
}

/// An owned `AVFrame` (freed in `deinit`).
final class ThumbnailFrame {
    let f: UnsafeMutablePointer<AVFrame>
    init() throws {
        guard let f = av_frame_alloc() else { throw MediaError("media.thumbnail", "out of memory") }
        self.f = f
    }
    deinit {
        var f: UnsafeMutablePointer<AVFrame>? = f
        av_frame_free(&f)
    }
}
