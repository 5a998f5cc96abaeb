import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import HallwatchProcess
import HallwatchStorage
import Logging
import ServiceLifecycle
import Synchronization

/// `hallwatch-pruner`: enforces the retention policy (`retention:` and `cameras[].retention`) on every
/// recording disk, never touching evidence holds or open slots (DESIGN.md § Storage; the deletion
/// procedure is <doc:WriteProtocol> § Delete in the HallwatchStorage catalog).
///
/// Runs a pass (``Pruner/pass(disks:config:clocks:dryRun:logger:publish:afterStep:)``) at start, then
/// every `retention.period` (default 60 s) and at once when the recorder publishes a
/// ``LowFreeSlotsEvent``. The configuration file is re-read before each pass, so a camera added at
/// runtime gets its own policy at the next pass; an unreadable or invalid file keeps the last good
/// configuration and is reported. After each pass it publishes, retained, ``PrunerState`` and the
/// ``EvidenceHoldList``; each deletion goes out on ``BusTopics/deletions`` and each alarm on the error
/// topic. A pass never throws: a broken disk is an alarm, and the other disks are still pruned. It also places
/// the evidence holds other processes request on the bus (``BusTopics/holdRequest(_:)``, `HoldRequests.swift`).
public final class PrunerService: Service, Sendable {
    /// Where the configuration comes from.
    public enum ConfigSource: Sendable {
        /// Re-read from this file before each pass.
        case file(String)
        /// Asked of this closure before each pass (tests change it to add cameras at runtime).
        case provider(@Sendable () -> HallwatchConfig)
    }

    let source: ConfigSource
    let presence: Presence?
    let clocks: any Clocks
    let logger: Logger
    let afterStep: DeleteStepHook?
    let last: Mutex<(config: HallwatchConfig, bytesFreedTotal: Int64)>

    /// - Parameters:
    ///   - config: The configuration read at start (also the fallback when a re-read fails).
    ///   - source: Where later passes read it.
    ///   - presence: The bus; `nil` runs without one (tests, `--dry-run`).
    ///   - clocks: Box UTC for policy ages, and the wait of each period; injected by tests.
    ///   - afterStep: Called after each deletion step (crash tests stop the process there).
    public init(
        config: HallwatchConfig, source: ConfigSource, presence: Presence?, clocks: any Clocks = SystemClocks(),
        logger: Logger, afterStep: DeleteStepHook? = nil
    ) {
        self.source = source
        self.presence = presence
        self.clocks = clocks
        self.logger = logger
        self.afterStep = afterStep
        last = Mutex((config, 0))
    }

    /// The configuration for the next pass: re-read, or the last good one with an alarm.
    func currentConfig() -> (HallwatchConfig, ErrorEvent?) {
        let fallback = last.withLock { $0.config }
        switch source {
        case .provider(let f): return (f(), nil)
        case .file(let path):
            do {
                let c = try ConfigLoader.load(path: path)
                return (c, nil)
            } catch {
                let code = (error as? ConfigError)?.code ?? "config.unreadable"
                return (
                    fallback,
                    ErrorEvent(
                        code: code,
                        message: "re-reading \(path) failed; pruning with the last good configuration: \(error)")
                )
            }
        }
    }

    /// Runs one pass now and publishes its results.
    /// - Parameter dryRun: Plan only (nothing is written or published but the report).
    @discardableResult
    public func runPass(dryRun: Bool = false) -> Pruner.Report {
        let (config, configAlarm) = currentConfig()
        let topics = BusTopics(box: config.box)
        var report = Pruner.pass(
            disks: NamedDisk.all(of: config), config: config, clocks: clocks, dryRun: dryRun, logger: logger,
            publish: { [presence] record in
                if !dryRun { try? presence?.bus.publish(record, topic: topics.deletions, retain: false) }
            }, afterStep: afterStep)
        if let configAlarm {
            logger.error("\(configAlarm.message)", metadata: ["code": "\(configAlarm.code)"])
            report.alarms.insert(configAlarm, at: 0)
        }
        let total = last.withLock { l -> Int64 in
            if configAlarm == nil { l.config = config }
            l.bytesFreedTotal += report.bytesFreed
            return l.bytesFreedTotal
        }
        let now = clocks.utcNow()
        if let presence, !dryRun {
            try? presence.bus.publish(
                Pruner.state(report, now: now, bytesFreedTotal: total), topic: topics.prunerState, retain: true)
            try? presence.bus.publish(EvidenceHoldList(holds: report.holds, at: now), topic: topics.holds, retain: true)
            for a in report.alarms { presence.publishError(a) }
        }
        logger.info(
            "pass done",
            metadata: [
                "deleted.slots": "\(report.deleted.count)", "bytes.freed": "\(report.bytesFreed)",
                "alarms": "\(report.alarms.count)", "ms": "\(Double(report.elapsedNanos) / 1e6)",
            ])
        return report
    }

    /// Passes until graceful shutdown: one at start, then each period or low-free-slots event.
    public func run() async throws {
        let (wake, wakeUp) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        var listener: Task<Void, Never>?
        if let presence {
            let events = presence.bus.subscribe(presence.topics.allLowFreeSlots)
            let logger = self.logger
            listener = Task {
                for await m in events {
                    let e = try? BusCoding.decode(LowFreeSlotsEvent.self, from: m.payload)
                    logger.notice(
                        "recorder reports few free slots; pruning now",
                        metadata: [
                            "disk": "\(e?.disk ?? "?")", "free": "\(e?.freeSlots ?? -1)",
                            "reserve": "\(e?.reserveSlots ?? -1)",
                        ])
                    wakeUp.yield()
                }
            }
        }
        let holdRequests = presence.map { listenForHoldRequests($0) }
        // A timer feeds the same stream as the bus events, so one loop waits on both.
        let timer = Task { [self] in
            while !Task.isCancelled {
                let period = last.withLock { $0.config.retention.period }
                try? await clocks.sleep(for: period)
                wakeUp.yield()
            }
        }
        defer {
            timer.cancel()
            listener?.cancel()
            holdRequests?.cancel()
            wakeUp.finish()
        }
        await withGracefulShutdownHandler {
            runPass()
            for await _ in wake.cancelOnGracefulShutdown() {
                runPass()
            }
        } onGracefulShutdown: {
            wakeUp.finish()
        }
    }
}
