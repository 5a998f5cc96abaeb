import Foundation
import Glibc
import HallwatchBus
import HallwatchCore
import Logging
import Synchronization
import Testing

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

enum Repo {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static func clip(_ name: String) -> String { root.appendingPathComponent(".media/\(name)").path }
    static var clipsPresent: Bool {
        ["h264-aac.mp4", "hevc.mp4"].allSatisfy { FileManager.default.fileExists(atPath: clip($0)) }
    }

    /// A built Hallwatch executable (beside the test bundle, else `.build/debug`).
    static func executable(_ name: String) throws -> String {
        var dirs = [URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        if let exe = Bundle.main.executableURL { dirs.append(exe.deletingLastPathComponent()) }
        dirs.append(root.appendingPathComponent(".build/debug"))
        for d in dirs {
            let p = d.appendingPathComponent(name).path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        throw TestFailure("\(name) not built (looked in \(dirs.map(\.path)))")
    }

    /// The test virtualenv's python (made by `make test-deps`), when present.
    static var python: String? {
        let p = root.appendingPathComponent(".venv-test/bin/python3").path
        return FileManager.default.isExecutableFile(atPath: p) ? p : nil
    }

    /// Whether an interop test runs: with the test virtualenv, and always in CI (where `make test-deps` must
    /// have made it, so its absence fails the test). Elsewhere a test without it is reported as skipped, not
    /// passed.
    static var interopRuns: Bool { python != nil || ProcessInfo.processInfo.environment["CI"] != nil }

    /// The test virtualenv's python for an interop test; without it the test is skipped, except in CI (where
    /// `make test-deps` must have made it), where that is an issue.
    static func interopPython() -> String? {
        if python == nil, ProcessInfo.processInfo.environment["CI"] != nil {
            Issue.record("CI must have .venv-test (make test-deps)")
        }
        return python
    }

    static let ipTool = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }
    static var canMakeNamespaces: Bool { getuid() == 0 && ipTool != nil }
}

/// A temporary directory removed at the end (unless HALLWATCH_KEEP_E2E is set).
final class TempDir: @unchecked Sendable {
    let path: String
    init(_ tag: String) throws {
        var template = Array("/tmp/hw-\(tag).XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SystemError("mkdtemp")
        }
        path = String(cString: made)
    }
    deinit {
        if ProcessInfo.processInfo.environment["HALLWATCH_KEEP_E2E"] == nil {
            try? FileManager.default.removeItem(atPath: path)
        }
    }
    func write(_ name: String, _ text: String, mode: Int = 0o600) throws -> String {
        let p = path + "/" + name
        guard
            FileManager.default.createFile(atPath: p, contents: Data(text.utf8), attributes: [.posixPermissions: mode])
        else { throw SystemError("create", subject: p) }
        return p
    }
}

/// A child process started with `posix_spawn` (empty signal mask: the test runner blocks SIGTERM, and children
/// would inherit that), stdout and stderr to `log`, stopped by its PID only.
final class Child: @unchecked Sendable {
    let pid: pid_t
    let log: String
    let name: String
    private let lock = NSLock()
    private var exited = false

    init(_ name: String, _ path: String, _ arguments: [String], log: String, namespace: String? = nil) throws {
        self.name = name
        self.log = log
        var argv = [path] + arguments
        var exe = path
        if let ns = namespace, let ip = Repo.ipTool {
            argv = [ip, "netns", "exec", ns] + argv
            exe = ip
        }  // ip execs: same PID
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attr, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGHUP, SIGINT, SIGTERM, SIGPIPE] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attr, &defaults)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var p: pid_t = 0
        let rc = posix_spawn(&p, exe, &actions, &attr, cargs, environ)
        guard rc == 0 else { throw SystemError("posix_spawn", errno: rc, subject: path) }
        pid = p
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// Waits (≤ `seconds`) for a line of the log starting with `prefix`; returns it.
    func waitForLine(_ prefix: String, seconds: Double = 20) async throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let line = output.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) { return String(line) }
            if hasExited { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("\(name): no line '\(prefix)…' in \(seconds) s; log:\n\(output.suffix(3000))")
    }

    var hasExited: Bool {
        lock.lock()
        defer { lock.unlock() }
        if exited { return true }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { exited = true }
        return exited
    }

    /// SIGTERM by PID, wait ≤ 10 s, then SIGKILL.
    func stop() async {
        guard !hasExited else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(10)
        while !hasExited {
            if Date() > deadline { kill(pid, SIGKILL) }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    deinit {
        if !hasExited {
            kill(pid, SIGKILL)
            var s: Int32 = 0
            _ = waitpid(pid, &s, 0)
        }
    }
}

/// The children a test started, stopped (by PID) when the test ends, whether it passed or threw.
final class Children: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [Child] = []
    @discardableResult
    func add(_ c: Child) -> Child {
        lock.lock()
        list.append(c)
        lock.unlock()
        return c
    }
    func stopAll() async {
        let all = lock.withLock { list.reversed() as [Child] }
        for c in all { await c.stop() }
    }
    /// Runs `body`, then stops every child it added (also when it throws).
    static func scope<T>(_ body: (Children) async throws -> T) async throws -> T {
        let kids = Children()
        do {
            let r = try await body(kids)
            await kids.stopAll()
            return r
        } catch {
            await kids.stopAll()
            throw error
        }
    }
}

/// Runs `ip ARGS`; throws on a non-zero exit.
func ip(_ args: String...) throws { try ip(args) }
func ip(_ args: [String]) throws {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: Repo.ipTool ?? "/usr/sbin/ip")
    p.arguments = args
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw TestFailure("ip \(args.joined(separator: " ")) failed") }
}

/// The test network: an agent namespace with two veth links, each to a camera namespace with its own /24.
/// No default route anywhere; a multicast route on each camera link. Every name carries the test's PID.
struct TestNetwork {
    let agent: String, camA: String, camB: String
    let tag = String(getpid() % 100_000)
    static let agentOnA = "10.214.1.1", cameraA = "10.214.1.2", agentOnB = "10.214.2.1", cameraB = "10.214.2.2"

    init() {
        agent = "hwda\(tag)"
        camA = "hwdca\(tag)"
        camB = "hwdcb\(tag)"
    }

    func create() throws {
        remove()
        for ns in [agent, camA, camB] {
            try ip("netns", "add", ns)
            try ip("-n", ns, "link", "set", "lo", "up")
        }
        for (cam, a, c, n) in [(camA, Self.agentOnA, Self.cameraA, "a"), (camB, Self.agentOnB, Self.cameraB, "b")] {
            let va = "hwv\(n)\(tag)"
            let vc = "hwc\(n)\(tag)"
            try ip("link", "add", va, "type", "veth", "peer", "name", vc)
            try ip("link", "set", va, "netns", agent)
            try ip("link", "set", vc, "netns", cam)
            try ip("-n", agent, "addr", "add", a + "/24", "dev", va)
            try ip("-n", cam, "addr", "add", c + "/24", "dev", vc)
            try ip("-n", agent, "link", "set", va, "up")
            try ip("-n", cam, "link", "set", vc, "up")
            try ip("-n", cam, "route", "add", "224.0.0.0/4", "dev", vc)
        }
    }

    /// Deleting a namespace deletes its veth ends, and with them their peers.
    func remove() {
        for ns in [agent, camA, camB] { try? ip("netns", "del", ns) }
    }
}

/// A mosquitto of the test's own on a Unix socket in `dir` (works across network namespaces).
func startBroker(_ dir: TempDir) async throws -> (Child, String) {
    let socket = dir.path + "/bus.sock"
    let conf = dir.path + "/mosquitto.conf"
    try BrokerConfig(socketPath: socket, user: "root").write(to: conf)
    let broker = try Child("mosquitto", "/usr/sbin/mosquitto", ["-c", conf], log: dir.path + "/mosquitto.log")
    for _ in 0..<250 {
        if FileManager.default.fileExists(atPath: socket) {
            try await Task.sleep(for: .milliseconds(50))
            return (broker, socket)
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw TestFailure("mosquitto did not start: \(broker.output)")
}

/// Collects retained and live `DiscoveredDevice` messages by id.
final class DiscoveredWatch: @unchecked Sendable {
    final class Store: Sendable { let map = Mutex<[String: DiscoveredDevice]>([:]) }
    let store = Store()
    let bus: BusClient
    var task: Task<Void, Never>?

    init(socket: String, box: String) async throws {
        bus = BusClient(
            clientID: "test-\(getpid())-\(UUID().uuidString.prefix(6))", socketPath: socket, will: nil,
            logger: Logger(label: "test"))
        try await bus.connect(timeout: .seconds(5))
        let stream = bus.subscribe(BusTopics(box: box).allDiscovered)
        let store = self.store
        task = Task {
            for await m in stream {
                if let d = try? BusCoding.decode(DiscoveredDevice.self, from: m.payload) {
                    store.map.withLock { $0[d.id] = d }
                }
            }
        }
    }

    /// Waits (≤ `seconds`) until `predicate` holds for the devices seen; returns them.
    func wait(seconds: Double, _ what: String, _ predicate: ([DiscoveredDevice]) -> Bool) async throws
        -> [DiscoveredDevice]
    {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let now = store.map.withLock { Array($0.values) }
            if predicate(now) { return now }
            try await Task.sleep(for: .milliseconds(100))
        }
        let now = store.map.withLock { Array($0.values) }
        throw TestFailure(
            "timed out waiting for \(what); devices: \(now.map { "\($0.id) \($0.name ?? "-") \($0.presence) \($0.auth) \($0.error?.code ?? "")" })"
        )
    }

    func close() async {
        task?.cancel()
        await bus.close()
    }
}
