import Foundation
import HallwatchCore
import HallwatchStorage

/// The recorder's side of the free-slot reserve: it measures its write rate and, when the disk's free
/// slots fall under the reserve that rate needs, publishes a ``LowFreeSlotsEvent`` so the pruner runs
/// at once instead of at its next period (DESIGN.md § Storage: ring reuse is the last resort).
struct ReserveWatch: Sendable {
    /// Smoothed write rate, bytes per second (exponential average over ~30 s).
    var bytesPerSecond = 0.0
    var lastNanos: UInt64?
    /// When the last event was published (monotonic ns); events are at most one per ``minInterval``.
    var lastEventNanos: UInt64?
    /// Fewest seconds between two events while the disk stays low.
    static let minIntervalNanos: UInt64 = 30_000_000_000

    /// Slots for `reserve` of writing at the measured rate, at least `minSlots`.
    func reserveSlots(reserve: Duration, minSlots: Int, slotSizeBytes: Int64) -> Int {
        let capacity = Double(max(1, slotSizeBytes - Int64(SlotHeader.byteCount)))
        return max(minSlots, Int((bytesPerSecond * reserve.seconds / capacity).rounded(.up)))
    }
}

extension RecorderService {
    /// After each commit on `disk`: update its rate; if the writer's free slots are under the reserve,
    /// pick up what the pruner freed, and if still under, publish the event (throttled).
    func reportLowFreeSlots(disk: String, _ writer: DiskWriter, _ report: CommitReport) {
        let now = clocks.monotonicNanos()
        let retention = config.retention
        let (reserve, due) = reserveWatch.withLock { watches -> (Int, Bool) in
            var w = watches[disk] ?? ReserveWatch()
            defer { watches[disk] = w }
            if let last = w.lastNanos, now > last {
                let seconds = Double(now - last) / 1e9
                let alpha = min(1, seconds / 30)
                w.bytesPerSecond += alpha * (Double(report.recordBytes) / seconds - w.bytesPerSecond)
            }
            w.lastNanos = now
            let due = w.lastEventNanos.map { now &- $0 >= ReserveWatch.minIntervalNanos } ?? true
            return (
                w.reserveSlots(
                    reserve: retention.reserve, minSlots: retention.reserveSlots,
                    slotSizeBytes: writer.disk.meta.slotSizeBytes), due
            )
        }
        guard due, writer.stats().freeSlots < reserve else { return }
        guard let free = try? writer.pickUpFreedSlots(), free < reserve else { return }
        reserveWatch.withLock { $0[disk, default: ReserveWatch()].lastEventNanos = now }
        logger.warning(
            "free slots under the reserve; asking the pruner",
            metadata: ["disk": "\(disk)", "free": "\(free)", "reserve": "\(reserve)"])
        try? presence.bus.publish(
            LowFreeSlotsEvent(disk: disk, freeSlots: free, reserveSlots: reserve, at: clocks.utcNow()),
            topic: presence.topics.lowFreeSlots(disk), retain: false)
    }
}
