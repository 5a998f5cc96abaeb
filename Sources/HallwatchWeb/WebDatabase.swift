import Foundation
import GRDB

/// The web's own SQLite database, `<stateDirectory>/web.sqlite` (WAL): sessions, the audit log and its signed checkpoints,
/// responder links, saved layouts and the streams' state history (``CameraHistory``). Never a
/// recording disk's index: the web reads recordings through HallwatchStorage, read-only.
public struct WebDatabase: Sendable {
    /// The connection queue (one writer; GRDB serialises).
    public let queue: DatabaseQueue

    /// Opens (creating and migrating) the database at `path`; `":memory:"` for tests.
    /// - Throws: GRDB's `DatabaseError` when the file cannot be opened or migrated.
    public init(path: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        if path == ":memory:" {
            queue = try DatabaseQueue(configuration: configuration)
        } else {
            queue = try DatabaseQueue(path: path, configuration: configuration)
        }
        try Self.migrator.migrate(queue)
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1") { db in
            // Sessions: the id is never stored, only its SHA-256 (a copy of the database is not a set of logins).
            try db.execute(
                sql: """
                    CREATE TABLE session (
                        idHash TEXT PRIMARY KEY NOT NULL,
                        user TEXT NOT NULL,
                        csrfToken TEXT NOT NULL,
                        address TEXT NOT NULL,
                        createdMicros INTEGER NOT NULL,
                        lastSeenMicros INTEGER NOT NULL
                    );
                    CREATE INDEX session_user ON session(user);
                    CREATE TABLE audit (
                        seq INTEGER PRIMARY KEY NOT NULL,
                        timeMicros INTEGER NOT NULL,
                        actor TEXT NOT NULL,
                        address TEXT NOT NULL,
                        action TEXT NOT NULL,
                        object TEXT NOT NULL,
                        details TEXT NOT NULL,
                        previousHash TEXT NOT NULL,
                        hash TEXT NOT NULL
                    );
                    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
                        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
                        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
                    """)
        }
        m.registerMigration("v2-bus-audit-cursor") { db in
            // What ``BusAuditor`` last audited per hold and per disk, so a restart does not audit it again.
            try db.execute(sql: "CREATE TABLE auditCursor (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL)")
        }
        m.registerMigration("v3-audit-checkpoints") { db in
            // Signed heads of the audit chain (``AuditCheckpoint``), append-only like the chain itself.
            try db.execute(
                sql: """
                    CREATE TABLE auditCheckpoint (
                        number INTEGER PRIMARY KEY NOT NULL,
                        box TEXT NOT NULL,
                        seq INTEGER NOT NULL,
                        head TEXT NOT NULL,
                        timeMicros INTEGER NOT NULL,
                        publicKey TEXT NOT NULL,
                        signature TEXT NOT NULL
                    );
                    CREATE TRIGGER auditCheckpoint_no_update BEFORE UPDATE ON auditCheckpoint
                        BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
                    CREATE TRIGGER auditCheckpoint_no_delete BEFORE DELETE ON auditCheckpoint
                        BEGIN SELECT RAISE(ABORT, 'audit checkpoints are append-only'); END;
                    """)
        }
        m.registerMigration("v4-responder-links") { db in
            // Responder links and the sessions they opened (``ResponderLinks``).
            try db.execute(sql: ResponderLinks.schema)
        }
        LiveLayouts.register(&m)
        CameraHistory.register(&m)
        return m
    }
}
