import Foundation
import HallwatchConfig
import HallwatchCore
import Logging
import Synchronization

/// Door and alarm events (issue 16): checks, stores, publishes and acts on the events sources POST to
/// `/api/v1/events`. Owned by `hallwatch-web` (its store is `<stateDirectory>/events.sqlite`).
///
/// Steps for one accepted event (``ingest(_:grant:address:)``):
/// 1. The token's bounds: the event's `source` is the token's source (else 403 `events.source`), its type and
///    door are ones the token may send (403 `events.scope`).
/// 2. The door: `subject` naming a configured door (a `subject` naming none is refused, 400 `events.subject`),
///    else `doorref` matching a door's reference for this source (an unknown reference is stored without a door:
///    a panel has doors the box has no camera on).
/// 3. Two times, never merged: the event's `time` and the receive time; an event received more than
///    ``Limits/lateAfter`` after its time is stored and flagged late. Live events feed the source's clock
///    skew estimate (``SkewTracker``); beyond ``Limits/maxSkew`` an `events.clockSkew` alarm is raised.
/// 4. Stored unique by (source, id): an identical repeat answers the first receipt, other content is kept as a
///    conflict and audited. A request's events (one, or a batch of up to 500) are stored in one transaction.
/// 5. A type in the door's `holdOn` places an evidence hold over [time − preRoll, time + postRoll] on each
///    direct camera (audited).
/// 6. Published (new events only): the document on `hallwatch/v1/<box>/events/<type>` (not retained); each
///    touched door's state, retained, on `hallwatch/v1/<box>/doors/<door>`, once per request. The door state
///    is kept in memory (read from the store once per door), so an event costs no door-state read.
public final class EventService: Sendable {
    /// Bounds of the ingest.
    public struct Limits: Sendable {
        /// Events per second a source may send, sustained.
        public var ratePerSecond: Double = 2_000
        /// Events a source may send at once (a catch-up batch).
        public var burst: Double = 5_000
        /// Received later than this after its time: flagged late, and not used for the skew estimate.
        public var lateAfter: Duration = .seconds(30)
        /// A source clock off by more than this raises `events.clockSkew`.
        public var maxSkew: Duration = .seconds(2)
        /// An event whose time is further ahead of the box's clock than this is refused (400 `events.future`):
        /// it would sit at the head of every timeline, move the source's cursor past every real event and keep
        /// its skew alarm up. A day covers any time zone mistake a panel can make.
        public var maxAhead: Duration = .seconds(24 * 3600)
        /// An event older than this is refused (400 `events.tooOld`): the box no longer keeps video of its time,
        /// and event retention would delete it at its next pass (`0000-01-01` used to answer 201 and vanish).
        /// The web sets it to the longest camera retention (``EventRetention/Policy/maxAge(config:)``).
        public var maxBehind: Duration = .seconds(400 * 24 * 3600)
        /// Events in one batch.
        public var maxBatch = 500
        /// Bytes of one request body (a single event: 64 KiB; a batch: this).
        public var maxBatchBytes = 4 << 20
        /// Whether a credential holder's name (`data.holder`) is kept (the building's choice).
        public var keepHolderNames = false
        public init() {}
    }

    /// What a hold placement did: the hold ids placed.
    public typealias HoldPlacer =
        @Sendable (_ cameras: [CameraID], _ from: UTCMicros, _ to: UTCMicros, _ reason: String, _ caseID: String)
        async throws -> [String]
    /// Publishes `payload` on `topic`.
    public typealias Publisher = @Sendable (_ topic: String, _ payload: [UInt8], _ retain: Bool) -> Void

    public let store: EventStore
    public let limits: Limits
    /// The configured doors now (a list fixed at start, or the configuration file's as it changes).
    var doors: [DoorConfig] { doorSource() }
    let doorSource: @Sendable () -> [DoorConfig]
    let box: String
    let clocks: any Clocks
    let audit: AuditLog
    let publisher: Publisher
    let placeHold: HoldPlacer?
    let logger: Logger
    let buckets = Mutex<[String: TokenBucket]>([:])
    let skew = Mutex<[String: SkewTracker]>([:])
    let doorMemory = Mutex<[String: DoorMemory]>([:])

    public init(
        store: EventStore, doors: [DoorConfig], box: String, clocks: any Clocks, audit: AuditLog,
        limits: Limits = Limits(), publish: @escaping Publisher = { _, _, _ in }, placeHold: HoldPlacer? = nil,
        liveDoors: (@Sendable () -> [DoorConfig])? = nil, logger: Logger = Logger(label: "hallwatch-web.events")
    ) {
        self.store = store
        self.doorSource = liveDoors ?? { doors }
        self.box = box
        self.clocks = clocks
        self.audit = audit
        self.limits = limits
        self.publisher = publish
        self.placeHold = placeHold
        self.logger = logger
    }

    /// The answer to one event of a request.
    public struct Answer: Sendable {
        /// 201 stored, 200 identical repeat, 409 conflict, or a refusal's status.
        public var status: Int
        public var receipt: EventReceipt? = nil
        public var refusal: EventRefusal? = nil
    }

    // MARK: - admission

    /// Takes `count` events from the source's token bucket.
    /// - Returns: `nil` when admitted, else the seconds to wait (for `Retry-After`, at least 1).
    public func admit(source: String, count: Int) -> Int? {
        let now = clocks.monotonicNow()
        return buckets.withLock { b in
            var bucket = b[source] ?? TokenBucket(tokens: limits.burst, at: now)
            let wait = bucket.take(Double(count), rate: limits.ratePerSecond, burst: limits.burst, now: now)
            b[source] = bucket
            return wait
        }
    }

    /// Checks what the grant allows for `event` from `address` (step 1).
    /// - Throws: ``EventRefusal`` 403.
    func authorise(_ event: IncomingEvent, door: DoorConfig?, grant: EventGrant) throws(EventRefusal) {
        guard event.source == grant.source.name else {
            throw EventRefusal(403, "events.source", "this token belongs to source '\(grant.source.name)'")
        }
        if !grant.source.types.isEmpty, !grant.source.types.contains(event.type) {
            throw EventRefusal(403, "events.scope", "this token may not send type '\(event.type)'")
        }
        if !grant.source.doors.isEmpty, !grant.source.doors.contains(door?.id ?? event.subject ?? "") {
            throw EventRefusal(403, "events.scope", "this token may not send events of that door")
        }
    }

    /// The door an event concerns (step 2).
    func door(of event: IncomingEvent) -> DoorConfig? {
        if let s = event.subject, let d = doors.first(where: { $0.id == s }) { return d }
        if let r = event.doorRef { return doors.first { $0.matches(source: event.source, ref: r) } }
        return nil
    }

    // MARK: - ingest

    /// Checks, stores, publishes and acts on one event (the steps above). Never throws for the event's
    /// faults: they come back as the answer's refusal.
    /// - Throws: storage and audit errors (the request then fails 500 and the adapter retries).
    public func ingest(_ value: JSONValue, grant: EventGrant, address: String) async throws -> Answer {
        try await ingest([value], grant: grant, address: address)[0]
    }

    /// Checks, stores, publishes and acts on the events of one request (the steps above), one answer per event
    /// in order. The batch is stored in one transaction; its events share one receive time.
    /// - Throws: storage and audit errors (the request then fails 500 and the adapter retries the batch, whose
    ///   stored events then answer as identical repeats).
    public func ingest(_ values: [JSONValue], grant: EventGrant, address: String) async throws -> [Answer] {
        let received = clocks.utcNow()
        var answers = [Answer](repeating: Answer(status: 500), count: values.count)
        var accepted: [(index: Int, event: IncomingEvent, door: DoorConfig?, placement: EventStore.Placement)] = []
        for (i, value) in values.enumerated() {
            switch check(value, grant: grant) {
            case .failure(let refusal): answers[i] = Answer(status: refusal.status, refusal: refusal)
            case .success(let (event, _)) where event.time.micros - received.micros > Self.micros(limits.maxAhead):
                let refusal = EventRefusal(
                    400, "events.future",
                    "time \(ISO8601.format(event.time)) is more than \(Int(limits.maxAhead.components.seconds / 3600)) h ahead of the box's clock (\(ISO8601.format(received)))"
                )
                answers[i] = Answer(status: refusal.status, refusal: refusal)
            case .success(let (event, _)) where received.micros - event.time.micros > Self.micros(limits.maxBehind):
                let days = limits.maxBehind.components.seconds / 86_400
                let refusal = EventRefusal(
                    400, "events.tooOld",
                    "time \(ISO8601.format(event.time)) is older than the \(days) days this box keeps video and events")
                answers[i] = Answer(status: refusal.status, refusal: refusal)
            case .success(let (event, door)):
                var cameras = (door?.direct ?? []) + (door?.indirect ?? [])
                for c in event.cameras where !cameras.contains(c) { cameras.append(c) }
                let placement = EventStore.Placement(
                    door: door?.id, cameras: cameras.map(\.rawValue),
                    directCameras: (door?.direct ?? []).map(\.rawValue),
                    preRollMicros: door.map { Self.micros($0.preRoll) } ?? 0,
                    late: received.micros - event.time.micros > Self.micros(limits.lateAfter))
                accepted.append((i, event, door, placement))
            }
        }
        let outcomes = try store.store(accepted.map { ($0.event, $0.placement) }, received: received)
        var touched: [String: DoorView] = [:]
        defer { publishDoors(touched) }
        for (a, outcome) in zip(accepted, outcomes) {
            let event = a.event
            switch outcome {
            case .repeated(let receipt):
                answers[a.index] = Answer(status: 200, receipt: receipt)
            case .conflict(let receipt):
                try await audit.record(
                    actor: "source:\(event.source)", address: address, action: "event.conflict",
                    object: "\(event.source)/\(event.id)",
                    details: "content differs from event \(receipt.seq); kept both")
                answers[a.index] = Answer(
                    status: 409, receipt: receipt,
                    refusal: EventRefusal(
                        409, "events.conflict", "event \(event.id) of \(event.source) was stored with other content"))
            case .stored(let first):
                if !a.placement.late {
                    noteSkew(source: event.source, delayMicros: received.micros - event.time.micros)
                }
                var receipt = first
                if let door = a.door, door.holdOn.contains(event.type), !door.direct.isEmpty {
                    receipt.holds = await hold(event: event, door: door, seq: receipt.seq, address: address)
                }
                publish(event)
                if let door = a.door, let view = try? remember(Self.stored(event, a.placement, receipt), door: door) {
                    touched[door.id] = view
                }
                answers[a.index] = Answer(status: 201, receipt: receipt)
            }
        }
        return answers
    }

    /// The stored row of a just-stored event, as the store would read it back.
    static func stored(_ e: IncomingEvent, _ p: EventStore.Placement, _ r: EventReceipt) -> StoredEvent {
        StoredEvent(
            seq: r.seq, source: e.source, id: e.id, type: e.type, time: r.time, receivedAt: r.receivedAt, late: r.late,
            door: p.door, subject: e.subject, sequence: e.sequence, cameras: p.cameras, directCameras: p.directCameras,
            preRollSeconds: Double(p.preRollMicros) / 1e6, holds: r.holds)
    }

    /// Steps 1–2: the event checked, its door, and what the grant allows.
    func check(_ value: JSONValue, grant: EventGrant) -> Result<(IncomingEvent, DoorConfig?), EventRefusal> {
        Result { () throws(EventRefusal) -> (IncomingEvent, DoorConfig?) in
            let event = try IncomingEvent(value, keepHolder: limits.keepHolderNames)
            let door = self.door(of: event)
            try authorise(event, door: door, grant: grant)
            // `subject` is the box's own vocabulary: one naming no door is a mistyped or stale adapter. Stored, it
            // would link no camera and place no hold (a door.forced kept with no video held), yet answer 201.
            if let s = event.subject, door?.id != s {
                throw EventRefusal(
                    400, "events.subject",
                    "subject '\(s)' names no door of this box (doors: in the configuration); send a configured door id, or the panel's own reference as doorref"
                )
            }
            return (event, door)
        }
    }

    /// Publishes a new event (step 6). Best effort: the store has it already.
    func publish(_ event: IncomingEvent) {
        publisher("\(BusTopics(box: box).root)/events/\(event.type)", Array(event.canonicalDocument), false)
    }

    /// Publishes, retained, the state of each door a request's events touched: once per door per request
    /// (a batch of 500 events at one door is one publication).
    func publishDoors(_ views: [String: DoorView]) {
        let root = BusTopics(box: box).root
        for (id, view) in views.sorted(by: { $0.key < $1.key }) {
            if let data = try? BusCoding.encoder().encode(view) { publisher("\(root)/doors/\(id)", Array(data), true) }
        }
    }

    // MARK: - door state

    /// A door's newest event and newest state-telling event (each by event time, then store order): read from
    /// the store once per door, then kept up to date here — the web is the store's only writer of events, so
    /// an event costs no read of the door's state.
    struct DoorMemory: Sendable {
        var last: StoredEvent?
        var state: StoredEvent?

        /// Whether `a` is newer than `b` (event time, then store order).
        static func newer(_ a: StoredEvent, than b: StoredEvent?) -> Bool {
            guard let b else { return true }
            let (ta, tb) = (ISO8601.parse(a.time)?.micros ?? 0, ISO8601.parse(b.time)?.micros ?? 0)
            return ta != tb ? ta > tb : a.seq > b.seq
        }
    }

    /// The memory of `door`, read from the store the first time.
    func memory(_ door: String) throws -> DoorMemory {
        if let m = doorMemory.withLock({ $0[door] }) { return m }
        let loaded = DoorMemory(
            last: try store.lastEvents(door: door).last, state: try store.lastStateEvent(door: door))
        return doorMemory.withLock { all in
            if let m = all[door] { return m }  // another request loaded it meanwhile
            all[door] = loaded
            return loaded
        }
    }

    /// Notes a new event of `door` (a late one does not turn the state back) and returns the door's view.
    func remember(_ e: StoredEvent, door: DoorConfig) throws -> DoorView {
        _ = try memory(door.id)
        let m = doorMemory.withLock { all -> DoorMemory in
            var m = all[door.id] ?? DoorMemory()
            if DoorMemory.newer(e, than: m.last) { m.last = e }
            if EventTypes.doorState(e.type) != nil, DoorMemory.newer(e, than: m.state) { m.state = e }
            all[door.id] = m
            return m
        }
        return view(door, m)
    }

    func view(_ d: DoorConfig, _ m: DoorMemory) -> DoorView {
        DoorView(
            id: d.id, name: d.name, state: m.state.flatMap { EventTypes.doorState($0.type) } ?? "unknown",
            direct: d.direct.map(\.rawValue), indirect: d.indirect.map(\.rawValue), lastEvent: m.last)
    }

    /// Places the evidence hold of a `holdOn` event (step 5) and audits it; a failure is audited and logged,
    /// the event stays stored.
    func hold(event: IncomingEvent, door: DoorConfig, seq: Int64, address: String) async -> [String] {
        guard let placeHold else { return [] }
        let from = event.time.adding(micros: -Self.micros(door.preRoll))
        let to = event.time.adding(micros: Self.micros(door.postRoll))
        let reason = "\(event.type) at door \(door.id) (\(event.source) event \(event.id))"
        let caseID = "event-\(seq)"
        let object = door.direct.map(\.rawValue).joined(separator: ",")
        do {
            let ids = try await placeHold(door.direct, from, to, reason, caseID)
            try? store.setHolds(seq: seq, holds: ids)
            _ = try? await audit.record(
                actor: "source:\(event.source)", address: address, action: "event.hold", object: object,
                details: "\(ids.joined(separator: ",")) \(from.iso8601) – \(to.iso8601) \(reason)")
            return ids
        } catch {
            logger.error("event hold failed", metadata: ["door": "\(door.id)", "error": "\(error)"])
            _ = try? await audit.record(
                actor: "source:\(event.source)", address: address, action: "event.holdFailed", object: object,
                details: "\(reason): \(error)")
            return []
        }
    }

    // MARK: - clock skew

    /// Feeds the source's skew estimate; raises or clears its alarm.
    func noteSkew(source: String, delayMicros: Int64) {
        let limit = Self.micros(limits.maxSkew)
        let change: (Bool, Double)? = skew.withLock { all in
            var t = all[source] ?? SkewTracker()
            let before = t.alarm
            t.add(delayMicros, limitMicros: limit)
            all[source] = t
            return t.alarm != before ? (t.alarm, Double(t.estimateMicros ?? 0) / 1e6) : nil
        }
        guard let change else { return }
        let (alarm, seconds) = change
        let message =
            alarm
            ? "event source \(source)'s clock is off by \(String(format: "%.1f", seconds)) s (more than 2 s)"
            : "event source \(source)'s clock is back within 2 s"
        logger.log(level: alarm ? .warning : .info, "\(message)", metadata: ["source": "\(source)"])
        if alarm {
            let e = ErrorEvent(code: "events.clockSkew", message: message, process: "web", at: clocks.utcNow())
            if let data = try? BusCoding.encoder().encode(e) {
                publisher(BusTopics(box: box).errors, Array(data), false)
            }
        }
    }

    /// Where the source's adapter resumes, with its skew estimate.
    public func cursor(source: String) throws -> EventCursor {
        var c = try store.cursor(source: source)
        let t = skew.withLock { $0[source] }
        c.clockSkewSeconds = t?.estimateMicros.map { Double($0) / 1e6 }
        c.clockSkewAlarm = t?.alarm ?? false
        return c
    }

    /// The configured doors with their state and newest event.
    public func doorViews() throws -> [DoorView] {
        try doors.map { d in view(d, try memory(d.id)) }
    }

    static func micros(_ d: Duration) -> Int64 { d.nanoseconds / 1000 }
}

/// A token bucket (rate, burst) on the monotonic clock.
struct TokenBucket: Sendable {
    var tokens: Double
    var at: MonotonicInstant

    /// Takes `n`; `nil` when there were enough, else whole seconds until there will be (≥ 1).
    mutating func take(_ n: Double, rate: Double, burst: Double, now: MonotonicInstant) -> Int? {
        let elapsed = Double((now - at).nanoseconds) / 1e9
        tokens = min(burst, tokens + max(0, elapsed) * rate)
        at = now
        if tokens >= n {
            tokens -= n
            return nil
        }
        return max(1, Int(((min(n, burst) - tokens) / rate).rounded(.up)))
    }
}

/// A source's clock offset from its live events: the smallest (receive − event) delay of the last 32, which
/// is the offset plus the shortest transport delay (the NTP idea: the fastest sample is the most honest).
/// Positive: the source's clock is behind; negative: ahead. Needs 3 samples before it judges.
struct SkewTracker: Sendable {
    var delays: [Int64] = []
    var alarm = false
    static let window = 32

    var estimateMicros: Int64? { delays.count >= 3 ? delays.min() : nil }

    mutating func add(_ delay: Int64, limitMicros: Int64) {
        delays.append(delay)
        if delays.count > Self.window { delays.removeFirst(delays.count - Self.window) }
        if let e = estimateMicros { alarm = abs(e) > limitMicros }
    }
}
