import Foundation
import GRDB
import HallwatchBus
import HallwatchCore
import HallwatchStatus
import Testing
import X509

@testable import HallwatchWeb

func temporaryDirectory(_ name: String = #function) throws -> String {
    let path =
        FileManager.default.temporaryDirectory.path
        + "/hw-web-\(name.filter(\.isLetter))-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Suite("hallwatch-web state: audit chain, configuration, TLS identity")
struct WebStateTests {
    @Test("an altered, removed or re-hashed audit entry is named by verify; the table refuses updates")
    func auditTamper() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clocks = TestClocks()
        let database = try WebDatabase(path: dir + "/web.sqlite")
        let log = AuditLog(database: database, clocks: clocks, filePath: dir + "/audit.log")
        for i in 1...5 {
            clocks.advance(seconds: 1)
            try await log.record(actor: "admin", address: "10.0.0.\(i)", action: "camera.view", object: "lobby")
        }
        #expect(try AuditLog.verify(databasePath: dir + "/web.sqlite").description.hasPrefix("intact: 5 entries"))
        #expect(try AuditLog.verify(filePath: dir + "/audit.log").description.hasPrefix("intact: 5 entries"))

        // The triggers refuse an ordinary edit.
        await #expect(throws: DatabaseError.self) {
            try await database.queue.write { db in try db.execute(sql: "UPDATE audit SET actor = 'x' WHERE seq = 3") }
        }
        // Someone who drops the trigger and edits entry 3 is still caught, by number.
        try await database.queue.write { db in
            try db.execute(sql: "DROP TRIGGER audit_no_update")
            try db.execute(sql: "UPDATE audit SET object = 'gym' WHERE seq = 3")
        }
        #expect(
            try AuditLog.verify(databasePath: dir + "/web.sqlite")
                == .broken(seq: 3, reason: "its content does not match its hash"))

        // Re-hashing the edited entry breaks the next link instead.
        var entries = try await log.entries()
        let e = entries[2]
        entries[2].hash = AuditChain.hash(
            seq: e.seq, timeMicros: e.timeMicros, actor: e.actor, address: e.address, action: e.action,
            object: e.object, details: e.details, previousHash: e.previousHash)
        #expect(AuditChain.verify(entries) == .broken(seq: 4, reason: "its previous hash is not the hash of entry 3"))
        // A removed entry.
        entries.remove(at: 1)
        #expect(
            AuditChain.verify(entries) == .broken(seq: 3, reason: "expected sequence number 2 (an entry is missing)"))

        // The file: one edited line.
        var lines = try String(contentsOfFile: dir + "/audit.log", encoding: .utf8).split(separator: "\n").map(
            String.init)
        lines[1] = lines[1].replacingOccurrences(of: "10.0.0.2", with: "10.0.0.9")
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/audit.log", atomically: true, encoding: .utf8)
        #expect(
            try AuditLog.verify(filePath: dir + "/audit.log")
                == .broken(seq: 2, reason: "its content does not match its hash"))
    }

    @Test("audit fields are bounded and control characters cannot forge lines")
    func auditBounds() async throws {
        let log = AuditLog(database: try WebDatabase(path: ":memory:"), clocks: TestClocks(), filePath: nil)
        let e = try await log.record(
            actor: "a\nb", address: "-", action: "login.failure", object: String(repeating: "é", count: 5000))
        #expect(e.actor == "a b")
        #expect(e.object.utf8.count <= AuditLog.maxFieldBytes)
    }

    @Test("the web file: users, roles, groups; problems reported with lines, all at once")
    func webConfig() throws {
        let ok = try WebConfigLoader.parse(
            """
            web:
              httpsPort: 8443
              httpRedirectPort: 8080
              sessionIdleTimeout: 10m
            cameraGroups:
              parking: [lot-north, lot-south]
            users:
              - name: facilities
                displayName: Facilities
                passwordHash: "\(testHash)"
                role: viewer
                cameraGroups: [parking]
            """)
        #expect(ok.web.httpsPort == 8443 && ok.web.httpRedirectPort == 8080)
        #expect(ok.web.sessionIdleTimeout == .seconds(600))
        #expect(ok.users.first?.role == .viewer)
        #expect(ok.visibleCameras(for: ok.users[0]) == Set(["lot-north", "lot-south"].compactMap(CameraID.init)))
        #expect(try WebConfigLoader.parse("").users.isEmpty)

        do {
            _ = try WebConfigLoader.parse(
                """
                web:
                  httpsPort: 99999
                  colour: blue
                users:
                  - name: admin
                    passwordHash: hunter2
                    role: viewer
                  - name: office
                    passwordHash: "\(testHash)"
                    role: superuser
                  - name: bob
                    passwordHash: "\(testHash)"
                    role: viewer
                    cameraGroups: [nowhere]
                """, file: "web.yaml")
            Issue.record("accepted a bad file")
        } catch let e as WebConfigError {
            let text = e.description
            #expect(text.contains("web.yaml:2: web.httpsPort"))
            #expect(text.contains("web.yaml:3: unknown key 'colour'"))
            #expect(text.contains("not a bcrypt hash"))
            #expect(text.contains("role is one of viewer, building-admin, district-admin"))
            #expect(text.contains("no camera group 'nowhere'"))
            #expect(!text.contains("hunter2"))
        }
    }

    @Test("password hashes: bcrypt, bounded, verify")
    func passwords() throws {
        #expect(throws: PasswordHashing.Refusal.tooShort) { try PasswordHashing.hash("short", cost: 4) }
        #expect(throws: PasswordHashing.Refusal.tooLong) {
            try PasswordHashing.hash(String(repeating: "x", count: 73), cost: 4)
        }
        let hash = try PasswordHashing.hash("a long enough one", cost: 4)
        #expect(PasswordHashing.isBcryptHash(hash))
        #expect(PasswordHashing.verify("a long enough one", hash: hash))
        #expect(!PasswordHashing.verify("a long enough two", hash: hash))
        #expect(!PasswordHashing.verify("a long enough one", hash: "not a hash"))
        // A fresh user's report: bcrypt stops at a NUL, so "…\0anything" signed in; a "\r\n" was hashed in.
        #expect(!PasswordHashing.verify("a long enough one\u{0}anything", hash: hash))
        #expect(throws: PasswordHashing.Refusal.controlCharacter) { try PasswordHashing.hash("abcdefghijk\u{0}xyz") }
        #expect(throws: PasswordHashing.Refusal.controlCharacter) { try PasswordHashing.hash("abcdefghijk\r\n") }
    }

    @Test("the TLS key is made once (0600), the self-signed certificate names the box, kept across restarts")
    func tlsIdentity() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let names = TLSIdentity.names(hostName: "hallwatch-lincoln", extra: ["10.20.30.40", "hallwatch-lincoln"])
        #expect(names == ["hallwatch-lincoln", "10.20.30.40"])
        let first = try TLSIdentity.load(directory: dir, names: names, now: Date())
        var st = stat()
        #expect(stat(dir + "/tls.key", &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        #expect(first.selfSigned)
        #expect(first.certificate.publicKey == Certificate.PublicKey(first.key.publicKey))
        let san = try #require(try first.certificate.extensions.subjectAlternativeNames)
        #expect(Array(san) == TLSIdentity.sanNames(names))
        #expect(first.fingerprintSHA256.split(separator: ":").count == 32)
        _ = try first.serverConfiguration()

        chmod(dir + "/tls.key", 0o644)
        let again = try TLSIdentity.load(directory: dir, names: names, now: Date())
        #expect(stat(dir + "/tls.key", &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(again.key.rawRepresentation == first.key.rawRepresentation)
        #expect(again.fingerprintSHA256 == first.fingerprintSHA256)
        // A signing request for the district's CA: the box's key, the certificate's names.
        let read = try TLSIdentity.read(directory: dir)
        #expect(read.certificateNames == names)
        let pem = try read.signingRequestPEM(names: read.certificateNames)
        let csr = try CertificateSigningRequest(pemEncoded: pem)
        #expect(csr.publicKey == Certificate.PublicKey(first.key.publicKey))
        #expect(csr.publicKey.isValidSignature(csr.signature, for: csr))
        // A new address: same key, new certificate.
        let moved = try TLSIdentity.load(directory: dir, names: names + ["10.20.30.41"], now: Date())
        #expect(moved.key.rawRepresentation == first.key.rawRepresentation)
        #expect(moved.fingerprintSHA256 != first.fingerprintSHA256)
    }

    @Test("form fields and the session cookie are parsed with bounds")
    func parsing() {
        #expect(
            FormFields.parse("username=a+b&password=%3D%26x&username=second") == ["username": "a b", "password": "=&x"])
        #expect(FormFields.parse("bad=%zz&ok=1") == ["ok": "1"])
        #expect(WebCookies.session(in: [.cookie: "a=1; \(WebCookies.sessionName)=abc"]) == "abc")
        #expect(
            WebCookies.session(in: [.cookie: "\(WebCookies.sessionName)=\(String(repeating: "x", count: 65))"]) == nil)
    }
}

@Test("Image/web.example.yaml is valid and its placeholder hashes match no password")
func exampleWebFile() throws {
    let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "../../Image/web.example.yaml"
    ).standardized.path
    let settings = try WebConfigLoader.load(path: path)
    #expect(settings.users.map(\.name) == ["it-admin", "facilities"])
    #expect(settings.web.httpRedirectPort == 80)
    #expect(settings.users.allSatisfy { !PasswordHashing.verify("", hash: $0.passwordHash) })
}

@Test("the demo's web file: admin with a fresh random password (0600), valid, different every run")
func demoWebFile() throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let made = try DemoWebFile.write(runDirectory: dir, httpsPort: 8443, cost: 4)
    #expect(made.url == "https://127.0.0.1:8443/")
    let password = try String(contentsOfFile: made.passwordPath, encoding: .utf8).trimmingCharacters(in: .newlines)
    #expect(password.count == 20)
    var st = stat()
    #expect(stat(made.passwordPath, &st) == 0 && st.st_mode & 0o777 == 0o600)
    let settings = try WebConfigLoader.load(path: made.webConfigPath)
    #expect(settings.web.listen == ["127.0.0.1"])
    let admin = try #require(settings.user(named: "admin"))
    #expect(admin.role == .districtAdmin)
    #expect(PasswordHashing.verify(password, hash: admin.passwordHash))
    _ = try DemoWebFile.write(runDirectory: dir, httpsPort: 8443, cost: 4)
    #expect(
        try String(contentsOfFile: made.passwordPath, encoding: .utf8).trimmingCharacters(in: .newlines) != password)
}

@Test("a camera whose capture worker is down (killed: only its last-will speaks) shows offline, capture.down")
func captureDownMeansOffline() {
    let now = UTCMicros(1_800_000_000_000_000)
    var snapshot = FakeStatus().snapshot(now: now)
    snapshot.processes[0] = ProcessState(
        process: "capture-lobby", state: .down, pid: 0, at: nil, reason: "connection lost")
    let view = StatusView(snapshot: snapshot, alarms: [], visible: nil)
    let lobby = view.cameras.first { $0.id == "lobby" }
    #expect(lobby?.state == "offline")
    #expect(lobby?.reasonCode == "capture.down")
    #expect(lobby?.reasonMessage == "its capture worker is down (connection lost)")
    #expect(view.cameras.first { $0.id == "lot-north" }?.state == "online")
}

@Test("an online camera whose media the recorder refuses (a full disk) shows it: not-recording, storage.full")
func refusedCameraShowsWhy() {
    let now = UTCMicros(1_800_000_000_000_000)
    var snapshot = FakeStatus().snapshot(now: now)
    let i = snapshot.cameras.firstIndex { $0.camera.rawValue == "lot-north" }!
    var stats = RecordingStats(
        camera: snapshot.cameras[i].camera, recordedSeconds: 1, recordedBytes: 1, lastFragmentAt: now, run: 1, at: now)
    stats.refused = ErrorEvent(code: "storage.full", message: "no slot is free and none may be reused")
    snapshot.cameras[i].recording = stats
    let view = StatusView(snapshot: snapshot, alarms: [], visible: nil)
    let lot = view.cameras.first { $0.id == "lot-north" }
    // Not green `online`: the page's people rely on the recording (a vanished disk showed online, in green).
    #expect(lot?.state == "not-recording")
    #expect(lot?.reasonCode == "storage.full")
    #expect(lot?.reasonMessage == "NOT RECORDED: no slot is free and none may be reused")
}

/// A ``BusAuditor`` over an in-memory database and audit log, on box `box1`'s topics.
func busAuditorInMemory() throws -> (TestClocks, AuditLog, BusTopics, BusAuditor) {
    let clocks = TestClocks()
    let database = try WebDatabase(path: ":memory:")
    let log = AuditLog(database: database, clocks: clocks, filePath: nil)
    let topics = BusTopics(box: "box1")
    return (clocks, log, topics, BusAuditor(audit: log, database: database, topics: topics))
}

@Test("deletions, holds and disk failures from the bus are audited once, also across a restart")
func busAudit() async throws {
    let (clocks, log, topics, auditor) = try busAuditorInMemory()
    let now = clocks.utcNow()
    let lobby = CameraID("lobby")!
    func message(_ topic: String, _ value: some Encodable) throws -> BusMessage {
        BusMessage(topic: topic, payload: try BusCoding.encode(value), retained: false)
    }
    try await auditor.handle(
        message(
            topics.deletions,
            DeletionRecord(
                id: 1, disk: "disk0", slot: 7, generation: 3, camera: lobby, from: now.adding(micros: -60_000_000),
                to: now, bytes: 4096, rule: "maxAge", detail: "older than maxAge 30d", deletedAt: now)))
    var hold = EvidenceHold(
        id: "h-0000abcd", camera: lobby, from: now, to: now.adding(micros: 1_000_000), reason: "door", caseID: "2026-1",
        until: nil, createdAt: now, releasedAt: nil)
    let healthy = DiskState(
        disk: "disk0", path: "/d0", health: .healthy, reason: nil, cameras: [lobby], freeSlots: 1, slotCount: 2, at: now
    )
    var failed = healthy
    failed.health = .failed
    failed.reason = ErrorEvent(code: "storage.io", message: "EIO")
    for _ in 0..<2 {  // the retained messages again, as after a restart: nothing new
        try await auditor.handle(message(topics.holds, EvidenceHoldList(holds: [hold], at: now)))
        try await auditor.handle(message(topics.disk("disk0"), healthy))
    }
    try await auditor.handle(message(topics.disk("disk0"), failed))
    hold.releasedAt = now
    try await auditor.handle(message(topics.holds, EvidenceHoldList(holds: [hold], at: now)))
    try await auditor.handle(message(topics.holds, EvidenceHoldList(holds: [hold], at: now)))
    let entries = try await log.entries()
    #expect(entries.map(\.action) == ["recording.deleted", "hold.added", "disk.health", "hold.released"])
    #expect(entries[0].object == "lobby" && entries[0].details.contains("maxAge"))
    // A hold's entries name its camera as their object (a user limited to camera groups sees only their own).
    #expect(entries[1].object == "lobby" && entries[1].details.hasPrefix("hold h-0000abcd: "))
    #expect(entries[3].object == "lobby" && entries[3].details.hasPrefix("hold h-0000abcd: "))
    #expect(entries[2].details == "healthy → failed: storage.io EIO")
    #expect(AuditChain.verify(entries) == .intact(count: 4, head: entries[3].hash))
}

@Test("hallwatchctl's exports asked on the bus are audited once; a forged action or id is refused")
func cliExportsAreAuditedOnce() async throws {
    let (_, log, topics, auditor) = try busAuditorInMemory()
    let request = AuditRequest(
        id: "0123456789abcdef", user: "alice", action: "export.bundle", object: "lobby,gym",
        details: "2026-12-01T10:00:00.000Z–2026-12-01T10:05:00.000Z to /srv/case-17, case 2026-17: fight",
        at: UTCMicros(1_796_119_200_000_000))
    let message = BusMessage(
        topic: topics.auditRequest(request.id), payload: try BusCoding.encode(request), retained: true)
    #expect(try await auditor.handle(message))
    #expect(try await auditor.handle(message))  // redelivered (a crash before the clearing): logged once
    let entries = try await log.entries()
    #expect(entries.count == 1)
    #expect(entries[0].actor == "alice (hallwatchctl)" && entries[0].action == "export.bundle")
    #expect(entries[0].object == "lobby,gym" && entries[0].address == "-")
    #expect(
        entries[0].details
            == "2026-12-01T10:00:00.000Z–2026-12-01T10:05:00.000Z to /srv/case-17, case 2026-17: fight (asked at 2026-12-01T10:00:00.000Z, request 0123456789abcdef)"
    )
    // A process on the bus cannot forge another kind of entry, nor put a request under another's topic.
    var forged = request
    forged.id = "fedcba9876543210"
    forged.action = "login.success"
    for (topic, r) in [(topics.auditRequest(forged.id), forged), (topics.auditRequest("0000000000000000"), request)] {
        await #expect(throws: ErrorEvent.self) {
            try await auditor.handle(BusMessage(topic: topic, payload: try BusCoding.encode(r), retained: true))
        }
    }
    // The cleared topic (an empty retained message) is nothing to audit.
    #expect(try await !auditor.handle(BusMessage(topic: message.topic, payload: [], retained: true)))
    #expect(try await log.entries().count == 1)
}

@Test("the web identity on the bus reaches the status snapshot and hallwatchctl status's table")
func webIdentityInStatus() throws {
    let topics = BusTopics(box: "box1")
    let bus = BusClient(
        clientID: "t-\(getpid())", socketPath: "/nonexistent/bus.sock", will: nil, logger: .init(label: "t"))
    let collector = StatusCollector(bus: bus, topics: topics)
    let identity = WebIdentity(
        tlsSHA256: "98:AE", selfSigned: true, names: ["box", "10.0.0.2"], httpsPort: 443, at: UTCMicros(1),
        identitySHA256: "1F:2E")
    collector.take(BusMessage(topic: topics.webIdentity, payload: try BusCoding.encode(identity), retained: true))
    let snapshot = collector.snapshot(configured: [], now: UTCMicros(2))
    #expect(snapshot.web == identity)
    #expect(snapshot.render().contains("web: https port 443, self-signed certificate for box, 10.0.0.2, SHA-256 98:AE"))
    #expect(snapshot.render().contains("identity key (Ed25519), SHA-256 1F:2E"))
}

@Test("sessions survive a restart of the process (rows in SQLite) and expired ones are swept")
func sessionsSurviveRestart() async throws {
    let dir = try temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let clocks = TestClocks()
    func store() throws -> SessionStore {
        SessionStore(
            database: try WebDatabase(path: dir + "/web.sqlite"), clocks: clocks, idle: .seconds(900),
            lifetime: .seconds(43200))
    }
    let (id, made) = try await store().create(user: "admin", address: "10.0.0.1")
    // Only the hash of the id is stored.
    let raw = try await DatabaseQueue(path: dir + "/web.sqlite").read { db in
        try String.fetchAll(db, sql: "SELECT idHash FROM session")
    }
    #expect(raw == [SessionStore.hash(id)] && !raw.contains(id))
    let again = try store()  // as after kill -9 and a restart
    #expect(try await again.find(id: id)?.csrfToken == made.csrfToken)
    clocks.advance(seconds: 901)
    #expect(try await again.purgeExpired() == 1)
    #expect(try await again.find(id: id) == nil)
}

@Test("audit export: CSV per RFC 4180 with formulas defused and the chain's columns untouched")
func auditCSV() async throws {
    let clocks = TestClocks()
    let log = AuditLog(database: try WebDatabase(path: ":memory:"), clocks: clocks, filePath: nil)
    let e = try await log.record(
        actor: "=HYPERLINK(\"x\")", address: "10.0.0.1", action: "login.failure", object: "a,b", details: "said \"hi\"")
    let csv = AuditLog.csv([e])
    let lines = csv.components(separatedBy: "\r\n")
    #expect(lines[0] == "seq,time,actor,address,action,object,details,previousHash,hash")
    #expect(
        lines[1]
            == "1,\(UTCMicros(e.timeMicros).iso8601),\"'=HYPERLINK(\"\"x\"\")\",10.0.0.1,login.failure,\"a,b\",\"said \"\"hi\"\"\",\(e.previousHash),\(e.hash)"
    )
    #expect(lines[2].isEmpty)
}

@Test("at most 20 live sessions per user: the oldest goes first")
func sessionsPerUserBounded() async throws {
    let clocks = TestClocks()
    let store = SessionStore(
        database: try WebDatabase(path: ":memory:"), clocks: clocks, idle: .seconds(900), lifetime: .seconds(43200))
    var ids: [String] = []
    for _ in 0..<(SessionStore.maxSessionsPerUser + 1) {
        clocks.advance(seconds: 1)
        ids.append(try await store.create(user: "admin", address: "10.0.0.1").id)
    }
    #expect(try await store.find(id: ids[0]) == nil)
    #expect(try await store.find(id: ids[1]) != nil)
    #expect(try await store.find(id: ids.last!) != nil)
}
