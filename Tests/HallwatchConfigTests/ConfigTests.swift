import Foundation
import HallwatchCore
import Testing

@testable import HallwatchConfig

@Suite("Configuration")
struct ConfigTests {
    let good = """
        box: lincoln-es
        building: Lincoln Elementary
        bus:
          socket: /run/hallwatch/bus.sock
        recorder:
          disks: [{ name: disk0, path: /srv/disk0 }]
          fsyncCadence: 500ms
          slotSizeBytes: 8388608
          slotCount: 16
        capture:
          maxFragmentDuration: 1s
        cameras:
          - id: lobby
            name: Main lobby
            source: rtsp://10.1.2.3/axis-media/media.amp
            audio: true
          - id: gym-east
            source: rtsp://10.1.2.4:8554/stream1
            transport: udp
        """

    let twoDisks = """
        box: lincoln-es
        recorder:
          disks:
            - name: disk0
              path: /srv/disk0
            - name: disk1
              path: /srv/disk1
        cameras:
          - id: lobby
            source: rtsp://10.1.2.3/axis-media/media.amp
            disk: disk1
          - id: gym-east
            source: rtsp://10.1.2.4:8554/stream1
        """

    @Test(arguments: [
        ("rtsp://10.1.2.3:99999/s", "port 99999 is outside 1-65535"),
        ("rtsp://10.1.2.3/s?user=admin&password=hunter2", "a password does not belong in the URL's query"),
        ("rtsp://10.1.2.3/a b", "without spaces or line breaks"),
        ("rtsp://admin:hunter2@10.1.2.3/s", "credentials do not belong in the URL"),
    ])
    func hostileCameraURLsAreRefused(url: String, expected: String) throws {
        let text = "box: b\ncameras:\n  - id: cam\n    source: \"\(url)\"\n"
        do {
            _ = try ConfigLoader.parse(text, file: "u.yaml")
            Issue.record("accepted \(url)")
        } catch let e as ConfigError {
            #expect(e.diagnostics.count == 1 && e.diagnostics[0].description.contains(expected), "\(e)")
            #expect(!e.description.contains("hunter2"), "a refused URL's password must not be echoed")
        }
    }

    @Test func disksAndPinnedCameras() throws {
        let c = try ConfigLoader.parse(twoDisks)
        #expect(
            c.recorder.disks == [
                DiskConfig(name: "disk0", path: "/srv/disk0"), DiskConfig(name: "disk1", path: "/srv/disk1"),
            ])
        #expect(c.cameras[0].disk == "disk1" && c.cameras[1].disk == nil)
        #expect(try ConfigLoader.parse(good).recorder.disks == [DiskConfig(name: "disk0", path: "/srv/disk0")])
    }

    @Test func diskProblemsAreNamed() throws {
        let bad = twoDisks.replacingOccurrences(of: "path: /srv/disk1", with: "path: /srv/disk0/")
            .replacingOccurrences(of: "disk: disk1", with: "disk: disk7")
        do {
            _ = try ConfigLoader.parse(bad, file: "h.yaml")
            Issue.record("accepted a disk listed twice and an unknown disk name")
        } catch let e as ConfigError {
            #expect(
                e.diagnostics.map(\.description) == [
                    "h.yaml:7: recorder.disks.[1].path: disk path '/srv/disk0/' is listed twice",
                    "h.yaml:11: cameras.[0].disk: no disk named 'disk7' in recorder.disks (have: disk0, disk1)",
                ])
        }
        #expect(throws: ConfigError.self) { try ConfigLoader.parse("box: b\nrecorder:\n  disks: []\n") }
    }

    /// A fresh user's report (issue 17, "every problem at once"): a schema problem used to hide every consistency
    /// problem until it was fixed, a disk name the generator cannot mount (label `hallwatch-<name>`, 16 bytes)
    /// and a relative `passwordFile` were accepted.
    @Test func everyProblemInOneRunWithItsLine() throws {
        let text = """
            box: b
            recorder:
              disks:
                - { name: recordings, path: /srv/a }
                - { name: disk1, path: srv/b }
                - { name: disk2, path: /srv/c, sise: 3 }
            cameras:
              - id: lobby
                source: rtsp://10.1.2.3/s
                passwordFile: secrets/lobby.password
                disk: recordings
              - id: lobby
                source: rtsp://10.1.2.4/s
                transport: carrier-pigeon
              - id: gym
                source: http://10.1.2.5/s
              - id: hall
                source: rtsp://10.1.2.6/s
                disk: disk9
            retention:
              maxAge: 1h
              minAge: 2h

            """
        let e = try #require(throws: ConfigError.self) { try ConfigLoader.parse(text, file: "one.yaml") }
        #expect(e.code == "config.invalid")
        #expect(
            e.diagnostics.map(\.description) == [
                "one.yaml:4: recorder.disks.[0].name: expected 1-6 characters a-z, 0-9, '-' or '_' (not starting with '-' or '_'; the disk's ext4 label is hallwatch-<name>, at most 16 bytes), got \"recordings\"",
                "one.yaml:6: unknown key 'sise' in recorder.disks.[2]; expected one of: name, path",
                "one.yaml:10: cameras.[0].passwordFile: expected an absolute path (starting with /), got \"secrets/lobby.password\": a relative one would be read from whichever directory a process runs in",
                "one.yaml:11: cameras.[0].disk: expected 1-6 characters a-z, 0-9, '-' or '_' (not starting with '-' or '_'; the disk's ext4 label is hallwatch-<name>, at most 16 bytes), got \"recordings\"",
                "one.yaml:14: cameras.[1].transport: expected one of auto, tcp, udp, got \"carrier-pigeon\"",
                "one.yaml:16: cameras.[2].source: expected an rtsp://host[:port]/path URL, got \"http://10.1.2.5/s\"",
                // The consistency checks, in the same run, on what fits the schema; list indices as written.
                // (in HallwatchConfig.sections order: the recorder's checks, the cameras', retention's).
                "one.yaml:5: recorder.disks.[1].path: disk path 'srv/b' must be absolute (start with /)",
                "one.yaml:19: cameras.[3].disk: no disk named 'disk9' in recorder.disks (have: disk1, disk2)",
                "one.yaml:12: cameras.[1].id: duplicate camera id 'lobby'",
                "one.yaml:22: retention.minAge: expected at most maxAge (1h)",
            ])
        // The same file through `load(path:)`, which processes and `hallwatchctl config validate` use.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "cfg-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("hallwatch.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let loaded = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: path) }
        #expect(loaded.diagnostics.count == 10 && loaded.diagnostics.allSatisfy { $0.file == path })
        // What a read-only tool (`hallwatchctl status`) may still use: the part that fits, with the refusal.
        let (fits, refused) = try ConfigLoader.loadWhatFits(path: path)
        #expect(refused?.diagnostics == loaded.diagnostics)
        #expect(fits.box == "b" && fits.cameras.map(\.id.rawValue) == ["lobby", "lobby", "gym", "hall"])
        #expect(fits.recorder.disks.map(\.name) == ["disk1", "disk2"] && fits.cameras[0].passwordFile == nil)
        let missing = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: path + ".missing") }
        #expect(missing.code == "config.unreadable")
        // Six characters are the most a disk name may have; an absolute passwordFile is fine.
        let fixed = try ConfigLoader.parse(
            "box: b\nrecorder:\n  disks: [{ name: disk-a, path: /srv/a }]\ncameras:\n  - { id: c, source: rtsp://h/s, disk: disk-a, passwordFile: /etc/hallwatch/secrets/c }\n"
        )
        #expect(
            fixed.recorder.disks.map(\.name) == ["disk-a"]
                && fixed.cameras[0].passwordFile == "/etc/hallwatch/secrets/c")
    }

    @Test func diskPathsAreAbsoluteAndNeverNested() throws {
        let text =
            "box: b\nrecorder:\n  disks:\n    - { name: a, path: /srv/rec }\n    - { name: b, path: /srv/rec/../rec/b }\n"
            + "    - { name: c, path: disk2 }\n    - { name: d, path: /srv }\n    - { name: e, path: /srv/other }\n"
        do {
            _ = try ConfigLoader.parse(text, file: "n.yaml")
            Issue.record("accepted nested and relative disk paths")
        } catch let e as ConfigError {
            #expect(
                e.diagnostics.map(\.description) == [
                    "n.yaml:5: recorder.disks.[1].path: disk path '/srv/rec/../rec/b' is nested with '/srv/rec': each disk needs its own directory tree",
                    "n.yaml:6: recorder.disks.[2].path: disk path 'disk2' must be absolute (start with /)",
                    "n.yaml:7: recorder.disks.[3].path: disk path '/srv' is nested with '/srv/rec': each disk needs its own directory tree",
                    "n.yaml:8: recorder.disks.[4].path: disk path '/srv/other' is nested with '/srv': each disk needs its own directory tree",
                ])
        }
    }

    @Test func textWithALineBreakIsRefused() throws {
        // A fresh user's report: a camera's `username` with CR/LF passed the check and forged an RTSP header line.
        let text =
            "box: b\ncameras:\n  - id: cam\n    source: rtsp://10.1.2.3/s\n    username: \"u\\r\\nX-Injected: 1\"\n"
        do {
            _ = try ConfigLoader.parse(text, file: "t.yaml")
            Issue.record("accepted a user name with a line break")
        } catch let e as ConfigError {
            #expect(
                e.diagnostics.map(\.description) == [
                    "t.yaml:5: cameras.[0].username: expected one line of text without control characters"
                ])
        }
    }

    @Test func aFreeSlotReserveOfEverySlotIsRefused() throws {
        // A fresh user's report: `reserveSlots` of 64 on disks of 64 slots passed the check, and the pruner would
        // then want every slot free.
        let text = "box: b\nrecorder:\n  slotCount: 64\nretention:\n  reserveSlots: 64\n"
        do {
            _ = try ConfigLoader.parse(text, file: "r.yaml")
            Issue.record("accepted a reserve of every slot")
        } catch let e as ConfigError {
            #expect(
                e.diagnostics.map(\.description) == [
                    "r.yaml:5: retention.reserveSlots: expected fewer than recorder.slotCount (64): a reserve of every slot leaves none to record to"
                ])
        }
        #expect(
            try ConfigLoader.parse(text.replacingOccurrences(of: "reserveSlots: 64", with: "reserveSlots: 63"))
                .retention.reserveSlots == 63)
    }

    @Test func parsesAndAppliesDefaults() throws {
        let c = try ConfigLoader.parse(good)
        #expect(c.box == "lincoln-es")
        #expect(c.recorder.fsyncCadence == .milliseconds(500))
        #expect(c.recorder.slotSizeBytes == 8 << 20)
        #expect(c.recorder.socket == "/run/hallwatch/recorder.sock")
        #expect(c.capture.ioTimeout == .seconds(5))
        #expect(c.cameras.count == 2)
        #expect(c.cameras[0].audio == true && c.cameras[0].transport == .auto && c.cameras[0].name == "Main lobby")
        #expect(c.cameras[1].audio == false && c.cameras[1].transport == .udp && c.cameras[1].name == "gym-east")
    }

    @Test func unknownKeyIsRefusedWithFileLineAndExpectedKeys() throws {
        let text = good.replacingOccurrences(of: "  fsyncCadence: 500ms", with: "  fsyncCadense: 500ms")
        let error = try #require(throws: ConfigError.self) {
            try ConfigLoader.parse(text, file: "/etc/hallwatch/hallwatch.yaml")
        }
        #expect(error.code == "config.invalid")
        #expect(error.diagnostics.count == 1)
        let d = try #require(error.diagnostics.first)
        #expect(d.file == "/etc/hallwatch/hallwatch.yaml")
        #expect(d.line == 7)
        #expect(d.message.contains("unknown key 'fsyncCadense' in recorder"))
        #expect(d.message.contains("fsyncCadence"))
        #expect(d.description.hasPrefix("/etc/hallwatch/hallwatch.yaml:7: "))
    }

    /// Issue 17 (a USB drop could carry anything): duplicate keys and explicit tags are refused, each at its line.
    @Test func duplicateKeysAndTagsAreRefused() throws {
        let dup = good.replacingOccurrences(
            of: "  fsyncCadence: 500ms", with: "  fsyncCadence: 500ms\n  fsyncCadence: 1s")
        var e = try #require(throws: ConfigError.self) { try ConfigLoader.parse(dup) }
        // Yams' composer refuses them (without a line).
        #expect(e.diagnostics.first?.message.contains("duplicated key(s): 'fsyncCadence'") == true)
        let tagged = good.replacingOccurrences(of: "box: lincoln-es", with: "box: !python/object lincoln-es")
        e = try #require(throws: ConfigError.self) { try ConfigLoader.parse(tagged) }
        #expect(e.diagnostics.first?.message.contains("the tag !python/object is not allowed") == true)
        let binary = good.replacingOccurrences(of: "box: lincoln-es", with: "box: !!binary aGk=")
        e = try #require(throws: ConfigError.self) { try ConfigLoader.parse(binary) }
        #expect(e.diagnostics.first?.line == 1)
    }

    @Test func badValuesAreRefusedWithTheirLines() throws {
        let wrongType = good.replacingOccurrences(of: "    audio: true", with: "    audio: sometimes")
        var e = try #require(throws: ConfigError.self) { try ConfigLoader.parse(wrongType) }
        #expect(e.diagnostics.first?.line == 16)
        #expect(e.diagnostics.first?.message.contains("true or false") == true)

        let badDuration = good.replacingOccurrences(of: "fsyncCadence: 500ms", with: "fsyncCadence: fast")
        e = try #require(throws: ConfigError.self) { try ConfigLoader.parse(badDuration) }
        #expect(e.diagnostics.first?.line == 7)
        #expect(e.diagnostics.first?.message.contains("expected a duration such as 500ms") == true)

        let outOfRange = good.replacingOccurrences(of: "fsyncCadence: 500ms", with: "fsyncCadence: 30s")
        e = try #require(throws: ConfigError.self) { try ConfigLoader.parse(outOfRange) }
        #expect(e.diagnostics.first?.line == 7)
        #expect(e.diagnostics.first?.message == "recorder.fsyncCadence: expected 100ms to 10s, got 30s")

        let credentials = good.replacingOccurrences(of: "rtsp://10.1.2.3/", with: "rtsp://root:pass@10.1.2.3/")
        e = try #require(throws: ConfigError.self) { try ConfigLoader.parse(credentials) }
        #expect(e.diagnostics.first?.line == 15)
        #expect(e.diagnostics.first?.message.contains("credentials do not belong in the URL") == true)

        let badID = good.replacingOccurrences(of: "id: gym-east", with: "id: Gym East")
        e = try #require(throws: ConfigError.self) { try ConfigLoader.parse(badID) }
        #expect(e.diagnostics.first?.line == 17)
        #expect(e.diagnostics.first?.message.contains("1-32 characters") == true)
    }

    @Test func everyProblemIsReportedAtOnce() throws {
        let text = good.replacingOccurrences(of: "  socket: /run/hallwatch/bus.sock", with: "  sockett: x")
            .replacingOccurrences(of: "    transport: udp", with: "    transprot: udp")
        let e = try #require(throws: ConfigError.self) { try ConfigLoader.parse(text) }
        #expect(e.diagnostics.map(\.line).sorted() == [4, 19])
    }

    @Test func everyBadValueIsReportedAtOnceWithItsExpectedForm() throws {
        // Found by a first user: only the first bad value used to be reported.
        let text = good.replacingOccurrences(of: "slotCount: 16", with: "slotCount: -5")
            .replacingOccurrences(of: "fsyncCadence: 500ms", with: "fsyncCadence: -1s")
            .replacingOccurrences(of: "transport: udp", with: "transport: quic")
            .replacingOccurrences(of: "audio: true", with: "audio: yes please")
            .replacingOccurrences(of: "slotSizeBytes: 8388608", with: "slotSizeBytes: 1048577")
            .replacingOccurrences(of: "source: rtsp://10.1.2.4:8554/stream1", with: "source: http://10.1.2.4/stream1")
        let e = try #require(throws: ConfigError.self) { try ConfigLoader.parse(text) }
        let byLine = Dictionary(uniqueKeysWithValues: e.diagnostics.map { ($0.line, $0.message) })
        #expect(e.diagnostics.count == 6)
        #expect(byLine[7]?.contains("expected a duration") == true)
        #expect(byLine[8] == "recorder.slotSizeBytes: expected a multiple of 4096, got 1048577")
        #expect(byLine[9] == "recorder.slotCount: expected 2 to 100000, got -5")
        #expect(byLine[16] == "cameras.[0].audio: expected true or false, got \"yes please\"")
        #expect(byLine[18]?.contains("expected an rtsp://host[:port]/path URL") == true)
        #expect(byLine[19] == "cameras.[1].transport: expected one of auto, tcp, udp, got \"quic\"")
    }

    @Test func unreadableFilesSayWhy() throws {
        var e = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: "/nonexistent/hallwatch.yaml") }
        #expect(e.diagnostics.first?.message == "no such file")
        let garbage = FileManager.default.temporaryDirectory.appendingPathComponent("hw-garbage-\(getpid()).yaml").path
        FileManager.default.createFile(atPath: garbage, contents: Data([0x00, 0xFF, 0xFE, 0x01, 0x80]))
        defer { try? FileManager.default.removeItem(atPath: garbage) }
        e = try #require(throws: ConfigError.self) { try ConfigLoader.load(path: garbage) }
        #expect(e.diagnostics.first?.message == "not a text file (expected UTF-8 YAML)")
    }

    @Test func duplicateCameraAndMissingKeys() throws {
        let dup = good.replacingOccurrences(of: "id: gym-east", with: "id: lobby")
        var e = try #require(throws: ConfigError.self) { try ConfigLoader.parse(dup) }
        #expect(e.diagnostics.first?.message.contains("duplicate camera id 'lobby'") == true)
        e = try #require(throws: ConfigError.self) { try ConfigLoader.parse("building: x\n") }
        #expect(e.diagnostics.first?.message.contains("box: required key is missing") == true)
        e = try #require(throws: ConfigError.self) { try ConfigLoader.parse("box: [unclosed\n") }
        #expect(e.diagnostics.first?.message.hasPrefix("not valid YAML") == true)
    }

    @Test func aValueOnlyDecodingRefusesIsReportedWithItsPathAndLine() throws {
        // `'true'` is a string to YAML: the schema walk reads the text, decoding wants a boolean.
        let text = "box: b\ncameras:\n  - id: c\n    source: rtsp://h/s\n    audio: 'true'\n"
        let e = try #require(throws: ConfigError.self) { try ConfigLoader.parse(text, file: "q.yaml") }
        #expect(e.diagnostics.map(\.description) == ["q.yaml:5: cameras.[0].audio: expected true or false"])
    }
}
