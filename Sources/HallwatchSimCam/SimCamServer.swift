import CGStreamer
import Dispatch
import Foundation
import Logging
import Synchronization

/// Settings of one simulated camera process.
public struct SimCamConfiguration: Sendable, Hashable {
    /// IPv4/IPv6 address to listen on. Default `127.0.0.1`: the simcam is a test fixture and never listens
    /// on a network interface unless told to.
    public var address: String
    /// TCP port of the RTSP listener (RFC 7826 §18: default 554, here 8554); 0 picks a free port, which
    /// ``SimCamServer/port`` then reports.
    public var port: Int
    /// The clips to serve, one mount each; names are unique.
    public var mounts: [MountSpec]
    /// Offer RTP over UDP only: a SETUP asking for TCP is answered `461 Unsupported Transport` (RFC 7826
    /// §17.4.25), as VLC's RTSP output does. Default `false` (UDP and TCP).
    public var udpOnly: Bool

    /// Defaults: loopback address, port 8554, UDP and TCP.
    public init(address: String = "127.0.0.1", port: Int = 8554, mounts: [MountSpec], udpOnly: Bool = false) {
        self.address = address
        self.port = port
        self.mounts = mounts
        self.udpOnly = udpOnly
    }
}

/// A real RTSP 1.0 server (gst-rtsp-server) serving MP4 clips in an endless, timestamp-continuous loop.
///
/// Each mount `NAME` is served at `rtsp://ADDRESS:PORT/NAME`. Every client session gets its own media
/// pipeline (an *unshared* media factory: a shared file-backed factory deadlocked gst-rtsp-server 1.22
/// with several clients) fed by a ``LoopingFeeder`` that reads the file with `filesrc ! qtdemux ! parser`
/// and restamps each pass with a ``LoopTimeline``, so the RTP timestamps (RFC 3550 §5.1) keep increasing
/// across loop boundaries at the file's own frame spacing. Media is paced in real time by the RTP sinks'
/// clock sync; nothing is decoded or encoded. Streams: H.264 (RFC 6184), H.265 (RFC 7798), AAC (RFC 3640),
/// each client starting at the beginning of the clip (an IDR picture, parameter sets in-band and in the SDP).
///
/// The GLib main loop that drives the server runs on a dedicated thread started by ``start()``; no method
/// blocks the Swift concurrency pool except ``waitUntilStopped()``, which is meant for a plain thread
/// (the executable's main thread).
public final class SimCamServer: @unchecked Sendable {
    /// The configuration given to ``init(configuration:logger:)``.
    public let configuration: SimCamConfiguration
    /// What was found in each mount's file, in mount order.
    public let media: [MediaDescription]
    private let logger: Logger
    private let context: OpaquePointer  // GMainContext*
    private let loop: OpaquePointer  // GMainLoop*
    private let server: GObjectRef<GstRTSPServer>
    private let mountContexts: [MountContext]
    private let lifecycle = Mutex(Lifecycle())
    private let stopped = DispatchGroup()

    private struct Lifecycle {
        var started = false
        var boundPort: Int = 0
    }

    /// Probes every mount's file and builds the server (nothing listens yet).
    /// - Throws: ``SimCamError`` (``SimCamError/isUsageError`` for bad mounts, missing or unusable files).
    public init(configuration: SimCamConfiguration, logger: Logger) throws(SimCamError) {
        GStreamerRuntime.initialize()
        guard !configuration.mounts.isEmpty else { throw .badMountSpec("at least one --mount NAME=FILE.mp4 is needed") }
        var names = Set<String>()
        for m in configuration.mounts where !names.insert(m.name).inserted {
            throw .badMountSpec("mount name \"\(m.name)\" is used twice")
        }
        guard (0...65535).contains(configuration.port) else {
            throw .listen("port \(configuration.port) is outside 0-65535")
        }
        self.configuration = configuration
        self.logger = logger
        var media: [MediaDescription] = []
        var contexts: [MountContext] = []
        for m in configuration.mounts {
            let d = try MediaDescription.probe(path: m.absolutePath)
            media.append(d)
            contexts.append(MountContext(mount: m, media: d, logger: logger))
            let streams = d.streams.map { s in
                s.codec.isVideo
                    ? "\(s.codec.rawValue) \(s.width ?? 0)x\(s.height ?? 0)"
                    : "\(s.codec.rawValue) \(s.channels ?? 0)ch \(s.sampleRate ?? 0) Hz"
            }
            logger.info(
                "mount /\(m.name): \(d.path), \(streams.joined(separator: ", ")), loop period \(Double(d.period) / 1e9) s"
            )
        }
        self.media = media
        self.mountContexts = contexts

        context = g_main_context_new()
        loop = g_main_loop_new(context, 0)
        guard let server = GObjectRef<GstRTSPServer>(adopting: gst_rtsp_server_new()) else {
            throw .pipeline("gst_rtsp_server_new failed")
        }
        self.server = server
        gst_rtsp_server_set_address(server.pointer, configuration.address)
        gst_rtsp_server_set_service(server.pointer, String(configuration.port))
        guard let mountPoints = gst_rtsp_server_get_mount_points(server.pointer) else {
            throw .pipeline("server has no mount points")
        }
        defer { g_object_unref(UnsafeMutableRawPointer(mountPoints)) }
        for mc in contexts {
            guard let factory = gst_rtsp_media_factory_new() else { throw .pipeline("cannot create media factory") }
            gst_rtsp_media_factory_set_launch(factory, LoopingFeeder.mediaLaunch(for: mc.media))
            gst_rtsp_media_factory_set_shared(factory, 0)
            gst_rtsp_media_factory_set_stop_on_disconnect(factory, 1)
            if configuration.udpOnly { gst_rtsp_media_factory_set_protocols(factory, GST_RTSP_LOWER_TRANS_UDP) }
            hw_factory_connect_media_configure(
                factory,
                { _, media, userData in
                    guard let media, let userData else { return }
                    Unmanaged<MountContext>.fromOpaque(userData).takeUnretainedValue().configure(media)
                }, Unmanaged.passUnretained(mc).toOpaque())  // `mountContexts` outlives the server's factories
            gst_rtsp_mount_points_add_factory(mountPoints, "/\(mc.mount.name)", factory)  // takes `factory`
        }
    }

    deinit {
        g_main_loop_quit(loop)
        stopped.wait()
        g_main_loop_unref(loop)
        g_main_context_unref(context)
    }

    /// The TCP port actually listened on (resolves a configured 0); 0 before ``start()``.
    public var port: Int { lifecycle.withLock { $0.boundPort } }

    /// `rtsp://ADDRESS:PORT/NAME` for every mount, in mount order (IPv6 addresses in brackets).
    public var urls: [String] {
        let host = configuration.address.contains(":") ? "[\(configuration.address)]" : configuration.address
        return configuration.mounts.map { "rtsp://\(host):\(port)/\($0.name)" }
    }

    /// Binds the listening socket and starts the GLib main loop on its own thread. Returns once the socket
    /// listens (connections made from then on are queued and served).
    /// - Throws: ``SimCamError/listen(_:)`` if the address/port cannot be bound.
    public func start() throws(SimCamError) {
        let already = lifecycle.withLock { s in
            defer { s.started = true }
            return s.started
        }
        guard !already else { return }
        let sourceID = gst_rtsp_server_attach(server.pointer, context)
        guard sourceID != 0 else {
            throw .listen("\(configuration.address):\(configuration.port) (in use, or not an address of this host)")
        }
        let bound = Int(gst_rtsp_server_get_bound_port(server.pointer))
        lifecycle.withLock { $0.boundPort = bound }
        logger.info("listening on \(configuration.address):\(bound)")

        stopped.enter()
        let loop = Unchecked(self.loop)
        let context = Unchecked(self.context)
        let group = stopped
        let logger = self.logger
        let thread = Thread {
            g_main_context_push_thread_default(context.value)
            g_main_loop_run(loop.value)
            g_main_context_pop_thread_default(context.value)
            logger.info("main loop ended")
            group.leave()
        }
        thread.name = "simcam-glib"
        thread.start()
    }

    /// Quits the main loop on SIGINT or SIGTERM (GLib `g_unix_signal_source_new`, handled on the loop thread).
    /// Call before ``start()`` so that no signal arrives unhandled.
    ///
    /// Also unblocks both signals for the calling thread (and so for threads it starts later, such as the
    /// loop thread): a child inherits its parent's signal mask, and a parent that spawns from a libdispatch
    /// worker thread (e.g. a Swift test) passes all signals blocked, which would make SIGTERM a no-op.
    public func stopOnSignals() {
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        sigaddset(&unblock, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
        for signal in [SIGINT, SIGTERM] {
            guard let source = g_unix_signal_source_new(signal) else { continue }
            g_source_set_callback(
                source,
                { userData in
                    g_main_loop_quit(OpaquePointer(userData))
                    return 1  // G_SOURCE_CONTINUE: a second signal is harmless
                }, UnsafeMutableRawPointer(loop), nil)
            g_source_attach(source, context)
            g_source_unref(source)
        }
    }

    /// Asks the main loop to end (thread-safe; returns at once).
    public func stop() { g_main_loop_quit(loop) }

    /// Blocks the calling thread until the main loop has ended. Never call this from a Swift task; use
    /// ``stoppedSignal()`` there.
    public func waitUntilStopped() { stopped.wait() }

    /// Suspends until the main loop has ended, without occupying a thread of the concurrency pool.
    public func stoppedSignal() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            stopped.notify(queue: .global()) { c.resume() }
        }
    }

    /// Number of client media pipelines alive right now, per mount name.
    public var activeMedia: [String: Int] {
        Dictionary(uniqueKeysWithValues: mountContexts.map { ($0.mount.name, $0.active.load(ordering: .relaxed)) })
    }
}

/// Per-mount state shared with the `media-configure` callback.
final class MountContext: @unchecked Sendable {
    let mount: MountSpec
    let media: MediaDescription
    let logger: Logger
    let active = Atomic<Int>(0)
    private let serial = Atomic<Int>(0)

    init(mount: MountSpec, media: MediaDescription, logger: Logger) {
        self.mount = mount
        self.media = media
        var l = logger
        l[metadataKey: "mount"] = "\(mount.name)"
        self.logger = l
    }

    /// A client's media was just created (gst-rtsp-server's `media-configure`): attach a feeder to it.
    func configure(_ media: UnsafeMutablePointer<GstRTSPMedia>) {
        guard let bin = gst_rtsp_media_get_element(media) else { return }
        defer { gst_object_unref(UnsafeMutableRawPointer(bin)) }
        let n = serial.wrappingAdd(1, ordering: .relaxed).newValue
        var logger = self.logger
        logger[metadataKey: "media"] = "\(n)"
        let feeder: LoopingFeeder
        do {
            feeder = try LoopingFeeder(media: self.media, bin: bin, logger: logger)
        } catch {
            logger.error("cannot build reader: \(error)")
            return
        }
        let alive = active.wrappingAdd(1, ordering: .relaxed).newValue
        logger.info("client media created (\(alive) active on this mount)")
        let holder = FeederHolder(feeder: feeder, context: self)
        // The media owns the holder; it is released when the media is finalized.
        g_object_set_data_full(
            gcast(media), "hallwatch-feeder", Unmanaged.passRetained(holder).toOpaque(),
            { userData in
                guard let userData else { return }
                Unmanaged<FeederHolder>.fromOpaque(userData).release()
            })
        hw_media_connect_unprepared(
            media,
            { _, userData in
                guard let userData else { return }
                Unmanaged<FeederHolder>.fromOpaque(userData).takeUnretainedValue().feeder.stop()
            }, Unmanaged.passUnretained(holder).toOpaque())
    }
}

/// Ties a feeder's lifetime to its media and counts it.
private final class FeederHolder: @unchecked Sendable {
    let feeder: LoopingFeeder
    let context: MountContext

    init(feeder: LoopingFeeder, context: MountContext) {
        self.feeder = feeder
        self.context = context
    }

    deinit {
        feeder.stop()
        let alive = context.active.wrappingSubtract(1, ordering: .relaxed).newValue
        context.logger.info("client media released after \(feeder.passes) loops (\(alive) active on this mount)")
    }
}
