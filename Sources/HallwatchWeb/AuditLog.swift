import Crypto
import Foundation
import GRDB
import HallwatchCore

/// One entry of the audit log. `hash = SHA-256(previousHash ‖ canonical(seq, time, actor, address, action,
/// object, details))`, hex; the first entry's `previousHash` is 64 zeros (``AuditChain/genesis``).
public struct AuditEntry: Codable, Sendable, Equatable {
    /// 1, 2, 3… without gaps.
    public var seq: Int64
    /// When it happened (UTC).
    public var timeMicros: Int64
    /// Who: a user name, `-` for nobody signed in, or a process name for bus events.
    public var actor: String
    /// The client's IP address, or `-`.
    public var address: String
    /// What, dotted: `login.success`, `login.failure`, `logout`, `camera.view`, `status.view`…
    public var action: String
    /// On what: a camera id, a list of them, a user name; `-` when none.
    public var object: String
    /// Free text, bounded (``AuditLog/maxFieldBytes``).
    public var details: String
    /// ``hash`` of the entry before (hex); ``AuditChain/genesis`` for entry 1.
    public var previousHash: String
    /// SHA-256 of ``previousHash`` and this entry's canonical form (hex, 64 characters).
    public var hash: String
}

/// The chain's arithmetic, shared by the writer and `hallwatchctl audit verify`.
public enum AuditChain {
    /// `previousHash` of entry 1.
    public static let genesis = String(repeating: "0", count: 64)

    /// The hash of an entry with these fields. Each text field is length-prefixed, so no two different
    /// entries share a canonical form (`a|bc` vs `ab|c`).
    public static func hash(
        seq: Int64, timeMicros: Int64, actor: String, address: String, action: String, object: String,
        details: String, previousHash: String
    ) -> String {
        var canonical = "hallwatch-audit-v1\n\(seq)\n\(timeMicros)\n"
        for field in [actor, address, action, object, details] { canonical += "\(field.utf8.count):\(field)\n" }
        var h = SHA256()
        h.update(data: Data(previousHash.utf8))
        h.update(data: Data(canonical.utf8))
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// What verification found.
    public enum Verdict: Sendable, Equatable, CustomStringConvertible {
        /// Every entry chains; `count` entries, last hash `head` (genesis when empty).
        case intact(count: Int, head: String)
        /// The first entry that does not chain, and why.
        case broken(seq: Int64, reason: String)

        public var description: String {
            switch self {
            case .intact(let count, let head): "intact: \(count) entries, head \(head)"
            case .broken(let seq, let reason): "broken at entry \(seq): \(reason)"
            }
        }
    }

    /// Checks `entries` in order: sequence numbers 1, 2, 3…, each `previousHash` equal to the hash before it,
    /// each hash recomputed. Names the first bad entry.
    public static func verify(_ entries: some Sequence<AuditEntry>) -> Verdict {
        var expectedSeq: Int64 = 1
        var previous = genesis
        for e in entries {
            if e.seq != expectedSeq {
                return .broken(seq: e.seq, reason: "expected sequence number \(expectedSeq) (an entry is missing)")
            }
            if e.previousHash != previous {
                return .broken(seq: e.seq, reason: "its previous hash is not the hash of entry \(e.seq - 1)")
            }
            let recomputed = hash(
                seq: e.seq, timeMicros: e.timeMicros, actor: e.actor, address: e.address, action: e.action,
                object: e.object, details: e.details, previousHash: e.previousHash)
            if recomputed != e.hash { return .broken(seq: e.seq, reason: "its content does not match its hash") }
            previous = e.hash
            expectedSeq += 1
        }
        return .intact(count: Int(expectedSeq - 1), head: previous)
    }
}

/// The tamper-evident audit log: an append-only SHA-256 hash chain in the web's database (triggers refuse
/// UPDATE and DELETE), each entry also appended as one JSON line to `<stateDirectory>/audit.log` (opened
/// `O_APPEND`, `fsync`ed per entry; `chattr +a` on a box makes it append-only for root too).
///
/// Steps of ``record(actor:address:action:object:details:)``:
/// 1. In one write transaction read the last entry (seq, hash), build the next one and insert it.
/// 2. Still inside the transaction, append its JSON line to the file and `fsync`. A crash before the commit
///    leaves the file one line ahead of the database, which `audit verify --file` reports; never the reverse.
/// 3. Commit.
public final class AuditLog: Sendable {
    /// Longest text field, in UTF-8 bytes; longer ones are cut (bounded input, bounded file).
    public static let maxFieldBytes = 1024
    let database: WebDatabase
    let clocks: any Clocks
    let filePath: String?

    /// - Parameters:
    ///   - filePath: the append-only mirror; `nil` for none (tests).
    public init(database: WebDatabase, clocks: any Clocks, filePath: String?) {
        self.database = database
        self.clocks = clocks
        self.filePath = filePath
    }

    /// Appends one entry: the one call every audited action goes through.
    /// - Throws: GRDB errors, or `SystemError` when the mirror file cannot be written (the entry is then not
    ///   committed either: an action the log cannot record is reported as failed by the caller).
    @discardableResult
    public func record(actor: String, address: String, action: String, object: String = "-", details: String = "")
        async throws -> AuditEntry
    {
        let now = clocks.utcNow().micros
        let (a, ad, ac, o, d) = (
            Self.cut(actor), Self.cut(address), Self.cut(action), Self.cut(object), Self.cut(details)
        )
        let path = filePath
        return try await database.queue.write { db in
            let last = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            let seq: Int64 = (last?["seq"] ?? 0) + 1
            let previous: String = last?["hash"] ?? AuditChain.genesis
            let hash = AuditChain.hash(
                seq: seq, timeMicros: now, actor: a, address: ad, action: ac, object: o, details: d,
                previousHash: previous)
            let entry = AuditEntry(
                seq: seq, timeMicros: now, actor: a, address: ad, action: ac, object: o, details: d,
                previousHash: previous, hash: hash)
            try db.execute(
                sql: "INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                arguments: [seq, now, a, ad, ac, o, d, previous, hash])
            if let path { try Self.append(entry, to: path) }
            return entry
        }
    }

    /// Every entry in sequence order.
    public func entries() async throws -> [AuditEntry] {
        try await database.queue.read { db in try Self.entries(db) }
    }

    /// Each (user, address) pair with a `login.success` among the newest `scanRows` entries, with its newest
    /// time (UTC µs): the addresses ``LoginThrottle`` spares from a per-name lock, read back after a restart.
    /// Bounded work: the scan stops `scanRows` entries back.
    /// - Throws: GRDB errors.
    public func signIns(scanRows: Int = 200_000) throws -> [(user: String, address: String, atMicros: Int64)] {
        try database.queue.read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT actor, address, max(timeMicros) AS at FROM audit
                    WHERE action = 'login.success' AND seq > (SELECT coalesce(max(seq), 0) - ? FROM audit)
                    GROUP BY actor, address LIMIT ?
                    """, arguments: [scanRows, LoginThrottle.maxKeys]
            ).map { (user: $0["actor"], address: $0["address"], atMicros: $0["at"]) }
        }
    }

    static func entries(_ db: Database) throws -> [AuditEntry] {
        try Row.fetchAll(db, sql: "SELECT * FROM audit ORDER BY seq").map {
            AuditEntry(
                seq: $0["seq"], timeMicros: $0["timeMicros"], actor: $0["actor"], address: $0["address"],
                action: $0["action"], object: $0["object"], details: $0["details"], previousHash: $0["previousHash"],
                hash: $0["hash"])
        }
    }

    /// Verifies the chain in the database at `databasePath` (read-only) — `hallwatchctl audit verify`.
    public static func verify(databasePath: String) throws -> AuditChain.Verdict {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: databasePath, configuration: configuration)
        return try queue.read { db in AuditChain.verify(try entries(db)) }
    }

    /// Verifies the mirror file: one JSON entry per line. A line that is not an entry is reported at the
    /// sequence number it should have had.
    public static func verify(filePath: String) throws -> AuditChain.Verdict {
        let text = try String(contentsOfFile: filePath, encoding: .utf8)
        var entries: [AuditEntry] = []
        for (i, line) in text.split(separator: "\n", omittingEmptySubsequences: true).enumerated() {
            guard let e = try? JSONDecoder().decode(AuditEntry.self, from: Data(line.utf8)) else {
                return .broken(seq: Int64(i + 1), reason: "line \(i + 1) of the file is not an audit entry")
            }
            entries.append(e)
        }
        return AuditChain.verify(entries)
    }

    /// Reads the entries of the database at `databasePath` (read-only) whose time is in `[from, to)`.
    public static func entries(databasePath: String, from: UTCMicros, to: UTCMicros) throws -> [AuditEntry] {
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: databasePath, configuration: configuration)
        return try queue.read { db in try entries(db) }.filter {
            $0.timeMicros >= from.micros && $0.timeMicros < to.micros
        }
    }

    /// `entries` as CSV (RFC 4180: comma-separated, CRLF line ends, fields quoted when needed, `"` doubled),
    /// with a header line; times ISO 8601 UTC. A text field starting with `=`, `+`, `-`, `@`, tab or CR gets a
    /// leading `'` so a spreadsheet never runs it as a formula (OWASP "CSV Injection"); hashes and numbers
    /// are never touched, so the chain can still be recomputed from the other columns.
    public static func csv(_ entries: [AuditEntry]) -> String {
        func field(_ s: String, text: Bool = true) -> String {
            var v = s
            if text, let first = v.first, "=+-@\t\r".contains(first) { v = "'" + v }
            guard v.contains(where: { ",\"\r\n".contains($0) }) else { return v }
            return "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        var out = "seq,time,actor,address,action,object,details,previousHash,hash\r\n"
        for e in entries {
            let row = [
                "\(e.seq)", UTCMicros(e.timeMicros).iso8601, field(e.actor), field(e.address), field(e.action),
                field(e.object), field(e.details), e.previousHash, e.hash,
            ]
            out += row.joined(separator: ",") + "\r\n"
        }
        return out
    }

    static func cut(_ s: String) -> String {
        let clean = String(s.unicodeScalars.map { $0.properties.generalCategory == .control ? " " : Character($0) })
        guard clean.utf8.count > maxFieldBytes else { return clean }
        var out = ""
        for c in clean {
            if out.utf8.count + c.utf8.count > maxFieldBytes { break }
            out.append(c)
        }
        return out
    }

    static func append(_ entry: AuditEntry, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var line = try encoder.encode(entry)
        line.append(0x0A)
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemError("open", subject: path) }
        defer { close(fd) }
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count else { throw SystemError("write", subject: path) }
        guard fsync(fd) == 0 else { throw SystemError("fsync", subject: path) }
    }
}
