import Foundation
import HallwatchCore
import HallwatchMedia
import Testing

@testable import HallwatchCapture

/// The capture worker's reconnect back-off (CaptureWorker step 3), run in simulated time: the loop is the
/// worker's own, only the session is a stand-in and the clock is ``SimulatedClocks``.
@Suite("Capture reconnect back-off")
struct BackoffTests {
    /// Runs the worker's reconnect loop over sessions that each last `lasted[i]` (simulated) and returns the
    /// waits it asked the clock for.
    static func waits(initial: Duration = .milliseconds(500), max: Duration = .seconds(10), sessions lasted: [Duration])
        -> [Duration]
    {
        let clocks = SimulatedClocks()
        let stop = StopFlag()
        var count = 0
        CaptureWorker.reconnecting(clocks: clocks, backoff: ReconnectBackoff(initial: initial, max: max), stop: stop) {
            clocks.advance(by: lasted[count])
            count += 1
            if count == lasted.count { stop.stop() }
        }
        #expect(count == lasted.count)
        return clocks.sleeps
    }

    @Test func doublesFromInitialUpToMax() {
        let waits = Self.waits(sessions: Array(repeating: .zero, count: 9))
        #expect(
            waits == [
                .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(10), .seconds(10),
                .seconds(10),
            ])
    }

    @Test func aSessionOnlineLongerThan30sStartsAgainAtInitial() {
        let waits = Self.waits(sessions: [.zero, .zero, .zero, .seconds(31), .zero, .seconds(30), .zero])
        // 30 s exactly is not longer than 30 s: the doubling goes on.
        #expect(waits == [.milliseconds(500), .seconds(1), .seconds(2), .milliseconds(500), .seconds(1), .seconds(2)])
    }

    @Test func theWaitsTakeSimulatedTimeOnly() {
        let clocks = SimulatedClocks()
        let start = clocks.monotonicNow()
        let stop = StopFlag()
        var sessions = 0
        CaptureWorker.reconnecting(
            clocks: clocks, backoff: ReconnectBackoff(initial: .seconds(1), max: .seconds(300)), stop: stop
        ) {
            sessions += 1
            if sessions == 10 { stop.stop() }
        }
        // 1 + 2 + … + 256 s of back-off passed on the simulated clock, none on the real one.
        #expect(clocks.monotonicNow() - start == .seconds(511))
    }

    @Test func stopEndsAWaitEarly() async throws {
        let clocks = SimulatedClocks(autoAdvance: false)
        let stop = StopFlag()
        let done = AsyncStream<Void>.makeStream()
        let thread = Thread {
            var sessions = 0
            CaptureWorker.reconnecting(
                clocks: clocks, backoff: ReconnectBackoff(initial: .seconds(10), max: .seconds(10)), stop: stop
            ) {
                sessions += 1
            }
            done.continuation.finish()
        }
        thread.start()
        while clocks.sleeps.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
        clocks.advance(by: .seconds(10))  // the first wait ends; the second session fails; the second wait begins
        while clocks.sleeps.count < 2 { try await Task.sleep(for: .milliseconds(1)) }
        stop.stop()
        for await _ in done.stream {}
        #expect(clocks.sleeps == [.seconds(10), .seconds(10)])
    }
}

@Suite("Simulated clocks")
struct SimulatedClocksTests {
    @Test func instantsAndDurations() {
        let t = MonotonicInstant(nanos: 5_000_000_000)
        #expect(t + .milliseconds(1500) == MonotonicInstant(nanos: 6_500_000_000))
        #expect(t + .seconds(-10) == MonotonicInstant(nanos: 0))
        #expect((t + .seconds(2)) - t == .seconds(2))
        #expect(t - (t + .seconds(2)) == .seconds(-2))
        #expect(t < t + .nanoseconds(1))
    }

    @Test func asyncSleepersWakeWhenTimeReachesTheirDeadline() async throws {
        let clocks = SimulatedClocks(autoAdvance: false)
        let sleeper = Task {
            try await clocks.sleep(for: .seconds(60))
            return clocks.monotonicNow()
        }
        while clocks.sleeps.isEmpty { try await Task.sleep(for: .milliseconds(1)) }
        let start = clocks.monotonicNow()
        clocks.advance(by: .seconds(59))
        clocks.advance(by: .seconds(1))
        #expect(try await sleeper.value - start == .seconds(60))
        let cancelled = Task { try await clocks.sleep(for: .seconds(1)) }
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
    }
}
