import Foundation
import HallwatchCore
import Testing

@testable import HallwatchStorage

/// `verify(level:)`: what each level sees and what it does not read.
@Suite struct CheckLevelTests {
    /// A disk with one camera's init segment and 5 fragments, committed; returns the fragments' offsets.
    func recorded(_ rig: Rig) throws -> [Int64] {
        var a = Stream("cam-a", seed: 70)
        let w = try rig.writer()
        try a.sendInit(w)
        let o = try a.send(5, to: w).map(\.offset)
        try w.close()
        return o
    }

    @Test("a damaged payload byte: crc finds it, size and presence read no payload")
    func payloadDamage() throws {
        let rig = try Rig(slots: 2, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        let o = try recorded(rig)
        let r = try rig.reader()
        for level in CheckLevel.allCases { #expect(try r.verify(level: level) == []) }
        try scribble(rig.disk, slot: 0, at: o[3] + 500, [0xEE])
        #expect(try r.verify(level: .crc).map(\.offset) == [o[3]])
        #expect(try r.verify(level: .size) == [])
        #expect(try r.verify(level: .presence) == [])
    }

    @Test("a record header that disagrees with the index: size finds it, presence does not")
    func headerDamage() throws {
        let rig = try Rig(slots: 2, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        let o = try recorded(rig)
        // A whole, CRC-valid header with another duration: only the comparison with the index sees it.
        var h = try recordHeader(rig.disk, slot: 0, offset: o[1])
        h.duration90k += 1
        let payload = try PosixSlotFileOpener().open(rig.disk.slotPath(0), writable: false).readBytes(
            Int(h.payloadBytes), at: o[1] + 96)
        try scribble(rig.disk, slot: 0, at: o[1], payload.withUnsafeBytes { h.encode(payload: $0) })
        let r = try rig.reader()
        let size = try r.verify(level: .size)
        #expect(size.count == 1)  // the chain is not checked across a record already reported
        #expect(size.first?.offset == o[1] && size.first?.problem.contains("duration") == true)
        #expect(try r.verify(level: .crc) == size)
        #expect(try r.verify(level: .presence) == [])
    }

    @Test("a slot header of another generation: every level reports it once per row, records are not read")
    func slotHeaderMoved() throws {
        let rig = try Rig(slots: 2, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        _ = try recorded(rig)
        var h = try slotHeader(rig.disk, slot: 0)
        h.generation += 5
        try scribble(rig.disk, slot: 0, at: 0, h.encode())
        let r = try rig.reader()
        for level in CheckLevel.allCases {
            let p = try r.verify(level: level)
            // The slot row and the one chunk row; the index still points at generation 1.
            #expect(p.count == 2, "\(level): \(p)")
            #expect(
                p.allSatisfy { $0.slot == 0 && $0.problem.contains("header 6") || $0.problem.contains("slot header 6") }
            )
        }
    }

    @Test("a slot reused by the writer after verify read the index is not an inconsistency")
    func reuseDuringVerify() throws {
        let rig = try Rig(slots: 2, slotSizeBytes: 64 << 10)
        defer { rig.dir.cleanup() }
        var a = Stream("cam-a", seed: 71)
        let w = try rig.writer()
        try a.sendInit(w)
        while try a.send(1, to: w).last?.slot != 1 {}  // slot 0 full and closed, slot 1 open
        try w.syncAndCommit()
        // The writer fills slot 1 and reuses slot 0 (T2 commits, then T4 writes the new header) the
        // moment verify first opens a slot file: after its index snapshot, before it reads slot 0.
        let hook = HookOpener { [a] in
            var a = a
            while try a.send(1, to: w).last?.ringReuse == nil {}
            try a.send(2, to: w)
            try w.syncAndCommit()
        }
        let r = try RecordingReader(at: rig.dir.path, box: "test-box", opener: hook)
        #expect(try r.verify(level: .crc) == [])
        #expect(try slotHeader(rig.disk, slot: 0).generation == 2)
        #expect(try rig.reader().verify(level: .crc) == [])
        try w.close()
    }
}

/// Runs `hook` once, at the first `open`, then opens normally.
final class HookOpener: SlotFileOpener, @unchecked Sendable {
    private let lock = NSLock()
    private var hook: (() throws -> Void)?
    init(_ hook: @escaping () throws -> Void) { self.hook = hook }
    func open(_ path: String, writable: Bool) throws(StorageError) -> any SlotFileHandle {
        lock.lock()
        let h = hook
        hook = nil
        lock.unlock()
        do { try h?() } catch { Issue.record("hook failed: \(error)") }
        return try PosixSlotFileOpener().open(path, writable: writable)
    }
}
