import Foundation

/// An audit entry that a process without the audit log asks its owner, `hallwatch-web`, to append: what
/// `hallwatchctl export` writes (`export.file`, `export.bundle`), so that video leaving the box through the CLI is
/// in the same hash-chained log as the web's exports.
///
/// Retained on ``BusTopics/auditRequest(_:)``, one topic per request id, like hold requests: the web appends the
/// entry (actor `<user> (hallwatchctl)`: the user is the one the CLI reports, a local process in the box's group,
/// which is who can open the bus socket), remembers the id so a redelivery is not audited twice, then clears the
/// topic (an empty retained message). A request made while the web is down waits on the broker until it runs.
public struct AuditRequest: Codable, Sendable, Equatable {
    /// The request's id: 16 lower-case hex digits, also the topic's last level.
    public var id: String
    /// The Unix user running the command (`$SUDO_USER (via sudo)` through sudo). At most 1024 bytes in the log.
    public var user: String
    /// The audited action, `export.file` or `export.bundle` (``actions``).
    public var action: String
    /// The cameras, comma-separated.
    public var object: String
    /// The range, the output path and, for a bundle, the case and the reason.
    public var details: String
    /// When the command asked (box UTC).
    public var at: UTCMicros

    /// The actions a request may name; the web refuses any other (a process on the bus cannot forge a login).
    public static let actions: Set<String> = ["export.file", "export.bundle"]

    /// A request; `id` is made when not given.
    public init(
        id: String = AuditRequest.newID(), user: String, action: String, object: String, details: String,
        at: UTCMicros
    ) {
        self.id = id
        self.user = user
        self.action = action
        self.object = object
        self.details = details
        self.at = at
    }

    /// 16 random lower-case hex digits.
    public static func newID() -> String {
        (0..<8).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    /// Whether `id` is 16 lower-case hex digits (the web ignores a topic that is not).
    public static func isValidID(_ id: String) -> Bool {
        id.utf8.count == 16 && id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}

extension BusTopics {
    /// Retained ``AuditRequest`` number `id`; `hallwatch-web` appends it to the audit log and clears the topic.
    public func auditRequest(_ id: String) -> String { "\(root)/audit/request/\(id)" }
    /// Wildcard for every audit request.
    public var allAuditRequests: String { "\(root)/audit/request/+" }
}
