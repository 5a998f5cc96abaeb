import Foundation
import GRDB
import HallwatchConfig
import HallwatchCore
import Logging

/// Schema version 2 of `index.sqlite`: evidence holds and the pruner's deletion tables
/// (<doc:OnDiskFormat>, <doc:WriteProtocol> § Delete).
enum RetentionSchema {
    static func createV2(_ db: Database) throws {
        try db.execute(
            sql: """
                CREATE TABLE evidenceHold (
                    id TEXT PRIMARY KEY,
                    camera TEXT NOT NULL,
                    fromUTCMicros INTEGER NOT NULL,
                    toUTCMicros INTEGER NOT NULL,
                    reason TEXT NOT NULL,
                    caseID TEXT NOT NULL,
                    untilUTCMicros INTEGER,
                    createdAtUTCMicros INTEGER NOT NULL,
                    releasedAtUTCMicros INTEGER
                );
                CREATE INDEX evidenceHold_camera ON evidenceHold (camera);
                CREATE TABLE pendingDelete (
                    slot INTEGER PRIMARY KEY,
                    generation INTEGER NOT NULL,
                    camera TEXT NOT NULL,
                    fromUTCMicros INTEGER NOT NULL,
                    toUTCMicros INTEGER NOT NULL,
                    bytes INTEGER NOT NULL,
                    rule TEXT NOT NULL,
                    detail TEXT NOT NULL,
                    step TEXT NOT NULL CHECK (step IN ('marked', 'freed')),
                    deletionID INTEGER
                );
                CREATE TABLE deletion (
                    id INTEGER PRIMARY KEY,
                    slot INTEGER NOT NULL,
                    generation INTEGER NOT NULL,
                    camera TEXT NOT NULL,
                    fromUTCMicros INTEGER NOT NULL,
                    toUTCMicros INTEGER NOT NULL,
                    bytes INTEGER NOT NULL,
                    rule TEXT NOT NULL,
                    detail TEXT NOT NULL,
                    deletedAtUTCMicros INTEGER NOT NULL
                );
                """)
    }

    /// SQL condition: hold `h` is active at the bound `:now`.
    static let active = "h.releasedAtUTCMicros IS NULL AND (h.untilUTCMicros IS NULL OR h.untilUTCMicros > :now)"

    /// Slots that active holds pin (<doc:WriteProtocol> § Evidence holds): every slot with a chunk of
    /// the held camera overlapping the held range, and the camera's open slot while the range reaches
    /// past what that slot has indexed (the video still being recorded; once the camera rolls over,
    /// the next open slot is pinned the same way).
    static let pinnedSlots = """
        SELECT c.slot FROM chunk c JOIN evidenceHold h ON h.camera = c.camera
         WHERE \(active) AND c.startUTCMicros < h.toUTCMicros AND c.endUTCMicros > h.fromUTCMicros
        UNION
        SELECT s.slot FROM slot s JOIN evidenceHold h ON h.camera = s.camera
         WHERE s.state = 'open' AND \(active)
           AND h.toUTCMicros > COALESCE((SELECT MAX(endUTCMicros) FROM chunk WHERE slot = s.slot AND generation = s.generation), :now)
        """

    /// Whether an active hold covers any chunk of `slot` at `generation` (the authoritative check of
    /// steps D1, D2 and T2; the `hold` column is its cached form).
    static func isCoveredByActiveHold(_ db: Database, slot: Int, generation: UInt64, now: UTCMicros) throws -> Bool {
        guard try db.tableExists("evidenceHold") else { return false }
        return try Bool.fetchOne(
            db,
            sql: """
                SELECT EXISTS (SELECT 1 FROM chunk c JOIN evidenceHold h ON h.camera = c.camera
                 WHERE c.slot = :slot AND c.generation = :generation AND \(active)
                   AND c.startUTCMicros < h.toUTCMicros AND c.endUTCMicros > h.fromUTCMicros)
                """, arguments: ["slot": slot, "generation": Int64(bitPattern: generation), "now": now.micros]) ?? false
    }

    /// Sets `hold` to 1 on exactly the pinned slots and 0 elsewhere; returns the number pinned.
    @discardableResult
    static func repin(_ db: Database, now: UTCMicros) throws -> Int {
        try db.execute(sql: "UPDATE slot SET hold = (slot IN (\(pinnedSlots)))", arguments: ["now": now.micros])
        return try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM slot WHERE hold != 0") ?? 0
    }
}

/// A recording disk by name (`disk0`) and directory, as the configuration lists it.
public struct NamedDisk: Sendable, Equatable {
    /// Name used in bus topics and audit records.
    public var name: String
    /// The disk's directory.
    public var path: String
    /// A disk from its name and directory.
    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }
}

extension NamedDisk {
    /// The recording disks of `config` (`recorder.disks`), by name, in configuration order.
    public static func all(of config: HallwatchConfig) -> [NamedDisk] {
        config.recorder.disks.map { NamedDisk(name: $0.name, path: $0.path) }
    }
}

/// One used slot as the pruner sees it (a row of ``DiskUse/slots``).
public struct SlotUse: Sendable, Equatable {
    /// Disk name.
    public var disk: String
    /// Slot number.
    public var slot: Int
    /// The slot row's generation (the deletion checks it is unchanged).
    public var generation: UInt64
    /// Whose video it holds.
    public var camera: CameraID
    /// The camera is writing it: never deleted.
    public var isOpen: Bool
    /// The `hold` column (an evidence hold pins it).
    public var held: Bool
    /// Disk-wide take order (smaller = taken earlier).
    public var takeSequence: UInt64
    /// Start of its indexed video, UTC µs; `nil` when it has none.
    public var from: UTCMicros?
    /// End of its indexed video, UTC µs; `nil` when it has none.
    public var to: UTCMicros?
    /// Bytes written to it (headers, init copies, fragments).
    public var bytes: Int64
    /// A slot's use from its fields.
    public init(
        disk: String, slot: Int, generation: UInt64, camera: CameraID, isOpen: Bool, held: Bool, takeSequence: UInt64,
        from: UTCMicros?, to: UTCMicros?, bytes: Int64
    ) {
        self.disk = disk
        self.slot = slot
        self.generation = generation
        self.camera = camera
        self.isOpen = isOpen
        self.held = held
        self.takeSequence = takeSequence
        self.from = from
        self.to = to
        self.bytes = bytes
    }
}

/// A disk's slots as the pruner sees them at the start of a pass.
public struct DiskUse: Sendable, Equatable {
    /// Disk name.
    public var name: String
    /// Slots on the disk (`meta`).
    public var slotCount: Int
    /// Size of each slot file, bytes.
    public var slotSizeBytes: Int64
    /// Slots whose row is free (or missing).
    public var freeSlots: Int
    /// Used slots (open and closed).
    public var slots: [SlotUse]
    /// A disk's use from its fields.
    public init(name: String, slotCount: Int, slotSizeBytes: Int64, freeSlots: Int, slots: [SlotUse]) {
        self.name = name
        self.slotCount = slotCount
        self.slotSizeBytes = slotSizeBytes
        self.freeSlots = freeSlots
        self.slots = slots
    }
}

/// The steps of the deletion procedure (<doc:WriteProtocol> § Delete).
public enum DeleteStep: String, Sendable, CaseIterable, Codable {
    /// Mark: the slot and what it holds are recorded in `pendingDelete`.
    case d1 = "D1"
    /// Free: chunk rows dropped, slot row freed, `deletion` row added, in one durable transaction.
    case d2 = "D2"
    /// Log: the audit line is appended to `deletions.log` and `fdatasync`ed.
    case d3 = "D3"
    /// Publish and forget: the deletion is announced and its `pendingDelete` row removed.
    case d4 = "D4"
}

/// A slot the planner decided to delete, and why.
public struct PlannedDeletion: Sendable, Equatable, Codable {
    /// Disk name.
    public var disk: String
    /// Slot number.
    public var slot: Int
    /// The generation planned for deletion (a slot reused since is left alone).
    public var generation: UInt64
    /// Whose video it is.
    public var camera: CameraID
    /// Start of its video, UTC µs (equal to ``to`` when it has none).
    public var from: UTCMicros
    /// End of its video, UTC µs.
    public var to: UTCMicros
    /// Bytes written to the slot.
    public var bytes: Int64
    /// `maxAge`, `maxBytes`, `reserve` or `empty`.
    public var rule: String
    /// The rule's numbers in words.
    public var detail: String
    /// A planned deletion from its fields.
    public init(
        disk: String, slot: Int, generation: UInt64, camera: CameraID, from: UTCMicros, to: UTCMicros, bytes: Int64,
        rule: String, detail: String
    ) {
        self.disk = disk
        self.slot = slot
        self.generation = generation
        self.camera = camera
        self.from = from
        self.to = to
        self.bytes = bytes
        self.rule = rule
        self.detail = detail
    }

    /// One line for people: `disk0 slot 12 lobby 2026-11-20T08:00:00.000Z – 2026-11-20T08:02:11.000Z 67108864 bytes: maxAge (older than 7d)`.
    public var summary: String {
        "\(disk) slot \(slot) \(camera) \(from.iso8601) – \(to.iso8601) \(bytes) bytes: \(rule) (\(detail))"
    }
}

/// Called after each completed deletion step (tests stop the process there to crash it).
public typealias DeleteStepHook = @Sendable (DeleteStep, Int) -> Void

/// A disk's index opened by the pruner or `hallwatchctl hold`: evidence holds, the pruner's view of
/// the slots, and the deletion procedure D1–D4. The writer (``DiskWriter``) may run at the same time
/// in another process: every change here is one short SQLite transaction (<doc:WriteProtocol> § Other
/// processes writing the index).
public final class RetentionIndex: Sendable {
    /// The disk's name.
    public let name: String
    /// The disk.
    public let disk: RecordingDisk
    let db: DatabaseQueue
    let logger: Logger

    /// Name of the append-only audit log in the disk's directory.
    public static let auditLogName = "deletions.log"
    /// Name of the holds mirror in the disk's directory (restores holds if the index is rebuilt).
    public static let holdsMirrorName = "holds.json"

    /// Opens the index of `disk` for writing, migrating it to schema v2 if needed.
    /// - Throws: as ``RecordingDisk/open(at:box:)``; ``StorageError/Code/noIndex`` when the recorder has
    ///   not built an index yet (this never creates one); ``StorageError/Code/index``.
    public init(_ disk: NamedDisk, box: String?, logger: Logger) throws(StorageError) {
        let d = try RecordingDisk.open(at: disk.path, box: box)
        guard FileOps.exists(d.indexPath) else {
            throw StorageError(.noIndex, "\(disk.path) has no index.sqlite yet (the recorder builds it)")
        }
        self.name = disk.name
        self.disk = d
        self.db = try withSQLite("opening \(disk.path)/index.sqlite") { try IndexSchema.openForWriting(d.indexPath) }
        var l = logger
        l[metadataKey: "disk"] = "\(disk.name)"
        self.logger = l
    }

    /// Closes the connection.
    public func close() { try? db.close() }

    // MARK: - Holds

    /// Every hold in this index (released and lapsed ones too), oldest first.
    public func holds() throws(StorageError) -> [EvidenceHold] {
        try withSQLite("reading holds") { try db.read { try Self.holds($0) } }
    }

    static func holds(_ db: Database) throws -> [EvidenceHold] {
        try Row.fetchAll(db, sql: "SELECT * FROM evidenceHold ORDER BY createdAtUTCMicros, id").compactMap { r in
            guard let camera = CameraID(r["camera"] as String) else { return nil }
            let until: Int64? = r["untilUTCMicros"]
            let released: Int64? = r["releasedAtUTCMicros"]
            return EvidenceHold(
                id: r["id"], camera: camera, from: UTCMicros(r["fromUTCMicros"]), to: UTCMicros(r["toUTCMicros"]),
                reason: r["reason"], caseID: r["caseID"], until: until.map(UTCMicros.init),
                createdAt: UTCMicros(r["createdAtUTCMicros"]), releasedAt: released.map(UTCMicros.init))
        }
    }

    static func save(_ h: EvidenceHold, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO evidenceHold (id, camera, fromUTCMicros, toUTCMicros, reason, caseID, untilUTCMicros, createdAtUTCMicros, releasedAtUTCMicros)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET releasedAtUTCMicros = COALESCE(evidenceHold.releasedAtUTCMicros, excluded.releasedAtUTCMicros)
                """,
            arguments: [
                h.id, h.camera.rawValue, h.from.micros, h.to.micros, h.reason, h.caseID, h.until?.micros,
                h.createdAt.micros, h.releasedAt?.micros,
            ])
    }

    /// What placing a hold does to this disk.
    public struct HoldImpact: Sendable, Equatable {
        /// Slots pinned with the hold (by it and by other holds).
        public var pinnedSlots: Int
        /// Slots the hold itself pins (its chunks and, while recording, the camera's open slot).
        public var slotsOfHold: Int
        /// Slots on the disk.
        public var slotCount: Int
        /// Slots the camera will still fill before the hold's range ends, at its measured rate on this disk
        /// (the range's part after `now`; 0 for a range in the past): they will be pinned as they are taken.
        public var projectedSlots: Int = 0
        /// ``pinnedSlots`` as a percentage of ``slotCount``.
        public var percent: Double { slotCount == 0 ? 0 : Double(pinnedSlots) * 100 / Double(slotCount) }
        /// ``pinnedSlots`` plus ``projectedSlots`` as a percentage of ``slotCount``: what H2 checks.
        public var projectedPercent: Double {
            slotCount == 0 ? 0 : Double(pinnedSlots + projectedSlots) * 100 / Double(slotCount)
        }
    }

    /// Slots `camera` fills on this disk in `seconds` at its rate over its last hour of recording here
    /// (bytes of its chunks over their media time), rounded up; 0 when it has not recorded here.
    static func projectedSlots(_ db: Database, camera: CameraID, seconds: Double, slotSizeBytes: Int64, now: UTCMicros)
        throws -> Int
    {
        guard seconds > 0, slotSizeBytes > 0 else { return 0 }
        let row = try Row.fetchOne(
            db,
            sql: """
                SELECT SUM(endOffset - firstOffset) AS bytes, SUM(duration90k) AS ticks FROM chunk
                 WHERE camera = ? AND endUTCMicros > ?
                """, arguments: [camera.rawValue, now.micros - 3_600_000_000])
        let bytes: Int64 = row?["bytes"] ?? 0
        let ticks: Int64 = row?["ticks"] ?? 0
        guard bytes > 0, ticks > 0 else { return 0 }
        let bytesPerSecond = Double(bytes) / (Double(ticks) / 90_000)
        return Int((seconds * bytesPerSecond / Double(slotSizeBytes)).rounded(.up))
    }

    /// Inserts (or, when `commit` is false, only tries) `hold` and re-pins the slots, in one
    /// transaction that is rolled back when `commit` is false or the share would exceed
    /// `maxHoldPercent`.
    /// - Throws: ``StorageError/Code/invalidArgument`` when the hold would pin more than
    ///   `maxHoldPercent` of the disk's slots; ``StorageError/Code/index``.
    public func addHold(_ hold: EvidenceHold, maxHoldPercent: Int, now: UTCMicros, commit: Bool) throws(StorageError)
        -> HoldImpact
    {
        let slotCount = disk.meta.slotCount
        let impact: HoldImpact = try withSQLite("placing hold \(hold.id)") {
            var result = HoldImpact(pinnedSlots: 0, slotsOfHold: 0, slotCount: slotCount)
            try db.inTransaction { db in
                // H1. Insert and re-pin in one transaction; H2 decides below whether it commits.
                try Self.save(hold, db)
                result.pinnedSlots = try RetentionSchema.repin(db, now: now)
                // H2 counts the slots a range reaching past `now` will still pin (one at a time, as the
                // camera takes them): checking only what is pinned now let such holds fill the disk later.
                let futureSeconds = Double(hold.to.micros - max(hold.from.micros, now.micros)) / 1e6
                result.projectedSlots = try Self.projectedSlots(
                    db, camera: hold.camera, seconds: futureSeconds, slotSizeBytes: disk.meta.slotSizeBytes, now: now)
                result.slotsOfHold =
                    try Int.fetchOne(
                        db,
                        sql: """
                            SELECT COUNT(*) FROM (\(RetentionSchema.pinnedSlots.replacingOccurrences(of: "JOIN evidenceHold h ON", with: "JOIN (SELECT * FROM evidenceHold WHERE id = :id) h ON")))
                            """, arguments: ["now": now.micros, "id": hold.id]) ?? 0
                let over = result.projectedPercent > Double(maxHoldPercent)
                return commit && !over ? .commit : .rollback
            }
            return result
        }
        // H2. Too large a share: rolled back above, refused here with the numbers.
        if impact.projectedPercent > Double(maxHoldPercent) {
            let future =
                impact.projectedSlots > 0
                ? String(
                    format: " and about %d more as %@ records until the range ends", impact.projectedSlots,
                    hold.camera.rawValue)
                : ""
            throw StorageError(
                .invalidArgument,
                String(
                    format:
                        "hold refused: on %@ it would pin %d of %d slots%@ (%.0f %%), more than retention.maxHoldPercent (%d %%); narrow the time range or release other holds",
                    name, impact.pinnedSlots, slotCount, future, impact.projectedPercent, maxHoldPercent))
        }
        if commit { try writeHoldsMirror() }
        return impact
    }

    /// Marks hold `id` released at `now` and re-pins; returns whether this index knew the hold.
    public func releaseHold(_ id: String, now: UTCMicros) throws(StorageError) -> Bool {
        // H5. Released holds stay in the table for the record; they no longer pin.
        let known = try withSQLite("releasing hold \(id)") {
            try db.write { db -> Bool in
                try db.execute(
                    sql: "UPDATE evidenceHold SET releasedAtUTCMicros = COALESCE(releasedAtUTCMicros, ?) WHERE id = ?",
                    arguments: [now.micros, id])
                let n = db.changesCount
                try RetentionSchema.repin(db, now: now)
                return n > 0
            }
        }
        if known { try writeHoldsMirror() }
        return known
    }

    /// Makes this index hold every hold in `holds` (adding missing ones, recording releases), then
    /// re-pins the slots for `now` (lapsed holds stop pinning). Returns the number of pinned slots.
    public func syncHolds(_ holds: [EvidenceHold], now: UTCMicros) throws(StorageError) -> Int {
        // H3. The union of every disk's holds, then re-pin for `now` (the next open slot, lapses).
        let before = try self.holds()
        let pinned = try withSQLite("syncing holds") {
            try db.write { db -> Int in
                for h in holds { try Self.save(h, db) }
                return try RetentionSchema.repin(db, now: now)
            }
        }
        if try self.holds() != before || !FileOps.exists(disk.path + "/" + Self.holdsMirrorName) {
            try writeHoldsMirror()
        }
        return pinned
    }

    /// The holds in `holds.json` beside the index (empty when missing or unreadable).
    public func mirroredHolds() -> [EvidenceHold] {
        guard let bytes = try? FileOps.readFile(disk.path + "/" + Self.holdsMirrorName),
            let list = try? BusCoding.decode(EvidenceHoldList.self, from: bytes)
        else { return [] }
        return list.holds
    }

    /// Rewrites `holds.json` atomically (temporary file, `fsync`, rename, `fsync` of the directory).
    func writeHoldsMirror() throws(StorageError) {
        let holds = try self.holds()
        let bytes = try narrow {
            try BusCoding.encode(EvidenceHoldList(holds: holds, at: holds.map(\.createdAt).max() ?? UTCMicros(0)))
        }
        let path = disk.path + "/" + Self.holdsMirrorName
        try FileOps.writeFileDurably(path + ".tmp", bytes)
        try FileOps.rename(path + ".tmp", path)
        try FileOps.syncDirectory(disk.path)
    }

    // MARK: - The pruner's view

    /// The disk's used slots and free count, in one read transaction.
    public func use() throws(StorageError) -> DiskUse {
        let name = self.name
        let meta = disk.meta
        return try withSQLite("reading slot use") {
            try db.read { db in
                var slots: [SlotUse] = []
                for r in try Row.fetchAll(
                    db,
                    sql: """
                        SELECT s.slot, s.generation, s.camera, s.state, s.takeSequence, s.hold, s.indexedEndOffset,
                               MIN(c.startUTCMicros) AS f, MAX(c.endUTCMicros) AS t
                        FROM slot s LEFT JOIN chunk c ON c.slot = s.slot AND c.generation = s.generation
                        WHERE s.state != 'free' GROUP BY s.slot ORDER BY s.slot
                        """)
                {
                    guard let text: String = r["camera"], let camera = CameraID(text) else { continue }
                    let f: Int64? = r["f"]
                    let t: Int64? = r["t"]
                    slots.append(
                        SlotUse(
                            disk: name, slot: r["slot"], generation: UInt64(bitPattern: r["generation"]),
                            camera: camera,
                            isOpen: (r["state"] as String) == "open", held: (r["hold"] as Int64) != 0,
                            takeSequence: UInt64(bitPattern: r["takeSequence"]), from: f.map(UTCMicros.init),
                            to: t.map(UTCMicros.init),
                            bytes: max(0, (r["indexedEndOffset"] as Int64) - Int64(SlotHeader.byteCount))))
                }
                let rows =
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM slot WHERE slot < ?", arguments: [meta.slotCount])
                    ?? 0
                let free =
                    try Int.fetchOne(
                        db, sql: "SELECT COUNT(*) FROM slot WHERE state = 'free' AND slot < ?",
                        arguments: [meta.slotCount]) ?? 0
                return DiskUse(
                    name: name, slotCount: meta.slotCount, slotSizeBytes: meta.slotSizeBytes,
                    freeSlots: free + (meta.slotCount - rows), slots: slots)
            }
        }
    }

    /// The last `limit` deletions recorded in the `deletion` table, newest last.
    public func deletions(limit: Int = 1000) throws(StorageError) -> [DeletionRecord] {
        let name = self.name
        return try withSQLite("reading deletions") {
            try db.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT * FROM (SELECT * FROM deletion ORDER BY id DESC LIMIT ?) ORDER BY id",
                    arguments: [limit]
                ).compactMap {
                    Self.record($0, disk: name)
                }
            }
        }
    }

    static func record(_ r: Row, disk: String) -> DeletionRecord? {
        guard let camera = CameraID(r["camera"] as String) else { return nil }
        return DeletionRecord(
            id: r["id"], disk: disk, slot: r["slot"], generation: UInt64(bitPattern: r["generation"]), camera: camera,
            from: UTCMicros(r["fromUTCMicros"]), to: UTCMicros(r["toUTCMicros"]), bytes: r["bytes"], rule: r["rule"],
            detail: r["detail"], deletedAt: UTCMicros(r["deletedAtUTCMicros"]))
    }

    // MARK: - Delete (steps D1–D4)

    /// What became of one planned deletion.
    public enum DeleteOutcome: Sendable, Equatable {
        /// Freed and logged.
        case deleted(DeletionRecord)
        /// Not deleted: the slot changed since the plan (reused, reopened, held); the reason.
        case skipped(String)
    }

    /// Runs the whole procedure for one slot: D1 (mark), then ``complete(slot:now:publish:afterStep:)``.
    /// - Parameters:
    ///   - p: The planned deletion; the slot must still be closed at `p.generation`, unheld.
    ///   - now: Box UTC (the audit time, and which holds are active).
    ///   - publish: Step D4's announcement (the bus); called at least once per deletion.
    ///   - afterStep: Called after each step with the slot number (crash tests stop there).
    /// - Throws: ``StorageError/Code/index`` (SQLite), ``StorageError/Code/io`` (the audit log).
    public func delete(
        _ p: PlannedDeletion, now: UTCMicros, publish: (DeletionRecord) -> Void = { _ in },
        afterStep: DeleteStepHook? = nil
    ) throws(StorageError) -> DeleteOutcome {
        try delete(p, now: now, publish: publish, afterStep: afterStep, stopAfter: nil)
    }

    /// Test hook: the steps of ``delete(_:now:publish:afterStep:)`` up to and including `stop` only,
    /// as a process killed right after that step leaves them.
    func stepForTesting(_ p: PlannedDeletion, through stop: DeleteStep, now: UTCMicros) throws(StorageError) {
        _ = try delete(p, now: now, publish: { _ in }, afterStep: nil, stopAfter: stop)
    }

    func delete(
        _ p: PlannedDeletion, now: UTCMicros, publish: (DeletionRecord) -> Void, afterStep: DeleteStepHook?,
        stopAfter: DeleteStep?
    ) throws(StorageError) -> DeleteOutcome {
        // D1. Mark, after checking in the same transaction that the slot is still what the plan saw:
        // closed (never the open slot), same generation and camera, and not held.
        let refusal: String? = try withSQLite("marking slot \(p.slot)") {
            try db.write { db -> String? in
                if let why = try Self.refusal(db, slot: p.slot, generation: p.generation, camera: p.camera, now: now) {
                    return why
                }
                try db.execute(
                    sql: """
                        INSERT OR REPLACE INTO pendingDelete (slot, generation, camera, fromUTCMicros, toUTCMicros, bytes, rule, detail, step, deletionID)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'marked', NULL)
                        """,
                    arguments: [
                        p.slot, Int64(bitPattern: p.generation), p.camera.rawValue, p.from.micros, p.to.micros, p.bytes,
                        p.rule, p.detail,
                    ])
                return nil
            }
        }
        if let refusal { return .skipped(refusal) }
        afterStep?(.d1, p.slot)
        if stopAfter == .d1 { return .skipped("stopped after D1") }
        return try complete(slot: p.slot, now: now, publish: publish, afterStep: afterStep, stopAfter: stopAfter)
            ?? .skipped("the pending deletion vanished")
    }

    /// Why slot `n` must not be freed now, or `nil` when it may be.
    static func refusal(_ db: Database, slot n: Int, generation: UInt64, camera: CameraID, now: UTCMicros) throws
        -> String?
    {
        guard
            let r = try Row.fetchOne(
                db, sql: "SELECT state, generation, camera, hold FROM slot WHERE slot = ?", arguments: [n])
        else {
            return "slot \(n) has no row"
        }
        let state: String = r["state"]
        let g = UInt64(bitPattern: r["generation"] as Int64)
        let c: String? = r["camera"]
        let hold: Int64 = r["hold"]
        if g != generation || c != camera.rawValue {
            return "slot \(n) was reused since the plan (now generation \(g))"
        }
        if state != "closed" { return "slot \(n) is \(state), not closed" }
        // H4. The hold table itself, not only the `hold` flag the last re-pin left.
        let covered = try RetentionSchema.isCoveredByActiveHold(db, slot: n, generation: generation, now: now)
        if hold != 0 || covered {
            return "slot \(n) is pinned by an evidence hold"
        }
        return nil
    }

    /// Completes a marked deletion of `slot` from wherever it stopped (D2–D4). Returns `nil` when no
    /// deletion of that slot is pending.
    public func complete(
        slot n: Int, now: UTCMicros, publish: (DeletionRecord) -> Void = { _ in },
        afterStep: DeleteStepHook? = nil
    ) throws(StorageError) -> DeleteOutcome? {
        try complete(slot: n, now: now, publish: publish, afterStep: afterStep, stopAfter: nil)
    }

    func complete(
        slot n: Int, now: UTCMicros, publish: (DeletionRecord) -> Void, afterStep: DeleteStepHook?,
        stopAfter: DeleteStep?
    ) throws(StorageError) -> DeleteOutcome? {
        let name = self.name
        guard
            let pending = try withSQLite(
                "reading pendingDelete",
                {
                    try db.read {
                        try Row.fetchOne($0, sql: "SELECT * FROM pendingDelete WHERE slot = ?", arguments: [n])
                    }
                })
        else {
            return nil
        }
        var step: String = pending["step"]
        var deletionID: Int64? = pending["deletionID"]
        if step == "marked" {
            // D2. Free, in one transaction (synchronous = FULL: durable when it returns): check again
            // (the writer may have reused the slot by ring reuse, a hold may have been placed), drop
            // the chunk rows of that generation, free the row (generation unchanged, so recovery sees
            // "equal, row free"), record the deletion. The slot's bytes are not touched.
            let refusal: String? = try withSQLite("freeing slot \(n)") {
                try db.write { db -> String? in
                    let generation = UInt64(bitPattern: pending["generation"] as Int64)
                    guard let camera = CameraID(pending["camera"] as String) else {
                        return "pendingDelete row with an invalid camera"
                    }
                    if let why = try Self.refusal(db, slot: n, generation: generation, camera: camera, now: now) {
                        try db.execute(sql: "DELETE FROM pendingDelete WHERE slot = ?", arguments: [n])
                        return why
                    }
                    try db.execute(
                        sql: "DELETE FROM chunk WHERE slot = ? AND generation = ?",
                        arguments: [n, Int64(bitPattern: generation)])
                    try db.execute(
                        sql: """
                            UPDATE slot SET state = 'free', camera = NULL, indexedEndOffset = ?, tailCRC = 0, lastInitOffset = NULL, lastInitRun = NULL
                            WHERE slot = ? AND generation = ?
                            """, arguments: [SlotHeader.byteCount, n, Int64(bitPattern: generation)])
                    try db.execute(
                        sql: """
                            INSERT INTO deletion (slot, generation, camera, fromUTCMicros, toUTCMicros, bytes, rule, detail, deletedAtUTCMicros)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                            """,
                        arguments: [
                            n, pending["generation"] as Int64, pending["camera"] as String,
                            pending["fromUTCMicros"] as Int64,
                            pending["toUTCMicros"] as Int64, pending["bytes"] as Int64, pending["rule"] as String,
                            pending["detail"] as String, now.micros,
                        ])
                    let id = db.lastInsertedRowID
                    try db.execute(
                        sql: "UPDATE pendingDelete SET step = 'freed', deletionID = ? WHERE slot = ?",
                        arguments: [id, n])
                    deletionID = id
                    return nil
                }
            }
            if let refusal {
                logger.info("deletion cancelled", metadata: ["slot": "\(n)", "why": "\(refusal)"])
                return .skipped(refusal)
            }
            step = "freed"
            afterStep?(.d2, n)
            if stopAfter == .d2 { return .skipped("stopped after D2") }
        }
        guard let id = deletionID,
            let record = try withSQLite(
                "reading deletion",
                {
                    try db.read { db in
                        try Row.fetchOne(db, sql: "SELECT * FROM deletion WHERE id = ?", arguments: [id]).flatMap {
                            Self.record($0, disk: name)
                        }
                    }
                })
        else {
            try withSQLite("dropping a dangling pendingDelete") {
                try db.write { try $0.execute(sql: "DELETE FROM pendingDelete WHERE slot = ?", arguments: [n]) }
            }
            return .skipped("pendingDelete of slot \(n) names no deletion row")
        }
        if step == "freed" {
            // D3. Append the audit line, fdatasync. Idempotent without a commit of its own: a crash
            // after the append leaves the line last in the file, and the retry finds it there.
            try AuditLog(path: disk.path + "/" + Self.auditLogName).appendOnce(record)
            afterStep?(.d3, n)
            if stopAfter == .d3 { return .skipped("stopped after D3") }
        }
        // D4. Announce (at least once: a crash before the row is gone announces again), then forget.
        publish(record)
        try withSQLite("forgetting pendingDelete") {
            try db.write { try $0.execute(sql: "DELETE FROM pendingDelete WHERE slot = ?", arguments: [n]) }
        }
        afterStep?(.d4, n)
        logger.notice(
            "deleted",
            metadata: [
                "slot": "\(n)", "camera.id": "\(record.camera)", "rule": "\(record.rule)",
                "from": "\(record.from)", "to": "\(record.to)", "bytes": "\(record.bytes)",
            ])
        return .deleted(record)
    }

    /// Slots with a deletion left unfinished by a crash (steps D1–D3 done, D4 not), in slot order.
    public func pendingSlots() throws(StorageError) -> [Int] {
        try withSQLite("reading pendingDelete") {
            try db.read { try Int.fetchAll($0, sql: "SELECT slot FROM pendingDelete ORDER BY slot") }
        }
    }
}

/// The disk's append-only audit log of deletions: one JSON ``DeletionRecord`` per line.
struct AuditLog {
    let path: String

    /// Appends `record` unless its line is already among the last ones (a crash between the append
    /// and the step after it), then `fdatasync`s; a new file's directory entry is `fsync`ed too.
    func appendOnce(_ record: DeletionRecord) throws(StorageError) {
        let line = (try narrow { try BusCoding.encode(record) }) + [0x0A]
        let created = !FileOps.exists(path)
        if !created, try tail(64 << 10).contains(where: { $0 == record }) { return }
        let fd = retryingEINTR { Foundation.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640) }
        guard fd >= 0 else { throw .io("open", path: path) }
        defer { _ = Foundation.close(fd) }
        let written = line.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        guard written == line.count else { throw .io("write", path: path) }
        guard retryingEINTR({ fdatasync(fd) }) == 0 else { throw .io("fdatasync", path: path) }
        if created { try FileOps.syncDirectory((path as NSString).deletingLastPathComponent) }
    }

    /// The whole records among the last `bytes` bytes of the file.
    func tail(_ bytes: Int) throws(StorageError) -> [DeletionRecord] {
        let size = FileOps.fileSize(path) ?? 0
        guard size > 0 else { return [] }
        let f = try PosixSlotFileOpener().open(path, writable: false)
        let start = max(0, size - Int64(bytes))
        let data = try f.readBytes(Int(size - start), at: start)
        return data.split(separator: 0x0A).compactMap { try? BusCoding.decode(DeletionRecord.self, from: Array($0)) }
    }

    /// Every record in the file (for tests and `hallwatchctl`).
    func all() throws(StorageError) -> [DeletionRecord] { try tail(Int.max / 2) }
}
