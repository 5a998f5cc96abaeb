import Foundation
import HallwatchCore
import HallwatchStorage
import Testing

/// A bad day for disks (write protocol, steps F1–F6): a disk that starts failing with `EIO`, a disk
/// whose mount vanishes mid-write, a disk that is full. Real processes (simcam, mosquitto, recorder,
/// capture workers under the supervisor), real file systems (tmpfs mounts), real faults (an
/// `LD_PRELOAD` shim for `EIO` on one disk only, `umount -l`). Each asserts that the other disk and the
/// other cameras go on, that the failed disk's cameras are recording on a healthy one within 3 s, that
/// no process died, and measures the hole the failure left in each moved camera's recording.
@Suite("Disk failures", .serialized)
struct DiskFailureTests {
    static let cameras = [
        TestBox.Camera(id: "lobby", file: "h264-aac.mp4", audio: true),
        TestBox.Camera(id: "gym", file: "h264-bframes.mp4"),
        TestBox.Camera(id: "hallway", file: "hevc.mp4"),
        TestBox.Camera(id: "entrance", file: "h264-bframes.mp4"),
    ]

    static var isRoot: Bool { geteuid() == 0 }

    /// The processes whose PIDs must survive a disk failure.
    static func pids(_ box: TestBox) -> [String: Int32] {
        var out: [String: Int32] = [:]
        for p in ["recorder"] + cameras.map({ "capture-\($0.id)" }) { out[p] = box.pid(p) }
        return out
    }

    /// Waits until every camera is recording (an indexed fragment ending in the last 5 s).
    static func waitRecording(_ box: TestBox, seconds: Double = 45) -> Bool {
        E2E.waitFor(seconds) {
            let now = SystemClocks().utcNow()
            return cameras.allSatisfy { (box.recordedEnd($0.id)?.micros ?? 0) > now.micros - 5_000_000 }
        }
    }

    /// Which disk each camera's newest fragment is on.
    static func diskOf(_ box: TestBox) -> [String: String] {
        var out: [String: String] = [:]
        for c in cameras {
            let ends = box.disks.compactMap { d in box.recordedEnd(c.id, disk: d.name).map { (d.name, $0) } }
            out[c.id] = ends.max { $0.1 < $1.1 }?.0
        }
        return out
    }

    /// The last ``DiskState`` of `disk` seen on the bus.
    static func state(_ log: BusLog, _ box: TestBox, _ disk: String) -> DiskState? {
        log.all(DiskState.self, topic: BusTopics(box: box.name).disk(disk)).last
    }

    /// Failing, then measuring: after `fail()` at `failedAt`, the disk is marked failed on the bus and
    /// every camera records on `survivor` within 3 s (+ one cadence for the index to show it); the
    /// processes are the same; the holes are printed and bounded.
    func expectFailover(
        _ box: TestBox, _ log: BusLog, failed: String, survivor: String, code: String, before: [String: Int32],
        failedAt: UTCMicros, label: String
    ) async throws {
        let marked = E2E.waitFor(10) { Self.state(log, box, failed)?.health == .failed }
        #expect(
            marked,
            "\(label): \(failed) was not marked failed on the bus: \(String(describing: Self.state(log, box, failed)))")
        #expect(
            Self.state(log, box, failed)?.reason?.code == code,
            "\(label): reason \(String(describing: Self.state(log, box, failed)?.reason))")
        let moved = E2E.waitFor(3 + 1.5) {
            Self.cameras.allSatisfy { (box.recordedEnd($0.id, disk: survivor)?.micros ?? 0) > failedAt.micros }
        }
        #expect(moved, "\(label): not every camera was recording on \(survivor) within 3 s of the failure")
        try await Task.sleep(for: .seconds(6))
        #expect(Self.pids(box) == before, "\(label): a process died or restarted: \(before) → \(Self.pids(box))")
        let states = Self.state(log, box, survivor)
        #expect(
            states?.health == .healthy && states?.cameras.count == Self.cameras.count,
            "\(label): \(String(describing: states))")
        var holes: [String] = []
        for c in Self.cameras {
            let hole = try box.largestHole(
                c.id, from: failedAt.adding(micros: -10_000_000), to: SystemClocks().utcNow())
            holes.append("\(c.id) \(String(format: "%.3f", hole)) s")
            // One fragment at most: the failed disk's unindexed tail is written again on the survivor (F3).
            #expect(hole <= 1.0, "\(label): \(c.id) has a hole of \(hole) s around the failure")
        }
        print("\(label): largest hole per camera around the failure: \(holes.joined(separator: ", "))")
        let check = try E2E.run(
            E2E.tool("hallwatchctl"),
            ["check", "--level", "crc", "--config", box.configPath, box.disks.first { $0.name == survivor }!.path])
        #expect(check.status == 0, "\(label): check of \(survivor): \(check.stdout)")
    }

    @Test func eioOnOneOfTwoDisks() async throws {
        let shim = "/tmp/hw-eio-\(getpid()).so"
        let cc = try E2E.run(
            "/usr/bin/cc", ["-shared", "-fPIC", "-O2", "-o", shim, E2E.repoRoot + "/Tests/FaultShim/eio.c", "-ldl"])
        try #require(cc.status == 0, "cannot build the fault shim: \(cc.stderr)")
        defer { unlink(shim) }
        let box = try TestBox(
            "eio", cameras: Self.cameras,
            disks: [("disk0", "/tmp/hw-eio-\(getpid())/disk0"), ("disk1", "/tmp/hw-eio-\(getpid())/disk1")])
        let trigger = box.dir + "/fail-disk1"
        try box.start(environment: [
            "LD_PRELOAD": shim, "HALLWATCH_FAULT_PREFIX": box.disks[1].path + "/", "HALLWATCH_FAULT_TRIGGER": trigger,
        ])
        defer { box.stop() }
        #expect(E2E.waitFor(20) { FileManager.default.fileExists(atPath: box.dir + "/bus.sock") })
        let log = try await BusLog(
            socket: box.dir + "/bus.sock", topics: [BusTopics(box: box.name).allDisks, BusTopics(box: box.name).errors])
        try #require(Self.waitRecording(box), "the cameras did not start recording")
        try await Task.sleep(for: .seconds(3))
        let placed = Self.diskOf(box)
        #expect(Set(placed.values) == ["disk0", "disk1"], "balanced over both disks: \(placed)")
        let before = Self.pids(box)

        let failedAt = SystemClocks().utcNow()
        FileManager.default.createFile(atPath: trigger, contents: nil)
        try await expectFailover(
            box, log, failed: "disk1", survivor: "disk0", code: "storage.io", before: before, failedAt: failedAt,
            label: "EIO")
        let errors = log.all(ErrorEvent.self, topic: BusTopics(box: box.name).errors).map(\.code)
        #expect(errors.contains("storage.diskFailed"), "errors on the bus: \(errors)")
        // What an installer sees: the failed disk in `hallwatchctl status`, with its reason.
        let status = try E2E.run(E2E.tool("hallwatchctl"), ["status", "--config", box.configPath])
        #expect(
            status.stdout.contains("disk1 FAILED storage.io") && status.stdout.contains("disk0 healthy"),
            "status: \(status.stdout)")
    }

    @Test(.enabled(if: isRoot, "needs root to mount a tmpfs (CI runs as root)"))
    func diskVanishesMidWriteAndReturns() async throws {
        let base = "/tmp/hw-vanish-\(getpid())"
        let box = try TestBox(
            "vanish",
            cameras: Self.cameras.enumerated().map { i, c in
                var c = c
                if i == 1 { c.disk = "disk1" }
                return c
            },
            disks: [("disk0", base + "/disk0"), ("disk1", base + "/disk1")], slotSizeBytes: 4 << 20, slotCount: 16)
        let mount = box.disks[1].path
        try #require(E2E.run("/bin/mount", ["-t", "tmpfs", "-o", "size=80m", "tmpfs", mount]).status == 0)
        defer { _ = try? E2E.run("/bin/umount", ["-l", mount]) }
        try box.start()
        defer { box.stop() }
        #expect(E2E.waitFor(20) { FileManager.default.fileExists(atPath: box.dir + "/bus.sock") })
        let log = try await BusLog(
            socket: box.dir + "/bus.sock", topics: [BusTopics(box: box.name).allDisks, BusTopics(box: box.name).errors])
        try #require(Self.waitRecording(box), "the cameras did not start recording")
        try await Task.sleep(for: .seconds(3))
        #expect(Self.diskOf(box)["gym"] == "disk1", "gym is pinned to disk1: \(Self.diskOf(box))")
        let before = Self.pids(box)

        let failedAt = SystemClocks().utcNow()
        #expect(try E2E.run("/bin/umount", ["-l", mount]).status == 0)
        try await expectFailover(
            box, log, failed: "disk1", survivor: "disk0", code: "storage.vanished", before: before, failedAt: failedAt,
            label: "vanished")

        // An empty file system mounted in its place is not a recording disk: it is never initialised.
        #expect(try E2E.run("/bin/mount", ["-t", "tmpfs", "-o", "size=80m", "tmpfs", mount]).status == 0)
        try await Task.sleep(for: .seconds(7))
        #expect(
            !FileManager.default.fileExists(atPath: mount + "/meta"), "the recorder initialised an empty mount point")
        #expect(Self.state(log, box, "disk1")?.health == .failed)

        // A replacement disk, initialised by the operator, is opened (recovery rescans it) and the
        // camera pinned to it moves back.
        let initialized = try E2E.run(
            E2E.tool("hallwatchctl"),
            ["disk", "init", mount, "--config", box.configPath, "--slots", "16", "--slot-size", "4M"])
        #expect(initialized.status == 0, "disk init: \(initialized.stdout) \(initialized.stderr)")
        let returned = SystemClocks().utcNow()
        #expect(
            E2E.waitFor(15) { Self.state(log, box, "disk1")?.health == .healthy },
            "the replaced disk was not taken back")
        #expect(
            E2E.waitFor(8) { (box.recordedEnd("gym", disk: "disk1")?.micros ?? 0) > returned.micros },
            "gym did not move back to disk1")
        #expect(Self.pids(box) == before)
    }

    @Test(.enabled(if: isRoot, "needs root to mount a tmpfs (CI runs as root)"))
    func fullDiskKeepsRecordingAndRaisesTheOverrunAlarm() async throws {
        let base = "/tmp/hw-full-\(getpid())"
        let cams = Array(Self.cameras.prefix(2))
        let box = try TestBox(
            "full", cameras: cams, disks: [("disk0", base + "/disk0")], slotSizeBytes: 1 << 20, slotCount: 8)
        let mount = box.disks[0].path
        // Room for the 8 MiB of slots and the index with its write-ahead log (SQLite checkpoints it at 1000 pages,
        // 4 MiB), nothing more. At 10 MiB (1.9 MiB left after the slots) one CI run indexed nothing in 120 s, for a
        // cause its deleted logs did not tell: a failure now prints every process's log.
        try #require(E2E.run("/bin/mount", ["-t", "tmpfs", "-o", "size=16m", "tmpfs", mount]).status == 0)
        defer { _ = try? E2E.run("/bin/umount", ["-l", mount]) }
        try box.start()
        defer { box.stop() }
        #expect(E2E.waitFor(20) { FileManager.default.fileExists(atPath: box.dir + "/bus.sock") })
        let log = try await BusLog(socket: box.dir + "/bus.sock", topics: [BusTopics(box: box.name).errors])
        let started = SystemClocks().utcNow()
        let alarmed = E2E.waitFor(120) {
            log.all(ErrorEvent.self, topic: BusTopics(box: box.name).errors).contains { $0.code == "storage.overrun" }
        }
        #expect(
            alarmed,
            """
            no storage.overrun alarm while the disk filled with no pruner running; \
            df: \((try? E2E.run("/bin/df", ["-k", mount]).stdout) ?? "")
            \(box.logTails())
            """)
        let alarmAt = SystemClocks().utcNow()
        let before = ["recorder": box.pid("recorder")]
        try await Task.sleep(for: .seconds(10))
        for c in cams {
            #expect(
                (box.recordedEnd(c.id)?.micros ?? 0) > alarmAt.micros + 5_000_000,
                "\(c.id) stopped recording after the disk filled")
            let hole = try box.largestHole(c.id, from: alarmAt.adding(micros: -5_000_000), to: SystemClocks().utcNow())
            #expect(hole <= 0.1, "\(c.id): a hole of \(hole) s while slots were reused")
        }
        #expect(["recorder": box.pid("recorder")] == before, "the recorder restarted")
        let check = try box.check()
        #expect(check.status == 0, "check of a full, reused disk: \(check.stdout)")
        let df = try E2E.run("/bin/df", ["-k", mount]).stdout
        print(
            "full disk: alarm \(String(format: "%.1f", Double(alarmAt.micros - started.micros) / 1e6)) s after start; \(df.split(separator: "\n").last ?? "")"
        )
    }

    @Test func anotherBoxsDiskIsQuarantinedAndUntouched() async throws {
        let base = "/tmp/hw-foreign-\(getpid())"
        let cams = Array(Self.cameras.prefix(2))
        let box = try TestBox(
            "foreign", cameras: cams, disks: [("disk0", base + "/disk0"), ("disk1", base + "/disk1")],
            slotSizeBytes: 4 << 20, slotCount: 8)
        let foreign = box.disks[1].path
        let made = try E2E.run(
            E2E.tool("hallwatchctl"),
            ["disk", "init", foreign, "--box", "another-school", "--slots", "4", "--slot-size", "1M"])
        try #require(made.status == 0, "disk init: \(made.stderr)")
        func snapshot() -> [String: String] {
            var out: [String: String] = [:]
            for name in (FileManager.default.subpaths(atPath: foreign) ?? []).sorted() {
                let attrs = try? FileManager.default.attributesOfItem(atPath: foreign + "/" + name)
                let data = FileManager.default.contents(atPath: foreign + "/" + name) ?? Data()
                out[name] =
                    "\(attrs?[.size] ?? 0) \((attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0) \(data.hashValue)"
            }
            return out
        }
        let before = snapshot()
        try box.start()
        defer { box.stop() }
        #expect(E2E.waitFor(20) { FileManager.default.fileExists(atPath: box.dir + "/bus.sock") })
        let log = try await BusLog(socket: box.dir + "/bus.sock", topics: [BusTopics(box: box.name).allDisks])
        #expect(
            E2E.waitFor(45) { cams.allSatisfy { box.recordedEnd($0.id, disk: "disk0") != nil } },
            "the cameras did not record on disk0")
        #expect(
            E2E.waitFor(15) { Self.state(log, box, "disk1")?.health == .quarantined },
            "\(String(describing: Self.state(log, box, "disk1")))")
        #expect(Self.state(log, box, "disk1")?.reason?.code == "storage.foreignDisk")
        try await Task.sleep(for: .seconds(3))
        #expect(snapshot() == before, "the quarantined disk was modified")
    }
}
