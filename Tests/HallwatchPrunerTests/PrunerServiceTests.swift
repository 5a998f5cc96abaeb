import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchStorage
import Logging
import Testing

@testable import HallwatchPruner

let quiet: Logger = {
    var l = Logger(label: "hallwatch.pruner.test")
    l.logLevel = .critical
    return l
}()

/// The pruner service's own coordination: the configuration re-read before each pass, and what happens when
/// the file goes bad (HallwatchStorage's tests cover the pass itself).
@Suite("Pruner service")
struct PrunerServiceTests {
    func writeConfig(_ path: String, disk: String, maxAge: String) throws {
        try """
        box: test-box
        recorder:
          disks: [{name: disk0, path: \(disk)}]
        retention: {maxAge: \(maxAge)}
        cameras:
          - {id: lobby, source: "rtsp://127.0.0.1:8554/lobby"}

        """.write(toFile: path, atomically: true, encoding: .utf8)
    }

    @Test func aChangedFileIsUsedAtTheNextPassAndABrokenOneKeepsTheLastGoodWithAnAlarm() throws {
        let dir =
            FileManager.default.temporaryDirectory.path + "/hw-pruner-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/disk0", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/hallwatch.yaml"
        try writeConfig(path, disk: dir + "/disk0", maxAge: "30d")
        let service = PrunerService(
            config: try ConfigLoader.load(path: path), source: .file(path), presence: nil, logger: quiet)

        try writeConfig(path, disk: dir + "/disk0", maxAge: "7d")
        var report = service.runPass(dryRun: true)
        #expect(!report.alarms.contains { $0.code.hasPrefix("config.") })
        #expect(service.currentConfig().0.retention.maxAge == .seconds(7 * 86_400))

        try "box: [not, a, box\n".write(toFile: path, atomically: true, encoding: .utf8)
        report = service.runPass()
        let alarm = try #require(report.alarms.first)
        #expect(alarm.code == "config.invalid")
        #expect(alarm.message.contains("last good configuration"))
        let (kept, again) = service.currentConfig()
        #expect(kept.retention.maxAge == .seconds(7 * 86_400))  // the last good one, not the start's
        #expect(again?.code == "config.invalid")

        try FileManager.default.removeItem(atPath: path)
        #expect(service.currentConfig().1?.code == "config.unreadable")
    }
}
