import Foundation
import HallwatchCore
import Testing

@testable import HallwatchConfig

/// Documents whose outcome (the resolved configuration, or every diagnostic in order) is pinned by a golden
/// file, so that reorganising the loader cannot change what an operator sees.
enum ConfigCorpus {
    static let base = """
        box: lincoln-es
        building: Lincoln Elementary
        bus:
          socket: /run/hallwatch/bus.sock
        recorder:
          disks: [{ name: disk0, path: /srv/disk0 }, { name: disk1, path: /srv/disk1 }]
          fsyncCadence: 500ms
          slotSizeBytes: 8388608
          slotCount: 16
        capture:
          maxFragmentDuration: 1s
          backoffInitial: 250ms
        cameras:
          - id: lobby
            name: Main lobby
            source: rtsp://10.1.2.3/axis-media/media.amp
            audio: true
            disk: disk1
            retention: { maxAge: 7d, maxBytes: 1000000000 }
          - id: gym-east
            source: rtsp://10.1.2.4:8554/stream1
            transport: udp
            username: viewer
            passwordFile: /etc/hallwatch/secrets/gym.password
            onvifEndpoint: urn:uuid:1234
        retention:
          maxAge: 14d
          reserveSlots: 3
        discovery:
          interfaces: [eth1]
          adopt: auto
          period: 5m

        """

    static let documents: [String] = [
        base,
        "box: b\n",
        "box: b\nbuilding: ~\n",
        "",
        "box: [unclosed\n",
        "- a\n- b\n",
        "box: B!\nbus: 3\nrecorder: []\ncapture:\n  - x\n",
        "box: b\ncameras:\n  - id: c\n    source: rtsp://h/s\n    audio: tRuE\n",
        "box: b\ncameras:\n  - id: c\n    source: rtsp://h/s\n    audio: TRUE\n    disk: null\n    username:\n    name: ~\n",
        "box: b\ncameras:\n  - id: c\n    source: rtsp://h/s\n  - id: c\n    source: rtsp://h/t\n    disk: nope\ndiscovery:\n  interfaces: []\n  username: u\ncapture:\n  backoffInitial: 20s\n  backoffMax: 1s\nretention:\n  maxAge: 1h\n  minAge: 2h\nrecorder:\n  disks: []\n",
        "box: b\ncameras:\n  - id: c\n    source: rtsp://h/s\n    retention: { maxAge: 1h, minAge: 2h }\n  - { id: d, source: rtsp://h/d, retention: {} }\n",
        "box: b\nrecorder:\n  slotSizeBytes: +67108864\n  slotCount: 0x10\n",
        "box: b\nrecorder:\n  slotCount: 010\n  fsyncCadence: 1.5s\n",
        "box: b\nbus:\n  socket: \"\"\nrecorder:\n  socket: /r\n  disks:\n    - name: a\n    - path: /x\n    - { name: b, path: /b, size: 3 }\n",
        "box: b\nretention:\n  maxBytes: 10\n  reserve: 8d\n  period: 0s\n  maxHoldPercent: 96\n  extra: 1\n",
        "box: b\ndiscovery:\n  interfaces: [eth0, 10.0.0.1]\n  listen: 100ms\n  missedProbes: 0\n  maxDevices: 5000\n  requestTimeout: 31s\n  adopt: maybe\n  passwordFile: /p\n",
        "box: b\ncameras:\n"
            + (0..<3).map { "  - id: c\($0)\n    source: rtsp://h/\($0)\n    transport: udp\n" }.joined(),
        "box: b\nunknown: 1\nanother:\n  deep: 2\n",
        "box: b\ncameras: {}\n",
        "box: b\ncameras:\n  - just-a-string\n",
        "box: b\nbuilding: \(String(repeating: "x", count: 201))\n",
        "box: b\nbuilding: 'quoted'\ncameras:\n  - id: \"c\"\n    source: 'rtsp://h:554/s?x=1'\n    audio: false\n",
    ]

    /// What the loader makes of `text`: the resolved configuration or the error, as text.
    static func outcome(_ text: String) -> String {
        do {
            let c = try ConfigLoader.parse(text, file: "g.yaml")
            return [
                "OK box=\(c.box) building=\(c.building)", "\(c.bus)", "\(c.recorder)", "\(c.capture)", "\(c.cameras)",
                "\(c.retention)", "\(String(describing: c.discovery))",
            ].joined(separator: "\n")
        } catch let e as ConfigError {
            return "ERROR \(e.code)\n\(e.description)"
        } catch {
            return "OTHER \(error)"
        }
    }

    static func all() -> String {
        // Type names are printed without their module, which moved from HallwatchCore to HallwatchConfig.
        documents.enumerated().map { "=== \($0.offset)\n\(outcome($0.element))\n" }.joined()
            .replacingOccurrences(of: "HallwatchCore.", with: "").replacingOccurrences(of: "HallwatchConfig.", with: "")
    }
}

@Test("The loader's outcomes for a corpus of documents match the golden file")
func configCorpusMatchesGolden() throws {
    var url = URL(fileURLWithPath: #filePath)
    url.deleteLastPathComponent()
    let golden = url.appendingPathComponent("Golden/config-outcomes.txt")
    let actual = ConfigCorpus.all()
    if ProcessInfo.processInfo.environment["HALLWATCH_RECORD_GOLDEN"] != nil {
        try FileManager.default.createDirectory(
            at: golden.deletingLastPathComponent(), withIntermediateDirectories: true)
        try actual.write(to: golden, atomically: true, encoding: .utf8)
    }
    let expected = try String(contentsOf: golden, encoding: .utf8)
    #expect(actual == expected)
}
