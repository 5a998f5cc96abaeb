import Foundation
import HallwatchCore
import Testing

@testable import HallwatchStorage

@Suite("Disk layout")
struct DiskLayoutTests {
    @Test("initialize writes meta and zero-filled slots with generation-0 headers")
    func initialize() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        var progress: [Int] = []
        let disk = try RecordingDisk.initialize(
            at: dir.path, box: "lincoln", slotCount: 3, slotSizeBytes: 256 << 10,
            clocks: TestClocks(1_764_449_543_125_000)
        ) { done, total in
            progress.append(done)
            #expect(total == 3)
        }
        #expect(progress == [1, 2, 3])
        #expect(
            disk.meta.formatVersion == 1 && disk.meta.box == "lincoln" && disk.meta.slotCount == 3
                && disk.meta.slotSizeBytes == 256 << 10)
        #expect(disk.meta.createdAt == UTCMicros(1_764_449_543_125_000))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/meta.initializing"))
        let json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.path + "/meta")))
            as! [String: Any]
        #expect(Set(json.keys) == ["formatVersion", "diskUUID", "box", "slotSizeBytes", "slotCount", "createdAt"])
        for slot in 0..<3 {
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: disk.slotPath(slot))))
            #expect(bytes.count == 256 << 10)
            let h = try SlotHeader.decode(bytes)
            #expect(h.slot == slot && h.generation == 0 && h.camera == nil && h.diskUUID == disk.meta.diskUUID)
            #expect(bytes[SlotHeader.byteCount...].allSatisfy { $0 == 0 })
        }
        #expect(disk.slotPath(2).hasSuffix("/slots/000002.slot"))
        let again = try RecordingDisk.open(at: dir.path, box: "lincoln")
        #expect(again.meta == disk.meta)
    }

    @Test("open refuses another box's disk, a missing slot and a wrongly sized slot")
    func openValidates() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        let disk = try RecordingDisk.initialize(at: dir.path, box: "lincoln", slotCount: 2, slotSizeBytes: 64 << 10)
        #expect(storageCode { try RecordingDisk.open(at: dir.path, box: "jefferson") } == .foreignDisk)
        #expect(try RecordingDisk.open(at: dir.path).meta.box == "lincoln")
        try FileManager.default.removeItem(atPath: disk.slotPath(1))
        #expect(storageCode { try RecordingDisk.open(at: dir.path) } == .corrupt)
        FileManager.default.createFile(atPath: disk.slotPath(1), contents: Data(count: 1000))
        #expect(storageCode { try RecordingDisk.open(at: dir.path) } == .corrupt)
    }

    @Test(
        "initialize refuses foreign and initialised directories; openOrInitialize opens; an interrupted init is redone")
    func refusals() throws {
        let dir = TempDir()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir.path + "/family-photos.jpg", contents: Data([1, 2, 3]))
        #expect(
            storageCode { try RecordingDisk.initialize(at: dir.path, box: "b", slotCount: 1, slotSizeBytes: 64 << 10) }
                == .foreignDisk)
        #expect(
            storageCode {
                try RecordingDisk.openOrInitialize(at: dir.path, box: "b", slotCount: 1, slotSizeBytes: 64 << 10)
            } == .foreignDisk)
        #expect(FileManager.default.fileExists(atPath: dir.path + "/family-photos.jpg"))
        #expect(storageCode { try RecordingDisk.open(at: dir.path) } == .notInitialized)

        let d2 = TempDir()
        defer { d2.cleanup() }
        try FileManager.default.createDirectory(atPath: d2.path + "/lost+found", withIntermediateDirectories: true)
        let disk = try RecordingDisk.openOrInitialize(at: d2.path, box: "b", slotCount: 2, slotSizeBytes: 64 << 10)
        let reopened = try RecordingDisk.openOrInitialize(at: d2.path, box: "b", slotCount: 5, slotSizeBytes: 128 << 10)
        #expect(reopened.meta == disk.meta)
        #expect(
            storageCode { try RecordingDisk.initialize(at: d2.path, box: "b", slotCount: 1, slotSizeBytes: 64 << 10) }
                == .alreadyInitialized)

        // An initialisation cut off before its final rename is redone from scratch.
        let d3 = TempDir()
        defer { d3.cleanup() }
        _ = try RecordingDisk.initialize(at: d3.path, box: "b", slotCount: 2, slotSizeBytes: 64 << 10)
        try FileManager.default.moveItem(atPath: d3.path + "/meta", toPath: d3.path + "/meta.initializing")
        #expect(storageCode { try RecordingDisk.open(at: d3.path) } == .notInitialized)
        let redone = try RecordingDisk.openOrInitialize(at: d3.path, box: "b", slotCount: 3, slotSizeBytes: 64 << 10)
        #expect(redone.meta.slotCount == 3)

        #expect(
            storageCode {
                try RecordingDisk.initialize(at: TempDir().path, box: "b", slotCount: 1, slotSizeBytes: 1000)
            } == .invalidArgument)
    }
}
