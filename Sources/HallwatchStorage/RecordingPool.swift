import Foundation
import HallwatchConfig
import HallwatchCore
import Logging
import Synchronization

/// The recorder's disks (`recorder.disks`) as one recording pool: opens each, keeps its health, assigns
/// cameras to healthy disks and moves them when one fails — steps F1–F6 of the write protocol
/// (`WriteProtocol.md`, "Fail a disk"). Each camera writes through its ``Lane``.
///
/// - Assignment: a camera with `disk:` in the configuration records there while that disk is healthy;
///   the others go to the healthy disk with the lowest load, load being the measured bit rates of its
///   cameras (bytes per second, from the commits) divided by its capacity (bytes). A camera stays where
///   it is until its disk fails, or until the disk it is pinned to comes back.
/// - Failure (F1): an append or commit that fails with a disk error (`EIO`, `ENOSPC`, `EROFS`, a full
///   or failing index, …), or a disk whose `meta` no longer resolves to the file the writer opened (the
///   mount vanished; checked every second), marks the disk `failed`. Its cameras are routed elsewhere on
///   their next fragment.
/// - Return (F6): a failed or missing disk is tried again every few seconds once its directory holds a
///   different `meta` (a remounted or replaced disk) or appears; opening it runs recovery (R1–R8), so
///   it is rescanned before use.
///
/// Every change is handed to `announce` (the recorder publishes it on the bus): a ``DiskState`` per disk
/// change (retained on `BusTopics.disk(_:)`), and an ``ErrorEvent`` (`storage.diskFailed`,
/// `storage.foreignDisk`, `storage.overrun`, …) for the error topic.
public final class RecordingPool: Sendable {
    /// What the pool tells the world: the recorder publishes it on the bus.
    public enum Announcement: Sendable {
        /// A disk's state changed (or the periodic refresh): retained per disk.
        case disk(DiskState)
        /// A typed alarm: a disk failed, returned, was quarantined; a slot was reused (`storage.overrun`).
        case error(ErrorEvent)
    }

    /// Where a camera's records go now.
    public struct Route: Sendable {
        /// The disk's configured name.
        public let disk: String
        /// The disk's one writer.
        public let writer: DiskWriter
    }

    /// One disk's current state.
    struct Disk: Sendable {
        let config: DiskConfig
        var health: DiskState.Health = .missing
        var reason: ErrorEvent?
        var writer: DiskWriter?
        /// Device and inode of `meta` when the writer opened it (F1: a different one means the mount
        /// changed under us); for a failed disk, the one that failed (F6: retried only on a change).
        var identity: FileIdentity?
        /// Monotonic ns of the last attempt to open the disk.
        var lastAttempt: UInt64 = 0
        /// The disk was open once in this process: if its `meta` disappears, its directory is an empty
        /// mount point now, and must never be initialised as a new disk on the file system beneath.
        var wasOpen = false
        /// The longest commit since the last published state, ns (``DiskState/slowestCommitMillis``).
        var slowestCommitNanos: UInt64 = 0
    }

    struct State: Sendable {
        var disks: [Disk]
        var assignment: [CameraID: String] = [:]
        /// Measured bytes per second per camera (exponential average over commits).
        var bitrate: [CameraID: Double] = [:]
    }

    /// A guess for a camera not yet measured: 4 Mbit/s.
    static let defaultBytesPerSecond = 500_000.0
    /// How often a failed or missing disk is tried again, ns.
    static let retryNanos: UInt64 = 5_000_000_000

    let config: HallwatchConfig
    let clocks: any Clocks
    let logger: Logger
    let announce: @Sendable (Announcement) -> Void
    let state: Mutex<State>
    /// What the disks hold per camera, to skip frames a reconnecting worker sends again.
    let stored: StoredEnds

    /// A pool over `config.recorder.disks`; nothing is opened until ``openAll()``.
    /// - Parameter announce: called for every disk state change and alarm, on the calling thread; must not block.
    public init(
        config: HallwatchConfig, clocks: any Clocks, logger: Logger,
        announce: @escaping @Sendable (Announcement) -> Void
    ) {
        self.config = config
        self.clocks = clocks
        self.logger = logger
        self.announce = announce
        state = Mutex(State(disks: config.recorder.disks.map { Disk(config: $0) }))
        // Opened afresh on each first question: a disk formatted or returned since the start must be read too.
        stored = StoredEnds { camera in
            (try? RecordingLibrary(config: config).lastFragment(camera: camera)).flatMap {
                $0.map { ($0.run, $0.end90k) }
            }
        }
    }

    /// The run and media end (90 kHz ticks) of `camera`'s newest fragment on the disks: from the index the
    /// first time (after a restart, recovery has indexed everything appended before the crash), then from
    /// this process's appends. For the data plane's resend filter (P5).
    public func storedEnd(of camera: CameraID) -> (run: UInt64, end90k: Int64)? { stored.end(of: camera) }

    /// The path of `camera`'s frames into this pool: one per data-plane connection, used on that connection's thread.
    public func lane(for camera: CameraID) -> Lane { Lane(camera: camera, pool: self) }

    /// Opens every disk (steps I and R for each); one that cannot be opened is reported and left
    /// `missing`, `quarantined` or `failed`. Returns the names of the disks opened.
    @discardableResult
    public func openAll() -> [String] {
        var opened: [String] = []
        for d in config.recorder.disks where open(d) { opened.append(d.name) }
        return opened
    }

    /// Tries to open one disk and records the outcome. Runs without the state lock (recovery can take
    /// a while), then installs the writer.
    private func open(_ d: DiskConfig) -> Bool {
        let now = clocks.monotonicNanos()
        state.withLock { s in
            if let i = s.disks.firstIndex(where: { $0.config.name == d.name }) { s.disks[i].lastAttempt = now }
        }
        let wasOpen = state.withLock { s in s.disks.first { $0.config.name == d.name }?.wasOpen ?? false }
        if wasOpen && !FileManager.default.fileExists(atPath: d.path + "/meta") { return false }
        guard FileManager.default.fileExists(atPath: d.path) else {
            setHealth(
                d.name, .missing,
                ErrorEvent(code: "storage.missing", message: "disk \(d.name): \(d.path) does not exist (not mounted?)"),
                writer: nil, identity: nil)
            return false
        }
        do throws(StorageError) {
            let disk = try RecordingDisk.openOrInitialize(
                at: d.path, box: config.box, slotCount: config.recorder.slotCount,
                slotSizeBytes: config.recorder.slotSizeBytes
            ) { done, count in
                if done == count || done % 16 == 0 {
                    self.logger.info(
                        "initialising recording disk", metadata: ["disk": "\(d.name)", "slots": "\(done)/\(count)"])
                }
            }
            let writer = try DiskWriter(disk: disk, clocks: clocks, logger: logger)
            let r = writer.recovery
            logger.info(
                "recording disk open",
                metadata: [
                    "disk": "\(d.name)", "path": "\(d.path)", "index.rebuilt": "\(r.indexRebuilt)",
                    "slots.scanned": "\(r.slotsScanned)", "records.recovered": "\(r.recordsIndexed)",
                    "torn.tails": "\(r.tornTailSlots)",
                ])
            setHealth(d.name, .healthy, nil, writer: writer, identity: FileIdentity(path: d.path + "/meta"))
            return true
        } catch {
            // F5. Another box's disk or a directory with other contents: never written, never formatted.
            let quarantine = error.code == .foreignDisk || error.code == .version || error.code == .corrupt
            setHealth(
                d.name, quarantine ? .quarantined : .failed,
                ErrorEvent(code: error.code.rawValue, message: "disk \(d.name) (\(d.path)): \(error.message)"),
                writer: nil, identity: FileIdentity(path: d.path + "/meta"))
            return false
        }
    }

    /// The disk `camera` records to now, choosing one if it has none or its disk is no longer healthy
    /// (F2). `nil` when no disk is healthy.
    func route(_ camera: CameraID) -> Route? {
        let (route, moved) = state.withLock { s -> (Route?, (from: String?, to: String)?) in
            let pinned = config.camera(camera)?.disk
            if let name = s.assignment[camera], let d = s.disks.first(where: { $0.config.name == name }),
                d.health == .healthy, let w = d.writer,
                pinned == nil || pinned == name || !s.isHealthy(pinned!)
            {
                return (Route(disk: name, writer: w), nil)
            }
            guard let pick = s.choose(for: camera, pinned: pinned) else { return (nil, nil) }
            let from = s.assignment[camera]
            s.assignment[camera] = pick.config.name
            return (Route(disk: pick.config.name, writer: pick.writer!), (from, pick.config.name))
        }
        if let moved {
            logger.notice(
                "camera assigned to disk",
                metadata: ["camera.id": "\(camera)", "disk": "\(moved.to)", "from": "\(moved.from ?? "-")"])
            publish(moved.to)
            if let from = moved.from, from != moved.to { publish(from) }
        }
        return route
    }

    /// F1. Marks the disk whose writer is `writer` failed (the first report wins; a writer already
    /// replaced is ignored) and publishes it. Its cameras move on their next fragment.
    public func markFailed(_ route: Route, _ error: StorageError, code: String? = nil) {
        let changed = state.withLock { s -> Bool in
            guard let i = s.disks.firstIndex(where: { $0.config.name == route.disk }),
                s.disks[i].writer === route.writer,
                s.disks[i].health == .healthy
            else { return false }
            s.disks[i].health = .failed
            s.disks[i].reason = ErrorEvent(code: code ?? error.code.rawValue, message: "disk \(route.disk): \(error)")
            s.disks[i].writer = nil
            return true
        }
        guard changed else { return }
        logger.critical(
            "recording disk failed; moving its cameras", metadata: ["disk": "\(route.disk)", "error": "\(error)"])
        announce(.error(ErrorEvent(code: "storage.diskFailed", message: "disk \(route.disk) failed: \(error)")))
        publish(route.disk)
    }

    /// Every second: F1 for vanished mounts, F6 for disks that came back. Called by the recorder's
    /// monitor thread.
    public func monitor() {
        let now = clocks.monotonicNanos()
        let disks = state.withLock { $0.disks }
        for d in disks {
            let current = FileIdentity(path: d.config.path + "/meta")
            switch d.health {
            case .healthy:
                if current != d.identity, let w = d.writer {
                    // F6 retries once `meta` resolves to a file again (a remount or a replacement disk).
                    state.withLock { s in
                        if let i = s.disks.firstIndex(where: { $0.config.name == d.config.name }) {
                            s.disks[i].identity = current
                        }
                    }
                    markFailed(
                        Route(disk: d.config.name, writer: w),
                        StorageError(
                            .io,
                            "\(d.config.path)/meta no longer resolves to the file opened (the disk vanished or was remounted)",
                            system: SystemError("stat", errno: current == nil ? ENODEV : ESTALE, subject: d.config.path)
                        ),
                        code: "storage.vanished")
                }
            case .failed, .quarantined, .missing:
                // F6. Try again only when something changed: a new mount, a replaced disk.
                guard now &- d.lastAttempt >= Self.retryNanos, current != d.identity || d.health == .missing else {
                    continue
                }
                if open(d.config) {
                    logger.notice("recording disk back in use", metadata: ["disk": "\(d.config.name)"])
                    announce(
                        .error(
                            ErrorEvent(
                                code: "storage.diskReturned",
                                message: "disk \(d.config.name) was rescanned and is recording again")))
                }
            }
        }
    }

    /// The healthy disks and their writers (for the flushers).
    public func healthy() -> [Route] {
        state.withLock { s in
            s.disks.compactMap { d in
                d.health == .healthy ? d.writer.map { Route(disk: d.config.name, writer: $0) } : nil
            }
        }
    }

    /// Whether `route` is still the disk's current healthy writer.
    public func isCurrent(_ route: Route) -> Bool {
        state.withLock { s in
            s.disks.contains { $0.config.name == route.disk && $0.writer === route.writer && $0.health == .healthy }
        }
    }

    /// Feeds the bit-rate estimate used for balancing from one commit of `disk` over `seconds` of cadence, and
    /// keeps the commit's own time for the disk's next ``DiskState``.
    public func noteCommit(_ report: CommitReport, disk: String, seconds: Double) {
        state.withLock { s in
            if let i = s.disks.firstIndex(where: { $0.config.name == disk }) {
                s.disks[i].slowestCommitNanos = max(s.disks[i].slowestCommitNanos, report.elapsedNanos)
            }
            guard seconds > 0 else { return }
            for (id, c) in report.cameras {
                let rate = Double(c.payloadBytes) / seconds
                s.bitrate[id] = s.bitrate[id].map { 0.9 * $0 + 0.1 * rate } ?? rate
            }
        }
    }

    /// Seeds the estimate from what the disks already hold (bytes over seconds recorded).
    public func seedBitrate(_ id: CameraID, bytesPerSecond: Double) {
        guard bytesPerSecond > 0 else { return }
        state.withLock { s in if s.bitrate[id] == nil { s.bitrate[id] = bytesPerSecond } }
    }

    /// Publishes every disk's state (at start and every ~10 s).
    public func publishAll() { for d in config.recorder.disks { publish(d.name) } }

    /// Publishes one disk's ``DiskState``, retained.
    func publish(_ name: String) {
        guard
            let snapshot = state.withLock({ s -> DiskState? in
                guard let i = s.disks.firstIndex(where: { $0.config.name == name }) else { return nil }
                let d = s.disks[i]
                s.disks[i].slowestCommitNanos = 0
                let stats = d.writer?.stats()
                let cameras = s.assignment.filter { $0.value == name }.map(\.key).sorted()
                let slowest = d.slowestCommitNanos > 0 ? (Double(d.slowestCommitNanos) / 1e4).rounded() / 100 : nil
                return DiskState(
                    disk: name, path: d.config.path, health: d.health, reason: d.reason,
                    cameras: d.health == .healthy ? cameras : [],
                    freeSlots: stats?.freeSlots ?? 0, slotCount: d.writer?.disk.meta.slotCount ?? 0,
                    slowestCommitMillis: slowest, at: clocks.utcNow()
                )
            })
        else { return }
        announce(.disk(snapshot))
    }

    private func setHealth(
        _ name: String, _ health: DiskState.Health, _ reason: ErrorEvent?, writer: DiskWriter?, identity: FileIdentity?
    ) {
        let previous = state.withLock { s -> DiskState.Health? in
            guard let i = s.disks.firstIndex(where: { $0.config.name == name }) else { return nil }
            let p = s.disks[i].health
            s.disks[i].health = health
            s.disks[i].reason = reason
            s.disks[i].writer = writer
            s.disks[i].identity = identity
            if writer != nil { s.disks[i].wasOpen = true }
            return p
        }
        if let reason, health != .healthy, previous != health || health != .missing {
            logger.error(
                "recording disk not usable",
                metadata: [
                    "disk": "\(name)", "health": "\(health.rawValue)", "code": "\(reason.code)",
                    "error": "\(reason.message)",
                ])
            announce(.error(reason))
        }
        publish(name)
    }
}

extension RecordingPool.State {
    func isHealthy(_ name: String) -> Bool {
        disks.contains { $0.config.name == name && $0.health == .healthy && $0.writer != nil }
    }

    /// F2. The pinned disk when healthy; else the healthy disk whose load after adding the camera is the
    /// lowest (ties: configuration order).
    func choose(for camera: CameraID, pinned: String?) -> RecordingPool.Disk? {
        let healthy = disks.filter { $0.health == .healthy && $0.writer != nil }
        if let pinned, let d = healthy.first(where: { $0.config.name == pinned }) { return d }
        let mine = bitrate[camera] ?? RecordingPool.defaultBytesPerSecond
        func load(_ d: RecordingPool.Disk) -> Double {
            let assigned = assignment.filter { $0.value == d.config.name && $0.key != camera }.keys
            let rate = assigned.reduce(mine) { $0 + (bitrate[$1] ?? RecordingPool.defaultBytesPerSecond) }
            let meta = d.writer!.disk.meta
            return rate / Double(max(1, Int64(meta.slotCount) * meta.slotSizeBytes))
        }
        return healthy.min { load($0) < load($1) }
    }
}

/// Device and inode of a file: which file a path names right now.
struct FileIdentity: Equatable, Sendable {
    let device: UInt64
    let inode: UInt64
    /// `nil` when `path` cannot be `stat`ed (gone, or its file system vanished).
    init?(path: String) {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
    }
}
