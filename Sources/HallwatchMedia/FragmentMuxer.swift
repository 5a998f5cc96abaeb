import CFFmpeg
import HallwatchCore

/// Codec parameters of one track, as the muxer needs them (copied from the demuxer, never decoded).
final class TrackParameters {
    let par: UnsafeMutablePointer<AVCodecParameters>
    /// Time base of the timestamps handed to the muxer for this track.
    let timeBase: AVRational
    init(copying src: UnsafePointer<AVCodecParameters>, timeBase: AVRational) throws {
        par = avcodec_parameters_alloc()
        self.timeBase = timeBase
        let r = avcodec_parameters_copy(par, src)
        guard r >= 0 else { throw MediaError("media.mux", "cannot copy codec parameters", averror: r) }
    }
    deinit {
        var p: UnsafeMutablePointer<AVCodecParameters>? = par
        avcodec_parameters_free(&p)
    }

    /// Replaces the out-of-band parameter sets (SPS/PPS[/VPS], Annex-B form) and picture size.
    func setExtradata(_ bytes: [UInt8], width: Int32, height: Int32) {
        av_freep(&par.pointee.extradata)
        let buf = av_mallocz(bytes.count + Int(AV_INPUT_BUFFER_PADDING_SIZE))!.assumingMemoryBound(to: UInt8.self)
        buf.update(from: bytes, count: bytes.count)
        par.pointee.extradata = buf
        par.pointee.extradata_size = Int32(bytes.count)
        if width > 0 && height > 0 {
            par.pointee.width = width
            par.pointee.height = height
        }
    }

    var extradata: [UInt8] {
        guard let d = par.pointee.extradata, par.pointee.extradata_size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: d, count: Int(par.pointee.extradata_size)))
    }
}

/// Turns access units into an fMP4/CMAF byte stream with libavformat's MP4 muxer, writing to memory.
///
/// The muxer runs with `movflags=frag_custom+empty_moov+default_base_moof+skip_trailer`: the header is the
/// init segment (`ftyp`+`moov` with an empty sample table, ISO/IEC 14496-12 §8.8.1), and each
/// ``cutFragment()`` emits exactly one `moof`+`mdat` pair (§8.8.4) holding every sample written since the
/// previous cut, with `tfdt` giving its base media decode time (§8.8.12). Fragment boundaries are
/// therefore decided by the caller, to the sample. One muxer serves one run.
final class FragmentMuxer {
    private var ctx: UnsafeMutablePointer<AVFormatContext>?
    private var sink: ByteSink
    /// The time base of each track's timestamps in the file (the muxer may choose its own), which is its
    /// timescale (`mdhd`, ISO/IEC 14496-12 §8.4.2) and the unit of its `tfdt`.
    private(set) var streamTimeBases: [AVRational] = []
    /// The time base of the timestamps handed to ``write(track:packet:dts:pts:duration:keyframe:)`` per track.
    let inputTimeBases: [AVRational]
    /// The init segment, produced at construction.
    let initSegment: [UInt8]

    /// Collects the muxer's output between cuts.
    final class ByteSink { var bytes: [UInt8] = [] }

    /// - Parameters:
    ///   - tracks: video first, then optional audio; timestamps later handed in use each track's time base.
    /// - Throws: ``MediaError`` `media.mux` when libavformat refuses the parameters (e.g. G.711 in MP4).
    init(tracks: [TrackParameters]) throws {
        var oc: UnsafeMutablePointer<AVFormatContext>?
        var r = avformat_alloc_output_context2(&oc, nil, "mp4", nil)
        guard r >= 0, let oc else { throw MediaError("media.mux", "cannot create the MP4 muxer", averror: r) }
        ctx = oc
        sink = ByteSink()
        inputTimeBases = tracks.map(\.timeBase)

        let bufferSize: Int32 = 64 * 1024
        let buffer = av_malloc(Int(bufferSize))!.assumingMemoryBound(to: UInt8.self)
        let opaque = Unmanaged.passUnretained(sink).toOpaque()
        let write: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<UInt8>?, Int32) -> Int32 = {
            opaque, buf, size in
            let sink = Unmanaged<ByteSink>.fromOpaque(opaque!).takeUnretainedValue()
            sink.bytes.append(contentsOf: UnsafeBufferPointer(start: buf, count: Int(size)))
            return size
        }
        guard let pb = avio_alloc_context(buffer, bufferSize, 1, opaque, nil, write, nil) else {
            av_free(buffer)
            avformat_free_context(oc)
            ctx = nil
            throw MediaError("media.mux", "cannot allocate the output buffer")
        }
        oc.pointee.pb = pb

        for t in tracks {
            guard let st = avformat_new_stream(oc, nil) else { throw MediaError("media.mux", "cannot add a track") }
            r = avcodec_parameters_copy(st.pointee.codecpar, t.par)
            guard r >= 0 else { throw MediaError("media.mux", "cannot copy codec parameters", averror: r) }
            st.pointee.codecpar.pointee.codec_tag = 0
            if t.par.pointee.codec_id == AV_CODEC_ID_HEVC {
                // `hvc1` (ISO/IEC 14496-15 §8.4.1): parameter sets in the `hvcC` (array_completeness 1), the
                // sample entry Safari plays and the codec string `hvc1.…` the live view names; libavformat's
                // default is `hev1`, which Safari and Debian's Chromium refuse (the exporter tags it the same way).
                st.pointee.codecpar.pointee.codec_tag = UInt32(0x6876_6331).byteSwapped  // "hvc1"
            }
            st.pointee.time_base = t.timeBase
        }
        let opts = Options([("movflags", "frag_custom+empty_moov+default_base_moof+skip_trailer")])
        r = avformat_write_header(oc, &opts.dict)
        guard r >= 0 else {
            throw MediaError(
                "media.mux",
                "the MP4 muxer refused the stream (\(tracks.map { codecName($0.par.pointee.codec_id) }.joined(separator: ", ")))",
                averror: r)
        }
        // The muxer may choose its own time bases (e.g. the audio sample rate); rescale into them.
        streamTimeBases = (0..<Int(oc.pointee.nb_streams)).map { oc.pointee.streams[$0]!.pointee.time_base }
        avio_flush(pb)
        initSegment = sink.bytes
        sink.bytes.removeAll(keepingCapacity: true)
    }

    deinit {
        if let oc = ctx {
            if let pb = oc.pointee.pb {
                av_freep(&oc.pointee.pb.pointee.buffer)
                var p: UnsafeMutablePointer<AVIOContext>? = pb
                avio_context_free(&p)
                oc.pointee.pb = nil
            }
            avformat_free_context(oc)
        }
    }

    /// Adds one sample to the open fragment. Timestamps are in the track's input time base.
    /// - Throws: ``MediaError`` `media.mux`.
    func write(track: Int, packet: Packet, dts: Int64, pts: Int64, duration: Int64, keyframe: Bool) throws {
        guard let oc = ctx else { return }
        let p = packet.p
        let inTB = inputTimeBases[track]
        let outTB = streamTimeBases[track]
        p.pointee.stream_index = Int32(track)
        p.pointee.dts = av_rescale_q(dts, inTB, outTB)
        p.pointee.pts = av_rescale_q(pts, inTB, outTB)
        p.pointee.duration = av_rescale_q(duration, inTB, outTB)
        if keyframe { p.pointee.flags |= AV_PKT_FLAG_KEY } else { p.pointee.flags &= ~AV_PKT_FLAG_KEY }
        p.pointee.pos = -1
        let r = av_write_frame(oc, p)
        guard r >= 0 else { throw MediaError("media.mux", "the muxer refused a sample", averror: r) }
    }

    /// Closes the open fragment and returns its bytes (`moof`+`mdat`), or `[]` when it holds no sample.
    /// - Throws: ``MediaError`` `media.mux`.
    func cutFragment() throws -> [UInt8] {
        guard let oc = ctx else { return [] }
        let r = av_write_frame(oc, nil)
        guard r >= 0 else { throw MediaError("media.mux", "cannot flush a fragment", averror: r) }
        avio_flush(oc.pointee.pb)
        // An exact-size copy; the collecting buffer stays unique, so clearing it keeps its (resident) capacity
        // instead of allocating — and page-faulting in — a new fragment-sized buffer every fragment.
        defer { sink.bytes.removeAll(keepingCapacity: true) }
        return sink.bytes.withUnsafeBufferPointer { Array($0) }
    }
}
