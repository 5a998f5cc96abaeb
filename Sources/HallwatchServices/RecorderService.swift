import Foundation
import HallwatchBus
import HallwatchCore
import HallwatchStorage
import Logging
import ServiceLifecycle
import Synchronization

/// `hallwatch-recorder`: accepts fragments from capture workers on the data-plane socket and writes them
/// to the recording disk through ``DiskWriter`` (the storage protocol and its fsync-before-index order
/// live there; see the HallwatchStorage DocC catalog).
///
/// Threads: one accepting connections, one per capture connection (blocking reads, then
/// `DiskWriter.append`), and one flusher that calls `syncAndCommit()` every `recorder.fsyncCadence` and
/// then publishes each camera's ``RecordingStats``. A connection that sends a malformed frame or breaks
/// the protocol is closed and reported on the bus; it never affects other cameras. A failed disk
/// (`storage.io`, `storage.failed`) ends the process after a last report so systemd restarts it and
/// recovery (steps R1–R8) runs.
public final class RecorderService: Service, @unchecked Sendable {
    let config: HallwatchConfig
    let presence: Presence
    let clocks: any Clocks
    let logger: Logger
    let known: Mutex<Set<CameraID>>
    /// The configuration file, re-read when a worker names a camera added since the start (an adopted one).
    let configPath: String?

    struct Totals { var seconds = 0.0; var bytes: Int64 = 0; var last: UTCMicros?; var run: UInt64? }
    let totals = Mutex<[CameraID: Totals]>([:])
    let connections = Mutex<[Int32: FileHandleFD]>([:])
    /// The camera each open connection speaks for: one capture worker per camera. A second worker for the
    /// same camera (a duplicated unit, a second demo) is refused, never interleaved into the first one's runs.
    let cameraConnections = Mutex<Set<CameraID>>([])
    let stopping = Atomic<Bool>(false)

    /// - Parameter configPath: when given, a capture worker for a camera that is not in `config` makes the
    ///   recorder re-read this file (cameras adopted through discovery are recorded without a restart).
    public init(config: HallwatchConfig, configPath: String? = nil, presence: Presence, clocks: any Clocks = SystemClocks(), logger: Logger) {
        self.config = config; self.presence = presence; self.clocks = clocks; self.logger = logger
        self.configPath = configPath
        known = Mutex(Set(config.cameras.map(\.id)))
    }

    /// Whether `id` is configured, re-reading the configuration file once if it was not at the last reading.
    func isKnown(_ id: CameraID) -> Bool {
        if known.withLock({ $0.contains(id) }) { return true }
        guard let path = configPath, let fresh = try? ConfigLoader.load(path: path) else { return false }
        let ids = Set(fresh.cameras.map(\.id))
        known.withLock { $0.formUnion(ids) }
        return ids.contains(id)
    }

    public func run() async throws {
        let dir = config.recorder.directory
        let disk: RecordingDisk
        do {
            disk = try RecordingDisk.openOrInitialize(at: dir, box: config.box, slotCount: config.recorder.slotCount,
                                                      slotSizeBytes: config.recorder.slotSizeBytes) { done, count in
                if done == count || done % 16 == 0 { self.logger.info("initialising recording disk", metadata: ["slots": "\(done)/\(count)"]) }
            }
        } catch {
            // A foreign or damaged disk is quarantined: never written, never formatted, reported.
            presence.publishError(ErrorEvent(code: error.code.rawValue, message: "recording disk \(dir): \(error.message)"))
            logger.critical("cannot open the recording disk", metadata: ["disk": "\(dir)", "error": "\(error)"])
            throw error
        }
        let writer: DiskWriter
        let listener: FileHandleFD
        do {
            // The writer takes the disk's lock first: a second recorder stops here, before touching the socket.
            writer = try DiskWriter(disk: disk, clocks: clocks, logger: logger)
            listener = try UnixSocket.listen(path: config.recorder.socket, mode: 0o660)
        } catch {
            let code = (error as? StorageError)?.code.rawValue ?? (error as? SystemError)?.code ?? "recorder.start"
            presence.publishError(ErrorEvent(code: code, message: "recorder cannot start: \(error)"))
            logger.critical("recorder cannot start", metadata: ["disk": "\(dir)", "code": "\(code)", "error": "\(error)"])
            throw error
        }
        let r = writer.recovery
        logger.info("recording disk open", metadata: ["disk": "\(dir)", "index.rebuilt": "\(r.indexRebuilt)", "slots.scanned": "\(r.slotsScanned)",
                                                      "records.recovered": "\(r.recordsIndexed)", "torn.tails": "\(r.tornTailSlots)"])
        loadTotals()

        try await withGracefulShutdownHandler {
            try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
                let acceptor = Thread { [self] in acceptLoop(listener, writer) }
                acceptor.name = "recorder-accept"
                acceptor.start()
                let flusher = Thread { [self] in
                    let result = flushLoop(writer)
                    done.resume(with: result)
                }
                flusher.name = "recorder-flush"
                flusher.start()
            }
        } onGracefulShutdown: { [self] in
            stopping.store(true, ordering: .relaxed)
            Glibc.shutdown(listener.fd, Int32(SHUT_RDWR))
            connections.withLock { for (_, c) in $0 { Glibc.shutdown(c.fd, Int32(SHUT_RDWR)) } }
        }
        listener.close()
        unlink(config.recorder.socket)
        _ = try? writer.close()
    }

    func acceptLoop(_ listener: FileHandleFD, _ writer: DiskWriter) {
        while !stopping.load(ordering: .relaxed) {
            guard let conn = try? UnixSocket.accept(listener) else {
                if stopping.load(ordering: .relaxed) { return }
                usleep(100_000)
                continue
            }
            let t = Thread { [self] in serve(conn, writer) }
            t.name = "recorder-conn"
            t.start()
        }
    }

    /// One capture worker's connection: `hello`, then init segments and fragments.
    func serve(_ conn: FileHandleFD, _ writer: DiskWriter) {
        let fd = conn.fd
        connections.withLock { $0[fd] = conn }
        defer { connections.withLock { _ = $0.removeValue(forKey: fd) } }
        var camera: CameraID?
        do {
            guard let hello = try conn.receiveFrame() else { return }
            guard hello.meta.kind == .hello, let id = CameraID(String(decoding: hello.payload, as: UTF8.self)) else {
                throw DataPlaneError(code: "dataplane.protocol", message: "the first frame must be a hello naming a camera")
            }
            guard isKnown(id) else {
                throw DataPlaneError(code: "dataplane.unknownCamera", message: "camera '\(id)' is not in the configuration")
            }
            guard cameraConnections.withLock({ $0.insert(id).inserted }) else {
                throw DataPlaneError(code: "dataplane.duplicateCamera", message: "camera '\(id)' already has a capture worker connected; refusing a second one")
            }
            camera = id
            defer { _ = cameraConnections.withLock { $0.remove(id) } }
            logger.info("capture worker connected", metadata: ["camera.id": "\(id)"])
            while let frame = try conn.receiveFrame() {
                guard frame.meta.kind != .hello else { throw DataPlaneError(code: "dataplane.protocol", message: "a second hello") }
                let outcome = try writer.append(camera: id, meta: frame.meta, payload: frame.payload)
                if let reuse = outcome.ringReuse {
                    presence.publishError(ErrorEvent(code: "storage.overrun", message: "no free slot: reused slot \(reuse.slot) of \(reuse.previousCamera?.rawValue ?? "unknown")", camera: id))
                }
            }
        } catch let e as StorageError where e.code == .io || e.code == .failed {
            report(code: e.code.rawValue, "\(e)", camera)
            fatalDisk(e)
        } catch let e as StorageError {
            report(code: e.code.rawValue, "\(e)", camera)
        } catch let e as DataPlaneError {
            report(code: e.code, e.message, camera)
        } catch let e as SystemError {
            if !stopping.load(ordering: .relaxed) { logger.info("capture connection ended", metadata: ["camera.id": "\(camera?.rawValue ?? "?")", "error": "\(e)"]) }
        } catch {
            report(code: "recorder.internal", "\(error)", camera)
        }
    }

    func report(code: String, _ message: String, _ camera: CameraID?) {
        logger.error("capture connection closed", metadata: ["camera.id": "\(camera?.rawValue ?? "?")", "code": "\(code)", "error": "\(message)"])
        presence.publishError(ErrorEvent(code: code, message: message, camera: camera))
    }

    func fatalDisk(_ e: StorageError) {
        logger.critical("recording disk failed; exiting so recovery runs on restart", metadata: ["error": "\(e)"])
        presence.publishState(.down, reason: "\(e.code): \(e.message)")
        usleep(300_000)
        exit(70)
    }

    /// Every cadence: sync, then index (inside `syncAndCommit`), then tell the bus.
    func flushLoop(_ writer: DiskWriter) -> Result<Void, any Error> {
        let cadenceNanos = UInt64(config.recorder.fsyncCadence.seconds * 1e9)
        var next = clocks.monotonicNanos() + cadenceNanos
        while !stopping.load(ordering: .relaxed) {
            let now = clocks.monotonicNanos()
            if now < next { usleep(UInt32(min(50_000, (next - now) / 1000))); continue }
            next += cadenceNanos
            if next < now { next = now + cadenceNanos }   // fell behind: don't burst
            do {
                let report = try writer.syncAndCommit()
                publish(report)
            } catch {
                report(code: error.code.rawValue, "\(error)", nil)
                if error.code == .io || error.code == .failed { fatalDisk(error) }
            }
        }
        return .success(())
    }

    /// Starts the per-camera totals from what the disk already holds, so `status` shows the recording on
    /// disk, not only what this process wrote since it started.
    func loadTotals() {
        guard let reader = try? RecordingReader(at: config.recorder.directory, box: config.box) else { return }
        for id in known.withLock({ $0 }) {
            guard let runs = try? reader.runs(camera: id), !runs.isEmpty else { continue }
            let t = Totals(seconds: runs.reduce(0) { $0 + $1.media90k.seconds }, bytes: runs.reduce(0) { $0 + $1.payloadBytes },
                           last: runs.last?.endUTC, run: runs.last?.run)
            totals.withLock { $0[id] = t }
        }
    }

    func publish(_ report: CommitReport) {
        let now = clocks.utcNow()
        let updated = totals.withLock { t -> [(CameraID, Totals)] in
            for (id, c) in report.cameras {
                var x = t[id] ?? Totals()
                x.seconds += c.seconds; x.bytes += c.payloadBytes; x.run = c.run
                if let l = c.lastFragmentUTC { x.last = l }
                t[id] = x
            }
            return report.cameras.keys.map { ($0, t[$0]!) }
        }
        for (id, x) in updated {
            let stats = RecordingStats(camera: id, recordedSeconds: (x.seconds * 10).rounded() / 10, recordedBytes: x.bytes,
                                       lastFragmentAt: x.last, run: x.run, at: now)
            try? presence.bus.publish(stats, topic: presence.topics.recording(id), retain: true)
        }
    }
}
