import CFFmpeg
import HallwatchCore
import Logging

/// Where a capture session's packets come from: video (and optionally audio) access units with
/// timestamps in their track's time base, and the codec parameters the muxer needs.
protocol PacketSource: AnyObject {
    /// Video codec parameters; `extradata` holds the out-of-band parameter sets (Annex-B), possibly empty.
    var videoParameters: UnsafePointer<AVCodecParameters> { get }
    /// Time base of video packet timestamps (1/90 000 s for RTP video).
    var videoTimeBase: AVRational { get }
    /// Audio codec parameters and time base, when audio is received.
    var audioTrack: (parameters: UnsafePointer<AVCodecParameters>, timeBase: AVRational)? { get }
    /// Reads the next packet (`streamIndex` 0 = video, 1 = audio). Returns `false` at the end of the stream
    /// or when stopped. - Throws: ``MediaError``.
    func read(into packet: Packet) throws -> Bool
}

/// The capture worker's usual source: Hallwatch's ``RTSPClient`` with RTP interleaved on TCP, video only,
/// depacketized by ``RTPDepacketizer`` into one packet per access unit (Annex-B, PTS = the RTP timestamp
/// in 90 kHz ticks, extended to 64 bits; no DTS — ``VideoTimeline`` derives it).
///
/// Used for `transport: tcp` cameras without audio (the default); cameras with `transport: udp` or
/// `audio: true` are read by libavformat (``RTSPSource``), whose UDP reordering and AAC/G.711
/// depacketizers Hallwatch does not reimplement.
final class InterleavedRTSPSource: PacketSource {
    private let client: RTSPClient
    private let logger: Logger
    private var depacketizer: RTPDepacketizer
    private let channel: UInt8
    private let parameters: UnsafeMutablePointer<AVCodecParameters>
    /// Access units completed but not yet read (a packet can complete two).
    private var ready: [RTPDepacketizer.AccessUnit] = []
    private var framesOnOtherChannels = 0
    /// No access unit for this long while bytes still arrive is `rtsp.noFrames` (10 s or the I/O timeout).
    private var noFramesNanos: UInt64 = 10_000_000_000
    private var lastUnitNanos: UInt64 = 0
    /// RTP kept from before the PLAY reply, at most.
    static let maxEarlyBytes = 32 << 20
    let videoTimeBase: AVRational
    var videoParameters: UnsafePointer<AVCodecParameters> { UnsafePointer(parameters) }
    var audioTrack: (parameters: UnsafePointer<AVCodecParameters>, timeBase: AVRational)? { nil }

    /// Connects, DESCRIBEs, SETUPs the video media and PLAYs.
    /// - Throws: ``MediaError`` — `rtsp.connect`, `rtsp.auth`, `rtsp.timeout`, `rtsp.garbage`,
    ///   `media.noVideo`, `media.unsupportedCodec`.
    init(_ options: RTSPSourceOptions, stop: StopFlag, clocks: any Clocks, logger: Logger) throws {
        self.logger = logger
        client = try RTSPClient(
            url: options.url, username: options.username, password: options.password,
            stop: stop, ioTimeout: options.ioTimeout, clocks: clocks)
        let (media, base) = try client.describe()
        guard let codec = media.codec else {
            throw MediaError(
                "media.unsupportedCodec",
                "the camera sends \(media.encodingDisplayName) video; Hallwatch stores H.264 and H.265 without transcoding"
            )
        }
        guard media.clockRate > 0 else { throw MediaError("rtsp.garbage", "the SDP gives no RTP clock rate") }
        videoTimeBase = hw_rational(1, Int32(clamping: media.clockRate))
        depacketizer = RTPDepacketizer(codec: codec, payloadType: media.payloadType)
        parameters = avcodec_parameters_alloc()
        parameters.pointee.codec_type = AVMEDIA_TYPE_VIDEO
        parameters.pointee.codec_id = codec.avID
        var extradata: [UInt8] = []
        for set in media.parameterSets { extradata += [0, 0, 0, 1] + set }
        if !extradata.isEmpty {
            let buf = av_mallocz(extradata.count + Int(AV_INPUT_BUFFER_PADDING_SIZE))!.assumingMemoryBound(
                to: UInt8.self)
            buf.update(from: extradata, count: extradata.count)
            parameters.pointee.extradata = buf
            parameters.pointee.extradata_size = Int32(extradata.count)
        }
        var early: [RTPDepacketizer.AccessUnit] = []
        var earlyBytes = 0
        var earlyDepacketizer = depacketizer
        do {
            channel = try client.setupAndPlay(media, base: base) { ch, payload in
                // Bounded: the PLAY reply is awaited for the I/O timeout at most, and kept RTP for 32 MiB.
                guard ch == 0, earlyBytes < Self.maxEarlyBytes else { return }
                earlyDepacketizer.push(payload) {
                    early.append($0)
                    earlyBytes += $0.bytes.count
                }
            }
        } catch {
            var p: UnsafeMutablePointer<AVCodecParameters>? = parameters
            avcodec_parameters_free(&p)
            throw error
        }
        // RTP that arrived before the PLAY reply was read on channel 0, where every camera seen puts it.
        depacketizer = earlyDepacketizer
        ready = early
        client.streaming()
        noFramesNanos = max(10, UInt64(options.ioTimeout.components.seconds)) * 1_000_000_000
        lastUnitNanos = client.now()
        if client.usedBasic {
            logger.warning(
                "the camera takes only Basic authentication: the password crosses the network in clear text; prefer Digest in the camera's settings"
            )
        }
        if media.parameterSets.isEmpty {
            logger.notice(
                "the SDP has no parameter sets; waiting for in-band SPS/PPS", metadata: ["codec": "\(codec.rawValue)"])
        }
    }

    deinit {
        var p: UnsafeMutablePointer<AVCodecParameters>? = parameters
        avcodec_parameters_free(&p)
    }

    func read(into packet: Packet) throws -> Bool {
        while ready.isEmpty {
            let message: RTSPClient.Message
            do { message = try client.next() } catch let e as MediaError where [.stopped, .ended].contains(e.code) {
                return false
            }
            switch message {
            case .interleaved(let ch, let payload) where ch == channel:
                depacketizer.push(payload) { ready.append($0) }
            case .interleaved(let ch, _):
                if ch != channel &+ 1 { framesOnOtherChannels += 1 }  // RTCP is expected; anything else is counted
            case .response:
                break  // keep-alive replies
            case .request(let method, let cseq):
                try client.answerCameraRequest(method, cseq: cseq)
            }
            try client.keepAliveIfDue()
            if ready.isEmpty, client.now() - lastUnitNanos > noFramesNanos {
                throw MediaError(
                    "rtsp.noFrames",
                    "the camera sends data but no video frame could be rebuilt for \(noFramesNanos / 1_000_000_000) s "
                        + "(expected RTP payload type \(depacketizer.payloadType) on interleaved channel \(channel); "
                        + "\(depacketizer.packetsDropped) packets unusable, \(framesOnOtherChannels) frames on other channels, "
                        + "\(depacketizer.unitsDropped) units dropped)")
            }
        }
        lastUnitNanos = client.now()
        let unit = ready.removeFirst()
        av_packet_unref(packet.p)
        guard av_new_packet(packet.p, Int32(unit.bytes.count)) >= 0 else {
            throw MediaError("media.mux", "out of memory for a packet")
        }
        unit.bytes.withUnsafeBufferPointer { packet.p.pointee.data.update(from: $0.baseAddress!, count: $0.count) }
        packet.p.pointee.pts = unit.timestamp
        packet.p.pointee.dts = hw_nopts_value()
        packet.p.pointee.stream_index = 0
        if unit.keyframe { packet.p.pointee.flags |= AV_PKT_FLAG_KEY }
        return true
    }
}
