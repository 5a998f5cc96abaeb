import Foundation
import HallwatchConfig
import HallwatchCore
import Logging
import Testing

@testable import HallwatchControl
@testable import HallwatchStorage

let quiet: Logger = {
    var l = Logger(label: "hallwatch.control.test")
    l.logLevel = .critical
    return l
}()

func tempDirectory(_ name: String = #function) throws -> String {
    let path =
        FileManager.default.temporaryDirectory.path
        + "/hw-control-\(name.filter(\.isLetter))-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func alive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }

func waitFor(seconds: Double, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

/// The development supervisor with real child processes (`/bin/sleep`), killed with SIGKILL.
@Suite("Development supervisor", .serialized)
struct SupervisorTests {
    @Test func aKilledProcessIsRestartedWithANewPidAndStopEndsOnlyItsOwnChildren() throws {
        let run = try tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: run) }
        let outsider = Process()
        outsider.executableURL = URL(fileURLWithPath: "/bin/sleep")
        outsider.arguments = ["30"]
        try outsider.run()
        defer { outsider.terminate() }

        let supervisor = Supervisor(
            processes: [SupervisedProcess(name: "sleeper", executable: "/bin/sleep", arguments: ["30"])],
            runDirectory: run, maxRestartDelay: .milliseconds(100), logger: quiet)
        try supervisor.start()
        let first = try #require(supervisor.pid(of: "sleeper"))
        #expect(
            try String(contentsOfFile: run + "/pids/sleeper.pid", encoding: .utf8).trimmingCharacters(
                in: .whitespacesAndNewlines) == "\(first)")

        kill(first, SIGKILL)
        #expect(waitFor(seconds: 5) { (supervisor.pid(of: "sleeper") ?? first) != first })
        let second = try #require(supervisor.pid(of: "sleeper"))
        #expect(alive(second))

        supervisor.stop()
        #expect(waitFor(seconds: 6) { !alive(second) })
        #expect(outsider.isRunning)  // never signalled: not started by the supervisor
    }

    @Test func aSecondSupervisorInTheSameDirectoryIsRefusedNamingTheFirst() throws {
        let run = try tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: run) }
        // The lock is per open file description: a child process holds it as a second supervisor would.
        try Supervisor.claim(runDirectory: run)
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/usr/bin/flock")
        child.arguments = ["--nonblock", run + "/supervisor.lock", "true"]
        try child.run()
        child.waitUntilExit()
        #expect(child.terminationStatus != 0)
        #expect(try String(contentsOfFile: run + "/pids/supervisor.pid", encoding: .utf8) == "\(getpid())\n")
    }
}

@Suite("Disk maintenance")
struct DiskMaintenanceTests {
    @Test func sizesParseWithBinaryUnits() {
        #expect(DiskMaintenance.parseBytes("64M") == 64 << 20)
        #expect(DiskMaintenance.parseBytes("2T") == 2 << 40)
        #expect(DiskMaintenance.parseBytes("512") == 512)
        #expect(DiskMaintenance.parseBytes("-1G") == nil)
        #expect(DiskMaintenance.parseBytes("lots") == nil)
    }

    @Test func initialisationIsRefusedOnAnythingButAnEmptyDirectory() throws {
        let dir = try tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(DiskMaintenance.preflight(dir) == .empty)
        try "x".write(toFile: dir + "/notes.txt", atomically: true, encoding: .utf8)
        let refusal = #expect(throws: DiskMaintenance.InitRefusal.self) {
            try DiskMaintenance.authorize(path: dir, box: "b", force: false)
        }
        #expect(refusal?.exitCode == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["notes.txt"])
    }
}

@Suite("Disk geometry")
struct DiskGeometryTests {
    @Test func slotCountsOutsideTheRecordersRangeAreRefusedBeforeAnythingIsWritten() throws {
        #expect(try DiskMaintenance.geometry(slots: 64, totalBytes: nil, slotSizeBytes: 1 << 20) == (64, 1 << 20))
        #expect(try DiskMaintenance.geometry(slots: nil, totalBytes: 10 << 20, slotSizeBytes: 1 << 20) == (10, 1 << 20))
        for (slots, total) in [
            (0, nil), (1, nil), (-1, nil), (100_001, nil), (nil, Int64(1 << 20)), (nil, Int64(1) << 50),
        ]
            as [(Int?, Int64?)]
        {
            let refusal = #expect(throws: DiskMaintenance.InitRefusal.self) {
                try DiskMaintenance.geometry(slots: slots, totalBytes: total, slotSizeBytes: 1 << 20)
            }
            #expect(refusal?.exitCode == 64)
        }
    }
}

/// Issue 12, case 11: `hallwatchctl recordings` listed "gaps" of 0 ms between runs split by a new init segment.
@Suite("Gaps between runs")
struct RunGapTests {
    static func run(_ id: UInt64, _ start: Int64, _ end: Int64) -> RunSummary {
        RunSummary(
            run: id, startUTC: UTCMicros(start), endUTC: UTCMicros(end), media90k: MediaTime90k(0),
            payloadBytes: 0, fragmentCount: 1, slotCount: 1)
    }

    @Test func runsSplitByANewInitSegmentAreNotGapsButAHoleIs() {
        let t: Int64 = 1_800_000_000_000_000
        // A resolution switch (0 ms, and 12 ms of arrival jitter), then a 2.5 s outage.
        let runs = [
            Self.run(1, t, t + 10_000_000), Self.run(2, t + 10_000_000, t + 20_000_000),
            Self.run(3, t + 20_012_000, t + 30_000_000), Self.run(4, t + 32_500_000, t + 40_000_000),
        ]
        let gaps = RecordingsReport.gaps(between: runs)
        #expect(gaps.map(\.afterRun) == [3])
        #expect(gaps.first?.seconds == 2.5)
        let report = RecordingsReport(
            camera: "lobby",
            runs: runs.map {
                .init(
                    run: $0.run, start: $0.startUTC.iso8601, end: $0.endUTC.iso8601, startMicros: $0.startUTC.micros,
                    endMicros: $0.endUTC.micros, mediaSeconds: 10, fragments: 1, bytes: 0, maxFragmentGap90k: -1)
            }, gaps: gaps, totalSeconds: 40)
        let text = report.render()
        #expect(!text.contains("0.000 s"))
        #expect(text.components(separatedBy: "the next run follows at once").count - 1 == 2)
        #expect(text.contains("  gap  ") && text.contains("2.500 s"))
    }
}

/// A fresh user's finding: `hallwatchctl recordings` listed a run with a stretch deleted from its middle (a slot
/// pruned, or lost with a failed disk) as one unbroken run. On a real disk and index: a run of 10 s, a hole of
/// 8 s, then 10 s more of the same run.
@Suite("Holes inside a run")
struct RunHoleTests {
    @Test func aRunsDeletedMiddleIsListedAsAHoleWithItsCause() throws {
        let dir = try tempDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try RecordingDisk.initialize(at: dir + "/disk0", box: "box1", slotCount: 8, slotSizeBytes: 1 << 20)
        let writer = try DiskWriter(disk: RecordingDisk.open(at: dir + "/disk0", box: "box1"), logger: quiet)
        let lobby = CameraID("lobby")!
        let runStart = UTCMicros(1_800_000_000_000_000)
        let run = UInt64(runStart.micros)
        try writer.append(
            camera: lobby,
            meta: FragmentMeta(
                kind: .initSegment, keyframe: false, run: run, sequence: 0, start90k: .zero, duration90k: 0,
                utc: runStart), payload: Array(repeating: 1, count: 600))
        // Seconds 0-9 and 18-27 of the run: 8-17 are gone, as a pruned slot leaves them in the index.
        for second in Array(0..<10) + Array(18..<28) {
            let start = MediaTime90k(Int64(second) * 90_000)
            try writer.append(
                camera: lobby,
                meta: FragmentMeta(
                    kind: .fragment, keyframe: true, run: run, sequence: UInt32(second + 1), start90k: start,
                    duration90k: 90_000, utc: runStart.adding(start)), payload: Array(repeating: 7, count: 1_000))
        }
        try writer.syncAndCommit()
        try writer.close()
        let config = try ConfigLoader.parse(
            """
            box: box1
            recorder:
              disks:
                - {name: disk0, path: \(dir)/disk0}
            cameras:
              - {id: lobby, source: "rtsp://127.0.0.1:8554/lobby"}

            """)
        let report = try RecordingQueries.recordings(config: config, camera: lobby, fragmentGaps: false)
        #expect(report.runs.count == 1)
        #expect(report.totalSeconds == 20)
        #expect(report.gaps.count == 1)
        let hole = try #require(report.gaps.first)
        #expect(hole.cause == "deleted" && hole.afterRun == run && hole.seconds == 8)
        #expect(hole.fromMicros == runStart.micros + 10_000_000 && hole.toMicros == runStart.micros + 18_000_000)
        let text = report.render()
        #expect(text.contains("  hole ") && text.contains("8.000 s  deleted from the run's middle"), "\(text)")
    }
}

/// A fresh user's report: `disk init --size 2T` on a file system with 50 GB free started writing and would have
/// filled it.
@Test func slotsThatDoNotFitAreRefusedBeforeAnythingIsWritten() throws {
    let dir = try tempDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    #expect(throws: DiskMaintenance.InitRefusal.self) {
        try DiskMaintenance.initialize(
            path: dir + "/disk", box: "b", slotCount: 100_000, slotSizeBytes: 1 << 40, force: false
        ) { _, _ in }
    }
    #expect(!FileManager.default.fileExists(atPath: dir + "/disk/slots"))
    #expect(throws: Never.self) { try DiskMaintenance.checkRoom(path: dir + "/disk", bytes: 1 << 20) }
}
