import Foundation
import GRDB
import HallwatchCore
import Logging

/// What ``DiskWriter/init(disk:clocks:logger:options:opener:)`` found and repaired while opening a
/// disk (protocol steps R1–R8 in <doc:WriteProtocol>).
public struct RecoveryReport: Sendable, Equatable {
    /// `index.sqlite` was missing, damaged or belonged to another disk, and was rebuilt from the slots.
    public var indexRebuilt = false
    /// The old index file's new name when it was damaged or foreign (it is moved aside, never deleted).
    public var movedAsideIndex: String?
    /// Slots whose records were scanned.
    public var slotsScanned = 0
    /// Records that were durable on the disk but not in the index, now indexed.
    public var recordsIndexed = 0
    /// Their bytes (headers and payloads).
    public var bytesIndexed: Int64 = 0
    /// Slots whose scan ended at a torn record (a record of the slot's generation whose chain, length
    /// or CRC is wrong); appends resume at the last whole record and overwrite the torn one.
    public var tornTailSlots: [Int] = []
    /// Slots never written again: the header does not decode, belongs to another disk or slot, or
    /// disagrees with the index in a way no crash explains. Their rows and bytes are kept.
    public var unusableSlots: [Int] = []
    /// One line per anomaly, for the log and `hallwatchctl`.
    public var notes: [String] = []
}

/// The recovered state a writer starts from.
struct RecoveredDisk {
    var db: DatabaseQueue
    var rows: [Int: SlotRow]
    var unusable: Set<Int>
    var nextTakeSequence: UInt64
    var indexer: ChunkIndexer
    var report: RecoveryReport
}

enum Recovery {
    /// Runs steps R2–R8 (R1, validating `meta`, is ``RecordingDisk/open(at:box:)``).
    static func run(
        disk: RecordingDisk, opener: any SlotFileOpener, clocks: any Clocks, logger: Logger, maxChunkSpan: Duration
    ) throws(StorageError) -> RecoveredDisk {
        var report = RecoveryReport()
        let meta = disk.meta

        // R2. Open the index; a missing one is created empty (every used slot is then rescanned), a
        // damaged or foreign one is moved aside and rebuilt.
        let db = try openIndex(disk, clocks: clocks, logger: logger, report: &report)
        var rows = try withSQLite("reading slot rows") { try db.read { try SlotRow.fetchAll($0) } }
        if rows.isEmpty { report.indexRebuilt = true }

        // R3. Read and validate every slot header (128 bytes each).
        var headers: [Int: SlotHeader] = [:]
        var unusable: Set<Int> = []
        var maxTake: UInt64 = 0
        for slot in 0..<meta.slotCount {
            let path = disk.slotPath(slot)
            let bytes = try opener.open(path, writable: false).readBytes(SlotHeader.byteCount, at: 0)
            do throws(StorageError) {
                let h = try SlotHeader.decode(bytes)
                guard h.diskUUID == meta.diskUUID, h.slot == slot else {
                    throw StorageError(.corrupt, "slot header of disk \(h.diskUUID) slot \(h.slot)")
                }
                guard h.generation == 0 || h.camera != nil else {
                    throw StorageError(.corrupt, "used slot without camera")
                }
                headers[slot] = h
                maxTake = max(maxTake, h.takeSequence)
            } catch {
                report.notes.append("slot \(slot): header unreadable (\(error.message))")
            }
        }

        // R4. Reconcile each slot's header with its row and decide where its scan starts.
        struct ScanStart {
            var slot: Int
            var header: SlotHeader
            var row: SlotRow
        }
        var scans: [ScanStart] = []
        var staleGenerations: [(slot: Int, below: UInt64)] = []
        var changed: Set<Int> = []
        for slot in 0..<meta.slotCount {
            let row = rows[slot]
            let indexedGeneration = row?.generation ?? 0
            guard let h = headers[slot] else {
                if let row, row.state != .free {
                    // Its rows point at records of a generation the header no longer vouches for;
                    // keep them (verify() will tell) and never write here again.
                    unusable.insert(slot)
                } else {
                    // A take whose header write was torn. Skip past the generation it may have
                    // used, so none of its records can ever pass for a later generation's.
                    rows[slot] = .free(slot, generation: indexedGeneration + 1)
                    changed.insert(slot)
                }
                continue
            }
            if h.generation > indexedGeneration {
                // Taken after the last commit: everything in it is unindexed. Rows of older
                // generations point at superseded bytes and are dropped (no bytes are touched).
                if row != nil { staleGenerations.append((slot, h.generation)) }
                rows[slot] = h.generation == 0 ? .free(slot, generation: 0) : .opened(h)
                changed.insert(slot)
                if h.generation > 0 { scans.append(ScanStart(slot: slot, header: h, row: rows[slot]!)) }
            } else if h.generation == indexedGeneration, let row {
                // Free at the same generation: never taken, or its rows were dropped for a ring reuse
                // (step T2) whose new header never reached the disk. Nothing to index.
                if row.state == .free { continue }
                guard row.camera == h.camera else {
                    unusable.insert(slot)
                    report.notes.append(
                        "slot \(slot): header camera \(h.camera?.rawValue ?? "-") but index says \(row.camera?.rawValue ?? "-")"
                    )
                    continue
                }
                scans.append(ScanStart(slot: slot, header: h, row: row))
            } else if h.generation == 0, row == nil {
                rows[slot] = .free(slot, generation: 0)
                changed.insert(slot)
            } else {
                // The index holds a generation the disk never got: no crash order produces this.
                unusable.insert(slot)
                report.notes.append(
                    "slot \(slot): header generation \(h.generation) is behind the index's \(indexedGeneration)")
            }
        }

        // R5–R6. Scan each slot from its resume point, oldest take first so chunk rows keep write order.
        var indexer = ChunkIndexer(maxSpan: maxChunkSpan)
        for start in scans.sorted(by: { $0.header.takeSequence < $1.header.takeSequence }) {
            guard let camera = start.header.camera else { continue }
            var row = start.row
            let file = try opener.open(disk.slotPath(start.slot), writable: false)
            var scanner = SlotScanner(
                file: file, slotSizeBytes: meta.slotSizeBytes, generation: start.header.generation,
                camera: camera, offset: row.indexedEndOffset, chainCRC: row.tailCRC)
            report.slotsScanned += 1
            var lastInit: (offset: Int64, run: UInt64)? = row.lastInitOffset.flatMap { o in
                row.lastInitRun.map { (o, $0) }
            }
            var orphan = false
            while let rec = try scanner.next() {
                let h = rec.header
                if h.kind == .initSegment {
                    lastInit = (rec.offset, h.run)
                    indexer.endChunk(of: camera)
                    row.lastInitOffset = rec.offset
                    row.lastInitRun = h.run
                } else {
                    guard let li = lastInit, li.run == h.run else {
                        // A fragment with no init record of its run before it in this slot: the
                        // writer never produces this. Stop indexing here and stop writing to the slot,
                        // so what follows stays on the disk untouched.
                        orphan = true
                        report.notes.append(
                            "slot \(start.slot): fragment of run \(h.run) at offset \(rec.offset) has no init record in the slot"
                        )
                        break
                    }
                    indexer.add(
                        IndexableFragment(
                            camera: camera, slot: start.slot, generation: start.header.generation,
                            initOffset: li.offset,
                            offset: rec.offset, recordBytes: rec.recordBytes, meta: h.meta))
                }
                row.indexedEndOffset = rec.offset + rec.recordBytes
                row.tailCRC = h.crc
                report.recordsIndexed += 1
                report.bytesIndexed += rec.recordBytes
            }
            if scanner.stoppedAtTornRecord { report.tornTailSlots.append(start.slot) }
            if orphan && row.state == .open { row.state = .closed }
            if row != start.row || rows[start.slot] != row {
                rows[start.slot] = row
                changed.insert(start.slot)
            }
            logger.debug(
                "scanned slot",
                metadata: ["slot": "\(start.slot)", "camera.id": "\(camera)", "stop": "\(scanner.stopReason ?? "-")"])
        }

        // R7. One open slot per camera: the newest; older ones (a crash right after a rollover) close.
        var newestOpen: [CameraID: Int] = [:]
        for (slot, row) in rows where row.state == .open && !unusable.contains(slot) {
            guard let c = row.camera else { continue }
            if let other = newestOpen[c], rows[other]!.takeSequence > row.takeSequence {
                rows[slot]!.state = .closed
                changed.insert(slot)
            } else {
                if let other = newestOpen[c] {
                    rows[other]!.state = .closed
                    changed.insert(other)
                }
                newestOpen[c] = slot
            }
        }

        // R6 (write). One transaction. R8: nothing on the slots is written, zeroed or deleted.
        let staleList = staleGenerations
        let changedRows = changed.sorted().map { rows[$0]! }
        var flushed = indexer
        let spanMicros = indexer.maxSpanMicros
        try withSQLite("writing recovered index rows") {
            try db.write { db in
                for s in staleList {
                    try db.execute(
                        sql: "DELETE FROM chunk WHERE slot = ? AND generation < ?",
                        arguments: [s.slot, Int64(bitPattern: s.below)])
                }
                for row in changedRows { try row.save(db) }
                try flushed.flush(db)
                // Readers bound their time-range queries by the longest chunk any writer made.
                try db.execute(
                    sql: "UPDATE disk SET maxChunkSpanMicros = MAX(maxChunkSpanMicros, ?) WHERE id = 1",
                    arguments: [spanMicros])
            }
        }
        report.unusableSlots = unusable.sorted()
        report.tornTailSlots.sort()
        for note in report.notes { logger.warning("recovery", metadata: ["disk": "\(disk.path)", "note": "\(note)"]) }
        if report.recordsIndexed > 0 || report.indexRebuilt {
            logger.notice(
                "recovered index",
                metadata: [
                    "disk": "\(disk.path)", "records": "\(report.recordsIndexed)",
                    "bytes": "\(report.bytesIndexed)", "rebuilt": "\(report.indexRebuilt)",
                ])
        }
        return RecoveredDisk(
            db: db, rows: rows, unusable: unusable, nextTakeSequence: maxTake + 1, indexer: flushed, report: report)
    }

    /// Opens `index.sqlite`, moving a damaged or foreign one aside (renamed, never deleted).
    static func openIndex(_ disk: RecordingDisk, clocks: any Clocks, logger: Logger, report: inout RecoveryReport)
        throws(StorageError) -> DatabaseQueue
    {
        let path = disk.indexPath
        let uuid = disk.meta.diskUUID.uuidString
        for attempt in 0..<2 {
            var problem: String?
            do {
                let q = try IndexSchema.openForWriting(path)
                let owner = try q.write { db -> String in
                    if let existing = try String.fetchOne(db, sql: "SELECT diskUUID FROM disk WHERE id = 1") {
                        return existing
                    }
                    try db.execute(
                        sql: "INSERT INTO disk (id, diskUUID, formatVersion, maxChunkSpanMicros) VALUES (1, ?, ?, 0)",
                        arguments: [uuid, DiskMeta.currentFormatVersion])
                    return uuid
                }
                if owner == uuid { return q }
                problem = "index belongs to disk \(owner)"
            } catch {
                guard StorageError.isDamagedIndex(error), attempt == 0 else {
                    throw StorageError.sqlite(error, "opening \(path)")
                }
                problem = "index is damaged (\(error))"
            }
            guard attempt == 0, let problem else { break }
            let aside = path + ".moved-\(clocks.utcNow().micros)"
            logger.error(
                "moving index aside", metadata: ["disk": "\(disk.path)", "reason": "\(problem)", "to": "\(aside)"])
            try FileOps.rename(path, aside)
            for suffix in ["-wal", "-shm"] where FileOps.exists(path + suffix) {
                try FileOps.rename(path + suffix, aside + suffix)
            }
            report.movedAsideIndex = aside
            report.notes.append(problem)
        }
        throw StorageError(.index, "cannot open \(path)")
    }
}
