import CFFmpeg
import HallwatchCore

/// A fragment sink that also takes per-frame CMAF chunks for the recorder's live tap while someone watches
/// (HallwatchDataPlane's `Protocol.md`, P6 and P7). The capture worker's data-plane sender is one.
public protocol LiveChunkSink: FragmentSink {
    /// Whether someone watches this camera now. Asked once per video frame on the capture thread: must be
    /// cheap and never block.
    var wantsLiveChunks: Bool { get }
    /// Takes one per-frame chunk (`moof`+`mdat`, ISO/IEC 14496-12 §8.8.4) of the current run, on the capture
    /// thread, right after its frame arrived; the sink may drop it (chunks are never stored or resent).
    func deliverChunk(_ chunk: MediaSegment)
}

/// The second muxer of a run while someone watches: the same access units as the storage muxer, cut after
/// every frame into one `moof`+`mdat` each (CMAF chunks, ISO/IEC 23000-19 §7.3.2.3), on the run's media
/// timeline, so they play after the run's own init segment.
///
/// It starts at a keyframe of the run. libavformat starts every muxer's timeline at 0 (the first `tfdt`,
/// §8.8.12, is 0), so the samples are handed in relative to that keyframe and each chunk's `tfdt` is moved
/// back onto the run's timeline afterwards (by the keyframe's decode time, in each track's timescale). The
/// chunk muxer's own init segment is never sent: it is the run's, byte for byte the same tracks.
final class LiveChunkMuxer {
    let muxer: FragmentMuxer
    /// The run's decode time of the first chunk's keyframe, 90 kHz ticks.
    let base90k: Int64
    /// Per track (index), the same instant in the track's input time base.
    let baseInput: [Int64]
    /// Per track id (1-based, libavformat's numbering), the shift added to each `tfdt`, in the track's timescale.
    let shift: [UInt32: UInt64]
    private var sequence: UInt32 = 0

    /// A chunk muxer for the tracks of a run, starting at the keyframe whose run-relative DTS is `base90k`.
    /// - Throws: ``MediaError`` `media.mux`, as the storage muxer would.
    init(tracks: [TrackParameters], base90k: Int64) throws {
        muxer = try FragmentMuxer(tracks: tracks)
        self.base90k = base90k
        let ninety = hw_rational(1, 90_000)
        baseInput = muxer.inputTimeBases.map { av_rescale_q(base90k, ninety, $0) }
        var shift: [UInt32: UInt64] = [:]
        for (i, tb) in muxer.streamTimeBases.enumerated() {
            shift[UInt32(i + 1)] = UInt64(max(0, av_rescale_q(baseInput[i], muxer.inputTimeBases[i], tb)))
        }
        self.shift = shift
    }

    /// Adds one sample (run-relative timestamps in the track's input time base); samples before the chunk
    /// muxer's start are left out (audio a little before the first keyframe).
    /// - Throws: ``MediaError`` `media.mux`.
    func write(track: Int, packet: Packet, dts: Int64, pts: Int64, duration: Int64, keyframe: Bool) throws {
        let b = baseInput[track]
        guard dts >= b else { return }
        try muxer.write(
            track: track, packet: packet, dts: dts - b, pts: pts - b, duration: duration, keyframe: keyframe)
    }

    /// Closes the chunk holding the samples written since the last call: its bytes, `tfdt` on the run's
    /// timeline, or `[]` when it holds no sample.
    /// - Throws: ``MediaError`` `media.mux`, or `media.file` if libavformat wrote a fragment that cannot be
    ///   parsed back (never seen).
    func cutChunk() throws -> [UInt8] {
        let bytes = try muxer.cutFragment()
        guard !bytes.isEmpty else { return [] }
        guard let moof = try FragmentedMP4.boxes(bytes, 0..<bytes.count).first(where: { $0.type == "moof" }) else {
            throw MediaError("media.file", "a chunk without moof")
        }
        let fragment = try FragmentedMP4.fragment(bytes, moof: moof.start..<moof.end, end: bytes.count, defaults: [:])
        sequence += 1
        return FragmentedMP4.restamped(fragment, shift: shift, sequence: sequence)
    }
}
