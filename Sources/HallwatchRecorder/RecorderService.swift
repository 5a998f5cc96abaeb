import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import HallwatchDataPlane
import HallwatchProcess
import HallwatchStorage
import Logging
import ServiceLifecycle
import Synchronization

/// `hallwatch-recorder`: accepts fragments from capture workers on the data-plane socket and writes them
/// to the recording disks through ``DiskWriter`` (the storage protocol and its fsync-before-index order
/// live there; see the HallwatchStorage DocC catalog, steps A, C and F).
///
/// Threads: one accepting connections; one per capture connection (blocking reads, then
/// `DiskWriter.append` on the camera's disk); one flusher per disk that calls `syncAndCommit()` every
/// `recorder.fsyncCadence` and then publishes each camera's ``RecordingStats``; one monitor that checks
/// every second for vanished or returning disks (HallwatchStorage's `RecordingPool`). A connection that sends a malformed frame
/// or breaks the protocol is closed and reported on the bus; it never affects other cameras. A failed
/// disk is marked on the bus and its cameras move to a healthy disk, the not-yet-indexed tail of each
/// written again there (F3); the process keeps running. With no healthy disk at all, connections are
/// closed with `storage.noHealthyDisk` and the capture workers keep their backlog until a disk returns.
public final class RecorderService: Service, @unchecked Sendable {
    let config: HallwatchConfig
    let presence: Presence
    let clocks: any Clocks
    let logger: Logger
    let known: Mutex<Set<CameraID>>
    /// The configuration file, re-read when a worker names a camera added since the start (an adopted one).
    let configPath: String?
    /// The disks, their health and each camera's route (F1–F6 live in HallwatchStorage).
    let pool: RecordingPool

    struct Totals {
        var seconds = 0.0
        var bytes: Int64 = 0
        var last: UTCMicros?
        var run: UInt64?
    }
    let totals = Mutex<[CameraID: Totals]>([:])
    let connections = Mutex<[Int32: FileHandleFD]>([:])
    /// The camera each open connection speaks for: one capture worker per camera.
    let connectedCameras = ConnectedCameras()
    let stopping = Atomic<Bool>(false)
    /// The low-free-slots watch per disk (RecorderService+Reserve.swift).
    let reserveWatch = Mutex([String: ReserveWatch]())
    /// The live tap (HallwatchDataPlane's `Protocol.md`, L1–L6): what each capture connection reads is handed
    /// to it before it is written, and the web process subscribes on ``liveSocketPath``.
    public let liveTap: LiveTap
    /// The live tap's socket: the data-plane socket's path with `-live` before `.sock`.
    public var liveSocketPath: String { LiveWire.socketPath(dataPlaneSocket: config.recorder.socket) }

    /// - Parameters:
    ///   - configPath: when given, a capture worker for a camera that is not in `config` makes the
    ///     recorder re-read this file (cameras adopted through discovery are recorded without a restart).
    ///   - liveQueueBytes: each live subscriber's queue bound (L5), bytes; default 8 MiB.
    public init(
        config: HallwatchConfig, configPath: String? = nil, presence: Presence, clocks: any Clocks = SystemClocks(),
        liveQueueBytes: Int = 8 << 20, logger: Logger
    ) {
        self.config = config
        self.presence = presence
        self.clocks = clocks
        self.logger = logger
        self.configPath = configPath
        known = Mutex(Set(config.streams.map(\.id)))
        liveTap = LiveTap(queueBytes: liveQueueBytes, logger: logger)
        pool = RecordingPool(config: config, clocks: clocks, logger: logger) { announcement in
            switch announcement {
            case .disk(let state):
                try? presence.bus.publish(state, topic: presence.topics.disk(state.disk), retain: true)
            case .error(let event): presence.publishError(event)
            }
        }
    }

    /// Whether `id` is a configured camera stream (a camera or its sub stream), re-reading the configuration file once if it was not at the last reading.
    func isKnown(_ id: CameraID) -> Bool {
        if known.withLock({ $0.contains(id) }) { return true }
        guard let path = configPath, let fresh = try? ConfigLoader.load(path: path) else { return false }
        let ids = Set(fresh.streams.map(\.id))
        known.withLock { $0.formUnion(ids) }
        return ids.contains(id)
    }

    public func run() async throws {
        let opened = pool.openAll()
        if opened.isEmpty {
            logger.critical(
                "no recording disk is usable; waiting for one",
                metadata: ["disks": "\(config.recorder.disks.map(\.path))"])
        }
        warnIfTooFewSlots()
        let listener: FileHandleFD
        do {
            listener = try UnixSocket.listen(path: config.recorder.socket, mode: 0o660)
        } catch {
            presence.publishError(
                ErrorEvent(
                    code: (error as? SystemError)?.code ?? "recorder.start", message: "recorder cannot start: \(error)")
            )
            logger.critical(
                "recorder cannot start", metadata: ["socket": "\(config.recorder.socket)", "error": "\(error)"])
            throw error
        }
        // L1. The live socket: mode 0660, group `hallwatch-live` when the box has it (the web's supplementary
        // group), so capture workers, which share the `hallwatch` group, cannot watch.
        let liveListener: FileHandleFD?
        do {
            liveListener = try UnixSocket.listen(path: liveSocketPath, mode: 0o660)
            if let group = getgrnam(LiveWire.groupName) { _ = chown(liveSocketPath, uid_t.max, group.pointee.gr_gid) }
        } catch {
            liveListener = nil
            logger.error("live tap unavailable", metadata: ["socket": "\(liveSocketPath)", "error": "\(error)"])
            presence.publishError(ErrorEvent(code: "recorder.live", message: "live tap unavailable: \(error)"))
        }
        loadTotals()
        ServiceNotifier.shared.ready(
            status:
                "listening on \(config.recorder.socket); \(opened.count) of \(config.recorder.disks.count) disks open")

        await withGracefulShutdownHandler {
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                let acceptor = Thread { [self] in acceptLoop(listener) }
                acceptor.name = "recorder-accept"
                acceptor.start()
                if let liveListener {
                    let live = Thread { [self] in liveTap.acceptLoop(liveListener, isKnown: isKnown) }
                    live.name = "recorder-live-accept"
                    live.start()
                }
                let group = DispatchGroup()
                for d in config.recorder.disks {
                    group.enter()
                    let flusher = Thread { [self] in
                        flushLoop(disk: d.name)
                        group.leave()
                    }
                    flusher.name = "recorder-flush-\(d.name)"
                    flusher.start()
                }
                let monitor = Thread { [self] in
                    monitorLoop()
                    group.wait()
                    done.resume()
                }
                monitor.name = "recorder-monitor"
                monitor.start()
            }
        } onGracefulShutdown: { [self] in
            ServiceNotifier.shared.stopping(status: "stopping: closing connections, final fsync")
            stopping.store(true, ordering: .relaxed)
            Glibc.shutdown(listener.fd, Int32(SHUT_RDWR))
            connections.withLock { for (_, c) in $0 { Glibc.shutdown(c.fd, Int32(SHUT_RDWR)) } }
            if let liveListener { liveTap.stop(liveListener) }
        }
        listener.close()
        unlink(config.recorder.socket)
        if let liveListener {
            liveListener.close()
            unlink(liveSocketPath)
        }
        for route in pool.healthy() { _ = try? route.writer.close() }
    }

    func acceptLoop(_ listener: FileHandleFD) {
        while !stopping.load(ordering: .relaxed) {
            guard let conn = try? UnixSocket.accept(listener) else {
                if stopping.load(ordering: .relaxed) { return }
                usleep(100_000)
                continue
            }
            let t = Thread { [self] in serve(conn) }
            t.name = "recorder-conn"
            t.start()
        }
    }

    /// One capture worker's connection (data plane P2, P3, P5): its hello, then init segments and
    /// fragments, each written through the camera's lane of the recording pool.
    func serve(_ conn: FileHandleFD) {
        let fd = conn.fd
        connections.withLock { $0[fd] = conn }
        defer { connections.withLock { _ = $0.removeValue(forKey: fd) } }
        var camera: CameraID?
        do {
            let receiver = try DataPlaneReceiver(conn, isKnown: isKnown, cameras: connectedCameras)
            let id = receiver.camera
            camera = id
            logger.info("capture worker connected", metadata: ["camera.id": "\(id)"])
            let lane = pool.lane(for: id)
            var filter = ResendFilter(storedEnd: pool.storedEnd(of:))
            // P7. The worker is told whether anyone watches (and so whether to send per-frame chunks).
            liveTap.attachWorker(id, conn)
            defer { liveTap.detachWorker(id, conn) }
            while let unit = try receiver.nextUnit() {
                let segment: MediaSegment
                switch unit {
                case .chunk(let chunk):
                    // P6. Chunks go to the live tap only: never to a lane, never stored.
                    liveTap.publishChunk(chunk, of: id, receivedMicros: clocks.utcNow().micros)
                    continue
                case .segment(let s): segment = s
                }
                guard filter.admit(segment, of: id) else { continue }
                let skipped = filter.takeSkipped()
                if skipped > 0 {
                    logger.info(
                        "skipped frames the disks already hold (sent again after a reconnect)",
                        metadata: ["camera.id": "\(id)", "frames": "\(skipped)"])
                }
                // L3. Live first: viewers never wait for the disk, let alone for the fsync.
                liveTap.publish(segment, of: id, receivedMicros: clocks.utcNow().micros)
                try lane.deliver(segment)
            }
        } catch let e as StorageError {
            report(code: e.code.rawValue, "\(e)", camera)
        } catch let e as DataPlaneError {
            report(code: e.code.rawValue, e.message, camera)
        } catch let e as SystemError {
            if !stopping.load(ordering: .relaxed) {
                logger.info(
                    "capture connection ended", metadata: ["camera.id": "\(camera?.rawValue ?? "?")", "error": "\(e)"])
            }
        } catch {
            report(code: "recorder.internal", "\(error)", camera)
        }
    }

    func report(code: String, _ message: String, _ camera: CameraID?) {
        logger.error(
            "capture connection closed",
            metadata: ["camera.id": "\(camera?.rawValue ?? "?")", "code": "\(code)", "error": "\(message)"])
        let now = clocks.utcNow()
        var event = ErrorEvent(code: code, message: message, camera: camera)
        event.at = now
        presence.publishError(event)
        // Retained beside the camera's totals, so the status shows that nothing is written while the capture
        // worker, reconnecting, still says `online`; the next commit that stores media clears it.
        guard let id = camera else { return }
        let x = totals.withLock { $0[id] } ?? Totals()
        var stats = RecordingStats(
            camera: id, recordedSeconds: (x.seconds * 10).rounded() / 10, recordedBytes: x.bytes,
            lastFragmentAt: x.last,
            run: x.run, at: now)
        stats.refused = event
        try? presence.bus.publish(stats, topic: presence.topics.recording(id), retain: true)
    }

    /// One disk's flusher: every cadence, sync, then index (inside `syncAndCommit`), then tell the bus.
    /// A disk failure hands the disk to `RecordingPool.markFailed(_:_:code:)` (F1); the loop then waits for the
    /// disk to come back with a new writer.
    func flushLoop(disk: String) {
        let cadenceNanos = UInt64(config.recorder.fsyncCadence.seconds * 1e9)
        var next = clocks.monotonicNanos() + cadenceNanos
        var last = clocks.monotonicNanos()
        while !stopping.load(ordering: .relaxed) {
            let now = clocks.monotonicNanos()
            if now < next {
                clocks.sleepBlocking(
                    for: .nanoseconds(Int64(next - now)), unless: { stopping.load(ordering: .relaxed) })
                continue
            }
            next += cadenceNanos
            if next < now { next = now + cadenceNanos }  // fell behind: don't burst
            // The fsync loop turning is the recorder's progress: a sync that hangs (a dead disk) stops the pings
            // and systemd's WatchdogSec= restarts the process (Systemd/README.md).
            ServiceNotifier.shared.watchdog()
            guard let route = pool.healthy().first(where: { $0.disk == disk }) else {
                last = now
                continue
            }
            do {
                let report = try route.writer.syncAndCommit()
                pool.noteCommit(report, disk: disk, seconds: Double(now - last) / 1e9)
                publish(report)
                reportLowFreeSlots(disk: disk, route.writer, report)
            } catch {
                if error.isDiskFailure || error.code == .failed {
                    pool.markFailed(route, error)
                } else {
                    report(code: error.code.rawValue, "disk \(disk): \(error)", nil)
                }
            }
            last = now
        }
    }

    /// Each camera keeps one slot open and needs a closed one to reuse when it rolls over: with fewer than
    /// two slots per camera on the healthy disks, ring reuse can find nothing and appends fail with
    /// `storage.full`. Said at start, in the log and on the bus, so an installer sizes the disks right.
    func warnIfTooFewSlots() {
        let slots = pool.healthy().reduce(0) { $0 + $1.writer.disk.meta.slotCount }
        let needed = 2 * config.streams.count + 2
        guard slots > 0, slots < needed else { return }
        let message =
            "the healthy disks have \(slots) slots for \(config.streams.count) camera streams; at least \(needed) are needed (two per stream, plus two)"
        logger.critical("too few slots", metadata: ["slots": "\(slots)", "streams": "\(config.streams.count)"])
        presence.publishError(ErrorEvent(code: "storage.tooFewSlots", message: message))
    }

    /// Every second: vanished and returning disks (F1, F6); every 10 s: every disk's state on the bus.
    func monitorLoop() {
        pool.publishAll()
        var tick = 0
        while !stopping.load(ordering: .relaxed) {
            clocks.sleepBlocking(for: .seconds(1), unless: { stopping.load(ordering: .relaxed) })
            pool.monitor()
            tick += 1
            if tick % 10 == 0 { pool.publishAll() }
        }
    }

    /// Starts the per-camera totals from what the disk already holds, so `status` shows the recording on
    /// disk, not only what this process wrote since it started.
    func loadTotals() {
        let reader = RecordingLibrary(config: config)
        for id in known.withLock({ $0 }) {
            guard let runs = try? reader.runs(camera: id), !runs.isEmpty else { continue }
            let t = Totals(
                seconds: runs.reduce(0) { $0 + $1.media90k.seconds }, bytes: runs.reduce(0) { $0 + $1.payloadBytes },
                last: runs.last?.endUTC, run: runs.last?.run)
            totals.withLock { $0[id] = t }
            if t.seconds > 0 { pool.seedBitrate(id, bytesPerSecond: Double(t.bytes) / t.seconds) }
        }
    }

    func publish(_ report: CommitReport) {
        let now = clocks.utcNow()
        let updated = totals.withLock { t -> [(CameraID, Totals)] in
            for (id, c) in report.cameras {
                var x = t[id] ?? Totals()
                x.seconds += c.seconds
                x.bytes += c.payloadBytes
                x.run = c.run
                if let l = c.lastFragmentUTC { x.last = l }
                t[id] = x
            }
            return report.cameras.keys.map { ($0, t[$0]!) }
        }
        for (id, x) in updated {
            let stats = RecordingStats(
                camera: id, recordedSeconds: (x.seconds * 10).rounded() / 10, recordedBytes: x.bytes,
                lastFragmentAt: x.last, run: x.run, at: now)
            try? presence.bus.publish(stats, topic: presence.topics.recording(id), retain: true)
        }
    }
}
