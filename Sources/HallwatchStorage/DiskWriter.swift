import Foundation
import GRDB
import HallwatchCore
import Logging
import Synchronization

/// The only code that writes a recording disk: appends each camera's records to that camera's open
/// slot, makes them durable on a cadence and only then indexes them (<doc:WriteProtocol>).
///
/// Called from one thread per camera connection (``append(camera:meta:payload:)``) and one flusher
/// thread (``syncAndCommit()``, every `fsyncCadence`, default 1 s: the recovery point objective).
///
/// ## Locks
/// Taken only in this order, any of them skipped, never the reverse:
/// 1. `committer`: the flusher's state (index mirror, open chunk rows); held for a whole commit.
/// 2. a camera's lane lock: its open slot and init segment; held for a whole append (CRC, `pwritev`).
/// 3. `shared`: slot table, pending records, failure; held only for short sections, never across
///    `pwritev` or `fdatasync`. The one exception is a ring reuse (step T2), which commits a SQLite
///    transaction while holding it: a last resort that blocks other cameras for one transaction.
/// 4. SQLite's write lock (GRDB's queue): its closures never take 1–3.
///
/// The `lanes` registry lock is a leaf: taken alone, to find or create a lane.
///
/// `fdatasync` runs with only `committer` held, so cameras keep appending while the disk flushes.
public final class DiskWriter: Sendable {
    /// Tunables of the writer.
    public struct Options: Sendable {
        /// Longest stretch one index chunk row covers, in media time and in UTC; default 60 s.
        /// Longer chunks make the index smaller but each extension rewrites a longer blob.
        public var maxChunkSpan: Duration = .seconds(60)
        /// Reuse the oldest closed slot when none is free (ring semantics, the last resort; DESIGN.md
        /// § Storage). When false, ``DiskWriter/append(camera:meta:payload:)`` throws
        /// ``StorageError/Code/full`` instead. Default true: recording never stops because a disk is full.
        public var allowRingReuse = true
        /// The defaults: 60 s chunks, ring reuse allowed.
        public init() {}
    }

    /// The disk written.
    public let disk: RecordingDisk
    /// What opening the disk recovered.
    public let recovery: RecoveryReport

    let options: Options
    let clocks: any Clocks
    let logger: Logger
    let opener: any SlotFileOpener
    let db: DatabaseQueue
    /// The exclusive lock on the disk, released by ``close()``.
    private let lock: Mutex<DiskLock?>
    /// Longest fragment accepted, 90 kHz ticks (``Options/maxChunkSpan``).
    let maxFragment90k: Int64
    private let committer: Mutex<Committer>
    private let lanes: Mutex<[CameraID: CameraLane]>
    private let shared: Mutex<Shared>

    /// Opens `disk` for writing: recovers the tail of every open slot and (re)builds the index as
    /// needed (steps R2–R8), then accepts appends.
    ///
    /// Only one writer may have a disk open at a time: it holds an exclusive `flock` on `meta` until
    /// ``close()`` or deinit (the kernel releases it if the process dies).
    /// - Parameters:
    ///   - disk: A disk validated by ``RecordingDisk/open(at:box:)``.
    ///   - clocks: Source of the slot headers' "taken at" time.
    ///   - logger: Receives recovery notes, slot takes, ring reuses and failures.
    ///   - options: Tunables.
    ///   - opener: Opens slot files (tests inject faults here).
    /// - Throws: ``StorageError/Code/locked`` (another writer has the disk), ``StorageError/Code/io``
    ///   (a slot file cannot be read), ``StorageError/Code/index``.
    public init(
        disk: RecordingDisk, clocks: any Clocks = SystemClocks(), logger: Logger,
        options: Options = Options(), opener: any SlotFileOpener = PosixSlotFileOpener()
    ) throws(StorageError) {
        var logger = logger
        logger[metadataKey: "disk"] = "\(disk.path)"
        // Exactly one writer per disk: two would take the same free slots. The lock is on `meta` and
        // lasts until close() or deinit; the kernel drops it if the process dies.
        let lock = try DiskLock(disk)
        let r = try Recovery.run(
            disk: disk, opener: opener, clocks: clocks, logger: logger, maxChunkSpan: options.maxChunkSpan)
        self.disk = disk
        self.recovery = r.report
        self.options = options
        self.clocks = clocks
        self.lock = Mutex(lock)
        self.logger = logger
        self.opener = opener
        self.db = r.db
        self.maxFragment90k = r.indexer.maxSpan90k

        var slots: [SlotInfo] = []
        var lanes: [CameraID: CameraLane] = [:]
        for n in 0..<disk.meta.slotCount {
            let row = r.rows[n] ?? .free(n, generation: 0)
            slots.append(
                SlotInfo(
                    generation: row.generation, camera: row.camera, phase: row.state, indexedPhase: row.state,
                    takeSequence: row.takeSequence, unsettled: 0, unusable: r.unusable.contains(n)))
            // R7. The camera's newest open slot resumes at the end of its last whole record (a torn
            // record after it is overwritten by the next append). Its init segment is not restored:
            // the capture worker reconnects and sends one first.
            if row.state == .open, let camera = row.camera, !r.unusable.contains(n) {
                let file = try opener.open(disk.slotPath(n), writable: true)
                let open = OpenSlot(
                    number: n, generation: row.generation, file: file, writeOffset: row.indexedEndOffset,
                    chainCRC: row.tailCRC,
                    initRun: row.lastInitRun.flatMap { run in row.lastInitOffset.map { _ in run } },
                    initOffset: row.lastInitOffset, openRow: nil)
                lanes[camera] = CameraLane(LaneState(slot: open, initSegment: nil))
            }
        }
        self.lanes = Mutex(lanes)
        self.shared = Mutex(Shared(slots: slots, nextTakeSequence: r.nextTakeSequence))
        self.committer = Mutex(Committer(rows: r.rows, indexer: r.indexer))
    }

    // MARK: - Append (steps A1–A6)

    /// Appends one init segment or fragment of `camera` to the camera's open slot.
    ///
    /// The bytes are written (`pwritev`, no copy of `payload`) but not durable and not indexed: they
    /// become visible to readers after the next ``syncAndCommit()``. An init segment starts a run and
    /// is remembered: it is written again at the start of each slot the camera takes, so a slot
    /// decodes alone.
    ///
    /// Thread-safe; appends of different cameras run concurrently, those of one camera in call order.
    ///
    /// - Parameters:
    ///   - camera: Whose record it is.
    ///   - meta: Kind (init segment or fragment), run, sequence, start and
    ///     duration (90 kHz ticks), UTC anchor (µs) and keyframe flag, stored in the record header.
    ///   - payload: ISO/IEC 14496-12 `ftyp`+`moov` for an init segment, `moof`+`mdat` (§8.8) for a
    ///     fragment; at most `MediaSegment.maxPayloadBytes` (16 MiB).
    /// - Returns: Where the record went and whether a slot was taken or reused (alarm on
    ///   ``AppendOutcome/ringReuse``).
    /// - Throws: ``StorageError/Code/protocol`` (a fragment of a run whose init segment this writer
    ///   has not been given, a `hello`, a negative duration); ``StorageError/Code/tooLarge`` (the
    ///   record and its init segment exceed an empty slot); ``StorageError/Code/full`` (no slot free or
    ///   reusable); ``StorageError/Code/io`` (the write failed: the writer is now failed);
    ///   ``StorageError/Code/failed`` (an earlier failure, or ``close()``).
    @discardableResult
    public func append(camera: CameraID, meta: FragmentMeta, payload: [UInt8]) throws(StorageError) -> AppendOutcome {
        // A1. Refuse what the format cannot store before touching anything (a wire-only kind such as a
        // hello cannot even be expressed here: `SegmentKind` has none).
        guard meta.duration90k >= 0 else { throw StorageError(.protocol, "camera \(camera): negative duration") }
        // A fragment longer than a chunk may span would break the reader's time-range bound.
        guard Int64(meta.duration90k) <= maxFragment90k else {
            throw StorageError(
                .protocol,
                "camera \(camera): fragment of \(meta.duration90k) ticks is longer than \(options.maxChunkSpan)")
        }
        guard payload.count <= MediaSegment.maxPayloadBytes else {
            throw StorageError(
                .tooLarge, "camera \(camera): payload of \(payload.count) bytes exceeds \(MediaSegment.maxPayloadBytes)"
            )
        }
        try shared.withLock { (s) throws(StorageError) in try s.checkUsable() }
        let lane = lanes.withLock { lanes in
            if let l = lanes[camera] { return l }
            let l = CameraLane(LaneState(slot: nil, initSegment: nil))
            lanes[camera] = l
            return l
        }
        // A2. The camera's lock: one append of this camera at a time, in call order.
        return try lane.state.withLock { (ls) throws(StorageError) -> AppendOutcome in
            try self.appendLocked(&ls, camera: camera, meta: meta, payload: payload)
        }
    }

    private func appendLocked(_ ls: inout LaneState, camera: CameraID, meta: FragmentMeta, payload: [UInt8])
        throws(StorageError) -> AppendOutcome
    {
        let slotSize = disk.meta.slotSizeBytes
        let room = slotSize - Int64(SlotHeader.byteCount)
        let recordBytes = Int64(RecordHeader.byteCount + payload.count)
        var initToCopy: InitSegment?
        if meta.kind == .fragment {
            guard let seg = ls.initSegment, seg.meta.run == meta.run else {
                throw StorageError(
                    .protocol,
                    "camera \(camera): fragment \(meta.sequence) of run \(meta.run) without that run's init segment")
            }
            initToCopy = seg
            guard seg.recordBytes + recordBytes <= room else {
                throw StorageError(
                    .tooLarge,
                    "camera \(camera): init segment and fragment (\(seg.recordBytes + recordBytes) bytes) exceed an empty slot (\(room) bytes)"
                )
            }
        } else {
            guard recordBytes <= room else {
                throw StorageError(
                    .tooLarge,
                    "camera \(camera): init segment of \(recordBytes) bytes exceeds an empty slot (\(room) bytes)")
            }
        }
        // The slot needs the run's init record before a fragment (T5): at a slot's start, or when
        // a recovered slot resumes.
        func needed(_ slot: OpenSlot) -> Int64 {
            recordBytes + (initToCopy != nil && slot.initRun != meta.run ? initToCopy!.recordBytes : 0)
        }

        var outcome = AppendOutcome(slot: 0, offset: 0, batch: 0, tookSlot: false, ringReuse: nil)
        // A3. Roll over when the record does not fit: close the slot, take the next (T1–T4).
        if ls.slot == nil || ls.slot!.writeOffset + needed(ls.slot!) > slotSize {
            if let old = ls.slot {
                shared.withLock { s in
                    s.slots[old.number].phase = .closed
                    s.rowChanges.append(.closed(slot: old.number))
                }
                logger.debug(
                    "closed slot",
                    metadata: ["slot": "\(old.number)", "camera.id": "\(camera)", "bytes": "\(old.writeOffset)"])
                ls.slot = nil
            }
            let (taken, reuse) = try takeSlot(for: camera)
            ls.slot = taken
            outcome.tookSlot = true
            outcome.ringReuse = reuse
        }
        // T5. The run's init record first, so the slot decodes alone.
        if let seg = initToCopy, ls.slot!.initRun != meta.run {
            _ = try writeRecord(&ls.slot!, camera: camera, meta: seg.meta, payload: seg.payload)
        }
        // A4–A6.
        (outcome.offset, outcome.batch) = try writeRecord(&ls.slot!, camera: camera, meta: meta, payload: payload)
        outcome.slot = ls.slot!.number
        if meta.kind == .initSegment { ls.initSegment = InitSegment(meta: meta, payload: payload) }
        return outcome
    }

    /// Steps A4–A6 for one record; returns its offset and the commit batch it joined. Caller holds the
    /// camera's lane lock.
    private func writeRecord(_ slot: inout OpenSlot, camera: CameraID, meta: FragmentMeta, payload: [UInt8])
        throws(StorageError) -> (Int64, UInt64)
    {
        // A4. Header with the slot's generation, the chain CRC and the record CRC (one pass over the
        // payload, in place), then one pwritev of header + payload. In the page cache only.
        var header = RecordHeader(
            camera: camera, meta: meta, generation: slot.generation,
            payloadBytes: UInt32(payload.count), previousCRC: slot.chainCRC)
        let headerBytes = payload.withUnsafeBytes { header.encode(payload: $0) }
        let offset = slot.writeOffset
        let file = slot.file
        do {
            try narrow {
                try headerBytes.withUnsafeBytes { h in
                    try payload.withUnsafeBytes { p in try file.write(h, p, at: offset) }
                }
            }
        } catch {
            fail(error, slot: slot.number, camera: camera)
            throw error
        }
        // A5. Pending: the flusher will sync and index it. A just-taken slot's row goes with its
        // first record, so the index never learns of a slot whose header is not yet durable.
        let isInit = meta.kind == .initSegment
        let record = PendingRecord(
            camera: camera, slot: slot.number, generation: slot.generation, file: file, offset: offset,
            header: header, initOffset: isInit ? offset : (slot.initOffset ?? offset))
        let openRow = slot.openRow
        slot.openRow = nil
        let number = slot.number
        let batch = shared.withLock { s in
            if let openRow { s.rowChanges.append(.opened(openRow)) }
            s.pending.append(record)
            s.slots[number].unsettled += 1
            return s.batchNumber
        }
        // A6. Advance the write offset and the chain.
        slot.writeOffset += header.recordBytes
        slot.chainCRC = header.crc
        if isInit {
            slot.initOffset = offset
            slot.initRun = meta.run
        }
        return (offset, batch)
    }

    /// Closes `camera`'s open slot and forgets its init segment. Call when a camera is removed from
    /// the configuration, so its partly filled slot becomes a candidate for pruning and ring reuse
    /// instead of staying open forever. The camera's next record must be an init segment; it takes
    /// a new slot. The close reaches the index with the next ``syncAndCommit()``.
    public func closeCamera(_ camera: CameraID) {
        // The lane stays registered: an append already waiting on its lock then takes a new slot in
        // the same lane, never a second open slot for the camera.
        guard let lane = lanes.withLock({ $0[camera] }) else { return }
        lane.state.withLock { ls in
            if let old = ls.slot {
                shared.withLock { s in
                    s.slots[old.number].phase = .closed
                    s.rowChanges.append(.closed(slot: old.number))
                }
                logger.info(
                    "closed slot of removed camera", metadata: ["slot": "\(old.number)", "camera.id": "\(camera)"])
            }
            ls.slot = nil
            ls.initSegment = nil
        }
    }

    // MARK: - Taking a slot (steps T1–T4)

    private func takeSlot(for camera: CameraID) throws(StorageError) -> (OpenSlot, RingReuse?) {
        let (n, generation, take, reuse) = try shared.withLock {
            (s) throws(StorageError) -> (Int, UInt64, UInt64, RingReuse?) in
            try s.checkUsable()
            // T1. A free slot; else one the pruner freed since; else (ring) the oldest reusable one.
            var pick = s.firstFree()
            if pick == nil {
                try refreshFreeSlots(&s)
                pick = s.firstFree()
            }
            var reuse: RingReuse?
            if pick == nil, options.allowRingReuse {
                (pick, reuse) = try reuseOldest(&s, for: camera)
            }
            guard let n = pick else {
                throw StorageError(.full, "no free or reusable slot for camera \(camera) (\(s.slots.count) slots)")
            }
            // T3. Next generation of this slot; next take of the disk.
            let generation = s.slots[n].generation + 1
            let take = s.nextTakeSequence
            s.nextTakeSequence += 1
            s.slots[n] = SlotInfo(
                generation: generation, camera: camera, phase: .open, indexedPhase: s.slots[n].indexedPhase,
                takeSequence: take, unsettled: s.slots[n].unsettled, unusable: false)
            return (n, generation, take, reuse)
        }
        // T4. The new header. Until the next sync it may or may not reach the disk; either way
        // recovery is right: the old header's generation rejects the new records, the new one
        // accepts them.
        let header = SlotHeader(
            diskUUID: disk.meta.diskUUID, slot: n, generation: generation, takeSequence: take,
            takenAt: clocks.utcNow(), camera: camera)
        let bytes = header.encode()
        let file: any SlotFileHandle
        do {
            file = try opener.open(disk.slotPath(n), writable: true)
            try narrow {
                try bytes.withUnsafeBytes { b in try file.write(b, UnsafeRawBufferPointer(start: nil, count: 0), at: 0)
                }
            }
        } catch {
            fail(error, slot: n, camera: camera)
            throw error
        }
        logger.info("took slot", metadata: ["slot": "\(n)", "camera.id": "\(camera)", "generation": "\(generation)"])
        return (
            OpenSlot(
                number: n, generation: generation, file: file, writeOffset: Int64(SlotHeader.byteCount),
                chainCRC: header.crc,
                initRun: nil, initOffset: nil, openRow: .opened(header)), reuse
        )
    }

    /// Picks up the slots the pruner freed in the index since the writer last looked (step T1 does this
    /// by itself only when no slot is free), so ``stats()`` counts them. Returns the free slots now.
    /// - Throws: ``StorageError/Code/index``.
    @discardableResult
    public func pickUpFreedSlots() throws(StorageError) -> Int {
        try shared.withLock { (s) throws(StorageError) -> Int in
            try refreshFreeSlots(&s)
            return s.slots.indices.filter { s.slots[$0].phase == .free && !s.slots[$0].unusable }.count
        }
    }

    /// Picks up slots another process (the pruner) freed in the index. Caller holds `shared`.
    private func refreshFreeSlots(_ s: inout Shared) throws(StorageError) {
        let free = try withSQLite("reading free slots") {
            try db.read { db in
                try Row.fetchAll(db, sql: "SELECT slot, generation FROM slot WHERE state = 'free'").map {
                    ($0[0] as Int, UInt64(bitPattern: $0[1] as Int64))
                }
            }
        }
        for (n, generation) in free
        where n < s.slots.count && s.slots[n].isSettledClosed && s.slots[n].generation == generation {
            s.slots[n].phase = .free
            s.slots[n].indexedPhase = .free
        }
    }

    /// T2: drops the index rows of the oldest settled, closed, unheld slot and frees it, before any
    /// of its bytes are overwritten, so the index never points at bytes that change under it.
    /// Caller holds `shared` (see the lock hazard in the type's documentation).
    private func reuseOldest(_ s: inout Shared, for camera: CameraID) throws(StorageError) -> (Int?, RingReuse?) {
        let candidates = s.slots.indices.filter { s.slots[$0].isSettledClosed }.sorted {
            s.slots[$0].takeSequence < s.slots[$1].takeSequence
        }
        for n in candidates {
            let dropped: Int? = try withSQLite("freeing slot \(n) for reuse") {
                try db.write { db -> Int? in
                    // Evidence holds pin a slot (DESIGN.md § Storage); read inside the transaction.
                    if try Int.fetchOne(db, sql: "SELECT hold FROM slot WHERE slot = ?", arguments: [n]) ?? 0 != 0 {
                        return nil
                    }
                    // The hold table itself too: video recorded into a held range after the pruner's
                    // last re-pin is not yet flagged (<doc:WriteProtocol> § Evidence holds).
                    if try RetentionSchema.isCoveredByActiveHold(
                        db, slot: n, generation: s.slots[n].generation, now: clocks.utcNow())
                    {
                        return nil
                    }
                    try db.execute(sql: "DELETE FROM chunk WHERE slot = ?", arguments: [n])
                    let count = db.changesCount
                    try db.execute(
                        sql: """
                            UPDATE slot SET state = 'free', camera = NULL, indexedEndOffset = ?, tailCRC = 0,
                                lastInitOffset = NULL, lastInitRun = NULL WHERE slot = ?
                            """, arguments: [SlotHeader.byteCount, n])
                    return count
                }
            }
            guard let dropped else { continue }
            let reuse = RingReuse(
                slot: n, previousCamera: s.slots[n].camera, previousGeneration: s.slots[n].generation,
                droppedChunks: dropped)
            s.slots[n].phase = .free
            s.slots[n].indexedPhase = .free
            s.ringReuses += 1
            logger.critical(
                "ring reuse: no free slot, overwriting the oldest",
                metadata: [
                    "slot": "\(n)", "camera.id": "\(camera)",
                    "previous.camera": "\(reuse.previousCamera?.rawValue ?? "-")",
                    "previous.generation": "\(reuse.previousGeneration)", "dropped.chunks": "\(dropped)",
                ])
            return (n, reuse)
        }
        return (nil, nil)
    }

    // MARK: - Sync and commit (steps C1–C6)

    /// Makes every appended record durable, then indexes exactly those records.
    ///
    /// Call every `fsyncCadence` (default 1 s) from one flusher thread; calls are serialised.
    /// Appends continue while it runs and belong to the next call.
    ///
    /// - Returns: Per camera, what became durable and visible: media seconds, bytes, last fragment's UTC, run.
    /// - Throws: ``StorageError/Code/io`` when an `fdatasync` failed: the records in that file are
    ///   never indexed (the writer is failed; move the cameras), the others were committed.
    ///   ``StorageError/Code/index`` when SQLite failed: nothing was indexed, the records stay
    ///   pending (they are durable, so a later call or recovery indexes them).
    @discardableResult
    public func syncAndCommit() throws(StorageError) -> CommitReport {
        try committer.withLock { (c) throws(StorageError) -> CommitReport in try self.commitLocked(&c) }
    }

    private func commitLocked(_ c: inout Committer) throws(StorageError) -> CommitReport {
        guard !c.shutDown else { throw StorageError(.failed, "the writer is closed") }
        let started = clocks.monotonicNanos()
        // C1. Take the batch. Records appended from here on go to the next one.
        let (batch, changes, batchNumber) = shared.withLock { s in
            defer {
                s.pending.removeAll(keepingCapacity: true)
                s.rowChanges.removeAll()
                s.batchNumber += 1
            }
            return (s.pending, s.rowChanges, s.batchNumber)
        }
        var report = CommitReport()
        guard !batch.isEmpty || !changes.isEmpty else { return report }

        // C2. fdatasync every file with bytes in the batch. Only after this are they durable.
        var files: [ObjectIdentifier: (slot: Int, file: any SlotFileHandle)] = [:]
        for r in batch { files[ObjectIdentifier(r.file)] = (r.slot, r.file) }
        var failedSlots: Set<Int> = []
        var syncError: StorageError?
        for (_, f) in files.sorted(by: { $0.value.slot < $1.value.slot }) {
            do throws(StorageError) { try f.file.syncData() } catch {
                failedSlots.insert(f.slot)
                syncError = syncError ?? error
            }
        }
        report.syncedFiles = files.count - failedSlots.count
        // C3. A failed fdatasync: those records are never indexed (Linux may have dropped the dirty
        // pages and a retry would report success), and the writer stops accepting records.
        if let syncError {
            fail(syncError, slot: failedSlots.min() ?? -1, camera: nil)
            shared.withLock { s in
                for r in batch where failedSlots.contains(r.slot) { s.slots[r.slot].unsettled -= 1 }
                for n in failedSlots { s.slots[n].unusable = true }
            }
        }
        let durable = failedSlots.isEmpty ? batch : batch.filter { !failedSlots.contains($0.slot) }
        let durableChanges = failedSlots.isEmpty ? changes : changes.filter { !failedSlots.contains($0.slot) }

        // C4. One transaction: chunk rows and slot rows for exactly the durable records.
        var next = c
        var touched: Set<Int> = []
        for change in durableChanges {
            switch change {
            case .opened(let row): next.rows[row.slot] = row
            case .closed(let n): next.rows[n]?.state = .closed
            }
            touched.insert(change.slot)
        }
        for r in durable {
            var row = next.rows[r.slot] ?? .free(r.slot, generation: r.generation)
            if r.header.kind == .initSegment {
                row.lastInitOffset = r.offset
                row.lastInitRun = r.header.run
                next.indexer.endChunk(of: r.camera)
            } else {
                next.indexer.add(
                    IndexableFragment(
                        camera: r.camera, slot: r.slot, generation: r.generation, initOffset: r.initOffset,
                        offset: r.offset, recordBytes: r.header.recordBytes, meta: r.header.meta))
            }
            row.indexedEndOffset = r.offset + r.header.recordBytes
            row.tailCRC = r.header.crc
            next.rows[r.slot] = row
            touched.insert(r.slot)
            report.add(r)
        }
        let rowsToSave = touched.sorted().compactMap { next.rows[$0] }
        do {
            var indexer = next.indexer
            try db.write { db in
                try indexer.flush(db)
                for row in rowsToSave { try row.save(db) }
            }
            next.indexer = indexer
        } catch {
            // C5. Nothing was indexed; the records are durable, so keep them pending for the next
            // call (or for recovery, should the process die first).
            shared.withLock { s in
                s.pending.insert(contentsOf: durable, at: 0)
                s.rowChanges.insert(contentsOf: durableChanges, at: 0)
            }
            let e = StorageError.sqlite(error, "committing \(durable.count) records")
            logger.error("index commit failed", metadata: ["error": "\(e)"])
            throw e
        }
        c = next

        // C6. Settle: the records are indexed (or, after a failed sync, abandoned).
        shared.withLock { s in
            if syncError == nil { s.indexedThroughBatch = batchNumber }
            for r in durable { s.slots[r.slot].unsettled -= 1 }
            for change in durableChanges {
                switch change {
                case .opened(let row): s.slots[row.slot].indexedPhase = .open
                case .closed(let n): s.slots[n].indexedPhase = .closed
                }
            }
        }
        report.elapsedNanos = clocks.monotonicNanos() &- started
        if let syncError { throw syncError }
        return report
    }

    /// Stops accepting appends, syncs and commits what is pending, checkpoints the index's WAL, closes
    /// the index and releases the disk's lock (another writer may then open it). Later calls of any
    /// writing method throw ``StorageError/Code/failed``.
    /// Stop the camera threads first: an append racing with `close` may be left pending (it is
    /// durable-or-not like any crash and recovered on the next open).
    /// - Throws: as ``syncAndCommit()``.
    @discardableResult
    public func close() throws(StorageError) -> CommitReport {
        shared.withLock { $0.closed = true }
        return try committer.withLock { (c) throws(StorageError) -> CommitReport in
            let report = try self.commitLocked(&c)
            c.shutDown = true
            _ = try? db.writeWithoutTransaction { try $0.checkpoint(.truncate) }
            try? db.close()
            lock.withLock { $0 = nil }
            return report
        }
    }

    /// The newest commit batch whose every record is durable and indexed (0 before the first). Records
    /// whose ``AppendOutcome/batch`` is at most this survive a crash or a failure of this disk; the
    /// recorder keeps the newer ones in memory so it can write them again to another disk if this one
    /// fails (step F3 of the write protocol).
    public func indexedThroughBatch() -> UInt64 { shared.withLock { $0.indexedThroughBatch } }

    /// Current counters, for metrics and the status page.
    public func stats() -> WriterStats {
        shared.withLock { s in
            var w = WriterStats()
            for slot in s.slots {
                if slot.unusable {
                    w.unusableSlots += 1
                    continue
                }
                switch slot.phase {
                case .free: w.freeSlots += 1
                case .open: w.openSlots += 1
                case .closed: w.closedSlots += 1
                }
            }
            w.pendingRecords = s.pending.count
            w.ringReuses = s.ringReuses
            w.failure = s.failure
            return w
        }
    }

    // MARK: - Failure

    /// Marks the writer failed (first error wins); later appends throw ``StorageError/Code/failed``.
    private func fail(_ error: StorageError, slot: Int, camera: CameraID?) {
        let first = shared.withLock { s -> Bool in
            if s.failure == nil {
                s.failure = error
                return true
            }
            return false
        }
        if first {
            logger.critical(
                "recording disk failed",
                metadata: ["slot": "\(slot)", "camera.id": "\(camera?.rawValue ?? "-")", "error": "\(error)"])
        }
    }

    /// Test hook: step C2 alone, as if the process died between C2 and C4.
    func syncWithoutCommitForTesting() throws(StorageError) {
        let files = shared.withLock { s in s.pending.map(\.file) }
        for f in files { try f.syncData() }
    }
}

// MARK: - Results

/// Where ``DiskWriter/append(camera:meta:payload:)`` put a record.
public struct AppendOutcome: Sendable, Equatable {
    /// Slot number.
    public var slot: Int
    /// Offset of the record, bytes from the slot file's start.
    public var offset: Int64
    /// The commit batch the record joined: it is durable and indexed once
    /// ``DiskWriter/indexedThroughBatch()`` reaches this number.
    public var batch: UInt64
    /// The camera took a new slot for this record (first record, or rollover).
    public var tookSlot: Bool
    /// Set when no slot was free and an old one was overwritten: raise an alarm.
    public var ringReuse: RingReuse?
}

/// A slot taken by ring reuse (no free slot; DESIGN.md § Storage): its index rows were dropped and its
/// bytes will be overwritten.
public struct RingReuse: Sendable, Equatable {
    /// The slot taken over.
    public var slot: Int
    /// Whose recording is lost.
    public var previousCamera: CameraID?
    /// The generation whose records are being overwritten.
    public var previousGeneration: UInt64
    /// Chunk rows dropped from the index.
    public var droppedChunks: Int
}

/// What one ``DiskWriter/syncAndCommit()`` made durable and visible.
public struct CommitReport: Sendable, Equatable {
    /// Per camera with records in the commit.
    public var cameras: [CameraID: CameraCommit] = [:]
    /// Records indexed (init segments and fragments).
    public var recordCount = 0
    /// Header and payload bytes indexed.
    public var recordBytes: Int64 = 0
    /// Slot files `fdatasync`ed successfully.
    public var syncedFiles = 0
    /// Wall time of the whole commit on the monotonic clock, ns.
    public var elapsedNanos: UInt64 = 0

    /// An empty report (nothing was pending).
    public init() {}

    mutating func add(_ r: PendingRecord) {
        recordCount += 1
        recordBytes += r.header.recordBytes
        var c = cameras[r.camera] ?? CameraCommit(camera: r.camera, run: r.header.run)
        c.run = r.header.run
        c.payloadBytes += Int64(r.header.payloadBytes)
        if r.header.kind == .fragment {
            c.fragmentCount += 1
            c.media90k += MediaTime90k(Int64(r.header.duration90k))
            c.lastFragmentUTC = r.header.utc
            c.lastFragmentEndUTC = r.header.utc.adding(MediaTime90k(Int64(r.header.duration90k)))
        } else {
            c.initSegmentCount += 1
        }
        cameras[r.camera] = c
    }
}

/// One camera's share of a ``CommitReport``.
public struct CameraCommit: Sendable, Equatable {
    /// The camera.
    public var camera: CameraID
    /// Run of the last record committed.
    public var run: UInt64
    /// Fragments newly committed.
    public var fragmentCount = 0
    /// Init records newly committed (run starts and per-slot copies).
    public var initSegmentCount = 0
    /// Sum of the new fragments' durations, 90 kHz ticks.
    public var media90k = MediaTime90k.zero
    /// Payload bytes (fMP4) newly committed, init copies included.
    public var payloadBytes: Int64 = 0
    /// UTC anchor of the last new fragment's start.
    public var lastFragmentUTC: UTCMicros?
    /// UTC of the last new fragment's end: the camera is durably recorded up to here.
    public var lastFragmentEndUTC: UTCMicros?

    /// ``media90k`` in seconds.
    public var seconds: Double { media90k.seconds }

    /// Nothing committed yet for `camera`.
    public init(camera: CameraID, run: UInt64) {
        self.camera = camera
        self.run = run
    }
}

/// Counters of a ``DiskWriter``.
public struct WriterStats: Sendable {
    /// Slots never used or freed (by the pruner or recovery).
    public var freeSlots = 0
    /// Slots a camera is appending to (one per camera).
    public var openSlots = 0
    /// Full or abandoned slots: the pruner's and ring reuse's candidates.
    public var closedSlots = 0
    /// Slots never written again (see ``RecoveryReport/unusableSlots``, failed `fdatasync`).
    public var unusableSlots = 0
    /// Records written but not yet synced and indexed.
    public var pendingRecords = 0
    /// Ring reuses since the writer opened.
    public var ringReuses = 0
    /// The failure that stopped the writer, if any.
    public var failure: StorageError?
}

// MARK: - Internal state

struct InitSegment: Sendable {
    var meta: FragmentMeta
    var payload: [UInt8]
    var recordBytes: Int64 { Int64(RecordHeader.byteCount + payload.count) }
}

/// A camera's open slot, owned by its lane.
struct OpenSlot: Sendable {
    let number: Int
    let generation: UInt64
    let file: any SlotFileHandle
    /// Where the next record goes, bytes.
    var writeOffset: Int64
    /// CRC of the last record written (of the header when none): the next record's previous CRC.
    var chainCRC: UInt32
    /// The run whose init record is the last one in this slot, and its offset.
    var initRun: UInt64?
    var initOffset: Int64?
    /// The slot row to commit with the slot's first record.
    var openRow: SlotRow?
}

struct LaneState: Sendable {
    var slot: OpenSlot?
    var initSegment: InitSegment?
}

final class CameraLane: Sendable {
    let state: Mutex<LaneState>
    init(_ s: LaneState) { state = Mutex(s) }
}

struct SlotInfo: Sendable {
    var generation: UInt64
    var camera: CameraID?
    /// What the writer does with the slot now.
    var phase: SlotState
    /// What the committed index says.
    var indexedPhase: SlotState
    var takeSequence: UInt64
    /// Records written to it and not yet committed (pending or in a commit in flight).
    var unsettled: Int
    /// Never written again (see ``RecoveryReport/unusableSlots``).
    var unusable: Bool

    /// Closed, known closed by the index, nothing in flight: safe to free.
    var isSettledClosed: Bool { phase == .closed && indexedPhase == .closed && unsettled == 0 && !unusable }
}

struct PendingRecord: Sendable {
    let camera: CameraID
    let slot: Int
    let generation: UInt64
    /// Keeps the descriptor open until the record is synced, even after the slot closed.
    let file: any SlotFileHandle
    let offset: Int64
    let header: RecordHeader
    let initOffset: Int64
}

enum RowChange: Sendable {
    case opened(SlotRow)
    case closed(slot: Int)
    var slot: Int {
        switch self {
        case .opened(let r): return r.slot
        case .closed(let n): return n
        }
    }
}

struct Shared: Sendable {
    var slots: [SlotInfo]
    var nextTakeSequence: UInt64
    var pending: [PendingRecord] = []
    /// Slot row changes for the next commit, in order (applied before its records).
    var rowChanges: [RowChange] = []
    var failure: StorageError?
    var closed = false
    var ringReuses = 0
    /// The batch records appended now join (C1 takes it and starts the next).
    var batchNumber: UInt64 = 1
    /// The newest batch fully synced and indexed (C6).
    var indexedThroughBatch: UInt64 = 0

    init(slots: [SlotInfo], nextTakeSequence: UInt64) {
        self.slots = slots
        self.nextTakeSequence = nextTakeSequence
    }

    func checkUsable() throws(StorageError) {
        if let failure {
            throw StorageError(
                .failed, "the writer stopped after an earlier failure", system: failure.system,
                cause: failure.description)
        }
        if closed { throw StorageError(.failed, "the writer is closed") }
    }

    func firstFree() -> Int? {
        slots.indices.first { slots[$0].phase == .free && !slots[$0].unusable && slots[$0].unsettled == 0 }
    }
}

/// The flusher's state: a mirror of the committed slot rows and the chunks it may still extend.
struct Committer: Sendable {
    var rows: [Int: SlotRow]
    var indexer: ChunkIndexer
    /// ``DiskWriter/close()`` ran: the index connection is closed.
    var shutDown = false
}

/// An exclusive `flock(2)` on the disk's `meta` file, held while a writer has the disk open.
final class DiskLock: Sendable {
    let fd: Int32
    init(_ disk: RecordingDisk) throws(StorageError) {
        let fd = retryingEINTR { Foundation.open(disk.metaPath, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw .io("open", path: disk.metaPath) }
        guard retryingEINTR({ flock(fd, LOCK_EX | LOCK_NB) }) == 0 else {
            let e = errno
            _ = Foundation.close(fd)
            if e == EWOULDBLOCK {
                throw StorageError(.locked, "\(disk.path) is already open for writing (another recorder?)")
            }
            throw .io("flock", path: disk.metaPath, errno: e)
        }
        self.fd = fd
    }
    deinit { _ = Foundation.close(fd) }
}
