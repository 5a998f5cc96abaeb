/// A fragmented MP4 file (ISO/IEC 14496-12 §8.8) split at its top-level boxes, the way the recorder stores
/// one: the init segment (`ftyp`+`moov`, §8.2) and each `moof`+`mdat` pair (§8.8.4) with its decode time
/// (`tfdt`, §8.8.12) and duration (`trun`/`tfhd`/`trex` sample durations, §8.8.8, §8.8.7, §8.8.3) per
/// track, in that track's timescale (`mdhd`, §8.4.2). Used to record real video repeatedly for benchmarks
/// and tests (``restamped(_:shift:sequence:)``); never on a camera's path.
///
/// Only relocatable fragments are accepted: sample offsets relative to their `moof`
/// (`default-base-is-moof`, as `ffmpeg -movflags +frag_keyframe+empty_moov+default_base_moof` writes).
public struct FragmentedMP4: Sendable {
    /// One `moof`+`mdat` pair.
    public struct Fragment: Sendable {
        /// The bytes, `moof` then `mdat`.
        public var bytes: [UInt8]
        /// Per track id: base media decode time (`tfdt`), ticks of the track's timescale.
        public var decodeTime: [UInt32: UInt64]
        /// Per track id: sum of the sample durations, ticks of the track's timescale.
        public var duration: [UInt32: UInt64]
        /// Offsets in ``bytes`` of each track's `tfdt` box and of the `mfhd` box.
        var tfdtOffsets: [UInt32: Int]
        var mfhdOffset: Int
    }

    /// `ftyp`+`moov` bytes.
    public var initSegment: [UInt8]
    /// The fragments in file order.
    public var fragments: [Fragment]
    /// Per track id: its timescale, ticks per second.
    public var timescales: [UInt32: UInt32]
    /// The first video track's id.
    public var videoTrack: UInt32

    /// Splits `bytes`.
    /// - Throws: ``MediaError`` `media.file` when they are not a fragmented MP4 with a video track and
    ///   relocatable fragments.
    public init(_ bytes: [UInt8]) throws(MediaError) {
        var initBytes: [UInt8] = []
        var frags: [Fragment] = []
        var timescales: [UInt32: UInt32] = [:]
        var defaults: MovieFragment.Defaults = [:]
        var video: UInt32?
        var pendingMoof: (start: Int, end: Int)?
        for top in try Self.boxes(bytes, 0..<bytes.count) {
            switch top.type {
            case "ftyp": initBytes += bytes[top.start..<top.end]
            case "moov":
                initBytes += bytes[top.start..<top.end]
                for child in try Self.boxes(bytes, top.body) {
                    if child.type == "trak" {
                        var id: UInt32 = 0
                        var scale: UInt32 = 0
                        var isVideo = false
                        for t in try Self.boxes(bytes, child.body) {
                            if t.type == "tkhd" {
                                id = Self.u32(bytes, t.body.lowerBound + (bytes[t.body.lowerBound] == 1 ? 20 : 12))
                            }
                            if t.type == "mdia" {
                                for m in try Self.boxes(bytes, t.body) {
                                    if m.type == "mdhd" {
                                        scale = Self.u32(
                                            bytes, m.body.lowerBound + (bytes[m.body.lowerBound] == 1 ? 20 : 12))
                                    }
                                    if m.type == "hdlr" {
                                        isVideo =
                                            Array(bytes[m.body.lowerBound + 8..<m.body.lowerBound + 12])
                                            == Array("vide".utf8)
                                    }
                                }
                            }
                        }
                        timescales[id] = scale
                        if isVideo && video == nil { video = id }
                    } else if child.type == "mvex" {
                        for t in try Self.boxes(bytes, child.body) where t.type == "trex" && t.body.count >= 24 {
                            let p = t.body.lowerBound
                            defaults[Self.u32(bytes, p + 4)] = (
                                Self.u32(bytes, p + 12), Self.u32(bytes, p + 16), Self.u32(bytes, p + 20)
                            )
                        }
                    }
                }
            case "moof": pendingMoof = (top.start, top.end)
            case "mdat":
                guard let moof = pendingMoof else { continue }
                pendingMoof = nil
                frags.append(
                    try Self.fragment(bytes, moof: moof.start..<moof.end, end: top.end, defaults: defaults))
            default: continue  // styp, sidx, mfra…: not stored
            }
        }
        guard let video, !initBytes.isEmpty, !frags.isEmpty else {
            throw MediaError("media.file", "not a fragmented MP4 with a video track")
        }
        initSegment = initBytes
        fragments = frags
        self.timescales = timescales
        videoTrack = video
    }

    /// A copy of fragment `i` with each track's decode time moved by `shift[track]` ticks and the
    /// `mfhd` sequence number set to `sequence`.
    public func restamped(_ i: Int, shift: [UInt32: UInt64], sequence: UInt32) -> [UInt8] {
        let fragment = fragments[i]
        var out = fragment.bytes
        Self.put32(&out, fragment.mfhdOffset + 12, sequence)
        for (track, at) in fragment.tfdtOffsets {
            let value = (fragment.decodeTime[track] ?? 0) + (shift[track] ?? 0)
            if out[at + 8] == 1 {
                Self.put32(&out, at + 12, UInt32(value >> 32))
                Self.put32(&out, at + 16, UInt32(truncatingIfNeeded: value))
            } else {
                precondition(value <= UInt64(UInt32.max), "tfdt version 0 overflows")
                Self.put32(&out, at + 12, UInt32(value))
            }
        }
        return out
    }

    // MARK: - Boxes

    struct Box {
        var type: String
        var start: Int
        var end: Int
        var body: Range<Int>
    }

    /// The boxes in `range` (§4.2: 32-bit size and type, a 64-bit size when the size is 1).
    static func boxes(_ b: [UInt8], _ range: Range<Int>) throws(MediaError) -> [Box] {
        var out: [Box] = []
        var at = range.lowerBound
        while at + 8 <= range.upperBound {
            var size = Int(u32(b, at))
            var header = 8
            if size == 1 {
                guard at + 16 <= range.upperBound else { break }
                size = Int(UInt64(u32(b, at + 8)) << 32 | UInt64(u32(b, at + 12)))
                header = 16
            } else if size == 0 {
                size = range.upperBound - at
            }
            guard size >= header, at + size <= range.upperBound else {
                throw MediaError("media.file", "box at \(at) overruns its parent")
            }
            out.append(
                Box(
                    type: String(decoding: b[at + 4..<at + 8], as: UTF8.self), start: at, end: at + size,
                    body: at + header..<at + size))
            at += size
        }
        return out
    }

    /// One `moof`+`mdat` pair: its bytes, and per track the decode time and duration (``MovieFragment``).
    static func fragment(_ b: [UInt8], moof: Range<Int>, end: Int, defaults: MovieFragment.Defaults)
        throws(MediaError) -> Fragment
    {
        var f = Fragment(
            bytes: Array(b[moof.lowerBound..<end]), decodeTime: [:], duration: [:], tfdtOffsets: [:], mfhdOffset: 0)
        let parsed = try MovieFragment(b, moof: moof, defaults: defaults, name: "the fragment at \(moof.lowerBound)")
        f.mfhdOffset = parsed.mfhdOffset ?? 0
        for traf in parsed.tracks {
            if let t = traf.decodeTime, let at = traf.tfdtOffset {
                f.decodeTime[traf.track] = t
                f.tfdtOffsets[traf.track] = at
            }
            f.duration[traf.track, default: 0] += traf.duration
        }
        return f
    }

    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) << 24 | UInt32(b[at + 1]) << 16 | UInt32(b[at + 2]) << 8 | UInt32(b[at + 3])
    }

    static func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
        b[at] = UInt8(v >> 24)
        b[at + 1] = UInt8(v >> 16 & 0xFF)
        b[at + 2] = UInt8(v >> 8 & 0xFF)
        b[at + 3] = UInt8(v & 0xFF)
    }
}
