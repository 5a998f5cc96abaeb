import Crypto
import Foundation
import GRDB
import HallwatchCore

/// A signed-in session as the server knows it.
public struct WebSession: Sendable, Equatable {
    /// SHA-256 of the session id (hex); the id itself is only in the browser's cookie.
    public var idHash: String
    /// The user's sign-in name.
    public var user: String
    /// The per-session CSRF token (base64url, 32 random bytes), required on every state-changing request.
    public var csrfToken: String
    /// Address the session was made from.
    public var address: String
    /// Sign-in time: the absolute lifetime counts from here.
    public var created: UTCMicros
    /// Last request: the idle timeout counts from here.
    public var lastSeen: UTCMicros
}

/// Sessions in the web's database: opaque random ids, stored hashed, with an idle timeout and an absolute
/// lifetime measured on an injected clock (OWASP Session Management Cheat Sheet).
///
/// Steps:
/// 1. Login makes 32 random bytes (the id, base64url in the cookie) and 32 more (the CSRF token); the row keeps
///    SHA-256(id), the user, the token, the address and the times.
/// 2. Each request hashes the cookie's id and looks the row up. It is refused (and deleted) when
///    `now - lastSeen >= idle` or `now - created >= lifetime`; otherwise `lastSeen` becomes `now`.
/// 3. Logout deletes the row: the cookie is worthless from then on, whatever the browser keeps.
/// Sessions survive a restart of the process (the row is in SQLite).
public struct SessionStore: Sendable {
    let database: WebDatabase
    let clocks: any Clocks
    /// Idle timeout.
    public let idle: Duration
    /// Absolute lifetime.
    public let lifetime: Duration
    /// Most live sessions per user: the oldest goes when a login would exceed it (bounded table).
    public static let maxSessionsPerUser = 20

    public init(database: WebDatabase, clocks: any Clocks, idle: Duration, lifetime: Duration) {
        self.database = database
        self.clocks = clocks
        self.idle = idle
        self.lifetime = lifetime
    }

    /// Creates a session for `user`; returns the id for the cookie and the stored session.
    public func create(user: String, address: String) async throws -> (id: String, session: WebSession) {
        let id = Self.randomToken()
        let now = clocks.utcNow()
        let session = WebSession(
            idHash: Self.hash(id), user: user, csrfToken: Self.randomToken(), address: address, created: now,
            lastSeen: now)
        try await database.queue.write { db in
            try db.execute(
                sql: "INSERT INTO session VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [
                    session.idHash, user, session.csrfToken, address, now.micros, now.micros,
                ])
            try db.execute(
                sql: """
                    DELETE FROM session WHERE user = ? AND idHash NOT IN
                      (SELECT idHash FROM session WHERE user = ? ORDER BY createdMicros DESC LIMIT ?)
                    """, arguments: [user, user, Self.maxSessionsPerUser])
        }
        return (id, session)
    }

    /// The live session for the cookie value `id`, its `lastSeen` moved to now; `nil` when unknown or expired
    /// (an expired one is deleted). `touch: false` checks without counting as activity.
    public func find(id: String, touch: Bool = true) async throws -> WebSession? {
        guard id.utf8.count <= 64 else { return nil }
        let idHash = Self.hash(id)
        let now = clocks.utcNow()
        let idleMicros = Self.micros(idle)
        let lifetimeMicros = Self.micros(lifetime)
        return try await database.queue.write { db -> WebSession? in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM session WHERE idHash = ?", arguments: [idHash])
            else { return nil }
            var s = WebSession(
                idHash: row["idHash"], user: row["user"], csrfToken: row["csrfToken"], address: row["address"],
                created: UTCMicros(row["createdMicros"]), lastSeen: UTCMicros(row["lastSeenMicros"]))
            if now.micros - s.lastSeen.micros >= idleMicros || now.micros - s.created.micros >= lifetimeMicros {
                try db.execute(sql: "DELETE FROM session WHERE idHash = ?", arguments: [idHash])
                return nil
            }
            if touch {
                s.lastSeen = now
                try db.execute(
                    sql: "UPDATE session SET lastSeenMicros = ? WHERE idHash = ?", arguments: [now.micros, idHash])
            }
            return s
        }
    }

    /// Ends the session (logout). Idempotent.
    public func end(idHash: String) async throws {
        try await database.queue.write { db in
            try db.execute(sql: "DELETE FROM session WHERE idHash = ?", arguments: [idHash])
        }
    }

    /// Deletes every expired session; returns how many.
    @discardableResult public func purgeExpired() async throws -> Int {
        let now = clocks.utcNow().micros
        let idleMicros = Self.micros(idle)
        let lifetimeMicros = Self.micros(lifetime)
        return try await database.queue.write { db in
            try db.execute(
                sql: "DELETE FROM session WHERE ? - lastSeenMicros >= ? OR ? - createdMicros >= ?",
                arguments: [now, idleMicros, now, lifetimeMicros])
            return db.changesCount
        }
    }

    /// 32 bytes from the system's CSPRNG, base64url without padding (43 characters).
    public static func randomToken() -> String {
        var g = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }
        return Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// Hex SHA-256 of `text`'s UTF-8.
    public static func hash(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func micros(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000
    }
}
