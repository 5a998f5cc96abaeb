import Foundation
import HallwatchCore
import Logging
import Synchronization

/// One process the development supervisor keeps running.
public struct SupervisedProcess: Sendable {
    /// Short unique name (`mosquitto`, `recorder`, `capture-lobby`); also the pid file's name.
    public var name: String
    /// Path of the executable.
    public var executable: String
    /// Its command-line arguments.
    public var arguments: [String]
    /// A process from its name, executable and arguments.
    public init(name: String, executable: String, arguments: [String]) {
        self.name = name
        self.executable = executable
        self.arguments = arguments
    }
}

/// A small process supervisor for development and the demo (production uses systemd units in `Systemd/`).
///
/// Starts every process in order, writes `RUN/pids/NAME.pid`, restarts a process that exits (after 1 s,
/// doubling to at most `maxRestartDelay`, default 10 s, while it keeps dying within 10 s of its start),
/// and on ``stop()`` stops them in reverse start order, each wave only after the previous one exited (SIGTERM,
/// SIGKILL after 5 s), so the capture workers flush their last fragment to a recorder that is still there
/// and the recorder stores it before the bus goes. It only ever signals the PIDs it started.
public final class Supervisor: Sendable {
    let processes: [SupervisedProcess]
    let runDirectory: String
    let logger: Logger
    /// Where lifetimes and waits are measured.
    let clocks: any Clocks
    struct Child {
        var process: Process
        var started: MonotonicInstant
    }
    let state = Mutex<(children: [String: Child], stopping: Bool, added: [SupervisedProcess])>(([:], false, []))
    /// Processes stopped for good while the rest runs (a camera removed from the configuration): not restarted.
    let retired = Mutex<Set<String>>([])

    /// Longest wait before restarting a process that keeps dying soon after its start, seconds.
    let maxRestartDelay: Double

    /// - Parameters:
    ///   - maxRestartDelay: the restart back-off's cap (default 10 s); the first restart waits
    ///     `min(1 s, cap)`. Tests that kill processes on purpose lower it.
    ///   - clocks: how long a process lived, the restart waits and the 5 s stop grace are measured on it.
    public init(
        processes: [SupervisedProcess], runDirectory: String, maxRestartDelay: Duration = .seconds(10),
        clocks: any Clocks = SystemClocks(), logger: Logger
    ) {
        self.processes = processes
        self.runDirectory = runDirectory
        self.logger = logger
        self.clocks = clocks
        self.maxRestartDelay = max(0.05, maxRestartDelay.seconds)
    }

    /// Claims `runDirectory` for this process: an exclusive lock held until the process exits, and
    /// `pids/supervisor.pid`. Call it before writing anything there.
    /// - Throws: ``SupervisorError`` when another supervisor runs there (two would fight over its sockets,
    ///   pid files and recording disk).
    public static func claim(runDirectory: String) throws {
        try FileManager.default.createDirectory(atPath: runDirectory + "/pids", withIntermediateDirectories: true)
        let fd = open(runDirectory + "/supervisor.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let other =
                (try? String(contentsOfFile: runDirectory + "/pids/supervisor.pid", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
            if fd >= 0 { close(fd) }
            throw SupervisorError(
                message:
                    "another supervisor (pid \(other)) is already running in \(runDirectory); stop it first with: kill -INT \(other)"
            )
        }
        // The descriptor is deliberately never closed: the kernel releases the lock when the process exits.
        try? "\(getpid())\n".write(toFile: runDirectory + "/pids/supervisor.pid", atomically: true, encoding: .utf8)
    }

    /// Starts everything (after ``claim(runDirectory:)``). Throws when an executable cannot be started.
    public func start() throws {
        try FileManager.default.createDirectory(atPath: runDirectory + "/pids", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: runDirectory + "/logs", withIntermediateDirectories: true)
        for p in processes { try launch(p, delay: min(1, maxRestartDelay)) }
    }

    /// Starts one more process while running (a camera added to the configuration); it is restarted and
    /// stopped like the others. Does nothing when a process of that name exists already.
    public func add(_ spec: SupervisedProcess) throws {
        let wasRetired = retired.withLock { $0.remove(spec.name) != nil }
        let known = state.withLock { s -> Bool in
            if wasRetired && !s.stopping {
                if !s.added.contains(where: { $0.name == spec.name }) { s.added.append(spec) }
                return false
            }
            if s.stopping || processes.contains(where: { $0.name == spec.name })
                || s.added.contains(where: { $0.name == spec.name })
            {
                return true
            }
            s.added.append(spec)
            return false
        }
        if !known { try launch(spec, delay: min(1, maxRestartDelay)) }
    }

    /// Stops `name` for good while the others keep running (SIGTERM; its unit's equivalent is a
    /// `hallwatch-capture@` instance the generator no longer pulls in): it is not restarted, and ``add(_:)``
    /// starts it again.
    public func remove(_ name: String) {
        retired.withLock { _ = $0.insert(name) }
        let child = state.withLock { s -> Process? in
            s.added.removeAll { $0.name == name }
            return s.children[name]?.process
        }
        if let child, child.isRunning { kill(child.processIdentifier, SIGTERM) }
        logger.info("stopped for good", metadata: ["process": "\(name)"])
    }

    /// The PID currently running `name`, if any.
    public func pid(of name: String) -> Int32? {
        state.withLock { $0.children[name]?.process.processIdentifier }
    }

    func launch(_ spec: SupervisedProcess, delay: Double) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: spec.executable)
        p.arguments = spec.arguments
        // The children's runtime directory (a capture worker's last good configuration, `LastGoodConfig`) is the
        // run directory, as /run/hallwatch is on the appliance; a value given by the caller wins.
        p.environment = ProcessInfo.processInfo.environment.merging(["HALLWATCH_RUNTIME_DIR": runDirectory]) {
            given, _ in given
        }
        // Each child's stderr goes to its own log file, appended across restarts.
        let logPath = "\(runDirectory)/logs/\(spec.name).log"
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        p.standardError = log
        p.standardOutput = log
        p.standardInput = FileHandle.nullDevice
        p.terminationHandler = { [weak self] proc in self?.exited(spec, proc, delay: delay) }
        try p.run()
        try? "\(p.processIdentifier)\n".write(
            toFile: "\(runDirectory)/pids/\(spec.name).pid", atomically: true, encoding: .utf8)
        state.withLock { $0.children[spec.name] = Child(process: p, started: clocks.monotonicNow()) }
        logger.info("started", metadata: ["process": "\(spec.name)", "pid": "\(p.processIdentifier)"])
    }

    func exited(_ spec: SupervisedProcess, _ proc: Process, delay: Double) {
        let now = clocks.monotonicNow()
        let (stopping, lived) = state.withLock { s -> (Bool, Duration) in
            (s.stopping, now - (s.children[spec.name]?.started ?? MonotonicInstant(nanos: 0)))
        }
        if stopping { return }
        if retired.withLock({ $0.contains(spec.name) }) {
            try? FileManager.default.removeItem(atPath: "\(runDirectory)/pids/\(spec.name).pid")
            return
        }
        let how =
            proc.terminationReason == .uncaughtSignal
            ? "signal \(proc.terminationStatus)" : "status \(proc.terminationStatus)"
        let first = min(1, maxRestartDelay)
        let next = lived > .seconds(10) ? first : min(delay * 2, maxRestartDelay)
        logger.warning(
            "exited; restarting", metadata: ["process": "\(spec.name)", "how": "\(how)", "after": "\(delay)s"])
        let wait: Duration = .milliseconds(Int64(((lived > .seconds(10) ? min(0.2, first) : delay) * 1000).rounded()))
        Task { [weak self, clocks] in
            try? await clocks.sleep(for: wait)
            guard let self, !self.state.withLock({ $0.stopping }) else { return }
            do { try self.launch(spec, delay: next) } catch {
                self.logger.error("cannot restart", metadata: ["process": "\(spec.name)", "error": "\(error)"])
            }
        }
    }

    /// Stops everything in reverse start order, wave by wave: a wave is a run of adjacent processes of one kind
    /// (the name before its first `-`: every `capture-…` worker stops together). Each wave gets SIGTERM and
    /// up to 5 s to exit (then SIGKILL) before the next one is signalled: the workers' last partial fragments
    /// reach the recorder before the recorder stops (issue 12, case 5; the systemd units order it with
    /// `After=hallwatch-recorder.service` in `hallwatch-capture@.service`, which stops the workers first).
    public func stop() {
        let children = state.withLock { s -> [(String, Process)] in
            s.stopping = true
            return (processes + s.added).reversed().compactMap { p in s.children[p.name].map { (p.name, $0.process) } }
        }
        func kind(_ name: String) -> Substring { name.split(separator: "-", maxSplits: 1).first ?? Substring(name) }
        var waves: [[(String, Process)]] = []
        for child in children {
            if let last = waves.last?.last, kind(last.0) == kind(child.0) {
                waves[waves.count - 1].append(child)
            } else {
                waves.append([child])
            }
        }
        for wave in waves {
            for (_, p) in wave where p.isRunning { kill(p.processIdentifier, SIGTERM) }
            let deadline = clocks.monotonicNow() + .seconds(5)
            while clocks.monotonicNow() < deadline && wave.contains(where: { $0.1.isRunning }) {
                clocks.sleepBlocking(for: .milliseconds(20), unless: { false })
            }
            for (name, p) in wave where p.isRunning {
                logger.warning("did not stop in 5 s; killing", metadata: ["process": "\(name)"])
                kill(p.processIdentifier, SIGKILL)
            }
            logger.info("stopped", metadata: ["processes": "\(wave.map(\.0).joined(separator: ", "))"])
        }
        for (name, _) in children { try? FileManager.default.removeItem(atPath: "\(runDirectory)/pids/\(name).pid") }
        try? FileManager.default.removeItem(atPath: "\(runDirectory)/pids/supervisor.pid")
    }
}

/// The supervisor could not start.
public struct SupervisorError: HallwatchError {
    /// Why, for the person at the terminal.
    public var message: String
    /// ``message``.
    public var description: String { message }
    /// Always `ctl.supervisor`.
    public var stableCode: String { "ctl.supervisor" }
}
