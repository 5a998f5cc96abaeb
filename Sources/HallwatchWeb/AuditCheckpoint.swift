import Foundation
import GRDB
import HallwatchCore
import Logging

extension BusTopics {
    /// Retained ``AuditCheckpoint``: the newest signed head of the audit chain. A district broker bridged to
    /// the box keeps every copy, so a box cannot quietly rewrite its past.
    public var auditCheckpoint: String { "\(root)/web/audit/checkpoint" }
}

/// The audit chain's head at one moment, signed with the box's Ed25519 identity key (``BoxIdentityKey``,
/// RFC 8032). Kept in the web's database (table `auditCheckpoint`, append-only) and published retained on
/// ``HallwatchCore/BusTopics/auditCheckpoint``.
///
/// The signed message is the UTF-8 text ``signedText``: `hallwatch-audit-checkpoint-v1`, then box, number,
/// sequence number, head hash and time (µs since the epoch, UTC), one per line, each line ending in `\n`.
public struct AuditCheckpoint: Codable, Sendable, Equatable {
    /// The box (configuration `box`).
    public var box: String
    /// 1, 2, 3… per box.
    public var number: Int64
    /// The sequence number of the audit entry signed (0 while the log is empty).
    public var seq: Int64
    /// That entry's hash (hex; ``AuditChain/genesis`` while the log is empty).
    public var head: String
    /// When it was signed (UTC µs).
    public var timeMicros: Int64
    /// The signer's 32-byte Ed25519 public key, base64.
    public var publicKey: String
    /// The 64-byte Ed25519 signature of ``signedText``, base64.
    public var signature: String

    /// The exact text signed.
    public var signedText: String {
        "hallwatch-audit-checkpoint-v1\n\(box)\n\(number)\n\(seq)\n\(head)\n\(timeMicros)\n"
    }

    /// Signs the given head with `key`.
    public static func sign(
        box: String, number: Int64, seq: Int64, head: String, timeMicros: Int64, key: BoxIdentityKey
    ) -> AuditCheckpoint {
        var c = AuditCheckpoint(
            box: box, number: number, seq: seq, head: head, timeMicros: timeMicros,
            publicKey: key.publicKey.base64EncodedString(), signature: "")
        c.signature = key.sign(Data(c.signedText.utf8)).base64EncodedString()
        return c
    }

    /// Whether ``signature`` verifies under `publicKey` (32 bytes; the box's, not the one the checkpoint names).
    public func isSigned(by publicKey: Data) -> Bool {
        guard let sig = Data(base64Encoded: signature) else { return false }
        return BoxIdentityKey.isValid(signature: sig, of: Data(signedText.utf8), publicKey: publicKey)
    }
}

/// What checking the signed checkpoints against the chain found.
public enum CheckpointVerdict: Sendable, Equatable, CustomStringConvertible {
    /// Every checkpoint is signed by the box's key and its head is the chain's hash at its entry.
    case intact(count: Int, lastSeq: Int64)
    /// The first bad checkpoint (by number) and why.
    case broken(number: Int64, reason: String)

    public var description: String {
        switch self {
        case .intact(0, _): "no signed checkpoints yet"
        case .intact(let count, let seq): "intact: \(count) signed checkpoints, the last at entry \(seq)"
        case .broken(let n, let reason): "bad checkpoint \(n): \(reason)"
        }
    }

    /// Checks `checkpoints` (any order) against `entries` (the chain, in order) and the box's `publicKey`:
    /// 1. the signature verifies under `publicKey` (else forged or altered);
    /// 2. the entry it names exists (else the log was cut back);
    /// 3. that entry's hash is the signed head (else the past was rewritten, even with every hash redone).
    public static func verify(
        _ checkpoints: [AuditCheckpoint], entries: [AuditEntry], publicKey: Data
    ) -> CheckpointVerdict {
        let hashes = Dictionary(entries.map { ($0.seq, $0.hash) }, uniquingKeysWith: { a, _ in a })
        let sorted = checkpoints.sorted { ($0.number, $0.timeMicros) < ($1.number, $1.timeMicros) }
        for c in sorted {
            guard c.isSigned(by: publicKey) else {
                return .broken(
                    number: c.number,
                    reason: "(entry \(c.seq)) its signature does not verify with the box's key (forged or altered)")
            }
            if c.seq == 0 {
                guard c.head == AuditChain.genesis else {
                    return .broken(number: c.number, reason: "(entry 0) its head is not the empty chain's")
                }
                continue
            }
            guard let hash = hashes[c.seq] else {
                return .broken(number: c.number, reason: "(entry \(c.seq)) that entry is missing: the log was cut back")
            }
            guard hash == c.head else {
                return .broken(
                    number: c.number,
                    reason: "(entry \(c.seq)) the entry's hash is not the signed head: the log was rewritten")
            }
        }
        return .intact(count: sorted.count, lastSeq: sorted.last?.seq ?? 0)
    }
}

/// Signs the audit chain's head: at start, every ``period`` on the injected clock, and on demand
/// (``checkpoint()``, `POST /api/v1/audit/checkpoint`).
///
/// Steps of ``checkpoint()``:
/// 1. In one write transaction read the chain's last entry and the last checkpoint's number.
/// 2. Sign (box, number + 1, seq, head, now) and insert the checkpoint; commit.
/// 3. Publish it retained (``publish``). A failed publish is logged; the next checkpoint carries on (the
///    broker keeps only the newest anyway, a district bridge keeps them all).
public final class AuditCheckpointer: Sendable {
    /// How often the head is signed: one hour.
    public static let period: Duration = .seconds(3600)
    let database: WebDatabase
    let key: BoxIdentityKey
    let box: String
    let clocks: any Clocks
    let publish: @Sendable (AuditCheckpoint) throws -> Void

    /// - Parameter publish: puts a checkpoint on the bus (retained); tests capture it.
    public init(
        database: WebDatabase, key: BoxIdentityKey, box: String, clocks: any Clocks,
        publish: @escaping @Sendable (AuditCheckpoint) throws -> Void
    ) {
        self.database = database
        self.key = key
        self.box = box
        self.clocks = clocks
        self.publish = publish
    }

    /// Signs the head now (steps above) and returns the checkpoint.
    /// - Throws: GRDB errors (nothing signed is then stored); a publish failure is thrown after the store.
    @discardableResult
    public func checkpoint() async throws -> AuditCheckpoint {
        let (box, key, now) = (box, key, clocks.utcNow().micros)
        let c = try await database.queue.write { db in
            let last = try Row.fetchOne(db, sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
            let number = (try Int64.fetchOne(db, sql: "SELECT MAX(number) FROM auditCheckpoint") ?? 0) + 1
            let c = AuditCheckpoint.sign(
                box: box, number: number, seq: last?["seq"] ?? 0, head: last?["hash"] ?? AuditChain.genesis,
                timeMicros: now, key: key)
            try db.execute(
                sql: "INSERT INTO auditCheckpoint VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [c.number, c.box, c.seq, c.head, c.timeMicros, c.publicKey, c.signature])
            return c
        }
        try publish(c)
        return c
    }

    /// Signs at once, then every ``period`` until cancelled. Failures are logged, never fatal.
    public func run(logger: Logger) async {
        while !Task.isCancelled {
            do {
                let c = try await checkpoint()
                logger.info(
                    "audit checkpoint signed",
                    metadata: [
                        "checkpoint.number": "\(c.number)", "checkpoint.seq": "\(c.seq)",
                        "checkpoint.head": "\(c.head)",
                    ])
            } catch {
                logger.error("audit checkpoint failed", metadata: ["error": "\(error)"])
            }
            do { try await clocks.sleep(for: Self.period) } catch { return }
        }
    }

    /// Every checkpoint in the database, by number.
    public func checkpoints() async throws -> [AuditCheckpoint] {
        try await database.queue.read { db in try Self.checkpoints(db) }
    }

    static func checkpoints(_ db: Database) throws -> [AuditCheckpoint] {
        try Row.fetchAll(db, sql: "SELECT * FROM auditCheckpoint ORDER BY number").map {
            AuditCheckpoint(
                box: $0["box"], number: $0["number"], seq: $0["seq"], head: $0["head"], timeMicros: $0["timeMicros"],
                publicKey: $0["publicKey"], signature: $0["signature"])
        }
    }
}

/// `hallwatchctl audit verify`: the chain in the database and in the file, and the signed checkpoints.
public struct AuditVerification: Sendable {
    /// The database's chain.
    public var database: AuditChain.Verdict
    /// The checkpoints (database and any extra copies) against the database's chain and the box's key.
    public var checkpoints: CheckpointVerdict

    /// Whether everything checked is intact.
    public var intact: Bool {
        if case .broken = database { return false }
        if case .broken = checkpoints { return false }
        return true
    }

    /// Verifies the state directory's `web.sqlite` (read-only) with the public key `publicKey` (default: the
    /// directory's `identity.pub`), adding `extraCheckpoints` (copies kept elsewhere: a district broker's).
    /// - Throws: file, key and SQLite errors (nothing could be checked).
    public static func verify(
        stateDirectory: String, publicKey: Data? = nil, extraCheckpoints: [AuditCheckpoint] = []
    ) throws -> AuditVerification {
        let key = try publicKey ?? BoxIdentityKey.readPublicKey(path: stateDirectory + "/" + BoxIdentityKey.publicFile)
        var configuration = Configuration()
        configuration.readonly = true
        let queue = try DatabaseQueue(path: stateDirectory + "/web.sqlite", configuration: configuration)
        let (entries, stored) = try queue.read { db in
            (try AuditLog.entries(db), try AuditCheckpointer.checkpoints(db))
        }
        return AuditVerification(
            database: AuditChain.verify(entries),
            checkpoints: CheckpointVerdict.verify(stored + extraCheckpoints, entries: entries, publicKey: key))
    }

    /// Checkpoints from a file of JSON lines (one ``AuditCheckpoint`` each, as the bus carries them; e.g.
    /// `mosquitto_sub -v` output cut to the payload on a district broker).
    /// - Throws: file errors, or `DecodingError` naming the first line that is not a checkpoint.
    public static func checkpoints(filePath: String) throws -> [AuditCheckpoint] {
        let text = try String(contentsOfFile: filePath, encoding: .utf8)
        return try text.split(separator: "\n").filter { !$0.isEmpty }.map {
            try JSONDecoder().decode(AuditCheckpoint.self, from: Data($0.utf8))
        }
    }
}
