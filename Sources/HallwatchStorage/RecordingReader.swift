import Foundation
import GRDB
import HallwatchCore

/// Read-only access to a recording disk's index and records: for export, playback and
/// `hallwatchctl recordings`. Safe beside a running ``DiskWriter`` (possibly in another process):
/// the index is opened read-only and WAL lets readers see the last committed state while the writer
/// commits; every record read is checked against its CRC-32C.
///
/// A record may be overwritten between reading the index and reading the record (ring reuse or
/// pruning); that surfaces as ``StorageError/Code/overwritten``.
public final class RecordingReader: Sendable {
    /// The disk read.
    public let disk: RecordingDisk
    let db: DatabaseQueue
    let opener: any SlotFileOpener

    /// Opens the disk at `path` for reading.
    /// - Parameters:
    ///   - path: The disk's directory.
    ///   - box: Expected owner; `nil` reads any box's disk (a pulled disk).
    ///   - opener: Opens slot files read-only.
    /// - Throws: as ``RecordingDisk/open(at:box:)``; ``StorageError/Code/noIndex`` when there is no
    ///   `index.sqlite` yet (open a ``DiskWriter`` on the disk to build it); ``StorageError/Code/index``.
    public init(at path: String, box: String? = nil, opener: any SlotFileOpener = PosixSlotFileOpener())
        throws(StorageError)
    {
        let disk = try RecordingDisk.open(at: path, box: box)
        guard FileOps.exists(disk.indexPath) else {
            throw StorageError(
                .noIndex, "\(path) has no index.sqlite; opening it for writing rebuilds one from the slots")
        }
        self.disk = disk
        db = try withSQLite("opening \(path)/index.sqlite read-only") { try IndexSchema.openReadOnly(disk.indexPath) }
        self.opener = opener
    }

    /// Cameras with at least one indexed fragment, sorted.
    public func cameras() throws(StorageError) -> [CameraID] {
        try withSQLite("listing cameras") {
            try db.read { db in
                // Skip-scan of the (camera, start) index: one probe per camera, not a scan of every chunk.
                var out: [CameraID] = []
                var last = ""
                while let text = try String.fetchOne(
                    db, sql: "SELECT camera FROM chunk WHERE camera > ? ORDER BY camera LIMIT 1", arguments: [last])
                {
                    if let id = CameraID(text) { out.append(id) }
                    last = text
                }
                return out
            }
        }
    }

    /// The camera's runs in time order; the gaps between them are where nothing was recorded.
    public func runs(camera: CameraID) throws(StorageError) -> [RunSummary] {
        try withSQLite("listing runs of \(camera)") {
            try db.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT run, MIN(startUTCMicros) AS s, MAX(endUTCMicros) AS e, SUM(duration90k) AS d,
                               SUM(endOffset - firstOffset) - SUM(fragmentCount) * ? AS b, SUM(fragmentCount) AS n, COUNT(DISTINCT slot) AS slots
                        FROM chunk WHERE camera = ? GROUP BY run ORDER BY s, run
                        """, arguments: [RecordHeader.byteCount, camera.rawValue]
                ).map { r in
                    RunSummary(
                        run: UInt64(bitPattern: r["run"]), startUTC: UTCMicros(r["s"]), endUTC: UTCMicros(r["e"]),
                        media90k: MediaTime90k(r["d"]), payloadBytes: r["b"], fragmentCount: r["n"],
                        slotCount: r["slots"])
                }
            }
        }
    }

    /// The camera's newest indexed fragment: its run, its media end (90 kHz ticks since the run's start)
    /// and its start on the box's clock; `nil` when nothing is indexed. The recorder uses it to skip
    /// frames a reconnecting capture worker sends again.
    /// - Throws: ``StorageError/Code/index``.
    public func lastFragment(camera: CameraID) throws(StorageError) -> (
        run: UInt64, end90k: Int64, startUTC: UTCMicros
    )? {
        try withSQLite("finding the newest fragment of \(camera)") {
            try db.read { db in
                try Row.fetchOne(
                    db,
                    sql: """
                        SELECT run, end90k, startUTCMicros FROM chunk WHERE camera = ? ORDER BY startUTCMicros DESC, id DESC LIMIT 1
                        """, arguments: [camera.rawValue]
                ).map { (UInt64(bitPattern: $0["run"]), $0["end90k"], UTCMicros($0["startUTCMicros"])) }
            }
        }
    }

    /// The records of `camera` whose time overlaps `[from, to)`, grouped by run in time order, each
    /// run with its init segment so that init + fragments concatenate into one playable fMP4
    /// (ISO/IEC 14496-12 §8.8). Runs that continue across slots come back as one run.
    ///
    /// - Parameters:
    ///   - camera: Whose recording.
    ///   - from: Start of the range, box UTC µs (inclusive).
    ///   - to: End of the range, box UTC µs (exclusive).
    ///   - startAtKeyframe: When the first overlapping fragment does not start with a keyframe, also
    ///     return the run's fragments back to the nearest one before it, so decoding can begin.
    /// - Returns: Runs with at least one fragment in the range.
    /// - Throws: ``StorageError/Code/corrupt`` when a record fails its CRC or does not match the
    ///   index; ``StorageError/Code/overwritten`` when its slot was reused meanwhile;
    ///   ``StorageError/Code/io``; ``StorageError/Code/index``.
    public func segments(camera: CameraID, from: UTCMicros, to: UTCMicros, startAtKeyframe: Bool = true)
        throws(StorageError) -> [ExportRun]
    {
        let plan = try self.plan(camera: camera, from: from, to: to, startAtKeyframe: startAtKeyframe)
        var files = SlotFiles(disk: disk, opener: opener)
        var out: [ExportRun] = []
        for p in plan {
            let c = p.initChunk
            let initRecord = try files.readRecord(
                slot: c.slot, offset: c.initOffset,
                expected: Expectation(camera: camera, run: c.run, generation: c.generation, kind: .initSegment))
            var run = ExportRun(run: p.run, initSegment: initRecord.payload, fragments: [])
            run.fragments.reserveCapacity(p.fragments.count)
            for f in p.fragments {
                let r = try files.readRecord(
                    slot: f.chunk.slot, offset: f.location.offset,
                    expected: Expectation(
                        camera: camera, run: f.chunk.run, generation: f.chunk.generation, kind: .fragment,
                        recordBytes: f.location.recordBytes, duration90k: f.location.duration90k,
                        keyframe: f.location.keyframe))
                run.fragments.append(ExportFragment(meta: r.header.meta, payload: r.payload))
            }
            out.append(run)
        }
        return out
    }

    /// Which records `segments` and `stream` return: chunks overlapping `[from, to)`, grouped by run,
    /// fragments in media order, with a lead-in back to a keyframe when asked. Reads the index only.
    func plan(camera: CameraID, from: UTCMicros, to: UTCMicros, startAtKeyframe: Bool) throws(StorageError)
        -> [PlannedRun]
    {
        guard from < to else { return [] }
        return try withSQLite("finding chunks of \(camera)") {
            try db.read { db -> [PlannedRun] in
                let span = try Int64.fetchOne(db, sql: "SELECT maxChunkSpanMicros FROM disk WHERE id = 1") ?? 0
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT * FROM chunk WHERE camera = ? AND startUTCMicros >= ? AND startUTCMicros < ? AND endUTCMicros > ?
                        ORDER BY startUTCMicros, id
                        """, arguments: [camera.rawValue, from.micros - span, to.micros, from.micros])
                var runs: [PlannedRun] = []
                var index: [UInt64: Int] = [:]
                for row in rows {
                    let chunk = try ChunkRow(row)
                    let picked = try chunk.fragments().filter { $0.startUTC < to && $0.endUTC > from }.map {
                        PlannedFragment(chunk: chunk, location: $0)
                    }
                    guard !picked.isEmpty else { continue }
                    if let i = index[chunk.run] {
                        runs[i].fragments += picked
                    } else {
                        index[chunk.run] = runs.count
                        runs.append(PlannedRun(run: chunk.run, initChunk: chunk, fragments: picked))
                    }
                }
                for i in runs.indices {
                    runs[i].fragments.sort {
                        ($0.location.start90k, $0.chunk.id, $0.location.offset) < (
                            $1.location.start90k, $1.chunk.id, $1.location.offset
                        )
                    }
                    if startAtKeyframe, let first = runs[i].fragments.first, !first.location.keyframe {
                        runs[i].fragments.insert(contentsOf: try Self.leadIn(db, camera: camera, before: first), at: 0)
                    }
                    if let first = runs[i].fragments.first { runs[i].initChunk = first.chunk }
                }
                return runs
            }
        }
    }

    /// The same records as ``segments(camera:from:to:startAtKeyframe:)`` as one byte stream of known
    /// length — each run's init segment, then its fragments, run after run — without reading them: for
    /// playback and export over HTTP, where a range request reads only the records it covers. A new init
    /// segment in the stream marks a run boundary (new codec parameters), as a CMAF track switch does.
    /// - Throws: ``StorageError/Code/index``; ``StorageError/Code/io`` and ``StorageError/Code/corrupt``
    ///   when an init record's header cannot be read.
    public func stream(camera: CameraID, from: UTCMicros, to: UTCMicros, startAtKeyframe: Bool = true)
        throws(StorageError) -> RecordingStream
    {
        var files = SlotFiles(disk: disk, opener: opener)
        var parts: [RecordingStream.Part] = []
        for p in try plan(camera: camera, from: from, to: to, startAtKeyframe: startAtKeyframe) {
            let c = p.initChunk
            let initExpect = Expectation(camera: camera, run: c.run, generation: c.generation, kind: .initSegment)
            let header = try files.readRecord(
                slot: c.slot, offset: c.initOffset, expected: initExpect, checkingPayload: false
            ).header
            parts.append(
                .init(
                    reader: self, slot: c.slot, offset: c.initOffset, payloadBytes: Int64(header.payloadBytes),
                    expected: initExpect))
            for f in p.fragments {
                parts.append(
                    .init(
                        reader: self, slot: f.chunk.slot, offset: f.location.offset,
                        payloadBytes: f.location.recordBytes - Int64(RecordHeader.byteCount),
                        expected: Expectation(
                            camera: camera, run: f.chunk.run, generation: f.chunk.generation, kind: .fragment,
                            recordBytes: f.location.recordBytes, duration90k: f.location.duration90k,
                            keyframe: f.location.keyframe),
                        mediaStart90k: f.location.start90k, startUTC: f.location.startUTC))
            }
        }
        return RecordingStream(parts: parts)
    }

    /// The fragments of `first`'s run before it, back to the nearest keyframe (at most 30 chunks back).
    private static func leadIn(_ db: Database, camera: CameraID, before first: PlannedFragment) throws
        -> [PlannedFragment]
    {
        var collected: [PlannedFragment] = []
        var chunk = first.chunk
        var candidates = try chunk.fragments().filter { $0.start90k < first.location.start90k }
        for _ in 0..<30 {
            for loc in candidates.reversed() {
                collected.insert(PlannedFragment(chunk: chunk, location: loc), at: 0)
                if loc.keyframe { return collected }
            }
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT * FROM chunk WHERE camera = ? AND run = ? AND start90k < ? ORDER BY start90k DESC, id DESC LIMIT 1
                        """, arguments: [camera.rawValue, Int64(bitPattern: chunk.run), chunk.start90k])
            else { break }
            chunk = try ChunkRow(row)
            candidates = try chunk.fragments()
        }
        return []  // no keyframe found: return the range as asked
    }

    /// Checks every index row against the disk, as deep as `level` says (`hallwatchctl check`; the
    /// oracle of the crash tests). One pass over the chunk rows in slot order; each level adds to the
    /// one before it:
    ///
    /// - ``CheckLevel/presence``: every used slot row and every chunk row's slot has a readable slot
    ///   header of the indexed generation and camera. Reads one header per slot.
    /// - ``CheckLevel/size``: plus every indexed record's 96-byte header is in place: the indexed
    ///   kind, camera, run, generation, length, duration, keyframe flag and start, and chained to the
    ///   record before it in its chunk (the chain is in the headers). Reads headers only.
    /// - ``CheckLevel/crc`` (the default): plus every record's payload against its CRC-32C. Reads every
    ///   indexed byte.
    ///
    /// Empty when the index only points at whole, matching records. Safe beside a running
    /// ``DiskWriter``: a slot the writer reuses or the pruner frees after the index snapshot was read
    /// shows a newer header generation; such a slot is re-read from the index at the end, and its
    /// problems are dropped when the index no longer points at the old generation (step T2 commits
    /// that before any byte is overwritten). An index that still does is reported.
    /// - Parameter level: How deep to read; default ``CheckLevel/crc``.
    /// - Throws: ``StorageError/Code/index`` (SQLite), ``StorageError/Code/io`` (unreadable slot file).
    public func verify(level: CheckLevel = .crc) throws(StorageError) -> [Inconsistency] {
        let (chunks, slotRows) = try withSQLite("reading the index") {
            try db.read { db in
                (try Row.fetchAll(db, sql: "SELECT * FROM chunk ORDER BY slot, firstOffset"), try SlotRow.fetchAll(db))
            }
        }
        var problems: [Inconsistency] = []
        var files = SlotFiles(disk: disk, opener: opener)
        var unreadableHeaders: Set<Int> = []
        /// The slot header, or `nil` and a problem noted once against the slot (an unreadable header).
        func header(_ n: Int, generation: UInt64, camera: CameraID?, chunkID: Int64?) throws(StorageError)
            -> SlotHeader?
        {
            if unreadableHeaders.contains(n) { return nil }
            do throws(StorageError) { return try files.header(n) } catch {
                if error.code == .io { throw error }
                unreadableHeaders.insert(n)
                problems.append(
                    Inconsistency(
                        slot: n, chunkID: chunkID, offset: 0, camera: camera, problem: "slot header: \(error.message)",
                        generation: generation))
                return nil
            }
        }
        for (n, row) in slotRows.sorted(by: { $0.key < $1.key }) where row.state != .free {
            if let h = try header(n, generation: row.generation, camera: row.camera, chunkID: nil),
                h.generation != row.generation || h.camera != row.camera
            {
                problems.append(
                    Inconsistency(
                        slot: n, chunkID: nil, offset: nil, camera: row.camera,
                        problem:
                            "slot row generation \(row.generation)/\(row.camera?.rawValue ?? "-") but header \(h.generation)/\(h.camera?.rawValue ?? "-")",
                        generation: row.generation))
            }
        }
        for r in chunks {
            let chunk: ChunkRow
            do throws(StorageError) { chunk = try ChunkRow(r) } catch {
                problems.append(
                    Inconsistency(slot: r["slot"], chunkID: r["id"], offset: nil, camera: nil, problem: error.message))
                continue
            }
            func note(_ offset: Int64?, _ text: String) {
                problems.append(
                    Inconsistency(
                        slot: chunk.slot, chunkID: chunk.id, offset: offset, camera: chunk.camera, problem: text,
                        generation: chunk.generation))
            }
            if let slotRow = slotRows[chunk.slot], slotRow.generation != chunk.generation {
                note(nil, "chunk of generation \(chunk.generation) in a slot row at generation \(slotRow.generation)")
            }
            // presence: the chunk's slot file holds the chunk's generation of the chunk's camera.
            guard chunk.slot >= 0, chunk.slot < disk.meta.slotCount else {
                note(nil, "index points at slot \(chunk.slot) of \(disk.meta.slotCount)")
                continue
            }
            if let h = try header(chunk.slot, generation: chunk.generation, camera: chunk.camera, chunkID: chunk.id),
                h.generation != chunk.generation || h.camera != chunk.camera
            {
                note(
                    nil,
                    "chunk of generation \(chunk.generation)/\(chunk.camera) but slot header \(h.generation)/\(h.camera?.rawValue ?? "-")"
                )
                continue  // every record would repeat it
            }
            // (An unreadable header was noted once; the records may still be whole, so read on.)
            guard level >= .size else { continue }
            // size: every record header as indexed, and chained; crc: and its payload's CRC-32C.
            let payloads = level >= .crc
            let base = Expectation(
                camera: chunk.camera, run: chunk.run, generation: chunk.generation, kind: .initSegment)
            do throws(StorageError) {
                _ = try files.readRecord(
                    slot: chunk.slot, offset: chunk.initOffset, expected: base, checkingPayload: payloads)
            } catch {
                if error.code == .io { throw error }
                note(chunk.initOffset, "init record: \(error.message)")
            }
            let locations: [FragmentLocation]
            do throws(StorageError) { locations = try chunk.fragments() } catch {
                note(nil, error.message)
                continue
            }
            var previousCRC: UInt32?
            for loc in locations {
                do throws(StorageError) {
                    let r = try files.readRecord(
                        slot: chunk.slot, offset: loc.offset,
                        expected: Expectation(
                            camera: chunk.camera, run: chunk.run, generation: chunk.generation, kind: .fragment,
                            recordBytes: loc.recordBytes, duration90k: loc.duration90k, keyframe: loc.keyframe,
                            start90k: loc.start90k),
                        checkingPayload: payloads)
                    if let previousCRC, r.header.previousCRC != previousCRC { note(loc.offset, "CRC chain broken") }
                    previousCRC = r.header.crc
                } catch {
                    if error.code == .io { throw error }
                    note(loc.offset, error.message)
                    previousCRC = nil
                }
            }
        }
        return try droppingSuperseded(problems, &files)
    }

    /// Drops the problems of slots that moved on since the snapshot: the slot header (read again now)
    /// is newer than the generation the problem concerns, and the index (read again now) no longer
    /// points at that generation, neither by a chunk row nor by a used slot row. That is a reuse or
    /// prune committed after ``verify(level:)`` read the index, not an inconsistency.
    private func droppingSuperseded(_ problems: [Inconsistency], _ files: inout SlotFiles) throws(StorageError)
        -> [Inconsistency]
    {
        let slots = Set(problems.compactMap { $0.generation == nil ? nil : $0.slot })
        guard !slots.isEmpty else { return problems }
        var headerGeneration: [Int: UInt64] = [:]
        for n in slots {
            files.forgetHeader(n)
            if let h = try? files.header(n) { headerGeneration[n] = h.generation }
        }
        let stillIndexed = try withSQLite("re-reading the index") {
            try db.read { db -> Set<String> in
                var out: Set<String> = []
                for n in slots {
                    for g in try Int64.fetchAll(
                        db, sql: "SELECT DISTINCT generation FROM chunk WHERE slot = ?", arguments: [n])
                    { out.insert("\(n)/\(g)") }
                    if let g = try Int64.fetchOne(
                        db, sql: "SELECT generation FROM slot WHERE slot = ? AND state != 'free'", arguments: [n])
                    {
                        out.insert("\(n)/\(g)")
                    }
                }
                return out
            }
        }
        return problems.filter { p in
            guard let g = p.generation, let h = headerGeneration[p.slot], h > g else { return true }
            return stillIndexed.contains("\(p.slot)/\(Int64(bitPattern: g))")
        }
    }

    /// Size of `index.sqlite` plus its WAL, bytes.
    public func indexSizeBytes() -> Int64 {
        (FileOps.fileSize(disk.indexPath) ?? 0) + (FileOps.fileSize(disk.indexPath + "-wal") ?? 0)
    }
}

// MARK: - Results

/// One run of a camera as the index summarises it.
public struct RunSummary: Sendable, Equatable {
    /// Run id (the capture worker's, UTC µs at which the run started).
    public var run: UInt64
    /// UTC of the first fragment's start, µs since the epoch.
    public var startUTC: UTCMicros
    /// UTC of the last fragment's end.
    public var endUTC: UTCMicros
    /// Sum of the fragments' durations, 90 kHz ticks.
    public var media90k: MediaTime90k
    /// fMP4 bytes of the fragments (record headers and init copies excluded).
    public var payloadBytes: Int64
    /// Fragments in the run.
    public var fragmentCount: Int
    /// Slots the run's fragments occupy.
    public var slotCount: Int
}

/// One run read whole: its init segment and the fragments in time order, each with its record header's
/// metadata. For listings and tests that need the headers (sequence numbers, the capture worker's UTC
/// stamps); export streams instead (``RecordingStream/runs``, ``RecordingStreamCursor``), since this holds
/// every payload of the range in memory.
public struct ExportRun: Sendable, Equatable {
    /// Run id.
    public var run: UInt64
    /// The run's `ftyp`+`moov` (ISO/IEC 14496-12 §4.3, §8.2).
    public var initSegment: [UInt8]
    /// The fragments, in media time order.
    public var fragments: [ExportFragment]
}

/// One fragment read back: the metadata from its record header and its `moof`+`mdat` bytes.
public struct ExportFragment: Sendable, Equatable {
    /// Kind, run, sequence, start and duration (90 kHz ticks), UTC anchor (µs), keyframe flag.
    public var meta: FragmentMeta
    /// `moof`+`mdat` bytes, CRC-checked.
    public var payload: [UInt8]
}

/// How deep ``RecordingReader/verify(level:)`` (and `hallwatchctl check --level`) reads; each level
/// includes the ones before it.
public enum CheckLevel: String, Sendable, CaseIterable, Comparable {
    /// Every used slot and every chunk's slot has a readable header of the indexed generation and
    /// camera. One 128-byte read per slot: seconds for a whole disk.
    case presence
    /// Plus every indexed record's header: in place, as indexed (kind, camera, run, generation,
    /// length, duration, keyframe, start), chained to the record before it. 96 bytes per record.
    case size
    /// Plus every record's payload against its CRC-32C: reads every indexed byte.
    case crc
    /// Plus every stored run demuxed and its samples checked without decoding — DTS increase, PTS unique,
    /// keyframe flags on IDR/IRAP pictures, no split access units (`hallwatchctl check`, with HallwatchMedia's
    /// `MediaCheck`). ``RecordingReader/verify(level:)`` reads as for ``crc``.
    case media

    public static func < (a: CheckLevel, b: CheckLevel) -> Bool { a.rank < b.rank }
    private var rank: Int { Self.allCases.firstIndex(of: self)! }
}

/// An index row that does not match the disk (from ``RecordingReader/verify(level:)``).
public struct Inconsistency: Sendable, Equatable, CustomStringConvertible {
    /// The slot concerned.
    public var slot: Int
    /// The chunk row, when the problem is in one.
    public var chunkID: Int64?
    /// Offset of the record concerned, bytes.
    public var offset: Int64?
    /// The camera of the row, when known.
    public var camera: CameraID?
    /// What does not match.
    public var problem: String
    /// The slot generation the index row concerned names (lets ``RecordingReader/verify(level:)``
    /// tell a slot reused since its snapshot from a real inconsistency).
    var generation: UInt64?

    init(slot: Int, chunkID: Int64?, offset: Int64?, camera: CameraID?, problem: String, generation: UInt64? = nil) {
        self.slot = slot
        self.chunkID = chunkID
        self.offset = offset
        self.camera = camera
        self.problem = problem
        self.generation = generation
    }

    public var description: String {
        "slot \(slot)\(chunkID.map { " chunk \($0)" } ?? "")\(offset.map { " @\($0)" } ?? ""): \(problem)"
    }
}

// MARK: - Internals

/// A `chunk` row.
struct ChunkRow: Sendable {
    var id: Int64
    var camera: CameraID
    var run: UInt64
    var slot: Int
    var generation: UInt64
    var initOffset: Int64
    var firstOffset: Int64
    var endOffset: Int64
    var start90k: Int64
    var startUTC: UTCMicros
    var end90k: Int64
    var endUTC: UTCMicros
    var fragmentCount: Int
    var blob: [UInt8]

    init(_ r: Row) throws(StorageError) {
        guard let camera = CameraID(r["camera"] as String) else {
            throw StorageError(.corrupt, "chunk row with invalid camera")
        }
        self.camera = camera
        id = r["id"]
        run = UInt64(bitPattern: r["run"])
        slot = r["slot"]
        generation = UInt64(bitPattern: r["generation"])
        initOffset = r["initOffset"]
        firstOffset = r["firstOffset"]
        endOffset = r["endOffset"]
        start90k = r["start90k"]
        startUTC = UTCMicros(r["startUTCMicros"])
        fragmentCount = r["fragmentCount"]
        end90k = r["end90k"]
        endUTC = UTCMicros(r["endUTCMicros"])
        blob = [UInt8]((r["fragments"] as Data?) ?? Data())
    }

    func fragments() throws(StorageError) -> [FragmentLocation] {
        try ChunkDraft.decode(
            blob: blob, fragmentCount: fragmentCount, firstOffset: firstOffset, endOffset: endOffset,
            start90k: start90k, startUTC: startUTC,
            wallRate: ChunkDraft.wallRate(
                start90k: start90k, end90k: end90k, startUTC: startUTC.micros, endUTC: endUTC.micros))
    }
}

struct PlannedFragment: Sendable {
    var chunk: ChunkRow
    var location: FragmentLocation
}
struct PlannedRun: Sendable {
    var run: UInt64
    var initChunk: ChunkRow
    var fragments: [PlannedFragment]
}

/// What a record read through the index must be.
struct Expectation {
    var camera: CameraID
    var run: UInt64
    var generation: UInt64
    var kind: SegmentKind
    var recordBytes: Int64?
    var duration90k: Int64?
    var keyframe: Bool?
    var start90k: Int64?
}

/// Slot files opened read-only on demand, with their headers.
struct SlotFiles {
    let disk: RecordingDisk
    let opener: any SlotFileOpener
    private var files: [Int: any SlotFileHandle] = [:]
    private var headers: [Int: SlotHeader] = [:]

    init(disk: RecordingDisk, opener: any SlotFileOpener) {
        self.disk = disk
        self.opener = opener
    }

    mutating func file(_ slot: Int) throws(StorageError) -> any SlotFileHandle {
        guard slot >= 0, slot < disk.meta.slotCount else {
            throw StorageError(.corrupt, "index points at slot \(slot) of \(disk.meta.slotCount)")
        }
        if let f = files[slot] { return f }
        let f = try opener.open(disk.slotPath(slot), writable: false)
        files[slot] = f
        return f
    }

    mutating func header(_ slot: Int) throws(StorageError) -> SlotHeader {
        if let h = headers[slot] { return h }
        let h = try SlotHeader.decode(try file(slot).readBytes(SlotHeader.byteCount, at: 0))
        headers[slot] = h
        return h
    }

    /// Forgets the cached header of `slot`, so the next ``header(_:)`` reads it again.
    mutating func forgetHeader(_ slot: Int) { headers[slot] = nil }

    /// Reads one record and checks it against `expected` and, when `checkingPayload` (the default),
    /// reads its payload and checks the CRC-32C; otherwise only the header is read and the payload
    /// returned is empty.
    mutating func readRecord(slot: Int, offset: Int64, expected e: Expectation, checkingPayload: Bool = true)
        throws(StorageError) -> (header: RecordHeader, payload: [UInt8])
    {
        let f = try file(slot)
        let place = "slot \(slot) offset \(offset)"
        guard offset >= Int64(SlotHeader.byteCount), offset + Int64(RecordHeader.byteCount) <= disk.meta.slotSizeBytes
        else {
            throw StorageError(.corrupt, "\(place): outside the slot")
        }
        let h: RecordHeader
        do throws(StorageError) {
            h = try RecordHeader.decode(try f.readBytes(RecordHeader.byteCount, at: offset))
        } catch {
            if error.code == .io { throw error }
            throw try overwrittenOr(slot, e, "\(place): \(error.message)")
        }
        guard h.generation == e.generation else {
            throw try overwrittenOr(slot, e, "\(place): record generation \(h.generation), index says \(e.generation)")
        }
        guard h.camera == e.camera, h.run == e.run, h.kind == e.kind else {
            throw StorageError(
                .corrupt,
                "\(place): record is \(h.kind) of \(h.camera) run \(h.run), index says \(e.kind) of \(e.camera) run \(e.run)"
            )
        }
        if let n = e.recordBytes, n != h.recordBytes {
            throw StorageError(.corrupt, "\(place): record is \(h.recordBytes) bytes, index says \(n)")
        }
        if let d = e.duration90k, d != Int64(h.duration90k) {
            throw StorageError(.corrupt, "\(place): duration \(h.duration90k), index says \(d)")
        }
        if let k = e.keyframe, k != h.keyframe {
            throw StorageError(.corrupt, "\(place): keyframe flag differs from the index")
        }
        if let s = e.start90k, s != h.start90k.ticks {
            throw StorageError(.corrupt, "\(place): start \(h.start90k.ticks), index says \(s)")
        }
        guard offset + h.recordBytes <= disk.meta.slotSizeBytes else {
            throw StorageError(.corrupt, "\(place): record overruns the slot")
        }
        guard checkingPayload else { return (h, []) }
        let payload = try f.readBytes(Int(h.payloadBytes), at: offset + Int64(RecordHeader.byteCount))
        guard payload.withUnsafeBytes({ h.crcMatches(payload: $0) }) else {
            throw try overwrittenOr(slot, e, "\(place): CRC-32C mismatch")
        }
        return (h, payload)
    }

    /// A record that does not match: ``StorageError/Code/overwritten`` when the slot has moved on to
    /// a later generation since the index was read, else ``StorageError/Code/corrupt``.
    private mutating func overwrittenOr(_ slot: Int, _ e: Expectation, _ message: String) throws(StorageError)
        -> StorageError
    {
        headers[slot] = nil
        if let h = try? header(slot), h.generation > e.generation {
            return StorageError(.overwritten, "\(message) (slot reused: generation \(h.generation))")
        }
        return StorageError(.corrupt, message)
    }
}
