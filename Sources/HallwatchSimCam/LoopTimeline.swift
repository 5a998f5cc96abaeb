/// Maps the buffer timestamps of successive passes over one clip onto one continuous timeline.
///
/// Each pass over the file yields the same timestamps again (after a flushing seek to 0 the demuxer restarts
/// at the segment start). Pass `n` is shifted by `n × period`, so a client sees one stream whose timestamps
/// never go back and whose frame spacing across the loop boundary equals the spacing inside the clip.
/// The RTP payloaders derive the RTP timestamp from these buffer times (RFC 3550 §5.1; 90 kHz clock for
/// video per RFC 6184 §8.2.1 and RFC 7798 §7.1, the sampling rate for AAC per RFC 3640 §3.2.1).
///
/// All times are GStreamer clock times in **nanoseconds**. The *primary* stream (the first video stream,
/// else the first stream) defines the period: its segment length `stop − start`, which qtdemux takes from
/// the track's duration (`mdhd`/edit list), e.g. 5.28 s for a 132-frame clip at 25 fps. Other streams are
/// cut to that period: a buffer that starts before its segment or ends after the period is dropped, because
/// it would overlap the next pass (the bigbuckbunny clip's AAC track is 32 ms longer than its video).
///
/// Output timestamps are in the primary stream's file coordinates: pass 0 keeps the primary's timestamps
/// exactly (so decode timestamps of B-frame streams, which start before the presentation start, stay ≥ 0).
public struct LoopTimeline: Sendable, Equatable {
    /// Length of one pass in ns (primary segment `stop − start`); > 0.
    public let period: UInt64
    /// Segment start of the primary stream in ns (its first presentation time in the file, e.g. 80 ms for a
    /// B-frame stream whose edit list skips the reorder delay).
    public let primaryStart: UInt64
    /// How far a non-primary buffer may run past the period and still be kept, in ns (rounding slack).
    public let tolerance: UInt64
    /// Completed passes so far: 0 during the first pass.
    public private(set) var pass: UInt64 = 0

    /// What to do with one buffer.
    public enum Decision: Equatable, Sendable {
        /// Push it with these timestamps (nil = `GST_CLOCK_TIME_NONE`).
        case keep(pts: UInt64?, dts: UInt64?)
        /// Drop it: it lies outside the loop period.
        case drop
    }

    /// - Parameters:
    ///   - period: pass length in ns; must be > 0.
    ///   - primaryStart: primary stream's segment start in ns.
    ///   - tolerance: slack in ns for non-primary buffers ending after the period (default 0.5 ms).
    public init(period: UInt64, primaryStart: UInt64, tolerance: UInt64 = 500_000) {
        precondition(period > 0, "loop period must be positive")
        self.period = period
        self.primaryStart = primaryStart
        self.tolerance = tolerance
    }

    /// Offset added to file coordinates in the current pass, in ns: `pass × period`.
    public var offset: UInt64 { pass &* period }

    /// Starts the next pass (call when every stream reached end of stream, before seeking back to 0).
    public mutating func advance() { pass += 1 }

    /// Restamps one buffer of the current pass.
    /// - Parameters:
    ///   - pts: presentation time in ns as the demuxer stamped it, nil if none.
    ///   - dts: decode time in ns, nil if none.
    ///   - duration: buffer duration in ns, nil if unknown.
    ///   - segmentStart: `start` of the buffer's stream segment in ns.
    ///   - isPrimary: whether the buffer belongs to the primary stream.
    public func restamp(
        pts: UInt64?, dts: UInt64?, duration: UInt64?, segmentStart: UInt64, isPrimary: Bool
    ) -> Decision {
        let base = Int64(primaryStart) + Int64(offset)
        let start = Int64(segmentStart)
        if let pts {
            let rt = Int64(pts) - start  // running time within this pass
            if isPrimary {
                if rt >= Int64(period) { return .drop }
            } else {
                let end = rt + Int64(duration ?? 0)
                if rt < 0 || end > Int64(period + tolerance) { return .drop }
            }
        }
        func map(_ t: UInt64?) -> UInt64? {
            guard let t else { return nil }
            let v = Int64(t) - start + base
            return v >= 0 ? UInt64(v) : nil
        }
        return .keep(pts: map(pts), dts: map(dts))
    }
}
