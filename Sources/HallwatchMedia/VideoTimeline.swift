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
///    allowed to end or squeeze the run. Re-stamped and missing PTS take the free frame slot in
///    presentation order once the look-ahead window shows the units around them, so with B-frames too
///    every PTS stays unique.
/// 4. **Discontinuities** — when the unit after a jump confirms the jump (camera clock step, RTP
///    timestamp reset, encoder restart), the units up to the next keyframe are re-stamped to continue the
///    current run, and a ``Event/runBreak(reason:)`` is emitted just before that keyframe: nothing is
///    dropped, and each run stays internally consistent (DESIGN.md § Storage, Time).
/// 5. **Reordering (B-frames)** — DTS is derived as the i-th smallest PTS minus the stream's reorder
///    delay, so DTS ≤ PTS and DTS strictly increases even when the RTSP demuxer supplies none. The delay
///    is first taken from the run's first look-ahead window; when a later unit in the window needs a
///    deeper one (x264's adaptive B-frames: a first mini-GOP `I P B B` of depth 1, then `P Bref B B` of
///    depth 2 with b-pyramid; a camera switching to a profile with B-frames), the delay grows there and
///    the DTS steps up to the unit that needs it are shortened evenly — the run goes on, no frame is
///    dropped, PTS are untouched, and DTS never passes PTS.
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

    /// `provisional`: the PTS was given here (missing or an outlier), and is placed in presentation order
    /// when the unit leaves the window (``presentationSlot(replacing:)``).
    /// `outlier`: its PTS was taken away as an outlier (counted there, not as missing).
    struct Unit {
        var pts: Int64?
        var key: Bool
        var payload: Payload
        var provisional = false
        var outlier = false
    }

    var window: [Unit] = []
    /// PTS values of units accepted but not yet emitted, as a sorted array (small: ≤ lookahead + 1).
    var pending: [Int64] = []
    var origin: Int64?  // absolute DTS of the run's first sample
    var reorderDelay: Int64 = 0
    var lastDTS: Int64?
    /// DTS promised to the next sample: the previous sample's duration ends there.
    var plannedDTS: Int64?
    /// The run's reorder depth in frames (``reorderDelay`` is this many typical frames).
    var reorderDepth = 0
    /// PTS of the last emitted units, decode order (at most ``lookahead``): what a held unit may follow.
    var recentPTS: [Int64] = []
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
    /// Count of times the reorder delay grew during a run (see step 5).
    public private(set) var reorderDelayGrown = 0
    /// Count of units whose PTS had to be raised to their DTS: reordered deeper than the look-ahead
    /// window can show (never seen; DTS > PTS would make the muxer refuse the sample).
    public private(set) var ptsRaised = 0

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

    /// Step 1 for a piece the caller knows continues the newest access unit (its first slice is not its
    /// picture's first, ISO/IEC 14496-10 §7.4.3 `first_mb_in_slice`): appended to that unit whatever either's
    /// timestamp. Returns `false`, joining nothing, when no unit is waiting or the newest one is a suspected
    /// outlier; the caller then pushes the piece as usual.
    public mutating func joinToNewest(keyframe: Bool, payload: Payload) -> Bool {
        guard suspect == nil, !window.isEmpty else { return false }
        join(&window[window.count - 1].payload, payload)
        if keyframe { window[window.count - 1].key = true }
        joined += 1
        return true
    }

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
                    a.outlier = true
                    outliersRestamped += 1
                    var b = unit
                    b.pts = nil
                    b.outlier = true
                    outliersRestamped += 1
                    return accept(a) + accept(b)
                }
                // Back on track: the suspect was a single-frame outlier.
                var fixed = s
                fixed.pts = nil
                fixed.outlier = true
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
            f.outlier = true
            outliersRestamped += 1
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
        plannedDTS = nil
        lastPTSIn = nil
        reorderDepth = 0
        recentPTS = []
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
            if !u.outlier { missingStamped += 1 }
            if let prev = lastPTSIn ?? window.last?.pts {
                var candidate = prev + frameDuration90k
                while pending.contains(candidate) { candidate += 1 }
                u.pts = candidate
                u.provisional = true
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
        if u.provisional, let p = u.pts, origin != nil { u.pts = presentationSlot(replacing: p) }
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
        // Step 5: DTS = i-th smallest PTS − reorder delay, or what the previous sample's duration promised.
        let smallest = pending.removeFirst()
        var dts = plannedDTS ?? (smallest - reorderDelay)
        if let last = lastDTS, dts <= last { dts = last + 1 }
        if dts > u.pts! {
            // Only a unit reordered deeper than the whole window gets here. The muxer refuses DTS > PTS,
            // and the decode timeline cannot go back: show the picture at its DTS.
            // Never onto another sample's PTS (seen at a session's end, where the last units are flushed: a
            // duplicate PTS that `check --level media` caught): the next free tick from the DTS.
            ptsRaised += 1
            var p = dts
            while recentPTS.contains(p) || pending.contains(p) { p += 1 }
            u.pts = p
        }
        recentPTS.append(u.pts!)
        if recentPTS.count > lookahead { recentPTS.removeFirst() }
        // Step 6: the duration runs to the next DTS; the last sample gets the typical one.
        let next = planNextDTS(after: dts)
        plannedDTS = next?.dts
        let duration = next.map { $0.dts - dts } ?? frameDuration90k
        if let n = next, n.steady { noteDuration(duration) }
        lastDTS = dts
        let o = origin!
        events.append(
            .sample(
                Sample(dts90k: dts - o, pts90k: u.pts! - o, duration90k: duration, keyframe: u.key, payload: u.payload))
        )
        return events
    }

    /// Step 2/3 for a unit stamped here, as it leaves the window: its place in presentation order is the
    /// first free frame slot among the PTS around it — the last emitted units and the whole window — that is
    /// not before the decode timeline. In decode order, "previous PTS + one frame" is another frame's PTS
    /// when B-frames reorder (issue 12, case 10: duplicate PTS and 80 ms holes); with the window's units
    /// known, the free slot is the one the camera skipped. With no free slot, one frame after the latest.
    mutating func presentationSlot(replacing provisional: Int64) -> Int64 {
        if let i = pending.firstIndex(of: provisional) { pending.remove(at: i) }
        let used = (recentPTS + pending).sorted()
        guard let latest = used.last else {
            insertPending(provisional)
            return provisional
        }
        let f = frameDuration90k
        let notBefore = lastDTS.map { $0 + 1 } ?? Int64.min
        var slot = latest + f
        for (a, b) in zip(used, used.dropFirst()) where b - a >= f + f / 2 && a + f >= notBefore {
            slot = a + f
            break
        }
        insertPending(slot)
        return slot
    }

    /// Step 5 for the unit after the one just emitted at `dts`: the delay grows when a unit in the window
    /// follows, in decode order, more units with a later PTS than the run's depth allows (it would get
    /// DTS > PTS); then the next DTS is the one the delay asks for or, when that is not after `dts`, a step
    /// that shares the catch-up evenly with the units before the first one whose target is ahead. `nil`
    /// when nothing is pending; `steady` when no catch-up was needed.
    mutating func planNextDTS(after dts: Int64) -> (dts: Int64, steady: Bool)? {
        guard let first = pending.first else { return nil }
        let held = window.compactMap(\.pts)
        let sequence = recentPTS + held
        var depth = reorderDepth
        for j in recentPTS.count..<sequence.count {
            depth = max(depth, sequence[..<j].filter { $0 > sequence[j] }.count)
        }
        if depth > reorderDepth {
            reorderDepth = depth
            reorderDelay = max(reorderDelay, Int64(depth) * frameDuration90k)
            reorderDelayGrown += 1
        }
        let target0 = first - reorderDelay
        if target0 > dts { return (target0, true) }
        // Catch up: reach the first target ahead of `dts` in equal steps, never passing a PTS on the way.
        var step = Int64.max
        for (i, p) in held.enumerated() where i < pending.count {
            let target = pending[i] - reorderDelay
            if target > dts {
                step = min(step, (target - dts) / Int64(i + 1))
                break
            }
            step = min(step, (p - dts) / Int64(i + 1))
        }
        return (dts + max(1, step == .max ? 1 : step), false)
    }

    mutating func startRun(with first: Unit) {
        // Reorder delay: the deepest reordering in the window, in typical frames.
        var depth = 0
        let ptsList = [first.pts!] + window.compactMap(\.pts)
        for (j, p) in ptsList.enumerated() {
            depth = max(depth, ptsList[..<j].filter { $0 > p }.count)
        }
        reorderDelay = Int64(depth) * frameDuration90k
        reorderDepth = depth
        origin = (pending.first ?? first.pts!) - reorderDelay
        lastDTS = nil
        plannedDTS = nil
        recentPTS = []
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
