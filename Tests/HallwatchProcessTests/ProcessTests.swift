import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import Logging
import Testing

@testable import HallwatchProcess

let quiet: Logger = {
    var l = Logger(label: "hallwatch.process.test")
    l.logLevel = .critical
    return l
}()

@Suite("What every process does")
struct ProcessTests {
    @Test func theSignalWaiterReturnsOnTheSignal() async throws {
        let waiter = SignalWaiter([SIGUSR2])
        let returned = Task {
            await waiter.wait()
            return true
        }
        try await Task.sleep(for: .milliseconds(100))
        kill(getpid(), SIGUSR2)
        #expect(await returned.value)
    }

    @Test func exitStatusesAreTheSysexitsOnes() {
        #expect(
            [
                ExitStatus.usage, ExitStatus.noInput, ExitStatus.unavailable, ExitStatus.software, ExitStatus.tempFail,
                ExitStatus.config,
            ]
                == [64, 66, 69, 70, 75, 78])
    }

    /// A process's presence on a real mosquitto: `up` when it announces, `stopping` when it leaves, and the
    /// broker's last-will `down` when it dies without a goodbye.
    @Test(.timeLimit(.minutes(1))) func presenceIsUpStoppingAndDownOnARealBroker() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/mosquitto") else { return }
        let dir = FileManager.default.temporaryDirectory.path + "/hw-presence-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // As root, mosquitto would switch to its own user, which cannot create the socket in our directory.
        let user = getuid() == 0 ? "user root\n" : ""
        try "listener 0 \(dir)/bus.sock\nallow_anonymous true\n\(user)".write(
            toFile: dir + "/mosquitto.conf", atomically: true, encoding: .utf8)
        let broker = Process()
        broker.executableURL = URL(fileURLWithPath: "/usr/sbin/mosquitto")
        broker.arguments = ["-c", dir + "/mosquitto.conf"]
        broker.standardError = FileHandle.nullDevice
        try broker.run()
        defer {
            kill(broker.processIdentifier, SIGKILL)
            broker.waitUntilExit()
        }

        let config = try ConfigLoader.parse("box: test-box\nbus: {socket: \(dir)/bus.sock}\n")
        let topics = BusTopics(box: "test-box")
        let watcher = BusClient(clientID: "watcher", socketPath: config.bus.socket, will: nil, logger: quiet)
        try watcher.start()
        let states = try await watcher.subscribe(topics.process("recorder"), timeout: .seconds(10))
        /// Reads states in order until `wanted` arrives (a retained copy may repeat the one before); `nil` if the
        /// stream ends first.
        func next(_ iterator: inout AsyncStream<BusMessage>.Iterator, _ wanted: ProcessState.State) async throws
            -> ProcessState.State?
        {
            while let m = await iterator.next() {
                let state = try m.decode(ProcessState.self).state
                if state == wanted { return state }
            }
            return nil
        }
        var it = states.makeAsyncIterator()

        let first = Presence(name: "recorder", config: config, logger: quiet)
        first.announce()
        #expect(try await next(&it, .up) == .up)
        await first.leave()
        #expect(try await next(&it, .stopping) == .stopping)

        let second = Presence(name: "recorder", config: config, logger: quiet)
        second.announce()
        #expect(try await next(&it, .up) == .up)
        await second.bus.close(withWill: true, timeout: .seconds(2))  // dies: the broker sends the will
        #expect(try await next(&it, .down) == .down)
        await watcher.close()
    }
}
