import CFFmpeg
import HallwatchConfig
import HallwatchCore
import Logging

/// Where a capture session delivers init segments and fragments. Called on the capture thread, in order.
/// Implementations must not block for long and must not throw away frames silently: the recorder
/// connection buffers while the recorder restarts.
public protocol FragmentSink: AnyObject {
    /// Takes one init segment or fragment, in order, on the capture thread.
    func deliver(_ segment: MediaSegment)
}

/// What a capture session knows about its stream, for the camera's bus state.
public struct CaptureStatus: Sendable, Equatable {
    /// `h264` or `hevc`.
    public var codec: String
    /// Presentation size, pixels.
    public var width: Int
    /// Presentation height, pixels.
    public var height: Int
    /// Frames per second that arrive, counted on the box's clock over the last ~5 s (until about a second of
    /// arrivals was counted, what the timestamps say). A camera whose timestamps say otherwise (see
    /// ``timestampFPS``) has a wrong clock.
    public var fps: Double
    /// Frames per second the camera's timestamps say (from the median frame duration).
    public var timestampFPS: Double = 0
    /// RTP transport in use: `tcp` or `udp` (with `transport: auto`, the one the camera took).
    public var transport = ""
    /// Received video+audio payload, bits per second over the last ~5 s (0 until measured).
    public var bitrateBps: Int
    /// Audio codec when audio is recorded.
    public var audioCodec: String?
    /// Samples repaired so far: re-stamped outliers, units stamped because they had no timestamp, joined
    /// split access units.
    public var outliersRestamped: Int
    /// Units stamped because they had no timestamp.
    public var missingStamped: Int
    /// Split access units joined.
    public var joinedUnits: Int
    /// Samples the muxer refused (`media.mux`); each ends its run, recording resumes at the next keyframe.
    public var samplesRefused = 0
    /// RTP packets of another SSRC than this session's, dropped (a camera still sending a previous session's
    /// RTP on the new connection); Hallwatch's TCP client only.
    public var packetsOtherSSRC = 0
    /// Runs started anew because the camera's clock fell more than 1 s behind its arrivals (a frame rate that
    /// lies by much: timestamps of 25 fps, frames at 21 per second). Non-zero means the camera's clock is wrong.
    public var clockReanchors = 0
}

/// Settings of a capture session beyond how to reach the camera.
public struct FragmentPolicy: Sendable {
    /// Longest fragment; a GOP longer than this is split at a non-key sample.
    public var maxFragmentDuration: Duration
    /// How much video the live chunks of a watched camera gather before they leave together (P6): frames
    /// arriving within this go to the recorder in one message. Longer saves CPU (one wake-up of the recorder
    /// per message), shorter saves latency (a frame waits at most this minus one frame). Default 100 ms:
    /// 3 frames at 25 fps, 1 at 10 fps.
    public var liveChunkDuration: Duration
    /// A policy with fragments of at most `maxFragmentDuration` and live chunks handed over every
    /// `liveChunkDuration`.
    public init(maxFragmentDuration: Duration = .seconds(1), liveChunkDuration: Duration = .milliseconds(100)) {
        self.maxFragmentDuration = maxFragmentDuration
        self.liveChunkDuration = liveChunkDuration
    }
    var max90k: Int64 { MediaTime90k(seconds: maxFragmentDuration.seconds).ticks }
    var liveChunk90k: Int64 { MediaTime90k(seconds: liveChunkDuration.seconds).ticks }
}

/// One RTSP session of one camera: reads packets, repairs timestamps (``VideoTimeline``), remuxes them —
/// never decodes or transcodes — into fMP4 fragments with ``FragmentMuxer``, and delivers init segments
/// and fragments with their metadata to a ``FragmentSink``.
///
/// Fragment rule: every keyframe starts a fragment, and a fragment never exceeds
/// ``FragmentPolicy/maxFragmentDuration`` (a long GOP is split). A run — one init segment and its
/// fragments, one media timeline — starts at the first keyframe, on a timestamp discontinuity, and on a
/// change of parameter sets (e.g. resolution).
///
/// Wall clock: each fragment's start in box UTC comes from ``RunWallClock``: settled on the minimum of
/// *arrival − media time* over the run's first second of arrivals (so a burst of buffered frames right
/// after PLAY does not drag it late; the run's segments are held until then, so none is placed on a start
/// that later moves), then following the camera's clock with at most 500 ppm slew, never earlier
/// than the camera's previous run. Arrivals are read on the monotonic clock; a step of the box's wall
/// clock (NTP correcting a box that booted with a wrong time) of 1 s or more starts a new run at the next
/// keyframe, a smaller one is slewed away.
public final class CaptureSession {
    let camera: CameraID
    let source: RTSPSourceOptions
    let policy: FragmentPolicy
    let clocks: any Clocks
    let logger: Logger

    /// A session whose first run has not started after this long (no keyframe with parameter sets) is
    /// ended with `media.noKeyframe` and reconnected (a new session usually starts with an IDR): 30 s.
    static let firstKeyframeNanos: UInt64 = 30_000_000_000

    /// A wall-clock step at least this large (µs) starts a new run: 1 s.
    static let clockStepMicros: Int64 = 1_000_000
    /// Differences between the wall clock and the monotonic clock below this (µs) are reading noise.
    static let clockStepNoiseMicros: Int64 = 2_000

    /// End of the camera's newest run on the box's clock: set it from the previous session before
    /// ``run(stop:sink:onStatus:)`` so a new run never starts before it (runs never overlap, even after
    /// the box's clock stepped back); read it afterwards for the next session.
    public var lastRunEnd: UTCMicros?

    /// RTP packets of another synchronization source that the last ``run(stop:sink:onStatus:)`` dropped (see
    /// ``CaptureStatus/packetsOtherSSRC``), final once it returned.
    public private(set) var packetsOtherSSRC = 0
    /// The status at the end of the last ``run(stop:sink:onStatus:)`` (repair counts up to its last frame),
    /// `nil` when no run started.
    public private(set) var finalStatus: CaptureStatus?

    /// A session for `camera` that reaches it through `source`, cuts fragments by `policy`, and reads time (arrival, timeouts) on `clocks`.
    public init(camera: CameraID, source: RTSPSourceOptions, policy: FragmentPolicy, clocks: any Clocks, logger: Logger)
    {
        self.camera = camera
        self.source = source
        self.policy = policy
        self.clocks = clocks
        self.logger = logger
    }

    /// The transport the last ``run(stop:sink:onStatus:)`` connected with, `tcp` or `udp` (with `auto`, the one
    /// the camera took); `nil` before a connection was made.
    public private(set) var usedTransport: CameraConfig.Transport?

    /// Connects: Hallwatch's own client for RTP over TCP without audio, libavformat's otherwise. With `auto`,
    /// TCP first and, when the camera refuses it (`rtsp.transport`, 461 Unsupported Transport), UDP on a
    /// new connection at once.
    /// - Throws: ``MediaError`` from the connection and handshake.
    func openSource(stop: StopFlag) throws -> any PacketSource {
        func open(_ transport: CameraConfig.Transport) throws -> any PacketSource {
            var options = source
            options.transport = transport
            let src: any PacketSource =
                transport == .tcp && !source.audio
                ? try InterleavedRTSPSource(options, stop: stop, clocks: clocks, logger: logger)
                : try RTSPSource(options, stop: stop, clocks: clocks, logger: logger)
            usedTransport = transport
            return src
        }
        guard source.transport == .auto else { return try open(source.transport) }
        do {
            return try open(.tcp)
        } catch let e as MediaError where e.code == .transport {
            logger.notice(
                "the camera refuses RTP over TCP (461); using UDP", metadata: ["camera.id": "\(camera)"])
            return try open(.udp)
        }
    }

    /// Runs the session until the camera ends the stream, a fatal error occurs, or `stop` is set.
    /// `onStatus` is called when the first run starts and then about every 5 s.
    /// - Throws: ``MediaError`` (see its codes); returns normally on a clean end of stream or on stop.
    public func run(stop: StopFlag, sink: any FragmentSink, onStatus: (CaptureStatus) -> Void) throws {
        let src = try openSource(stop: stop)
        defer { packetsOtherSSRC = src.packetsOtherSSRC }
        let remuxer = try Remuxer(source: src, camera: camera, policy: policy, sink: sink, logger: logger)
        remuxer.status.transport = usedTransport?.rawValue ?? ""
        finalStatus = nil
        defer {
            // Runs after `remuxer.finish()` (declared later): counts include the last frames.
            if remuxer.lastRunID > 0 {
                remuxer.status.packetsOtherSSRC = src.packetsOtherSSRC
                remuxer.measureArrivalRate()
                finalStatus = remuxer.currentStatus()
            }
        }
        remuxer.lastRunEnd = lastRunEnd?.micros
        defer { lastRunEnd = remuxer.lastRunEnd.map(UTCMicros.init) }
        // Arrival times come from the monotonic clock, converted to UTC once per session, so a wall-clock
        // step during the session cannot bend a run's timeline.
        let utcOrigin = clocks.utcNow()
        let monoOrigin = clocks.monotonicNanos()
        var windowStart = monoOrigin
        var windowBytes = 0
        var announced = false
        // Steps of the box's wall clock seen so far (µs), and when it was last compared.
        var stepped: Int64 = 0
        var lastClockCheck = monoOrigin

        defer { remuxer.finish() }
        while !stop.isStopped {
            let packet = Packet()
            guard try src.read(into: packet) else { break }
            let now = clocks.monotonicNanos()
            windowBytes += packet.size
            if now - lastClockCheck >= 1_000_000_000 {
                lastClockCheck = now
                let step = clocks.utcNow().micros - (utcOrigin.micros + Int64((now - monoOrigin) / 1000) + stepped)
                if abs(step) >= Self.clockStepNoiseMicros {
                    stepped += step
                    if abs(step) >= Self.clockStepMicros {
                        logger.notice(
                            "box clock stepped; new run at the next keyframe",
                            metadata: ["camera.id": "\(camera)", "step.ms": "\(step / 1000)"])
                        remuxer.boxClockStepped = true
                    }
                }
            }
            if !remuxer.hasRun, now - monoOrigin > Self.firstKeyframeNanos {
                throw MediaError(
                    "media.noKeyframe",
                    "no keyframe with parameter sets in the first \(Self.firstKeyframeNanos / 1_000_000_000) s of the stream"
                )
            }
            if packet.streamIndex == 0 {
                try remuxer.video(packet, arrival: utcOrigin.adding(micros: Int64((now - monoOrigin) / 1000) + stepped))
            } else if packet.streamIndex == 1 {
                remuxer.audio(packet)
            }
            // The first bitrate after about 1 s (sessions shorter than 5 s would otherwise show 0), then every 5 s.
            if remuxer.hasRun
                && (!announced || now - windowStart >= (remuxer.status.bitrateBps == 0 ? 1_000_000_000 : 5_000_000_000))
            {
                let seconds = Double(now - windowStart) / 1e9
                if seconds >= 1 {
                    remuxer.status.bitrateBps = Int(Double(windowBytes * 8) / seconds)
                    remuxer.measureArrivalRate()
                    windowStart = now
                    windowBytes = 0
                }
                remuxer.status.packetsOtherSSRC = src.packetsOtherSSRC
                onStatus(remuxer.currentStatus())
                announced = true
            }
        }
    }
}

/// The per-session remuxing state: timestamp repair, the current run's muxer, fragment cutting, audio.
/// Used on the capture thread only.
final class Remuxer {
    /// A video access unit on its way through the ``VideoTimeline``.
    struct Unit {
        var packet: Packet
        var arrival: UTCMicros
        var parameterSets: [UInt8]?
    }

    /// One run: an init segment, then fragments, on one media timeline starting at 0.
    final class Run {
        let muxer: FragmentMuxer
        /// The run's id: its settled start in µs (see ``Remuxer/settle(_:)``); 0 until then.
        var id: UInt64
        /// Box UTC µs of the first sample's arrival.
        let firstArrival: Int64
        /// Segments cut before the start settled, delivered (re-timed) once it has.
        var held: [MediaSegment] = []
        /// Where the run's media time falls on the box's clock.
        var clock: RunWallClock
        /// Box UTC of the open fragment's start.
        var fragmentUTC: UTCMicros
        /// The timeline's DTS of the run's first sample: subtracted so every run's media time starts at 0.
        let baseDTS90k: Int64
        var sequence: UInt32 = 0
        var fragmentStart90k: Int64 = 0
        var fragmentDuration90k: Int64 = 0
        var fragmentKey = false
        var fragmentSamples = 0
        /// The run's start in the audio track's time base (camera clock).
        var audioOrigin: Int64 = 0
        var lastAudioDTS: Int64 = .min
        /// The first audio DTS written to ``muxer`` (audio time base): where the stored audio track's decode
        /// times count from.
        var firstAudioDTS: Int64?
        /// The per-frame chunk writer while someone watches (P6), started at a keyframe; `nil` otherwise.
        var chunker: LiveChunkWriter?
        /// Chunks sent in this run: their sequence numbers (from 1, apart from the fragments').
        var chunkSequence: UInt32 = 0
        init(muxer: FragmentMuxer, firstArrival: Int64, clock: RunWallClock, baseDTS90k: Int64) {
            self.muxer = muxer
            self.id = 0
            self.firstArrival = firstArrival
            self.clock = clock
            self.baseDTS90k = baseDTS90k
            fragmentUTC = UTCMicros(Int64(clock.lastWall.rounded()))
        }
    }

    let camera: CameraID
    let policy: FragmentPolicy
    let sink: any FragmentSink
    let logger: Logger
    let codec: VideoCodec
    let video: TrackParameters
    let videoTB: AVRational
    let parameterSets: ParameterSets
    var extradata: [UInt8]
    var audio: TrackParameters?
    var audioTB = hw_rational(1, 48_000)
    /// Duration of an audio frame when the timestamps don't say (AAC: 1024 samples).
    var audioNominal: Int64 = 1024

    var timeline = VideoTimeline<Unit>(join: { first, next in try? first.packet.append(next.packet) })
    var run: Run?
    var status: CaptureStatus
    var keyframesWithoutParameterSets = 0
    var lastRunID: UInt64 = 0
    /// End of the previous run on the box's clock (µs): the next run never starts before it.
    var lastRunEnd: Int64?
    /// Set by the session when the box's wall clock stepped: the run ends at the next keyframe.
    var boxClockStepped = false
    /// One audio packet is held back until the next one gives its duration.
    var pendingAudio: (packet: Packet, rel: Int64)?
    var audioBeforeRun: [Packet] = []
    /// PTS (90 kHz) of the previous video packet, to join the slices of one picture.
    var lastVideoPTS90k: Int64?
    /// The source may split a picture into several packets (see ``PacketSource/deliversWholeAccessUnits``).
    let joinsSlices: Bool

    var hasRun: Bool { run != nil }
    /// Arrival times (box UTC µs) of the first and last video sample since the last measurement, and how
    /// many arrived: the frame rate that really arrives (case 9: timestamps of 25 fps, frames at 21 per second).
    var arrivals: (first: Int64, last: Int64, count: Int)?

    /// Sets ``CaptureStatus/fps`` from the samples' arrivals since the last call, then starts a new window at
    /// the last one. A window of less than 0.5 s is left to grow.
    func measureArrivalRate() {
        guard let w = arrivals, w.count >= 2, w.last - w.first >= 500_000 else { return }
        status.fps = (Double(w.count - 1) * 1e6 / Double(w.last - w.first) * 100).rounded() / 100
        arrivals = (w.last, w.last, 1)
    }

    init(source src: any PacketSource, camera: CameraID, policy: FragmentPolicy, sink: any FragmentSink, logger: Logger)
        throws
    {
        self.camera = camera
        self.policy = policy
        self.sink = sink
        self.logger = logger
        joinsSlices = !src.deliversWholeAccessUnits
        videoTB = src.videoTimeBase
        codec = VideoCodec(src.videoParameters.pointee.codec_id)!
        video = try TrackParameters(copying: src.videoParameters, timeBase: hw_rational(1, 90_000))
        extradata = video.extradata
        parameterSets = ParameterSets(codec: codec, par: src.videoParameters)

        // Audio: AAC and the other codecs MP4 takes are remuxed; G.711 is not (FFmpeg 5.1's MP4 muxer refuses
        // it, and we do not transcode): the audio track is left out and that is logged once per session.
        if let a = src.audioTrack {
            let id = a.parameters.pointee.codec_id
            if id == AV_CODEC_ID_PCM_ALAW || id == AV_CODEC_ID_PCM_MULAW {
                logger.warning(
                    "G.711 audio is not recorded (MP4 cannot carry it without transcoding)",
                    metadata: ["camera.id": "\(camera)"])
            } else {
                audioTB = a.timeBase
                let track = try TrackParameters(copying: a.parameters, timeBase: audioTB)
                if track.par.pointee.frame_size <= 0 && id == AV_CODEC_ID_AAC { track.par.pointee.frame_size = 1024 }
                if track.par.pointee.frame_size > 0 { audioNominal = Int64(track.par.pointee.frame_size) }
                audio = track
            }
        }
        status = CaptureStatus(
            codec: codec.rawValue, width: Int(video.par.pointee.width), height: Int(video.par.pointee.height),
            fps: 0, bitrateBps: 0, audioCodec: audio.map { codecName($0.par.pointee.codec_id) },
            outliersRestamped: 0, missingStamped: 0, joinedUnits: 0)
    }

    func currentStatus() -> CaptureStatus {
        status.timestampFPS = (timeline.measuredFPS * 100).rounded() / 100
        // Until a second of arrivals was counted, what the timestamps say.
        if status.fps == 0 { status.fps = status.timestampFPS }
        status.outliersRestamped = timeline.outliersRestamped
        status.missingStamped = timeline.missingStamped
        status.joinedUnits = timeline.joined
        return status
    }

    /// Step 2–3: a video packet enters the timeline (keyframes with their parameter sets).
    func video(_ packet: Packet, arrival: UTCMicros) throws {
        packet.trimTrailingZeros()
        var pts = (packet.pts ?? packet.dts).map { av_rescale_q($0, videoTB, hw_rational(1, 90_000)) }
        // A packet that continues a picture (its first slice is not the picture's first) belongs to the previous
        // access unit: libavformat's H.264 parser splits an IDR sent as several slices, each behind a repeated
        // SPS/PPS (GStreamer `config-interval=-1`), into one packet per slice, the later ones often without a
        // timestamp. It is joined to the newest unit whatever their timestamps (the first picture after PLAY often
        // has none); failing that, the previous packet's PTS makes the timeline join them (step 1).
        if joinsSlices, ParameterSets.continuesPicture(packet.data, codec: codec) {
            if timeline.joinToNewest(keyframe: packet.isKey, payload: Unit(packet: packet, arrival: arrival)) {
                return
            }
            if let last = lastVideoPTS90k { pts = last }
        }
        lastVideoPTS90k = pts ?? lastVideoPTS90k
        let ps = packet.isKey ? parameterSets.extract(from: packet) : nil
        try handle(
            timeline.push(
                pts90k: pts, keyframe: packet.isKey, payload: Unit(packet: packet, arrival: arrival, parameterSets: ps))
        )
    }

    /// Step 8: flush the timeline and the last fragment.
    func finish() {
        try? handle(timeline.flush())
        endRun()
    }

    func handle(_ events: [VideoTimeline<Unit>.Event]) throws {
        for event in events {
            switch event {
            case .runBreak(let reason):
                logger.notice("new run", metadata: ["camera.id": "\(camera)", "reason": "\(reason)"])
                endRun()
            case .sample(let s):
                try sample(s)
            }
        }
    }

    /// Steps 4–6 for one repaired video sample.
    func sample(_ s: VideoTimeline<Unit>.Sample) throws {
        let a = s.payload.arrival.micros
        arrivals = arrivals.map { ($0.first, a, $0.count + 1) } ?? (a, a, 1)
        if s.keyframe, let ps = s.payload.parameterSets, !ParameterSets.sameSets(ps, extradata) {
            if run != nil {
                logger.notice("new run", metadata: ["camera.id": "\(camera)", "reason": "parameter sets changed"])
                endRun()
            }
            extradata = ps
        }
        if s.keyframe, boxClockStepped, run != nil {
            logger.notice("new run", metadata: ["camera.id": "\(camera)", "reason": "box clock stepped"])
            endRun()
        }
        if s.keyframe { boxClockStepped = false }
        if s.keyframe, let r = run, r.clock.behindMicros > Self.reanchorMicros {
            // 500 ppm of slew cannot follow a camera whose clock is percent off: re-anchor on the arrivals with a
            // new run (it starts at this keyframe's arrival; the gap shows the camera's missing time).
            status.clockReanchors += 1
            logger.warning(
                "the camera's clock runs slow: recording fell behind its arrivals; new run",
                metadata: [
                    "camera.id": "\(camera)", "behind.ms": "\(Int(r.clock.behindMicros / 1000))",
                    "reanchors": "\(status.clockReanchors)",
                ])
            endRun()
        }
        if run == nil {
            guard s.keyframe, let r = try startRun(s) else { return }
            run = r
            for p in audioBeforeRun { audio(p) }
            audioBeforeRun.removeAll()
        }
        guard let r = run else { return }
        let relDTS = s.dts90k - r.baseDTS90k
        // Step 5: a keyframe starts a fragment; so does a sample that would make it too long.
        if r.fragmentSamples > 0 && (s.keyframe || r.fragmentDuration90k + s.duration90k > policy.max90k) { cut(r) }
        if r.fragmentSamples == 0 {
            r.fragmentKey = s.keyframe
            r.fragmentStart90k = relDTS
            r.fragmentUTC = r.clock.boundary(at: relDTS)
        }
        do {
            try r.muxer.write(
                track: 0, packet: s.payload.packet, dts: relDTS, pts: s.pts90k - r.baseDTS90k,
                duration: s.duration90k, keyframe: s.keyframe)
        } catch {
            // Never fatal to the session (a reconnect would land on the same kind of GOP again): what the run
            // holds is kept, and a new run starts at the next keyframe, since later frames may refer to this one.
            status.samplesRefused += 1
            logger.error(
                "the muxer refused a sample; new run at the next keyframe",
                metadata: ["camera.id": "\(camera)", "error": "\(error)", "refused": "\(status.samplesRefused)"])
            endRun()
            return
        }
        r.fragmentDuration90k += s.duration90k
        r.fragmentSamples += 1
        // Step 6: the sample's arrival steers the run's wall clock.
        r.clock.observe(media: relDTS, arrival: s.payload.arrival.micros)
        if !r.clock.settled
            && (s.payload.arrival.micros - r.firstArrival >= Self.settlingArrivalMicros
                || relDTS >= RunWallClock.settlingMedia90k)
        {
            settle(r)
        }
        liveChunk(s, of: r, relDTS: relDTS)
    }

    /// Step 5b (HallwatchDataPlane's P6): while someone watches, the sample just stored also leaves as a chunk
    /// of its own (one `moof`+`mdat`, ``LiveChunkWriter``), so live view need not wait for the fragment to
    /// close. The frames' chunks are handed on together once they span ``FragmentPolicy/liveChunkDuration``
    /// (and before a keyframe, which starts the next hand-over): one data-plane message, and one wake-up of the
    /// recorder, per ~100 ms instead of per frame. The chunks start at a keyframe of a settled run (a run's id
    /// is known only then) and stop when nobody watches any more; the stored fragment is never affected. The
    /// hand-over's UTC is where its first frame lies on the box's clock (≈ its arrival), so the recorder and
    /// the page can tell how old it is.
    func liveChunk(_ s: VideoTimeline<Unit>.Sample, of r: Run, relDTS: Int64) {
        guard let live = sink as? LiveChunkSink, r.clock.settled, live.wantsLiveChunks else {
            r.chunker = nil
            return
        }
        if r.chunker == nil {
            guard s.keyframe else { return }
            r.chunker = LiveChunkWriter(muxer: r.muxer, videoExtradata: video.extradata, hevc: codec == .hevc)
        }
        guard let chunker = r.chunker else { return }
        if s.keyframe { handOverChunks(chunker, of: r, to: live) }
        chunker.add(
            s.payload.packet, dts: relDTS, pts: s.pts90k - r.baseDTS90k, duration: s.duration90k,
            keyframe: s.keyframe)
        if chunker.pendingDuration90k >= policy.liveChunk90k { handOverChunks(chunker, of: r, to: live) }
    }

    /// Delivers the chunks `chunker` holds, as one unit whose metadata is its first frame's (keyframe or not,
    /// start, place on the box's clock) and whose duration spans them all.
    func handOverChunks(_ chunker: LiveChunkWriter, of r: Run, to live: any LiveChunkSink) {
        guard let first = chunker.pendingStart else { return }
        r.chunkSequence += 1
        live.deliverChunk(
            MediaSegment(
                meta: FragmentMeta(
                    kind: .fragment, keyframe: first.keyframe, run: r.id, sequence: r.chunkSequence,
                    start90k: MediaTime90k(first.dts90k), duration90k: Int32(clamping: chunker.pendingDuration90k),
                    utc: UTCMicros(Int64(r.clock.wall(at: first.dts90k).rounded()))),
                payload: chunker.pending))
        // The sink sent (or dropped) the chunks and kept no reference: the buffer is the writer's alone again.
        chunker.clear()
    }

    /// A run falling further behind its arrivals than this (µs) is re-anchored with a new run: 1 s.
    static let reanchorMicros = 1_000_000.0

    /// A run's start settles once this much box time (µs) has passed since its first sample arrived: 1 s.
    /// A camera's pre-event buffer sent on PLAY arrives within a fraction of that; afterwards frames come in
    /// real time and the lowest *arrival − media time* moves only by network jitter.
    static let settlingArrivalMicros: Int64 = 1_000_000

    /// Step 4b: the run's start is fixed; its held init segment and fragments are delivered, placed on it.
    /// Before this a fragment's time was only provisional: a burst of buffered frames on PLAY keeps moving
    /// the start earlier, and fragments stamped meanwhile would overlap (before: 26 s of media in 24 s).
    func settle(_ r: Run) {
        guard !r.clock.settled else { return }
        r.clock.settle()
        let anchor = Int64(r.clock.wall(at: 0).rounded())
        // Run ids are the settled start in µs; a run starting within the same µs as the previous one (never
        // seen, but cheap to rule out) takes the next id.
        r.id = max(UInt64(max(0, anchor)), lastRunID + 1)
        lastRunID = r.id
        for var segment in r.held {
            segment.meta.run = r.id
            segment.meta.utc = UTCMicros(
                segment.meta.kind == .initSegment
                    ? anchor : Int64(r.clock.wall(at: segment.meta.start90k.ticks).rounded()))
            if segment.meta.kind == .fragment {
                lastRunEnd = segment.meta.utc.adding(MediaTime90k(Int64(segment.meta.duration90k))).micros
            }
            sink.deliver(segment)
        }
        r.held.removeAll()
        if r.fragmentSamples > 0 { r.fragmentUTC = UTCMicros(Int64(r.clock.wall(at: r.fragmentStart90k).rounded())) }
    }

    /// Delivers a segment of `r`, or holds it while the run's start has not settled.
    func deliver(_ segment: MediaSegment, of r: Run) {
        if r.clock.settled { sink.deliver(segment) } else { r.held.append(segment) }
    }

    /// Step 4: a new muxer and its init segment.
    func startRun(_ s: VideoTimeline<Unit>.Sample) throws -> Run? {
        if extradata.isEmpty {
            keyframesWithoutParameterSets += 1
            if keyframesWithoutParameterSets > 10 {
                throw MediaError("rtsp.garbage", "no parameter sets (SPS/PPS) in the SDP or in 10 keyframes")
            }
            return nil
        }
        let size = parameterSets.pictureSize(extradata: extradata, keyframe: s.payload.packet)
        video.setExtradata(extradata, width: size.width, height: size.height)
        guard video.par.pointee.width > 0 else {
            throw MediaError("rtsp.garbage", "cannot read the picture size from the parameter sets")
        }
        var tracks = [video]
        if let a = audio { tracks.append(a) }
        let muxer: FragmentMuxer
        do { muxer = try FragmentMuxer(tracks: tracks) } catch let e as MediaError where audio != nil {
            logger.warning(
                "audio left out: the muxer refused it", metadata: ["camera.id": "\(camera)", "error": "\(e)"])
            audio = nil
            status.audioCodec = nil
            muxer = try FragmentMuxer(tracks: [video])
        }
        let clock = RunWallClock(firstArrival: s.payload.arrival.micros, floor: lastRunEnd)
        let anchor = UTCMicros(Int64(clock.lastWall.rounded()))
        let r = Run(muxer: muxer, firstArrival: s.payload.arrival.micros, clock: clock, baseDTS90k: s.dts90k)
        if let origin = timeline.runOriginCamera90k {
            r.audioOrigin = av_rescale_q(origin + s.dts90k, hw_rational(1, 90_000), audioTB)
        }
        status.width = Int(video.par.pointee.width)
        status.height = Int(video.par.pointee.height)
        // Held, like the first fragments, until the run's start settles (``settle(_:)`` sets run id and time).
        deliver(
            MediaSegment(
                meta: FragmentMeta(
                    kind: .initSegment, keyframe: false, run: 0, sequence: 0,
                    start90k: .zero, duration90k: 0, utc: anchor), payload: muxer.initSegment), of: r)
        logger.info(
            "run started",
            metadata: [
                "camera.id": "\(camera)", "codec": "\(codec.rawValue)",
                "size": "\(status.width)x\(status.height)",
            ])
        return r
    }

    /// Step 5: closes the open fragment and delivers it.
    func cut(_ r: Run) {
        guard r.fragmentSamples > 0 else { return }
        do {
            let bytes = try r.muxer.cutFragment()
            r.sequence += 1
            let meta = FragmentMeta(
                kind: .fragment, keyframe: r.fragmentKey, run: r.id, sequence: r.sequence,
                start90k: MediaTime90k(r.fragmentStart90k), duration90k: Int32(r.fragmentDuration90k),
                utc: r.fragmentUTC)
            deliver(MediaSegment(meta: meta, payload: bytes), of: r)
        } catch {
            logger.error("fragment lost", metadata: ["camera.id": "\(camera)", "error": "\(error)"])
        }
        // The later of the line's end and start + media duration: readers may take either.
        lastRunEnd = max(
            Int64(r.clock.wall(at: r.fragmentStart90k + r.fragmentDuration90k).rounded()),
            r.fragmentUTC.adding(MediaTime90k(r.fragmentDuration90k)).micros)
        r.fragmentStart90k += r.fragmentDuration90k
        r.fragmentDuration90k = 0
        r.fragmentSamples = 0
    }

    func endRun() {
        guard let r = run else { return }
        if let held = pendingAudio {
            writeAudio(held.packet, rel: held.rel, duration: audioNominal)
            pendingAudio = nil
        }
        cut(r)
        settle(r)
        run = nil
    }

    /// Step 7: an audio packet, placed on the run's timeline; written once the next one gives its duration.
    func audio(_ p: Packet) {
        guard audio != nil else { return }
        guard let r = run else {
            audioBeforeRun.append(p)
            if audioBeforeRun.count > 256 { audioBeforeRun.removeFirst() }
            return
        }
        guard let pts = p.pts ?? p.dts else { return }
        let rel = pts - r.audioOrigin
        guard rel >= 0 else { return }
        if let held = pendingAudio {
            let d = rel - held.rel
            writeAudio(held.packet, rel: held.rel, duration: d > 0 && d < audioNominal * 8 ? d : audioNominal)
        }
        pendingAudio = (p, rel)
    }

    func writeAudio(_ p: Packet, rel: Int64, duration: Int64) {
        guard let r = run, rel > r.lastAudioDTS else { return }
        do {
            try r.muxer.write(track: 1, packet: p, dts: rel, pts: rel, duration: duration, keyframe: true)
            r.lastAudioDTS = rel
            if r.firstAudioDTS == nil { r.firstAudioDTS = rel }
        } catch {
            logger.debug("audio sample dropped", metadata: ["error": "\(error)"])
            return
        }
        // Into the next live chunk too (cut after the next video frame).
        r.chunker?.addAudio(p, dts: rel, duration: duration, trackStart: r.firstAudioDTS ?? rel)
    }
}
