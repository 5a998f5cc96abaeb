import CFFmpeg
import Foundation
import HallwatchConfig
import HallwatchCore
import Logging
import Synchronization

/// A flag another thread sets to make blocking FFmpeg calls return (through the interrupt callback).
public final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    /// A flag not yet set.
    public init() {}
    /// Sets the flag; blocking reads notice it at their next wake-up and return.
    public func stop() { flag.store(true, ordering: .relaxed) }
    /// Whether ``stop()`` was called.
    public var isStopped: Bool { flag.load(ordering: .relaxed) }
}

/// How to reach a camera.
public struct RTSPSourceOptions: Sendable {
    /// `rtsp://host[:port]/path`, without credentials.
    public var url: String
    /// RTSP user and password, inserted into the URL handed to FFmpeg only (never logged).
    public var username: String?
    /// The RTSP password (secret; never logged).
    public var password: String?
    /// RTP over the RTSP TCP connection (interleaved, RFC 7826 §14), over UDP, or `auto` (TCP, then UDP on
    /// 461; ``CaptureSession`` does the trying).
    public var transport: CameraConfig.Transport
    /// Connect and stall timeout: no bytes for this long ends the session with `rtsp.timeout`.
    public var ioTimeout: Duration
    /// Also receive the audio track.
    public var audio: Bool

    /// Options from their parts; the defaults are TCP, a 5 s I/O timeout and no audio.
    public init(
        url: String, username: String? = nil, password: String? = nil, transport: CameraConfig.Transport = .tcp,
        ioTimeout: Duration = .seconds(5), audio: Bool = false
    ) {
        self.url = url
        self.username = username
        self.password = password
        self.transport = transport
        self.ioTimeout = ioTimeout
        self.audio = audio
    }

    /// The URL with credentials percent-encoded into it, for FFmpeg's RTSP client only.
    var urlWithCredentials: String {
        guard let user = username, let schemeEnd = url.range(of: "://") else { return url }
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        let u = user.addingPercentEncoding(withAllowedCharacters: allowed) ?? user
        let p = (password ?? "").addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
        return url.replacingCharacters(in: schemeEnd, with: "://\(u):\(p)@")
    }
}

/// An open RTSP session read with libavformat's RTSP client (for `transport: udp` and cameras recorded
/// with audio; see ``InterleavedRTSPSource`` for the usual case) (RFC 7826 DESCRIBE/SETUP/PLAY; SDP per
/// RFC 8866; RTP per RFC 3550 with the H.264/H.265 payload formats of RFC 6184 and RFC 7798).
///
/// Owns the `AVFormatContext` (closed, with TEARDOWN, in `deinit`). Blocking calls return early when the
/// ``StopFlag`` is set or when no byte arrived for `ioTimeout` (the interrupt callback checks both), so a
/// stalled camera never hangs the worker.
final class RTSPSource: PacketSource {
    private(set) var ctx: UnsafeMutablePointer<AVFormatContext>?
    let videoIndex: Int
    let audioIndex: Int?
    private let watchdog: Watchdog
    /// The camera answered our DESCRIBE with a Basic challenge only (and took Basic credentials).
    let takesOnlyBasic: Bool

    /// Whether the camera authenticates with Basic only: one OPTIONS and DESCRIBE by ``RTSPClient`` on a
    /// connection of their own (a camera that cannot be asked counts as no).
    static func cameraTakesOnlyBasic(_ options: RTSPSourceOptions, stop: StopFlag, clocks: any Clocks) -> Bool {
        guard
            let client = try? RTSPClient(
                url: options.url, username: options.username, password: options.password, stop: stop,
                ioTimeout: options.ioTimeout, clocks: clocks)
        else { return false }
        _ = try? client.describe()
        return client.usedBasic
    }

    /// State read by the interrupt callback: when the last packet arrived, and the stop flag.
    final class Watchdog {
        let stop: StopFlag
        let clocks: any Clocks
        let timeoutNanos: UInt64
        var lastProgress: UInt64
        var timedOut = false
        init(stop: StopFlag, timeout: Duration, clocks: any Clocks) {
            self.stop = stop
            self.clocks = clocks
            self.timeoutNanos =
                UInt64(timeout.components.seconds) * 1_000_000_000
                + UInt64(timeout.components.attoseconds / 1_000_000_000)
            self.lastProgress = clocks.monotonicNanos()
        }
        /// Set while closing (monotonic ns): until then the stop flag no longer aborts, so the TEARDOWN
        /// libavformat writes in `avformat_close_input` reaches the camera.
        var closingUntil: UInt64?
        func touch() { lastProgress = clocks.monotonicNanos() }
        var shouldAbort: Bool {
            if let until = closingUntil { return clocks.monotonicNanos() > until }
            if stop.isStopped { return true }
            if clocks.monotonicNanos() - lastProgress > timeoutNanos {
                timedOut = true
                return true
            }
            return false
        }
    }

    /// Connects, DESCRIBEs, SETUPs and PLAYs.
    /// - Throws: ``MediaError`` — `rtsp.connect`, `rtsp.auth`, `rtsp.timeout`, `rtsp.garbage`,
    ///   `media.noVideo`, `media.unsupportedCodec`.
    init(_ options: RTSPSourceOptions, stop: StopFlag, clocks: any Clocks, logger: Logger) throws {
        watchdog = Watchdog(stop: stop, timeout: options.ioTimeout, clocks: clocks)
        // libavformat's client answers a Basic challenge without a word; ask the camera as Hallwatch's client
        // does (OPTIONS, DESCRIBE), so this path warns as the TCP one does.
        takesOnlyBasic =
            options.username != nil
            && Self.cameraTakesOnlyBasic(options, stop: stop, clocks: clocks)
        if takesOnlyBasic {
            logger.warning(
                "the camera takes only Basic authentication: the password crosses the network in clear text; prefer Digest in the camera's settings"
            )
        }
        FFmpegLog.install()
        guard let c = avformat_alloc_context() else { throw MediaError("rtsp.connect", "out of memory") }
        c.pointee.interrupt_callback = AVIOInterruptCB(
            callback: { opaque in Unmanaged<Watchdog>.fromOpaque(opaque!).takeUnretainedValue().shouldAbort ? 1 : 0 },
            opaque: Unmanaged.passUnretained(watchdog).toOpaque())
        let timeoutMicros = options.ioTimeout.components.seconds * 1_000_000
        let opts = Options([
            ("rtsp_transport", options.transport == .udp ? "udp" : "tcp"),  // `auto` was resolved by the session
            ("timeout", String(timeoutMicros)),  // socket I/O timeout, µs
            ("protocol_whitelist", "rtsp,rtp,tcp,udp"),
            ("allowed_media_types", options.audio ? "video+audio" : "video"),
            ("max_delay", "500000"),  // UDP reorder queue, µs
            ("reorder_queue_size", "64"),
            ("fflags", "nobuffer+genpts"),
        ])
        var cp: UnsafeMutablePointer<AVFormatContext>? = c
        let r = avformat_open_input(&cp, options.urlWithCredentials, nil, &opts.dict)
        guard r >= 0, let opened = cp else {
            // avformat_open_input frees the context on failure.
            if watchdog.timedOut {
                throw MediaError("rtsp.timeout", "no answer from the camera within \(options.ioTimeout)", averror: r)
            }
            if stop.isStopped { throw MediaError("rtsp.timeout", "stopped before the camera answered", averror: r) }
            throw MediaError.ffmpeg(r, "cannot open the RTSP stream")
        }
        ctx = opened
        let unused = opts.leftovers.filter { $0 != "fflags" }
        if !unused.isEmpty { logger.warning("demuxer ignored options", metadata: ["options": "\(unused)"]) }

        var video: Int?
        var audio: Int?
        var unsupported: String?
        for i in 0..<Int(opened.pointee.nb_streams) {
            let par = opened.pointee.streams[i]!.pointee.codecpar.pointee
            if par.codec_type == AVMEDIA_TYPE_VIDEO && video == nil {
                if VideoCodec(par.codec_id) != nil { video = i } else { unsupported = codecName(par.codec_id) }
            } else if par.codec_type == AVMEDIA_TYPE_AUDIO && audio == nil && options.audio {
                audio = i
            }
            if par.codec_type != AVMEDIA_TYPE_VIDEO && i != audio {
                opened.pointee.streams[i]!.pointee.discard = AVDISCARD_ALL
            }
        }
        guard let v = video else {
            var p: UnsafeMutablePointer<AVFormatContext>? = opened
            avformat_close_input(&p)
            ctx = nil
            if let u = unsupported {
                throw MediaError(
                    "media.unsupportedCodec",
                    "the camera sends \(u) video; Hallwatch stores H.264 and H.265 without transcoding")
            }
            throw MediaError("media.noVideo", "the stream has no video track")
        }
        videoIndex = v
        audioIndex = audio
        watchdog.touch()
    }

    deinit {
        var p = ctx
        guard p != nil else { return }
        // TEARDOWN (RFC 7826 §13.7) so the camera frees the session now, not at its session timeout: it is
        // written while closing, which a set stop flag would abort at once; allow it 1 s.
        watchdog.closingUntil = watchdog.clocks.monotonicNanos() + 1_000_000_000
        avformat_close_input(&p)
    }

    func stream(_ i: Int) -> UnsafeMutablePointer<AVStream> { ctx!.pointee.streams[i]! }
    var videoParameters: UnsafePointer<AVCodecParameters> { UnsafePointer(stream(videoIndex).pointee.codecpar) }
    var videoTimeBase: AVRational { stream(videoIndex).pointee.time_base }
    var audioTrack: (parameters: UnsafePointer<AVCodecParameters>, timeBase: AVRational)? {
        audioIndex.map { (UnsafePointer(stream($0).pointee.codecpar), stream($0).pointee.time_base) }
    }

    /// Reads the next packet, one packet behind libavformat: the newest packet is held until the next one
    /// arrives, and dropped when the session ends instead. When a read fails (a stall, a reset) or the stop
    /// interrupts it, libavformat flushes its parser and hands over the picture it was assembling as a packet
    /// — half an access unit, whose last RTP packets never came (a decode error at 1080p). Costs one frame
    /// of delay on this path and, at the end of a session, its last frame. Returns `false` at the end of the
    /// stream or on stop.
    /// - Throws: ``MediaError`` `rtsp.timeout` on a stall, `rtsp.*` on other failures.
    func read(into packet: Packet) throws -> Bool {
        while true {
            guard try readFromLibavformat(into: incoming) else { return false }
            let hadOne = holding
            holding = true
            if hadOne {
                av_packet_unref(packet.p)
                av_packet_move_ref(packet.p, held.p)
            }
            av_packet_move_ref(held.p, incoming.p)
            if hadOne { return true }
        }
    }

    /// The packet held back by ``read(into:)``, and the one read after it.
    private let held = Packet()
    private let incoming = Packet()
    private var holding = false

    /// libavformat's next packet, renumbered (0 video, 1 audio, 2 other).
    private func readFromLibavformat(into packet: Packet) throws -> Bool {
        av_packet_unref(packet.p)
        let r = av_read_frame(ctx, packet.p)
        if r == hw_averror_eof() { return false }
        if watchdog.stop.isStopped { return false }
        if r < 0 {
            if watchdog.timedOut {
                throw MediaError(
                    "rtsp.timeout",
                    "no data from the camera for \(DurationText.format(.nanoseconds(Int64(watchdog.timeoutNanos))))",
                    averror: r)
            }
            var e = MediaError.ffmpeg(r, "reading the stream failed")
            if e.code == "rtsp.connect" { e.code = "rtsp.dropped" }  // it played: the session was dropped
            throw e
        }
        watchdog.touch()
        // PacketSource numbering: 0 video, 1 audio, anything else ignored by the caller.
        let i = packet.streamIndex
        packet.p.pointee.stream_index = i == videoIndex ? 0 : (i == audioIndex ? 1 : 2)
        return true
    }
}
