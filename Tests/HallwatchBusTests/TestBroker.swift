import Foundation
import Glibc
import HallwatchBus
import HallwatchCore
import Logging
import Synchronization
import Testing

/// A failure inside test support, with what was observed.
struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A real mosquitto (`/usr/sbin/mosquitto`) for one test: its own temporary directory, config and socket.
///
/// The config is ``BrokerConfig`` with `user root`: tests run as root in CI containers, and mosquitto started
/// as root would otherwise switch to the `mosquitto` user, which cannot create its socket in the root-owned
/// `mkdtemp` directory. As non-root the option is ignored. The broker is always stopped by its PID.
final class TestBroker: @unchecked Sendable {
    static let executable = "/usr/sbin/mosquitto"

    let directory: String
    let socketPath: String
    let configPath: String
    let logPath: String
    /// The running broker's PID (guarded by `lock`), 0 when stopped.
    private var runningPID: pid_t = 0
    private let lock = NSLock()

    init() throws {
        var template = Array("/tmp/hwbus.XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SystemError("mkdtemp")
        }
        directory = String(cString: made)
        socketPath = directory + "/bus.sock"
        configPath = directory + "/mosquitto.conf"
        logPath = directory + "/mosquitto.log"
        try BrokerConfig(socketPath: socketPath, user: "root", logTypes: ["all"]).write(to: configPath)
    }

    deinit {
        if runningPID > 0 {
            kill(runningPID, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(runningPID, &status, 0)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// The running broker's PID, or nil.
    var pid: pid_t? { lock.withLock { runningPID > 0 ? runningPID : nil } }

    /// Starts mosquitto and returns once its socket accepts connections (≤ 5 s).
    func start() async throws {
        let pid = try Self.spawn(Self.executable, ["-c", configPath], output: logPath)
        lock.withLock { runningPID = pid }
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if Self.accepts(socketPath) { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestFailure("mosquitto did not come up on \(socketPath):\n\(self.log)")
    }

    /// Stops mosquitto with SIGTERM (by PID) and waits until it has exited (SIGKILL after 5 s).
    func stop() async throws {
        let pid = lock.withLock { () -> pid_t in
            defer { runningPID = 0 }
            return runningPID
        }
        guard pid > 0 else { return }
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + .seconds(5)
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if ContinuousClock.now > deadline { kill(pid, SIGKILL) }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// `posix_spawn` with an empty signal mask and default dispositions. The test runner blocks SIGTERM,
    /// SIGINT, SIGHUP, SIGUSR1/2 in its threads, and children started with Foundation's `Process` inherit that
    /// mask: mosquitto would then never see SIGTERM.
    static func spawn(_ path: String, _ arguments: [String], output: String) throws -> pid_t {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attr, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2, SIGPIPE] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attr, argv, environ)
        guard rc == 0 else { throw SystemError("posix_spawn", errno: rc, subject: path) }
        return pid
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Whether a Unix stream socket at `path` accepts a connection.
    static func accepts(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }
}

/// Collects a subscription stream's messages on a task of its own; cancelling or dropping the inbox cancels
/// the stream (which unsubscribes).
final class Inbox: Sendable {
    private final class Box: Sendable {
        let messages = Mutex<[BusMessage]>([])
        let ended = Mutex(false)
    }
    private let box = Box()
    private let task: Task<Void, Never>

    init(_ stream: AsyncStream<BusMessage>) {
        let box = self.box
        task = Task {
            for await m in stream { box.messages.withLock { $0.append(m) } }
            box.ended.withLock { $0 = true }
        }
    }
    deinit { task.cancel() }

    var messages: [BusMessage] { box.messages.withLock { $0 } }
    /// Whether the stream has finished.
    var ended: Bool { box.ended.withLock { $0 } }
    func cancel() { task.cancel() }

    /// Waits until at least `count` messages arrived; returns all so far.
    @discardableResult
    func wait(for count: Int, within timeout: Duration = .seconds(5)) async throws -> [BusMessage] {
        try await eventually(within: timeout, "\(count) message(s); have \(messages)") { self.messages.count >= count }
        return messages
    }
}

/// Polls `condition` every 10 ms until it holds; throws after `timeout`.
func eventually(
    within timeout: Duration = .seconds(5), _ what: @autoclosure () -> String = "condition",
    _ condition: () async -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while !(await condition()) {
        if ContinuousClock.now >= deadline { throw TestFailure("timed out after \(timeout) waiting for \(what())") }
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// A logger for tests: warnings and up by default; `HALLWATCH_TEST_LOG=trace|debug|info` for more.
func testLogger(_ label: String) -> Logger {
    var logger = Logger(label: "test.\(label)")
    logger.logLevel =
        ProcessInfo.processInfo.environment["HALLWATCH_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
    return logger
}

/// A client on `broker`, connected.
func connectedClient(_ id: String, _ broker: TestBroker, will: BusWill? = nil) async throws -> BusClient {
    let client = BusClient(clientID: id, socketPath: broker.socketPath, will: will, logger: testLogger(id))
    try await client.connect(timeout: .seconds(5))
    return client
}

/// Runs `/usr/bin/env <arguments>` and returns its standard output.
func run(_ arguments: [String]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = arguments
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
