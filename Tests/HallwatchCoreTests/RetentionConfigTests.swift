import Foundation
import Testing

@testable import HallwatchCore

@Suite("Retention bus messages")
struct RetentionMessageTests {
    @Test("golden JSON of a deletion (the audit line and the bus message) and a hold")
    func golden() throws {
        let d = DeletionRecord(
            id: 17, disk: "disk0", slot: 12, generation: 3, camera: CameraID("lobby")!,
            from: UTCMicros(1_763_625_600_000_000),
            to: UTCMicros(1_763_632_800_000_000), bytes: 65_280, rule: "maxAge",
            detail: "video from 2025-11-20T08:00:00.000Z is older than maxAge 7d",
            deletedAt: UTCMicros(1_764_900_000_000_000))
        #expect(
            String(decoding: try BusCoding.encode(d), as: UTF8.self)
                == #"{"bytes":65280,"camera":"lobby","deletedAt":1764900000000000,"detail":"video from 2025-11-20T08:00:00.000Z is older than maxAge 7d","disk":"disk0","from":1763625600000000,"generation":3,"id":17,"rule":"maxAge","slot":12,"to":1763632800000000}"#
        )
        let h = EvidenceHold(
            id: "h-0000002a", camera: CameraID("gym")!, from: UTCMicros(1_000_000), to: UTCMicros(2_000_000),
            reason: "r", caseID: "c",
            until: nil, createdAt: UTCMicros(3_000_000))
        #expect(
            String(decoding: try BusCoding.encode(h), as: UTF8.self)
                == #"{"camera":"gym","caseID":"c","createdAt":3000000,"from":1000000,"id":"h-0000002a","reason":"r","to":2000000}"#
        )
        #expect(try BusCoding.decode(EvidenceHold.self, from: BusCoding.encode(h)) == h)
        #expect(h.isActive(at: UTCMicros(0)) && h.status(at: UTCMicros(0)) == "active")
        var lapsing = h
        lapsing.until = UTCMicros(5)
        #expect(lapsing.status(at: UTCMicros(5)) == "expired")
    }
}
