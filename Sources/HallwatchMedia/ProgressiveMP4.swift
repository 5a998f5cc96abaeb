/// A standard ("progressive") MP4 laid out from one run's stored fMP4 — its init segment and fragments —
/// without copying or changing a sample: `ftyp`, a `moov` whose sample tables are built from the fragments'
/// `tfhd`/`tfdt`/`trun` boxes, then one `mdat` whose payload is each fragment's `mdat` payload in order, byte
/// for byte (ISO/IEC 14496-12: §4.3 `ftyp`, §8.2 `moov`, §8.6.1.2 `stts`, §8.6.1.3 `ctts`, §8.6.2 `stss`,
/// §8.7.3 `stsz`, §8.7.4 `stsc`, §8.7.5 `stco`/`co64`, §8.8.7 `tfhd`, §8.8.8 `trun`, §8.8.12 `tfdt`).
///
/// The layout is computed from the fragments' `moof` boxes alone, so an HTTP body of exact length can start
/// before any sample is read, and any byte range of it maps to a range of one stored fragment (``Layout``).
/// `moov` comes first (plays while downloading, as `<video>` and old iPhones need), there is no edit list
/// (§8.6.6: a start on a keyframe needs none, and signed video stays verifiable), HEVC is tagged `hvc1`
/// (ISO/IEC 14496-15 §8.4.1), and `mvex` is dropped (the file is not fragmented). Sample offsets above 4 GiB
/// switch `stco` to `co64` and the `mdat` to a 64-bit size.
public enum ProgressiveMP4 {
    /// One stored fragment as the layout needs it.
    public struct Fragment: Sendable {
        /// The fragment's first bytes: at least its whole `moof` and the `mdat` header after it.
        public var head: [UInt8]
        /// The fragment's whole length (`moof`+`mdat`), bytes.
        public var bytes: Int64
        public init(head: [UInt8], bytes: Int64) {
            self.head = head
            self.bytes = bytes
        }
    }

    /// Where the file's bytes come from.
    public struct Layout: Sendable {
        /// `ftyp`, `moov` and the `mdat` box header: the file's first bytes.
        public var header: [UInt8]
        /// Then, in order, these byte ranges of the fragments (each fragment's `mdat` payload).
        public var extents: [(fragment: Int, offset: Int64, count: Int64)]
        /// The file's length, bytes.
        public var totalBytes: Int64
        /// Per track id: its samples, in decode order.
        public var sampleCounts: [UInt32: Int]
        /// The first video track's id and its media duration (ticks of its timescale) and timescale.
        public var videoTrack: UInt32
        public var videoDuration: UInt64
        public var videoTimescale: UInt32
        /// The first video sample's composition offset (`ctts`, ticks of the video timescale): the keyframe is
        /// presented this long after decode time 0 (B-frames; there is no edit list to hide it).
        public var videoFirstCompositionOffset: Int32
        /// Video duration, seconds.
        public var videoSeconds: Double { videoTimescale == 0 ? 0 : Double(videoDuration) / Double(videoTimescale) }
    }

    /// How many first bytes of a fragment ``layout(initSegment:fragments:)`` needs: its `moof` and 16 more
    /// bytes; `nil` when `head` (at least 16 bytes) does not start with a `moof`.
    public static func headBytesNeeded(_ head: [UInt8]) -> Int? {
        guard head.count >= 16, fourCC(head, 4) == "moof" else { return nil }
        let size = Int(u32(head, 0))
        guard size >= 8 else { return nil }
        return size + 16
    }

    /// The layout of the MP4 made of `initSegment` and `fragments` (one run, in decode order).
    /// - Throws: ``MediaError`` `media.file` when the init segment has no `moov` with tracks, a fragment's
    ///   `moof` is cut short or uses absolute offsets (`base-data-offset`), or its samples lie outside its `mdat`.
    public static func layout(initSegment: [UInt8], fragments: [Fragment]) throws(MediaError) -> Layout {
        let movie = try Movie(initSegment)
        var tracks: [UInt32: TrackSamples] = [:]
        for t in movie.tracks { tracks[t.id] = TrackSamples() }
        var extents: [(fragment: Int, offset: Int64, count: Int64)] = []
        var payload: Int64 = 0
        for (i, f) in fragments.enumerated() {
            let body = try parseFragment(f, index: i, defaults: movie.defaults, into: &tracks, payloadStart: payload)
            extents.append((i, body.offset, body.count))
            payload += body.count
        }
        let ftyp = ftypBox(video: movie.tracks.first { $0.isVideo }?.sampleEntry)
        // The moov's size does not depend on the offsets' values, only on stco vs co64.
        let probe = try movie.moov(tracks, mdatBodyStart: 0, wide: false)
        let wide = Int64(ftyp.count + probe.count + 16) + payload > Int64(UInt32.max)
        let mdatHeader = wide ? 16 : 8
        var moovSize = probe.count
        if wide { moovSize = try movie.moov(tracks, mdatBodyStart: 0, wide: true).count }
        let bodyStart = Int64(ftyp.count + moovSize + mdatHeader)
        let moov = try movie.moov(tracks, mdatBodyStart: bodyStart, wide: wide)
        var header = ftyp + moov
        if wide {
            header += be32(1) + Array("mdat".utf8) + be64(UInt64(payload) + 16)
        } else {
            header += be32(UInt32(payload + 8)) + Array("mdat".utf8)
        }
        let video = movie.tracks.first { $0.isVideo } ?? movie.tracks[0]
        return Layout(
            header: header, extents: extents, totalBytes: Int64(header.count) + payload,
            sampleCounts: tracks.mapValues(\.durations.count), videoTrack: video.id,
            videoDuration: tracks[video.id]?.totalDuration ?? 0, videoTimescale: video.timescale,
            videoFirstCompositionOffset: tracks[video.id]?.compositionOffsets.first ?? 0)
    }

    // MARK: - Samples from fragments

    /// One track's sample table under construction.
    struct TrackSamples {
        var durations: [UInt32] = []
        var sizes: [UInt32] = []
        var compositionOffsets: [Int32] = []
        var syncSamples: [UInt32] = []  // 1-based sample numbers
        /// Chunks: offset from the start of the `mdat` payload, samples in it.
        var chunks: [(offset: Int64, samples: UInt32)] = []
        /// Decode time at which the next sample starts (the first fragment's `tfdt` is time 0).
        var nextDecodeTime: UInt64?
        var firstDecodeTime: UInt64 = 0
        var totalDuration: UInt64 { durations.reduce(0) { $0 + UInt64($1) } }
    }

    /// Defaults from `trex` (§8.8.3) per track: duration, size, flags.
    typealias Defaults = MovieFragment.Defaults

    /// Reads one fragment's `moof` (``MovieFragment``), appending its samples; returns where its `mdat` payload is
    /// in the fragment.
    static func parseFragment(
        _ f: Fragment, index: Int, defaults: Defaults, into tracks: inout [UInt32: TrackSamples],
        payloadStart: Int64
    ) throws(MediaError) -> (offset: Int64, count: Int64) {
        let b = f.head
        guard let need = headBytesNeeded(b), b.count >= need else {
            throw MediaError("media.file", "fragment \(index) does not start with a whole moof")
        }
        let moofSize = Int(u32(b, 0))
        var mdatHeader = 8
        var mdatSize = Int64(u32(b, moofSize))
        guard fourCC(b, moofSize + 4) == "mdat" else {
            throw MediaError("media.file", "fragment \(index): no mdat after its moof")
        }
        if mdatSize == 1 {
            mdatHeader = 16
            mdatSize = Int64(u64(b, moofSize + 8))
        } else if mdatSize == 0 {
            mdatSize = f.bytes - Int64(moofSize)
        }
        let bodyOffset = Int64(moofSize + mdatHeader)
        let bodyEnd = Int64(moofSize) + mdatSize
        guard mdatSize >= Int64(mdatHeader), bodyEnd <= f.bytes else {
            throw MediaError("media.file", "fragment \(index): mdat overruns the fragment")
        }
        for traf in try MovieFragment(b, moof: 0..<moofSize, defaults: defaults, name: "fragment \(index)").tracks {
            guard defaults[traf.track] != nil, var samples = tracks[traf.track] else {
                throw MediaError("media.file", "fragment \(index): track \(traf.track) is not in the init segment")
            }
            if let dt = traf.decodeTime, !traf.runs.isEmpty {
                if let next = samples.nextDecodeTime {
                    // A hole inside the run: the previous sample lasts until this fragment starts.
                    if dt > next, let last = samples.durations.indices.last {
                        samples.durations[last] &+= UInt32(clamping: dt - next)
                    }
                } else {
                    samples.firstDecodeTime = dt
                }
                samples.nextDecodeTime = dt
            }
            for run in traf.runs {
                for sample in run.samples {
                    samples.durations.append(sample.duration)
                    samples.sizes.append(sample.size)
                    samples.compositionOffsets.append(sample.compositionOffset)
                    if sample.isSync { samples.syncSamples.append(UInt32(samples.durations.count)) }
                    samples.nextDecodeTime = (samples.nextDecodeTime ?? 0) + UInt64(sample.duration)
                }
                guard run.dataOffset >= bodyOffset, run.dataOffset + run.bytes <= bodyEnd else {
                    throw MediaError("media.file", "fragment \(index): samples lie outside its mdat")
                }
                if !run.samples.isEmpty {
                    samples.chunks.append((payloadStart + run.dataOffset - bodyOffset, UInt32(run.samples.count)))
                }
            }
            tracks[traf.track] = samples
        }
        return (bodyOffset, bodyEnd - bodyOffset)
    }

    // MARK: - The movie box

    struct Track {
        var id: UInt32
        var timescale: UInt32
        var isVideo: Bool
        var sampleEntry: String
        /// The `trak` box's bytes.
        var trak: [UInt8]
    }

    /// The init segment's `moov`, split into what is kept and what is rebuilt.
    struct Movie {
        var moov: [UInt8]
        var movieTimescale: UInt32
        var tracks: [Track]
        var defaults: Defaults

        init(_ bytes: [UInt8]) throws(MediaError) {
            guard let moovBox = try boxes(bytes, 0..<bytes.count).first(where: { $0.type == "moov" }) else {
                throw MediaError("media.file", "the init segment has no moov")
            }
            moov = Array(bytes[moovBox.start..<moovBox.end])
            let m = moov
            var scale: UInt32 = 1000
            var tracks: [Track] = []
            var defaults: Defaults = [:]
            for child in try boxes(m, 8..<m.count) {
                switch child.type {
                case "mvhd":
                    scale = u32(m, child.body.lowerBound + (m[child.body.lowerBound] == 1 ? 20 : 12))
                case "trak":
                    var t = Track(
                        id: 0, timescale: 0, isVideo: false, sampleEntry: "", trak: Array(m[child.start..<child.end]))
                    for c in try boxes(m, child.body) {
                        if c.type == "tkhd" {
                            t.id = u32(m, c.body.lowerBound + (m[c.body.lowerBound] == 1 ? 20 : 12))
                        }
                        guard c.type == "mdia" else { continue }
                        for md in try boxes(m, c.body) {
                            if md.type == "mdhd" {
                                t.timescale = u32(m, md.body.lowerBound + (m[md.body.lowerBound] == 1 ? 20 : 12))
                            }
                            if md.type == "hdlr" { t.isVideo = fourCC(m, md.body.lowerBound + 8) == "vide" }
                            guard md.type == "minf" else { continue }
                            for mi in try boxes(m, md.body) where mi.type == "stbl" {
                                for st in try boxes(m, mi.body) where st.type == "stsd" && st.body.count >= 16 {
                                    t.sampleEntry = fourCC(m, st.body.lowerBound + 12)
                                }
                            }
                        }
                    }
                    tracks.append(t)
                case "mvex":
                    for t in try boxes(m, child.body) where t.type == "trex" && t.body.count >= 24 {
                        let p = t.body.lowerBound
                        defaults[u32(m, p + 4)] = (u32(m, p + 12), u32(m, p + 16), u32(m, p + 20))
                    }
                default: continue
                }
            }
            guard !tracks.isEmpty else { throw MediaError("media.file", "the init segment's moov has no track") }
            for t in tracks where defaults[t.id] == nil { defaults[t.id] = (0, 0, 0) }
            movieTimescale = scale
            self.tracks = tracks
            self.defaults = defaults
        }

        /// The `moov` with durations set, `mvex` and edit lists dropped, sample tables filled; chunk offsets
        /// are `mdatBodyStart` plus each chunk's place in the `mdat` payload.
        func moov(_ samples: [UInt32: TrackSamples], mdatBodyStart: Int64, wide: Bool) throws(MediaError) -> [UInt8] {
            var movieDuration: UInt64 = 0
            var children: [UInt8] = []
            var mvhd: [UInt8] = []
            var trakIndex = 0
            for child in try boxes(moov, 8..<moov.count) {
                switch child.type {
                case "mvhd": mvhd = Array(moov[child.start..<child.end])
                case "mvex": continue
                case "trak":
                    // The trak boxes come in the order `init` listed them.
                    let t = tracks[trakIndex]
                    trakIndex += 1
                    let s = samples[t.id] ?? TrackSamples()
                    let duration = s.totalDuration
                    if t.timescale > 0 {
                        movieDuration = max(movieDuration, duration * UInt64(movieTimescale) / UInt64(t.timescale))
                    }
                    children += try trak(t, s, duration: duration, mdatBodyStart: mdatBodyStart, wide: wide)
                default: children += moov[child.start..<child.end]
                }
            }
            setDuration(&mvhd, movieDuration, v0At: 24, v1At: 32)
            return box("moov", mvhd + children)
        }

        func trak(_ t: Track, _ s: TrackSamples, duration: UInt64, mdatBodyStart: Int64, wide: Bool) throws(MediaError)
            -> [UInt8]
        {
            let b = t.trak
            var out: [UInt8] = []
            for c in try boxes(b, 8..<b.count) {
                switch c.type {
                case "tkhd":
                    var tkhd = Array(b[c.start..<c.end])
                    let trackDuration =
                        t.timescale > 0 ? duration * UInt64(movieTimescale) / UInt64(t.timescale) : 0
                    setDuration(&tkhd, trackDuration, v0At: 28, v1At: 36)
                    out += tkhd
                case "edts": continue
                case "mdia":
                    var mdia: [UInt8] = []
                    for md in try boxes(b, c.body) {
                        switch md.type {
                        case "mdhd":
                            var mdhd = Array(b[md.start..<md.end])
                            setDuration(&mdhd, duration, v0At: 24, v1At: 32)
                            mdia += mdhd
                        case "minf":
                            var minf: [UInt8] = []
                            for mi in try boxes(b, md.body) {
                                if mi.type == "stbl" {
                                    minf += try stbl(b, mi, s, mdatBodyStart: mdatBodyStart, wide: wide)
                                } else {
                                    minf += b[mi.start..<mi.end]
                                }
                            }
                            mdia += box("minf", minf)
                        default: mdia += b[md.start..<md.end]
                        }
                    }
                    out += box("mdia", mdia)
                default: out += b[c.start..<c.end]
                }
            }
            return box("trak", out)
        }

        func stbl(_ b: [UInt8], _ stblBox: Box, _ s: TrackSamples, mdatBodyStart: Int64, wide: Bool) throws(MediaError)
            -> [UInt8]
        {
            var out: [UInt8] = []
            let rebuilt: Set<String> = ["stts", "ctts", "stss", "stsz", "stz2", "stsc", "stco", "co64"]
            for c in try boxes(b, stblBox.body) where !rebuilt.contains(c.type) {
                var bytes = Array(b[c.start..<c.end])
                if c.type == "stsd" { renameHEVCEntries(&bytes) }
                out += bytes
            }
            out += sampleTables(s, mdatBodyStart: mdatBodyStart, wide: wide)
            return box("stbl", out)
        }
    }

    /// `stts`, `ctts` (when any offset is not 0; version 1 when one is negative), `stss` (when not every
    /// sample is a sync sample), `stsz`, `stsc`, `stco` or `co64`.
    static func sampleTables(_ s: TrackSamples, mdatBodyStart: Int64, wide: Bool) -> [UInt8] {
        var out: [UInt8] = []
        let stts = runLengths(s.durations)
        out += fullBox("stts", 0, be32(UInt32(stts.count)) + stts.flatMap { be32($0.count) + be32($0.value) })
        if s.compositionOffsets.contains(where: { $0 != 0 }) {
            let negative = s.compositionOffsets.contains { $0 < 0 }
            let runs = runLengths(s.compositionOffsets)
            out += fullBox(
                "ctts", negative ? 1 : 0,
                be32(UInt32(runs.count)) + runs.flatMap { be32($0.count) + be32(UInt32(bitPattern: $0.value)) })
        }
        if s.syncSamples.count != s.durations.count {
            out += fullBox("stss", 0, be32(UInt32(s.syncSamples.count)) + s.syncSamples.flatMap(be32))
        }
        out += fullBox("stsz", 0, be32(0) + be32(UInt32(s.sizes.count)) + s.sizes.flatMap(be32))
        var stsc: [UInt8] = []
        var entries: UInt32 = 0
        var previous: UInt32?
        for (i, c) in s.chunks.enumerated() where c.samples != previous {
            stsc += be32(UInt32(i + 1)) + be32(c.samples) + be32(1)
            entries += 1
            previous = c.samples
        }
        out += fullBox("stsc", 0, be32(entries) + stsc)
        let offsets = s.chunks.map { UInt64(mdatBodyStart + $0.offset) }
        if wide {
            out += fullBox("co64", 0, be32(UInt32(offsets.count)) + offsets.flatMap(be64))
        } else {
            out += fullBox(
                "stco", 0, be32(UInt32(offsets.count)) + offsets.flatMap { be32(UInt32(truncatingIfNeeded: $0)) })
        }
        return out
    }

    static func runLengths<T: Equatable>(_ values: [T]) -> [(count: UInt32, value: T)] {
        var out: [(count: UInt32, value: T)] = []
        for v in values {
            if let last = out.last, last.value == v { out[out.count - 1].count += 1 } else { out.append((1, v)) }
        }
        return out
    }

    /// `hev1` sample entries become `hvc1` (ISO/IEC 14496-15 §8.4.1), the tag Apple's players require.
    static func renameHEVCEntries(_ stsd: inout [UInt8]) {
        guard stsd.count >= 16 else { return }
        var at = 16  // header (8), version and flags (4), entry_count (4)
        while at + 8 <= stsd.count {
            let size = Int(u32(stsd, at))
            if fourCC(stsd, at + 4) == "hev1" { stsd.replaceSubrange(at + 4..<at + 8, with: Array("hvc1".utf8)) }
            guard size >= 8 else { break }
            at += size
        }
    }

    /// `ftyp`: major brand `isom`, compatible `isom`, `iso2`, `mp41` and the codec's brand.
    static func ftypBox(video entry: String?) -> [UInt8] {
        var brands = ["isom", "iso2", "mp41"]
        if entry == "avc1" || entry == "avc3" { brands.append("avc1") }
        return box("ftyp", Array("isom".utf8) + be32(0x200) + brands.flatMap { Array($0.utf8) })
    }

    /// Sets a `mvhd`/`tkhd`/`mdhd` duration (offsets from the box's start for version 0 and 1 layouts);
    /// a version 0 box whose duration does not fit 32 bits gets all ones ("unknown").
    static func setDuration(_ b: inout [UInt8], _ value: UInt64, v0At: Int, v1At: Int) {
        guard b.count > 8 else { return }
        if b[8] == 1 {
            guard b.count >= v1At + 8 else { return }
            b.replaceSubrange(v1At..<v1At + 8, with: be64(value))
        } else {
            guard b.count >= v0At + 4 else { return }
            b.replaceSubrange(v0At..<v0At + 4, with: be32(value > UInt64(UInt32.max) ? UInt32.max : UInt32(value)))
        }
    }

    // MARK: - Bytes

    struct Box {
        var type: String
        var start: Int
        var end: Int
        var body: Range<Int>
    }

    static func boxes(_ b: [UInt8], _ range: Range<Int>) throws(MediaError) -> [Box] {
        try FragmentedMP4.boxes(b, range).map { Box(type: $0.type, start: $0.start, end: $0.end, body: $0.body) }
    }
    static func box(_ type: String, _ body: [UInt8]) -> [UInt8] {
        be32(UInt32(body.count + 8)) + Array(type.utf8) + body
    }
    static func fullBox(_ type: String, _ version: UInt8, _ body: [UInt8]) -> [UInt8] {
        box(type, [version, 0, 0, 0] + body)
    }
    static func fourCC(_ b: [UInt8], _ at: Int) -> String {
        at + 4 <= b.count ? String(decoding: b[at..<at + 4], as: UTF8.self) : ""
    }
    static func u32(_ b: [UInt8], _ at: Int) -> UInt32 { at + 4 <= b.count ? FragmentedMP4.u32(b, at) : 0 }
    static func u64(_ b: [UInt8], _ at: Int) -> UInt64 { UInt64(u32(b, at)) << 32 | UInt64(u32(b, at + 4)) }
    static func be32(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
    }
    static func be64(_ v: UInt64) -> [UInt8] { be32(UInt32(v >> 32)) + be32(UInt32(truncatingIfNeeded: v)) }
}
