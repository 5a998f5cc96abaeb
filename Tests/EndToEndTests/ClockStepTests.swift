import Foundation
import HallwatchCore
import HallwatchMedia
import HallwatchStorage
import Logging
import Synchronization
import Testing

/// The box's wall clock stepped mid-run (NTP correcting a box that booted with a wrong time): a real
/// capture session against the simulated camera, with clocks whose wall time the test steps, writing to
/// a real disk. A step of +90 min and then one of −10 min must each start a new run, with no frame
/// dropped, and the runs' ranges on the box's clock — in the capture's output and in the index — must not
/// overlap.
@Suite("Box clock steps", .serialized)
struct ClockStepTests {
    /// Real monotonic time; wall time = real wall time + an offset the test changes.
    final class SteppedClocks: Clocks, @unchecked Sendable {
        let offset = Atomic<Int64>(0)
        let real = SystemClocks()
        func utcNow() -> UTCMicros { real.utcNow().adding(micros: offset.load(ordering: .relaxed)) }
        func monotonicNanos() -> UInt64 { real.monotonicNanos() }
    }

    /// Keeps every frame the session delivers.
    final class Collector: FragmentSink, @unchecked Sendable {
        let frames = Mutex<[MediaSegment]>([])
        func deliver(_ frame: MediaSegment) { frames.withLock { $0.append(frame) } }
    }

    @Test func stepsForwardAndBackStartNewRunsThatNeverOverlap() async throws {
        try E2E.ensureClips()
        let dir = "/tmp/hw-clock-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        defer {
            if ProcessInfo.processInfo.environment["HALLWATCH_KEEP_E2E"] == nil {
                try? FileManager.default.removeItem(atPath: dir)
            }
        }
        let port = E2E.freePort()
        let simcam = try Child(
            "simcam", E2E.tool("hallwatch-simcam"),
            ["--port", "\(port)", "--mount", "cam=\(E2E.media)/h264-bframes.mp4"], logDirectory: dir + "/logs")
        defer { simcam.stop() }
        #expect(E2E.waitFor(15) { simcam.log.contains("simcam ready") })

        let clocks = SteppedClocks()
        let sink = Collector()
        let stop = StopFlag()
        let thread = Thread {
            let session = CaptureSession(
                camera: CameraID("cam")!,
                source: RTSPSourceOptions(url: "rtsp://127.0.0.1:\(port)/cam", transport: .tcp, ioTimeout: .seconds(5)),
                policy: FragmentPolicy(), clocks: clocks, logger: Logger(label: "clock-test"))
            try? session.run(stop: stop, sink: sink) { _ in }
        }
        thread.start()
        let started = Date()
        try await Task.sleep(for: .seconds(8))
        clocks.offset.store(90 * 60 * 1_000_000, ordering: .relaxed)  // +90 min
        try await Task.sleep(for: .seconds(8))
        clocks.offset.store(80 * 60 * 1_000_000, ordering: .relaxed)  // then −10 min
        try await Task.sleep(for: .seconds(8))
        stop.stop()
        #expect(E2E.waitFor(10) { thread.isFinished })
        let elapsed = Date().timeIntervalSince(started)

        let frames = sink.frames.withLock { $0 }
        let fragments = frames.filter { $0.meta.kind == .fragment }
        let runs = Dictionary(grouping: fragments, by: \.meta.run).values.map { f in
            (
                run: f[0].meta.run, start: f.map(\.meta.utc.micros).min()!,
                end: f.map { $0.meta.utc.micros + Int64($0.meta.duration90k) * 100 / 9 }.max()!,
                media: f.reduce(0.0) { $0 + Double($1.meta.duration90k) / 90_000 }
            )
        }.sorted { $0.start < $1.start }
        #expect(runs.count == 3, "one run per clock: \(runs.map { ($0.run, $0.media) })")
        for (a, b) in zip(runs, runs.dropFirst()) {
            #expect(b.start >= a.end, "run \(b.run) starts \(Double(a.end - b.start) / 1e6) s before run \(a.run) ends")
        }
        // The forward step shows as a gap of about 90 min; nothing before it moved.
        if runs.count == 3 {
            let gap = Double(runs[1].start - runs[0].end) / 60e6
            #expect(gap > 89.9 && gap < 90.1, "gap \(gap) min")
        }
        // No frame dropped: the media recorded covers the session but for the first GOP's wait and the last fragment.
        let media = runs.reduce(0) { $0 + $1.media }
        #expect(media >= elapsed - 3, "\(media) s of media in \(elapsed) s")

        // The same frames on a real disk: the index's runs do not overlap either, and check passes.
        let diskPath = dir + "/disk0"
        let disk = try RecordingDisk.initialize(at: diskPath, box: "clock", slotCount: 4, slotSizeBytes: 8 << 20)
        let writer = try DiskWriter(disk: disk, logger: Logger(label: "clock-test"))
        for f in frames { try writer.append(camera: CameraID("cam")!, meta: f.meta, payload: f.payload) }
        try writer.close()
        let reader = try RecordingReader(at: diskPath, box: "clock")
        let indexed = try reader.runs(camera: CameraID("cam")!)
        #expect(indexed.count == 3)
        for (a, b) in zip(indexed, indexed.dropFirst()) {
            #expect(b.startUTC >= a.endUTC, "index: run \(b.run) overlaps run \(a.run)")
        }
        #expect(try reader.verify(level: .crc).isEmpty)
        print(
            "clock steps: runs \(runs.map { String(format: "%.1f s", $0.media) }.joined(separator: ", ")); gaps \(zip(runs, runs.dropFirst()).map { String(format: "%.3f s", Double($1.start - $0.end) / 1e6) }.joined(separator: ", "))"
        )
    }
}
