/// What a stretch of recorded media is made of: an init segment when codec parameters change, then
/// fragments (ISO/IEC 14496-12 §8.8 `moof`+`mdat`; each starts at a keyframe or is at most ~1 s long).
///
/// The capture worker (HallwatchMedia) makes them, the data plane (HallwatchDataPlane) carries them, the
/// recorder (HallwatchStorage) stores them. Each of those has its own numbering on the wire or on disk
/// (the data plane's `WireKind`, the disk's `RecordKind`); this enum has none, so neither can leak into
/// the other.
public enum SegmentKind: Sendable, Hashable, CustomStringConvertible {
    /// ISO/IEC 14496-12 `ftyp`+`moov` (§4.3, §8.2.1): codec parameters, no samples. Starts a run.
    case initSegment
    /// `moof`+`mdat` (§8.8.4, §8.1.1): samples of one run.
    case fragment

    public var description: String { self == .initSegment ? "initSegment" : "fragment" }
}

/// Metadata of one init segment or fragment: the same fields travel on the data plane and are stored in
/// the record header on disk.
public struct FragmentMeta: Sendable, Equatable, Hashable {
    public var kind: SegmentKind
    /// The fragment begins with a keyframe (IDR for H.264, IRAP for H.265).
    public var keyframe: Bool
    /// Run id: a run is a stretch of continuous media with one init segment; chosen by the capture worker
    /// as the box UTC microseconds at which the run started, so it is unique per camera and sortable.
    public var run: UInt64
    /// 0 for the init segment, then 1, 2, … for fragments of the run.
    public var sequence: UInt32
    /// Start of the fragment's first sample (decode order), 90 kHz ticks since the run's start.
    public var start90k: MediaTime90k
    /// Sum of the video samples' durations, 90 kHz ticks.
    public var duration90k: Int32
    /// Box UTC of ``start90k``: the run's arrival anchor plus media time.
    public var utc: UTCMicros

    public init(
        kind: SegmentKind, keyframe: Bool, run: UInt64, sequence: UInt32, start90k: MediaTime90k, duration90k: Int32,
        utc: UTCMicros
    ) {
        self.kind = kind
        self.keyframe = keyframe
        self.run = run
        self.sequence = sequence
        self.start90k = start90k
        self.duration90k = duration90k
        self.utc = utc
    }

    /// End of the fragment, 90 kHz ticks since the run's start.
    public var end90k: MediaTime90k { MediaTime90k(start90k.ticks + Int64(duration90k)) }
}

/// One init segment or fragment with its bytes.
public struct MediaSegment: Sendable, Equatable {
    public var meta: FragmentMeta
    /// The ISO/IEC 14496-12 boxes, as the muxer wrote them.
    public var payload: [UInt8]
    public init(meta: FragmentMeta, payload: [UInt8]) {
        self.meta = meta
        self.payload = payload
    }

    /// Largest payload of one segment, bytes (16 MiB): what the data plane carries and a record stores.
    /// A larger one is refused as hostile or broken (the RTP depacketizer drops an access unit at the same size).
    public static let maxPayloadBytes = 16 << 20
}
