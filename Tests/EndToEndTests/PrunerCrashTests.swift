import Foundation
import HallwatchCore
import HallwatchStorage
import Logging
import Testing

/// `kill -9` of the real `hallwatch-pruner` after each step of the deletion procedure
/// (<doc:WriteProtocol> § Delete, steps D1–D4): `hallwatchctl check --level crc` passes right after the
/// kill, and the next run completes the interrupted deletion and the rest of the plan, each deletion
/// logged exactly once. The dry run before lists exactly the slots that are then deleted.
@Suite("Pruner crash", .serialized)
struct PrunerCrashTests {
    static let box = "e2e-prune"

    /// A disk with four slots of one camera's video, all older than a day (three closed, one open).
    static func makeDisk(_ root: String, period: String = "60s") throws -> (disk: String, config: String) {
        let path = root + "/disk0"
        _ = try RecordingDisk.initialize(at: path, box: box, slotCount: 12, slotSizeBytes: 64 << 10)
        var options = DiskWriter.Options()
        options.maxChunkSpan = .seconds(7200)
        var logger = Logger(label: "e2e.prune")
        logger.logLevel = .warning
        let w = try DiskWriter(disk: RecordingDisk.open(at: path, box: box), logger: logger, options: options)
        let camera = CameraID("cam-k")!
        let run = SystemClocks().utcNow().adding(micros: -3 * 86_400_000_000)
        let tick: Int64 = 108_000_000  // 20 minutes
        try w.append(
            camera: camera,
            meta: FragmentMeta(
                kind: .initSegment, keyframe: false, run: UInt64(run.micros), sequence: 0,
                start90k: .zero, duration90k: 0, utc: run), payload: Array(repeating: 7, count: 600))
        for i in 0..<80 {
            let start = MediaTime90k(Int64(i) * tick)
            try w.append(
                camera: camera,
                meta: FragmentMeta(
                    kind: .fragment, keyframe: true, run: UInt64(run.micros), sequence: UInt32(i + 1),
                    start90k: start, duration90k: Int32(tick), utc: run.adding(start)),
                payload: Array(repeating: UInt8(i & 0xFF), count: 3000))
            if i % 10 == 9 { try w.syncAndCommit() }
        }
        try w.close()
        let config = root + "/hallwatch.yaml"
        try """
        box: \(box)
        bus:
          socket: \(root)/bus.sock
        recorder:
          disks:
            - name: disk0
              path: \(path)
        retention:
          maxAge: 1d
          minAge: 1h
          reserve: 0s
          reserveSlots: 0
          period: \(period)
        cameras:
          - id: cam-k
            source: rtsp://127.0.0.1:8554/cam-k

        """.write(toFile: config, atomically: true, encoding: .utf8)
        return (path, config)
    }

    /// Starts the pruner stopping after `step`, waits for it to get there, and kills it with SIGKILL.
    static func killAfter(_ step: DeleteStep, config: String, log: String) throws -> Bool {
        FileManager.default.createFile(atPath: log, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: E2E.tool("hallwatch-pruner"))
        p.arguments = ["--config", config, "--once"]
        p.environment = ProcessInfo.processInfo.environment.merging([
            "HALLWATCH_PRUNER_STOP_AFTER": step.rawValue, "HALLWATCH_LOG_LEVEL": "warning",
        ]) { _, b in b }
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let reached = E2E.waitFor(30) {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("stopped after \(step.rawValue)")
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        return reached && p.terminationReason == .uncaughtSignal
    }

    @Test(
        "kill -9 after each deletion step: check passes, the next run completes the deletion",
        arguments: DeleteStep.allCases)
    func killNineThePruner(step: DeleteStep) throws {
        let root =
            FileManager.default.temporaryDirectory.path
            + "/hallwatch-e2e-prune-\(step.rawValue)-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (disk, config) = try Self.makeDisk(root)

        let dry = try E2E.run(E2E.tool("hallwatch-pruner"), ["--config", config, "--dry-run"])
        #expect(dry.status == 0, "\(dry.stderr)")
        let wouldDelete = dry.stdout.split(separator: "\n").filter { $0.hasPrefix("would delete: ") }
        #expect(wouldDelete.count == 3, "\(dry.stdout)")

        #expect(try Self.killAfter(step, config: config, log: root + "/pruner-killed.log"))
        let check = try E2E.run(E2E.tool("hallwatchctl"), ["check", "--level", "crc", disk])
        #expect(check.status == 0, "after kill -9 at \(step.rawValue): \(check.stdout) \(check.stderr)")

        let rerun = try E2E.run(E2E.tool("hallwatch-pruner"), ["--config", config, "--once"])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        let index = try RetentionIndex(
            NamedDisk(name: "disk0", path: disk), box: Self.box, logger: Logger(label: "e2e"))
        defer { index.close() }
        #expect(try index.pendingSlots() == [])
        let deletions = try index.deletions()
        #expect(deletions.count == 3)
        // Exactly the slots the dry run named (its lines read "would delete: disk0 slot N …").
        let planned = Set(wouldDelete.compactMap { $0.split(separator: " ").dropFirst(4).first.flatMap { Int($0) } })
        #expect(Set(deletions.map(\.slot)) == planned)
        // Each deletion once in the audit log, even when the kill came right after the append (D3).
        let lines = try String(contentsOfFile: disk + "/" + RetentionIndex.auditLogName, encoding: .utf8).split(
            separator: "\n")
        #expect(lines.count == 3)
        #expect(
            Set(lines.compactMap { try? BusCoding.decode(DeletionRecord.self, from: Array($0.utf8)) }.map(\.id))
                == Set(deletions.map(\.id)))
        let after = try E2E.run(E2E.tool("hallwatchctl"), ["check", "--level", "crc", disk])
        #expect(after.status == 0, "\(after.stdout)")
        // Nothing left to delete: a second dry run is empty.
        let again = try E2E.run(E2E.tool("hallwatch-pruner"), ["--config", config, "--dry-run"])
        #expect(!again.stdout.contains("would delete: "))
    }
}
