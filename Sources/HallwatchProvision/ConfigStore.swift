import Foundation

/// The box's applied configurations: whole releases in their own directories, `current` and `previous`
/// symlinks, and the persistent state (version floor, hash, time floor), switched so that a crash at any
/// point leaves the old or the new configuration whole (steps U1–U4 in the DocC page "Apply").
///
/// Layout under ``root``: `releases/<id>/…` (one directory per applied bundle, `<id>` = `v<version>-<16 hex
/// of the bundle hash>`), `current` and `previous` (relative symlinks into `releases/`), `state.json`.
public struct ConfigStore: Sendable {
    /// The persistent state: what was applied last and the floors a later bundle must clear.
    public struct State: Codable, Sendable, Equatable {
        /// District of the applied bundle (a fresh box has none).
        public var district: String?
        /// Building of the applied bundle.
        public var building: String?
        /// The highest bundle version applied; a later bundle must be above it (equal only with the same hash).
        public var versionFloor: Int
        /// SHA-256 (hex) of the `bundle.txt` applied at ``versionFloor``.
        public var bundleHash: String
        /// Seconds since the epoch no clock reading may go below: the newest `issued` accepted.
        public var timeFloorUnix: Int64
        /// The release directory name `current` points to.
        public var release: String
        /// The state of a box never provisioned.
        public static let fresh = State(
            district: nil, building: nil, versionFloor: 0, bundleHash: "", timeFloorUnix: 0, release: "")
    }

    /// The apply steps, for crash tests (`afterStep` is called after each one).
    public enum Step: String, Sendable, CaseIterable {
        /// U1: the release is staged, each file and the directories fsynced, renamed into `releases/`.
        case staged
        /// U2: `previous` points to the old current.
        case previous
        /// U3: `state.json` holds the new floors and release.
        case state
        /// U4: `current` points to the new release.
        case current
    }

    /// The store's directory.
    public var root: String
    /// The switch spool (HallwatchProcess's `CaptureUnitSync`, step S1): after each switch of `current`
    /// (apply, revert, rollback, a roll-forward by ``recover()``) one file is dropped here, which wakes
    /// `hallwatch-config.path` on the appliance so systemd starts and stops capture workers to match. Only when
    /// the directory exists (systemd makes it); `nil` or missing: nothing is written (the demo, tests).
    public var switchSpool: String?

    /// A store at `root` (created on first apply), noting switches in `switchSpool` when given.
    public init(root: String, switchSpool: String? = nil) {
        self.root = root
        self.switchSpool = switchSpool
    }

    /// S1: drops `<unix seconds>-<pid>-<cause>-<release>` (its text: cause and release) into ``switchSpool``,
    /// best effort: the file only wakes systemd, and a switch it misses is caught up at the next boot, when
    /// the generator reads the configuration again.
    /// - Returns: whether a file was written.
    @discardableResult
    public func noteSwitch(to release: String, cause: String, nowUnix: Int64 = Int64(time(nil))) -> Bool {
        guard let spool = switchSpool, !release.contains("/"), !cause.contains("/") else { return false }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: spool, isDirectory: &isDirectory), isDirectory.boolValue else {
            return false
        }
        let path = spool + "/\(nowUnix)-\(getpid())-\(cause)-\(release.isEmpty ? "none" : release)"
        unlink(path)
        do { try writeSynced(path, Array("\(cause) \(release)\n".utf8)) } catch { return false }
        return true
    }

    /// The persistent state, or ``State/fresh`` when nothing was applied.
    public func state() -> State {
        guard let data = FileManager.default.contents(atPath: root + "/state.json"),
            let s = try? JSONDecoder().decode(State.self, from: data)
        else { return .fresh }
        return s
    }

    /// The release directory `current` points to, or `nil`.
    public func current() -> String? { link("current") }
    /// The release directory `previous` points to, or `nil`.
    public func previous() -> String? { link("previous") }

    private func link(_ name: String) -> String? {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/" + name) else {
            return nil
        }
        return String(target.split(separator: "/").last ?? "")
    }

    /// Runs `body` holding the store's lock (`flock` on `<root>/.lock`): one check-and-apply at a time, whether
    /// from the service, `hallwatch-provision --once` or `hallwatchctl config rollback`.
    public func withLock<T>(_ body: () throws(ProvisionError) -> T) throws(ProvisionError) -> T {
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let fd = open(root + "/.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ProvisionError(.apply, "cannot open \(root)/.lock") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw ProvisionError(.apply, "cannot lock \(root)/.lock") }
        }
        return try body()
    }

    /// After a crash: removes staging directories and half-made links, and rolls `current` forward to the
    /// release `state.json` names (that release was whole before the state was written, U1 before U3).
    public func recover() throws(ProvisionError) {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: root + "/releases")) ?? [] where name.hasPrefix(".staging-") {
            try? fm.removeItem(atPath: root + "/releases/" + name)
        }
        for name in ["current.new", "previous.new", "state.json.new"] { unlink(root + "/" + name) }
        let s = state()
        if !s.release.isEmpty, current() != s.release, fm.fileExists(atPath: root + "/releases/" + s.release) {
            try replaceLink("current", to: s.release)
            noteSwitch(to: s.release, cause: "recovered")
        }
        // A revert to nothing (a fresh box whose first bundle failed the health gate) that stopped after V1.
        if !fm.fileExists(atPath: root + "/state.json"), current() != nil {
            unlink(root + "/current")
            unlink(root + "/previous")
            try fsyncPath(root)
            noteSwitch(to: "", cause: "recovered")
        }
    }

    /// Applies `files` (name → bytes, names as in a bundle manifest) as the release `release` with the new
    /// `state`, in steps U1–U4; `afterStep` runs after each (crash tests kill the process there).
    /// - Throws: `provision.apply` on any I/O failure; what was done so far is whole (see ``recover()``).
    public func apply(
        files: [(name: String, bytes: [UInt8])], state newState: State, afterStep: (Step) -> Void = { _ in }
    ) throws(ProvisionError) {
        let fm = FileManager.default
        let releases = root + "/releases"
        do { try fm.createDirectory(atPath: releases, withIntermediateDirectories: true) } catch {
            throw ProvisionError(.apply, "cannot create \(releases)")
        }
        // U1. Stage in a private directory; every file and directory fsynced before the rename publishes it.
        let staging = releases + "/.staging-\(UUID().uuidString)"
        try makeDirectory(staging)
        var dirs: Set<String> = [staging]
        for f in files {
            if let slash = f.name.firstIndex(of: "/") {
                let dir = staging + "/" + f.name[..<slash]
                if dirs.insert(dir).inserted { try makeDirectory(dir) }
            }
            try writeSynced(staging + "/" + f.name, f.bytes)
        }
        for d in dirs.sorted(by: { $0.count > $1.count }) { try fsyncPath(d) }
        let final = releases + "/" + newState.release
        if fm.fileExists(atPath: final) { try? fm.removeItem(atPath: final) }
        guard rename(staging, final) == 0 else { throw ProvisionError(.apply, "cannot rename the staged release") }
        try fsyncPath(releases)
        afterStep(.staged)
        // U2. previous → the old current (if any).
        if let old = current() { try replaceLink("previous", to: old) }
        afterStep(.previous)
        // U3. The floors: written whole, renamed, directory fsynced.
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        guard let data = try? encoder.encode(newState) else { throw ProvisionError(.apply, "cannot encode state") }
        unlink(root + "/state.json.new")
        try writeSynced(root + "/state.json.new", Array(data))
        guard rename(root + "/state.json.new", root + "/state.json") == 0 else {
            throw ProvisionError(.apply, "cannot rename state.json")
        }
        try fsyncPath(root)
        afterStep(.state)
        // U4. current → the new release.
        try replaceLink("current", to: newState.release)
        noteSwitch(to: newState.release, cause: "applied")
        afterStep(.current)
    }

    /// `hallwatchctl config rollback`: swaps `current` and `previous` (floors unchanged) and appends a line
    /// to `audit.log`.
    /// - Throws: `provision.apply` when there is no previous release or a rename fails.
    public func rollback(reason: String, nowUnix: Int64) throws(ProvisionError) {
        guard let cur = current(), let prev = previous(), cur != prev else {
            throw ProvisionError(.apply, "there is no previous configuration to roll back to")
        }
        try replaceLink("previous", to: cur)
        try replaceLink("current", to: prev)
        noteSwitch(to: prev, cause: "rollback")
        var s = state()
        s.release = prev
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        if let data = try? encoder.encode(s) {
            unlink(root + "/state.json.new")
            try writeSynced(root + "/state.json.new", Array(data))
            guard rename(root + "/state.json.new", root + "/state.json") == 0 else {
                throw ProvisionError(.apply, "cannot rename state.json")
            }
            try fsyncPath(root)
        }
        let line = "\(BundleManifest.formatRFC3339(nowUnix)) rollback \(cur) -> \(prev): \(reason)\n"
        if let h = FileHandle(forWritingAtPath: root + "/audit.log")
            ?? {
                _ = FileManager.default.createFile(atPath: root + "/audit.log", contents: nil)
                return FileHandle(forWritingAtPath: root + "/audit.log")
            }()
        {
            h.seekToEndOfFile()
            h.write(Data(line.utf8))
            try? h.synchronize()
            try? h.close()
        }
    }

    func replaceLink(_ name: String, to release: String) throws(ProvisionError) {
        let tmp = root + "/" + name + ".new"
        unlink(tmp)
        guard symlink("releases/" + release, tmp) == 0, rename(tmp, root + "/" + name) == 0 else {
            throw ProvisionError(.apply, "cannot switch \(name): \(String(cString: strerror(errno)))")
        }
        try fsyncPath(root)
    }

    func makeDirectory(_ path: String) throws(ProvisionError) {
        guard mkdir(path, 0o750) == 0 else {
            throw ProvisionError(.apply, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
    }

    func writeSynced(_ path: String, _ bytes: [UInt8]) throws(ProvisionError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw ProvisionError(.apply, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw ProvisionError(.apply, "cannot write \(path): \(String(cString: strerror(errno)))")
            }
            done += n
        }
        guard fsync(fd) == 0 else { throw ProvisionError(.apply, "cannot fsync \(path)") }
    }

    func fsyncPath(_ path: String) throws(ProvisionError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ProvisionError(.apply, "cannot open \(path)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw ProvisionError(.apply, "cannot fsync \(path)") }
    }
}
