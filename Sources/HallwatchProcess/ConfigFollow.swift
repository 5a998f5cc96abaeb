import Crypto
import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import Logging

/// Which configuration release a file belongs to (issue 17 step 7).
///
/// On a provisioned box every process reads its configuration through the store's `current` link
/// (`/etc/hallwatch/hallwatch.yaml` → `/var/lib/hallwatch/config/current/hallwatch.yaml`); the release is the
/// name of the directory the path resolves into, `v<bundle version>-<16 hex>`.
public enum ConfigVersion {
    /// The release `path` resolves into (symbolic links followed), or `nil` when the file is not inside a
    /// release directory (a hand-written configuration: the demo, the end-to-end tests). Read it *before*
    /// loading the file: a switch in between then shows as an old version and is caught up by the next
    /// announcement, never the reverse.
    public static func of(path: String) -> String? {
        guard let real = realpath(path, nil) else { return nil }
        defer { free(real) }
        let parts = String(cString: real).split(separator: "/")
        guard parts.count >= 3, parts[parts.count - 3] == "releases" else { return nil }
        let name = parts[parts.count - 2]
        return isRelease(name) ? String(name) : nil
    }

    /// Whether `name` has a release directory's shape: `v`, digits, `-`, 16 lower-case hex digits.
    public static func isRelease(_ name: Substring) -> Bool {
        guard name.first == "v", let dash = name.firstIndex(of: "-") else { return false }
        let digits = name[name.index(after: name.startIndex)..<dash]
        let hash = name[name.index(after: dash)...]
        return !digits.isEmpty && digits.count <= 19 && digits.allSatisfy(\.isASCII) && digits.allSatisfy(\.isNumber)
            && hash.count == 16 && hash.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }
    }
}

/// What a running process does with a newly announced configuration.
public enum ReloadDecision: Sendable, Equatable {
    /// Nothing this process uses changed: it keeps running and reports the new version.
    case adopt
    /// Something it uses changed: it stops gracefully and its supervisor (systemd, or the development
    /// supervisor) starts it again through `current`.
    case restart
}

/// Each process's rule for a new configuration: which parts it uses (issue 17 step 7: "unchanged cameras keep
/// recording without a gap", so the recorder and the capture workers restart only for what they use) — in the
/// YAML, and in the files it names whose contents matter (a camera's `passwordFile`: a password changed only in
/// the release's `secrets/` leaves the YAML unchanged, yet the worker must connect again with it).
public struct ReloadPolicy: Sendable {
    /// Decides from the configuration the process runs with and the new one.
    public var decide: @Sendable (_ running: HallwatchConfig, _ new: HallwatchConfig) -> ReloadDecision
    /// The files outside the YAML whose contents this process uses under a configuration (paths as written
    /// in it; read through `current`, so after a switch they are the new release's files).
    public var secretFiles: @Sendable (_ config: HallwatchConfig) -> [String]

    /// A policy from its rule and the secret files it uses (none by default).
    public init(
        secretFiles: @escaping @Sendable (_ config: HallwatchConfig) -> [String] = { _ in [] },
        decide: @escaping @Sendable (_ running: HallwatchConfig, _ new: HallwatchConfig) -> ReloadDecision
    ) {
        self.decide = decide
        self.secretFiles = secretFiles
    }

    /// The decision with the secret files included: ``decide`` on the YAML, and a restart when it would adopt
    /// but the digest of the secret files (``SecretDigest``) differs from the one the process runs with.
    public func decide(
        running: HallwatchConfig, runningSecrets: SecretDigest, new: HallwatchConfig, newSecrets: SecretDigest
    ) -> ReloadDecision {
        decide(running, new) == .adopt && runningSecrets == newSecrets ? .adopt : .restart
    }

    /// Restarts on any change (the pruner, the web: none of them holds video).
    public static let anyChange = ReloadPolicy { $0 == $1 ? .adopt : .restart }

    /// Discovery restarts on any change, and when an ONVIF password (`discovery.passwordFile`, an event device's
    /// `passwordFile`) changed.
    public static let discovery = ReloadPolicy(
        secretFiles: { c in
            [c.discovery?.passwordFile].compactMap { $0 } + (c.discovery?.eventDevices ?? []).compactMap(\.passwordFile)
        },
        decide: { $0 == $1 ? .adopt : .restart })

    /// The recorder restarts when the box id, the bus, its own section or the disk a camera is pinned to
    /// changes; cameras added or removed need no restart (it reads the file again for a camera it does not
    /// know, and a removed camera's worker simply stops sending).
    public static let recorder = ReloadPolicy { old, new in
        func pinned(_ c: HallwatchConfig) -> [String: String] {
            Dictionary(c.cameras.compactMap { cam in cam.disk.map { (cam.id.rawValue, $0) } }) { a, _ in a }
        }
        return old.box == new.box && old.bus == new.bus && old.recorder == new.recorder && pinned(old) == pinned(new)
            ? .adopt : .restart
    }

    /// A capture worker restarts when its camera, the capture section, the box id, the bus or the recorder's
    /// socket changes, or its camera's effective credentials (the contents of its `passwordFile`); a camera no
    /// longer configured restarts too, and then exits 3 (``ExitStatus/notConfigured``), which its unit counts as
    /// success and does not restart.
    public static func capture(_ id: CameraID) -> ReloadPolicy {
        ReloadPolicy(
            secretFiles: { [$0.camera(id)?.passwordFile].compactMap { $0 } },
            decide: { old, new in
                old.box == new.box && old.bus == new.bus && old.recorder.socket == new.recorder.socket
                    && old.capture == new.capture && new.camera(id) != nil && old.camera(id) == new.camera(id)
                    ? .adopt : .restart
            })
    }
}

/// The SHA-256 of a process's secret files (``ReloadPolicy/secretFiles``) under one configuration: each file's
/// path, then its first 64 KiB or a marker when it cannot be read (so a file becoming readable, or vanishing,
/// is a change too). Only the digest is kept, never the secret; it is never logged or published.
public struct SecretDigest: Sendable, Equatable {
    /// The 32-byte SHA-256 (FIPS 180-4).
    public let sha256: [UInt8]

    /// The longest part of a file that counts: 64 KiB (a password file's first line is what is used).
    public static let maxBytesPerFile = 65_536

    /// The digest of `files`, read now.
    public init(files: [String]) {
        var hash = SHA256()
        for path in files {
            hash.update(data: Array(path.utf8) + [0])
            if let handle = FileHandle(forReadingAtPath: path),
                let bytes = try? handle.read(upToCount: Self.maxBytesPerFile)
            {
                hash.update(data: [1] + Array(UInt64(bytes.count).bigEndianBytes) + Array(bytes))
            } else {
                hash.update(data: [0])
            }
            hash.update(data: [0])
        }
        sha256 = Array(hash.finalize())
    }
}

extension UInt64 {
    fileprivate var bigEndianBytes: [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: self >> (56 - 8 * $0)) } }
}

extension ProcessSetup {
    /// Reads the release the file belongs to (``ConfigVersion/of(path:)``), then loads it as
    /// ``loadConfig(_:logger:)`` does (exiting 78 with every diagnostic when it is refused).
    public static func loadVersionedConfig(_ path: String, logger: Logger) -> (HallwatchConfig, String?) {
        let version = ConfigVersion.of(path: path)
        return (loadConfig(path, logger: logger), version)
    }
}

extension Presence {
    /// Follows the retained ``ConfigAnnouncement`` on ``BusTopics/config``: when it names another release than
    /// the one running, reads `path` again (through `current`) and, by `policy` (the YAML and the digest of
    /// the secret files it names, ``SecretDigest``), either adopts it — the
    /// version in every published state changes, `up` is published again — or restarts: `stopping` with the
    /// reason, then SIGTERM to itself, so graceful shutdown runs and the supervisor starts the process again.
    /// A file that does not load, or that is not (yet) the announced release, is logged and the running
    /// configuration kept (`config.reload`).
    /// - Returns: the task following the topic (it ends when the bus client is closed).
    @discardableResult
    public func followConfig(path: String, loaded: HallwatchConfig, policy: ReloadPolicy, logger: Logger)
        -> Task<Void, Never>
    {
        let stream = bus.subscribe(topics.config)
        return Task { [self] in
            var running = loaded
            var runningSecrets = SecretDigest(files: policy.secretFiles(loaded))
            for await message in stream {
                guard let announced = try? message.decode(ConfigAnnouncement.self),
                    announced.version != configVersion
                else { continue }
                let found = ConfigVersion.of(path: path)
                guard found == announced.version else {
                    logger.warning(
                        "announced configuration is not the current one; keeping the running one",
                        metadata: ["announced": "\(announced.version)", "current": "\(found ?? "-")"])
                    continue
                }
                let fresh: HallwatchConfig
                do { fresh = try ConfigLoader.load(path: path) } catch {
                    publishError(
                        ErrorEvent(code: "config.reload", message: "configuration \(announced.version) does not load"))
                    continue
                }
                let freshSecrets = SecretDigest(files: policy.secretFiles(fresh))
                switch policy.decide(
                    running: running, runningSecrets: runningSecrets, new: fresh, newSecrets: freshSecrets)
                {
                case .adopt:
                    running = fresh
                    runningSecrets = freshSecrets
                    version.withLock { $0 = announced.version }
                    publishState(.up)
                    logger.info(
                        "configuration adopted without a restart", metadata: ["version": "\(announced.version)"])
                case .restart:
                    logger.notice("configuration changed: restarting", metadata: ["version": "\(announced.version)"])
                    publishState(.stopping, reason: "restarting for configuration \(announced.version)")
                    kill(getpid(), SIGTERM)
                    return
                }
            }
        }
    }
}
