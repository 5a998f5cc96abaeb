import Foundation
import GRDB
import HallwatchConfig
import HallwatchCore
import Testing

@testable import HallwatchStorage

/// The pruner's promises over real slot files and a real index, with an injected clock
/// (`Pruner.pass`, `RetentionPlanner`, `RetentionIndex` steps D1–D4, evidence holds).
@Suite("Retention")
struct RetentionTests {
    static let hour: Int64 = 3_600_000_000
    /// A 20-minute fragment, 90 kHz ticks.
    static let twentyMinutes: Int32 = 108_000_000

    /// A configuration for `rig` with the given per-camera retention lines.
    static func config(_ rig: Rig, retention: String, cameras: [(id: String, retention: String?)]) throws
        -> HallwatchConfig
    {
        var yaml = """
            box: test-box
            recorder:
              disks:
                - name: disk0
                  path: \(rig.dir.path)
            retention:
            \(retention.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
            cameras:

            """
        for c in cameras {
            yaml += "  - id: \(c.id)\n    source: rtsp://127.0.0.1:8554/\(c.id)\n"
            if let r = c.retention {
                yaml += "    retention:\n" + r.split(separator: "\n").map { "      " + $0 + "\n" }.joined()
            }
        }
        return try ConfigLoader.parse(yaml)
    }

    static func disks(_ rig: Rig) -> [NamedDisk] { [NamedDisk(name: "disk0", path: rig.dir.path)] }

    static func pass(_ rig: Rig, _ config: HallwatchConfig, dryRun: Bool = false) -> Pruner.Report {
        Pruner.pass(disks: disks(rig), config: config, clocks: rig.clocks, dryRun: dryRun, logger: testLogger)
    }

    static func use(_ rig: Rig) throws -> DiskUse {
        let i = try RetentionIndex(NamedDisk(name: "disk0", path: rig.dir.path), box: "test-box", logger: testLogger)
        defer { i.close() }
        return try i.use()
    }

    /// Start of the oldest indexed video of `camera`.
    static func oldest(_ rig: Rig, _ camera: CameraID) throws -> UTCMicros? {
        try rig.reader().runs(camera: camera).map(\.startUTC).min()
    }

    static func writerOptions() -> DiskWriter.Options {
        var o = DiskWriter.Options()
        o.maxChunkSpan = .seconds(7200)
        return o
    }

    @Test("two cameras with different maxAge, one added at runtime, 200 h: each keeps exactly its own window")
    func twoWindows() throws {
        let rig = try Rig(slots: 40, slotSizeBytes: 64 << 10)
        defer { rig.dir.cleanup() }
        let t0 = rig.clocks.utcNow().micros
        let w = try rig.writer(Self.writerOptions())
        var a = Stream("cam-a", run: UInt64(t0), fragment90k: Self.twentyMinutes, payloadBytes: 3000, seed: 1)
        var b = Stream(
            "cam-b", run: UInt64(t0 + 40 * Self.hour), fragment90k: Self.twentyMinutes, payloadBytes: 3000, seed: 2)
        let defaults = "maxAge: 30d\nminAge: 1h\nreserve: 0s\nreserveSlots: 2"
        let before = try Self.config(rig, retention: defaults, cameras: [("cam-a", "maxAge: 24h")])
        let after = try Self.config(
            rig, retention: defaults, cameras: [("cam-a", "maxAge: 24h"), ("cam-b", "maxAge: 72h")])
        try a.sendInit(w)
        var deletions: [DeletionRecord] = []
        for h in 0..<200 {
            try a.send(3, to: w)
            if h == 40 { try b.sendInit(w) }
            if h >= 40 { try b.send(3, to: w) }
            rig.clocks.advance(micros: Self.hour)
            try w.syncAndCommit()
            if (h + 1) % 10 == 0 {
                // cam-b is recorded from hour 40 but only configured from hour 50 (building default until then).
                let r = Self.pass(rig, h + 1 >= 50 ? after : before)
                #expect(r.alarms.isEmpty, "\(r.alarms)")
                deletions += r.deleted
            }
        }
        let now = rig.clocks.utcNow().micros
        let slotSpan = 7 * Self.hour  // 20 fragments of 20 min per 64 KiB slot, and a bit
        let oldestA = try #require(try Self.oldest(rig, a.camera)).micros
        let oldestB = try #require(try Self.oldest(rig, b.camera)).micros
        #expect(oldestA >= now - 24 * Self.hour && oldestA < now - 24 * Self.hour + slotSpan)
        #expect(oldestB >= now - 72 * Self.hour && oldestB < now - 72 * Self.hour + slotSpan)
        // Nothing younger than its window was deleted, and every deletion names its rule.
        #expect(deletions.allSatisfy { $0.rule == "maxAge" })
        #expect(
            !deletions.filter { $0.camera == a.camera }.isEmpty && !deletions.filter { $0.camera == b.camera }.isEmpty)
        // The newest video is all there, and the index agrees with the slots.
        #expect(try rig.reader().runs(camera: a.camera).map(\.endUTC).max() == UTCMicros(now))
        #expect(try rig.reader().verify() == [])
        // The audit log and table hold exactly these deletions.
        let log = try AuditLog(path: rig.dir.path + "/" + RetentionIndex.auditLogName).all()
        #expect(log == deletions)
        try w.close()
    }

    @Test("maxBytes is honoured within one slot's size; the open slot is never deleted")
    func quotaAndOpenSlot() throws {
        let rig = try Rig(slots: 30, slotSizeBytes: 64 << 10)
        defer { rig.dir.cleanup() }
        let w = try rig.writer(Self.writerOptions())
        var q = Stream(
            "cam-q", run: UInt64(rig.clocks.utcNow().micros), fragment90k: 90_000, payloadBytes: 3000, seed: 3)
        try q.sendInit(w)
        try q.send(20 * 12 + 5, to: w)  // twelve full slots and a part
        rig.clocks.advance(micros: 2 * Self.hour)
        try w.syncAndCommit()
        let quota: Int64 = 300_000
        let config = try Self.config(
            rig, retention: "minAge: 0s\nreserve: 0s\nreserveSlots: 0", cameras: [("cam-q", "maxBytes: \(quota)")])
        let r = Self.pass(rig, config)
        #expect(r.deleted.allSatisfy { $0.rule == "maxBytes" } && !r.deleted.isEmpty)
        let use = try Self.use(rig)
        let kept = use.slots.reduce(0) { $0 + $1.bytes }
        #expect(kept <= quota && kept > quota - (64 << 10), "kept \(kept)")
        #expect(use.slots.filter(\.isOpen).count == 1)

        // maxAge of a minute, ten days later: every closed slot goes, the open one stays and is written on.
        let strict = try Self.config(
            rig, retention: "maxAge: 1m\nminAge: 0s\nreserve: 0s\nreserveSlots: 0", cameras: [("cam-q", nil)])
        rig.clocks.advance(micros: 240 * Self.hour)
        let r2 = Self.pass(rig, strict)
        #expect(!r2.deleted.isEmpty)
        let left = try Self.use(rig)
        #expect(left.slots.count == 1 && left.slots[0].isOpen)
        try q.send(3, to: w)
        try w.syncAndCommit()
        #expect(try rig.reader().verify() == [])
        try w.close()
    }

    @Test("a hold across the maxAge boundary survives; released, the next pass deletes it; ring reuse skips it")
    func holdAcrossBoundary() throws {
        let rig = try Rig(slots: 40, slotSizeBytes: 64 << 10)
        defer { rig.dir.cleanup() }
        let t0 = rig.clocks.utcNow().micros
        let w = try rig.writer(Self.writerOptions())
        var c = Stream("cam-h", run: UInt64(t0), fragment90k: Self.twentyMinutes, payloadBytes: 3000, seed: 4)
        try c.sendInit(w)
        try c.send(3 * 100, to: w)
        rig.clocks.advance(micros: 100 * Self.hour)
        try w.syncAndCommit()
        let now = rig.clocks.utcNow()
        let config = try Self.config(
            rig, retention: "maxAge: 24h\nminAge: 1h\nreserve: 0s\nreserveSlots: 0", cameras: [("cam-h", nil)])
        let hold = EvidenceHold(
            id: "h-00000001", camera: c.camera, from: now.adding(micros: -30 * Self.hour),
            to: now.adding(micros: -20 * Self.hour),
            reason: "incident in the hallway", caseID: "2026-0042", until: nil, createdAt: now)
        let placed = try EvidenceHolds.add(
            hold, disks: Self.disks(rig), box: "test-box", maxHoldPercent: 50, now: now, logger: testLogger)
        #expect(placed.disks.count == 1 && placed.disks[0].impact.slotsOfHold >= 2)

        let r = Self.pass(rig, config)
        #expect(!r.deleted.isEmpty)
        #expect(r.deleted.allSatisfy { !hold.overlaps(from: $0.from, to: $0.to) })
        // The whole held range is still readable, past maxAge.
        let held = try rig.reader().segments(camera: c.camera, from: hold.from, to: hold.to, startAtKeyframe: false)
        let heldStart = try #require(held.first?.fragments.first?.meta.utc)
        #expect(heldStart <= hold.from)
        let oldest = try #require(try Self.oldest(rig, c.camera))
        #expect(oldest < now.adding(micros: -24 * Self.hour) && oldest > hold.from.adding(micros: -7 * Self.hour))
        #expect(try Self.use(rig).slots.filter(\.held).count == placed.disks[0].impact.slotsOfHold)

        // Ring reuse never takes a held slot: fill the disk with ring reuse and check the held video.
        var filler = Stream("cam-f", run: UInt64(now.micros), fragment90k: 90_000, payloadBytes: 3000, seed: 5)
        try filler.sendInit(w)
        var outcomes: [AppendOutcome] = []
        for _ in 0..<45 {  // 45 slots' worth, committed each "second" as the recorder does
            outcomes += try filler.send(20, to: w)
            try w.syncAndCommit()
        }
        #expect(outcomes.contains { $0.ringReuse != nil })
        #expect(
            try rig.reader().segments(camera: c.camera, from: hold.from, to: hold.to, startAtKeyframe: false).first?
                .fragments.first?.meta.utc == heldStart)
        #expect(try rig.reader().verify() == [])

        // A lapsed or released hold stops pinning.
        #expect(
            try EvidenceHolds.release(hold.id, disks: Self.disks(rig), box: "test-box", now: now, logger: testLogger))
        let r2 = Self.pass(rig, config)
        #expect(r2.deleted.contains { hold.overlaps(from: $0.from, to: $0.to) })
        let after = try Self.oldest(rig, c.camera)
        #expect(after.map { $0 >= now.adding(micros: -24 * Self.hour) } ?? true)
        #expect(
            try EvidenceHolds.list(disks: Self.disks(rig), box: "test-box", logger: testLogger).map {
                $0.status(at: now)
            } == ["released"])
        try w.close()
    }

    @Test(
        "a hold reaching past what is recorded pins the open slot and the slots taken next; a too large hold is refused"
    )
    func holdIntoTheFuture() throws {
        let rig = try Rig(slots: 20, slotSizeBytes: 64 << 10)
        defer { rig.dir.cleanup() }
        let w = try rig.writer(Self.writerOptions())
        var c = Stream(
            "cam-o", run: UInt64(rig.clocks.utcNow().micros), fragment90k: 90_000, payloadBytes: 3000, seed: 6)
        try c.sendInit(w)
        try c.send(30, to: w)
        try w.syncAndCommit()
        let now = rig.clocks.utcNow()
        let config = try Self.config(
            rig, retention: "maxAge: 1m\nminAge: 0s\nreserve: 0s\nreserveSlots: 0", cameras: [("cam-o", nil)])
        let hold = EvidenceHold(
            id: "h-00000002", camera: c.camera, from: c.endUTC, to: c.endUTC.adding(micros: 60_000_000),
            reason: "ongoing", caseID: "c-7", until: nil, createdAt: now)
        _ = try EvidenceHolds.add(
            hold, disks: Self.disks(rig), box: "test-box", maxHoldPercent: 50, now: now, logger: testLogger)
        #expect(try Self.use(rig).slots.filter { $0.isOpen && $0.held }.count == 1)
        try c.send(45, to: w)  // the next minute: two rollovers
        try w.syncAndCommit()
        rig.clocks.advance(micros: 10 * Self.hour)
        _ = Self.pass(rig, config)
        let video = try rig.reader().segments(camera: c.camera, from: hold.from, to: hold.to, startAtKeyframe: false)
            .flatMap(\.fragments)
        #expect(video.count == 45 - 1 || video.count == 45)
        #expect(video.first.map { $0.meta.utc <= hold.from.adding(micros: 500_000) } == true)

        // A hold over everything would pin more than 50 % of the 20 slots: refused, nothing written.
        // A range far into the future would pin every slot taken until then and stop recording: refused.
        var far: StorageError?
        do {
            _ = try EvidenceHolds.add(
                EvidenceHold(
                    id: "h-00000004", camera: c.camera, from: now, to: now.adding(micros: 48 * Self.hour),
                    reason: "open-ended", caseID: "c-9", until: nil, createdAt: now),
                disks: Self.disks(rig), box: "test-box", maxHoldPercent: 50, now: now, logger: testLogger)
        } catch { far = error }
        #expect(far?.code == .invalidArgument && far?.message.contains("more than 24 h ahead") == true)
        // Within 24 h but more than the disk can hold for it: 20 min at this camera's 3000 B/s is about 55 slots of
        // 64 KiB still to be taken (and pinned as they are), where 50 % of 20 slots allows 10. Checking only the
        // slots pinned now accepted it, and recording stopped once the held range had filled the disk.
        var tooLong: StorageError?
        do {
            _ = try EvidenceHolds.add(
                EvidenceHold(
                    id: "h-00000005", camera: c.camera, from: now, to: now.adding(micros: 20 * 60_000_000),
                    reason: "long", caseID: "c-10", until: nil, createdAt: now),
                disks: Self.disks(rig), box: "test-box", maxHoldPercent: 50, now: now, logger: testLogger)
        } catch { tooLong = error }
        #expect(tooLong?.code == .invalidArgument, "got \(String(describing: tooLong))")
        #expect(tooLong?.message.contains("more as cam-o records until the range ends") == true)
        let huge = EvidenceHold(
            id: "h-00000003", camera: c.camera, from: UTCMicros(0), to: now,
            reason: "all", caseID: "c-8", until: nil, createdAt: now)
        var refused: StorageError?
        do {
            _ = try EvidenceHolds.add(
                huge, disks: Self.disks(rig), box: "test-box", maxHoldPercent: 10, now: now, logger: testLogger)
        } catch { refused = error }
        #expect(refused?.code == .invalidArgument && refused?.message.contains("maxHoldPercent") == true)
        #expect(
            try EvidenceHolds.list(disks: Self.disks(rig), box: "test-box", logger: testLogger).map(\.id) == [hold.id])
        try w.close()
    }

    @Test(
        "a disk filling faster than the policy frees: reserve kept while possible, else the alarm, and recording goes on"
    )
    func reserve() throws {
        let rig = try Rig(slots: 10, slotSizeBytes: 64 << 10)
        defer { rig.dir.cleanup() }
        let w = try rig.writer(Self.writerOptions())
        var c = Stream(
            "cam-r", run: UInt64(rig.clocks.utcNow().micros), fragment90k: 90_000, payloadBytes: 3000, seed: 7)
        try c.sendInit(w)
        try c.send(20 * 9, to: w)  // nine slots within three minutes
        rig.clocks.advance(micros: 3 * 60_000_000)
        try w.syncAndCommit()
        // All of it is younger than minAge: the reserve cannot be kept, the alarm says so.
        let young = try Self.config(
            rig, retention: "minAge: 1h\nreserve: 0s\nreserveSlots: 3", cameras: [("cam-r", nil)])
        let r = Self.pass(rig, young)
        #expect(r.deleted.isEmpty)
        #expect(r.alarms.map(\.code) == ["retention.reserveUnreachable"])
        // Recording continues on ring reuse.
        let outcomes = try c.send(20 * 3, to: w)
        try w.syncAndCommit()
        #expect(outcomes.contains { $0.ringReuse != nil })
        // Once the video is older than minAge, the reserve (as recording time at the measured rate) is kept.
        rig.clocks.advance(micros: 2 * Self.hour)
        let policy = try Self.config(
            rig, retention: "minAge: 1h\nreserve: 1m\nreserveSlots: 3", cameras: [("cam-r", nil)])
        let r2 = Self.pass(rig, policy)
        #expect(r2.alarms.isEmpty)
        #expect(r2.deleted.allSatisfy { $0.rule == "reserve" } && !r2.deleted.isEmpty)
        let target = try #require(r2.plan.reserve["disk0"])
        #expect(target >= 3)
        #expect(try Self.use(rig).freeSlots >= target)
        // Writing up to the reserve needs no ring reuse.
        let calm = try c.send(20 * 2, to: w)
        try w.syncAndCommit()
        #expect(calm.allSatisfy { $0.ringReuse == nil })
        #expect(try rig.reader().verify() == [])
        try w.close()
    }

    @Test("two disks: a camera that moved keeps one window and one quota over both; a hold pins its range on both")
    func twoDisks() throws {
        let one = try Rig(slots: 30, slotSizeBytes: 64 << 10, name: "diskA")
        defer { one.dir.cleanup() }
        let two = try Rig(slots: 30, slotSizeBytes: 64 << 10, name: "diskB")
        defer { two.dir.cleanup() }
        let t0 = one.clocks.utcNow().micros
        var c = Stream("cam-m", run: UInt64(t0), fragment90k: Self.twentyMinutes, payloadBytes: 3000, seed: 11)
        // 40 h on the first disk, then (failover) 40 h on the second, the same run going on.
        let w1 = try one.writer(Self.writerOptions())
        try c.sendInit(w1)
        try c.send(3 * 40, to: w1)
        w1.closeCamera(c.camera)
        try w1.close()
        let w2 = try two.writer(Self.writerOptions())
        try c.sendInit(w2)
        try c.send(3 * 40, to: w2)
        try w2.syncAndCommit()
        let clocks = TestClocks(t0 + 80 * Self.hour)
        let now = clocks.utcNow()
        let disks = [NamedDisk(name: "disk0", path: one.dir.path), NamedDisk(name: "disk1", path: two.dir.path)]
        func config(_ retention: String) throws -> HallwatchConfig {
            try ConfigLoader.parse(
                "box: test-box\nrecorder:\n  disks:\n    - {name: disk0, path: \(one.dir.path)}\n    - {name: disk1, path: \(two.dir.path)}\n"
                    + "retention: {\(retention)}\ncameras:\n  - {id: cam-m, source: \"rtsp://127.0.0.1/m\"}\n")
        }
        // A hold over hours 30-50 spans both disks.
        let hold = EvidenceHold(
            id: "h-0000000a", camera: c.camera, from: UTCMicros(t0 + 30 * Self.hour),
            to: UTCMicros(t0 + 50 * Self.hour),
            reason: "two disks", caseID: "c-2", until: nil, createdAt: now)
        let placed = try EvidenceHolds.add(
            hold, disks: disks, box: "test-box", maxHoldPercent: 50, now: now, logger: testLogger)
        #expect(
            placed.disks.map(\.name) == ["disk0", "disk1"] && placed.disks.allSatisfy { $0.impact.slotsOfHold >= 1 })
        let r = Pruner.pass(
            disks: disks, config: try config("maxAge: 60h, minAge: 1h, reserve: 0s, reserveSlots: 0"), clocks: clocks,
            dryRun: false, logger: testLogger)
        #expect(
            r.alarms.isEmpty && !r.deleted.isEmpty && r.deleted.allSatisfy { $0.disk == "disk0" && $0.rule == "maxAge" }
        )
        // disk0 keeps its window (from hour 20) and the held slots.
        let left = try one.reader().runs(camera: c.camera).map(\.startUTC).min()
        #expect(left.map { $0 >= UTCMicros(t0 + 20 * Self.hour) && $0 < UTCMicros(t0 + 27 * Self.hour) } == true)
        // Both disks carry the hold, in their index and their holds.json.
        for d in disks {
            let i = try RetentionIndex(d, box: "test-box", logger: testLogger)
            #expect(try i.holds().map(\.id) == [hold.id] && i.mirroredHolds().map(\.id) == [hold.id])
            i.close()
        }
        // A quota over both disks: the oldest unheld slots go first, wherever they are.
        let quota: Int64 = 400_000
        let q = Pruner.pass(
            disks: disks,
            config: try config("maxAge: 30d, minAge: 0s, maxBytes: \(quota), reserve: 0s, reserveSlots: 0"),
            clocks: clocks, dryRun: false, logger: testLogger)
        #expect(q.deleted.allSatisfy { $0.rule == "maxBytes" } && Set(q.deleted.map(\.disk)) == ["disk0", "disk1"])
        let slots = q.disks.flatMap(\.slots)
        let newestDeleted = try #require(q.deleted.map(\.to).max())
        #expect(slots.filter { !$0.held && !$0.isOpen }.allSatisfy { $0.to.map { $0 >= newestDeleted } ?? true })
        let total = slots.reduce(0) { $0 + $1.bytes }
        let deletable = slots.filter { !$0.held && !$0.isOpen }
        // Over the quota only by what is held or open, and within one slot of it otherwise.
        #expect(total <= quota || deletable.isEmpty || total - deletable.map(\.bytes).min()! < quota, "total \(total)")
        #expect(try one.reader().verify() == [] && two.reader().verify() == [])
        try w2.close()
    }

    @Test("a dry run deletes nothing and lists exactly what the real run then deletes")
    func dryRun() throws {
        let rig = try Rig(slots: 30, slotSizeBytes: 64 << 10)
        defer { rig.dir.cleanup() }
        let t0 = rig.clocks.utcNow().micros
        let w = try rig.writer(Self.writerOptions())
        var a = Stream("cam-a", run: UInt64(t0), fragment90k: Self.twentyMinutes, payloadBytes: 3000, seed: 8)
        var b = Stream("cam-b", run: UInt64(t0), fragment90k: 90_000, payloadBytes: 3000, seed: 9)
        try a.sendInit(w)
        try b.sendInit(w)
        try a.send(3 * 60, to: w)
        try b.send(20 * 8, to: w)
        rig.clocks.advance(micros: 60 * Self.hour)
        try w.syncAndCommit()
        let config = try Self.config(
            rig, retention: "maxAge: 24h\nminAge: 1h\nreserve: 0s\nreserveSlots: 2",
            cameras: [("cam-a", nil), ("cam-b", "maxBytes: 200000\nmaxAge: 30d")])
        let before = try Self.use(rig)
        let dry = Self.pass(rig, config, dryRun: true)
        #expect(dry.deleted.isEmpty && !dry.plan.deletions.isEmpty)
        #expect(try Self.use(rig) == before)
        #expect(!FileManager.default.fileExists(atPath: rig.dir.path + "/" + RetentionIndex.auditLogName))
        let real = Self.pass(rig, config)
        func key(_ d: DeletionRecord) -> String {
            "\(d.disk) \(d.slot) \(d.generation) \(d.camera) \(d.from) \(d.to) \(d.bytes) \(d.rule)"
        }
        func key(_ p: PlannedDeletion) -> String {
            "\(p.disk) \(p.slot) \(p.generation) \(p.camera) \(p.from) \(p.to) \(p.bytes) \(p.rule)"
        }
        #expect(real.deleted.map(key) == dry.plan.deletions.map(key))
        #expect(Set(real.deleted.map(\.rule)) == ["maxAge", "maxBytes"])
        #expect(try rig.reader().verify() == [])
        try w.close()
    }

    @Test("a deletion interrupted after each step completes on the next pass; check passes in between")
    func resumeAfterEachStep() throws {
        for stop in DeleteStep.allCases {
            let rig = try Rig(slots: 12, slotSizeBytes: 64 << 10, name: "resume\(stop.rawValue)")
            defer { rig.dir.cleanup() }
            let w = try rig.writer(Self.writerOptions())
            var c = Stream(
                "cam-k", run: UInt64(rig.clocks.utcNow().micros), fragment90k: 90_000, payloadBytes: 3000, seed: 10)
            try c.sendInit(w)
            try c.send(20 * 4, to: w)
            rig.clocks.advance(micros: 48 * Self.hour)
            try w.syncAndCommit()
            let config = try Self.config(
                rig, retention: "maxAge: 24h\nreserve: 0s\nreserveSlots: 0", cameras: [("cam-k", nil)])
            let plan = Self.pass(rig, config, dryRun: true).plan.deletions
            #expect(plan.count >= 2 && plan.allSatisfy { $0.rule == "maxAge" })  // the closed slots; the open one stays
            // Run the first deletion's steps up to `stop` only, as a process killed there would.
            let index = try RetentionIndex(
                NamedDisk(name: "disk0", path: rig.dir.path), box: "test-box", logger: testLogger)
            try index.stepForTesting(plan[0], through: stop, now: rig.clocks.utcNow())
            index.close()
            #expect(try rig.reader().verify() == [])
            let r = Self.pass(rig, config)
            #expect(r.deleted.count == (stop == .d4 ? plan.count - 1 : plan.count), "\(stop)")
            #expect(r.resumed == (stop == .d4 ? 0 : 1))
            let log = try AuditLog(path: rig.dir.path + "/" + RetentionIndex.auditLogName).all()
            #expect(
                Set(log.map(\.slot)) == Set(plan.map(\.slot)) && log.count == plan.count, "\(stop): \(log.map(\.slot))")
            let index2 = try RetentionIndex(
                NamedDisk(name: "disk0", path: rig.dir.path), box: "test-box", logger: testLogger)
            #expect(try index2.pendingSlots() == [])
            #expect(try index2.deletions().count == plan.count)
            index2.close()
            #expect(try rig.reader().verify() == [])
            try w.close()
        }
    }
}

@Suite("Retention: bad input")
struct RetentionBadInputTests {
    @Test(
        "a damaged index or another box's disk is an alarm with a typed code, never a crash; the other disk is still pruned"
    )
    func damagedIndex() throws {
        let good = try Rig(slots: 8, slotSizeBytes: 64 << 10, name: "goodDisk")
        defer { good.dir.cleanup() }
        let bad = try Rig(slots: 8, slotSizeBytes: 64 << 10, name: "badDisk")
        defer { bad.dir.cleanup() }
        var c = Stream(
            "cam-z", run: UInt64(good.clocks.utcNow().micros), fragment90k: 90_000, payloadBytes: 3000, seed: 12)
        let w = try good.writer(RetentionTests.writerOptions())
        try c.sendInit(w)
        try c.send(20 * 3, to: w)
        try w.syncAndCommit()
        try w.close()
        _ = try bad.writer().close()
        try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: bad.dir.path + "/index.sqlite"))
        let foreign = try Rig(slots: 4, slotSizeBytes: 64 << 10, name: "foreignDisk")
        defer { foreign.dir.cleanup() }
        let meta = try String(contentsOfFile: foreign.dir.path + "/meta", encoding: .utf8).replacingOccurrences(
            of: "test-box", with: "other-box")
        try meta.write(toFile: foreign.dir.path + "/meta", atomically: true, encoding: .utf8)
        let clocks = TestClocks(good.clocks.utcNow().micros + 48 * RetentionTests.hour)
        let config = try ConfigLoader.parse("box: test-box\nretention: {maxAge: 1d, reserve: 0s, reserveSlots: 0}\n")
        let disks = [
            NamedDisk(name: "disk0", path: bad.dir.path), NamedDisk(name: "disk1", path: good.dir.path),
            NamedDisk(name: "disk2", path: foreign.dir.path),
            NamedDisk(name: "disk3", path: good.dir.path + "/missing"),
        ]
        let r = Pruner.pass(disks: disks, config: config, clocks: clocks, dryRun: false, logger: testLogger)
        #expect(Set(r.alarms.map(\.code)).isSuperset(of: ["storage.index", "storage.foreignDisk"]), "\(r.alarms)")
        #expect(!r.deleted.isEmpty && r.deleted.allSatisfy { $0.disk == "disk1" })
        // A hold for a range that ends before it starts, or lapsed already, is refused with a typed error.
        let now = clocks.utcNow()
        var backwards: StorageError?
        do {
            _ = try EvidenceHolds.add(
                EvidenceHold(
                    id: "h-1", camera: c.camera, from: now, to: now.adding(micros: -1), reason: "r", caseID: "c",
                    until: nil, createdAt: now),
                disks: [disks[1]], box: "test-box", maxHoldPercent: 50, now: now, logger: testLogger)
        } catch { backwards = error }
        #expect(backwards?.code == .invalidArgument)
        var lapsed: StorageError?
        do {
            _ = try EvidenceHolds.add(
                EvidenceHold(
                    id: "h-2", camera: c.camera, from: UTCMicros(0), to: now, reason: "r", caseID: "c", until: now,
                    createdAt: now),
                disks: [disks[1]], box: "test-box", maxHoldPercent: 50, now: now, logger: testLogger)
        } catch { lapsed = error }
        #expect(lapsed?.code == .invalidArgument)
    }
}
