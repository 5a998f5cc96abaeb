import CFFmpeg
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
    /// Frames per second measured from timestamps.
    public var fps: Double
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
}

/// Settings of a capture session beyond how to reach the camera.
public struct FragmentPolicy: Sendable {
    /// Longest fragment; a GOP longer than this is split at a non-key sample.
    public var maxFragmentDuration: Duration
    /// A policy with fragments of at most `maxFragmentDuration`.
    public init(maxFragmentDuration: Duration = .seconds(1)) { self.maxFragmentDuration = maxFragmentDuration }
    var max90k: Int64 { MediaTime90k(seconds: maxFragmentDuration.seconds).ticks }
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
/// *arrival − media time* over the run's first seconds (so a burst of buffered frames right after PLAY
/// does not drag it late), then following the camera's clock with at most 500 ppm slew, never earlier
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

    /// A session for `camera` that reaches it through `source`, cuts fragments by `policy`, and reads time (arrival, timeouts) on `clocks`.
    public init(camera: CameraID, source: RTSPSourceOptions, policy: FragmentPolicy, clocks: any Clocks, logger: Logger)
    {
        self.camera = camera
        self.source = source
        self.policy = policy
        self.clocks = clocks
        self.logger = logger
    }

    /// Runs the session until the camera ends the stream, a fatal error occurs, or `stop` is set.
    /// `onStatus` is called when the first run starts and then about every 5 s.
    /// - Throws: ``MediaError`` (see its codes); returns normally on a clean end of stream or on stop.
    public func run(stop: StopFlag, sink: any FragmentSink, onStatus: (CaptureStatus) -> Void) throws {
        let src: any PacketSource =
            source.transport == .tcp && !source.audio
            ? try InterleavedRTSPSource(source, stop: stop, clocks: clocks, logger: logger)
            : try RTSPSource(source, stop: stop, clocks: clocks, logger: logger)
        let remuxer = try Remuxer(source: src, camera: camera, policy: policy, sink: sink, logger: logger)
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
            if remuxer.hasRun && (!announced || now - windowStart >= 5_000_000_000) {
                let seconds = Double(now - windowStart) / 1e9
                if seconds >= 1 {
                    remuxer.status.bitrateBps = Int(Double(windowBytes * 8) / seconds)
                    windowStart = now
                    windowBytes = 0
                }
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
        let id: UInt64
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
        init(muxer: FragmentMuxer, id: UInt64, clock: RunWallClock, baseDTS90k: Int64) {
            self.muxer = muxer
            self.id = id
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

    var hasRun: Bool { run != nil }

    init(source src: any PacketSource, camera: CameraID, policy: FragmentPolicy, sink: any FragmentSink, logger: Logger)
        throws
    {
        self.camera = camera
        self.policy = policy
        self.sink = sink
        self.logger = logger
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
        status.fps = (timeline.measuredFPS * 100).rounded() / 100
        status.outliersRestamped = timeline.outliersRestamped
        status.missingStamped = timeline.missingStamped
        status.joinedUnits = timeline.joined
        return status
    }

    /// Step 2–3: a video packet enters the timeline (keyframes with their parameter sets).
    func video(_ packet: Packet, arrival: UTCMicros) throws {
        packet.trimTrailingZeros()
        let pts = (packet.pts ?? packet.dts).map { av_rescale_q($0, videoTB, hw_rational(1, 90_000)) }
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
        try r.muxer.write(
            track: 0, packet: s.payload.packet, dts: relDTS, pts: s.pts90k - r.baseDTS90k,
            duration: s.duration90k, keyframe: s.keyframe)
        r.fragmentDuration90k += s.duration90k
        r.fragmentSamples += 1
        // Step 6: the sample's arrival steers the run's wall clock.
        r.clock.observe(media: relDTS, arrival: s.payload.arrival.micros)
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
        // Run ids are the anchor in µs; a run starting within the same µs as the previous one (never seen,
        // but cheap to rule out) takes the next id.
        let id = max(UInt64(max(0, anchor.micros)), lastRunID + 1)
        lastRunID = id
        let r = Run(muxer: muxer, id: id, clock: clock, baseDTS90k: s.dts90k)
        if let origin = timeline.runOriginCamera90k {
            r.audioOrigin = av_rescale_q(origin + s.dts90k, hw_rational(1, 90_000), audioTB)
        }
        status.width = Int(video.par.pointee.width)
        status.height = Int(video.par.pointee.height)
        sink.deliver(
            MediaSegment(
                meta: FragmentMeta(
                    kind: .initSegment, keyframe: false, run: r.id, sequence: 0,
                    start90k: .zero, duration90k: 0, utc: anchor), payload: muxer.initSegment))
        logger.info(
            "run started",
            metadata: [
                "camera.id": "\(camera)", "run": "\(r.id)", "codec": "\(codec.rawValue)",
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
            sink.deliver(MediaSegment(meta: meta, payload: bytes))
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
        } catch { logger.debug("audio sample dropped", metadata: ["error": "\(error)"]) }
    }
}
