import CFFmpeg
import Foundation
import HallwatchCore

/// What an export wrote.
public struct ExportSummary: Sendable, Equatable {
    /// Files written, in time order (more than one when codec parameters change between runs).
    public var files: [String]
    /// Media written, seconds (gaps between runs are not included).
    public var mediaSeconds: Double
    /// Video samples written.
    public var videoFrames: Int
    /// Bytes written across all files.
    public var bytes: Int64
}

/// Writes stored runs as one playable, non-fragmented MP4 per set of codec parameters, remuxing with
/// libavformat (never re-encoding): the bytes of every sample are the camera's.
///
/// Each run is a ``SeekableByteSource`` holding one fragmented MP4 (init segment, then `moof`+`mdat` pairs,
/// ISO/IEC 14496-12 §8.8), demuxed through libavformat's custom I/O as it is written out: nothing holds a
/// whole run, so memory does not grow with the length of the export (the output's sample tables aside, a
/// few dozen bytes per sample). Consecutive runs with identical codec parameters go into one file, the later
/// run's timestamps moved to follow the earlier one's end (the gap between runs is collapsed;
/// `hallwatchctl recordings` lists gaps). A change of parameters (resolution, codec) starts a new file
/// `NAME-2.mp4`, `NAME-3.mp4`, … since one MP4 track cannot change them. Output uses `movflags=+faststart`
/// (the `moov` moved before the media, §8.2.1) so playback can start before the file is fully downloaded,
/// writes no edit list (§8.6.6), and tags HEVC `hvc1`.
public enum Exporter {
    /// Writes `runs`, in order, to `path` (and `NAME-2.mp4`, … on a change of codec parameters).
    /// - Parameters:
    ///   - runs: One source per run, each an init segment followed by that run's fragments; a source of
    ///     zero bytes is skipped.
    ///   - path: The first output file; replaced if it exists.
    /// - Returns: The files written and what they hold.
    /// - Throws: What a source throws, unchanged (the export stops there); ``MediaError`` `export.noSpace` naming
    ///   the file when its file system is full (`ENOSPC`), `media.export` when a run is not a readable MP4 or a
    ///   file cannot be written. On any failure every file this call made is removed: a partial MP4 is never left
    ///   to pass for the whole range.
    public static func write(_ runs: [any SeekableByteSource], to path: String) throws -> ExportSummary {
        FFmpegLog.install()
        var summary = ExportSummary(files: [], mediaSeconds: 0, videoFrames: 0, bytes: 0)
        var output: OutputFile?
        var made: [String] = []
        do {
            for run in runs where run.lengthBytes > 0 {
                let reader = try MP4Demuxer(run)
                if let out = output, !out.accepts(reader) {
                    summary.add(try out.finish())
                    output = nil
                }
                if output == nil {
                    let name = summary.files.isEmpty ? path : numbered(path, summary.files.count + 1)
                    made.append(name)
                    output = try OutputFile(path: name, like: reader)
                }
                try output!.append(reader)
            }
            if let out = output { summary.add(try out.finish()) }
        } catch {
            output = nil  // closes the open file before it is removed
            for file in made { unlink(file) }
            if let e = error as? MediaError, e.averror == hw_averror(ENOSPC) {
                throw MediaError(
                    .noSpace, "no space left on device writing \(made.last ?? path); the partial export was removed",
                    averror: e.averror)
            }
            throw error
        }
        return summary
    }

    static func numbered(_ path: String, _ n: Int) -> String {
        let url = URL(fileURLWithPath: path)
        let ext = url.pathExtension
        let base = url.deletingPathExtension().path
        return ext.isEmpty ? "\(base)-\(n)" : "\(base)-\(n).\(ext)"
    }
}

extension ExportSummary {
    mutating func add(_ file: (path: String, seconds: Double, frames: Int, bytes: Int64)) {
        files.append(file.path)
        mediaSeconds += file.seconds
        videoFrames += file.frames
        bytes += file.bytes
    }
}

/// One export file being written.
final class OutputFile {
    let path: String
    private var ctx: UnsafeMutablePointer<AVFormatContext>?
    private let key: [[UInt8]]
    private var endMicros: Int64 = 0  // end of everything written, µs on the output timeline
    private var lastDTS: [Int64]
    private var videoIndex: Int?
    private(set) var frames = 0

    init(path: String, like reader: MP4Demuxer) throws {
        self.path = path
        key = reader.parameterKey
        var oc: UnsafeMutablePointer<AVFormatContext>?
        var r = avformat_alloc_output_context2(&oc, nil, "mp4", path)
        guard r >= 0, let oc else { throw MediaError("media.export", "cannot create \(path)", averror: r) }
        ctx = oc
        lastDTS = Array(repeating: .min, count: reader.streamCount)
        for i in 0..<reader.streamCount {
            let src = reader.stream(i)
            guard let st = avformat_new_stream(oc, nil) else { throw MediaError("media.export", "cannot add a track") }
            avcodec_parameters_copy(st.pointee.codecpar, src.pointee.codecpar)
            st.pointee.codecpar.pointee.codec_tag = 0
            if src.pointee.codecpar.pointee.codec_id == AV_CODEC_ID_HEVC {
                // `hvc1` (ISO/IEC 14496-15 §8.4.1): the sample entry Apple's players require; libavformat's
                // default is `hev1`.
                st.pointee.codecpar.pointee.codec_tag = UInt32(0x6876_6331).byteSwapped  // "hvc1"
            }
            st.pointee.time_base = src.pointee.time_base
            if src.pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO && videoIndex == nil { videoIndex = i }
        }
        r = avio_open(&oc.pointee.pb, path, AVIO_FLAG_WRITE)
        guard r >= 0 else {
            throw MediaError("media.export", "cannot open \(path) for writing: \(averrorText(r))", averror: r)
        }
        // No edit list (§8.6.6): the file starts on its first keyframe and plays every sample, as recorded.
        let opts = Options([("movflags", "+faststart"), ("use_editlist", "0")])
        r = avformat_write_header(oc, &opts.dict)
        guard r >= 0 else {
            throw MediaError("media.export", "the MP4 muxer refused the recording: \(averrorText(r))", averror: r)
        }
    }

    deinit {
        if let oc = ctx {
            if oc.pointee.pb != nil { avio_closep(&oc.pointee.pb) }
            avformat_free_context(oc)
        }
    }

    func accepts(_ reader: MP4Demuxer) -> Bool { reader.parameterKey == key }

    /// Appends a run, shifted to start where the file currently ends.
    func append(_ reader: MP4Demuxer) throws {
        guard let oc = ctx else { return }
        let micro = hw_rational(1, 1_000_000)
        let p = Packet()
        var shiftMicros: Int64?
        var runEnd = endMicros
        while try reader.read(into: p) {
            let i = p.streamIndex
            guard i < lastDTS.count, let dts = p.dts ?? p.pts else { continue }
            let inTB = reader.stream(i).pointee.time_base
            if shiftMicros == nil {
                // Runs start with their video keyframe; align that with the end of what is written.
                shiftMicros = endMicros - av_rescale_q(dts, inTB, micro)
            }
            let shift = av_rescale_q(shiftMicros!, micro, inTB)
            let outDTS = dts + shift
            guard outDTS > lastDTS[i] else { continue }  // never hand the muxer a non-increasing DTS
            lastDTS[i] = outDTS
            p.p.pointee.dts = outDTS
            p.p.pointee.pts = (p.pts ?? dts) + shift
            let outTB = oc.pointee.streams[i]!.pointee.time_base
            av_packet_rescale_ts(p.p, inTB, outTB)
            // The next run follows the video track's end (audio may run a little past it and is trimmed).
            if i == videoIndex || videoIndex == nil {
                runEnd = max(
                    runEnd, av_rescale_q(outDTS, inTB, micro) + av_rescale_q(p.p.pointee.duration, outTB, micro))
            }
            if i == videoIndex { frames += 1 }
            p.p.pointee.pos = -1
            let r = av_interleaved_write_frame(oc, p.p)
            guard r >= 0 else {
                throw MediaError("media.export", "writing \(path) failed: \(averrorText(r))", averror: r)
            }
        }
        endMicros = runEnd
    }

    /// Writes the index (`moov`, moved to the front) and closes the file.
    func finish() throws -> (path: String, seconds: Double, frames: Int, bytes: Int64) {
        guard let oc = ctx else { return (path, 0, 0, 0) }
        let r = av_write_trailer(oc)
        guard r >= 0 else {
            throw MediaError("media.export", "finishing \(path) failed: \(averrorText(r))", averror: r)
        }
        // The last buffered bytes are written when the file is closed: a full disk can first show here.
        let closed = avio_closep(&oc.pointee.pb)
        guard closed >= 0 else {
            throw MediaError("media.export", "closing \(path) failed: \(averrorText(closed))", averror: closed)
        }
        avformat_free_context(oc)
        ctx = nil
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes?[.size] as? NSNumber)?.int64Value ?? 0
        return (path, Double(endMicros) / 1e6, frames, size)
    }
}
