import Foundation
import HallwatchConfig
import HallwatchCore
import Synchronization
import Testing

@testable import HallwatchStorage

/// The recording pool's disk failover, steps F1–F6 of `WriteProtocol.md`, on real slot files and indexes:
/// a disk's mount vanishes (its directory renamed away, as a lazy unmount leaves it), comes back, or leaves an
/// empty mount point behind. No root, no processes: the monitor is called as the recorder's thread calls it.
@Suite("Recording pool (F1–F6)")
struct RecordingPoolTests {
    let lobby = CameraID("lobby")!
    let run: UInt64 = 1_764_000_000_000_000

    final class Announcements: Sendable {
        let all = Mutex<[RecordingPool.Announcement]>([])
        var errorCodes: [String] {
            all.withLock { $0.compactMap { if case .error(let e) = $0 { e.code } else { nil } } }
        }
        func health(of disk: String) -> DiskState.Health? {
            all.withLock { $0.compactMap { if case .disk(let s) = $0, s.disk == disk { s.health } else { nil } }.last }
        }
    }

    struct Box {
        let one = TempDir("pool-one"), two = TempDir("pool-two")
        let clocks = TestClocks()
        let heard = Announcements()
        let pool: RecordingPool

        init() throws {
            for d in [one, two] {
                try FileManager.default.createDirectory(atPath: d.path, withIntermediateDirectories: true)
            }
            let config = try ConfigLoader.parse(
                """
                box: test-box
                recorder:
                  slotCount: 8
                  slotSizeBytes: 1048576
                  disks:
                    - {name: disk0, path: \(one.path)}
                    - {name: disk1, path: \(two.path)}
                cameras:
                  - {id: lobby, source: "rtsp://127.0.0.1:8554/lobby", disk: disk0}

                """)
            let heard = heard
            pool = RecordingPool(config: config, clocks: clocks, logger: testLogger) { a in
                heard.all.withLock { $0.append(a) }
            }
        }

        func commit(_ disk: String) throws {
            let route = try #require(pool.healthy().first { $0.disk == disk })
            _ = try route.writer.syncAndCommit()
        }

        func summary(_ path: String, _ camera: CameraID) throws -> [RunSummary] {
            try RecordingReader(at: path, box: "test-box").runs(camera: camera)
        }

        func cleanup() {
            one.cleanup()
            two.cleanup()
            try? FileManager.default.removeItem(atPath: one.path + ".gone")
        }
    }

    func segment(_ n: UInt32) -> MediaSegment {
        n == 0
            ? MediaSegment(meta: initMeta(run: run), payload: [9, 9, 9])
            : MediaSegment(
                meta: fragmentMeta(run: run, sequence: n, duration90k: 90_000),
                payload: Array(repeating: UInt8(n), count: 5_000))
    }

    @Test func aDisksStateCarriesItsSlowestCommitSinceTheLastStateThenStartsOver() throws {
        let box = try Box()
        defer { box.cleanup() }
        #expect(box.pool.openAll() == ["disk0", "disk1"])
        var slow = CommitReport()
        var fast = CommitReport()
        slow.elapsedNanos = 183_456_789
        fast.elapsedNanos = 4_000_000
        box.pool.noteCommit(fast, disk: "disk0", seconds: 1)
        box.pool.noteCommit(slow, disk: "disk0", seconds: 1)
        box.pool.noteCommit(fast, disk: "disk0", seconds: 0)  // a commit with no cadence before it still counts
        box.pool.publishAll()
        func states() -> [String: Double?] {
            box.heard.all.withLock {
                var out: [String: Double?] = [:]
                for case .disk(let s) in $0 { out[s.disk] = s.slowestCommitMillis }
                return out
            }
        }
        #expect(states() == ["disk0": 183.46, "disk1": nil])
        box.pool.noteCommit(fast, disk: "disk0", seconds: 1)
        box.pool.publishAll()
        #expect(states() == ["disk0": 4.0, "disk1": nil])
    }

    @Test func aVanishedDiskIsFailedAndItsUnindexedTailIsWrittenAgainOnTheOther() throws {
        let box = try Box()
        defer { box.cleanup() }
        #expect(box.pool.openAll() == ["disk0", "disk1"])
        let lane = box.pool.lane(for: lobby)
        for n in 0...3 { try lane.deliver(segment(UInt32(n))) }
        try box.commit("disk0")  // 1–3 durable and indexed on disk0
        for n in 4...5 { try lane.deliver(segment(UInt32(n))) }  // 4–5 written, not yet indexed

        // F1: the mount goes away under the writer.
        try FileManager.default.moveItem(atPath: box.one.path, toPath: box.one.path + ".gone")
        box.pool.monitor()
        #expect(box.heard.errorCodes.contains("storage.diskFailed"))
        #expect(box.heard.health(of: "disk0") == .failed)
        #expect(box.pool.healthy().map(\.disk) == ["disk1"])

        // F2, F3: the next fragment routes to disk1, behind the run's init segment and disk0's unindexed tail.
        for n in 6...7 { try lane.deliver(segment(UInt32(n))) }
        try box.commit("disk1")
        let onOne = try box.summary(box.one.path + ".gone", lobby)
        let onTwo = try box.summary(box.two.path, lobby)
        #expect(onOne.map(\.fragmentCount) == [3])
        #expect(onTwo.map(\.fragmentCount) == [4])
        #expect(onTwo.first?.startUTC == segment(4).meta.utc)
        let end = try #require(box.pool.storedEnd(of: lobby))
        #expect(end.run == run && end.end90k == Int64(7 * 90_000))

        // F6 + F4: the disk comes back (same meta, remounted), is rescanned, and the camera pinned to it returns;
        // disk1 stays healthy and keeps what it has.
        try FileManager.default.moveItem(atPath: box.one.path + ".gone", toPath: box.one.path)
        box.clocks.advance(micros: 6_000_000)
        box.pool.monitor()
        #expect(box.heard.errorCodes.contains("storage.diskReturned"))
        #expect(box.heard.health(of: "disk0") == .healthy)
        try lane.deliver(segment(8))
        try box.commit("disk0")
        try box.commit("disk1")
        // Recovery (R) re-indexed disk0's durable tail (4–5) when it came back, so 4–5 are on both disks; a
        // reader takes each fragment once (by its start), in order, and fragment 8 is on disk0.
        #expect(try box.summary(box.one.path, lobby).map(\.fragmentCount).reduce(0, +) == 6)
        #expect(try box.summary(box.two.path, lobby).map(\.fragmentCount) == [4])
        let library = RecordingLibrary(disks: [("disk0", box.one.path), ("disk1", box.two.path)], box: "test-box")
        let read = try library.segments(camera: lobby, from: UTCMicros(0), to: UTCMicros(Int64.max / 2))
        #expect(read.map(\.run) == [run])
        #expect(read.first?.fragments.map(\.meta.sequence) == Array(UInt32(1)...8))
    }

    /// The rule "never initialise a disk that was open once": after a mount vanishes, the empty mount point
    /// left in its place is not formatted on the file system beneath, however long the monitor waits.
    @Test func anEmptyMountPointWhereAnOpenDiskWasIsNeverFormatted() throws {
        let box = try Box()
        defer { box.cleanup() }
        box.pool.openAll()
        let lane = box.pool.lane(for: lobby)
        for n in 0...2 { try lane.deliver(segment(UInt32(n))) }
        try FileManager.default.moveItem(atPath: box.one.path, toPath: box.one.path + ".gone")
        try FileManager.default.createDirectory(atPath: box.one.path, withIntermediateDirectories: false)
        for _ in 0..<3 {
            box.clocks.advance(micros: 6_000_000)
            box.pool.monitor()
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.one.path).isEmpty)
        #expect(box.heard.health(of: "disk0") != .healthy)
        try lane.deliver(segment(3))  // recording goes on on disk1
        #expect(box.pool.healthy().map(\.disk) == ["disk1"])
    }

    @Test func withNoHealthyDiskTheLaneRefusesAndTheWorkerKeepsItsBacklog() throws {
        let box = try Box()
        defer { box.cleanup() }
        box.pool.openAll()
        for d in [box.one.path, box.two.path] { try FileManager.default.moveItem(atPath: d, toPath: d + ".x") }
        defer { for d in [box.one.path, box.two.path] { try? FileManager.default.removeItem(atPath: d + ".x") } }
        box.pool.monitor()
        let lane = box.pool.lane(for: lobby)
        #expect(throws: StorageError.self) { try lane.deliver(segment(0)) }
        #expect(box.pool.healthy().isEmpty)
    }
}
