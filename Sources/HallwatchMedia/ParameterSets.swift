import CFFmpeg

/// Finds the parameter sets (H.264 SPS/PPS, H.265 VPS/SPS/PPS) a keyframe carries in-band and the picture
/// size they describe, with FFmpeg's `extract_extradata` bitstream filter and codec parser (no decoding).
///
/// Cameras that omit `sprop-parameter-sets` from the SDP (RFC 6184 §8.1) are recorded from the first
/// in-band set; a change of set mid-stream (resolution change) is detected here and starts a new run with
/// a new init segment.
final class ParameterSets {
    private var bsf: UnsafeMutablePointer<AVBSFContext>?
    private let parser: UnsafeMutablePointer<AVCodecParserContext>?
    private let parserCtx: UnsafeMutablePointer<AVCodecContext>?
    private let out = Packet()

    init(codec: VideoCodec, par: UnsafePointer<AVCodecParameters>) {
        if let filter = av_bsf_get_by_name("extract_extradata"), av_bsf_alloc(filter, &bsf) >= 0, let b = bsf {
            avcodec_parameters_copy(b.pointee.par_in, par)
            if av_bsf_init(b) < 0 { av_bsf_free(&bsf) }
        }
        parser = av_parser_init(Int32(codec.avID.rawValue))
        parser?.pointee.flags |= PARSER_FLAG_COMPLETE_FRAMES
        parserCtx = avcodec_alloc_context3(nil)
    }

    deinit {
        av_bsf_free(&bsf)
        if let p = parser { av_parser_close(p) }
        var c = parserCtx
        avcodec_free_context(&c)
    }

    /// The parameter sets in `packet` (Annex-B), or `nil` when it carries none.
    func extract(from packet: Packet) -> [UInt8]? {
        guard let b = bsf else { return nil }
        let ref = Packet()
        guard av_packet_ref(ref.p, packet.p) >= 0, av_bsf_send_packet(b, ref.p) >= 0 else { return nil }
        var found: [UInt8]?
        while av_bsf_receive_packet(b, out.p) >= 0 {
            var size: Int = 0
            if let sd = av_packet_get_side_data(out.p, AV_PKT_DATA_NEW_EXTRADATA, &size), size > 0 {
                found = Array(UnsafeBufferPointer(start: sd, count: size))
            }
            av_packet_unref(out.p)
        }
        return found
    }

    /// Whether two Annex-B parameter-set blobs hold the same set of NAL units. Order and repetition do not
    /// count: a payloader that repeats SPS/PPS before an IDR which also carries them in-band (RFC 6184
    /// §8.1 `sprop-parameter-sets` plus in-band copies) is not a parameter change.
    static func sameSets(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a == b || Set(nalUnits(a)) == Set(nalUnits(b))
    }

    /// Splits an Annex-B byte stream (ITU-T H.264 Annex B) at its 3- and 4-byte start codes. Zero bytes
    /// at the end of a unit are dropped: a NAL unit never ends in 0x00 (H.264 §7.4.1, H.265 §7.4.2), so
    /// they are `trailing_zero_8bits` or part of the next start code — cameras differ in how many they send.
    static func nalUnits(_ bytes: [UInt8]) -> [[UInt8]] {
        var units: [[UInt8]] = []
        var start: Int?
        func close(_ s: Int, _ end: Int) {
            var e = end
            while e > s, bytes[e - 1] == 0 { e -= 1 }
            if e > s { units.append(Array(bytes[s..<e])) }
        }
        var i = 0
        while i + 2 < bytes.count {
            if bytes[i] == 0, bytes[i + 1] == 0, bytes[i + 2] == 1 {
                if let s = start { close(s, i) }
                i += 3
                start = i
            } else {
                i += 1
            }
        }
        if let s = start { close(s, bytes.count) }
        return units
    }

    /// The presentation size described by `extradata` followed by the keyframe `packet`, or (0, 0).
    func pictureSize(extradata: [UInt8], keyframe packet: Packet) -> (width: Int32, height: Int32) {
        guard let p = parser, let c = parserCtx else { return (0, 0) }
        var input = extradata
        input.append(contentsOf: packet.data)
        var outBuf: UnsafeMutablePointer<UInt8>? = nil
        var outSize: Int32 = 0
        input.withUnsafeBufferPointer { buf in
            _ = av_parser_parse2(
                p, c, &outBuf, &outSize, buf.baseAddress, Int32(buf.count), hw_nopts_value(), hw_nopts_value(), 0)
        }
        let w = p.pointee.width > 0 ? p.pointee.width : c.pointee.width
        let h = p.pointee.height > 0 ? p.pointee.height : c.pointee.height
        return (w, h)
    }

    /// Whether an Annex-B access unit continues a picture begun in an earlier one: its first slice is not the
    /// picture's first — H.264 `first_mb_in_slice` ≠ 0 (§7.3.3: ue(v), so 0 is a single 1 bit), H.265
    /// `first_slice_segment_in_pic_flag` = 0 (§7.3.6.1). Units without a slice are not continuations.
    static func continuesPicture(_ bytes: UnsafeBufferPointer<UInt8>, codec: VideoCodec) -> Bool {
        var i = 0
        var zeros = 0
        while i < bytes.count {
            let b = bytes[i]
            i += 1
            if b == 0 {
                zeros += 1
                continue
            }
            defer { zeros = 0 }
            guard b == 1, zeros >= 2, i < bytes.count else { continue }
            switch codec {
            case .h264:
                let type = bytes[i] & 0x1F
                if type == 1 || type == 5 { return i + 1 < bytes.count && bytes[i + 1] & 0x80 == 0 }
            case .hevc:
                let type = (bytes[i] >> 1) & 0x3F
                if type <= 31 { return i + 2 < bytes.count && bytes[i + 2] & 0x80 == 0 }
            }
        }
        return false
    }
}
