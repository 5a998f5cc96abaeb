/// Repairs a camera's video timestamps into a strictly increasing DTS timeline with exact durations.
///
/// RTP carries only a presentation time per access unit (RFC 3550 §5.1, RFC 6184 §5.1), and cameras get
/// even that wrong. Input: access units in decode order with their PTS in 90 kHz ticks (possibly missing).
/// Output: ``Event``s — samples with DTS, PTS and duration (90 kHz ticks, run-relative), and run breaks.
///
/// What it repairs, in the order it is applied:
/// 1. **Split access units** — consecutive units with the same PTS are one access unit that arrived as
///    several packets; they are joined (writing each as a sample gives extra frames and decode errors).
/// 2. **Missing timestamps** — a unit without PTS (typically the first keyframe after PLAY) is stamped one
///    frame before the earliest PTS in the look-ahead window, or one frame after its predecessor.
/// 3. **Outliers** — a single unit whose PTS is far from its neighbours (more than ``jumpThreshold90k``
///    ahead or ``backThreshold90k`` behind) while the next unit is back on track is re-stamped; it is not
///    allowed to end or squeeze the run.
/// 4. **Discontinuities** — when the unit after a jump confirms the jump (camera clock step, RTP
///    timestamp reset, encoder restart), the units up to the next keyframe are re-stamped to continue the
///    current run, and a ``Event/runBreak(reason:)`` is emitted just before that keyframe: nothing is
///    dropped, and each run stays internally consistent (DESIGN.md § Storage, Time).
/// 5. **Reordering (B-frames)** — DTS is derived as the i-th smallest PTS minus the stream's reorder
///    delay, so DTS ≤ PTS and DTS strictly increases even when the RTSP demuxer supplies none.
/// 6. **Durations** come from the timestamps (never from the SDP's or the SPS's frame rate, which lie).
///
/// The window holds ``lookahead`` units, so output lags input by that many frames (about 0.2 s).
public struct VideoTimeline<Payload> {
    /// One repaired access unit, timestamps relative to the run's first DTS.
    public struct Sample {
        /// Decoding time, 90 kHz ticks.
        public var dts90k: Int64
        /// Presentation time, 90 kHz ticks.
        public var pts90k: Int64
        /// Duration, 90 kHz ticks (from the next unit's timestamp).
        public var duration90k: Int64
        /// A random access point.
        public var keyframe: Bool
        /// The access unit.
        public var payload: Payload
    }

    /// What the timeline emits: a repaired sample, or the start of a new run.
    public enum Event {
        case sample(Sample)
        /// The next sample (a keyframe) starts a new run; `reason` says why (for the log and the bus).
        case runBreak(reason: String)
    }

    /// Units held back to derive DTS and durations; bounds the tolerated reorder depth.
    public let lookahead: Int
    /// A forward PTS step larger than this (beyond the usual reorder spread) is a jump. Default 2 s.
    public let jumpThreshold90k: Int64
    /// A backward PTS step larger than this is a jump. Default 1 s.
    public let backThreshold90k: Int64
    /// Joins two pieces of one access unit (the second appended to the first).
    let join: (inout Payload, Payload) -> Void

    struct Unit {
        var pts: Int64?
        var key: Bool
        var payload: Payload
    }

    var window: [Unit] = []
    /// PTS values of units accepted but not yet emitted, as a sorted array (small: ≤ lookahead + 1).
    var pending: [Int64] = []
    var origin: Int64?  // absolute DTS of the run's first sample
    var reorderDelay: Int64 = 0
    var lastDTS: Int64?
    var lastPTSIn: Int64?  // PTS of the previous accepted unit, decode order
    var offset: Int64 = 0  // added to camera PTS after a confirmed discontinuity
    var breakAtNextKey: String?
    var recentDurations: [Int64] = []
    var suspect: Unit?

    /// Count of units re-stamped as single-frame outliers.
    public private(set) var outliersRestamped = 0
    /// Count of units that arrived without a PTS and were given one.
    public private(set) var missingStamped = 0
    /// Count of split access units joined.
    public private(set) var joined = 0

    /// A timeline holding ``lookahead`` units; PTS steps beyond ``jumpThreshold90k`` forward or ``backThreshold90k`` back are jumps (rules 3 and 4); `join` appends the second piece of a split access unit to the first.
    public init(
        lookahead: Int = 5, jumpThreshold90k: Int64 = 180_000, backThreshold90k: Int64 = 90_000,
        join: @escaping (inout Payload, Payload) -> Void
    ) {
        self.lookahead = lookahead
        self.jumpThreshold90k = jumpThreshold90k
        self.backThreshold90k = backThreshold90k
        self.join = join
    }

    /// The typical frame duration: median of recent durations, 3000 ticks (30 fps) before any is known.
    public var frameDuration90k: Int64 {
        guard !recentDurations.isEmpty else { return 3000 }
        return recentDurations.sorted()[recentDurations.count / 2]
    }

    /// The current run's first DTS in camera time (90 kHz ticks, before any discontinuity re-stamping);
    /// used to place other tracks (audio) on the run's timeline. `nil` before the first run.
    public var runOriginCamera90k: Int64? { origin.map { $0 - offset } }

    /// Frames per second measured from the timestamps.
    public var measuredFPS: Double { 90_000 / Double(frameDuration90k) }

    /// Feeds one access unit (decode order). Returns the events that became final.
    public mutating func push(pts90k: Int64?, keyframe: Bool, payload: Payload) -> [Event] {
        var unit = Unit(pts: pts90k.map { $0 + offset }, key: keyframe, payload: payload)
        // Step 1: join pieces of one access unit.
        if let p = unit.pts, let last = window.last, last.pts == p, suspect == nil {
            join(&window[window.count - 1].payload, unit.payload)
            if unit.key { window[window.count - 1].key = true }
            joined += 1
            return []
        }
        // Step 3/4: outlier or discontinuity? Judge against the previous accepted unit.
        if let p = unit.pts, let ref = lastPTSIn {
            let step = p - ref
            let wild = step > jumpThreshold90k || step < -backThreshold90k
            if let s = suspect {
                suspect = nil
                if wild {
                    // The unit after the suspect is also far from the old timeline: is it near the suspect?
                    let fromSuspect = p - (s.pts ?? p)
                    if fromSuspect <= jumpThreshold90k && fromSuspect >= -backThreshold90k {
                        // Confirmed discontinuity: continue this run re-stamped until the next keyframe.
                        let newOffset = (ref + frameDuration90k) - (s.pts! - offset)
                        var events: [Event] = []
                        let shift = newOffset - offset
                        offset = newOffset
                        breakAtNextKey = "timestamp discontinuity of \((s.pts! - ref) / 90) ms"
                        var fixedSuspect = s
                        fixedSuspect.pts = s.pts! + shift
                        events += accept(fixedSuspect)
                        unit.pts = p + shift
                        events += accept(unit)
                        return events
                    }
                    // Two wild units in a row that don't agree: re-stamp both as outliers.
                    var a = s
                    a.pts = nil
                    outliersRestamped += 1
                    var b = unit
                    b.pts = nil
                    outliersRestamped += 1
                    return accept(a) + accept(b)
                }
                // Back on track: the suspect was a single-frame outlier.
                var fixed = s
                fixed.pts = nil
                outliersRestamped += 1
                return accept(fixed) + accept(unit)
            }
            if wild && origin != nil {
                suspect = unit
                return []
            }
        }
        return accept(unit)
    }

    /// Emits everything still held (end of stream or before a reconnect).
    public mutating func flush() -> [Event] {
        var events: [Event] = []
        if let s = suspect {
            suspect = nil
            var f = s
            f.pts = nil
            events += accept(f)
        }
        while !window.isEmpty { events += emitOne() }
        return events
    }

    /// Forgets the current run (after the connection dropped); the next unit must be a keyframe.
    public mutating func reset() {
        window = []
        pending = []
        origin = nil
        reorderDelay = 0
        lastDTS = nil
        lastPTSIn = nil
        offset = 0
        breakAtNextKey = nil
        suspect = nil
    }

    mutating func accept(_ u: Unit) -> [Event] {
        var u = u
        // A run starts at a keyframe: anything before the first one cannot be decoded.
        if origin == nil && window.isEmpty && !u.key { return [] }
        // Step 2: give a unit without PTS one.
        if u.pts == nil {
            missingStamped += 1
            if let prev = lastPTSIn ?? window.last?.pts {
                var candidate = prev + frameDuration90k
                while pending.contains(candidate) { candidate += 1 }
                u.pts = candidate
            }
            // else: the very first unit; stamped once the window shows its neighbours (see emitOne).
        }
        if let p = u.pts {
            lastPTSIn = p
            insertPending(p)
        }
        window.append(u)
        var events: [Event] = []
        while window.count > lookahead { events += emitOne() }
        return events
    }

    mutating func insertPending(_ p: Int64) {
        let i = pending.firstIndex { $0 > p } ?? pending.count
        pending.insert(p, at: i)
    }

    mutating func emitOne() -> [Event] {
        var events: [Event] = []
        var u = window.removeFirst()
        seedFrameDuration()
        if u.pts == nil {
            // The first unit had no PTS: one frame before the earliest PTS seen after it.
            let p = (pending.first ?? 0) - frameDuration90k
            u.pts = p
            insertPending(p)
        }
        if origin == nil || (u.key && breakAtNextKey != nil) {
            if let reason = breakAtNextKey, origin != nil {
                events.append(.runBreak(reason: reason))
                breakAtNextKey = nil
            }
            startRun(with: u)
        }
        // Step 5: DTS = i-th smallest PTS − reorder delay.
        let smallest = pending.removeFirst()
        var dts = smallest - reorderDelay
        if let last = lastDTS, dts <= last { dts = last + 1 }
        if dts > u.pts! {
            // The reorder depth grew beyond what this run was started with: end the run here.
            dts = max(u.pts!, (lastDTS ?? u.pts!) + 1)
            if breakAtNextKey == nil { breakAtNextKey = "reorder depth changed" }
        }
        // Step 6: the duration runs to the next DTS; the last sample gets the typical one.
        let next = pending.first.map { max($0 - reorderDelay, dts + 1) }
        let duration = next.map { $0 - dts } ?? frameDuration90k
        if next != nil { noteDuration(duration) }
        lastDTS = dts
        let o = origin!
        events.append(
            .sample(
                Sample(dts90k: dts - o, pts90k: u.pts! - o, duration90k: duration, keyframe: u.key, payload: u.payload))
        )
        return events
    }

    mutating func startRun(with first: Unit) {
        // Reorder delay: the deepest reordering in the window, in typical frames.
        var depth = 0
        let ptsList = [first.pts!] + window.compactMap(\.pts)
        for (j, p) in ptsList.enumerated() {
            depth = max(depth, ptsList[..<j].filter { $0 > p }.count)
        }
        reorderDelay = Int64(depth) * frameDuration90k
        origin = (pending.first ?? first.pts!) - reorderDelay
        lastDTS = nil
    }

    /// Before any duration is known, the spacing of the window's sorted PTS is the best guess.
    mutating func seedFrameDuration() {
        guard recentDurations.isEmpty else { return }
        recentDurations = zip(pending, pending.dropFirst()).map { $1 - $0 }.filter { $0 > 0 && $0 < 90_000 }
    }

    mutating func noteDuration(_ d: Int64) {
        guard d > 0 && d < 90_000 else { return }
        recentDurations.append(d)
        if recentDurations.count > 31 { recentDurations.removeFirst() }
    }
}
