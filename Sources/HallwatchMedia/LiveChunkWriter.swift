import CFFmpeg
import Glibc
import HallwatchCore

/// A fragment sink that also takes per-frame CMAF chunks for the recorder's live tap while someone watches
/// (HallwatchDataPlane's `Protocol.md`, P6 and P7). The capture worker's data-plane sender is one.
public protocol LiveChunkSink: FragmentSink {
    /// Whether someone watches this camera now. Asked once per video frame on the capture thread: must be
    /// cheap and never block.
    var wantsLiveChunks: Bool { get }
    /// Takes the per-frame chunks (each a `moof`+`mdat`, ISO/IEC 14496-12 §8.8.4) of one or more consecutive
    /// frames of the current run, on the capture thread, as soon as they span the policy's
    /// ``FragmentPolicy/liveChunkDuration``; the sink may drop them (chunks are never stored or resent). A sink
    /// that sends them at once and keeps no reference lets the session reuse their buffer.
    func deliverChunk(_ chunk: MediaSegment)
}

/// The live chunks of a run while someone watches: each video frame, with the audio written since the one
/// before, as one `moof`+`mdat` (ISO/IEC 14496-12 §8.8.4; a CMAF chunk, ISO/IEC 23000-19 §7.3.2.3) on the
/// run's media timeline, so the chunks play after the run's own init segment. The frames' chunks gather in
/// ``pending`` until the capture session hands them on together and ``clear()``s them.
///
/// Written here rather than by a second libavformat muxer: a chunk is a fixed handful of boxes, made on the
/// capture thread for every frame of every watched camera, and the muxer's way (mux, flush, parse the bytes
/// back, restamp, copy) cost about as much as everything else the worker does per frame (README § Benchmarks,
/// the live path's cost). The samples are what the storage muxer writes for the same frames, byte for byte
/// (`LiveChunkTests` compares them):
/// - video NAL units are turned from Annex B start codes into 4-byte lengths exactly as libavformat's MP4
///   muxer does when the track's extradata is Annex B (ISO/IEC 14496-15 §5.3.2 for H.264, §8.3.2 for H.265);
///   packets already length-prefixed (an `avcC`/`hvcC` extradata) are copied as they are;
/// - timestamps are rescaled into the track timescales the storage muxer chose (`mdhd`, §8.4.2), and each
///   track's decode times count from its first stored sample, as that muxer counts them (`tfdt`, §8.8.12);
/// - sample flags say sync or not as it writes them (§8.8.3.1: a keyframe depends on nothing; any other frame
///   depends on others and is not a sync sample).
///
/// Every `trun` (§8.8.8) states each sample's duration, size, flags and composition offset, so nothing depends
/// on the init segment's `trex` defaults; offsets are from the `moof` (`tfhd` `default-base-is-moof`, §8.8.7).
final class LiveChunkWriter {
    /// One track of the run: its `track_ID` (libavformat numbers them from 1 in the order given), the time base
    /// its timestamps come in and its timescale in the file.
    struct Track {
        let id: UInt32
        let input: AVRational
        let output: AVRational

        /// `value` (input time base) in the track's timescale, rounded as libavformat rounds it.
        func rescale(_ value: Int64) -> Int64 { av_rescale_q(value, input, output) }
    }

    let video: Track
    let audio: Track?
    /// Whether the video packets carry Annex B start codes to be turned into lengths.
    let annexB: Bool
    /// Frames' chunks made since the last ``clear()``, in order: `moof`+`mdat` pairs, back to back.
    private(set) var pending: [UInt8] = []
    /// The first of those frames (run-relative DTS, 90 kHz ticks, and whether it is a keyframe) and how much
    /// video they span (90 kHz ticks); `nil` while none is pending.
    private(set) var pendingStart: (dts90k: Int64, keyframe: Bool)?
    private(set) var pendingDuration90k: Int64 = 0
    /// The `mfhd` sequence number of the last chunk made.
    private(set) var sequence: UInt32 = 0
    /// Audio written since the last frame: bytes, decode time (track timescale, from the track's first stored
    /// sample) and duration (track timescale).
    private var audioSamples: [(bytes: [UInt8], decodeTime: Int64, duration: Int64)] = []

    /// A writer for the run whose storage muxer is `muxer` (its tracks: video, then audio when there is one).
    /// - Parameters:
    ///   - videoExtradata: The video track's extradata as given to that muxer: Annex B parameter sets, or an
    ///     `avcC`/`hvcC` record.
    ///   - hevc: Whether the video is H.265 (else H.264).
    init(muxer: FragmentMuxer, videoExtradata: [UInt8], hevc: Bool) {
        video = Track(id: 1, input: muxer.inputTimeBases[0], output: muxer.streamTimeBases[0])
        audio =
            muxer.streamTimeBases.count > 1
            ? Track(id: 2, input: muxer.inputTimeBases[1], output: muxer.streamTimeBases[1]) : nil
        // libavformat's movenc: H.264 packets are rewritten unless the extradata is an avcC (first byte 1);
        // H.265 ones when the extradata starts with a start code.
        let e = videoExtradata
        if hevc {
            annexB = e.count > 6 && (e[0..<3] == [0, 0, 1] || e[0..<4] == [0, 0, 0, 1])
        } else {
            annexB = !e.isEmpty && e[0] != 1
        }
    }

    /// Keeps an audio sample for the next frame's chunk. `dts` and `duration` are in the audio input time
    /// base; `trackStart` is the run's first stored audio DTS in that base.
    func addAudio(_ packet: Packet, dts: Int64, duration: Int64, trackStart: Int64) {
        guard let audio, packet.size > 0 else { return }
        audioSamples.append(
            (Array(packet.data), audio.rescale(dts) - audio.rescale(trackStart), audio.rescale(duration)))
    }

    /// Appends the chunk of one video frame (and of the audio kept since the last one) to ``pending``. `dts`,
    /// `pts` and `duration` are run-relative, 90 kHz ticks (the video input time base; the run's first frame
    /// is at 0).
    func add(_ packet: Packet, dts: Int64, pts: Int64, duration: Int64, keyframe: Bool) {
        let data = packet.data
        let nals = annexB ? Self.nalUnits(data) : [0..<data.count]
        let prefix = annexB ? 4 : 0
        let videoBytes = nals.reduce(0) { $0 + prefix + $1.count }
        let audioBytes = audioSamples.reduce(0) { $0 + $1.bytes.count }
        let videoTraf = 8 + 16 + 20 + (12 + 8 + 16)
        let audioTraf = audioSamples.isEmpty ? 0 : 8 + 16 + 20 + (12 + 8 + 12 * audioSamples.count)
        let moofBytes = 8 + 16 + videoTraf + audioTraf
        let dtsOut = video.rescale(dts)
        sequence += 1
        if pendingStart == nil { pendingStart = (dts, keyframe) }
        pendingDuration90k += duration

        let needed = pending.count + moofBytes + 8 + videoBytes + audioBytes
        if pending.capacity < needed { pending.reserveCapacity(Swift.max(needed, 2 * pending.capacity)) }
        pending.boxHeader(moofBytes, "moof")
        pending.boxHeader(16, "mfhd", version: 0, flags: 0)
        pending.boxU32(sequence)
        // Video: one sample.
        pending.boxHeader(videoTraf, "traf")
        pending.boxHeader(16, "tfhd", version: 0, flags: 0x02_0000)  // default-base-is-moof
        pending.boxU32(video.id)
        pending.boxHeader(20, "tfdt", version: 1, flags: 0)
        pending.boxU64(UInt64(max(0, dtsOut)))
        // data-offset, sample duration, size, flags and composition offset (signed: version 1).
        pending.boxHeader(12 + 8 + 16, "trun", version: 1, flags: 0x000F01)
        pending.boxU32(1)
        pending.boxU32(UInt32(moofBytes + 8))
        pending.boxU32(UInt32(clamping: video.rescale(duration)))
        pending.boxU32(UInt32(videoBytes))
        pending.boxU32(keyframe ? 0x0200_0000 : 0x0101_0000)
        pending.boxU32(UInt32(bitPattern: Int32(clamping: video.rescale(pts) - dtsOut)))
        if let audio, let first = audioSamples.first {
            pending.boxHeader(audioTraf, "traf")
            pending.boxHeader(16, "tfhd", version: 0, flags: 0x02_0000)
            pending.boxU32(audio.id)
            pending.boxHeader(20, "tfdt", version: 1, flags: 0)
            pending.boxU64(UInt64(max(0, first.decodeTime)))
            pending.boxHeader(12 + 8 + 12 * audioSamples.count, "trun", version: 0, flags: 0x000701)
            pending.boxU32(UInt32(audioSamples.count))
            pending.boxU32(UInt32(moofBytes + 8 + videoBytes))
            for s in audioSamples {
                pending.boxU32(UInt32(clamping: s.duration))
                pending.boxU32(UInt32(s.bytes.count))
                pending.boxU32(0x0200_0000)
            }
        }
        pending.boxHeader(8 + videoBytes + audioBytes, "mdat")
        for n in nals {
            if prefix > 0 { pending.boxU32(UInt32(n.count)) }
            pending.append(contentsOf: UnsafeBufferPointer(rebasing: data[n]))
        }
        for s in audioSamples { pending.append(contentsOf: s.bytes) }
        audioSamples.removeAll(keepingCapacity: true)
    }

    /// Forgets the pending chunks and starts gathering anew, in the same buffer: once the chunks handed on
    /// (as ``pending``) are sent and released, their memory is written again without a new allocation (and
    /// without the page faults of fresh memory; a watched camera hands over ~10 times a second).
    func clear() {
        pending.removeAll(keepingCapacity: true)
        pendingStart = nil
        pendingDuration90k = 0
    }

    /// The NAL units of an Annex B access unit, as libavformat's `ff_avc_parse_nal_units` finds them: each
    /// starts after a start code (`00 00 01`, the zeros before it skipped) and ends where the next start code
    /// begins, one zero before it counted as part of that start code (a 4-byte one).
    static func nalUnits(_ d: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var at = startCode(d, from: 0)
        while true {
            while at < d.count {
                let b = d[at]
                at += 1
                if b != 0 { break }
            }
            if at >= d.count { break }
            let end = startCode(d, from: at)
            out.append(at..<end)
            at = end
        }
        return out
    }

    /// Where the first start code at or after `from` begins (`d.count` if none): its `00 00 01`, or the zero
    /// before that when there is one after `from`.
    static func startCode(_ d: UnsafeBufferPointer<UInt8>, from: Int) -> Int {
        guard let base = d.baseAddress else { return d.count }
        var at = from + 2
        while at < d.count {
            // The 01 of a start code: memchr is vectorised, and a 01 is rare enough in slice data.
            guard let hit = memchr(base + at, 1, d.count - at) else { return d.count }
            let i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            if d[i - 1] == 0 && d[i - 2] == 0 {
                let s = i - 2
                return s > from && d[s - 1] == 0 ? s - 1 : s
            }
            at = i + 1
        }
        return d.count
    }
}

extension [UInt8] {
    /// Appends a big-endian 32-bit field (ISO/IEC 14496-12 §4.2).
    fileprivate mutating func boxU32(_ v: UInt32) { Swift.withUnsafeBytes(of: v.bigEndian) { append(contentsOf: $0) } }
    /// Appends a big-endian 64-bit field.
    fileprivate mutating func boxU64(_ v: UInt64) { Swift.withUnsafeBytes(of: v.bigEndian) { append(contentsOf: $0) } }
    /// Appends a box header: size (bytes, header included) and type (§4.2).
    fileprivate mutating func boxHeader(_ size: Int, _ type: StaticString) {
        boxU32(UInt32(size))
        type.withUTF8Buffer { append(contentsOf: $0) }
    }
    /// Appends a full box header (§4.2.2): size, type, version and 24 bits of flags.
    fileprivate mutating func boxHeader(_ size: Int, _ type: StaticString, version: UInt8, flags: UInt32) {
        boxHeader(size, type)
        boxU32(UInt32(version) << 24 | flags)
    }
}
