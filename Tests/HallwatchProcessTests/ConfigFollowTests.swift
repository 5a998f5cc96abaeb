import Foundation
import HallwatchConfig
import HallwatchCore
import Testing

@testable import HallwatchProcess

/// Which release a configuration path belongs to, and what each process does with a new one (issue 17 step 7).
@Suite("Following the announced configuration")
struct ConfigFollowTests {
    static func config(_ yaml: String) throws -> HallwatchConfig { try ConfigLoader.parse(yaml, file: "t.yaml") }

    static let base = """
        box: b1
        recorder:
          disks: [{ name: disk0, path: /srv/disk0 }, { name: disk1, path: /srv/disk1 }]
        retention:
          maxAge: 30d
        cameras:
          - id: lobby
            source: rtsp://10.0.0.2/a
          - id: gym
            source: rtsp://10.0.0.3/a

        """

    @Test func theVersionIsTheReleaseThePathResolvesInto() throws {
        let root = FileManager.default.temporaryDirectory.path + "/hw-cfgver-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let release = "v12-0123456789abcdef"
        try FileManager.default.createDirectory(
            atPath: "\(root)/store/releases/\(release)", withIntermediateDirectories: true)
        try Self.base.write(
            toFile: "\(root)/store/releases/\(release)/hallwatch.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(
            atPath: "\(root)/store/current", withDestinationPath: "releases/\(release)")
        try FileManager.default.createSymbolicLink(
            atPath: "\(root)/hallwatch.yaml", withDestinationPath: "\(root)/store/current/hallwatch.yaml")
        #expect(ConfigVersion.of(path: "\(root)/hallwatch.yaml") == release)
        #expect(ConfigVersion.of(path: "\(root)/store/current/hallwatch.yaml") == release)
        // A hand-written file, a missing one, and directories that only look like releases have none.
        try Self.base.write(toFile: "\(root)/plain.yaml", atomically: true, encoding: .utf8)
        #expect(ConfigVersion.of(path: "\(root)/plain.yaml") == nil)
        #expect(ConfigVersion.of(path: "\(root)/missing.yaml") == nil)
        for name in [
            "v-0123456789abcdef", "v1-0123456789ABCDEF", "v1-0123", "x1-0123456789abcdef", "v1a-0123456789abcdef",
        ] {
            #expect(!ConfigVersion.isRelease(Substring(name)), "\(name)")
        }
    }

    @Test func theRecorderAndUnchangedCamerasAdoptTheRestRestart() throws {
        let old = try Self.config(Self.base)
        // A camera added, another removed, retention changed: the recorder and lobby's worker keep running.
        let cameras = try Self.config(
            Self.base.replacingOccurrences(of: "id: gym", with: "id: hall").replacingOccurrences(
                of: "maxAge: 30d", with: "maxAge: 20d"))
        #expect(ReloadPolicy.recorder.decide(old, cameras) == .adopt)
        #expect(ReloadPolicy.capture(CameraID("lobby")!).decide(old, cameras) == .adopt)
        #expect(ReloadPolicy.capture(CameraID("gym")!).decide(old, cameras) == .restart)  // gone: exits 3
        #expect(ReloadPolicy.anyChange.decide(old, cameras) == .restart)
        #expect(ReloadPolicy.anyChange.decide(old, old) == .adopt)
        // The recorder's own section, or a camera pinned to another disk, restarts the recorder.
        let socket = try Self.config(Self.base + "bus:\n  socket: /run/other.sock\n")
        #expect(ReloadPolicy.recorder.decide(old, socket) == .restart)
        #expect(ReloadPolicy.capture(CameraID("lobby")!).decide(old, socket) == .restart)
        let pinned = try Self.config(
            Self.base.replacingOccurrences(
                of: "source: rtsp://10.0.0.2/a", with: "source: rtsp://10.0.0.2/a\n    disk: disk1"))
        #expect(ReloadPolicy.recorder.decide(old, pinned) == .restart)
        #expect(ReloadPolicy.capture(CameraID("lobby")!).decide(old, pinned) == .restart)
        #expect(ReloadPolicy.capture(CameraID("gym")!).decide(old, pinned) == .adopt)
    }

    @Test func aPasswordChangedOnlyInTheSecretsRestartsThatCamerasWorker() throws {
        let root = FileManager.default.temporaryDirectory.path + "/hw-secret-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let lobbyPassword = root + "/lobby.password"
        try "hunter2\n".write(toFile: lobbyPassword, atomically: true, encoding: .utf8)
        let yaml = Self.base.replacingOccurrences(
            of: "source: rtsp://10.0.0.2/a",
            with: "source: rtsp://10.0.0.2/a\n    username: admin\n    passwordFile: \(lobbyPassword)")
        let config = try Self.config(yaml)
        let lobby = ReloadPolicy.capture(CameraID("lobby")!)
        let gym = ReloadPolicy.capture(CameraID("gym")!)
        #expect(lobby.secretFiles(config) == [lobbyPassword])
        #expect(gym.secretFiles(config) == [])
        let before = SecretDigest(files: lobby.secretFiles(config))
        #expect(before.sha256.count == 32)
        #expect(SecretDigest(files: lobby.secretFiles(config)) == before)  // read again: the same
        // The same YAML, the password file's contents changed (a new release's secrets/): lobby's worker
        // connects again, gym's adopts.
        try "correct horse\n".write(toFile: lobbyPassword, atomically: true, encoding: .utf8)
        let after = SecretDigest(files: lobby.secretFiles(config))
        #expect(after != before)
        #expect(lobby.decide(config, config) == .adopt)  // the YAML alone says nothing changed
        #expect(lobby.decide(running: config, runningSecrets: before, new: config, newSecrets: after) == .restart)
        #expect(lobby.decide(running: config, runningSecrets: after, new: config, newSecrets: after) == .adopt)
        let gymDigest = SecretDigest(files: gym.secretFiles(config))
        #expect(gym.decide(running: config, runningSecrets: gymDigest, new: config, newSecrets: gymDigest) == .adopt)
        // A file that vanishes (or cannot be read) is a change too; the YAML rule still applies on its own.
        try FileManager.default.removeItem(atPath: lobbyPassword)
        #expect(SecretDigest(files: lobby.secretFiles(config)) != after)
        let socket = try Self.config(yaml + "bus:\n  socket: /run/other.sock\n")
        #expect(lobby.decide(running: config, runningSecrets: after, new: socket, newSecrets: after) == .restart)
        // Discovery's ONVIF password counts for discovery.
        let discovery = try Self.config(
            Self.base + "discovery:\n  interfaces: [lo]\n  username: onvif\n  passwordFile: \(root)/onvif.password\n")
        #expect(ReloadPolicy.discovery.secretFiles(discovery) == ["\(root)/onvif.password"])
    }
}
