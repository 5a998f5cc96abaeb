import Foundation
import HallwatchConfig
import HallwatchCore

/// Decides which slots to delete: pure, over a snapshot of every disk (``DiskUse``), the holds, the
/// policies and a time. No I/O, so tests can feed it any state.
///
/// Deletion is per slot (a slot holds one camera's video; freeing it is one index transaction). The
/// rules, in order, each over what the earlier ones left:
/// 1. **empty**: a closed slot with no indexed video.
/// 2. **maxAge**: a closed slot holding any video older than the camera's `maxAge` (privacy: after a
///    pass no video older than `maxAge` is kept, at the price of up to one slot of younger video).
/// 3. **maxBytes**: while the camera's recorded bytes on all disks exceed its quota, its oldest
///    closed slots (by end), never one with video younger than `minAge`.
/// 4. **reserve**: while a disk has fewer free slots than its reserve, its oldest closed slots of any
///    camera (by end), never one with video younger than `minAge`; when none is left an alarm says so.
///
/// Never planned: an open slot (the camera is writing it), a slot whose `hold` is set, a slot whose
/// video overlaps an active evidence hold of its camera.
public struct RetentionPlanner: Sendable {
    /// Resolved policy per camera (configured cameras; others get ``defaultPolicy``).
    public var policies: [CameraID: RetentionPolicy]
    /// Policy of cameras not in the configuration (removed ones whose video is still on disk).
    public var defaultPolicy: RetentionPolicy
    /// Reserve as recording time of each disk's cameras, µs.
    public var reserveMicros: Int64
    /// Reserve as a slot count (the larger of the two applies).
    public var reserveSlots: Int

    /// A planner for `config`'s retention settings.
    public init(config: HallwatchConfig) {
        var p: [CameraID: RetentionPolicy] = [:]
        // Every stream: a sub stream (`lobby/sub`) has its own limits (``HallwatchConfig/camera(_:)``).
        for c in config.streams { p[c.id] = config.retention.policy(for: c) }
        self.init(
            policies: p, defaultPolicy: config.retention.policy(for: nil),
            reserveMicros: RetentionPolicy.micros(config.retention.reserve), reserveSlots: config.retention.reserveSlots
        )
    }

    /// A planner from its parts.
    public init(
        policies: [CameraID: RetentionPolicy], defaultPolicy: RetentionPolicy, reserveMicros: Int64, reserveSlots: Int
    ) {
        self.policies = policies
        self.defaultPolicy = defaultPolicy
        self.reserveMicros = reserveMicros
        self.reserveSlots = reserveSlots
    }

    /// The outcome of planning.
    public struct Plan: Sendable, Equatable {
        /// In the order they should run.
        public var deletions: [PlannedDeletion] = []
        /// Reserve per disk, slots.
        public var reserve: [String: Int] = [:]
        /// Problems: reserve or quota that cannot be met without breaking `minAge` or a hold.
        public var alarms: [ErrorEvent] = []
    }

    /// The policy of `camera`.
    public func policy(_ camera: CameraID) -> RetentionPolicy { policies[camera] ?? defaultPolicy }

    /// Free slots `disk` should keep: enough for ``reserveMicros`` of its recording cameras at their
    /// measured rates (bytes over media time of their slots on the disk), each camera's need rounded
    /// up to whole slots, and at least ``reserveSlots``.
    public func reserve(of disk: DiskUse) -> Int {
        let capacity = Double(max(1, disk.slotSizeBytes - Int64(SlotHeader.byteCount)))
        let writing = Set(disk.slots.filter(\.isOpen).map(\.camera))
        var need = 0
        for camera in writing.sorted() {
            var bytes: Int64 = 0
            var micros: Int64 = 0
            for s in disk.slots where s.camera == camera {
                guard let f = s.from, let t = s.to, t > f else { continue }
                bytes += s.bytes
                micros += t.micros - f.micros
            }
            guard micros > 0, reserveMicros > 0 else { continue }
            let rate = Double(bytes) / Double(micros)
            need += Int((rate * Double(reserveMicros) / capacity).rounded(.up))
        }
        return max(reserveSlots, need)
    }

    /// Plans a pass at `now` over `disks`, respecting `holds` (inactive ones are ignored).
    public func plan(disks: [DiskUse], holds: [EvidenceHold], now: UTCMicros) -> Plan {
        var plan = Plan()
        let active = Dictionary(grouping: holds.filter { $0.isActive(at: now) }, by: \.camera)
        func pinned(_ s: SlotUse) -> Bool {
            if s.isOpen || s.held { return true }
            guard let f = s.from, let t = s.to else { return false }
            return active[s.camera]?.contains { $0.overlaps(from: f, to: UTCMicros(t.micros + 1)) } ?? false
        }
        var chosen: Set<String> = []
        func key(_ s: SlotUse) -> String { "\(s.disk)/\(s.slot)" }
        func take(_ s: SlotUse, _ rule: String, _ detail: String) {
            chosen.insert(key(s))
            plan.deletions.append(
                PlannedDeletion(
                    disk: s.disk, slot: s.slot, generation: s.generation, camera: s.camera,
                    from: s.from ?? UTCMicros(0), to: s.to ?? s.from ?? UTCMicros(0),
                    bytes: s.bytes, rule: rule, detail: detail))
        }
        let all = disks.flatMap(\.slots)
        let candidates = all.filter { !pinned($0) }.sorted {
            ($0.to ?? UTCMicros(Int64.min), $0.takeSequence, $0.disk) < (
                $1.to ?? UTCMicros(Int64.min), $1.takeSequence, $1.disk
            )
        }

        // 1. Closed slots without video: nothing is lost.
        for s in candidates where s.from == nil { take(s, "empty", "closed slot without indexed video") }
        // 2. maxAge.
        for s in candidates where !chosen.contains(key(s)) {
            let p = policy(s.camera)
            guard let f = s.from, f.micros < now.micros - p.maxAgeMicros else { continue }
            take(s, "maxAge", "video from \(f.iso8601) is older than maxAge \(RetentionPolicy.text(p.maxAge))")
        }
        // An open slot is never deleted. One holding video past maxAge belongs to a camera that writes
        // slowly or has moved to another disk (failover): it closes when the recorder next writes there.
        for s in all where s.isOpen {
            let p = policy(s.camera)
            guard let f = s.from, f.micros < now.micros - p.maxAgeMicros else { continue }
            plan.alarms.append(
                ErrorEvent(
                    code: "retention.openSlotPastMaxAge",
                    message:
                        "\(s.disk) slot \(s.slot) of \(s.camera) is still open and holds video from \(f.iso8601), older than maxAge \(RetentionPolicy.text(p.maxAge)); it is deleted once the recorder closes it",
                    camera: s.camera, at: now))
        }
        // 3. maxBytes, per camera over all disks.
        var bytesOf: [CameraID: Int64] = [:]
        for s in all where !chosen.contains(key(s)) { bytesOf[s.camera, default: 0] += s.bytes }
        for camera in bytesOf.keys.sorted() {
            let p = policy(camera)
            guard let quota = p.maxBytes, bytesOf[camera]! > quota else { continue }
            for s in candidates where s.camera == camera && !chosen.contains(key(s)) {
                guard bytesOf[camera]! > quota else { break }
                guard let t = s.to, t.micros <= now.micros - p.minAgeMicros else { break }
                take(s, "maxBytes", "\(camera) had \(bytesOf[camera]!) bytes, over maxBytes \(quota)")
                bytesOf[camera]! -= s.bytes
            }
            if bytesOf[camera]! > quota {
                plan.alarms.append(
                    ErrorEvent(
                        code: "retention.quotaUnreachable",
                        message:
                            "camera \(camera) keeps \(bytesOf[camera]!) bytes, over maxBytes \(quota): the rest is younger than minAge \(RetentionPolicy.text(p.minAge)), open or held",
                        camera: camera, at: now))
            }
        }
        // 4. Free-slot reserve, per disk.
        for disk in disks {
            let target = reserve(of: disk)
            plan.reserve[disk.name] = target
            var free = disk.freeSlots + plan.deletions.filter { $0.disk == disk.name }.count
            for s in candidates where s.disk == disk.name && !chosen.contains(key(s)) {
                guard free < target else { break }
                let p = policy(s.camera)
                guard let t = s.to, t.micros <= now.micros - p.minAgeMicros else { continue }
                take(s, "reserve", "\(disk.name) had \(free) free slots, reserve \(target)")
                free += 1
            }
            if free < target {
                plan.alarms.append(
                    ErrorEvent(
                        code: "retention.reserveUnreachable",
                        message:
                            "\(disk.name) keeps \(free) free slots, under its reserve of \(target): everything else is younger than minAge, open or held; the recorder's ring reuse will overwrite the oldest unheld video",
                        at: now))
            }
        }
        return plan
    }
}
