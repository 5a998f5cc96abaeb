import Foundation
import GRDB
import HallwatchCore

/// An event source as an admin made it: its name (the CloudEvents `source` its events must carry) and what
/// its tokens are bound to. Empty lists mean "any".
public struct EventSourceInfo: Codable, Sendable, Equatable {
    public var name: String
    /// Event types its tokens may send (empty: any).
    public var types: [String]
    /// Door ids its events may name (empty: any).
    public var doors: [String]
    /// Client IP addresses its tokens may come from (empty: any).
    public var addresses: [String]
    /// When it was made (UTC µs).
    public var createdMicros: Int64
    /// When it was revoked; `nil` while live.
    public var revokedMicros: Int64?
    /// How many of its tokens are live (at most 2: the current one and the one being rotated out).
    public var liveTokens: Int
}

/// What a live token grants: its source and that source's bounds.
public struct EventGrant: Sendable, Equatable {
    public var source: EventSourceInfo
    /// SHA-256 (hex) of the token.
    public var tokenHash: String
}

/// One stored event as the API and pages show it.
public struct StoredEvent: Codable, Sendable, Equatable {
    /// The store's sequence number (ascending in receive order).
    public var seq: Int64
    public var source: String
    public var id: String
    public var type: String
    /// The event's own time (the source's clock), ISO 8601 UTC.
    public var time: String
    /// When the box received it, ISO 8601 UTC.
    public var receivedAt: String
    /// Received more than ``EventService/Limits/lateAfter`` after its time (a panel handing over its buffer).
    public var late: Bool
    /// The configured door it concerns, if any.
    public var door: String?
    /// The subject as sent.
    public var subject: String?
    /// The source's sequence number.
    public var sequence: Int64?
    /// The cameras it concerns: the door's direct cameras, then its indirect ones, then those the event named.
    public var cameras: [String]
    /// The door's direct cameras (played from the pre-roll on the events page).
    public var directCameras: [String]
    /// The door's pre-roll in seconds (0 without a door).
    public var preRollSeconds: Double
    /// Evidence holds placed for it.
    public var holds: [String]
}

/// The answer to an accepted event (the same bytes for an identical repeat).
public struct EventReceipt: Codable, Sendable, Equatable {
    public var source: String
    public var id: String
    public var seq: Int64
    public var time: String
    public var receivedAt: String
    public var late: Bool
    public var door: String?
    public var holds: [String]
}

/// Where a source's adapter resumes (`GET /api/v1/sources/{id}/cursor`).
public struct EventCursor: Codable, Sendable, Equatable {
    public var source: String
    /// Events stored from it.
    public var count: Int
    /// The last stored event's id, its source sequence number, its time (by receive order).
    public var lastId: String?
    public var lastSequence: Int64?
    public var lastTime: String?
    public var lastReceivedAt: String?
    /// The highest source sequence number stored.
    public var maxSequence: Int64?
    /// The latest event time stored.
    public var maxTime: String?
    /// The source clock's offset estimated from live events (seconds; positive: the source is behind).
    public var clockSkewSeconds: Double?
    /// Whether the offset is beyond ``EventService/Limits/maxSkew``.
    public var clockSkewAlarm: Bool
}

/// A door's state for the map (`GET /api/v1/doors`).
public struct DoorView: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    /// `open`, `closed`, `forced`, `held`, or `unknown` before any door event.
    public var state: String
    public var direct: [String]
    public var indirect: [String]
    /// The newest event of the door (by event time).
    public var lastEvent: StoredEvent?
}

/// The event store: `<stateDirectory>/events.sqlite` (WAL), owned by `hallwatch-web` (the only writer;
/// `hallwatchctl` writes sources and tokens while the web runs, through SQLite's locking). Tables: event sources
/// and their token hashes (a token itself is never stored), events (unique by source and id), conflicting
/// repeats (kept beside the first one).
///
/// Durability: `synchronous=NORMAL` in WAL mode: a process crash loses nothing committed; a power cut may lose
/// the last commits, which an adapter re-sends from ``EventCursor``.
public final class EventStore: Sendable {
    let queue: DatabasePool?
    let memory: DatabaseQueue?

    /// Opens (creating and migrating) the store at `path`; `":memory:"` for tests.
    /// - Throws: GRDB's `DatabaseError` when the file cannot be opened or migrated.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.prepareDatabase { db in
            if !db.configuration.readonly { try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        }
        if path == ":memory:" {
            memory = try DatabaseQueue(configuration: configuration)
            queue = nil
            try Self.migrator.migrate(memory!)
        } else {
            queue = try DatabasePool(path: path, configuration: configuration)
            memory = nil
            try Self.migrator.migrate(queue!)
        }
    }

    var writer: any DatabaseWriter { queue ?? memory! }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE eventSource (
                        name TEXT PRIMARY KEY NOT NULL,
                        types TEXT NOT NULL,
                        doors TEXT NOT NULL,
                        addresses TEXT NOT NULL,
                        createdMicros INTEGER NOT NULL,
                        revokedMicros INTEGER
                    );
                    CREATE TABLE eventToken (
                        hash TEXT PRIMARY KEY NOT NULL,
                        source TEXT NOT NULL REFERENCES eventSource(name),
                        createdMicros INTEGER NOT NULL,
                        revokedMicros INTEGER
                    );
                    CREATE TABLE event (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        source TEXT NOT NULL,
                        id TEXT NOT NULL,
                        type TEXT NOT NULL,
                        timeMicros INTEGER NOT NULL,
                        receivedMicros INTEGER NOT NULL,
                        late INTEGER NOT NULL,
                        door TEXT,
                        subject TEXT,
                        sequence INTEGER,
                        cameras TEXT NOT NULL,
                        directCameras TEXT NOT NULL,
                        preRollMicros INTEGER NOT NULL,
                        holds TEXT NOT NULL,
                        document TEXT NOT NULL,
                        contentHash TEXT NOT NULL,
                        UNIQUE (source, id)
                    );
                    CREATE INDEX event_time ON event(timeMicros);
                    CREATE INDEX event_door ON event(door, timeMicros);
                    CREATE TABLE eventConflict (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        source TEXT NOT NULL,
                        id TEXT NOT NULL,
                        receivedMicros INTEGER NOT NULL,
                        document TEXT NOT NULL,
                        contentHash TEXT NOT NULL
                    );
                    """)
        }
        m.registerMigration("v2: retention by source") { db in
            // The per-source row budget deletes a source's oldest events (EventRetention).
            try db.execute(sql: "CREATE INDEX event_source_time ON event(source, timeMicros)")
        }
        return m
    }

    // MARK: - sources and tokens

    /// Most live tokens per source: the new one and the one being rotated out.
    public static let maxLiveTokens = 2

    /// Makes source `name` (or gives a live one a new token, revoking all but the newest older one), bound to
    /// `types`, `doors` and `addresses` (each `nil`: unchanged for an existing source, any for a new one).
    /// - Returns: the new token (`hwe_` and 43 base64url characters), shown once; only its SHA-256 is stored.
    /// - Throws: GRDB errors.
    public func addSource(
        _ name: String, types: [String]?, doors: [String]?, addresses: [String]?, now: UTCMicros
    ) throws -> String {
        let token = "hwe_" + SessionStore.randomToken()
        let hash = SessionStore.hash(token)
        try writer.write { db in
            let existing = try Row.fetchOne(
                db, sql: "SELECT * FROM eventSource WHERE name = ? AND revokedMicros IS NULL", arguments: [name])
            if existing == nil {
                try db.execute(sql: "DELETE FROM eventToken WHERE source = ?", arguments: [name])
                try db.execute(
                    sql: "INSERT OR REPLACE INTO eventSource VALUES (?, ?, ?, ?, ?, NULL)",
                    arguments: [
                        name, Self.list(types ?? []), Self.list(doors ?? []), Self.list(addresses ?? []), now.micros,
                    ])
            } else {
                if let types {
                    try db.execute(
                        sql: "UPDATE eventSource SET types = ? WHERE name = ?", arguments: [Self.list(types), name])
                }
                if let doors {
                    try db.execute(
                        sql: "UPDATE eventSource SET doors = ? WHERE name = ?", arguments: [Self.list(doors), name])
                }
                if let addresses {
                    try db.execute(
                        sql: "UPDATE eventSource SET addresses = ? WHERE name = ?",
                        arguments: [Self.list(addresses), name])
                }
                // Rotation: keep the newest live token beside the new one; revoke any older.
                try db.execute(
                    sql: """
                        UPDATE eventToken SET revokedMicros = ? WHERE source = ? AND revokedMicros IS NULL AND hash NOT IN
                            (SELECT hash FROM eventToken WHERE source = ? AND revokedMicros IS NULL
                             ORDER BY createdMicros DESC, rowid DESC LIMIT ?)
                        """, arguments: [now.micros, name, name, Self.maxLiveTokens - 1])
            }
            try db.execute(sql: "INSERT INTO eventToken VALUES (?, ?, ?, NULL)", arguments: [hash, name, now.micros])
        }
        return token
    }

    /// Revokes source `name` and every token of it.
    /// - Returns: whether a live source of that name existed.
    public func revokeSource(_ name: String, now: UTCMicros) throws -> Bool {
        try writer.write { db in
            try db.execute(
                sql: "UPDATE eventToken SET revokedMicros = ? WHERE source = ? AND revokedMicros IS NULL",
                arguments: [now.micros, name])
            try db.execute(
                sql: "UPDATE eventSource SET revokedMicros = ? WHERE name = ? AND revokedMicros IS NULL",
                arguments: [now.micros, name])
            return db.changesCount > 0
        }
    }

    /// Every source, live and revoked, by name.
    public func sources() throws -> [EventSourceInfo] {
        try writer.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT s.*, (SELECT COUNT(*) FROM eventToken t WHERE t.source = s.name AND t.revokedMicros IS NULL)
                        AS live FROM eventSource s ORDER BY name
                    """
            ).map(Self.source)
        }
    }

    /// The grant of a live `token`, or `nil` (unknown, revoked, or its source revoked). The lookup is by the
    /// token's SHA-256, so its timing tells nothing about the token.
    public func grant(token: String) throws -> EventGrant? {
        let hash = SessionStore.hash(token)
        return try writer.read { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT s.*, 0 AS live FROM eventToken t JOIN eventSource s ON s.name = t.source
                        WHERE t.hash = ? AND t.revokedMicros IS NULL AND s.revokedMicros IS NULL
                        """, arguments: [hash])
            else { return nil }
            return EventGrant(source: Self.source(row), tokenHash: hash)
        }
    }

    static func source(_ row: Row) -> EventSourceInfo {
        EventSourceInfo(
            name: row["name"], types: split(row["types"]), doors: split(row["doors"]),
            addresses: split(row["addresses"]), createdMicros: row["createdMicros"],
            revokedMicros: row["revokedMicros"], liveTokens: row["live"])
    }

    static func list(_ items: [String]) -> String { items.joined(separator: ",") }
    static func split(_ text: String) -> [String] { text.split(separator: ",").map(String.init) }

    // MARK: - events

    /// What storing an event did.
    public enum Outcome: Sendable, Equatable {
        /// Stored for the first time.
        case stored(EventReceipt)
        /// An identical repeat: the first one's receipt.
        case repeated(EventReceipt)
        /// The same (source, id) with other content: kept in the conflicts table; the first one's receipt.
        case conflict(EventReceipt)
    }

    /// What is stored with an event beside its document.
    public struct Placement: Sendable {
        public var door: String?
        public var cameras: [String]
        public var directCameras: [String]
        public var preRollMicros: Int64
        public var late: Bool
    }

    /// Stores `event` received at `received`, or tells it is a repeat or a conflict (one transaction).
    public func store(_ event: IncomingEvent, placement: Placement, received: UTCMicros) throws -> Outcome {
        try store([(event, placement)], received: received)[0]
    }

    /// Stores a batch received at `received` in one transaction (a batch of 500 is one commit, not 500): one
    /// outcome per event, in order. An event repeated within the batch is a repeat (or a conflict) of its first.
    /// - Throws: GRDB errors (nothing of the batch is stored then).
    public func store(_ events: [(IncomingEvent, Placement)], received: UTCMicros) throws -> [Outcome] {
        guard !events.isEmpty else { return [] }
        return try writer.write { db in
            let find = try db.cachedStatement(sql: "SELECT * FROM event WHERE source = ? AND id = ?")
            let insert = try db.cachedStatement(
                sql: """
                    INSERT INTO event (source, id, type, timeMicros, receivedMicros, late, door, subject, sequence,
                        cameras, directCameras, preRollMicros, holds, document, contentHash)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?)
                    """)
            var outcomes: [Outcome] = []
            outcomes.reserveCapacity(events.count)
            for (event, placement) in events {
                let document = String(decoding: event.canonicalDocument, as: UTF8.self)
                if let row = try Row.fetchOne(find, arguments: [event.source, event.id]) {
                    let receipt = Self.receipt(row)
                    if (row["contentHash"] as String) == event.contentHash {
                        outcomes.append(.repeated(receipt))
                        continue
                    }
                    try db.execute(
                        sql:
                            "INSERT INTO eventConflict (source, id, receivedMicros, document, contentHash) VALUES (?, ?, ?, ?, ?)",
                        arguments: [event.source, event.id, received.micros, document, event.contentHash])
                    outcomes.append(.conflict(receipt))
                    continue
                }
                try insert.execute(arguments: [
                    event.source, event.id, event.type, event.time.micros, received.micros, placement.late,
                    placement.door, event.subject, event.sequence, Self.list(placement.cameras),
                    Self.list(placement.directCameras), placement.preRollMicros, document, event.contentHash,
                ])
                outcomes.append(
                    .stored(
                        EventReceipt(
                            source: event.source, id: event.id, seq: db.lastInsertedRowID, time: event.time.iso8601,
                            receivedAt: received.iso8601, late: placement.late, door: placement.door, holds: [])))
            }
            return outcomes
        }
    }

    /// Notes the evidence holds placed for event `seq` (shown in its later receipts and on the events page).
    public func setHolds(seq: Int64, holds: [String]) throws {
        try writer.write { db in
            try db.execute(sql: "UPDATE event SET holds = ? WHERE seq = ?", arguments: [Self.list(holds), seq])
        }
    }

    static func receipt(_ row: Row) -> EventReceipt {
        EventReceipt(
            source: row["source"], id: row["id"], seq: row["seq"], time: UTCMicros(row["timeMicros"]).iso8601,
            receivedAt: UTCMicros(row["receivedMicros"]).iso8601, late: row["late"], door: row["door"],
            holds: split(row["holds"]))
    }

    static func event(_ row: Row) -> StoredEvent {
        StoredEvent(
            seq: row["seq"], source: row["source"], id: row["id"], type: row["type"],
            time: UTCMicros(row["timeMicros"]).iso8601, receivedAt: UTCMicros(row["receivedMicros"]).iso8601,
            late: row["late"], door: row["door"], subject: row["subject"], sequence: row["sequence"],
            cameras: split(row["cameras"]), directCameras: split(row["directCameras"]),
            preRollSeconds: Double(row["preRollMicros"] as Int64) / 1e6, holds: split(row["holds"]))
    }

    /// Where `source`'s adapter resumes (without the skew, which the service adds).
    public func cursor(source: String) throws -> EventCursor {
        try writer.read { db in
            let last = try Row.fetchOne(
                db, sql: "SELECT * FROM event WHERE source = ? ORDER BY seq DESC LIMIT 1", arguments: [source])
            let agg = try Row.fetchOne(
                db, sql: "SELECT COUNT(*) AS n, MAX(sequence) AS ms, MAX(timeMicros) AS mt FROM event WHERE source = ?",
                arguments: [source])
            func value<T: DatabaseValueConvertible>(_ row: Row?, _ column: String) -> T? {
                row.flatMap { $0[column] as T? }
            }
            let iso: (Int64?) -> String? = { $0.map { UTCMicros($0).iso8601 } }
            return EventCursor(
                source: source, count: value(agg, "n") ?? 0, lastId: value(last, "id"),
                lastSequence: value(last, "sequence"), lastTime: iso(value(last, "timeMicros")),
                lastReceivedAt: iso(value(last, "receivedMicros")), maxSequence: value(agg, "ms"),
                maxTime: iso(value(agg, "mt")), clockSkewSeconds: nil, clockSkewAlarm: false)
        }
    }

    /// A filter of ``events(_:)``.
    public struct Query: Sendable, Equatable {
        /// Event time range `[from, to)`.
        public var from: UTCMicros
        public var to: UTCMicros
        /// Only events concerning this camera.
        public var camera: String?
        public var door: String?
        public var type: String?
        /// Most rows returned (newest first).
        public var limit: Int = 1000
        /// Only events concerning at least one of these cameras (a user limited to camera groups: the filter
        /// runs before ``limit``, so such a user gets the newest events they may see); `nil`: any camera.
        public var anyCamera: Set<String>? = nil
        /// Only events older than this one in the list's order (event time, then `seq`): the next page after a
        /// page whose last row it is. `nil`: from the newest.
        public var before: Position? = nil
        /// A row's place in the list: its event time (UTC µs) and `seq`.
        public struct Position: Sendable, Equatable {
            public var timeMicros: Int64
            public var seq: Int64
            public init(timeMicros: Int64, seq: Int64) {
                self.timeMicros = timeMicros
                self.seq = seq
            }
        }
        public init(
            from: UTCMicros, to: UTCMicros, camera: String? = nil, door: String? = nil, type: String? = nil,
            limit: Int = 1000
        ) {
            self.from = from
            self.to = to
            self.camera = camera
            self.door = door
            self.type = type
            self.limit = limit
        }
    }

    /// Events whose time is in the query's range, newest first.
    public func events(_ q: Query) throws -> [StoredEvent] {
        try writer.read { db in
            var sql = "SELECT * FROM event WHERE timeMicros >= ? AND timeMicros < ?"
            var args: [(any DatabaseValueConvertible)?] = [q.from.micros, q.to.micros]
            if let door = q.door {
                sql += " AND door = ?"
                args.append(door)
            }
            if let type = q.type {
                sql += " AND type = ?"
                args.append(type)
            }
            func names(_ camera: String) -> String {
                let escaped = camera.replacingOccurrences(of: "\\", with: "\\\\")
                    .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
                return "%," + escaped + ",%"
            }
            let mentions = "(',' || cameras || ',') LIKE ? ESCAPE '\\'"
            if let camera = q.camera {
                sql += " AND " + mentions
                args.append(names(camera))
            }
            if let anyCamera = q.anyCamera {
                guard !anyCamera.isEmpty else { return [] }
                sql += " AND (" + Array(repeating: mentions, count: anyCamera.count).joined(separator: " OR ") + ")"
                args += anyCamera.sorted().map(names)
            }
            if let before = q.before {
                sql += " AND (timeMicros < ? OR (timeMicros = ? AND seq < ?))"
                args += [before.timeMicros, before.timeMicros, before.seq]
            }
            sql += " ORDER BY timeMicros DESC, seq DESC LIMIT ?"
            args.append(q.limit)
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map(Self.event)
        }
    }

    /// The newest event of `door` (by event time), and the newest that tells its state.
    public func lastEvents(door: String) throws -> (last: StoredEvent?, state: String?) {
        try writer.read { db in
            let last = try Row.fetchOne(
                db, sql: "SELECT * FROM event WHERE door = ? ORDER BY timeMicros DESC, seq DESC LIMIT 1",
                arguments: [door]
            ).map(Self.event)
            let state = try String.fetchOne(
                db,
                sql: """
                    SELECT type FROM event WHERE door = ? AND type IN ('door.opened', 'door.closed', 'door.forced', 'door.held')
                    ORDER BY timeMicros DESC, seq DESC LIMIT 1
                    """, arguments: [door])
            return (last, state.flatMap(EventTypes.doorState))
        }
    }

    /// The newest event of `door` that tells its state (`door.opened`, `.closed`, `.forced`, `.held`), by event time.
    public func lastStateEvent(door: String) throws -> StoredEvent? {
        try writer.read { db in
            try Row.fetchOne(
                db,
                sql: """
                    SELECT * FROM event WHERE door = ? AND type IN ('door.opened', 'door.closed', 'door.forced', 'door.held')
                    ORDER BY timeMicros DESC, seq DESC LIMIT 1
                    """, arguments: [door]
            ).map(Self.event)
        }
    }

    /// How many conflicting repeats are kept (tests, status).
    public func conflictCount() throws -> Int {
        try writer.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM eventConflict") ?? 0 }
    }
}

// MARK: - retention

extension EventStore {
    /// What one retention pass (``prune(before:keeping:rowBudget:maxRows:)``) deleted.
    public struct PruneCounts: Sendable, Equatable {
        /// Events whose time is before the cutoff, outside every kept range.
        public var aged = 0
        /// Events deleted because their source held more than its row budget, by source (its oldest first).
        public var overBudget: [String: Int] = [:]
        /// Rows each source over its budget held when the pass began.
        public var sourceRows: [String: Int] = [:]
        /// Conflicting repeats received before the cutoff.
        public var conflicts = 0
        /// The pass stopped at its row limit with more to delete (the next pass goes on).
        public var more = false
        /// Every row deleted.
        public var total: Int { aged + overBudget.values.reduce(0, +) + conflicts }
    }

    /// Most kept ranges one pass takes; more are merged across their smallest gaps first (keeping more, never
    /// less), so the statement stays small.
    public static let maxKeptRanges = 256

    /// Deletes, in one transaction and at most `maxRows` rows:
    /// 1. events whose time is before `cutoff` and in no `kept` range (box UTC µs, `from` inclusive, `to`
    ///    exclusive: evidence holds and exports), oldest first;
    /// 2. for each source holding more than `rowBudget` events, its oldest events outside the kept ranges until
    ///    it is within the budget;
    /// 3. conflicting repeats received before `cutoff`.
    ///
    /// The file does not shrink: SQLite reuses the freed pages for new events.
    /// - Throws: GRDB errors (nothing of the pass is deleted then).
    public func prune(before cutoff: UTCMicros, keeping kept: [Range<Int64>], rowBudget: Int, maxRows: Int) throws
        -> PruneCounts
    {
        let ranges = Self.merged(kept, max: Self.maxKeptRanges)
        let outside = ranges.map { _ in "NOT (timeMicros >= ? AND timeMicros < ?)" }.joined(separator: " AND ")
        let keptArgs: [any DatabaseValueConvertible] = ranges.flatMap { [$0.lowerBound, $0.upperBound] }
        let notKept = outside.isEmpty ? "1" : outside
        return try writer.write { db in
            var counts = PruneCounts()
            var left = maxRows
            // 1. Aged out (the event_time index walks the oldest first).
            try db.execute(
                sql: """
                    DELETE FROM event WHERE seq IN (SELECT seq FROM event WHERE timeMicros < ? AND \(notKept)
                        ORDER BY timeMicros LIMIT ?)
                    """, arguments: StatementArguments([cutoff.micros] + keptArgs + [left]))
            counts.aged = db.changesCount
            left -= counts.aged
            // 2. Over budget (event_source_time walks a source's oldest first).
            let over = try Row.fetchAll(
                db, sql: "SELECT source, count(*) AS n FROM event GROUP BY source HAVING n > ? ORDER BY n DESC",
                arguments: [rowBudget])
            for row in over {
                let source: String = row["source"]
                let rows: Int = row["n"]
                counts.sourceRows[source] = rows
                let n = min(rows - rowBudget, left)
                guard n > 0 else {
                    counts.more = true
                    continue
                }
                try db.execute(
                    sql: """
                        DELETE FROM event WHERE seq IN (SELECT seq FROM event WHERE source = ? AND \(notKept)
                            ORDER BY timeMicros LIMIT ?)
                        """, arguments: StatementArguments([source] + keptArgs + [n]))
                counts.overBudget[source] = db.changesCount
                left -= db.changesCount
                if rows - db.changesCount > rowBudget, left == 0 { counts.more = true }
            }
            // 3. Conflicting repeats (audited when they came; their rows age out with the events).
            try db.execute(
                sql: """
                    DELETE FROM eventConflict WHERE seq IN (SELECT seq FROM eventConflict WHERE receivedMicros < ?
                        ORDER BY seq LIMIT ?)
                    """, arguments: [cutoff.micros, left])
            counts.conflicts = db.changesCount
            left -= counts.conflicts
            if left == 0 { counts.more = true }
            return counts
        }
    }

    /// `ranges` sorted and merged where they overlap or touch; over `max`, the neighbours with the smallest gaps
    /// are joined (the gap is then kept too) until `max` remain.
    static func merged(_ ranges: [Range<Int64>], max: Int) -> [Range<Int64>] {
        var out: [Range<Int64>] = []
        for r in ranges.filter({ !$0.isEmpty }).sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = out.last, r.lowerBound <= last.upperBound {
                out[out.count - 1] = last.lowerBound..<Swift.max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        while out.count > max {
            let i = (0..<out.count - 1).min {
                out[$0 + 1].lowerBound - out[$0].upperBound < out[$1 + 1].lowerBound - out[$1].upperBound
            }!
            out[i] = out[i].lowerBound..<out[i + 1].upperBound
            out.remove(at: i + 1)
        }
        return out
    }

    /// The store's highest sequence number (0 when empty): events are numbered in receive order.
    public func lastSeq() throws -> Int64 {
        try writer.read { db in try Int64.fetchOne(db, sql: "SELECT coalesce(max(seq), 0) FROM event") ?? 0 }
    }

    /// Events stored per source with a sequence number above `seq` (those received since `seq` was the last).
    public func countsBySource(after seq: Int64) throws -> [String: Int] {
        try writer.read { db in
            var out: [String: Int] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT source, count(*) AS n FROM event WHERE seq > ? GROUP BY source", arguments: [seq])
            {
                out[row["source"]] = row["n"]
            }
            return out
        }
    }
}
