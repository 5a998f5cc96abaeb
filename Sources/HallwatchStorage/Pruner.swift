import Foundation
import HallwatchConfig
import HallwatchCore
import Logging

/// One pruning pass over every disk (the logic of `hallwatch-pruner`; ``RetentionPlanner`` decides,
/// ``RetentionIndex`` deletes by steps D1–D4):
/// 1. open each disk's index (a disk without one, or another box's, is skipped with an alarm);
/// 2. finish deletions a crash left half done (`pendingDelete`);
/// 3. merge the evidence holds of every disk's index and `holds.json`, write the union back to each
///    and re-pin the slots (a hold follows its camera to another disk, and survives a rebuilt index);
/// 4. plan over a snapshot of every disk;
/// 5. unless a dry run, delete what was planned, each slot re-checked inside its own transactions.
public enum Pruner {
    /// What a pass did or (dry run) would do.
    public struct Report: Sendable {
        /// The plan (in a dry run: what a real pass would delete now).
        public var plan = RetentionPlanner.Plan()
        /// Slots deleted by this pass, including deletions resumed from a crash.
        public var deleted: [DeletionRecord] = []
        /// Deletions resumed from an earlier crash (also in ``deleted``).
        public var resumed = 0
        /// Planned deletions not carried out, with the reason (the slot changed under the plan).
        public var skipped: [String] = []
        /// The plan's alarms and per-disk problems.
        public var alarms: [ErrorEvent] = []
        /// Every hold known on the disks after the merge.
        public var holds: [EvidenceHold] = []
        /// The disks after the pass.
        public var disks: [DiskUse] = []
        /// Wall time of the pass, ns (monotonic clock).
        public var elapsedNanos: UInt64 = 0
        /// Whether nothing was changed on purpose.
        public var dryRun = false
        /// Bytes freed by this pass.
        public var bytesFreed: Int64 { deleted.reduce(0) { $0 + $1.bytes } }
    }

    /// Runs one pass at `clocks.utcNow()`.
    /// - Parameters:
    ///   - disks: The box's recording disks.
    ///   - config: Policies (building defaults and per-camera overrides) and the box id.
    ///   - clocks: Box UTC (policy ages, hold lapses, audit times) and the monotonic clock (pass time).
    ///   - dryRun: Plan only: nothing is written, not even resumed deletions or hold merges.
    ///   - logger: Deletions at notice level, problems at error level.
    ///   - publish: Announces each deletion (step D4), e.g. on the bus.
    ///   - afterStep: Called after each deletion step (crash tests stop the process there).
    /// - Returns: The report; problems are in ``Report/alarms``, never thrown: a bad disk must not stop
    ///   the pruning of the others.
    public static func pass(
        disks: [NamedDisk], config: HallwatchConfig, clocks: any Clocks, dryRun: Bool, logger: Logger,
        publish: (DeletionRecord) -> Void = { _ in }, afterStep: DeleteStepHook? = nil
    ) -> Report {
        let started = clocks.monotonicNanos()
        let now = clocks.utcNow()
        var report = Report()
        report.dryRun = dryRun
        func alarm(_ code: String, _ message: String) {
            report.alarms.append(ErrorEvent(code: code, message: message, at: now))
            logger.error("\(message)", metadata: ["code": "\(code)"])
        }
        // 1. Open.
        var indexes: [RetentionIndex] = []
        for d in disks {
            do throws(StorageError) { indexes.append(try RetentionIndex(d, box: config.box, logger: logger)) } catch {
                // Not yet indexed or still being initialised by the recorder: nothing to prune there yet.
                if error.code == .noIndex || error.code == .notInitialized {
                    logger.info("disk not ready yet", metadata: ["disk": "\(d.name)", "why": "\(error.message)"])
                    continue
                }
                alarm(error.code.rawValue, "\(d.name) (\(d.path)): \(error)")
            }
        }
        defer { for i in indexes { i.close() } }
        var usable: [RetentionIndex] = []
        for index in indexes {
            do throws(StorageError) {
                // 2. Resume deletions a crash interrupted.
                if !dryRun {
                    for slot in try index.pendingSlots() {
                        if case .deleted(let r)? = try index.complete(
                            slot: slot, now: now, publish: publish, afterStep: afterStep)
                        {
                            report.deleted.append(r)
                            report.resumed += 1
                        }
                    }
                }
                usable.append(index)
            } catch { alarm(error.code.rawValue, "\(index.name): resuming deletions: \(error)") }
        }
        // 3. Holds: the union of every index and mirror; a release anywhere wins.
        report.holds = EvidenceHolds.merge(usable.flatMap { ((try? $0.holds()) ?? []) + $0.mirroredHolds() })
        if !dryRun {
            for index in usable {
                do throws(StorageError) { _ = try index.syncHolds(report.holds, now: now) } catch {
                    alarm(error.code.rawValue, "\(index.name): syncing evidence holds: \(error)")
                }
            }
        }
        // 4. Plan.
        var uses: [DiskUse] = []
        var planned: [RetentionIndex] = []
        for index in usable {
            do throws(StorageError) {
                uses.append(try index.use())
                planned.append(index)
            } catch {
                alarm(error.code.rawValue, "\(index.name): reading the index: \(error)")
            }
        }
        let planner = RetentionPlanner(config: config)
        report.plan = planner.plan(disks: uses, holds: report.holds, now: now)
        for a in report.plan.alarms { alarm(a.code, a.message) }
        // 5. Delete.
        if !dryRun {
            let byName = Dictionary(planned.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            for p in report.plan.deletions {
                guard let index = byName[p.disk] else { continue }
                do throws(StorageError) {
                    switch try index.delete(p, now: now, publish: publish, afterStep: afterStep) {
                    case .deleted(let r): report.deleted.append(r)
                    case .skipped(let why): report.skipped.append("\(p.disk) slot \(p.slot): \(why)")
                    }
                } catch { alarm(error.code.rawValue, "\(p.disk) slot \(p.slot): deleting: \(error)") }
            }
            uses = planned.compactMap { try? $0.use() }
        }
        report.disks = uses
        report.elapsedNanos = clocks.monotonicNanos() &- started
        return report
    }

    /// The retained state a pass leaves for the status page.
    public static func state(_ r: Report, now: UTCMicros, bytesFreedTotal: Int64) -> PrunerState {
        var cameras: [CameraID: PrunerState.Camera] = [:]
        for s in r.disks.flatMap(\.slots) {
            var c =
                cameras[s.camera]
                ?? PrunerState.Camera(camera: s.camera, oldestRecording: nil, daysRetained: 0, bytes: 0, heldSlots: 0)
            c.bytes += s.bytes
            if s.held { c.heldSlots += 1 }
            if let f = s.from, c.oldestRecording.map({ f < $0 }) ?? true { c.oldestRecording = f }
            cameras[s.camera] = c
        }
        for (k, var c) in cameras {
            if let o = c.oldestRecording {
                c.daysRetained = (Double(now.micros - o.micros) / 86_400e6 * 1000).rounded() / 1000
            }
            cameras[k] = c
        }
        let disks = r.disks.map { d in
            PrunerState.Disk(
                disk: d.name, slotCount: d.slotCount, freeSlots: d.freeSlots, reserveSlots: r.plan.reserve[d.name] ?? 0,
                heldSlots: d.slots.filter(\.held).count)
        }
        return PrunerState(
            lastRunAt: now, lastRunMillis: (Double(r.elapsedNanos) / 1e4).rounded() / 100, dryRun: r.dryRun,
            bytesFreed: r.bytesFreed, slotsFreed: r.deleted.count, bytesFreedTotal: bytesFreedTotal,
            cameras: cameras.values.sorted { $0.camera < $1.camera }, disks: disks, alarms: r.alarms)
    }
}
