import Crypto
import Foundation
import GRDB
import HallwatchCore

/// A responder link as stored (the URL's token never is: only its SHA-256).
public struct ResponderLink: Codable, Sendable, Equatable {
    /// `rl-` and 16 hex digits: names the link in the API, the audit log and the banner. Not a secret.
    public var id: String
    /// Who it is for ("Engine 3", "Sgt. Ruiz"): 1–100 characters (Unicode scalars) of one line.
    public var label: String
    /// The camera group it shows (`cameraGroups:` of the web file); `nil`: every camera of the building.
    public var cameraGroup: String?
    /// Whether opening it needs the 6-digit PIN.
    public var hasPIN: Bool
    /// Who made it: a user name, or `dispatch` for the dispatch system's token.
    public var createdBy: String
    public var created: UTCMicros
    /// The end of every session it opened.
    public var expires: UTCMicros
    /// When it was revoked, if it was.
    public var revoked: UTCMicros?
    /// When too many wrong PINs locked it, if they did.
    public var locked: UTCMicros?
    /// Wrong PINs so far.
    public var failedPINs: Int
    /// Sessions it opened.
    public var openings: Int
    /// The newest opening.
    public var lastOpened: UTCMicros?

    /// `active`, `expired`, `revoked` or `locked`, at `now`.
    public func state(at now: UTCMicros) -> String {
        if revoked != nil { return "revoked" }
        if locked != nil { return "locked" }
        return now.micros >= expires.micros ? "expired" : "active"
    }
}

/// What a responder session may see, carried in the request's context by ``AccessMiddleware``.
public struct ResponderGrant: Sendable, Equatable {
    /// The link's id.
    public var link: String
    public var label: String
    public var cameraGroup: String?
    public var expires: UTCMicros
    /// The session's id hash (as ``WebSession/idHash``).
    public var sessionHash: String
}

/// Responder links in the web's database: emergency access to the map and live view without an account.
///
/// Steps:
/// 1. ``create(label:cameraGroup:duration:pin:by:)`` makes 32 random bytes for the URL (`/r/<token>`, 43
///    characters base64url; only their SHA-256 is stored), a link id, and — with a PIN — a random salt and
///    SHA-256(salt ‖ PIN).
/// 2. ``open(token:pin:address:userAgent:)`` (the responder's `POST /r/<token>`): a link that is unknown,
///    expired, revoked or locked is refused; a wrong PIN counts, and the ``maxFailedPINs``-th locks the link
///    (only an admin's new link helps then). Otherwise a session row is made (SHA-256 of a random id, the
///    address and user agent) and the id goes into the responder cookie.
/// 3. Each request finds the session through ``find(id:)``: refused once the link expired or was revoked,
///    whatever the session's age. ``SessionStore/stillLive(idHash:)`` does the same for live sockets and
///    event streams, so revoking ends them within a second or two.
/// 4. ``revoke(id:by:)`` marks the link: its sessions are refused from then on, each told why
///    (`responder.revoked`); they are deleted with the link when the table is pruned.
public struct ResponderLinks: Sendable {
    let database: WebDatabase
    let clocks: any Clocks
    /// Wrong PINs that lock a link.
    public static let maxFailedPINs = 5
    /// Shortest, default and longest life of a link.
    public static let minDuration: Duration = .seconds(15 * 60)
    public static let defaultDuration: Duration = .seconds(4 * 3600)
    public static let maxDuration: Duration = .seconds(12 * 3600)
    /// Most links kept (active or not); the oldest inactive ones go first.
    public static let maxLinks = 200
    /// Most sessions one link may open (each phone that opens it is one).
    public static let maxSessionsPerLink = 50
    /// A session counts as a current viewer while it made a request (or its page's feed checked it) this recently.
    public static let viewerWindow: Duration = .seconds(30)

    public init(database: WebDatabase, clocks: any Clocks) {
        self.database = database
        self.clocks = clocks
    }

    /// Why a link could not be made or opened. Codes: `responder.input` (a bad label, group, duration or
    /// PIN form), `responder.unknown` (no such link), `responder.expired`, `responder.revoked`,
    /// `responder.locked`, `responder.pin` (a wrong PIN; the link is not locked yet), `responder.full` (too
    /// many sessions on this link), `responder.group` (no such camera group).
    public struct Problem: HallwatchError {
        public var stableCode: String
        public var message: String
        public var description: String { "\(message) [\(stableCode)]" }
    }

    /// A made link and the secret only its maker ever sees.
    public struct Made: Sendable {
        public var link: ResponderLink
        /// The URL token (`/r/<token>`).
        public var token: String
    }

    /// Makes a link (step 1).
    /// - Parameters:
    ///   - pin: exactly 6 digits, or `nil` for none.
    /// - Throws: ``Problem`` `responder.input` for a label that is empty, over 100 characters or not one line, a
    ///   duration outside 15 min–12 h, or a PIN that is not 6 digits; GRDB errors.
    public func create(label: String, cameraGroup: String?, duration: Duration, pin: String?, by: String)
        async throws -> Made
    {
        guard !label.isEmpty, label.unicodeScalars.count <= 100,
            !label.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else { throw Problem(stableCode: "responder.input", message: "The label is 1 to 100 characters of one line.") }
        guard duration >= Self.minDuration, duration <= Self.maxDuration else {
            throw Problem(stableCode: "responder.input", message: "A link lasts 15 minutes to 12 hours.")
        }
        if let pin, !(pin.count == 6 && pin.allSatisfy({ $0.isASCII && $0.isNumber })) {
            throw Problem(stableCode: "responder.input", message: "The PIN is exactly 6 digits.")
        }
        let token = SessionStore.randomToken()
        let now = clocks.utcNow()
        let salt = pin == nil ? nil : SessionStore.randomToken()
        let link = ResponderLink(
            id: "rl-" + String(SessionStore.hash(SessionStore.randomToken()).prefix(16)), label: label,
            cameraGroup: cameraGroup, hasPIN: pin != nil, createdBy: by, created: now,
            expires: UTCMicros(now.micros + SessionStore.micros(duration)), revoked: nil, locked: nil, failedPINs: 0,
            openings: 0, lastOpened: nil)
        try await database.queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO responderLink (id, tokenHash, label, cameraGroup, pinSalt, pinHash, createdBy,
                      createdMicros, expiresMicros) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    link.id, SessionStore.hash(token), label, cameraGroup, salt,
                    salt.flatMap { s in pin.map { Self.pinHash(salt: s, pin: $0) } }, by, now.micros,
                    link.expires.micros,
                ])
            // Bounded table: the oldest links that can no longer be used go first.
            try db.execute(
                sql: """
                    DELETE FROM responderSession WHERE link IN (SELECT id FROM responderLink
                      WHERE (revokedMicros IS NOT NULL OR expiresMicros <= ?) ORDER BY createdMicros
                      LIMIT max(0, (SELECT COUNT(*) FROM responderLink) - ?));
                    DELETE FROM responderLink WHERE id IN (SELECT id FROM responderLink
                      WHERE (revokedMicros IS NOT NULL OR expiresMicros <= ?) ORDER BY createdMicros
                      LIMIT max(0, (SELECT COUNT(*) FROM responderLink) - ?));
                    """, arguments: [now.micros, Self.maxLinks, now.micros, Self.maxLinks])
        }
        return Made(link: link, token: token)
    }

    static func pinHash(salt: String, pin: String) -> String { SessionStore.hash(salt + ":" + pin) }

    /// Every link, newest first.
    public func list() async throws -> [ResponderLink] {
        try await database.queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM responderLink ORDER BY createdMicros DESC").map(Self.link)
        }
    }

    /// The link with `id`, if any.
    public func link(id: String) async throws -> ResponderLink? {
        try await database.queue.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM responderLink WHERE id = ?", arguments: [id]).map(Self.link)
        }
    }

    /// The link the URL token names (unknown tokens: `nil`). Bounded: tokens longer than 64 are unknown.
    public func link(token: String) async throws -> ResponderLink? {
        guard token.utf8.count <= 64 else { return nil }
        return try await database.queue.read { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM responderLink WHERE tokenHash = ?", arguments: [SessionStore.hash(token)]
            ).map(Self.link)
        }
    }

    static func link(_ row: Row) -> ResponderLink {
        func time(_ column: String) -> UTCMicros? { (row[column] as Int64?).map(UTCMicros.init) }
        return ResponderLink(
            id: row["id"], label: row["label"], cameraGroup: row["cameraGroup"],
            hasPIN: (row["pinHash"] as String?) != nil, createdBy: row["createdBy"],
            created: UTCMicros(row["createdMicros"]), expires: UTCMicros(row["expiresMicros"]),
            revoked: time("revokedMicros"), locked: time("lockedMicros"), failedPINs: row["failedPINs"],
            openings: row["openings"], lastOpened: time("lastOpenedMicros"))
    }

    /// What an opening gives: the cookie's session id and the link (and, for a refusal, whether it just
    /// locked the link).
    public enum Opening: Sendable {
        case opened(sessionID: String, link: ResponderLink)
        case refused(Problem, link: ResponderLink?, justLocked: Bool)
    }

    /// Opens a session on the link `token` names (step 2).
    public func open(token: String, pin: String?, address: String, userAgent: String) async throws -> Opening {
        let now = clocks.utcNow()
        guard token.utf8.count <= 64 else {
            return .refused(
                Problem(stableCode: "responder.unknown", message: "No such link."), link: nil, justLocked: false)
        }
        let id = SessionStore.randomToken()
        return try await database.queue.write { db -> Opening in
            guard
                let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM responderLink WHERE tokenHash = ?", arguments: [SessionStore.hash(token)])
            else {
                return .refused(
                    Problem(stableCode: "responder.unknown", message: "No such link."), link: nil, justLocked: false)
            }
            var link = Self.link(row)
            if let refusal = Self.refusal(link, now: now) { return .refused(refusal, link: link, justLocked: false) }
            if let salt: String = row["pinSalt"], let expected: String = row["pinHash"] {
                let given = pin ?? ""
                guard AccessMiddleware.constantTimeEqual(Self.pinHash(salt: salt, pin: given), expected) else {
                    link.failedPINs += 1
                    let locks = link.failedPINs >= Self.maxFailedPINs
                    try db.execute(
                        sql: "UPDATE responderLink SET failedPINs = ?, lockedMicros = ? WHERE id = ?",
                        arguments: [link.failedPINs, locks ? now.micros : nil, link.id])
                    if locks { link.locked = now }
                    let left = Self.maxFailedPINs - link.failedPINs
                    return .refused(
                        locks
                            ? Problem(
                                stableCode: "responder.locked",
                                message: "Too many wrong PINs: this link is locked. Ask for a new one.")
                            : Problem(
                                stableCode: "responder.pin",
                                message: "Wrong PIN. \(left) attempt\(left == 1 ? "" : "s") left."),
                        link: link, justLocked: locks)
                }
            }
            let sessions =
                try Int.fetchOne(
                    db, sql: "SELECT COUNT(*) FROM responderSession WHERE link = ?", arguments: [link.id]) ?? 0
            guard sessions < Self.maxSessionsPerLink else {
                return .refused(
                    Problem(stableCode: "responder.full", message: "This link has opened as many sessions as it may."),
                    link: link, justLocked: false)
            }
            try db.execute(
                sql: "INSERT INTO responderSession VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    SessionStore.hash(id), link.id, SessionStore.randomToken(), address, String(userAgent.prefix(512)),
                    now.micros, now.micros,
                ])
            link.openings += 1
            link.lastOpened = now
            link.failedPINs = 0
            try db.execute(
                sql:
                    "UPDATE responderLink SET openings = openings + 1, lastOpenedMicros = ?, failedPINs = 0 WHERE id = ?",
                arguments: [now.micros, link.id])
            return .opened(sessionID: id, link: link)
        }
    }

    /// Why `link` cannot be used at `now`, or `nil` when it can.
    static func refusal(_ link: ResponderLink, now: UTCMicros) -> Problem? {
        switch link.state(at: now) {
        case "revoked": Problem(stableCode: "responder.revoked", message: "This link was revoked.")
        case "locked":
            Problem(
                stableCode: "responder.locked", message: "Too many wrong PINs: this link is locked. Ask for a new one.")
        case "expired": Problem(stableCode: "responder.expired", message: "This link has expired.")
        default: nil
        }
    }

    /// The session for the responder cookie's `id` (step 3): its grant, or the problem that ends it (the
    /// link expired or was revoked; an unknown session: `responder.unknown`). Marks the session seen.
    public func find(id: String) async throws -> Result<(ResponderGrant, csrf: String), Problem> {
        guard id.utf8.count <= 64 else {
            return .failure(Problem(stableCode: "responder.unknown", message: "This responder session has ended."))
        }
        let idHash = SessionStore.hash(id)
        let now = clocks.utcNow()
        return try await database.queue.write { db in
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT l.*, s.csrfToken AS sessionCSRF FROM responderSession s JOIN responderLink l
                          ON s.link = l.id WHERE s.idHash = ?
                        """, arguments: [idHash])
            else {
                return .failure(
                    Problem(stableCode: "responder.unknown", message: "This responder session has ended."))
            }
            let link = Self.link(row)
            if let refusal = Self.refusal(link, now: now) { return .failure(refusal) }
            try db.execute(
                sql: "UPDATE responderSession SET lastSeenMicros = ? WHERE idHash = ?", arguments: [now.micros, idHash])
            let csrf: String = row["sessionCSRF"]
            let grant = ResponderGrant(
                link: link.id, label: link.label, cameraGroup: link.cameraGroup, expires: link.expires,
                sessionHash: idHash)
            return .success((grant, csrf: csrf))
        }
    }

    /// Revokes the link (step 4): every session it opened ends (its next request, live socket check or
    /// event-stream check is refused with `responder.revoked`). `false` when there is no such link or it was
    /// already revoked.
    public func revoke(id: String, by: String) async throws -> Bool {
        let now = clocks.utcNow().micros
        return try await database.queue.write { db in
            try db.execute(
                sql: "UPDATE responderLink SET revokedMicros = ?, revokedBy = ? WHERE id = ? AND revokedMicros IS NULL",
                arguments: [now, by, id])
            return db.changesCount > 0
        }
    }

    /// Current viewers per link: its sessions seen within ``viewerWindow``.
    public func viewers() async throws -> [String: Int] {
        let since = clocks.utcNow().micros - SessionStore.micros(Self.viewerWindow)
        return try await database.queue.read { db in
            var out: [String: Int] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT link, COUNT(*) AS n FROM responderSession WHERE lastSeenMicros >= ? GROUP BY link",
                arguments: [since])
            {
                out[row["link"]] = row["n"]
            }
            return out
        }
    }

    /// The database tables (``WebDatabase``'s migration `v4-responder-links`).
    static let schema = """
        CREATE TABLE responderLink (
            id TEXT PRIMARY KEY NOT NULL,
            tokenHash TEXT NOT NULL UNIQUE,
            label TEXT NOT NULL,
            cameraGroup TEXT,
            pinSalt TEXT,
            pinHash TEXT,
            createdBy TEXT NOT NULL,
            createdMicros INTEGER NOT NULL,
            expiresMicros INTEGER NOT NULL,
            revokedMicros INTEGER,
            revokedBy TEXT,
            lockedMicros INTEGER,
            failedPINs INTEGER NOT NULL DEFAULT 0,
            openings INTEGER NOT NULL DEFAULT 0,
            lastOpenedMicros INTEGER
        );
        CREATE TABLE responderSession (
            idHash TEXT PRIMARY KEY NOT NULL,
            link TEXT NOT NULL REFERENCES responderLink(id),
            csrfToken TEXT NOT NULL,
            address TEXT NOT NULL,
            userAgent TEXT NOT NULL,
            createdMicros INTEGER NOT NULL,
            lastSeenMicros INTEGER NOT NULL
        );
        CREATE INDEX responderSession_link ON responderSession(link);
        """
}

extension ResponderLinks {
    /// Whether the responder session `idHash` is still live (its link usable), marking it seen: the map's
    /// event stream and each live socket check it every second or two, which is what the banner's
    /// "current viewers" counts.
    func stillLive(idHash: String) async throws -> Bool {
        let now = clocks.utcNow().micros
        return try await database.queue.write { db in
            try db.execute(
                sql: """
                    UPDATE responderSession SET lastSeenMicros = ? WHERE idHash = ? AND link IN (SELECT id FROM
                      responderLink WHERE revokedMicros IS NULL AND lockedMicros IS NULL AND expiresMicros > ?)
                    """, arguments: [now, idHash, now])
            return db.changesCount > 0
        }
    }
}
