import Foundation
import GRDB
import HallwatchCore
import HallwatchEvidence
import HallwatchStatus
import Logging

/// The states each stream, the recorder and the box went through, kept in the web's database so a gap in the
/// recordings can say why long after the bus has forgotten (its retained messages hold only the newest
/// state). One row per change, never per status message: a stream going `offline` with its reason code, back
/// `online`; the recorder `down` and `up`; the box booting (the kernel's boot time, `btime` of `/proc/stat`).
///
/// Written by ``watch(status:clocks:maxAge:bootTime:every:logger:)`` (a task of `hallwatch-web`, comparing the status
/// snapshot every second with what it last wrote) and pruned there like the events (older than the longest
/// retention, at most ``maxRows``). Read by ``cause(of:from:to:)``.
public struct CameraHistory: Sendable {
    let database: WebDatabase
    /// Most rows kept; the oldest beyond it are deleted (a camera flapping every second for a week stays within).
    public static let maxRows = 1_000_000
    /// A state change this close before a gap's start explains it too, µs (2 s): the fragment that ended the
    /// run and the state message cross on the bus.
    static let slackMicros: Int64 = 2_000_000

    /// The history in `database`.
    public init(database: WebDatabase) { self.database = database }

    /// The table (registered in ``WebDatabase``'s migrator). `subject` is a stream id (`lobby`, `lobby/sub`),
    /// `recorder`, or `box`.
    static func register(_ m: inout DatabaseMigrator) {
        m.registerMigration("v5-camera-history") { db in
            try db.execute(
                sql: """
                    CREATE TABLE stateChange (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        subject TEXT NOT NULL,
                        timeMicros INTEGER NOT NULL,
                        state TEXT NOT NULL,
                        code TEXT,
                        message TEXT
                    );
                    CREATE INDEX stateChange_subject_time ON stateChange(subject, timeMicros);
                    """)
        }
    }

    /// One change: `subject` entered `state` at `at` (box UTC), for `code`/`message` when it says why.
    public struct Change: Sendable, Equatable {
        public var subject: String
        public var at: UTCMicros
        public var state: String
        public var code: String?
        public var message: String?

        public init(subject: String, at: UTCMicros, state: String, code: String? = nil, message: String? = nil) {
            self.subject = subject
            self.at = at
            self.state = state
            self.code = code
            self.message = message.map { String($0.prefix(300)) }
        }
    }

    /// Writes `changes`.
    /// - Throws: GRDB's `DatabaseError`.
    public func record(_ changes: [Change]) throws {
        guard !changes.isEmpty else { return }
        try database.queue.write { db in
            for c in changes {
                try db.execute(
                    sql: "INSERT INTO stateChange (subject, timeMicros, state, code, message) VALUES (?, ?, ?, ?, ?)",
                    arguments: [c.subject, c.at.micros, c.state, c.code, c.message])
            }
        }
    }

    /// The newest change of each subject (what ``watch(status:clocks:maxAge:bootTime:every:logger:)`` compares with after a
    /// restart, so a state that lasted across it is not written twice).
    /// - Throws: GRDB's `DatabaseError`.
    public func latest() throws -> [String: Change] {
        try database.queue.read { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT subject, timeMicros, state, code, message FROM stateChange
                    WHERE seq IN (SELECT MAX(seq) FROM stateChange GROUP BY subject)
                    """)
            var out: [String: Change] = [:]
            for r in rows {
                let c = Change(
                    subject: r["subject"], at: UTCMicros(r["timeMicros"] as Int64), state: r["state"], code: r["code"],
                    message: r["message"])
                out[c.subject] = c
            }
            return out
        }
    }

    /// Why `stream` recorded nothing over `[from, to)`, from what the box went through then; `nil` when it
    /// does not know (the web itself was not running, or nothing was said). In order: the stream not online
    /// (its first such change from ``slackMicros`` before `from` to `to`, else the state it was already in);
    /// the recorder down; the box starting inside the gap.
    /// - Throws: GRDB's `DatabaseError`.
    public func cause(of stream: CameraID, from: UTCMicros, to: UTCMicros) throws -> GapCause? {
        try database.queue.read { db in
            func first(_ subject: String, where condition: String) throws -> Row? {
                try Row.fetchOne(
                    db,
                    sql: """
                        SELECT timeMicros, state, code, message FROM stateChange
                        WHERE subject = ? AND timeMicros >= ? AND timeMicros < ? AND \(condition)
                        ORDER BY timeMicros LIMIT 1
                        """, arguments: [subject, from.micros - Self.slackMicros, to.micros])
            }
            func before(_ subject: String) throws -> Row? {
                try Row.fetchOne(
                    db,
                    sql: """
                        SELECT timeMicros, state, code, message FROM stateChange
                        WHERE subject = ? AND timeMicros < ? ORDER BY timeMicros DESC LIMIT 1
                        """, arguments: [subject, from.micros - Self.slackMicros])
            }
            func detail(_ r: Row) -> String {
                let code: String? = r["code"]
                let message: String? = r["message"]
                let said = [code, message].compactMap { $0 }.joined(separator: ": ")
                let at = UTCMicros(r["timeMicros"] as Int64).iso8601
                return said.isEmpty ? "\(r["state"] as String) from \(at)" : "\(said) (from \(at))"
            }
            let offline =
                try first(stream.rawValue, where: "state <> 'online'")
                ?? before(stream.rawValue).flatMap { ($0["state"] as String) == "online" ? nil : $0 }
            if let r = offline { return GapCause(cause: GapCause.cameraOffline, detail: detail(r)) }
            if let r = try first("recorder", where: "state <> 'up'") {
                return GapCause(cause: GapCause.recorderDown, detail: detail(r))
            }
            if let r = try first("box", where: "state = 'boot'") {
                return GapCause(
                    cause: GapCause.boxRestart,
                    detail:
                        "the box started at \(UTCMicros(r["timeMicros"] as Int64).iso8601) (a power cut or a reboot)")
            }
            return nil
        }
    }

    /// Deletes changes older than `before`, then the oldest beyond ``maxRows``; the count deleted.
    /// - Throws: GRDB's `DatabaseError`.
    @discardableResult
    public func prune(before: UTCMicros, maxRows: Int = maxRows) throws -> Int {
        try database.queue.write { db in
            try db.execute(sql: "DELETE FROM stateChange WHERE timeMicros < ?", arguments: [before.micros])
            var deleted = db.changesCount
            try db.execute(
                sql: """
                    DELETE FROM stateChange WHERE seq <= (SELECT seq FROM stateChange ORDER BY seq DESC LIMIT 1 OFFSET ?)
                    """, arguments: [maxRows])
            deleted += db.changesCount
            return deleted
        }
    }

    /// The changes in `snapshot` against `known` (each subject's newest change), which it updates: each stream's
    /// state as people must read it (``HallwatchStatus/StatusCollector/Snapshot/state(of:)``, so a killed
    /// capture worker is `offline` with `capture.down`) and the recorder process's. A stream or recorder never
    /// seen is not a change.
    public static func changes(in snapshot: StatusCollector.Snapshot, known: inout [String: Change]) -> [Change] {
        var out: [Change] = []
        func note(_ c: Change) {
            if let k = known[c.subject], k.state == c.state, k.code == c.code { return }
            known[c.subject] = c
            out.append(c)
        }
        for row in snapshot.cameras {
            guard let s = row.state, s.state != .connecting else { continue }
            note(
                Change(
                    subject: row.camera.rawValue, at: s.at, state: s.state.rawValue,
                    code: s.state == .online ? nil : s.reason?.code,
                    message: s.state == .online ? nil : s.reason?.message))
        }
        if let p = snapshot.processes.first(where: { $0.process == "recorder" }) {
            let state = p.state == .up ? "up" : "down"
            note(Change(subject: "recorder", at: p.at ?? snapshot.at, state: state, message: p.reason))
        }
        return out
    }

    /// Every `every`, writes the changes in `status`'s snapshot; at start, the box's boot (`bootTime`, when not
    /// yet written). Prunes hourly to `maxAge`. Runs until cancelled; a failed write is logged and tried again
    /// with the next snapshot.
    public func watch(
        status: any StatusSource, clocks: any Clocks, maxAge: Duration, bootTime: UTCMicros?,
        every: Duration = .seconds(1), logger: Logger
    ) async {
        var known = (try? latest()) ?? [:]
        if let bootTime, known["box"].map({ abs($0.at.micros - bootTime.micros) > 2_000_000 }) ?? true {
            let boot = Change(subject: "box", at: bootTime, state: "boot")
            if (try? record([boot])) != nil { known["box"] = boot }
        }
        var lastPrune: UTCMicros?
        while !Task.isCancelled {
            let now = clocks.utcNow()
            var next = known
            let changes = Self.changes(in: status.snapshot(now: now), known: &next)
            do {
                try record(changes)
                known = next
            } catch {
                logger.warning("camera history not written", metadata: ["error": "\(error)"])
            }
            if lastPrune.map({ now.micros - $0.micros > 3_600_000_000 }) ?? true {
                lastPrune = now
                let cut = now.adding(micros: -Int64(maxAge.components.seconds) * 1_000_000)
                if let n = try? prune(before: cut), n > 0 {
                    logger.info("camera history pruned", metadata: ["rows": "\(n)"])
                }
            }
            try? await Task.sleep(for: every)
        }
    }

    /// The kernel's boot time (`btime` in `/proc/stat`, seconds since the epoch); `nil` where there is none.
    public static func bootTime(procStat: String = "/proc/stat") -> UTCMicros? {
        guard let text = try? String(contentsOfFile: procStat, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            guard let s = Int64(line.dropFirst(6).trimmingCharacters(in: .whitespaces)) else { return nil }
            return UTCMicros(s * 1_000_000)
        }
        return nil
    }
}
