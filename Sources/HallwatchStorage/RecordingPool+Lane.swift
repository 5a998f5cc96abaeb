import HallwatchCore
import Logging
import Synchronization

extension RecordingPool {
    /// One camera's path from its data-plane connection to a disk, on the connection's thread.
    ///
    /// It writes each frame to the disk ``RecordingPool`` routes the camera to, and keeps in memory what that
    /// disk has not yet indexed (the records of commit batches newer than
    /// ``DiskWriter/indexedThroughBatch()``: about one fsync cadence of video). When the disk fails, those
    /// records and the failed frame are written again to the next disk, behind the init segment of their
    /// run (F3), so a disk failure loses no video that reached the recorder. When the camera moves off a
    /// disk that is still healthy (its pinned disk came back), the old disk's open slot is closed (F4).
    ///
    /// What the disks hold per camera (``RecordingPool/storedEnd(of:)``) follows each append, so the data
    /// plane's resend filter (HallwatchDataPlane, step P5) can skip what a reconnecting worker sends again.
    public final class Lane {
        let camera: CameraID
        let pool: RecordingPool
        var logger: Logger { pool.logger }

        /// The disk written now.
        private var route: RecordingPool.Route?
        /// The run whose init segment the current disk has for this camera.
        private var initRunOnDisk: UInt64?
        /// The newest init segments by run (at most two: a run change inside the replay window).
        private var inits: [MediaSegment] = []
        /// Frames written to the current disk that it has not indexed yet, with their commit batch.
        private var unindexed: [(frame: MediaSegment, batch: UInt64)] = []

        var stored: StoredEnds { pool.stored }

        init(camera: CameraID, pool: RecordingPool) {
            self.camera = camera
            self.pool = pool
        }

        /// Writes one init segment or fragment, moving to another disk as often as disks fail under it.
        /// - Throws: `StorageError` with code `storage.noHealthyDisk` when no disk is healthy (the capture
        ///   worker keeps its backlog and reconnects); any non-disk ``StorageError`` (`storage.protocol`,
        ///   `storage.tooLarge`, …) from ``DiskWriter/append(camera:meta:payload:)``.
        public func deliver(_ frame: MediaSegment) throws(StorageError) {
            if frame.meta.kind == .initSegment {
                inits.removeAll { $0.meta.run == frame.meta.run }
                inits.append(frame)
                if inits.count > 2 { inits.removeFirst() }
            }
            while true {
                guard let next = pool.route(camera) else {
                    throw StorageError(
                        StorageError.Code(rawValue: "storage.noHealthyDisk"),
                        "no recording disk is healthy; camera \(camera) waits")
                }
                do throws(StorageError) {
                    if route?.writer !== next.writer { try switchTo(next) }
                    try write(frame, to: next)
                    return
                } catch  where error.isDiskFailure || error.code == .failed {
                    pool.markFailed(next, error)
                    // The loop routes to another disk; `switchTo` replays what this one had not indexed.
                }
            }
        }

        /// F3/F4: start writing to `next`. From a failed disk, carry over what it had not indexed.
        private func switchTo(_ next: RecordingPool.Route) throws(StorageError) {
            var replay: [MediaSegment] = []
            if let old = route {
                if pool.isCurrent(old) {
                    old.writer.closeCamera(camera)  // F4. A healthy disk keeps what it has; its open slot closes.
                } else {
                    let through = old.writer.indexedThroughBatch()
                    replay = unindexed.filter { $0.batch > through }.map(\.frame)
                }
            }
            route = next
            initRunOnDisk = nil
            unindexed.removeAll()
            if !replay.isEmpty {
                logger.notice(
                    "writing the failed disk's unindexed tail again",
                    metadata: ["camera.id": "\(camera)", "disk": "\(next.disk)", "frames": "\(replay.count)"])
            }
            for f in replay { try write(f, to: next) }
        }

        /// Appends `frame` to `route`'s disk, after its run's init segment if that disk lacks it.
        private func write(_ frame: MediaSegment, to route: RecordingPool.Route) throws(StorageError) {
            if frame.meta.kind == .fragment, initRunOnDisk != frame.meta.run,
                let i = inits.last(where: { $0.meta.run == frame.meta.run })
            {
                try append(i, route)
            }
            try append(frame, route)
        }

        private func append(_ frame: MediaSegment, _ route: RecordingPool.Route) throws(StorageError) {
            let outcome = try route.writer.append(camera: camera, meta: frame.meta, payload: frame.payload)
            if frame.meta.kind == .initSegment {
                initRunOnDisk = frame.meta.run
            } else {
                stored.set(camera, run: frame.meta.run, end90k: frame.meta.end90k.ticks)
            }
            let through = route.writer.indexedThroughBatch()
            if let k = unindexed.firstIndex(where: { $0.batch > through }) {
                unindexed.removeFirst(k)
            } else {
                unindexed.removeAll()
            }
            unindexed.append((frame, outcome.batch))
            if let reuse = outcome.ringReuse {
                pool.announce(
                    .error(
                        ErrorEvent(
                            code: "storage.overrun",
                            message:
                                "disk \(route.disk) has no free slot: reused slot \(reuse.slot) of \(reuse.previousCamera?.rawValue ?? "unknown") (is the pruner running?)",
                            camera: camera)))
            }
        }
    }

}

/// Per camera, the run and media end (90 kHz ticks) of the newest fragment stored: from the disks' index
/// the first time a camera is asked about (after a recorder restart, recovery has indexed everything
/// appended before the crash), then from the appends of this process.
final class StoredEnds: Sendable {
    private let ends = Mutex<[CameraID: (run: UInt64, end90k: Int64)?]>([:])
    private let load: @Sendable (CameraID) -> (run: UInt64, end90k: Int64)?

    init(load: @escaping @Sendable (CameraID) -> (run: UInt64, end90k: Int64)?) { self.load = load }

    func end(of camera: CameraID) -> (run: UInt64, end90k: Int64)? {
        if let known = ends.withLock({ $0[camera] }) { return known }
        let loaded = load(camera)
        ends.withLock { if $0[camera] == nil { $0[camera] = .some(loaded) } }
        return loaded
    }

    func set(_ camera: CameraID, run: UInt64, end90k: Int64) { ends.withLock { $0[camera] = .some((run, end90k)) } }
}
