import CFFmpeg

/// What ``MediaCheck/check(run:)`` found in one stored run.
public struct MediaCheckReport: Sendable, Equatable {
    /// Video samples read.
    public var samples = 0
    /// Every problem found (0 for a sound run).
    public var problemCount = 0
    /// The first problems, one sentence each naming the sample (decode order, from 0) and its times in 90 kHz
    /// ticks; at most ``MediaCheck/listedProblems``.
    public var problems: [String] = []

    /// Counts a problem and lists it while fewer than ``MediaCheck/listedProblems`` are.
    mutating func add(_ problem: String) {
        problemCount += 1
        if problems.count < MediaCheck.listedProblems { problems.append(problem) }
    }
}

/// `hallwatchctl check --level media`: checks a stored run's video samples as a player will meet them,
/// without decoding: the run is demuxed with libavformat's `mov` demuxer (ISO/IEC 14496-12 §8.8: the init
/// segment, then `moof`+`mdat` fragments) and each sample's times, flags and NAL unit headers are read.
///
/// A run is sound when
/// - every sample has a DTS, and DTS strictly increase (§8.8.12 `tfdt` and the `trun` durations);
/// - no two samples share a PTS, and no PTS comes before its DTS (`trun` composition offsets, §8.8.8);
/// - a sample is flagged a sync sample exactly when it holds an IDR (H.264, ISO/IEC 14496-10 §7.4.1.2.4
///   `nal_unit_type` 5) or IRAP picture (H.265, ISO/IEC 23008-2 §7.4.2.2 types 16–21);
/// - every sample starts with its picture's first slice (`first_mb_in_slice` 0, or
///   `first_slice_segment_in_pic_flag` 1): a sample starting mid-picture is half an access unit, split off
///   from its picture (issue 12, case 6);
/// - every NAL unit's length prefix (ISO/IEC 14496-15 §5.3.2, §8.3.2) stays inside its sample.
///
/// Catches what byte-level checks against the index cannot: duplicate PTS from a re-stamped outlier (case
/// 10), DTS after PTS (case 3), split access units and keyframe flags on half a keyframe (case 6).
public enum MediaCheck {
    /// Problems listed in a report; the rest are only counted: 20.
    public static let listedProblems = 20

    /// Checks one run (an init segment, then its fragments).
    /// - Throws: the source's own error when reading it failed; ``MediaError`` `media.export` when the bytes
    ///   are not an MP4 libavformat can read, `media.noVideo` when it has no H.264 or H.265 track.
    public static func check(run source: any SeekableByteSource) throws -> MediaCheckReport {
        // As stored: libavformat's H.264 parser would otherwise re-derive the keyframe flags this checks.
        let demuxer = try MP4Demuxer(source, asStored: true)
        guard
            let index = (0..<demuxer.streamCount).first(where: {
                VideoCodec(demuxer.stream($0).pointee.codecpar.pointee.codec_id) != nil
            })
        else { throw MediaError("media.noVideo", "the run has no H.264 or H.265 track") }
        let stream = demuxer.stream(index)
        let par = stream.pointee.codecpar.pointee
        let codec = VideoCodec(par.codec_id)!
        let extradata =
            par.extradata.map { Array(UnsafeBufferPointer(start: $0, count: Int(par.extradata_size))) } ?? []
        let lengthBytes = NALUnits.lengthBytes(codec: codec, configuration: extradata) ?? 4
        let timeBase = stream.pointee.time_base
        func to90k(_ t: Int64) -> Int64 { av_rescale_q(t, timeBase, hw_rational(1, 90_000)) }

        var report = MediaCheckReport()
        var lastDTS: Int64?
        var seenPTS = Set<Int64>()
        let packet = Packet()
        while try demuxer.read(into: packet) {
            guard packet.streamIndex == index else { continue }
            let n = report.samples
            report.samples += 1
            let dts = packet.dts.map(to90k)
            let pts = packet.pts.map(to90k)
            let at = "sample \(n) (DTS \(dts.map(String.init) ?? "none"), PTS \(pts.map(String.init) ?? "none"))"
            if let d = dts {
                if let last = lastDTS, d <= last { report.add("\(at): DTS does not increase (previous \(last))") }
                lastDTS = d
            } else {
                report.add("\(at): no DTS")
            }
            if let p = pts {
                if !seenPTS.insert(p).inserted { report.add("\(at): PTS already used by another sample") }
                if let d = dts, p < d { report.add("\(at): PTS before DTS") }
            } else {
                report.add("\(at): no PTS")
            }
            let units = NALUnits.scan(packet.data, lengthBytes: lengthBytes, codec: codec)
            if units.overrun { report.add("\(at): a NAL unit's length runs past the sample's end") }
            if packet.isKey != units.hasRandomAccessPicture {
                report.add(
                    packet.isKey
                        ? "\(at): flagged a keyframe but holds no \(codec == .h264 ? "IDR" : "IRAP") picture"
                        : "\(at): holds an \(codec == .h264 ? "IDR" : "IRAP") picture but is not flagged a keyframe")
            }
            if units.startsMidPicture { report.add("\(at): starts in the middle of a picture (a split access unit)") }
        }
        return report
    }
}

/// The NAL units of one MP4 sample: length-prefixed (ISO/IEC 14496-15 §5.3.2 for H.264, §8.3.2 for H.265).
enum NALUnits {
    /// What ``scan(_:lengthBytes:codec:)`` found.
    struct Summary {
        /// An IDR (H.264) or IRAP (H.265) slice is among the units.
        var hasRandomAccessPicture = false
        /// The first slice's header says it is not the picture's first slice.
        var startsMidPicture = false
        /// A length prefix pointed past the sample's end (scanning stopped there).
        var overrun = false
    }

    /// `lengthSizeMinusOne + 1` from an `avcC` (§5.3.3.1) or `hvcC` (§8.3.3.1) record; `nil` for anything else.
    static func lengthBytes(codec: VideoCodec, configuration c: [UInt8]) -> Int? {
        switch codec {
        case .h264: return c.count >= 7 && c[0] == 1 ? Int(c[4] & 3) + 1 : nil
        case .hevc: return c.count >= 23 && c[0] == 1 ? Int(c[21] & 3) + 1 : nil
        }
    }

    /// Walks the units of `sample`, reading only their headers and the first bit of the first slice header.
    static func scan<C: Collection<UInt8>>(_ sample: C, lengthBytes: Int, codec: VideoCodec) -> Summary
    where C.Index == Int {
        var s = Summary()
        var i = sample.startIndex
        var sawSlice = false
        while i < sample.endIndex {
            guard sample.endIndex - i >= lengthBytes else {
                s.overrun = true
                break
            }
            var length = 0
            for k in 0..<lengthBytes { length = length << 8 | Int(sample[i + k]) }
            i += lengthBytes
            guard length > 0, sample.endIndex - i >= length else {
                s.overrun = length > 0
                break
            }
            let header = sample[i]
            switch codec {
            case .h264:
                let type = header & 0x1F
                if type == 1 || type == 5 {
                    if type == 5 { s.hasRandomAccessPicture = true }
                    // first_mb_in_slice is ue(v): 0 is coded as a single 1 bit.
                    if !sawSlice, length >= 2, sample[i + 1] & 0x80 == 0 { s.startsMidPicture = true }
                    sawSlice = true
                }
            case .hevc:
                let type = (header >> 1) & 0x3F
                if type <= 31 {
                    if (16...21).contains(type) { s.hasRandomAccessPicture = true }
                    // first_slice_segment_in_pic_flag is the first bit after the 2-byte NAL unit header.
                    if !sawSlice, length >= 3, sample[i + 2] & 0x80 == 0 { s.startsMidPicture = true }
                    sawSlice = true
                }
            }
            i += length
        }
        return s
    }
}
