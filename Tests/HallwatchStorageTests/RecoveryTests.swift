import Foundation
import GRDB
import HallwatchCore
import Testing

@testable import HallwatchStorage

@Suite("Recovery")
struct RecoveryTests {
    @Test("durable but unindexed records are indexed on reopen; appends resume in the same slot")
    func durableTail() throws {
        let rig = try Rig(slots: 3, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        var a = Stream("cam-a", seed: 11)
        do {
            let w = try rig.writer()
            try a.sendInit(w)
            try a.send(10, to: w)
            try w.syncAndCommit()
            try a.send(6, to: w)
            try w.syncWithoutCommitForTesting()
            // The process dies here: step C2 done, C4 never ran.
        }
        #expect(try rig.reader().runs(camera: a.camera).map(\.fragmentCount) == [10])
        let w = try rig.writer()
        #expect(w.recovery.recordsIndexed == 6)
        #expect(w.recovery.bytesIndexed == Int64(6 * (RecordHeader.byteCount + 4_000)))
        #expect(w.recovery.indexRebuilt == false && w.recovery.tornTailSlots == [] && w.recovery.unusableSlots == [])
        let r = try rig.reader()
        #expect(try readAll(r, a.camera).first?.fragments.map(\.payload) == a.sent.map(\.payload))
        #expect(try r.verify() == [])

        // The capture worker reconnects with a new run: it continues in the recovered slot.
        var b = Stream("cam-a", run: a.run + 60_000_000, seed: 12)
        #expect(storageCode { try b.send(1, to: w) } == .protocol)
        b = Stream("cam-a", run: a.run + 60_000_000, seed: 12)
        try b.sendInit(w)
        let outcomes = try b.send(3, to: w)
        #expect(outcomes.allSatisfy { !$0.tookSlot && $0.slot == 0 })
        try w.syncAndCommit()
        #expect(try r.runs(camera: a.camera).map(\.fragmentCount) == [16, 3])
        #expect(try r.verify() == [])
    }

    @Test("a crash right after a rollover: both slots recovered, only the newer stays open")
    func crashAfterRollover() throws {
        let rig = try Rig(slots: 4, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        var a = Stream("cam-a", payloadBytes: 200_000, seed: 13)
        do {
            let w = try rig.writer()
            try a.sendInit(w)
            try a.send(3, to: w)
            try w.syncAndCommit()
            let more = try a.send(4, to: w)
            #expect(more.map(\.tookSlot) == [false, false, true, false])
            try w.syncWithoutCommitForTesting()
        }
        let w = try rig.writer()
        // Slot 0: fragments 4 and 5; slot 1: the init copy and fragments 6 and 7.
        #expect(w.recovery.recordsIndexed == 5)
        #expect(w.recovery.slotsScanned == 2)
        #expect(w.stats().openSlots == 1 && w.stats().closedSlots == 1 && w.stats().freeSlots == 2)
        let r = try rig.reader()
        #expect(try readAll(r, a.camera).first?.fragments.map(\.payload) == a.sent.map(\.payload))
        #expect(try r.verify() == [])
    }

    @Test("a torn tail is cut off, verify() is clean, and the next append overwrites it")
    func tornTail() throws {
        for damage in ["garbage", "zeroed"] {
            let rig = try Rig(slots: 2, slotSizeBytes: 1 << 20, name: "tornTail-\(damage)")
            defer { rig.dir.cleanup() }
            var a = Stream("cam-a", payloadBytes: 10_000, seed: 14)
            var tornOffset: Int64 = 0
            do {
                let w = try rig.writer()
                try a.sendInit(w)
                try a.send(10, to: w)
                try w.syncAndCommit()
                try a.send(2, to: w)
                tornOffset = try a.send(1, to: w)[0].offset
                try w.syncWithoutCommitForTesting()
            }
            // The last record reached the disk only in part.
            if damage == "garbage" {
                try scribble(rig.disk, slot: 0, at: tornOffset + 5_000, [UInt8](repeating: 0xEE, count: 300))
            } else {
                try scribble(rig.disk, slot: 0, at: tornOffset + 4_096, [UInt8](repeating: 0, count: 10_096 - 4_096))
            }
            let w = try rig.writer()
            #expect(w.recovery.recordsIndexed == 2, "\(damage)")
            #expect(w.recovery.tornTailSlots == [0], "\(damage)")
            let r = try rig.reader()
            #expect(try readAll(r, a.camera).first?.fragments.map(\.meta.sequence) == Array(1...12))
            #expect(try r.verify() == [])

            var b = Stream("cam-a", run: a.run + 60_000_000, payloadBytes: 3_000, seed: 15)
            try b.sendInit(w)
            let o = try b.send(2, to: w)
            #expect(o.first?.offset == tornOffset + Int64(RecordHeader.byteCount + b.initPayload.count))
            try w.syncAndCommit()
            #expect(try r.runs(camera: a.camera).map(\.fragmentCount) == [12, 2])
            #expect(try readAll(r, a.camera).last?.fragments.map(\.payload) == b.sent.map(\.payload))
            #expect(try r.verify() == [])
        }
    }

    @Test("a deleted index.sqlite is rebuilt from the slots with the same runs")
    func deletedIndex() throws {
        let rig = try Rig(slots: 8, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        var a = Stream("cam-a", payloadBytes: 150_000, seed: 16)
        var b = Stream("cam-b", payloadBytes: 90_000, keyframeEvery: 3, seed: 17)
        var a2 = Stream("cam-a", run: a.run + 100_000_000, payloadBytes: 120_000, seed: 18)
        let w = try rig.writer()
        try a.sendInit(w)
        try b.sendInit(w)
        for _ in 0..<9 {
            try a.send(1, to: w)
            try b.send(2, to: w)
            try w.syncAndCommit()
        }
        try a2.sendInit(w)
        try a2.send(7, to: w)
        try w.close()
        let before = try rig.reader()
        let runsBefore = try [a.camera, b.camera].map { try before.runs(camera: $0) }
        let bytesBefore = try [a.camera, b.camera].map { try readAll(before, $0) }
        #expect(runsBefore.map { $0.count } == [2, 1])
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: rig.disk.indexPath + suffix) }
        #expect(storageCode { try rig.reader() } == .noIndex)

        let w2 = try rig.writer()
        #expect(w2.recovery.indexRebuilt)
        let slotsUsed = Set(runsBefore.flatMap { $0 }.map(\.slotCount)).count > 0
        #expect(slotsUsed)
        #expect(w2.recovery.recordsIndexed == 9 + 18 + 7 + w2.recovery.slotsScanned + 1)
        let after = try rig.reader()
        #expect(try [a.camera, b.camera].map { try after.runs(camera: $0) } == runsBefore)
        #expect(try [a.camera, b.camera].map { try readAll(after, $0) } == bytesBefore)
        #expect(try after.verify() == [])
    }

    @Test("a damaged index is moved aside and rebuilt")
    func damagedIndex() throws {
        let rig = try Rig(slots: 3, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        var a = Stream("cam-a", seed: 19)
        let w = try rig.writer()
        try a.sendInit(w)
        try a.send(20, to: w)
        try w.close()
        let runsBefore = try rig.reader().runs(camera: a.camera)
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: rig.disk.indexPath + suffix) }
        try Data(repeating: 0x42, count: 8192).write(to: URL(fileURLWithPath: rig.disk.indexPath))
        let w2 = try rig.writer()
        #expect(w2.recovery.indexRebuilt)
        let aside = try #require(w2.recovery.movedAsideIndex)
        #expect(FileManager.default.fileExists(atPath: aside))
        #expect(try rig.reader().runs(camera: a.camera) == runsBefore)
        #expect(try rig.reader().verify() == [])
    }

    @Test("an unreadable slot header: a free slot skips a generation; a used one becomes unusable, rows kept")
    func unreadableHeader() throws {
        let rig = try Rig(slots: 3, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        var a = Stream("cam-a", seed: 40)
        do {
            let w = try rig.writer()
            try a.sendInit(w)
            try a.send(3, to: w)
            try w.close()
        }
        try scribble(rig.disk, slot: 1, at: 10, [0xFF, 0xFF, 0xFF])  // free slot: a torn take
        try scribble(rig.disk, slot: 0, at: 60, [0xAA])  // used slot: bit rot
        let w = try rig.writer()
        #expect(w.recovery.unusableSlots == [0])
        #expect(w.recovery.notes.count == 2)
        #expect(w.stats().unusableSlots == 1 && w.stats().freeSlots == 2)
        var b = Stream("cam-b", seed: 41)
        try b.sendInit(w)
        #expect(try slotHeader(rig.disk, slot: 1).generation == 2)
        var a2 = Stream("cam-a", run: a.run + 10_000_000, seed: 42)
        try a2.sendInit(w)
        #expect(try a2.send(1, to: w).first?.slot == 2)
        try w.syncAndCommit()
        let r = try rig.reader()
        // The recording in the slot with the damaged header is still indexed and readable.
        #expect(try readAll(r, a.camera).first?.fragments.map(\.payload) == a.sent.map(\.payload))
        let problems = try r.verify()
        #expect(problems.count == 1)
        #expect(problems.first?.slot == 0 && problems.first?.problem.hasPrefix("slot header") == true)
    }

    @Test("verify() reports an index row whose record was damaged on disk")
    func verifyFindsDamage() throws {
        let rig = try Rig(slots: 2, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        var a = Stream("cam-a", seed: 20)
        let w = try rig.writer()
        try a.sendInit(w)
        let o = try a.send(5, to: w)
        try w.syncAndCommit()
        let r = try rig.reader()
        #expect(try r.verify() == [])
        try scribble(rig.disk, slot: 0, at: o[2].offset + 200, [0xFF])
        let problems = try r.verify()
        #expect(problems.count == 1)
        #expect(problems.first?.offset == o[2].offset)
        #expect(storageCode { try readAll(r, a.camera) } == .corrupt)
    }

    @Test("the scanner stops at the first bad record for each kind of damage")
    func scannerStops() throws {
        let rig = try Rig(slots: 1, slotSizeBytes: 256 << 10)
        defer { rig.dir.cleanup() }
        var a = Stream("cam-a", payloadBytes: 1_000, seed: 21)
        let w = try rig.writer()
        try a.sendInit(w)
        let offsets = try a.send(6, to: w).map(\.offset)
        try w.close()
        let h = try slotHeader(rig.disk, slot: 0)
        func scan() throws -> (count: Int, torn: Bool) {
            let f = try PosixSlotFileOpener().open(rig.disk.slotPath(0), writable: false)
            var s = SlotScanner(
                file: f, slotSizeBytes: rig.disk.meta.slotSizeBytes, generation: h.generation, camera: a.camera,
                offset: Int64(SlotHeader.byteCount), chainCRC: h.crc)
            var n = 0
            while try s.next() != nil { n += 1 }
            return (n, s.stoppedAtTornRecord)
        }
        #expect(try scan() == (7, false))
        let original = try recordHeader(rig.disk, slot: 0, offset: offsets[3])
        func restore() throws {
            var h = original
            let payload = try PosixSlotFileOpener().open(rig.disk.slotPath(0), writable: false).readBytes(
                Int(h.payloadBytes), at: offsets[3] + 96)
            _ = payload.withUnsafeBytes { h.encode(payload: $0) }
            #expect(h.crc == original.crc)
            let bytes = payload.withUnsafeBytes { h.encode(payload: $0) }
            try scribble(rig.disk, slot: 0, at: offsets[3], bytes)
        }
        // Wrong generation (a leftover of an earlier use of the slot): a clean end, not torn.
        var gen = original
        gen.generation += 1
        try scribble(rig.disk, slot: 0, at: offsets[3], Array(gen.encodePrefix()) + [0, 0, 0, 0])
        #expect(try scan() == (4, false))
        try restore()
        // Length overrunning the slot.
        var long = original
        long.payloadBytes = 300_000
        try scribble(rig.disk, slot: 0, at: offsets[3], Array(long.encodePrefix()) + [0, 0, 0, 0])
        #expect(try scan() == (4, true))
        try restore()
        // Broken chain.
        var chain = original
        chain.previousCRC ^= 1
        try scribble(rig.disk, slot: 0, at: offsets[3], Array(chain.encodePrefix()) + [0, 0, 0, 0])
        #expect(try scan() == (4, true))
        try restore()
        // Bad magic.
        try scribble(rig.disk, slot: 0, at: offsets[3], [0, 0, 0, 0])
        #expect(try scan() == (4, false))
        try restore()
        #expect(try scan() == (7, false))
    }
}
