import Foundation
import HallwatchCore
import Logging

/// Evidence holds over all of a box's disks (`hallwatchctl hold`): a hold is stored in every disk's
/// index and `holds.json`, and pins the slots of its camera's video in range wherever that video is
/// (<doc:WriteProtocol> § Evidence holds).
public enum EvidenceHolds {
    /// How far past now a hold's range may reach: 24 h, in µs.
    public static let maxFutureMicros: Int64 = 24 * 3_600 * 1_000_000

    /// A new hold id: `h-` and 8 random hex digits.
    public static func newID() -> String { String(format: "h-%08x", UInt32.random(in: 0...UInt32.max)) }

    /// What placing a hold did, per disk.
    public struct Placed: Sendable {
        /// The hold placed.
        public var hold: EvidenceHold
        /// Disk name and its impact.
        public var disks: [(name: String, impact: RetentionIndex.HoldImpact)]
    }

    /// Places `hold` on every disk that has an index, after checking on each that the pinned share
    /// stays within `maxHoldPercent` (nothing is written when one disk refuses).
    /// - Throws: ``StorageError/Code/invalidArgument`` (the share, a range that is empty, ends before it
    ///   starts or reaches more than ``maxFutureMicros`` past `now`, or no disk with an index), or what
    ///   opening or writing an index throws.
    public static func add(
        _ hold: EvidenceHold, disks: [NamedDisk], box: String?, maxHoldPercent: Int, now: UTCMicros,
        logger: Logger
    ) throws(StorageError) -> Placed {
        guard hold.from < hold.to else {
            throw StorageError(.invalidArgument, "the hold's --from must be before its --to")
        }
        if let until = hold.until, until <= now {
            throw StorageError(.invalidArgument, "--until \(until.iso8601) is already past")
        }
        // A range into the future pins every slot the camera takes until it ends (H steps): an open-ended
        // one would pin the whole disk and stop recording. An incident still unfolding is held for the
        // next day at most, and held again later.
        guard hold.to.micros <= now.micros + maxFutureMicros else {
            throw StorageError(
                .invalidArgument,
                "--to \(hold.to.iso8601) is more than 24 h ahead: a hold pins the slots the camera records into until its end, so a far one would fill the disk and stop recording; hold until at most \(now.adding(micros: maxFutureMicros).iso8601) and add another hold later"
            )
        }
        let indexes = try open(disks, box: box, logger: logger)
        defer { for i in indexes { i.close() } }
        guard !indexes.isEmpty else {
            throw StorageError(.invalidArgument, "no recording disk has an index yet; nothing to hold")
        }
        for i in indexes { _ = try i.addHold(hold, maxHoldPercent: maxHoldPercent, now: now, commit: false) }
        var placed = Placed(hold: hold, disks: [])
        for i in indexes {
            placed.disks.append((i.name, try i.addHold(hold, maxHoldPercent: maxHoldPercent, now: now, commit: true)))
        }
        return placed
    }

    /// Releases hold `id` on every disk. Returns whether any disk knew it.
    public static func release(_ id: String, disks: [NamedDisk], box: String?, now: UTCMicros, logger: Logger)
        throws(StorageError) -> Bool
    {
        let indexes = try open(disks, box: box, logger: logger)
        defer { for i in indexes { i.close() } }
        var known = false
        for index in indexes where try index.releaseHold(id, now: now) { known = true }
        return known
    }

    /// Every hold on the disks (merged by id; a release on any disk wins), oldest first.
    public static func list(disks: [NamedDisk], box: String?, logger: Logger) throws(StorageError) -> [EvidenceHold] {
        let indexes = try open(disks, box: box, logger: logger)
        defer { for i in indexes { i.close() } }
        var all: [EvidenceHold] = []
        for index in indexes { all += try index.holds() + index.mirroredHolds() }
        return merge(all)
    }

    /// One hold per id, a release on any copy winning, oldest first.
    public static func merge(_ holds: [EvidenceHold]) -> [EvidenceHold] {
        var merged: [String: EvidenceHold] = [:]
        for h in holds {
            if var old = merged[h.id] {
                old.releasedAt = old.releasedAt ?? h.releasedAt
                merged[h.id] = old
            } else {
                merged[h.id] = h
            }
        }
        return merged.values.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
    }

    /// The indexes of `disks`, skipping disks the recorder has not indexed yet.
    static func open(_ disks: [NamedDisk], box: String?, logger: Logger) throws(StorageError) -> [RetentionIndex] {
        var out: [RetentionIndex] = []
        for d in disks {
            do throws(StorageError) { out.append(try RetentionIndex(d, box: box, logger: logger)) } catch {
                if error.code == .noIndex { continue }
                for i in out { i.close() }
                throw error
            }
        }
        return out
    }
}
