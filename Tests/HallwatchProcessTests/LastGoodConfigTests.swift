import Foundation
import HallwatchConfig
import HallwatchCore
import Testing

@testable import HallwatchProcess

/// ``LastGoodConfig``: the record is trusted only as this process's user wrote it.
@Suite("The last good configuration")
struct LastGoodConfigTests {
    let dir: String = {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("hw-lastgood-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }()

    @Test func aRecordIsReadBackOnlyAsItsOwnerWroteIt() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = LastGoodConfig.path(process: "capture-lobby", directory: dir)
        #expect(path == dir + "/capture-lobby.last-good.json")
        let record = LastGoodConfig.Record(
            path: "/etc/hallwatch/hallwatch.yaml", version: "v3-0123456789abcdef", savedAt: UTCMicros(1_000_000),
            yaml: "box: b\n")
        try LastGoodConfig.save(record, to: path)
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(try LastGoodConfig.read(path).get() == record)
        // Saved again over the old one (atomic rename), no temporary file left behind.
        try LastGoodConfig.save(record, to: path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["capture-lobby.last-good.json"])
        // Readable by the group: refused (anyone in the box's group could have written it).
        chmod(path, 0o660)
        guard case .failure(let loose) = LastGoodConfig.read(path) else {
            Issue.record("a group-writable record was trusted")
            return
        }
        #expect(
            loose.code == "config.invalid"
                && loose.message.hasSuffix("not written by this process's user with mode 0600"))
        chmod(path, 0o600)
        // A symbolic link (to a record that would pass) is not followed.
        let link = dir + "/link.json"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
        guard case .failure(let linked) = LastGoodConfig.read(link) else {
            Issue.record("a symbolic link was followed")
            return
        }
        #expect(linked.message.contains("no last good configuration at \(link)"))
        // Not a record.
        FileManager.default.createFile(atPath: dir + "/junk.json", contents: Data("box: b\n".utf8))
        chmod(dir + "/junk.json", 0o600)
        guard case .failure(let junk) = LastGoodConfig.read(dir + "/junk.json") else {
            Issue.record("junk was read as a record")
            return
        }
        #expect(junk.message.hasSuffix("unreadable, too large or not a record"))
    }

    @Test func theAlarmNamesTheFirstProblemItsCountAndTheRelease() throws {
        let refused = try #require(throws: ConfigError.self) {
            try ConfigLoader.parse("box: b\ncapture:\n  maxFragmentDuraton: 1s\ncolour: red\n", file: "/etc/h.yaml")
        }
        let fallback = ConfigFallback(
            refused: refused,
            lastGood: .init(
                path: "/etc/h.yaml", version: "v3-0123456789abcdef", savedAt: UTCMicros(0), yaml: "box: b\n"))
        let alarm = fallback.alarm(camera: CameraID("lobby"))
        #expect(alarm.code == "config.invalid" && alarm.camera == CameraID("lobby"))
        #expect(
            alarm.message
                == "the configuration is refused: /etc/h.yaml:3: unknown key 'maxFragmentDuraton' in capture; expected one of: backoffInitial, backoffMax, ioTimeout, maxFragmentDuration (and 1 more); running on the last good one (release v3-0123456789abcdef, loaded 1970-01-01T00:00:00.000Z)"
        )
    }
}
