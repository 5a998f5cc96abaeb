import Foundation
import Testing

@testable import HallwatchCore

/// ``ChildProcess`` with real programs (/bin/sh): the exit status, a signal, stdout, the environment, the
/// deadline and the output bound each kill the child's whole group, and a program that cannot start.
@Suite("Child processes")
struct ChildProcessTests {
    @Test("the exit status and stdout come back; stdin is /dev/null")
    func statusAndOutput() throws {
        let r = try ChildProcess.run(["/bin/sh", "-c", "cat; printf 'hello\\n'; exit 7"])
        #expect(r.status == 7)
        #expect(r.text == "hello\n")
        #expect(!r.timedOut && !r.cutOff)
    }

    @Test("a child ended by a signal reports 128 + the signal")
    func signalled() throws {
        let r = try ChildProcess.run(["/bin/sh", "-c", "kill -TERM $$"])
        #expect(r.status == 128 + SIGTERM)
    }

    @Test("a given environment replaces this process's; none inherits it")
    func environment() throws {
        let given = try ChildProcess.run(
            ["/bin/sh", "-c", "printf '%s|%s' \"$A\" \"${HOME:-none}\""], environment: ["A=1"])
        #expect(given.text == "1|none")
        let inherited = try ChildProcess.run(["/bin/sh", "-c", "printf '%s' \"$HOME\""])
        #expect(inherited.text == (ProcessInfo.processInfo.environment["HOME"] ?? ""))
    }

    @Test("the deadline kills the child and the grandchild that holds the pipe open")
    func deadline() throws {
        let started = ContinuousClock.now
        let r = try ChildProcess.run(["/bin/sh", "-c", "sleep 30 & sleep 30"], deadline: .milliseconds(300))
        let took = ContinuousClock.now - started
        #expect(r.timedOut)
        #expect(r.status == 128 + SIGKILL)
        #expect(took < .seconds(10), "took \(took)")
    }

    @Test("output reaching the bound is cut there and the child killed")
    func outputBound() throws {
        let r = try ChildProcess.run(["/bin/sh", "-c", "yes"], maxOutputBytes: 10_000)
        #expect(r.cutOff)
        #expect(r.output.count == 10_000)
        #expect(r.status == 128 + SIGKILL)
    }

    @Test("a program that does not exist throws posix_spawn with ENOENT and its path")
    func cannotStart() {
        #expect(throws: SystemError("posix_spawn", errno: ENOENT, subject: "/nonexistent/tool")) {
            try ChildProcess.run(["/nonexistent/tool"])
        }
    }
}
