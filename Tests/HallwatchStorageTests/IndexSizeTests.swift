import Foundation
import GRDB
import HallwatchCore
import Synchronization
import Testing

@testable import HallwatchStorage

@Suite("Index size")
struct IndexSizeTests {
    /// Records `minutes` of `cameras` cameras at `fragmentsPerSecond`, committing every second, and
    /// returns the growth of `index.sqlite` per camera-minute, bytes.
    static func measure(cameras: Int, minutes: Int, fragmentsPerSecond: Int, slewPPM: Double = 0, name: String) throws
        -> (perCameraMinute: Double, chunks: Int, blobBytesPerFragment: Double)
    {
        let rig = try Rig(slots: cameras * 2 + 2, slotSizeBytes: 8 << 20, name: name)
        defer { rig.dir.cleanup() }
        // Baseline: the index of the same disk with nothing recorded.
        try rig.writer().close()
        let baseline = FileOps.fileSize(rig.disk.indexPath) ?? 0

        let w = try rig.writer()
        var streams = (0..<cameras).map { i in
            var s = Stream(
                "cam-\(i)", fragment90k: Int32(90_000 / fragmentsPerSecond), payloadBytes: 1_500, seed: UInt64(i))
            s.slewPPM = i % 2 == 0 ? slewPPM : -slewPPM
            return s
        }
        for s in streams { try s.sendInit(w) }
        for _ in 0..<(minutes * 60) {
            for i in streams.indices { try streams[i].send(fragmentsPerSecond, to: w) }
            try w.syncAndCommit()
        }
        try w.close()
        #expect(FileOps.fileSize(rig.disk.indexPath + "-wal") ?? 0 == 0)
        let size = FileOps.fileSize(rig.disk.indexPath) ?? 0
        let r = try rig.reader()
        let chunks = try streams.map { try r.runs(camera: $0.camera).first?.fragmentCount ?? 0 }
        #expect(chunks == Array(repeating: minutes * 60 * fragmentsPerSecond, count: cameras))
        // Every fragment's UTC reads back as written, within the chunk line's tolerance.
        for s in streams {
            let read = try r.segments(
                camera: s.camera, from: UTCMicros(0), to: UTCMicros(Int64.max / 2), startAtKeyframe: false
            ).flatMap(\.fragments)
            let worst = zip(read, s.sent).map { abs($0.meta.utc.micros - $1.meta.utc.micros) }.max() ?? 0
            #expect(
                read.count == s.sent.count && worst <= ChunkDraft.utcToleranceMicros,
                "\(s.camera): UTC read back off by \(worst) µs")
        }
        let chunkRows = try r.db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM chunk") } ?? 0
        let blob =
            try r.db.read {
                try Double.fetchOne($0, sql: "SELECT SUM(LENGTH(fragments)) * 1.0 / SUM(fragmentCount) FROM chunk")
            } ?? 0
        return (Double(size - baseline) / Double(cameras * minutes), chunkRows, blob)
    }

    @Test("≤ 4 KB of index per camera-minute at 2 fragments/s with a commit every second")
    func twoPerSecond() throws {
        let m = try Self.measure(cameras: 2, minutes: 10, fragmentsPerSecond: 2, name: "indexSize2")
        print(
            "index growth: \(Int(m.perCameraMinute)) bytes per camera-minute at 2 fragments/s (\(m.chunks) chunk rows for 20 camera-minutes, \(m.blobBytesPerFragment) blob bytes per fragment)"
        )
        #expect(m.perCameraMinute <= 4_096)
        #expect(m.chunks <= 2 * 11)
    }

    @Test("still ≤ 4 KB per camera-minute with 0.2 s fragments")
    func fivePerSecond() throws {
        let m = try Self.measure(cameras: 2, minutes: 3, fragmentsPerSecond: 5, name: "indexSize5")
        print(
            "index growth: \(Int(m.perCameraMinute)) bytes per camera-minute at 5 fragments/s (\(m.chunks) chunk rows, \(m.blobBytesPerFragment) blob bytes per fragment)"
        )
        #expect(m.perCameraMinute <= 4_096)
    }

    @Test("a wall clock slewing ±300 ppm against media time keeps chunks long and UTC exact")
    func slewed() throws {
        let m = try Self.measure(cameras: 2, minutes: 10, fragmentsPerSecond: 2, slewPPM: 300, name: "indexSizeSlew")
        print(
            "index growth: \(Int(m.perCameraMinute)) bytes per camera-minute at ±300 ppm slew (\(m.chunks) chunk rows for 20 camera-minutes)"
        )
        #expect(m.perCameraMinute <= 4_096)
        #expect(m.chunks <= 2 * 11)
    }
}

/// The recorder creates a disk's index while the pruner may open it for retention (its first pass, a second
/// after the box starts): two connections migrating one new file at once. GRDB's migrator reads which
/// migrations are applied before it takes the write lock, so the one that waited failed with "table … already
/// exists" — once on CI the recorder, whose disk then stayed failed. Both must open it.
@Suite("Index opened by two processes at once")
struct ConcurrentIndexOpenTests {
    @Test func twoWritersMigratingANewIndexAtOnceBothOpenIt() throws {
        let dir = TempDir("index-race")
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        let failures = Mutex<[String]>([])
        for round in 0..<50 {
            let path = dir.path + "/index-\(round).sqlite"
            DispatchQueue.concurrentPerform(iterations: 2) { _ in
                do {
                    let q = try IndexSchema.openForWriting(path)
                    try q.close()
                } catch {
                    failures.withLock { $0.append("round \(round): \(error)") }
                }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 }.prefix(3))")
    }
}
