/// One movie fragment's `moof` (ISO/IEC 14496-12 §8.8.4) read sample by sample: the one parser of fragment
/// headers, used by ``FragmentedMP4`` (decode times and durations, to restamp fragments) and ``ProgressiveMP4``
/// (the sample tables of a `moov` made from stored fragments).
///
/// Per track fragment (`traf`, §8.8.6): the track and its defaults (`tfhd`, §8.8.7, over `trex`, §8.8.3), the
/// base media decode time (`tfdt`, §8.8.12) and each track run (`trun`, §8.8.8) with its samples' duration, size,
/// flags and composition offset, and where its data starts. Data offsets are relative to the `moof`'s first byte:
/// with `default-base-is-moof` (or for the first `traf`) from the `moof`, otherwise from the end of the previous
/// `traf`'s data (§8.8.7.1); a `trun` without `data_offset` follows the previous one. Absolute offsets
/// (`base-data-offset`) are refused: stored fragments must be movable.
struct MovieFragment {
    /// Per track id: default sample duration (ticks of the track's timescale), size (bytes) and flags (§8.8.3.1).
    typealias Defaults = [UInt32: (duration: UInt32, size: UInt32, flags: UInt32)]

    /// One sample of a run.
    struct Sample {
        /// Ticks of the track's timescale.
        var duration: UInt32
        /// Bytes.
        var size: UInt32
        /// Sample flags (§8.8.3.1); bit 16 is `sample_is_non_sync_sample`.
        var flags: UInt32
        /// Presentation minus decode time, ticks (`ctts`, §8.6.1.3).
        var compositionOffset: Int32
        /// A sync sample (keyframe).
        var isSync: Bool { flags & 0x1_0000 == 0 }
    }

    /// One `trun`: where its samples' data starts (bytes from the `moof`'s first byte) and the samples.
    struct Run {
        var dataOffset: Int64
        var samples: [Sample]
        /// Bytes of all its samples.
        var bytes: Int64 { samples.reduce(0) { $0 + Int64($1.size) } }
    }

    /// One `traf`.
    struct TrackFragment {
        /// `track_ID`.
        var track: UInt32
        /// `baseMediaDecodeTime`, ticks; `nil` without a `tfdt`.
        var decodeTime: UInt64?
        /// Where the `tfdt` box starts, bytes from the `moof`'s first byte.
        var tfdtOffset: Int?
        /// The runs in order.
        var runs: [Run]
        /// Sum of the samples' durations, ticks.
        var duration: UInt64 { runs.reduce(0) { $0 + $1.samples.reduce(0) { $0 + UInt64($1.duration) } } }
    }

    /// Where the `mfhd` box starts, bytes from the `moof`'s first byte.
    var mfhdOffset: Int?
    /// The track fragments in order.
    var tracks: [TrackFragment] = []

    /// Reads the `moof` at `moof` (its whole box) in `b`.
    /// - Parameters:
    ///   - defaults: `trex` defaults per track (a track without one: all zero).
    ///   - name: How messages name the fragment (`fragment 3`).
    /// - Throws: ``MediaError`` `media.file` when a box overruns its parent, a `trun` its box, or a `tfhd` uses
    ///   absolute offsets.
    init(_ b: [UInt8], moof: Range<Int>, defaults: Defaults, name: String) throws(MediaError) {
        let origin = moof.lowerBound
        var previousDataEnd: Int64?
        for child in try FragmentedMP4.boxes(b, origin + 8..<moof.upperBound) {
            if child.type == "mfhd" { mfhdOffset = child.start - origin }
            guard child.type == "traf" else { continue }
            var traf = TrackFragment(track: 0, runs: [])
            var d = (duration: UInt32(0), size: UInt32(0), flags: UInt32(0))
            var trafBase: Int64 = 0
            var dataEnd: Int64 = 0
            for box in try FragmentedMP4.boxes(b, child.body) {
                let p = box.body.lowerBound
                guard p + 4 <= box.end else { continue }
                let flags = FragmentedMP4.u32(b, p) & 0xFF_FFFF
                switch box.type {
                case "tfhd":
                    guard flags & 0x01 == 0 else {
                        throw MediaError(
                            "media.file", "\(name): absolute data offsets (base-data-offset) are not supported")
                    }
                    traf.track = FragmentedMP4.u32(b, p + 4)
                    d = defaults[traf.track] ?? (0, 0, 0)
                    var at = p + 8 + (flags & 0x02 != 0 ? 4 : 0)
                    if flags & 0x08 != 0 {
                        d.duration = FragmentedMP4.u32(b, at)
                        at += 4
                    }
                    if flags & 0x10 != 0 {
                        d.size = FragmentedMP4.u32(b, at)
                        at += 4
                    }
                    if flags & 0x20 != 0 { d.flags = FragmentedMP4.u32(b, at) }
                    trafBase = flags & 0x2_0000 != 0 ? 0 : previousDataEnd ?? 0
                    dataEnd = trafBase
                case "tfdt":
                    traf.tfdtOffset = box.start - origin
                    traf.decodeTime =
                        b[p] == 1
                        ? UInt64(FragmentedMP4.u32(b, p + 4)) << 32 | UInt64(FragmentedMP4.u32(b, p + 8))
                        : UInt64(FragmentedMP4.u32(b, p + 4))
                case "trun":
                    let run = try Self.run(
                        b, box, flags: flags, defaults: d, base: trafBase, follows: dataEnd, name: name)
                    dataEnd = run.dataOffset + run.bytes
                    traf.runs.append(run)
                default: continue
                }
            }
            previousDataEnd = dataEnd
            tracks.append(traf)
        }
    }

    /// One `trun`'s samples: its `data_offset` is added to the `traf`'s `base`; without one its data `follows`
    /// the previous run's.
    static func run(
        _ b: [UInt8], _ box: FragmentedMP4.Box, flags: UInt32,
        defaults d: (duration: UInt32, size: UInt32, flags: UInt32),
        base: Int64, follows: Int64, name: String
    ) throws(MediaError) -> Run {
        let p = box.body.lowerBound
        let version = b[p]
        let count = Int(FragmentedMP4.u32(b, p + 4))
        var at = p + 8
        var dataOffset = follows
        if flags & 0x01 != 0 {
            dataOffset = base + Int64(Int32(bitPattern: FragmentedMP4.u32(b, at)))
            at += 4
        }
        var firstFlags: UInt32?
        if flags & 0x04 != 0 {
            firstFlags = FragmentedMP4.u32(b, at)
            at += 4
        }
        let stride = [0x100, 0x200, 0x400, 0x800].filter { flags & UInt32($0) != 0 }.count * 4
        guard count >= 0, at + stride * count <= box.end else {
            throw MediaError("media.file", "\(name): trun overruns its box")
        }
        var samples: [Sample] = []
        samples.reserveCapacity(count)
        for s in 0..<count {
            var sample = Sample(
                duration: d.duration, size: d.size, flags: s == 0 ? (firstFlags ?? d.flags) : d.flags,
                compositionOffset: 0)
            if flags & 0x100 != 0 {
                sample.duration = FragmentedMP4.u32(b, at)
                at += 4
            }
            if flags & 0x200 != 0 {
                sample.size = FragmentedMP4.u32(b, at)
                at += 4
            }
            if flags & 0x400 != 0 {
                sample.flags = FragmentedMP4.u32(b, at)
                at += 4
            }
            if flags & 0x800 != 0 {
                let raw = FragmentedMP4.u32(b, at)
                sample.compositionOffset = version == 0 ? Int32(clamping: raw) : Int32(bitPattern: raw)
                at += 4
            }
            samples.append(sample)
        }
        return Run(dataOffset: dataOffset, samples: samples)
    }
}
