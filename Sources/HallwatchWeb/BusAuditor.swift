import Foundation
import GRDB
import HallwatchBus
import HallwatchCore
import Logging

/// Puts into the audit log what other processes publish that a court would ask about: the pruner's
/// deletions (`recording.deleted`), evidence holds added and released (`hold.added`, `hold.released`),
/// and recording disks changing health (`disk.health`, e.g. `healthy → failed`).
///
/// Deletions are not retained on the bus: one made while `hallwatch-web` is down is only in the disk's
/// `deletions.log` and `deletion` table (which stay the primary record). Holds and disk states are retained;
/// the last audited state of each is kept in the `auditCursor` table, so a restart audits only what changed.
/// Steps per message: (1) compare with the cursor, (2) append the audit entry, (3) move the cursor. A crash
/// between 2 and 3 audits the change twice — never zero times.
public final class BusAuditor: Sendable {
    let audit: AuditLog
    let database: WebDatabase
    let topics: BusTopics

    public init(audit: AuditLog, database: WebDatabase, topics: BusTopics) {
        self.audit = audit
        self.database = database
        self.topics = topics
    }

    /// Subscribes on `bus` and audits until cancelled. A message that cannot be audited is logged, not fatal.
    public func run(bus: BusClient, logger: Logger) async {
        let streams = [bus.subscribe(topics.deletions), bus.subscribe(topics.holds), bus.subscribe(topics.allDisks)]
        await withTaskGroup(of: Void.self) { group in
            for stream in streams {
                group.addTask { [self] in
                    for await m in stream {
                        do { try await handle(m) } catch {
                            logger.error(
                                "cannot audit a bus message", metadata: ["topic": "\(m.topic)", "error": "\(error)"])
                        }
                    }
                }
            }
        }
    }

    /// Audits one message (tests call it directly).
    public func handle(_ m: BusMessage) async throws {
        guard !m.payload.isEmpty else { return }
        if m.topic == topics.deletions {
            let d = try m.decode(DeletionRecord.self)
            try await audit.record(
                actor: "pruner", address: "-", action: "recording.deleted", object: d.camera.rawValue,
                details:
                    "\(d.from.iso8601)–\(d.to.iso8601), \(d.bytes) bytes, \(d.disk) slot \(d.slot), \(d.rule): \(d.detail)"
            )
        } else if m.topic == topics.holds {
            for h in try m.decode(EvidenceHoldList.self).holds {
                let state = h.releasedAt == nil ? "active" : "released"
                let before = try await cursor("hold:\(h.id)")
                guard before != state else { continue }
                let details = "\(h.camera) \(h.from.iso8601)–\(h.to.iso8601), case \(h.caseID): \(h.reason)"
                if before == nil {
                    try await audit.record(
                        actor: "hold", address: "-", action: "hold.added", object: h.id, details: details)
                }
                if state == "released" {
                    try await audit.record(
                        actor: "hold", address: "-", action: "hold.released", object: h.id, details: details)
                }
                try await setCursor("hold:\(h.id)", state)
            }
        } else if let d = try? m.decode(DiskState.self), m.topic == topics.disk(d.disk) {
            let before = try await cursor("disk:\(d.disk)")
            let now = d.health.rawValue
            // A disk first seen healthy is the normal case, not an event; anything else is.
            guard before != now, before != nil || d.health != .healthy else {
                if before == nil { try await setCursor("disk:\(d.disk)", now) }
                return
            }
            try await audit.record(
                actor: "recorder", address: "-", action: "disk.health", object: d.disk,
                details: "\(before ?? "unknown") → \(now)\(d.reason.map { ": \($0.code) \($0.message)" } ?? "")")
            try await setCursor("disk:\(d.disk)", now)
        }
    }

    func cursor(_ key: String) async throws -> String? {
        try await database.queue.read { db in
            try String.fetchOne(db, sql: "SELECT value FROM auditCursor WHERE key = ?", arguments: [key])
        }
    }

    func setCursor(_ key: String, _ value: String) async throws {
        try await database.queue.write { db in
            try db.execute(
                sql:
                    "INSERT INTO auditCursor (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                arguments: [key, value])
        }
    }
}
