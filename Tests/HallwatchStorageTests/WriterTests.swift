import Foundation
import GRDB
import HallwatchCore
import Testing

@testable import HallwatchStorage

@Suite("DiskWriter and RecordingReader")
struct WriterTests {
    @Test("two cameras round trip: identical bytes, metadata and durations; commit report figures")
    func roundTrip() throws {
        let rig = try Rig(slots: 4, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        let w = try rig.writer()
        var a = Stream("cam-a", seed: 1)
        var b = Stream("cam-b", run: 1_764_000_000_000_007, payloadBytes: 7_000, seed: 2)
        try a.sendInit(w)
        try b.sendInit(w)
        for _ in 0..<10 {
            try a.send(1, to: w)
            try b.send(1, to: w)
        }
        let report = try w.syncAndCommit()
        #expect(report.recordCount == 22)
        #expect(report.syncedFiles == 2)
        let ca = try #require(report.cameras[a.camera])
        #expect(ca.fragmentCount == 10 && ca.initSegmentCount == 1 && ca.run == a.run)
        #expect(ca.media90k == MediaTime90k(450_000) && ca.seconds == 5)
        #expect(ca.payloadBytes == Int64(10 * 4_000 + a.initPayload.count))
        #expect(ca.lastFragmentUTC == a.sent.last!.meta.utc && ca.lastFragmentEndUTC == a.endUTC)
        #expect(report.cameras[b.camera]?.payloadBytes == Int64(10 * 7_000 + b.initPayload.count))
        #expect(
            report.recordBytes
                == Int64(22 * RecordHeader.byteCount + 110_000 + a.initPayload.count + b.initPayload.count))

        let r = try rig.reader()
        #expect(try r.cameras() == [a.camera, b.camera])
        #expect(
            try r.runs(camera: a.camera) == [
                RunSummary(
                    run: a.run, startUTC: a.startUTC, endUTC: a.endUTC, media90k: MediaTime90k(450_000),
                    payloadBytes: 40_000, fragmentCount: 10, slotCount: 1)
            ])
        for s in [a, b] {
            let runs = try readAll(r, s.camera)
            #expect(runs.count == 1)
            #expect(runs.first?.run == s.run)
            #expect(runs.first?.initSegment == s.initPayload)
            #expect(runs.first?.fragments.map(\.payload) == s.sent.map(\.payload))
            #expect(runs.first?.fragments.map(\.meta) == s.sent.map(\.meta))
        }
        // 0.5 s fragments; [1.2 s, 2.1 s) overlaps fragments 3, 4 and 5.
        let mid = try r.segments(
            camera: a.camera, from: a.startUTC.adding(micros: 1_200_000), to: a.startUTC.adding(micros: 2_100_000))
        #expect(mid.first?.fragments.map(\.meta.sequence) == [3, 4, 5])
        #expect(try r.segments(camera: a.camera, from: a.endUTC, to: a.endUTC.adding(micros: 10_000_000)) == [])
        #expect(try r.verify() == [])
    }

    @Test("nothing is indexed before syncAndCommit")
    func nothingBeforeCommit() throws {
        let rig = try Rig(slots: 2, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        let w = try rig.writer()
        var a = Stream("cam-a")
        try a.sendInit(w)
        try a.send(5, to: w)
        let r = try rig.reader()
        #expect(try r.cameras() == [])
        #expect(try r.runs(camera: a.camera) == [])
        #expect(try readAll(r, a.camera) == [])
        #expect(w.stats().pendingRecords == 6)
        try w.syncAndCommit()
        #expect(w.stats().pendingRecords == 0)
        #expect(try r.runs(camera: a.camera).map(\.fragmentCount) == [5])
        try a.send(3, to: w)
        #expect(try r.runs(camera: a.camera).map(\.fragmentCount) == [5])
        try w.syncAndCommit()
        #expect(try r.runs(camera: a.camera).map(\.fragmentCount) == [8])
        #expect(try readAll(r, a.camera).first?.fragments.map(\.payload) == a.sent.map(\.payload))
        // An empty commit is a no-op.
        #expect(try w.syncAndCommit().recordCount == 0)
    }

    @Test("a failed fdatasync indexes nothing from that file and fails the writer")
    func failedSync() throws {
        let rig = try Rig(slots: 3, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        let opener = FaultyOpener()
        let w = try rig.writer(opener: opener)
        var a = Stream("cam-a")
        var b = Stream("cam-b", seed: 9)
        try a.sendInit(w)
        try b.sendInit(w)
        try a.send(3, to: w)
        try b.send(4, to: w)
        #expect(try slotHeader(rig.disk, slot: 0).camera == a.camera)
        opener.failSyncSuffix = "000000.slot"
        #expect(storageCode { try w.syncAndCommit() } == .io)
        let r = try rig.reader()
        #expect(try r.runs(camera: a.camera) == [])
        #expect(try r.runs(camera: b.camera).map(\.fragmentCount) == [4])
        #expect(storageCode { try a.send(1, to: w) } == .failed)
        #expect(storageCode { try b.send(1, to: w) } == .failed)
        #expect(w.stats().failure?.code == .io)
        #expect(w.stats().failure?.system?.errno == EIO)
        #expect(try r.verify() == [])
    }

    @Test("protocol violations are refused with typed errors")
    func protocolErrors() throws {
        let rig = try Rig(slots: 2, slotSizeBytes: 64 << 10)
        defer { rig.dir.cleanup() }
        let w = try rig.writer()
        let cam = CameraID("cam-a")!
        let run: UInt64 = 1_764_000_000_000_000
        #expect(
            storageCode { try w.append(camera: cam, meta: fragmentMeta(run: run, sequence: 1), payload: [1, 2, 3]) }
                == .protocol)
        try w.append(camera: cam, meta: initMeta(run: run), payload: [9, 9])
        #expect(
            storageCode { try w.append(camera: cam, meta: fragmentMeta(run: run + 1, sequence: 1), payload: [1]) }
                == .protocol)
        var negative = fragmentMeta(run: run, sequence: 1)
        negative.duration90k = -1
        #expect(storageCode { try w.append(camera: cam, meta: negative, payload: [1]) } == .protocol)
        var long = fragmentMeta(run: run, sequence: 1)
        long.duration90k = 61 * 90_000
        #expect(storageCode { try w.append(camera: cam, meta: long, payload: [1]) } == .protocol)
        #expect(
            storageCode {
                try w.append(
                    camera: cam, meta: fragmentMeta(run: run, sequence: 1),
                    payload: [UInt8](repeating: 0, count: 70_000))
            } == .tooLarge)
        // Nothing of the refused records reached the index or the writer's pending list.
        #expect(w.stats().pendingRecords == 1)
        try w.append(camera: cam, meta: fragmentMeta(run: run, sequence: 1), payload: [1, 2, 3])
        #expect(try w.syncAndCommit().cameras[cam]?.fragmentCount == 1)
        try w.close()
        #expect(
            storageCode { try w.append(camera: cam, meta: fragmentMeta(run: run, sequence: 2), payload: [1]) }
                == .failed)
    }

    @Test("slot rollover: each slot starts with the init record and the reader spans slots")
    func rollover() throws {
        let rig = try Rig(slots: 8, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        let w = try rig.writer()
        var a = Stream("cam-a", payloadBytes: 200_000, seed: 3)
        var b = Stream("cam-b", payloadBytes: 150_000, seed: 4)
        try a.sendInit(w)
        try b.sendInit(w)
        var tookA: [UInt32] = []
        var slotsA: [Int] = []
        for i in 0..<12 {
            let oa = try a.send(1, to: w)[0]
            if oa.tookSlot { tookA.append(a.sent.last!.meta.sequence) }
            if !slotsA.contains(oa.slot) { slotsA.append(oa.slot) }
            try b.send(1, to: w)
            if i % 4 == 3 { try w.syncAndCommit() }
        }
        // 128 + init + 5 × 200 096 bytes fit a 1 MiB slot; the 6th and 11th fragments roll over.
        #expect(tookA == [6, 11])
        #expect(slotsA.count == 3)
        for slot in slotsA {
            let h = try slotHeader(rig.disk, slot: slot)
            #expect(h.camera == a.camera && h.generation == 1)
            let first = try recordHeader(rig.disk, slot: slot)
            #expect(
                first.kind == .initSegment && first.run == a.run && first.payloadBytes == UInt32(a.initPayload.count))
            #expect(first.previousCRC == h.crc)
        }
        let r = try rig.reader()
        for s in [a, b] {
            let runs = try readAll(r, s.camera)
            #expect(runs.count == 1)
            #expect(runs.first?.initSegment == s.initPayload)
            #expect(runs.first?.fragments.map(\.payload) == s.sent.map(\.payload))
            #expect(runs.first?.fragments.map(\.meta.sequence) == Array(1...12))
        }
        #expect(try r.runs(camera: a.camera).first?.slotCount == 3)
        #expect(try r.runs(camera: a.camera).first?.media90k == MediaTime90k(12 * 45_000))
        // A range straddling the slot boundary between fragments 5 and 6.
        let seam = try r.segments(
            camera: a.camera, from: a.startUTC.adding(micros: 2_250_000), to: a.startUTC.adding(micros: 2_750_000))
        #expect(seam.first?.fragments.map(\.meta.sequence) == [5, 6])
        #expect(try r.verify() == [])
    }

    @Test(
        "ring reuse: oldest settled slot is overwritten, its rows dropped first; holds are respected; disabled → full")
    func ringReuse() throws {
        let rig = try Rig(slots: 3, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        let w = try rig.writer()
        var a = Stream("cam-a", payloadBytes: 200_000, seed: 5)
        try a.sendInit(w)
        var reuses: [RingReuse] = []
        for _ in 0..<15 {
            if let reuse = try a.send(1, to: w)[0].ringReuse { reuses.append(reuse) }
            try w.syncAndCommit()
        }
        #expect(reuses.isEmpty)
        #expect(w.stats().freeSlots == 0)
        let outcome = try a.send(1, to: w)[0]
        try w.syncAndCommit()
        #expect(outcome.tookSlot)
        #expect(
            outcome.ringReuse == RingReuse(slot: 0, previousCamera: a.camera, previousGeneration: 1, droppedChunks: 1))
        #expect(w.stats().ringReuses == 1)
        #expect(try slotHeader(rig.disk, slot: 0).generation == 2)
        let r = try rig.reader()
        #expect(try readAll(r, a.camera).first?.fragments.map(\.meta.sequence) == Array(6...16))
        #expect(try readAll(r, a.camera).first?.fragments.map(\.payload) == a.sent[5...].map(\.payload))
        #expect(try r.verify() == [])

        // An evidence hold on slot 1 (the oldest now) makes the next reuse skip to slot 2.
        let dbq = try DatabaseQueue(path: rig.disk.indexPath)
        try dbq.write { try $0.execute(sql: "UPDATE slot SET hold = 1 WHERE slot = 1") }
        var next: RingReuse?
        for _ in 0..<5 {
            if let reuse = try a.send(1, to: w)[0].ringReuse { next = reuse }
            try w.syncAndCommit()
        }
        #expect(next?.slot == 2)
        #expect(try slotHeader(rig.disk, slot: 1).generation == 1)
        #expect(try readAll(r, a.camera).first?.fragments.map(\.meta.sequence) == Array(6...10) + Array(16...21))
        #expect(try r.verify() == [])

        // Without ring reuse a full disk refuses instead.
        var options = DiskWriter.Options()
        options.allowRingReuse = false
        try w.close()
        let w2 = try rig.writer(options)
        #expect(w2.stats().freeSlots == 0)
        #expect(storageCode { try Stream("cam-c").sendInit(w2) } == .full)
        #expect(w2.stats().ringReuses == 0)
    }

    @Test("a run change mid-slot: two runs, each with its own init segment; keyframe lead-in")
    func runsAndKeyframes() throws {
        let rig = try Rig(slots: 2, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        let w = try rig.writer()
        var first = Stream("cam-a", keyframeEvery: 4, seed: 7)
        var second = Stream("cam-a", run: first.run + 20_000_000, keyframeEvery: 4, seed: 8)
        try first.sendInit(w)
        try first.send(10, to: w)
        try w.syncAndCommit()
        try second.sendInit(w)
        try second.send(6, to: w)
        try w.syncAndCommit()
        let r = try rig.reader()
        let runs = try r.runs(camera: first.camera)
        #expect(runs.map(\.run) == [first.run, second.run])
        #expect(runs.map(\.fragmentCount) == [10, 6])
        // The CLI's gap: from the first run's end to the second's start.
        #expect(runs[1].startUTC.micros - runs[0].endUTC.micros == 15_000_000)
        let all = try readAll(r, first.camera)
        #expect(all.map(\.initSegment) == [first.initPayload, second.initPayload])
        #expect(all.map { $0.fragments.count } == [10, 6])

        // Keyframes at 1, 5, 9. A range starting inside fragment 7 begins at 5 when asked to.
        let from = first.startUTC.adding(micros: 3_100_000)
        let to = first.startUTC.adding(micros: 3_400_000)
        #expect(
            try r.segments(camera: first.camera, from: from, to: to, startAtKeyframe: false).first?.fragments.map(
                \.meta.sequence) == [7])
        #expect(
            try r.segments(camera: first.camera, from: from, to: to).first?.fragments.map(\.meta.sequence) == [5, 6, 7])
        #expect(try r.verify() == [])
    }

    @Test("closeCamera closes the slot, keeps the recording and requires a new init segment")
    func closeCamera() throws {
        let rig = try Rig(slots: 3, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        let w = try rig.writer()
        var a = Stream("cam-a", seed: 30)
        try a.sendInit(w)
        try a.send(4, to: w)
        try w.syncAndCommit()
        #expect(w.stats().openSlots == 1 && w.stats().closedSlots == 0)
        w.closeCamera(a.camera)
        try w.syncAndCommit()
        #expect(w.stats().openSlots == 0 && w.stats().closedSlots == 1)
        #expect(storageCode { try a.send(1, to: w) } == .protocol)
        try a.sendInit(w)
        #expect(try a.send(1, to: w).first?.slot == 1)
        try w.syncAndCommit()
        let r = try rig.reader()
        #expect(try readAll(r, a.camera).first?.fragments.map(\.meta.sequence) == [1, 2, 3, 4, 6])
        #expect(try r.verify() == [])
        // After a reopen the closed slot stays closed.
        try w.close()
        let w2 = try rig.writer()
        #expect(w2.stats().openSlots == 1 && w2.stats().closedSlots == 1 && w2.stats().freeSlots == 1)
    }

    @Test("one writer per disk: a second is refused until the first closes")
    func exclusiveWriter() throws {
        let rig = try Rig(slots: 2, slotSizeBytes: 64 << 10)
        defer { rig.dir.cleanup() }
        let w = try rig.writer()
        #expect(storageCode { try rig.writer() } == .locked)
        try w.close()
        #expect(storageCode { try w.syncAndCommit() } == .failed)
        let w2 = try rig.writer()
        #expect(w2.stats().freeSlots == 2)
    }

    @Test("appends from many threads while the flusher commits")
    func concurrent() throws {
        let rig = try Rig(slots: 24, slotSizeBytes: 256 << 10)
        defer { rig.dir.cleanup() }
        let w = try rig.writer()
        let cameras = 8
        let perCamera = 120
        final class Box: @unchecked Sendable {
            let lock = NSLock()
            var done = 0
            var streams: [Int: Stream] = [:]
            var errors: [String] = []
        }
        let box = Box()
        DispatchQueue.concurrentPerform(iterations: cameras + 1) { i in
            if i == cameras {
                while true {
                    box.lock.lock()
                    let finished = box.done == cameras
                    box.lock.unlock()
                    do { try w.syncAndCommit() } catch {
                        box.lock.lock()
                        box.errors.append("\(error)")
                        box.lock.unlock()
                    }
                    if finished { break }
                    usleep(2_000)
                }
                return
            }
            var s = Stream("cam-\(i)", payloadBytes: 3_000 + i * 100, seed: UInt64(i))
            do {
                try s.sendInit(w)
                try s.send(perCamera, to: w)
            } catch {
                box.lock.lock()
                box.errors.append("\(error)")
                box.lock.unlock()
            }
            box.lock.lock()
            box.streams[i] = s
            box.done += 1
            box.lock.unlock()
        }
        try w.syncAndCommit()
        #expect(box.errors == [])
        let r = try rig.reader()
        #expect(try r.cameras().count == cameras)
        for (_, s) in box.streams {
            let runs = try readAll(r, s.camera)
            #expect(runs.first?.fragments.map(\.payload) == s.sent.map(\.payload))
        }
        #expect(try r.verify() == [])
    }
}
