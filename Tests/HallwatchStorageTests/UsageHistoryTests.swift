import Foundation
import HallwatchCore
import Testing

@testable import HallwatchStorage

@Suite("Usage history from the index (the web's 24 h plots)")
struct UsageHistoryTests {
    @Test("bytes per camera per bucket and bytes in use at each bucket's end, from the chunks")
    func buckets() throws {
        let rig = try Rig(slots: 16, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        let w = try rig.writer()
        // Two cameras from the run start: lobby 0.5 s fragments of 4000 bytes for 60 s (64 kbit/s of payload),
        // gym 0.5 s fragments of 1000 bytes for 30 s.
        var lobby = Stream("lobby", payloadBytes: 4000)
        var gym = Stream("gym", payloadBytes: 1000, seed: 2)
        try lobby.sendInit(w)
        try gym.sendInit(w)
        for i in 0..<120 {
            try lobby.send(1, to: w)
            if i < 60 { try gym.send(1, to: w) }
            if i % 20 == 19 { _ = try w.syncAndCommit() }
        }
        _ = try w.close()
        let r = try rig.reader()
        // Buckets of 30 s from 30 s before the run: [-30, 0), [0, 30), [30, 60), [60, 90).
        let start = lobby.startUTC.adding(micros: -30_000_000)
        let h = try r.usageHistory(from: start, bucket: .seconds(30), count: 4)
        #expect(h.bucketCount == 4 && h.bucketMicros == 30_000_000)
        #expect(h.capacityBytes == 16 << 20)
        let l = try #require(h.recordedBytes[CameraID("lobby")!])
        let g = try #require(h.recordedBytes[CameraID("gym")!])
        // Record headers and the init segment ride along with payload: within 10 % of the payload bytes.
        #expect(l[0] == 0 && g[0] == 0 && l[3] == 0 && g[3] == 0)
        for v in [l[1], l[2]] { #expect(abs(Double(v) / 240_000 - 1) < 0.1, "\(l)") }
        #expect(abs(Double(g[1]) / 60_000 - 1) < 0.1, "\(g)")
        #expect(g[2] < 6_000, "\(g)")
        // In use: nothing before the run, then growing, the whole recording at the end.
        #expect(h.usedBytes[0] == 0)
        #expect(h.usedBytes[1] < h.usedBytes[2] && h.usedBytes[2] == h.usedBytes[3])
        #expect(abs(Double(h.usedBytes[3]) / 540_000 - 1) < 0.1, "\(h.usedBytes)")
        #expect(throws: StorageError.self) { try r.usageHistory(from: start, bucket: .zero, count: 4) }
    }
}
