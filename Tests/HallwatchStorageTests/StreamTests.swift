import Foundation
import HallwatchCore
import Testing

@testable import HallwatchStorage

/// ``RecordingStream``: a time range as one fMP4 byte stream of known length, read by byte range; and
/// ``RecordingLibrary``: two disks read as one.
@Suite("Recording streams")
struct StreamTests {
    let camera = CameraID("lobby")!

    /// Writes two runs (the second after a parameter change) of `count` fragments each across slots.
    func record(
        _ writer: DiskWriter, runs: [UInt64], count: Int, sizes: inout SplitMix, startUTC: Int64 = 1_764_000_000_000_000
    ) throws -> [[UInt8]] {
        var expected: [[UInt8]] = []
        for (i, run) in runs.enumerated() {
            let runStart = startUTC + Int64(i) * Int64(count) * 500_000 + 1_000_000
            let initPayload = sizes.bytes(700 + i)
            try writer.append(camera: camera, meta: initMeta(run: run, runStartUTC: runStart), payload: initPayload)
            expected.append(initPayload)
            for seq in 1...count {
                let payload = sizes.bytes(20_000 + Int(sizes.next() % 30_000))
                try writer.append(
                    camera: camera, meta: fragmentMeta(run: run, sequence: UInt32(seq), runStartUTC: runStart),
                    payload: payload)
                expected.append(payload)
            }
        }
        try writer.syncAndCommit()
        return expected
    }

    @Test func aRangeIsOneStreamOfKnownLengthReadByByteRange() throws {
        let rig = try Rig(slots: 8, slotSizeBytes: 1 << 20)
        defer { rig.dir.cleanup() }
        let writer = try rig.writer()
        var rng = SplitMix(seed: 7)
        let parts = try record(writer, runs: [100, 200], count: 60, sizes: &rng)  // ~3 MB: several slots
        let whole = parts.flatMap { $0 }
        let stream = try rig.reader().stream(
            camera: camera, from: UTCMicros(0), to: UTCMicros(Int64.max / 2), startAtKeyframe: false)
        #expect(stream.length == Int64(whole.count))
        #expect(stream.initSegmentCount == 2 && stream.fragmentCount == 120)
        #expect(try stream.read(from: 0, count: whole.count) == whole)
        // Ranges that start and end inside records, span several, and run past the end.
        for _ in 0..<50 {
            let a = Int(rng.next() % UInt64(whole.count))
            let n = Int(rng.next() % 200_000)
            #expect(try stream.read(from: Int64(a), count: n) == Array(whole[a..<min(whole.count, a + n)]))
        }
        #expect(try stream.read(from: Int64(whole.count), count: 10).isEmpty)
        #expect(throws: StorageError.self) { try stream.read(from: -1, count: 10) }
        // Cut into runs, each read through a cursor (one record held) in 64 KiB reads as a demuxer makes, then
        // at random offsets: the same bytes.
        #expect(stream.runs.map(\.initSegmentCount) == [1, 1] && stream.runs.map(\.fragmentCount) == [60, 60])
        #expect(stream.runs.map(\.length).reduce(0, +) == stream.length)
        var viaCursors: [UInt8] = []
        for run in stream.runs {
            let cursor = run.cursor()
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            var offset: Int64 = 0
            while true {
                let n = try buffer.withUnsafeMutableBytes { try cursor.read(at: offset, into: $0) }
                if n == 0 { break }
                viaCursors += buffer[..<n]
                offset += Int64(n)
            }
        }
        #expect(viaCursors == whole)
        let cursor = stream.cursor()
        for _ in 0..<50 {
            let a = Int(rng.next() % UInt64(whole.count))
            let n = Int(rng.next() % 200_000)
            var buffer = [UInt8](repeating: 0, count: n)
            let got = try buffer.withUnsafeMutableBytes { try cursor.read(at: Int64(a), into: $0) }
            #expect(Array(buffer[..<got]) == Array(whole[a..<min(whole.count, a + n)]))
        }
        // The same bytes as the segments an export reads.
        let segments = try rig.reader().segments(
            camera: camera, from: UTCMicros(0), to: UTCMicros(Int64.max / 2), startAtKeyframe: false)
        #expect(segments.flatMap { [$0.initSegment] + $0.fragments.map(\.payload) }.flatMap { $0 } == whole)
    }

    @Test func aRunSpreadOverTwoDisksReadsAsOne() throws {
        let a = try Rig(slots: 4, slotSizeBytes: 1 << 20, name: "diskA")
        let b = try Rig(slots: 4, slotSizeBytes: 1 << 20, name: "diskB")
        defer {
            a.dir.cleanup()
            b.dir.cleanup()
        }
        let wa = try a.writer()
        let wb = try b.writer()
        var rng = SplitMix(seed: 9)
        let initPayload = rng.bytes(600)
        var all: [[UInt8]] = [initPayload]
        // Fragments 1–10 on disk A; A fails; 9–20 on disk B (9 and 10 written again, as F3 does).
        try wa.append(camera: camera, meta: initMeta(run: 5), payload: initPayload)
        try wb.append(camera: camera, meta: initMeta(run: 5), payload: initPayload)
        var payloads: [UInt32: [UInt8]] = [:]
        for seq in UInt32(1)...20 { payloads[seq] = rng.bytes(10_000) }
        for seq in UInt32(1)...10 {
            try wa.append(camera: camera, meta: fragmentMeta(run: 5, sequence: seq), payload: payloads[seq]!)
        }
        for seq in UInt32(9)...20 {
            try wb.append(camera: camera, meta: fragmentMeta(run: 5, sequence: seq), payload: payloads[seq]!)
        }
        try wa.syncAndCommit()
        try wb.syncAndCommit()
        for seq in UInt32(1)...20 { all.append(payloads[seq]!) }

        let library = RecordingLibrary(disks: [("a", a.dir.path), ("b", b.dir.path)], box: "test-box")
        #expect(library.unreadable.isEmpty)
        let runs = try library.runs(camera: camera)
        #expect(runs.count == 1 && runs[0].run == 5)
        let segments = try library.segments(camera: camera, from: UTCMicros(0), to: UTCMicros(Int64.max / 2))
        #expect(segments.count == 1 && segments[0].fragments.map(\.meta.sequence) == Array(1...20))
        let stream = try library.stream(camera: camera, from: UTCMicros(0), to: UTCMicros(Int64.max / 2))
        #expect(try stream.read(from: 0, count: Int(stream.length)) == all.flatMap { $0 })
        // A disk that is not there is named, not fatal.
        let partial = RecordingLibrary(disks: [("a", a.dir.path), ("gone", a.dir.path + "-missing")], box: "test-box")
        #expect(partial.readers.count == 1 && partial.unreadable.map(\.name) == ["gone"])
    }
}
