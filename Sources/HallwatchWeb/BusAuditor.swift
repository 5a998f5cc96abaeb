import Foundation
import GRDB
import HallwatchBus
import HallwatchCore
import Logging

/// Puts into the audit log what other processes publish that a court would ask about: the pruner's
/// deletions (`recording.deleted`), evidence holds added and released (`hold.added`, `hold.released`),
/// recording disks changing health (`disk.health`, e.g. `healthy → failed`), and the exports `hallwatchctl`
/// writes (``HallwatchCore/AuditRequest``: `export.file`, `export.bundle`).
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
        let streams = [
            bus.subscribe(topics.deletions), bus.subscribe(topics.holds), bus.subscribe(topics.allDisks),
            bus.subscribe(topics.allAuditRequests),
        ]
        await withTaskGroup(of: Void.self) { group in
            for stream in streams {
                group.addTask { [self] in
                    for await m in stream {
                        do {
                            // An audit request, once in the log, is cleared from the broker (empty retained).
                            if try await handle(m) { try bus.publish(topic: m.topic, payload: [], retain: true) }
                        } catch {
                            logger.error(
                                "cannot audit a bus message", metadata: ["topic": "\(m.topic)", "error": "\(error)"])
                        }
                    }
                }
            }
        }
    }

    /// Audits one message (tests call it directly).
    /// - Returns: whether it was an ``AuditRequest`` now in the log (or already in it), whose retained topic
    ///   the caller clears.
    @discardableResult
    public func handle(_ m: BusMessage) async throws -> Bool {
        guard !m.payload.isEmpty else { return false }
        if m.topic.hasPrefix(topics.auditRequest("")) {
            return try await handleAuditRequest(m)
        } else if m.topic == topics.deletions {
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
                // The object is the camera, as for every entry about video, so a user limited to camera groups
                // never sees another camera's hold (AuditPage.scoped); the hold's id leads the details.
                let details = "hold \(h.id): \(h.from.iso8601)–\(h.to.iso8601), case \(h.caseID): \(h.reason)"
                let camera = "\(h.camera)"
                if before == nil {
                    try await audit.record(
                        actor: "hold", address: "-", action: "hold.added", object: camera, details: details)
                }
                if state == "released" {
                    try await audit.record(
                        actor: "hold", address: "-", action: "hold.released", object: camera, details: details)
                }
                try await setCursor("hold:\(h.id)", state)
            }
        } else if let d = try? m.decode(DiskState.self), m.topic == topics.disk(d.disk) {
            let before = try await cursor("disk:\(d.disk)")
            let now = d.health.rawValue
            // A disk first seen healthy is the normal case, not an event; anything else is.
            guard before != now, before != nil || d.health != .healthy else {
                if before == nil { try await setCursor("disk:\(d.disk)", now) }
                return false
            }
            try await audit.record(
                actor: "recorder", address: "-", action: "disk.health", object: d.disk,
                details: "\(before ?? "unknown") → \(now)\(d.reason.map { ": \($0.code) \($0.message)" } ?? "")")
            try await setCursor("disk:\(d.disk)", now)
        }
        return false
    }

    /// An ``AuditRequest`` (`hallwatchctl export`): appended once, by its id (the cursor remembers it, so a
    /// redelivery after a crash between the entry and the clearing is not audited twice). A request whose id
    /// does not match its topic, or naming an action outside ``AuditRequest/actions``, is refused.
    /// - Throws: `DecodingError` for a payload that is not a request; ``ErrorEvent`` `audit.request` for a refused one.
    func handleAuditRequest(_ m: BusMessage) async throws -> Bool {
        let r = try m.decode(AuditRequest.self)
        guard AuditRequest.isValidID(r.id), m.topic == topics.auditRequest(r.id),
            AuditRequest.actions.contains(r.action)
        else {
            throw ErrorEvent(
                code: "audit.request", message: "refused an audit request on \(m.topic): not an export of this box")
        }
        guard try await cursor("audit-request:\(r.id)") == nil else { return true }
        try await audit.record(
            actor: "\(r.user) (hallwatchctl)", address: "-", action: r.action, object: r.object,
            details: "\(r.details) (asked at \(r.at.iso8601), request \(r.id))")
        try await setCursor("audit-request:\(r.id)", "recorded")
        return true
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
