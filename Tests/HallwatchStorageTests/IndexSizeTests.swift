import Foundation
import GRDB
import HallwatchCore
import Testing
@testable import HallwatchStorage

@Suite("Index size")
struct IndexSizeTests {
    /// Records `minutes` of `cameras` cameras at `fragmentsPerSecond`, committing every second, and
    /// returns the growth of `index.sqlite` per camera-minute, bytes.
    static func measure(cameras: Int, minutes: Int, fragmentsPerSecond: Int, name: String) throws -> (perCameraMinute: Double, chunks: Int, blobBytesPerFragment: Double) {
        let rig = try Rig(slots: cameras * 2 + 2, slotSizeBytes: 8 << 20, name: name); defer { rig.dir.cleanup() }
        // Baseline: the index of the same disk with nothing recorded.
        try rig.writer().close()
        let baseline = FileOps.fileSize(rig.disk.indexPath) ?? 0

        let w = try rig.writer()
        var streams = (0..<cameras).map { Stream("cam-\($0)", fragment90k: Int32(90_000 / fragmentsPerSecond), payloadBytes: 1_500, seed: UInt64($0)) }
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
        let chunkRows = try r.db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM chunk") } ?? 0
        let blob = try r.db.read { try Double.fetchOne($0, sql: "SELECT SUM(LENGTH(fragments)) * 1.0 / SUM(fragmentCount) FROM chunk") } ?? 0
        return (Double(size - baseline) / Double(cameras * minutes), chunkRows, blob)
    }

    @Test("≤ 4 KB of index per camera-minute at 2 fragments/s with a commit every second")
    func twoPerSecond() throws {
        let m = try Self.measure(cameras: 2, minutes: 10, fragmentsPerSecond: 2, name: "indexSize2")
        print("index growth: \(Int(m.perCameraMinute)) bytes per camera-minute at 2 fragments/s (\(m.chunks) chunk rows for 20 camera-minutes, \(m.blobBytesPerFragment) blob bytes per fragment)")
        #expect(m.perCameraMinute <= 4_096)
        #expect(m.chunks <= 2 * 11)
    }

    @Test("still ≤ 4 KB per camera-minute with 0.2 s fragments")
    func fivePerSecond() throws {
        let m = try Self.measure(cameras: 2, minutes: 3, fragmentsPerSecond: 5, name: "indexSize5")
        print("index growth: \(Int(m.perCameraMinute)) bytes per camera-minute at 5 fragments/s (\(m.chunks) chunk rows, \(m.blobBytesPerFragment) blob bytes per fragment)")
        #expect(m.perCameraMinute <= 4_096)
    }
}
