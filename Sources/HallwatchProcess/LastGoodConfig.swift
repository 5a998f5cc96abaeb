import Foundation
import HallwatchConfig
import HallwatchCore
import Logging

/// The last configuration a process started with that loaded and validated, kept so that a restart (a crash,
/// a watchdog kill) while the file is refused — a typo made by hand, a half-edited file — starts the process
/// on it instead of exiting 78 in a loop and leaving a camera unrecorded.
///
/// Steps (``ProcessSetup/loadConfigKeepingLastGood(_:process:logger:)``):
/// 1. Read the release (``ConfigVersion``), then load and validate the file (``ConfigLoader``).
/// 2. It loads: write its text (with the release and the path) to `<runtime>/<process>.last-good.json`,
///    atomically (a temporary file, mode 0600, renamed over the old one), and run on it.
/// 3. It is refused: read the kept record — only a regular file (`O_NOFOLLOW`) owned by this process's user,
///    with no group or other permission bits, at most ``ConfigLoader/maxBytes`` of text — validate it again,
///    and run on it with the refusal to report (``ConfigFallback``). No usable record: exit 78 as before.
///
/// The runtime directory is `HALLWATCH_RUNTIME_DIR` (the development supervisor sets its run directory), else
/// `/run/hallwatch` (a tmpfs the units may write: a reboot forgets the record, and then the generator, which
/// reads the same file, starts no worker for a refused configuration anyway). The record holds no secret: the
/// configuration names password files, it never holds a password. The ownership check is what makes it safe in
/// a directory the box's group may write: another process's user can remove the record (the worker then exits
/// 78, as without one), never make the worker run on a configuration of its own.
public enum LastGoodConfig {
    /// What is kept: the file's text as it was loaded, where from, and its release.
    public struct Record: Codable, Sendable, Equatable {
        /// The configuration path as the process was given it (`--config`).
        public var path: String
        /// The release it resolved into (``ConfigVersion``), `nil` outside a provisioned store.
        public var version: String?
        /// When it was loaded (box UTC).
        public var savedAt: UTCMicros
        /// The YAML text, byte for byte.
        public var yaml: String
    }

    /// The runtime directory: `HALLWATCH_RUNTIME_DIR`, else `/run/hallwatch`.
    public static var runtimeDirectory: String {
        ProcessInfo.processInfo.environment["HALLWATCH_RUNTIME_DIR"] ?? "/run/hallwatch"
    }

    /// The record's path for process `process` (`capture-lobby`, `capture-lobby.sub`) in `directory`.
    public static func path(process: String, directory: String = runtimeDirectory) -> String {
        "\(directory)/\(process).last-good.json"
    }

    /// Writes `record` to `path` atomically with mode 0600 (step 2). Errors are the caller's to log: a record
    /// that cannot be kept costs only the fallback.
    /// - Throws: `CocoaError`/`POSIXError` from creating, writing or renaming the file.
    public static func save(_ record: Record, to path: String) throws {
        let data = try JSONEncoder().encode(record)
        let temporary = "\(path).\(getpid()).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        do {
            try handle.write(contentsOf: data)
            try handle.close()
            guard rename(temporary, path) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    /// The record at `path` if it is one this process's user wrote (step 3), else `nil` with the reason.
    public static func read(_ path: String) -> Result<Record, ErrorEvent> {
        func refused(_ why: String) -> Result<Record, ErrorEvent> {
            .failure(ErrorEvent(code: "config.invalid", message: "no last good configuration at \(path): \(why)"))
        }
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return refused(String(cString: strerror(errno))) }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return refused("not a regular file") }
        guard st.st_uid == geteuid(), st.st_mode & 0o077 == 0 else {
            return refused("not written by this process's user with mode 0600")
        }
        // The JSON escapes of the text take at most 6 bytes per byte; the bound is generous and still bounded.
        let limit = ConfigLoader.maxBytes * 6 + 4096
        guard let data = try? handle.read(upToCount: limit + 1), data.count <= limit,
            let record = try? JSONDecoder().decode(Record.self, from: data)
        else { return refused("unreadable, too large or not a record") }
        return .success(record)
    }
}

/// A process running on its last good configuration because the current file was refused.
public struct ConfigFallback: Sendable {
    /// Why the current file was refused: every diagnostic, each `file:line: message`.
    public let refused: ConfigError
    /// What the process runs on instead.
    public let lastGood: LastGoodConfig.Record

    /// The alarm (`config.invalid`) naming the first problem's `file:line`, how many there are, and what the
    /// process records with instead; for the log, the bus's error topic and the camera's status note.
    public func alarm(camera: CameraID?) -> ErrorEvent {
        let first = refused.diagnostics.first?.description ?? refused.code
        let more = refused.diagnostics.count > 1 ? " (and \(refused.diagnostics.count - 1) more)" : ""
        let release = lastGood.version.map { "release \($0)" } ?? lastGood.path
        return ErrorEvent(
            code: "config.invalid",
            message:
                "the configuration is refused: \(first)\(more); running on the last good one (\(release), loaded \(lastGood.savedAt.iso8601))",
            camera: camera)
    }
}

extension ProcessSetup {
    /// Loads the configuration as ``loadVersionedConfig(_:logger:)`` does and keeps it as `process`'s last good
    /// one; when the file is refused, starts on the last good one instead (``LastGoodConfig``, step 3), logging
    /// every diagnostic, and returns the ``ConfigFallback`` to report. Exits 78 when the file is refused and
    /// there is no last good configuration (or it no longer validates).
    public static func loadConfigKeepingLastGood(_ path: String, process: String, logger: Logger)
        -> (config: HallwatchConfig, version: String?, fallback: ConfigFallback?)
    {
        let version = ConfigVersion.of(path: path)
        let kept = LastGoodConfig.path(process: process)
        let refused: ConfigError
        do {
            let text = try ConfigLoader.readText(path: path)
            let config = try ConfigLoader.parse(text, file: path)
            let record = LastGoodConfig.Record(
                path: path, version: version, savedAt: SystemClocks().utcNow(), yaml: text)
            do { try LastGoodConfig.save(record, to: kept) } catch {
                logger.warning(
                    "cannot keep the last good configuration; a restart with a refused file will exit",
                    metadata: ["file": "\(kept)", "error": "\(error)"])
            }
            return (config, version, nil)
        } catch let e as ConfigError {
            refused = e
        } catch {
            // The loader throws only `ConfigError`; anything else is what `loadConfig` reports (and exits 78).
            return (loadConfig(path, logger: logger), version, nil)
        }
        for d in refused.diagnostics { logger.error("\(d)", metadata: ["code": "\(refused.code)"]) }
        switch LastGoodConfig.read(kept) {
        case .success(let record):
            if let config = try? ConfigLoader.parse(record.yaml, file: kept) {
                let fallback = ConfigFallback(refused: refused, lastGood: record)
                logger.critical("\(fallback.alarm(camera: nil).message)", metadata: ["code": "config.invalid"])
                return (config, record.version, fallback)
            }
            logger.critical("the last good configuration no longer validates", metadata: ["file": "\(kept)"])
        case .failure(let why):
            logger.critical("\(why.message)")
        }
        return (loadConfig(path, logger: logger), version, nil)
    }
}

extension Presence {
    /// While the process runs on its last good configuration: publishes `alarm` (`config.invalid`) on the error
    /// topic now and every `period` (the topic is not retained: a status page started later sees it within a
    /// period), and reads `path` again each time. Once the file loads, publishes `stopping` and SIGTERMs itself,
    /// so that its supervisor starts it on the file, which it then keeps as its last good one.
    /// - Returns: the task (it ends with the restart, or when cancelled).
    @discardableResult
    public func raiseWhileRefused(
        _ alarm: ErrorEvent, path: String, every period: Duration = .seconds(30), logger: Logger
    ) -> Task<Void, Never> {
        Task { [self] in
            while !Task.isCancelled {
                publishError(alarm)
                try? await Task.sleep(for: period)
                guard (try? ConfigLoader.load(path: path)) != nil else { continue }
                logger.notice("the configuration loads again: restarting on it", metadata: ["file": "\(path)"])
                publishState(.stopping, reason: "restarting on the repaired configuration")
                kill(getpid(), SIGTERM)
                return
            }
        }
    }
}
