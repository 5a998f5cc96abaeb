import Foundation
import GRDB
import HTTPTypes
import HallwatchCore
import Hummingbird
import HummingbirdTesting
import Testing

@testable import HallwatchWeb

@Suite("hallwatch-web: identity key, signed checkpoints, box section, building time")
struct IdentityTimeTests {
    // MARK: - item 1: identity key and checkpoints

    @Test("the identity key is made once (0600, public half 0644) and loaded unchanged; a corrupt file is refused")
    func identityKeyFiles() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try BoxIdentityKey.load(directory: dir)
        let again = try BoxIdentityKey.load(directory: dir)
        #expect(first.publicKey == again.publicKey && first.publicKey.count == 32)
        let attrs = try FileManager.default.attributesOfItem(atPath: dir + "/identity.key")
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        let pub = try FileManager.default.attributesOfItem(atPath: dir + "/identity.pub")
        #expect((pub[.posixPermissions] as? Int) == 0o644)
        #expect(try BoxIdentityKey.readPublicKey(path: dir + "/identity.pub") == first.publicKey)
        // 32 upper-case hex pairs.
        #expect(first.fingerprintSHA256.split(separator: ":").count == 32)
        #expect(first.fingerprintSHA256.allSatisfy { $0 == ":" || $0.isHexDigit && !$0.isLowercase })
        // RFC 8032 §7.1, test 1: the public key of this seed.
        let seed = Data(hex: "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
        let rfc = try BoxIdentityKey(seed: seed)
        #expect(rfc.publicKey == Data(hex: "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))
        try "garbage\n".write(toFile: dir + "/identity.key", atomically: true, encoding: .utf8)
        #expect(throws: IdentityKeyError.self) { try BoxIdentityKey.load(directory: dir) }
    }

    /// A state directory with `count` audit entries, a key and one checkpoint after them.
    func stateWithCheckpoint(_ dir: String, count: Int = 5) async throws -> (WebDatabase, BoxIdentityKey, TestClocks) {
        let clocks = TestClocks()
        let database = try WebDatabase(path: dir + "/web.sqlite")
        let log = AuditLog(database: database, clocks: clocks, filePath: dir + "/audit.log")
        for i in 1...count {
            clocks.advance(seconds: 1)
            try await log.record(actor: "admin", address: "10.0.0.\(i)", action: "camera.view", object: "lobby")
        }
        let key = try BoxIdentityKey.load(directory: dir)
        let checkpointer = AuditCheckpointer(database: database, key: key, box: "box1", clocks: clocks) { _ in }
        try await checkpointer.checkpoint()
        return (database, key, clocks)
    }

    @Test("verify passes an intact log with its signed checkpoint")
    func checkpointIntact() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try await stateWithCheckpoint(dir)
        let v = try AuditVerification.verify(stateDirectory: dir)
        #expect(v.intact)
        #expect(v.database.description.hasPrefix("intact: 5 entries"))
        #expect(v.checkpoints == .intact(count: 1, lastSeq: 5))
    }

    @Test("a forged checkpoint fails verify, named by number")
    func forgedCheckpoint() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (database, key, _) = try await stateWithCheckpoint(dir)
        let entries = try await AuditLog(database: database, clocks: TestClocks(), filePath: nil).entries()
        // Signed by another key, claiming to be the box's.
        var forged = AuditCheckpoint.sign(
            box: "box1", number: 2, seq: 5, head: entries[4].hash, timeMicros: 1, key: BoxIdentityKey.generate())
        forged.publicKey = key.publicKey.base64EncodedString()
        // And one whose signed text was altered after signing (the head moved to entry 4).
        var altered = AuditCheckpoint.sign(
            box: "box1", number: 3, seq: 5, head: entries[4].hash, timeMicros: 2, key: key)
        altered.seq = 4
        altered.head = entries[3].hash
        for c in [forged, altered] {
            try await database.queue.write { db in
                try db.execute(
                    sql: "INSERT INTO auditCheckpoint VALUES (?, ?, ?, ?, ?, ?, ?)",
                    arguments: [c.number, c.box, c.seq, c.head, c.timeMicros, c.publicKey, c.signature])
            }
        }
        let v = try AuditVerification.verify(stateDirectory: dir)
        #expect(!v.intact)
        #expect(v.database.description.hasPrefix("intact"))
        #expect(
            v.checkpoints
                == .broken(
                    number: 2,
                    reason: "(entry 5) its signature does not verify with the box's key (forged or altered)"))
        #expect(v.checkpoints.description.hasPrefix("bad checkpoint 2:"))
        // The altered one alone is caught too.
        #expect(
            CheckpointVerdict.verify([altered], entries: entries, publicKey: key.publicKey)
                == .broken(
                    number: 3,
                    reason: "(entry 4) its signature does not verify with the box's key (forged or altered)"))
        // A copy from elsewhere (a district broker's file) is checked the same way.
        let file = dir + "/copies.jsonl"
        try String(decoding: try JSONEncoder().encode(forged), as: UTF8.self).write(
            toFile: file, atomically: true, encoding: .utf8)
        #expect(try AuditVerification.checkpoints(filePath: file) == [forged])
    }

    @Test("an altered entry fails verify, named; redoing every hash after it is caught by the signed checkpoint")
    func alteredEntry() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (database, _, _) = try await stateWithCheckpoint(dir)
        try await database.queue.write { db in
            try db.execute(sql: "DROP TRIGGER audit_no_update")
            try db.execute(sql: "UPDATE audit SET object = 'gym' WHERE seq = 3")
        }
        var v = try AuditVerification.verify(stateDirectory: dir)
        #expect(!v.intact)
        #expect(v.database == .broken(seq: 3, reason: "its content does not match its hash"))

        // A careful forger redoes the hashes of entries 3, 4, 5: the chain is consistent again…
        var entries = try await AuditLog(database: database, clocks: TestClocks(), filePath: nil).entries()
        for i in 2..<entries.count {
            let e = entries[i]
            entries[i].previousHash = entries[i - 1].hash
            entries[i].hash = AuditChain.hash(
                seq: e.seq, timeMicros: e.timeMicros, actor: e.actor, address: e.address, action: e.action,
                object: e.object, details: e.details, previousHash: entries[i].previousHash)
        }
        let rewritten = entries
        try await database.queue.write { db in
            for e in rewritten[2...] {
                try db.execute(
                    sql: "UPDATE audit SET previousHash = ?, hash = ? WHERE seq = ?",
                    arguments: [e.previousHash, e.hash, e.seq])
            }
        }
        v = try AuditVerification.verify(stateDirectory: dir)
        #expect(v.database.description.hasPrefix("intact: 5 entries"))
        // …but not with the head the box signed.
        #expect(
            v.checkpoints
                == .broken(
                    number: 1, reason: "(entry 5) the entry's hash is not the signed head: the log was rewritten"))
        #expect(!v.intact)
    }

    @Test("the checkpointer signs at start and then every hour of the injected clock, publishing each")
    func hourly() async throws {
        let clocks = SimulatedClocks(autoAdvance: false)
        let database = try WebDatabase(path: ":memory:")
        let log = AuditLog(database: database, clocks: clocks, filePath: nil)
        try await log.record(actor: "admin", address: "-", action: "login.success")
        let published = Published()
        let key = BoxIdentityKey.generate()
        let checkpointer = AuditCheckpointer(database: database, key: key, box: "box1", clocks: clocks) { c in
            published.checkpoints.withLock { $0.append(c) }
        }
        let task = Task { await checkpointer.run(logger: .init(label: "test")) }
        defer { task.cancel() }
        func count(reaches n: Int) async throws -> Bool {
            for _ in 0..<200 {
                if published.checkpoints.withLock({ $0.count }) >= n { return true }
                try await Task.sleep(for: .milliseconds(10))
            }
            return false
        }
        #expect(try await count(reaches: 1))
        // Wait until it sleeps, then move 59 minutes: nothing new.
        for _ in 0..<200 where clocks.sleeps.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        #expect(clocks.sleeps == [.seconds(3600)])
        try await log.record(actor: "admin", address: "-", action: "logout")
        clocks.advance(by: .seconds(59 * 60))
        try await Task.sleep(for: .milliseconds(100))
        #expect(published.checkpoints.withLock { $0.count } == 1)
        clocks.advance(by: .seconds(60))
        #expect(try await count(reaches: 2))
        let all = published.checkpoints.withLock { $0 }
        #expect(all.map(\.number) == [1, 2])
        #expect(all.map(\.seq) == [1, 2])
        #expect(all[1].timeMicros - all[0].timeMicros == 3_600_000_000)
        #expect(all.allSatisfy { $0.isSigned(by: key.publicKey) })
        #expect(try await checkpointer.checkpoints() == all)
    }

    @Test("POST /api/v1/audit/checkpoint: admins sign on demand (the request itself covered), viewers may not")
    func onDemand() async throws {
        let h = try Harness()
        try await h.app().test(.router) { client in
            let admin = try #require(try await signIn(client, user: "admin"))
            let csrf = try #require(try await h.env.sessions.find(id: admin)?.csrfToken)
            try await client.execute(
                uri: "/api/v1/audit/checkpoint", method: .post,
                headers: sameOrigin([HTTPField.Name("X-CSRF-Token")!: csrf], cookie: admin)
            ) { r in
                #expect(r.status == .ok)
                let c = try JSONDecoder().decode(AuditCheckpoint.self, from: Data(buffer: r.body))
                let entries = try await h.env.audit.entries()
                #expect(entries.last?.action == "auditlog.checkpoint")
                #expect(c.seq == entries.last?.seq && c.head == entries.last?.hash)
                #expect(c.isSigned(by: h.key.publicKey))
                #expect(h.published.checkpoints.withLock { $0 } == [c])
            }
            let viewer = try #require(try await signIn(client, user: "office"))
            let viewerCSRF = try #require(try await h.env.sessions.find(id: viewer)?.csrfToken)
            try await client.execute(
                uri: "/api/v1/audit/checkpoint", method: .post,
                headers: sameOrigin([HTTPField.Name("X-CSRF-Token")!: viewerCSRF], cookie: viewer)
            ) { r in #expect(r.status == .forbidden) }
        }
    }

    // MARK: - item 2: the box section

    @Test("the status page and API show the box: name, building, version, uptime, clock, both fingerprints")
    func boxSection() async throws {
        let h = try Harness(time: try #require(BuildingTime(identifier: "America/New_York")))
        try await h.app().test(.router) { client in
            let cookie = try #require(try await signIn(client, user: "office"))
            try await client.execute(uri: "/", method: .get, headers: cookieHeader(cookie)) { r in
                let page = String(buffer: r.body)
                #expect(page.contains(#"<dd id="box-name">box1</dd>"#))
                #expect(page.contains(#"<dd id="box-building">Lincoln Elementary</dd>"#))
                #expect(page.contains(#"<dd id="box-version">9.9.9</dd>"#))
                #expect(page.contains(#"<dd id="box-uptime">1 d 2 h</dd>"#))
                #expect(page.contains("synchronised (offset +0.500 ms, max error 16 ms)"))
                #expect(page.contains(h.key.fingerprintSHA256))
                #expect(page.contains(#"<code class="fingerprint" id="box-tls">AB:CD</code>"#))
                // 1_800_000_000 s = 2027-01-15T08:00:00Z = 03:00 EST, UTC in the title.
                #expect(page.contains(#"title="2027-01-15T08:00:00.000Z">2027-01-15 03:00:00 EST</time>"#))
            }
            try await client.execute(uri: "/api/v1/status", method: .get, headers: cookieHeader(cookie)) { r in
                let s = try JSONDecoder().decode(StatusView.self, from: Data(buffer: r.body))
                let box = try #require(s.box)
                #expect(box.name == "box1" && box.softwareVersion == "9.9.9" && box.uptimeSeconds == 93784)
                #expect(box.clock == ClockSync(synchronised: true, offsetMs: 0.5, maxErrorMs: 16))
                #expect(box.utc == "2027-01-15T08:00:00.000Z" && box.local == "2027-01-15 03:00:00 EST")
                #expect(box.timeZone == "America/New_York")
                #expect(box.identitySHA256 == h.key.fingerprintSHA256 && box.tlsSHA256 == "AB:CD")
                #expect(s.atLocal == "2027-01-15 03:00:00 EST")
            }
        }
    }

    @Test("the box's own clock state is read through adjtimex")
    func systemClockSync() {
        let c = SystemHostFacts().clockSync()
        #expect(c.synchronised != nil)
        #expect((c.maxErrorMs ?? -1) >= 0)
        #expect(SystemHostFacts().uptimeSeconds() > 0)
        #expect(Display.uptime(59) == "0 min" && Display.uptime(3 * 3600 + 120) == "3 h 2 min")
        #expect(
            Display.clock(ClockSync(synchronised: false, offsetMs: nil, maxErrorMs: 16000))
                == "NOT synchronised (max error 16000 ms)")
    }

    // MARK: - item 3: building time

    static func utc(_ iso: String) -> UTCMicros { ISO8601.parse(iso)! }

    @Test("November: the repeated hour is shown twice, EDT then EST; March: the skipped hour")
    func daylightSaving() throws {
        let ny = try #require(BuildingTime(identifier: "America/New_York"))
        #expect(ny.format(Self.utc("2026-11-01T05:30:00Z")) == "2026-11-01 01:30:00 EDT")
        #expect(ny.format(Self.utc("2026-11-01T06:30:00Z")) == "2026-11-01 01:30:00 EST")
        #expect(ny.format(Self.utc("2026-11-01T05:59:59Z")) == "2026-11-01 01:59:59 EDT")
        #expect(ny.format(Self.utc("2026-11-01T06:00:00Z")) == "2026-11-01 01:00:00 EST")
        #expect(ny.offsetSeconds(at: Self.utc("2026-11-01T05:30:00Z")) == -4 * 3600)
        #expect(ny.offsetSeconds(at: Self.utc("2026-11-01T06:30:00Z")) == -5 * 3600)
        #expect(ny.format(Self.utc("2026-03-08T06:59:59Z")) == "2026-03-08 01:59:59 EST")
        #expect(ny.format(Self.utc("2026-03-08T07:00:00Z")) == "2026-03-08 03:00:00 EDT")
        // A principal's "2:15 pm" on a summer day is 18:15 UTC.
        #expect(ny.parseLocal("2026-06-10T14:15") == Self.utc("2026-06-10T18:15:00Z"))
        // The repeated hour reads as its first (EDT) occurrence.
        #expect(ny.parseLocal("2026-11-01T01:30") == Self.utc("2026-11-01T05:30:00Z"))
        #expect(ny.parseLocal("2026-11-01T03:00") == Self.utc("2026-11-01T08:00:00Z"))
        let berlin = try #require(BuildingTime(identifier: "Europe/Berlin"))
        #expect(berlin.format(Self.utc("2026-10-25T00:30:00Z")) == "2026-10-25 02:30:00 CEST")
        #expect(berlin.format(Self.utc("2026-10-25T01:30:00Z")) == "2026-10-25 02:30:00 CET")
        #expect(BuildingTime.utc.format(Self.utc("2026-11-01T05:30:00.250Z")) == "2026-11-01 05:30:00 UTC")
    }

    @Test("web.timeZone: an IANA name, checked; paths and unknown zones refused with the line")
    func timeZoneConfig() throws {
        #expect(try WebConfigLoader.parse("web:\n  timeZone: America/New_York\n").web.timeZone == "America/New_York")
        #expect(try WebConfigLoader.parse("web: {}\n").web.timeZone == "UTC")
        for bad in [
            "Mars/Olympus", "../../etc/passwd", "/etc/localtime", "America/../Europe/Paris", "America/New York",
        ] {
            #expect(BuildingTime(identifier: bad) == nil, "\(bad)")
            do {
                _ = try WebConfigLoader.parse("web:\n  timeZone: \"\(bad)\"\n", file: "web.yaml")
                Issue.record("accepted \(bad)")
            } catch let e as WebConfigError {
                #expect(e.description.contains("web.yaml:2: web.timeZone"), "\(e)")
            }
        }
    }
}

extension Data {
    init(hex: String) {
        var bytes: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            bytes.append(UInt8(hex[i..<j], radix: 16)!)
            i = j
        }
        self.init(bytes)
    }
}
