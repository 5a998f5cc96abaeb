import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchStorage
import Testing

@testable import HallwatchPruner

/// Holds other processes request on the bus (the web, on a door event or for an evidence export): checked, placed once, kept by a pass.
@Suite("Pruner: requested evidence holds")
struct HoldRequestTests {
    @Test("a request is checked, then placed on the disk once (a repeat is a no-op)")
    func placeRequested() throws {
        let dir =
            FileManager.default.temporaryDirectory.path + "/hw-holdreq-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let disk = try RecordingDisk.initialize(
            at: dir + "/disk0", box: "test-box", slotCount: 16, slotSizeBytes: 64 << 10, clocks: SystemClocks())
        _ = try DiskWriter(disk: disk, logger: quiet).close()  // the writer makes the index
        let config = try ConfigLoader.parse(
            """
            box: test-box
            recorder:
              disks: [{name: disk0, path: \(dir)/disk0}]
            cameras:
              - {id: lobby, source: "rtsp://127.0.0.1:8554/lobby"}
            """)
        let service = PrunerService(config: config, source: .provider({ config }), presence: nil, logger: quiet)
        let now = SystemClocks().utcNow()
        let hold = EvidenceHold(
            id: "h-0000abcd", camera: CameraID("lobby")!, from: now.adding(micros: -10_000_000),
            to: now.adding(micros: 20_000_000), reason: "door.forced at door east (onguard event f1)",
            caseID: "event-7",
            until: nil, createdAt: now)
        #expect(service.place(requested: hold) == nil)
        #expect(service.place(requested: hold) == nil)
        let holds = try EvidenceHolds.list(
            disks: NamedDisk.all(of: config), box: "test-box", logger: quiet)
        #expect(holds.map(\.id) == ["h-0000abcd"] && holds[0].reason == hold.reason)

        var bad = hold
        bad.camera = CameraID("gym")!
        #expect(service.place(requested: bad)?.contains("not configured") == true)
        bad = hold
        bad.id = "h-0000abce"
        bad.to = hold.from.adding(micros: 25 * 3_600_000_000)
        #expect(service.place(requested: bad)?.contains("at most 24 h") == true)
        // An evidence export's hold: a range longer than a door's rolls (up to 24 h) is placed.
        var export = hold
        export.id = "h-0000abd0"
        export.from = now.adding(micros: -3 * 3_600_000_000)
        export.reason = "fight in the lobby"
        export.caseID = "2026-0412"
        #expect(service.place(requested: export) == nil)
        bad = hold
        bad.id = "../../x"
        #expect(service.place(requested: bad)?.contains("not a hold id") == true)
        bad = hold
        bad.id = "h-0000abcf"
        bad.reason = "line\nbreak"
        #expect(service.place(requested: bad)?.contains("control characters") == true)
        #expect(try EvidenceHolds.list(disks: NamedDisk.all(of: config), box: "test-box", logger: quiet).count == 2)
    }
}
