/// The configuration release that is current, announced by the provisioner after an apply, a revert or a
/// rollback, retained on ``BusTopics/config`` (issue 17 step 7).
///
/// Every process compares ``version`` with the release it loaded (``ProcessState/configVersion``): equal, it
/// does nothing; different, it reads its configuration again through the store's `current` link and either
/// adopts it without a restart (nothing it uses changed) or restarts through `current`.
public struct ConfigAnnouncement: Codable, Sendable, Equatable {
    /// The release directory name, `v<bundle version>-<16 hex of the bundle's SHA-256>`.
    public var version: String
    /// The bundle version (`version` line of `bundle.txt`).
    public var bundleVersion: Int
    /// Why it is current: `applied`, `reverted` (the health gate failed) or `rollback` (by hand).
    public var cause: String
    /// When it was announced (box UTC).
    public var at: UTCMicros
    /// An announcement of `version`.
    public init(version: String, bundleVersion: Int, cause: String, at: UTCMicros) {
        self.version = version
        self.bundleVersion = bundleVersion
        self.cause = cause
        self.at = at
    }
}

extension BusTopics {
    /// Retained ``ConfigAnnouncement``: the configuration release every process should run with.
    public var config: String { "\(root)/config" }
}
