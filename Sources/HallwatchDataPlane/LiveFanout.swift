import Dispatch
import HallwatchCore
import Synchronization

/// One unit of live media, shared by every viewer of its camera: an init segment or a fragment, and when the
/// recorder received it. A class, so that a hundred viewers hold one copy (`Protocol.md`, step L3).
public final class LiveUnit: Sendable {
    /// The segment as the capture worker sent it (ISO/IEC 14496-12 `ftyp`+`moov`, or `moof`+`mdat`).
    public let segment: MediaSegment
    /// When the recorder read it off the data plane: box UTC, microseconds since the epoch. Carried to the
    /// browser with each chunk so the page can measure its own latency.
    public let receivedMicros: Int64

    /// What a subscriber made of this unit for its own viewers, made once (``memoized(_:)``).
    private let memo = Mutex<(any Sendable)?>(nil)

    /// Whether this is a capture worker's hand-over of per-frame chunks (P6) rather than a stored fragment.
    public let isChunk: Bool

    /// A unit of `segment`, received at `receivedMicros` (µs since the epoch); `isChunk` for per-frame chunks.
    public init(_ segment: MediaSegment, receivedMicros: Int64, isChunk: Bool = false) {
        self.segment = segment
        self.receivedMicros = receivedMicros
        self.isChunk = isChunk
    }

    /// The subscriber's own form of this unit — the web's WebSocket message — made by `make` for the first
    /// viewer that sends it and shared by every other (L6: a hundred browsers of one camera hold one message,
    /// not a hundred copies of a keyframe). One form per unit: every caller must ask for the same type `T`.
    public func memoized<T: Sendable>(_ make: () -> T) -> T {
        memo.withLock { m in
            if let made = m as? T { return made }
            let made = make()
            m = made
            return made
        }
    }

    /// Whether this is an init segment.
    public var isInit: Bool { segment.meta.kind == .initSegment }
    /// Whether this fragment starts with a keyframe (a viewer may start here).
    public var isKeyframe: Bool { segment.meta.kind == .fragment && segment.meta.keyframe }
}

/// What a live viewer receives (`Protocol.md`, L4): the init segment, media, or a note that media was skipped.
public enum LiveEvent: Sendable {
    /// An init segment: the first thing a viewer gets, and again when the codec parameters change.
    case initSegment(LiveUnit)
    /// A fragment (or, later, a per-frame chunk) of the current init segment's run.
    case media(LiveUnit)
    /// The viewer fell behind; `skipped` units (those queued, and the one that did not fit) were not sent, nor
    /// will be any until the next keyframe, with which the media resumes.
    case drop(skipped: Int)

    var bytes: Int {
        switch self {
        case .initSegment(let u), .media(let u): u.segment.payload.count
        case .drop: 0
        }
    }
}

/// The ring of one camera's recent media (L3): the current init segment and the units since the most recent
/// keyframe, so that a new viewer's first picture needs no wait for the next keyframe. Bounded: when the
/// units since a keyframe pass ``maxBytes`` (a camera with a very long GOP), the oldest are dropped and new
/// viewers wait for the next keyframe.
public struct LiveRing: Sendable {
    /// The current init segment, `nil` before the camera sent one.
    public private(set) var initUnit: LiveUnit?
    /// Fragments from the most recent keyframe on, oldest first; empty when none is kept.
    public private(set) var sinceKeyframe: [LiveUnit] = []
    private var bytes = 0
    /// Most bytes of media kept (default 16 MiB: a 4 s GOP at 32 Mbit/s).
    public let maxBytes: Int

    public init(maxBytes: Int = 16 << 20) { self.maxBytes = maxBytes }

    /// Takes in the next unit of the camera.
    public mutating func append(_ unit: LiveUnit) {
        if unit.isInit {
            initUnit = unit
            sinceKeyframe.removeAll()
            bytes = 0
            return
        }
        if unit.isKeyframe {
            sinceKeyframe.removeAll()
            bytes = 0
        } else if sinceKeyframe.isEmpty {
            return  // no keyframe kept: a viewer cannot start here
        }
        sinceKeyframe.append(unit)
        bytes += unit.segment.payload.count
        if bytes > maxBytes {
            sinceKeyframe.removeAll()
            bytes = 0
        }
    }

    /// What a new viewer gets first: the init segment, then the media from the most recent keyframe.
    public var startEvents: [LiveEvent] {
        guard let initUnit else { return [] }
        return [.initSegment(initUnit)] + sinceKeyframe.map { .media($0) }
    }
}

/// One viewer's bounded queue (L5). Offering never blocks; a viewer whose queue is full — more than
/// ``maxBytes`` queued, or, with ``maxLagMicros``, media queued that the recorder received more than that long
/// before the newest — loses its queued media, is sent a ``LiveEvent/drop(skipped:)``, and receives nothing
/// more until the next keyframe (or init segment). The consumer waits with ``next(timeout:)`` (a thread) or
/// ``next()`` (a task).
public final class LiveQueue: Sendable {
    struct State {
        var events: [LiveEvent] = []
        var head = 0
        var bytes = 0
        var skipping = false
        var closed = false
        /// Bytes of the start events still queued: a new viewer's init segment and GOP so far may exceed the
        /// bound by themselves (a long GOP at a high bit rate) without counting as falling behind.
        var allowance = 0
        var waiter: CheckedContinuation<LiveEvent?, Never>?
        var drops = 0
        /// The receive time of the newest media offered, µs.
        var newestMicros: Int64 = 0
        /// Where the time bound starts counting, µs: the newest media's receive time when the start events were
        /// all taken, so media queued while a long GOP went out is not counted as lag from before then.
        var lagFrom: Int64 = 0
    }
    private let state = Mutex(State())
    private let signal = DispatchSemaphore(value: 0)
    /// Most bytes queued before the viewer is skipped to the next keyframe.
    public let maxBytes: Int
    /// Most time, µs of the recorder's receive clock, between the oldest queued media and the newest before
    /// the viewer is skipped; `nil`: bytes alone bound the queue. A person watching live wants the picture
    /// now: on a link slower than the stream, a byte bound alone lets the delay grow to the bound's worth of
    /// media (seconds) before the first skip; a time bound keeps it near this.
    public let maxLagMicros: Int64?

    /// A queue holding at most `maxBytes` of media (default 8 MiB: 16 s at 4 Mbit/s) and, when given, at most
    /// `maxLagMicros` µs of it.
    public init(maxBytes: Int = 8 << 20, maxLagMicros: Int64? = nil) {
        self.maxBytes = maxBytes
        self.maxLagMicros = maxLagMicros
    }

    /// Queues a new viewer's first events (L4: the init segment and the media since the keyframe); they do not
    /// count against the bound.
    public func start(with events: [LiveEvent]) {
        state.withLock { s in
            for e in events {
                s.events.append(e)
                s.bytes += e.bytes
                s.allowance += e.bytes
            }
        }
        signal.signal()
    }

    /// Queues `event` unless the viewer is being skipped; never blocks.
    public func offer(_ event: LiveEvent) {
        let resume: (CheckedContinuation<LiveEvent?, Never>, LiveEvent)? = state.withLock { s in
            guard !s.closed else { return nil }
            var resumesHere = true
            switch event {
            case .initSegment: s.skipping = false
            case .media(let u):
                if s.skipping {
                    guard u.isKeyframe else { return nil }
                    s.skipping = false
                }
                resumesHere = u.isKeyframe
            case .drop: break
            }
            if s.bytes + event.bytes > maxBytes + s.allowance || lagging(s, behind: event), s.events.count > s.head {
                // L5. Behind: forget what is queued, tell the viewer, resume at a keyframe (this one, if it is).
                // An init segment among them is kept: the media resumed after the drop needs it.
                let keptInit = s.events[s.head...].last { if case .initSegment = $0 { true } else { false } }
                let skipped = s.events.count - s.head + (resumesHere ? 0 : 1) - (keptInit == nil ? 0 : 1)
                s.events.removeAll()
                s.head = 0
                s.bytes = 0
                s.allowance = 0
                s.drops += 1
                s.events.append(.drop(skipped: skipped))
                if let keptInit {
                    s.events.append(keptInit)
                    s.bytes = keptInit.bytes
                }
                if !resumesHere {
                    s.skipping = true
                    return Self.popWaiter(&s)
                }
            }
            s.events.append(event)
            s.bytes += event.bytes
            if case .media(let u) = event { s.newestMicros = u.receivedMicros }
            return Self.popWaiter(&s)
        }
        if let (waiter, e) = resume { waiter.resume(returning: e) }
        signal.signal()
    }

    /// Whether `event` would sit more than ``maxLagMicros`` after the oldest media queued (not counting a new
    /// viewer's start events, which are as old as its GOP by design, nor the time they took to go out).
    private func lagging(_ s: State, behind event: LiveEvent) -> Bool {
        guard let maxLagMicros, s.allowance == 0, case .media(let newest) = event else { return false }
        for e in s.events[s.head...] {
            if case .media(let oldest) = e {
                return newest.receivedMicros - max(oldest.receivedMicros, s.lagFrom) > maxLagMicros
            }
        }
        return false
    }

    /// Hands the oldest event to a waiting task, if one waits.
    private static func popWaiter(_ s: inout State) -> (CheckedContinuation<LiveEvent?, Never>, LiveEvent)? {
        guard let w = s.waiter, let e = pop(&s) else { return nil }
        s.waiter = nil
        return (w, e)
    }

    private static func pop(_ s: inout State) -> LiveEvent? {
        guard s.head < s.events.count else { return nil }
        let e = s.events[s.head]
        s.head += 1
        s.bytes -= e.bytes
        if s.allowance > 0 {
            s.allowance = max(0, s.allowance - e.bytes)
            if s.allowance == 0 { s.lagFrom = s.newestMicros }
        }
        if s.head == s.events.count || s.head > 64 {
            s.events.removeFirst(s.head)
            s.head = 0
        }
        return e
    }

    /// Ends the queue: waiting consumers get `nil`, later offers are ignored.
    public func close() {
        let w = state.withLock { s in
            s.closed = true
            defer { s.waiter = nil }
            return s.waiter
        }
        w?.resume(returning: nil)
        signal.signal()
    }

    /// Whether ``close()`` was called.
    public var isClosed: Bool { state.withLock { $0.closed } }
    /// How many times this viewer was skipped to a keyframe.
    public var drops: Int { state.withLock { $0.drops } }

    /// The next event, waiting up to `timeout` on this thread. `.none` after the timeout, `.some(nil)` once
    /// closed and drained.
    public func next(timeout: Duration) -> LiveEvent?? {
        let deadline = DispatchTime.now() + .nanoseconds(Int(timeout / .nanoseconds(1)))
        while true {
            let (e, closed) = state.withLock { s in (Self.pop(&s), s.closed) }
            if let e { return .some(e) }
            if closed { return .some(nil) }
            if signal.wait(timeout: deadline) == .timedOut { return .none }
        }
    }

    /// The next event, suspending the task until one is offered; `nil` once closed.
    public func next() async -> LiveEvent? {
        if let ready = state.withLock({ s -> LiveEvent?? in
            if let e = Self.pop(&s) { return .some(e) }
            return s.closed ? .some(nil) : .none
        }) {
            return ready
        }
        return await withCheckedContinuation { c in
            let now: LiveEvent?? = state.withLock { s in
                if let e = Self.pop(&s) { return .some(e) }
                if s.closed { return .some(nil) }
                s.waiter = c
                return .none
            }
            if let now { c.resume(returning: now) }
        }
    }
}

/// One camera's live media and its viewers (L3–L5): a ``LiveRing`` and a ``LiveQueue`` per viewer. The
/// recorder keeps one per camera for the live socket's subscribers; the web keeps one per camera for its
/// browsers. ``publish(_:)`` takes a lock for as long as it takes to append a reference to each queue: the
/// publisher (the recorder's capture connection) never waits for a viewer.
public final class LiveFanout: Sendable {
    struct State {
        var ring: LiveRing
        var viewers: [ObjectIdentifier: LiveQueue] = [:]
    }
    private let state: Mutex<State>
    /// The byte bound of each new viewer's queue.
    public let queueBytes: Int
    /// The time bound of each new viewer's queue (``LiveQueue/maxLagMicros``), µs; `nil` for none.
    public let queueLagMicros: Int64?

    /// A fanout keeping up to `ringBytes` since a keyframe, each viewer's queue up to `queueBytes` and, when
    /// given, `queueLagMicros` µs.
    public init(ringBytes: Int = 16 << 20, queueBytes: Int = 8 << 20, queueLagMicros: Int64? = nil) {
        state = Mutex(State(ring: LiveRing(maxBytes: ringBytes)))
        self.queueBytes = queueBytes
        self.queueLagMicros = queueLagMicros
    }

    /// Hands `unit` to the ring and to every viewer.
    public func publish(_ unit: LiveUnit) {
        state.withLock { s in
            s.ring.append(unit)
            let event: LiveEvent = unit.isInit ? .initSegment(unit) : .media(unit)
            for q in s.viewers.values { q.offer(event) }
        }
    }

    /// A new viewer: its queue starts with the init segment and the media since the most recent keyframe.
    public func subscribe() -> LiveQueue {
        let q = LiveQueue(maxBytes: queueBytes, maxLagMicros: queueLagMicros)
        state.withLock { s in
            q.start(with: s.ring.startEvents)
            s.viewers[ObjectIdentifier(q)] = q
        }
        return q
    }

    /// Removes and closes `queue`.
    public func unsubscribe(_ queue: LiveQueue) {
        _ = state.withLock { $0.viewers.removeValue(forKey: ObjectIdentifier(queue)) }
        queue.close()
    }

    /// Closes every viewer's queue (shutdown).
    public func closeAll() {
        let all = state.withLock { s in
            defer { s.viewers.removeAll() }
            return Array(s.viewers.values)
        }
        for q in all { q.close() }
    }

    /// Viewers now.
    public var viewerCount: Int { state.withLock { $0.viewers.count } }
    /// The current init segment, if any.
    public var currentInit: LiveUnit? { state.withLock { $0.ring.initUnit } }
}
