import GRDB

/// The live grid's layout each user chose last — 1, 2×2, 3×3 or 4×4 tiles (`/live`) — kept in the web's
/// database so it follows the user to another browser. Chosen with `POST /live/layout` (a form with the
/// session's CSRF token), read when `/live` is drawn.
struct LiveLayouts: Sendable {
    let database: WebDatabase
    /// Tiles per side the grid offers.
    static let sizes = [1, 2, 3, 4]
    /// A user who never chose: 2×2.
    static let defaultSize = 2

    /// The table, one row per user who chose (registered in ``WebDatabase``'s migrator).
    static func register(_ m: inout DatabaseMigrator) {
        m.registerMigration("v4-live-layouts") { db in
            try db.execute(sql: "CREATE TABLE liveLayout (user TEXT PRIMARY KEY NOT NULL, size INTEGER NOT NULL)")
        }
    }

    /// Tiles per side `user` chose last, or ``defaultSize``.
    /// - Throws: GRDB's `DatabaseError`.
    func size(for user: String) async throws -> Int {
        let stored = try await database.queue.read { db in
            try Int.fetchOne(db, sql: "SELECT size FROM liveLayout WHERE user = ?", arguments: [user])
        }
        return stored.flatMap { Self.sizes.contains($0) ? $0 : nil } ?? Self.defaultSize
    }

    /// Saves `size` (one of ``sizes``; anything else is ignored) as `user`'s layout.
    /// - Throws: GRDB's `DatabaseError`.
    func save(_ size: Int, for user: String) async throws {
        guard Self.sizes.contains(size) else { return }
        try await database.queue.write { db in
            try db.execute(
                sql:
                    "INSERT INTO liveLayout (user, size) VALUES (?, ?) ON CONFLICT(user) DO UPDATE SET size = excluded.size",
                arguments: [user, size])
        }
    }
}
