import Foundation

extension ConfigStore {
    /// The revert steps, for crash tests (`afterStep` of ``restore(_:removing:afterStep:)``).
    public enum RevertStep: String, Sendable, CaseIterable {
        /// V1: `state.json` holds the old floors and release.
        case state = "V1"
        /// V2: `current` points to the old release.
        case current = "V2"
        /// V3: `previous` points to what it named before.
        case previous = "V3"
        /// V4: the refused release is removed.
        case removed = "V4"
    }

    /// What the store looked like before an apply, to revert to it byte for byte when the health gate fails.
    public struct Snapshot: Sendable, Equatable {
        /// `state.json`'s bytes, `nil` when there was none (a fresh box).
        public var stateBytes: [UInt8]?
        /// The release `current` pointed to.
        public var current: String?
        /// The release `previous` pointed to.
        public var previous: String?
        /// Every release directory present.
        public var releases: Set<String>
    }

    /// The store now (read under the store's lock, before ``apply(files:state:afterStep:)``).
    public func snapshot() -> Snapshot {
        Snapshot(
            stateBytes: FileManager.default.contents(atPath: root + "/state.json").map { Array($0) },
            current: current(), previous: previous(),
            releases: Set((try? FileManager.default.contentsOfDirectory(atPath: root + "/releases")) ?? []))
    }

    /// Reverts to `snapshot` after the health gate refused `release` (steps V1–V4 of the DocC page "Apply"):
    /// V1 `state.json` back (floors included, so the same bundle may be tried again), V2 `current`, V3
    /// `previous`, V4 the refused release directory removed (renamed to a staging name first, so
    /// ``recover()`` finishes a removal a crash interrupted). Each step is followed by a directory fsync.
    /// A crash after V1 leaves the old configuration current (``recover()`` rolls `current` to the release
    /// the state names); after V2, `previous` may still name the old release until V3.
    /// - Throws: `provision.apply` when a write or rename fails.
    public func restore(
        _ snapshot: Snapshot, removing release: String, afterStep: (RevertStep) -> Void = { _ in }
    ) throws(ProvisionError) {
        // V1.
        if let bytes = snapshot.stateBytes {
            unlink(root + "/state.json.new")
            try writeSynced(root + "/state.json.new", bytes)
            guard rename(root + "/state.json.new", root + "/state.json") == 0 else {
                throw ProvisionError(.apply, "cannot rename state.json")
            }
        } else {
            unlink(root + "/state.json")
        }
        try fsyncPath(root)
        afterStep(.state)
        // V2, V3.
        for (name, target, step) in [
            ("current", snapshot.current, RevertStep.current), ("previous", snapshot.previous, RevertStep.previous),
        ] {
            if let target {
                try replaceLink(name, to: target)
            } else {
                unlink(root + "/" + name)
                try fsyncPath(root)
            }
            if step == .current { noteSwitch(to: target ?? "", cause: "reverted") }
            afterStep(step)
        }
        // V4.
        if !snapshot.releases.contains(release), !release.isEmpty, !release.contains("/") {
            let doomed = root + "/releases/.staging-revert-\(UUID().uuidString)"
            if rename(root + "/releases/" + release, doomed) == 0 {
                try fsyncPath(root + "/releases")
                try? FileManager.default.removeItem(atPath: doomed)
            }
        }
        afterStep(.removed)
    }
}
