import Foundation

extension BusTopics {
    /// Retained ``PrunerState`` of `hallwatch-pruner`.
    public var prunerState: String { "\(root)/pruner/state" }
    /// Non-retained ``DeletionRecord``s, one per slot the pruner deleted (the audit log's lines).
    public var deletions: String { "\(root)/pruner/deletions" }
    /// Retained ``EvidenceHoldList``: every hold known on the box's disks.
    public var holds: String { "\(root)/holds" }
    /// Non-retained ``LowFreeSlotsEvent`` of the recorder for disk `name`; the pruner runs at once.
    public func lowFreeSlots(_ disk: String) -> String { "\(root)/disk/\(disk)/lowFreeSlots" }
    /// Wildcard for every disk's ``LowFreeSlotsEvent``.
    public var allLowFreeSlots: String { "\(root)/disk/+/lowFreeSlots" }
}

/// An evidence hold: a camera's time range that neither the pruner nor ring reuse may delete, even
/// past `maxAge`, until it is released or its `until` passes. Stored in every disk's index (table
/// `evidenceHold`) and in `holds.json` beside it; published in ``EvidenceHoldList``.
public struct EvidenceHold: Codable, Sendable, Equatable {
    /// Hold id, `h-` and 8 hex digits; the same on every disk.
    public var id: String
    /// The camera whose video is held.
    public var camera: CameraID
    /// Start of the held range, box UTC µs (inclusive).
    public var from: UTCMicros
    /// End of the held range, box UTC µs (exclusive); may lie in the future (video still being recorded).
    public var to: UTCMicros
    /// Why, for people (at most 500 bytes).
    public var reason: String
    /// The case or incident number it belongs to (at most 100 bytes).
    public var caseID: String
    /// The hold lapses at this instant (UTC µs); `nil`: until released.
    public var until: UTCMicros?
    /// When it was placed.
    public var createdAt: UTCMicros
    /// When it was released; `nil` while not released.
    public var releasedAt: UTCMicros?

    /// A hold not yet released.
    public init(
        id: String, camera: CameraID, from: UTCMicros, to: UTCMicros, reason: String, caseID: String,
        until: UTCMicros?, createdAt: UTCMicros, releasedAt: UTCMicros? = nil
    ) {
        self.id = id
        self.camera = camera
        self.from = from
        self.to = to
        self.reason = reason
        self.caseID = caseID
        self.until = until
        self.createdAt = createdAt
        self.releasedAt = releasedAt
    }

    /// Whether the hold pins video at `now`: not released and not lapsed.
    public func isActive(at now: UTCMicros) -> Bool { releasedAt == nil && (until.map { $0 > now } ?? true) }

    /// `active`, `expired` or `released` at `now`.
    public func status(at now: UTCMicros) -> String {
        releasedAt != nil ? "released" : isActive(at: now) ? "active" : "expired"
    }

    /// Whether the hold's range overlaps `[from, to)`.
    public func overlaps(from f: UTCMicros, to t: UTCMicros) -> Bool { from < t && f < to }
}

/// Every hold on the box, retained on ``BusTopics/holds``.
public struct EvidenceHoldList: Codable, Sendable, Equatable {
    /// Holds sorted by creation time, released and expired ones included (for the record).
    public var holds: [EvidenceHold]
    /// When the list was published.
    public var at: UTCMicros
    /// A list published at `at`.
    public init(holds: [EvidenceHold], at: UTCMicros) {
        self.holds = holds
        self.at = at
    }
}

/// One deletion by the pruner: a line of the disk's `deletions.log`, a row of its `deletion` table,
/// and a message on ``BusTopics/deletions``.
public struct DeletionRecord: Codable, Sendable, Equatable {
    /// Id of the `deletion` row on that disk (increasing per disk).
    public var id: Int64
    /// Disk name (`disk0`).
    public var disk: String
    /// Slot freed.
    public var slot: Int
    /// The generation whose records were dropped from the index.
    public var generation: UInt64
    /// Whose video it was.
    public var camera: CameraID
    /// Start of the deleted video, box UTC µs (`from` == `to` for a slot with no video).
    public var from: UTCMicros
    /// End of the deleted video, box UTC µs.
    public var to: UTCMicros
    /// Bytes recorded in the slot (headers, init copies and fragments).
    public var bytes: Int64
    /// The rule that fired: `maxAge`, `maxBytes`, `reserve` or `empty`.
    public var rule: String
    /// The rule's numbers in words (`older than maxAge 7d`).
    public var detail: String
    /// When the slot was freed.
    public var deletedAt: UTCMicros
    /// A record from its fields (see each property).
    public init(
        id: Int64, disk: String, slot: Int, generation: UInt64, camera: CameraID, from: UTCMicros, to: UTCMicros,
        bytes: Int64, rule: String, detail: String, deletedAt: UTCMicros
    ) {
        self.id = id
        self.disk = disk
        self.slot = slot
        self.generation = generation
        self.camera = camera
        self.from = from
        self.to = to
        self.bytes = bytes
        self.rule = rule
        self.detail = detail
        self.deletedAt = deletedAt
    }
}

/// The recorder's "free slots fell under the reserve" event on ``BusTopics/lowFreeSlots(_:)``: the
/// pruner runs a pass at once instead of waiting for its period.
public struct LowFreeSlotsEvent: Codable, Sendable, Equatable {
    /// Disk name.
    public var disk: String
    /// Free slots the writer sees now.
    public var freeSlots: Int
    /// The reserve the recorder estimated (slots).
    public var reserveSlots: Int
    /// When it was published.
    public var at: UTCMicros
    /// An event from its fields.
    public init(disk: String, freeSlots: Int, reserveSlots: Int, at: UTCMicros) {
        self.disk = disk
        self.freeSlots = freeSlots
        self.reserveSlots = reserveSlots
        self.at = at
    }
}

/// The pruner's state, retained on ``BusTopics/prunerState`` after every pass (for the status page).
public struct PrunerState: Codable, Sendable, Equatable {
    /// One camera's retained video.
    public struct Camera: Codable, Sendable, Equatable {
        /// The camera.
        public var camera: CameraID
        /// Start of the oldest indexed video on any disk.
        public var oldestRecording: UTCMicros?
        /// Days from the oldest recording to now.
        public var daysRetained: Double
        /// Recorded bytes on all disks.
        public var bytes: Int64
        /// Slots pinned by evidence holds.
        public var heldSlots: Int
        /// A camera's entry from its fields.
        public init(camera: CameraID, oldestRecording: UTCMicros?, daysRetained: Double, bytes: Int64, heldSlots: Int) {
            self.camera = camera
            self.oldestRecording = oldestRecording
            self.daysRetained = daysRetained
            self.bytes = bytes
            self.heldSlots = heldSlots
        }
    }
    /// One disk's slots after the pass.
    public struct Disk: Codable, Sendable, Equatable {
        /// Disk name.
        public var disk: String
        /// Slots on the disk.
        public var slotCount: Int
        /// Free slots after the pass.
        public var freeSlots: Int
        /// The reserve the pass aimed for (slots).
        public var reserveSlots: Int
        /// Slots pinned by evidence holds.
        public var heldSlots: Int
        /// A disk's entry from its fields.
        public init(disk: String, slotCount: Int, freeSlots: Int, reserveSlots: Int, heldSlots: Int) {
            self.disk = disk
            self.slotCount = slotCount
            self.freeSlots = freeSlots
            self.reserveSlots = reserveSlots
            self.heldSlots = heldSlots
        }
    }
    /// When the last pass ran (box UTC).
    public var lastRunAt: UTCMicros
    /// Duration of the last pass, ms.
    public var lastRunMillis: Double
    /// Whether it was a dry run (nothing deleted).
    public var dryRun: Bool
    /// Bytes freed by the last pass.
    public var bytesFreed: Int64
    /// Slots freed by the last pass.
    public var slotsFreed: Int
    /// Bytes freed since the pruner started.
    public var bytesFreedTotal: Int64
    /// Per camera with video on any disk, sorted by id.
    public var cameras: [Camera]
    /// Per disk, in configuration order.
    public var disks: [Disk]
    /// Problems of the last pass (reserve unreachable, unreadable disk), as typed errors.
    public var alarms: [ErrorEvent]
    /// A state from its fields.
    public init(
        lastRunAt: UTCMicros, lastRunMillis: Double, dryRun: Bool, bytesFreed: Int64, slotsFreed: Int,
        bytesFreedTotal: Int64,
        cameras: [Camera], disks: [Disk], alarms: [ErrorEvent]
    ) {
        self.lastRunAt = lastRunAt
        self.lastRunMillis = lastRunMillis
        self.dryRun = dryRun
        self.bytesFreed = bytesFreed
        self.slotsFreed = slotsFreed
        self.bytesFreedTotal = bytesFreedTotal
        self.cameras = cameras
        self.disks = disks
        self.alarms = alarms
    }
}
