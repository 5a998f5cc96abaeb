import Foundation
import GRDB
import HallwatchCore

/// The per-disk index, `index.sqlite` (SQLite, WAL, `synchronous=FULL`): a cache of what the slots
/// hold, rebuilt from them whenever it is missing or damaged. Schema in <doc:OnDiskFormat>.
enum IndexSchema {
    /// Schema version 1. Later versions add migrations; never edit this one.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE disk (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        diskUUID TEXT NOT NULL,
                        formatVersion INTEGER NOT NULL,
                        maxChunkSpanMicros INTEGER NOT NULL
                    );
                    CREATE TABLE slot (
                        slot INTEGER PRIMARY KEY,
                        generation INTEGER NOT NULL,
                        camera TEXT,
                        state TEXT NOT NULL CHECK (state IN ('free', 'open', 'closed')),
                        takeSequence INTEGER NOT NULL,
                        indexedEndOffset INTEGER NOT NULL,
                        tailCRC INTEGER NOT NULL,
                        lastInitOffset INTEGER,
                        lastInitRun INTEGER,
                        hold INTEGER NOT NULL DEFAULT 0
                    );
                    CREATE TABLE chunk (
                        id INTEGER PRIMARY KEY,
                        camera TEXT NOT NULL,
                        run INTEGER NOT NULL,
                        slot INTEGER NOT NULL,
                        generation INTEGER NOT NULL,
                        initOffset INTEGER NOT NULL,
                        firstOffset INTEGER NOT NULL,
                        endOffset INTEGER NOT NULL,
                        start90k INTEGER NOT NULL,
                        end90k INTEGER NOT NULL,
                        duration90k INTEGER NOT NULL,
                        startUTCMicros INTEGER NOT NULL,
                        endUTCMicros INTEGER NOT NULL,
                        fragmentCount INTEGER NOT NULL,
                        fragments BLOB NOT NULL
                    );
                    CREATE INDEX chunk_camera_start ON chunk (camera, startUTCMicros);
                    CREATE INDEX chunk_slot ON chunk (slot);
                    """)
        }
        // v2: evidence holds and the pruner's deletion procedure (<doc:WriteProtocol>, steps D1–D4).
        m.registerMigration("v2") { db in try RetentionSchema.createV2(db) }
        return m
    }

    /// Opens (creating and migrating) the index for writing. WAL so readers in other processes run
    /// beside the writer; `synchronous=FULL` so a returned commit is durable (protocol step C4).
    static func openForWriting(_ path: String) throws -> DatabaseQueue {
        var config = Configuration()
        config.journalMode = .wal
        config.busyMode = .timeout(10)
        config.label = "hallwatch.storage.index"
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        // Two processes can open one new index at once: the recorder creating it, and the pruner opening it for
        // retention on its first pass. Switching the new file to WAL is refused at once while the other holds it
        // (`SQLITE_BUSY`: no busy wait for a journal-mode change), and GRDB's migrator reads which migrations are
        // applied before it takes the write lock, so the one that waited fails ("table … already exists").
        // Either way the loser opens again and goes on from what the other did. Once on CI the recorder lost
        // that race and its disk stayed failed; `ConcurrentIndexOpenTests` races two openers.
        var attempt = 1
        while true {
            do {
                let q = try DatabaseQueue(path: path, configuration: config)
                try migrator.migrate(q)
                return q
            } catch let error as DatabaseError
                where (error.resultCode == .SQLITE_ERROR || error.resultCode == .SQLITE_BUSY) && attempt < 10
            {
                usleep(useconds_t(10_000 * attempt))
                attempt += 1
            }
        }
    }

    /// Opens the index read-only (``RecordingReader``).
    static func openReadOnly(_ path: String) throws -> DatabaseQueue {
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(10)
        config.label = "hallwatch.storage.index.reader"
        return try DatabaseQueue(path: path, configuration: config)
    }
}

/// What a slot row says about a slot.
enum SlotState: String, Sendable {
    case free, open, closed
}

/// One row of the `slot` table.
struct SlotRow: Sendable, Equatable {
    var slot: Int
    var generation: UInt64
    var camera: CameraID?
    var state: SlotState
    var takeSequence: UInt64
    /// End of the last indexed record, bytes from the slot file's start (``SlotHeader/byteCount`` when none).
    var indexedEndOffset: Int64
    /// CRC-32C of the last indexed record (of the slot header when none): the chain value a scan
    /// from ``indexedEndOffset`` expects.
    var tailCRC: UInt32
    /// The last indexed init record in this slot and its run (`nil` when none).
    var lastInitOffset: Int64?
    var lastInitRun: UInt64?

    static func free(_ slot: Int, generation: UInt64) -> SlotRow {
        SlotRow(
            slot: slot, generation: generation, camera: nil, state: .free, takeSequence: 0,
            indexedEndOffset: Int64(SlotHeader.byteCount), tailCRC: 0, lastInitOffset: nil, lastInitRun: nil)
    }

    /// The row of a slot just taken with `header` (nothing indexed yet).
    static func opened(_ header: SlotHeader) -> SlotRow {
        SlotRow(
            slot: header.slot, generation: header.generation, camera: header.camera, state: .open,
            takeSequence: header.takeSequence,
            indexedEndOffset: Int64(SlotHeader.byteCount), tailCRC: header.crc, lastInitOffset: nil, lastInitRun: nil)
    }

    init(
        slot: Int, generation: UInt64, camera: CameraID?, state: SlotState, takeSequence: UInt64,
        indexedEndOffset: Int64, tailCRC: UInt32, lastInitOffset: Int64?, lastInitRun: UInt64?
    ) {
        self.slot = slot
        self.generation = generation
        self.camera = camera
        self.state = state
        self.takeSequence = takeSequence
        self.indexedEndOffset = indexedEndOffset
        self.tailCRC = tailCRC
        self.lastInitOffset = lastInitOffset
        self.lastInitRun = lastInitRun
    }

    init(row: Row) throws(StorageError) {
        let cameraText: String? = row["camera"]
        guard let state = SlotState(rawValue: row["state"]) else {
            throw StorageError(.corrupt, "slot row with unknown state")
        }
        var camera: CameraID?
        if let cameraText {
            guard let c = CameraID(cameraText) else { throw StorageError(.corrupt, "slot row with invalid camera") }
            camera = c
        }
        let initRun: Int64? = row["lastInitRun"]
        self.init(
            slot: row["slot"], generation: UInt64(bitPattern: row["generation"]), camera: camera, state: state,
            takeSequence: UInt64(bitPattern: row["takeSequence"]), indexedEndOffset: row["indexedEndOffset"],
            tailCRC: UInt32(truncatingIfNeeded: row["tailCRC"] as Int64), lastInitOffset: row["lastInitOffset"],
            lastInitRun: initRun.map { UInt64(bitPattern: $0) })
    }

    static func fetchAll(_ db: Database) throws -> [Int: SlotRow] {
        var out: [Int: SlotRow] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT * FROM slot") {
            let s = try SlotRow(row: row)
            out[s.slot] = s
        }
        return out
    }

    /// Inserts or replaces the row, keeping `hold` (owned by whoever places evidence holds).
    func save(_ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO slot (slot, generation, camera, state, takeSequence, indexedEndOffset, tailCRC, lastInitOffset, lastInitRun)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (slot) DO UPDATE SET generation = excluded.generation, camera = excluded.camera, state = excluded.state,
                    takeSequence = excluded.takeSequence, indexedEndOffset = excluded.indexedEndOffset, tailCRC = excluded.tailCRC,
                    lastInitOffset = excluded.lastInitOffset, lastInitRun = excluded.lastInitRun
                """,
            arguments: [
                slot, Int64(bitPattern: generation), camera?.rawValue, state.rawValue, Int64(bitPattern: takeSequence),
                indexedEndOffset, Int64(tailCRC), lastInitOffset, lastInitRun.map { Int64(bitPattern: $0) },
            ])
    }
}

/// A fragment record ready to be indexed: where it is and what it holds.
struct IndexableFragment {
    var camera: CameraID
    var slot: Int
    var generation: UInt64
    /// Offset of the init record of the fragment's run in the same slot, bytes.
    var initOffset: Int64
    /// Offset of the record, bytes from the slot file's start.
    var offset: Int64
    /// Header plus payload, bytes.
    var recordBytes: Int64
    var meta: FragmentMeta
}

/// One fragment as the chunk blob describes it.
struct FragmentLocation: Sendable, Equatable {
    /// Offset of the record, bytes from the slot file's start.
    var offset: Int64
    /// Header plus payload, bytes.
    var recordBytes: Int64
    /// 90 kHz ticks since the run's start.
    var start90k: Int64
    var duration90k: Int64
    var keyframe: Bool
    /// Start on the box's UTC clock, derived from the chunk's wall-clock line (within
    /// ``ChunkDraft/utcToleranceMicros`` of what the capture worker stamped).
    var startUTC: UTCMicros
    var endUTC: UTCMicros { startUTC.adding(MediaTime90k(duration90k)) }
}

/// One `chunk` row under construction: up to ``maxSpan`` of consecutive fragment records of one
/// camera, run and slot (generation), described by a compact blob instead of a row per fragment.
///
/// Blob format 1, per fragment three unsigned LEB128 varints:
/// 1. record length, bytes (header + payload);
/// 2. `duration90k << 1 | keyframe`;
/// 3. zigzag of (this fragment's start90k − the previous fragment's end90k); 0 for the first.
///
/// Offsets are implicit (records of a chunk are contiguous from `firstOffset`), and so are start
/// times (the chunk's `start90k` plus durations and gaps). About 6–7 bytes per fragment.
///
/// Wall time: the row stores both the media span (`start90k`…`end90k`) and the wall span
/// (`startUTCMicros`…`endUTCMicros`); a fragment's UTC is on the line through them. The capture
/// worker's wall clock slews against media time by up to 500 ppm (``maxSlew``), so the line's slope is
/// 1 ± 500 ppm; a fragment more than ``utcToleranceMicros`` off the line starts a new chunk.
struct ChunkDraft: Sendable {
    /// Largest drift accepted between a record's own UTC and the UTC derived from the chunk, µs.
    static let utcToleranceMicros: Int64 = 1_000
    /// Largest slope difference between wall and media time a chunk's line may have.
    static let maxSlew = 500e-6

    /// Wall µs per media µs of a chunk's line (1 when its media span is empty).
    static func wallRate(start90k: Int64, end90k: Int64, startUTC: Int64, endUTC: Int64) -> Double {
        let media = Double(end90k - start90k) * 100 / 9
        guard media > 0 else { return 1 }
        return min(1 + maxSlew, max(1 - maxSlew, Double(endUTC - startUTC) / media))
    }

    /// UTC of media time `ticks` on this chunk's line so far.
    func derivedUTC(_ ticks: Int64) -> Int64 {
        let rate =
            fragmentCount > 1
            ? Self.wallRate(start90k: start90k, end90k: lastStart90k, startUTC: startUTCMicros, endUTC: lastStartUTC)
            : 1
        return startUTCMicros + Int64((Double(ticks - start90k) * 100 / 9 * rate).rounded())
    }

    var id: Int64?
    let camera: CameraID
    let run: UInt64
    let slot: Int
    let generation: UInt64
    let initOffset: Int64
    let firstOffset: Int64
    var endOffset: Int64
    let start90k: Int64
    var end90k: Int64
    var duration90k: Int64
    let startUTCMicros: Int64
    var endUTCMicros: Int64
    var fragmentCount: Int
    var blob: [UInt8]
    var dirty = true
    /// The newest fragment's start, media and wall: with the chunk's start, the line's two points.
    var lastStart90k: Int64
    var lastStartUTC: Int64

    init(_ f: IndexableFragment) {
        camera = f.camera
        run = f.meta.run
        slot = f.slot
        generation = f.generation
        initOffset = f.initOffset
        firstOffset = f.offset
        endOffset = f.offset
        start90k = f.meta.start90k.ticks
        end90k = start90k
        duration90k = 0
        startUTCMicros = f.meta.utc.micros
        endUTCMicros = startUTCMicros
        lastStart90k = start90k
        lastStartUTC = startUTCMicros
        fragmentCount = 0
        blob = []
        blob.reserveCapacity(1024)
        append(f)
    }

    /// Whether `f` continues this chunk without breaking the blob's assumptions or the span limit.
    func accepts(_ f: IndexableFragment, maxSpan90k: Int64, maxSpanMicros: Int64) -> Bool {
        guard f.camera == camera, f.meta.run == run, f.slot == slot, f.generation == generation,
            f.initOffset == initOffset,
            f.offset == endOffset, endOffset - firstOffset + f.recordBytes <= Int64(UInt32.max)
        else { return false }
        let start = f.meta.start90k.ticks
        guard start >= start90k else { return false }
        let end = start + Int64(f.meta.duration90k)
        guard end - start90k <= maxSpan90k else { return false }
        // On the line so far; with only one fragment the line's slope is not known yet: any slew.
        let elapsed = Double(start - start90k) * 100 / 9
        let slack = fragmentCount > 1 ? 0 : Int64(elapsed * Self.maxSlew)
        guard abs(derivedUTC(start) - f.meta.utc.micros) <= Self.utcToleranceMicros + slack else { return false }
        let endUTC = f.meta.utc.adding(MediaTime90k(Int64(f.meta.duration90k))).micros
        return max(endUTC, endUTCMicros) - startUTCMicros <= maxSpanMicros
    }

    mutating func append(_ f: IndexableFragment) {
        let start = f.meta.start90k.ticks
        let dur = Int64(f.meta.duration90k)
        let gap = fragmentCount == 0 ? 0 : start - end90k
        Varint.put(UInt64(f.recordBytes), &blob)
        Varint.put(UInt64(dur) << 1 | (f.meta.keyframe ? 1 : 0), &blob)
        Varint.put(UInt64(bitPattern: (gap << 1) ^ (gap >> 63)), &blob)
        endOffset = f.offset + f.recordBytes
        end90k = start + dur
        duration90k += dur
        if fragmentCount > 0 {
            lastStart90k = start
            lastStartUTC = f.meta.utc.micros
        }
        fragmentCount += 1
        // The line through the chunk's start and this fragment's start, extended to its end.
        let rate =
            fragmentCount > 1
            ? Self.wallRate(start90k: start90k, end90k: lastStart90k, startUTC: startUTCMicros, endUTC: lastStartUTC)
            : 1
        endUTCMicros = startUTCMicros + Int64((Double(end90k - start90k) * 100 / 9 * rate).rounded())
        dirty = true
    }

    /// Inserts the row, or updates it in place when it was written before.
    mutating func write(_ db: Database) throws {
        if let id {
            try db.execute(
                sql: """
                    UPDATE chunk SET endOffset = ?, end90k = ?, duration90k = ?, endUTCMicros = ?, fragmentCount = ?, fragments = ?
                    WHERE id = ? AND slot = ? AND generation = ?
                    """,
                arguments: [
                    endOffset, end90k, duration90k, endUTCMicros, fragmentCount, Data(blob), id, slot,
                    Int64(bitPattern: generation),
                ])
            if db.changesCount == 1 {
                dirty = false
                return
            }
            // The row is gone (pruned under us): insert the whole chunk afresh.
        }
        try db.execute(
            sql: """
                INSERT INTO chunk (camera, run, slot, generation, initOffset, firstOffset, endOffset, start90k, end90k, duration90k,
                                   startUTCMicros, endUTCMicros, fragmentCount, fragments)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                camera.rawValue, Int64(bitPattern: run), slot, Int64(bitPattern: generation), initOffset, firstOffset,
                endOffset,
                start90k, end90k, duration90k, startUTCMicros, endUTCMicros, fragmentCount, Data(blob),
            ])
        id = db.lastInsertedRowID
        dirty = false
    }

    /// Decodes a stored blob.
    /// - Throws: ``StorageError/Code/corrupt`` when it does not hold `fragmentCount` well-formed entries
    ///   ending exactly at `endOffset`.
    static func decode(
        blob: [UInt8], fragmentCount: Int, firstOffset: Int64, endOffset: Int64, start90k: Int64, startUTC: UTCMicros,
        wallRate: Double = 1
    ) throws(StorageError) -> [FragmentLocation] {
        var out: [FragmentLocation] = []
        out.reserveCapacity(fragmentCount)
        var i = 0
        var offset = firstOffset
        var prevEnd = start90k
        for n in 0..<fragmentCount {
            guard let len = Varint.get(blob, &i), let durKey = Varint.get(blob, &i), let zz = Varint.get(blob, &i)
            else {
                throw StorageError(.corrupt, "chunk blob ends after \(n) of \(fragmentCount) fragments")
            }
            let gap = Int64(bitPattern: zz >> 1) ^ -Int64(bitPattern: zz & 1)
            let start = prevEnd + gap
            let dur = Int64(durKey >> 1)
            guard len >= UInt64(RecordHeader.byteCount), len < UInt64(UInt32.max), dur <= Int64(Int32.max) else {
                throw StorageError(.corrupt, "chunk blob entry out of range")
            }
            out.append(
                FragmentLocation(
                    offset: offset, recordBytes: Int64(len), start90k: start, duration90k: dur,
                    keyframe: durKey & 1 == 1,
                    startUTC: UTCMicros(
                        startUTC.micros + Int64((Double(start - start90k) * 100 / 9 * wallRate).rounded()))))
            offset += Int64(len)
            prevEnd = start + dur
        }
        guard i == blob.count, offset == endOffset else {
            throw StorageError(.corrupt, "chunk blob does not match the chunk's byte range")
        }
        return out
    }
}

/// Turns a stream of records (in write order) into chunk rows; shared by the commit path (step C4)
/// and recovery (step R6) so both index the same way.
struct ChunkIndexer: Sendable {
    /// Each camera's newest chunk, which later fragments may extend.
    var open: [CameraID: ChunkDraft] = [:]
    /// Chunks that can no longer grow and still need writing.
    private var finished: [ChunkDraft] = []
    let maxSpan90k: Int64
    let maxSpanMicros: Int64

    init(maxSpan: Duration) {
        let micros = maxSpan.components.seconds * 1_000_000 + maxSpan.components.attoseconds / 1_000_000_000_000
        maxSpanMicros = micros
        maxSpan90k = micros * 9 / 100
    }

    /// A new run of `camera` began (init record): its next fragment starts a new chunk.
    mutating func endChunk(of camera: CameraID) {
        if let old = open.removeValue(forKey: camera), old.dirty { finished.append(old) }
    }

    mutating func add(_ f: IndexableFragment) {
        if var c = open[f.camera], c.accepts(f, maxSpan90k: maxSpan90k, maxSpanMicros: maxSpanMicros) {
            c.append(f)
            open[f.camera] = c
            return
        }
        endChunk(of: f.camera)
        open[f.camera] = ChunkDraft(f)
    }

    /// Writes every chunk row that changed; call inside the commit's transaction.
    mutating func flush(_ db: Database) throws {
        for var c in finished { try c.write(db) }
        finished.removeAll()
        for key in Array(open.keys) where open[key]!.dirty {
            try open[key]!.write(db)
        }
    }
}

/// Unsigned LEB128.
enum Varint {
    static func put(_ v: UInt64, _ out: inout [UInt8]) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func get(_ b: [UInt8], _ i: inout Int) -> UInt64? {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while i < b.count, shift < 64 {
            let byte = b[i]
            i += 1
            v |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return v }
            shift += 7
        }
        return nil
    }
}
