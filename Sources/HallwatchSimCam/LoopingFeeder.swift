import CGStreamer
import Logging
import Synchronization

/// Feeds one RTSP media (one client) from its own reader pipeline, looping the clip forever.
///
/// ```
/// reader (own pipeline):  filesrc ! qtdemux ─┬─ video_0 ! h264parse ! appsink name=sink0
///                                            └─ audio_0 ! aacparse  ! appsink name=sink1
/// RTSP media bin:         appsrc name=src0 ! rtph264pay name=pay0    appsrc name=src1 ! rtpmp4gpay name=pay1
/// ```
/// Every sample the reader produces is restamped by the ``LoopTimeline`` and pushed into the matching
/// `appsrc` of the media. When all streams reach end of stream, a flushing seek to 0 on the *reader*
/// starts the next pass and the timeline adds one period; the media pipeline never sees a flush, a new
/// segment or a timestamp going back, so its running time — and so the RTP timestamps — just continue.
///
/// Pacing is the media pipeline's: its RTP sinks sync to the clock (real time), the `appsrc` queues are
/// bounded (``maxQueueTime``) and block, so the reader reads ahead by at most that much. No decoding.
///
/// Threads: the sample and EOS callbacks run on qtdemux's streaming thread; `need-data` on the appsrc's;
/// the seek runs on GStreamer's `gst_element_call_async` pool; `stop()` on whichever thread drops the media.
final class LoopingFeeder: @unchecked Sendable {
    /// How far (in ns of media time) each appsrc may queue ahead of the RTP sink: 1 s.
    static let maxQueueTime: UInt64 = 1_000_000_000

    let media: MediaDescription
    private let reader: Pipeline
    private let sinks: [GObjectRef<GstAppSink>]
    private let sources: [GObjectRef<GstAppSrc>]
    private var taps: [Tap] = []
    private let logger: Logger
    private let state: Mutex<State>

    private struct State {
        var timeline: LoopTimeline
        var ended: Set<Int> = []
        var started = false
        var stopped = false
        var failed = false
        var lastCaps: [Unchecked<UnsafeMutablePointer<GstCaps>>?]
    }

    /// Per-stream callback context (the appsink callbacks need to know their stream index).
    final class Tap: @unchecked Sendable {
        unowned let feeder: LoopingFeeder
        let index: Int
        init(feeder: LoopingFeeder, index: Int) {
            self.feeder = feeder
            self.index = index
        }
    }

    /// The media bin's launch description matching ``init(media:bin:logger:)``: one `appsrc name=srcN !
    /// payloader name=payN pt=96+N` per stream (gst-rtsp-server finds streams by the `payN` names).
    static func mediaLaunch(for media: MediaDescription) -> String {
        let branches = media.streams.enumerated().map { i, s in
            "appsrc name=src\(i) ! \(s.codec.payloader) name=pay\(i) pt=\(96 + i)"
        }
        return "( " + branches.joined(separator: "  ") + " )"
    }

    /// The reader's launch description: `filesrc ! qtdemux` with one parser and appsink per stream.
    static func readerLaunch(for media: MediaDescription) -> String {
        var parts = ["filesrc name=file ! qtdemux name=demux"]
        for (i, s) in media.streams.enumerated() {
            parts.append(
                "demux.\(s.padName) ! \(s.codec.parser) ! appsink name=sink\(i) sync=false async=false"
                    + " enable-last-sample=false")
        }
        return parts.joined(separator: "  ")
    }

    /// Builds the reader for `media` and hooks it to the appsrcs inside `bin` (the media's element).
    /// Nothing is read until the media pipeline first asks for data.
    init(media: MediaDescription, bin: UnsafeMutablePointer<GstElement>, logger: Logger) throws(SimCamError) {
        self.media = media
        self.logger = logger
        reader = try Pipeline(launch: Self.readerLaunch(for: media))
        guard let file: GObjectRef<GstElement> = reader.child(named: "file") else {
            throw .pipeline("reader lacks filesrc")
        }
        hw_object_set_string(file.object, "location", media.path)
        var sinks: [GObjectRef<GstAppSink>] = []
        var sources: [GObjectRef<GstAppSrc>] = []
        let binPtr: UnsafeMutablePointer<GstBin> = gcast(bin)
        for i in media.streams.indices {
            guard let sink: GObjectRef<GstAppSink> = reader.child(named: "sink\(i)") else {
                throw .pipeline("reader lacks sink\(i)")
            }
            guard let element = gst_bin_get_by_name(binPtr, "src\(i)"),
                let src = GObjectRef<GstAppSrc>(adopting: gcast(UnsafeMutableRawPointer(element)))
            else { throw .pipeline("media bin lacks src\(i)") }
            sinks.append(sink)
            sources.append(src)
        }
        self.sinks = sinks
        self.sources = sources
        state = Mutex(State(timeline: media.makeTimeline(), lastCaps: Array(repeating: nil, count: sinks.count)))

        for (i, src) in sources.enumerated() {
            hw_object_set_int(src.object, "format", gint(GST_FORMAT_TIME.rawValue))
            hw_object_set_bool(src.object, "is-live", 0)
            // The primary (video) queue paces the reader. Any other stream may not be set up by the client
            // (a worker that records no audio SETUPs video only): its queue, ten times longer so that a file's
            // interleaving never fills it while it is consumed, then drops new buffers when full instead of
            // blocking the reader, which would stall the video too.
            let primary = i == media.primaryIndex
            hw_object_set_bool(src.object, "block", primary ? 1 : 0)
            if !primary { hw_object_set_int(src.object, "leaky-type", 1) }  // GST_APP_LEAKY_TYPE_UPSTREAM
            gst_app_src_set_stream_type(src.pointer, GST_APP_STREAM_TYPE_STREAM)
            gst_app_src_set_max_bytes(src.pointer, 64 << 20)
            gst_app_src_set_max_time(src.pointer, GstClockTime(Self.maxQueueTime * (primary ? 1 : 10)))
            let tap = Tap(feeder: self, index: i)
            taps.append(tap)
            hw_appsrc_set_callbacks(
                src.pointer,
                { _, _, userData in
                    guard let userData else { return }
                    Unmanaged<Tap>.fromOpaque(userData).takeUnretainedValue().feeder.needData()
                }, Unmanaged.passUnretained(tap).toOpaque(), nil)
            hw_appsink_set_callbacks(
                sinks[i].pointer,
                { _, userData in
                    guard let userData else { return }
                    let tap = Unmanaged<Tap>.fromOpaque(userData).takeUnretainedValue()
                    tap.feeder.endOfStream(stream: tap.index)
                },
                { sink, userData in
                    guard let sink, let userData else { return GST_FLOW_ERROR }
                    let tap = Unmanaged<Tap>.fromOpaque(userData).takeUnretainedValue()
                    return tap.feeder.newSample(sink: sink, stream: tap.index)
                }, Unmanaged.passUnretained(tap).toOpaque(), nil)
        }

        if let bus = reader.bus {
            gst_bus_set_sync_handler(
                bus.pointer,
                { _, message, userData in
                    guard let message, let userData else { return GST_BUS_DROP }
                    Unmanaged<LoopingFeeder>.fromOpaque(userData).takeUnretainedValue().busMessage(message)
                    return GST_BUS_DROP
                }, Unmanaged.passUnretained(self).toOpaque(), nil)
        }
    }

    deinit {
        stop()
        // Detach callbacks that point at `taps` before they go away.
        for src in sources { hw_appsrc_set_callbacks(src.pointer, nil, nil, nil) }
        if let bus = reader.bus { gst_bus_set_sync_handler(bus.pointer, nil, nil, nil) }
        state.withLock { s in
            for case let caps? in s.lastCaps { gst_caps_unref(caps.value) }
            s.lastCaps = []
        }
    }

    /// Number of completed passes over the clip.
    var passes: UInt64 { state.withLock { $0.timeline.pass } }

    /// Stops the reader (idempotent). Call only once the media pipeline is down (its appsrcs flushing),
    /// otherwise the reader's thread may be blocked in a push and the state change would wait for it.
    func stop() {
        let wasRunning = state.withLock { s in
            defer { s.stopped = true }
            return s.started && !s.stopped
        }
        if wasRunning {
            reader.setState(GST_STATE_NULL)
            logger.debug("reader stopped", metadata: ["file": "\(media.path)", "passes": "\(passes)"])
        }
    }

    // MARK: callbacks

    private func needData() {
        let start = state.withLock { s in
            if s.started || s.stopped { return false }
            s.started = true
            return true
        }
        guard start else { return }
        // Not from this (appsrc streaming) thread: a state change of another pipeline is harmless, but the
        // call_async pool keeps all reader control off the media's threads alike.
        callAsync { feeder in
            if feeder.reader.setState(GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE {
                feeder.fail("reader does not start")
            }
        }
    }

    private func newSample(sink: UnsafeMutablePointer<GstAppSink>, stream: Int) -> GstFlowReturn {
        guard let sample = gst_app_sink_pull_sample(sink) else { return GST_FLOW_EOS }
        defer { gst_sample_unref(sample) }
        guard let buffer = gst_sample_get_buffer(sample) else { return GST_FLOW_OK }
        let segmentStart = gst_sample_get_segment(sample).map { UInt64($0.pointee.start) } ?? 0
        let caps = gst_sample_get_caps(sample)
        let none = hw_clock_time_none()
        func opt(_ t: GstClockTime) -> UInt64? { t == none ? nil : UInt64(t) }
        let b = buffer.pointee
        let (decision, pass, capsChanged) = state.withLock { s -> (LoopTimeline.Decision, UInt64, Bool) in
            let d = s.timeline.restamp(
                pts: opt(b.pts), dts: opt(b.dts), duration: opt(b.duration), segmentStart: segmentStart,
                isPrimary: stream == media.primaryIndex)
            var changed = false
            if let caps, s.lastCaps[stream].map({ !gst_caps_is_equal($0.value, caps).asBool }) ?? true {
                if let old = s.lastCaps[stream] { gst_caps_unref(old.value) }
                s.lastCaps[stream] = Unchecked(gst_caps_ref(caps))
                changed = true
            }
            return (d, s.timeline.pass, changed)
        }
        guard case .keep(let pts, let dts) = decision else { return GST_FLOW_OK }
        guard let out = gst_buffer_copy(buffer) else { return GST_FLOW_ERROR }
        out.pointee.pts = GstClockTime(pts ?? UInt64(none))
        out.pointee.dts = GstClockTime(dts ?? UInt64(none))
        if pass > 0 {
            // The media stream is continuous; only the reader jumped.
            out.pointee.mini_object.flags &= ~guint(GST_BUFFER_FLAG_DISCONT.rawValue)
        }
        let src = sources[stream].pointer
        if capsChanged, let caps {
            logger.debug("stream caps", metadata: ["stream": "\(stream)", "caps": "\(capsText(caps))"])
            gst_app_src_set_caps(src, caps)
        }
        let flow = gst_app_src_push_buffer(src, out)  // takes `out`; blocks while the queue is full
        return flow
    }

    private func endOfStream(stream: Int) {
        let loopNow = state.withLock { s -> Bool in
            s.ended.insert(stream)
            return s.ended.count == sinks.count && !s.stopped && !s.failed
        }
        guard loopNow else { return }
        // Seeking from the streaming thread that just delivered EOS would deadlock on its own stream lock.
        callAsync { feeder in feeder.restart() }
    }

    /// Starts the next pass: advance the timeline, flushing seek of the reader (only) back to 0.
    private func restart() {
        let pass = state.withLock { s -> UInt64? in
            guard !s.stopped else { return nil }
            s.timeline.advance()
            s.ended.removeAll()
            return s.timeline.pass
        }
        guard let pass else { return }
        let flags = GstSeekFlags(rawValue: GST_SEEK_FLAG_FLUSH.rawValue | GST_SEEK_FLAG_ACCURATE.rawValue)
        if !gst_element_seek_simple(reader.element, GST_FORMAT_TIME, flags, 0).asBool {
            fail("seek back to the start failed")
            return
        }
        logger.debug("loop", metadata: ["file": "\(media.path)", "pass": "\(pass)"])
    }

    private func busMessage(_ message: UnsafeMutablePointer<GstMessage>) {
        let type = message.pointee.type
        if type == GST_MESSAGE_ERROR || type == GST_MESSAGE_WARNING {
            var error: UnsafeMutablePointer<GError>? = nil
            var debug: UnsafeMutablePointer<gchar>? = nil
            if type == GST_MESSAGE_ERROR {
                gst_message_parse_error(message, &error, &debug)
                fail(takeErrorText(error, debug))
            } else {
                gst_message_parse_warning(message, &error, &debug)
                logger.warning("reader: \(takeErrorText(error, debug))", metadata: ["file": "\(media.path)"])
            }
        }
    }

    /// Ends the client's stream: logs, and sends end-of-stream into every appsrc.
    private func fail(_ reason: String) {
        let first = state.withLock { s in
            defer { s.failed = true }
            return !s.failed && !s.stopped
        }
        guard first else { return }
        logger.error("reader failed, ending stream: \(reason)", metadata: ["file": "\(media.path)"])
        for src in sources { _ = gst_app_src_end_of_stream(src.pointer) }
    }

    /// Runs `body` on GStreamer's async pool (`gst_element_call_async`), keeping `self` alive meanwhile.
    private func callAsync(_ body: @escaping @Sendable (LoopingFeeder) -> Void) {
        let job = AsyncJob(feeder: self, body: body)
        gst_element_call_async(
            reader.element,
            { _, userData in
                guard let userData else { return }
                let job = Unmanaged<AsyncJob>.fromOpaque(userData).takeUnretainedValue()
                job.body(job.feeder)
            }, Unmanaged.passRetained(job).toOpaque(),
            { userData in
                guard let userData else { return }
                Unmanaged<AsyncJob>.fromOpaque(userData).release()
            })
    }

    private final class AsyncJob: @unchecked Sendable {
        let feeder: LoopingFeeder
        let body: @Sendable (LoopingFeeder) -> Void
        init(feeder: LoopingFeeder, body: @escaping @Sendable (LoopingFeeder) -> Void) {
            self.feeder = feeder
            self.body = body
        }
    }
}
