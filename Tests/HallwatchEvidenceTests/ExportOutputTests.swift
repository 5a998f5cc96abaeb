import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchEvidence
import Testing

/// Where an export may be written: never through a symbolic link, never over a directory, never into a recording
/// disk (an export over `meta` or the index destroyed the disk it came from).
@Suite("Export output path")
struct ExportOutputTests {
    @Test func linksDirectoriesAndRecordingDisksAreRefused() throws {
        let dir =
            FileManager.default.temporaryDirectory.path + "/hw-out-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir + "/disk0", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try ConfigLoader.parse("box: b\nrecorder:\n  disks: [{name: disk0, path: \(dir)/disk0}]\n")
        try "keep".write(toFile: dir + "/target.txt", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(
            atPath: dir + "/out/link.mp4", withDestinationPath: dir + "/target.txt")
        try FileManager.default.createSymbolicLink(
            atPath: dir + "/out/dangling.mp4", withDestinationPath: dir + "/nowhere")
        try FileManager.default.createSymbolicLink(atPath: dir + "/out/disk", withDestinationPath: dir + "/disk0")

        func refusal(_ path: String) -> String? {
            do {
                try EvidenceExport.checkOutput(path, config: config)
                return nil
            } catch let e as ErrorEvent {
                return e.code + ": " + e.message
            } catch { return "\(error)" }
        }
        #expect(refusal(dir + "/out/clip.mp4") == nil)
        #expect(refusal(dir + "/out/link.mp4")?.contains("symbolic link") == true)
        #expect(refusal(dir + "/out/dangling.mp4")?.contains("symbolic link") == true)
        #expect(refusal(dir + "/out")?.contains("directory") == true)
        #expect(refusal(dir + "/disk0/meta")?.contains("inside recording disk disk0") == true)
        #expect(refusal(dir + "/out/disk/index.sqlite")?.contains("inside recording disk disk0") == true)
        #expect(refusal(dir + "/out/../disk0/clip.mp4")?.hasPrefix("export.badOutput") == true)
        #expect(refusal(dir + "/missing/clip.mp4")?.contains("does not exist") == true)
        #expect(try String(contentsOfFile: dir + "/target.txt", encoding: .utf8) == "keep")
    }
}
