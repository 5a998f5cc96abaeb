import Foundation

/// Runs a helper program to its end and returns its exit status and what it printed on stdout: the one place
/// Hallwatch starts another program (the configuration sync's `systemctl`, the provisioner's mtools and
/// `unshare` reader, the box inventory's tools).
///
/// `posix_spawn` and `waitpid`, not Foundation's `Process`: on Linux `Process` waits for its child through a
/// CFSocket wakeup pair, and under `RestrictAddressFamilies=AF_UNIX` (hallwatch-config.service) it logged "Could
/// not create wakeup socket pair for CFSocket" and never saw the child end (the sync hung until its start
/// timeout in `make image-test`; `systemd-run -p RestrictAddressFamilies=AF_UNIX` alone reproduces it).
///
/// The child runs in a process group of its own, with an empty signal mask and default dispositions, stdin
/// `/dev/null`. A deadline, or output reaching `maxOutputBytes`, kills the whole group with SIGKILL: a wrapper's
/// child that kept the pipe open would otherwise hold the reader past its deadline. Whatever the child left in
/// its group is killed when it ends.
public enum ChildProcess {
    /// How a run ended.
    public struct Result: Sendable, Equatable {
        /// The exit status (0–255), or 128 + the signal that ended the child (a deadline's or a cut-off's
        /// SIGKILL gives 137).
        public var status: Int32
        /// What the child printed on stdout, at most `maxOutputBytes` bytes.
        public var output: [UInt8]
        /// The deadline passed and the child's group was killed.
        public var timedOut: Bool
        /// The output reached `maxOutputBytes` and the child's group was killed.
        public var cutOff: Bool

        /// The output as UTF-8 text (invalid bytes replaced).
        public var text: String { String(decoding: output, as: UTF8.self) }
    }

    /// Where the child's stderr goes.
    public enum ErrorOutput: Sendable {
        /// The caller's stderr (the journal, under systemd).
        case inherit
        /// `/dev/null`: a helper whose messages would only repeat, in its own words, the typed error the caller
        /// reports (the provisioner's mtools on a hostile stick).
        case discard
    }

    /// Runs `argv` to its end.
    /// - Parameters:
    ///   - argv: the program's absolute path, then its arguments.
    ///   - environment: `NAME=value` entries, or `nil` for this process's environment.
    ///   - errorOutput: where the child's stderr goes.
    ///   - deadline: how long the child may run before its group is killed, or `nil` for no limit.
    ///   - maxOutputBytes: stdout kept; reaching it kills the child's group.
    /// - Throws: ``SystemError`` (`pipe` or `posix_spawn`, with the errno and the program's path) when the child
    ///   could not start.
    public static func run(
        _ argv: [String], environment: [String]? = nil, errorOutput: ErrorOutput = .inherit,
        deadline: Duration? = nil, maxOutputBytes: Int = 1 << 20
    ) throws(SystemError) -> Result {
        precondition(!argv.isEmpty, "ChildProcess.run needs a program")
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SystemError("pipe", subject: argv[0]) }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        defer { close(fds[0]) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        if case .discard = errorOutput { posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cEnv: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup($0) } + [nil] }
        defer {
            for p in cArgs { free(p) }
            for p in cEnv ?? [] { free(p) }
        }
        var pid: pid_t = 0
        let rc: Int32
        if cEnv != nil {
            rc = posix_spawn(&pid, argv[0], &actions, &attr, &cArgs, &cEnv!)
        } else {
            rc = posix_spawn(&pid, argv[0], &actions, &attr, &cArgs, environ)
        }
        close(fds[1])
        guard rc == 0 else { throw SystemError("posix_spawn", errno: rc, subject: argv[0]) }

        let timedOut = Flag()
        let timer = deadline.map { limit in
            let timer = DispatchSource.makeTimerSource(queue: .global())
            let c = limit.components
            timer.schedule(
                deadline: .now() + .nanoseconds(Int(c.seconds) * 1_000_000_000 + Int(c.attoseconds / 1_000_000_000)))
            timer.setEventHandler {
                timedOut.set()
                kill(-pid, SIGKILL)
            }
            timer.resume()
            return timer
        }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while output.count < maxOutputBytes {
            let want = min(chunk.count, maxOutputBytes - output.count)
            let n = chunk.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, want) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            output += chunk[0..<n]
        }
        let cutOff = output.count >= maxOutputBytes
        if cutOff { kill(-pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        timer?.cancel()
        kill(-pid, SIGKILL)  // anything the child left behind in its group
        let code = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return Result(status: code, output: output, timedOut: timedOut.isSet, cutOff: cutOff)
    }

    /// A flag the deadline's timer sets and the caller reads.
    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        func set() { lock.withLock { value = true } }
        var isSet: Bool { lock.withLock { value } }
    }
}
