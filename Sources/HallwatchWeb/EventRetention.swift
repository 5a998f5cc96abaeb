import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchStorage
import Logging
import Synchronization

/// Retention of `events.sqlite`, run in `hallwatch-web`'s own maintenance loop (the web is the store's writer).
/// Without it one leaked event-source token at the contract's 2 000 events/s fills the data partition.
///
/// Each pass (``pass()``, every ``Policy/period``, or after ``Policy/catchUpPause`` while there is more to delete):
/// 1. The kept ranges: every evidence hold not released and not lapsed (from the recording disks' indexes, read
///    only) and every export bundle not failed (its `[from, to)`). An event whose time lies in one is never
///    deleted, whatever its camera (kept ranges are few and wide; keeping more is the safe side).
/// 2. ``EventStore/prune(before:keeping:rowBudget:maxRows:)``: events older than the longest camera retention
///    (``Policy/maxAge``: the video they point at is gone), then each source's oldest events beyond its
///    ``Policy/rowBudget``, then old conflicting repeats — at most ``Policy/rowsPerPass`` rows, so one pass is
///    one short transaction and ingest waits for it at most milliseconds; the next pass goes on.
/// 3. Counts in the log (`info` when anything was deleted); a source going over its budget raises
///    `events.budget` (once while it stays over, however many catch-up passes that takes).
/// 4. Each source's rate over the last ``Policy/rateWindow``, from the receive-ordered sequence numbers: above
///    ``Policy/sustainableRatePerHour`` (the budget spread over the retention) its budget will delete events
///    younger than the retention, so `events.sourceRate` is raised — a leaked token, or a budget too small.
///    Raised once per source while it lasts (and logged again when it clears).
public final class EventRetention: Sendable {
    /// The bounds of retention.
    public struct Policy: Sendable {
        /// Events older than this are deleted: the longest `maxAge` of any camera (``maxAge(config:)``).
        public var maxAge: Duration
        /// Most events one source may hold; its oldest beyond it are deleted. Default 1 000 000 rows (about
        /// 1 GiB at a typical 1 KiB per event; a vendor's raw record may make one up to 64 KiB).
        public var rowBudget = 1_000_000
        /// Most rows one pass deletes. Default 5 000.
        public var rowsPerPass = 5_000
        /// Time between passes. Default 60 s.
        public var period: Duration = .seconds(60)
        /// Time to the next pass when one stopped at its row limit: 0.5 s, so retention deletes up to
        /// 10 000 rows/s, more than the 2 000 events/s a source may send, while each transaction stays short.
        public var catchUpPause: Duration = .milliseconds(500)
        /// The window a source's rate is measured over ("for long"). Default 1 h.
        public var rateWindow: Duration = .seconds(3600)
        /// Events per hour a source may sustain without its budget cutting into the retention.
        public var sustainableRatePerHour: Double {
            Double(rowBudget) / max(1, Double(maxAge.components.seconds) / 3600)
        }
        public init(maxAge: Duration) { self.maxAge = maxAge }

        /// The longest retention of any stream in `config` (a camera's own `maxAge` or the building's).
        public static func maxAge(config: HallwatchConfig) -> Duration {
            config.streams.map { config.retentionPolicy($0.id).maxAge }.max() ?? config.retention.maxAge
        }
    }

    /// The kept ranges now (box UTC µs): evidence holds and exports.
    public typealias KeptRanges = @Sendable () async -> [Range<Int64>]

    let store: EventStore
    let policy: Policy
    let clocks: any Clocks
    let kept: KeptRanges
    let alarm: @Sendable (ErrorEvent) -> Void
    let logger: Logger
    /// (time, last seq) at each pass, newest last, back to one ``Policy/rateWindow``; sources in alarm.
    let state = Mutex<(marks: [(at: UTCMicros, seq: Int64)], fast: Set<String>, over: Set<String>)>(([], [], []))

    public init(
        store: EventStore, policy: Policy, clocks: any Clocks, kept: @escaping KeptRanges,
        alarm: @escaping @Sendable (ErrorEvent) -> Void, logger: Logger
    ) {
        self.store = store
        self.policy = policy
        self.clocks = clocks
        self.kept = kept
        self.alarm = alarm
        self.logger = logger
    }

    /// Passes every ``Policy/period`` (every ``Policy/catchUpPause`` while a pass leaves more to delete) until
    /// cancelled. A failed pass is logged and tried again next period.
    public func run() async {
        while !Task.isCancelled {
            var more = false
            do { more = try await pass().more } catch {
                logger.error("event retention pass failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: more ? policy.catchUpPause : policy.period)
        }
    }

    /// One pass (steps 1–4).
    /// - Returns: what was deleted.
    /// - Throws: GRDB errors.
    @discardableResult
    public func pass() async throws -> EventStore.PruneCounts {
        let now = clocks.utcNow()
        let ranges = await kept()
        let cutoff = now.adding(micros: -RetentionPolicy.micros(policy.maxAge))
        let counts = try store.prune(
            before: cutoff, keeping: ranges, rowBudget: policy.rowBudget, maxRows: policy.rowsPerPass)
        if counts.total > 0 || counts.more {
            logger.info(
                "event retention",
                metadata: [
                    "aged": "\(counts.aged)", "overBudget": "\(counts.overBudget.values.reduce(0, +))",
                    "conflicts": "\(counts.conflicts)", "more": "\(counts.more)", "kept.ranges": "\(ranges.count)",
                ])
        }
        // Raised when a source goes over (not on each catch-up pass while a flood lasts), logged when it is back.
        let over = Set(counts.sourceRows.keys)
        let (newlyOver, back) = state.withLock { s in
            defer { s.over = over }
            return (over.subtracting(s.over), s.over.subtracting(over))
        }
        for source in newlyOver.sorted() {
            let message =
                "event source \(source) held \(counts.sourceRows[source] ?? 0) events, over its budget of \(policy.rowBudget): its oldest \(counts.overBudget[source] ?? 0) deleted (a leaked token?)"
            logger.warning("\(message)", metadata: ["source": "\(source)"])
            alarm(ErrorEvent(code: "events.budget", message: message, process: "web", at: now))
        }
        for source in back.sorted() {
            logger.info("event source \(source) is within its row budget again", metadata: ["source": "\(source)"])
        }
        try checkRates(now: now)
        return counts
    }

    /// Step 4.
    func checkRates(now: UTCMicros) throws {
        let last = try store.lastSeq()
        let window = RetentionPolicy.micros(policy.rateWindow)
        let base: (at: UTCMicros, seq: Int64)? = state.withLock { s in
            s.marks.append((now, last))
            // Keep one mark at least a window old (the base), and those after it.
            while s.marks.count > 1, now.micros - s.marks[1].at.micros >= window { s.marks.removeFirst() }
            return now.micros - s.marks[0].at.micros >= window ? s.marks[0] : nil
        }
        guard let base else { return }  // not yet a whole window since the start: "for long" is unknown
        let hours = Double(now.micros - base.at.micros) / 3_600_000_000
        let limit = policy.sustainableRatePerHour
        let counts = try store.countsBySource(after: base.seq)
        let fast = Set(counts.filter { Double($0.value) / hours > limit }.keys)
        let (raised, cleared) = state.withLock { s in
            defer { s.fast = fast }
            return (fast.subtracting(s.fast), s.fast.subtracting(fast))
        }
        for source in raised.sorted() {
            let perHour = Int(Double(counts[source] ?? 0) / hours)
            let message =
                "event source \(source) sent \(perHour) events/h for \(Int(hours * 60)) min, over the \(Int(limit))/h its budget of \(policy.rowBudget) rows keeps for \(RetentionPolicy.text(policy.maxAge)): its events will be deleted before then (a leaked token?)"
            logger.warning("\(message)", metadata: ["source": "\(source)"])
            alarm(ErrorEvent(code: "events.sourceRate", message: message, process: "web", at: now))
        }
        for source in cleared.sorted() {
            logger.info("event source \(source) is back under its sustainable rate", metadata: ["source": "\(source)"])
        }
    }
}

extension EventRetention {
    /// The kept ranges as `hallwatch-web` finds them: exports not failed, and holds not released and not lapsed
    /// in the recording disks' indexes (read only). When the holds cannot be read, the answer is every time:
    /// the pass then deletes nothing rather than what a hold it could not see protects.
    static func productionKept(recordings: RecordingDisks?, exports: ExportJobs?, clocks: any Clocks, logger: Logger)
        -> KeptRanges
    {
        { () async -> [Range<Int64>] in
            let now = clocks.utcNow()
            var ranges: [Range<Int64>] = []
            for job in exports?.list() ?? [] where job.state != .failed {
                ranges.append(job.from.micros..<max(job.from.micros, job.to.micros))
            }
            guard let recordings else { return ranges }
            let holds: [EvidenceHold]? = try? await PlaybackBody.offPool {
                let library = recordings.library()
                // No disk readable (a vanished disk, a box still starting): its holds are unknown.
                if library.readers.isEmpty, let bad = library.unreadable.first { throw bad.error }
                var all: [EvidenceHold] = []
                for r in library.readers { all += try r.reader.holds() }
                return all
            }
            guard let holds else {
                logger.warning("event retention: the recording disks' holds cannot be read; every event is kept")
                return [Int64.min..<Int64.max]
            }
            for h in EvidenceHolds.merge(holds)
            where h.releasedAt == nil && (h.until.map { $0.micros > now.micros } ?? true) {
                ranges.append(h.from.micros..<max(h.from.micros, h.to.micros))
            }
            return ranges
        }
    }
}
