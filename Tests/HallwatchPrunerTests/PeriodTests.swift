import HallwatchConfig
import HallwatchCore
import Logging
import Synchronization
import Testing

@testable import HallwatchPruner

/// The pruner's period (`retention.period`) in simulated time: a pass at start, then one each time the
/// injected clock has moved a whole period, and none before.
@Suite("Pruner period")
struct PeriodTests {
    @Test func onePassAtStartThenOnePerPeriodOfTheInjectedClock() async throws {
        var config = HallwatchConfig(box: "test-box")
        config.recorder.disks = [DiskConfig(name: "d0", path: "/nonexistent/hallwatch-pruner-period-test")]
        config.retention.period = .seconds(60)
        let passes = Atomic<Int>(0)
        let clocks = SimulatedClocks(autoAdvance: false)
        var logger = Logger(label: "pruner-period-test")
        logger.logLevel = .critical
        let fixed = config
        let pruner = PrunerService(
            config: fixed,
            source: .provider({
                passes.add(1, ordering: .relaxed)
                return fixed
            }),
            presence: nil, clocks: clocks, logger: logger)
        let running = Task { try await pruner.run() }
        defer { running.cancel() }

        func waitUntil(_ what: @autoclosure () -> Bool) async throws {
            for _ in 0..<5000 where !what() { try await Task.sleep(for: .milliseconds(1)) }
            #expect(what())
        }
        try await waitUntil(passes.load(ordering: .relaxed) == 1 && clocks.sleeps.count == 1)
        #expect(clocks.sleeps == [.seconds(60)])

        clocks.advance(by: .seconds(59))
        try await Task.sleep(for: .milliseconds(50))
        #expect(passes.load(ordering: .relaxed) == 1, "a pass before the period was over")

        clocks.advance(by: .seconds(1))
        try await waitUntil(passes.load(ordering: .relaxed) == 2 && clocks.sleeps.count == 2)
        clocks.advance(by: .seconds(60))
        try await waitUntil(passes.load(ordering: .relaxed) == 3)
        #expect(clocks.sleeps.allSatisfy { $0 == .seconds(60) })
    }
}
