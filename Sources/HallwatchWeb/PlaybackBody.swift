import Crypto
import Dispatch
import Foundation
import HallwatchCore
import HallwatchEvidence
import HallwatchMedia
import HallwatchStorage

/// Where playback reads recordings: the box's disks, read-only (group `hallwatch`), opened per request so a
/// disk that appears or fails later is seen (as thumbnails do).
public struct RecordingDisks: Sendable {
    /// Name and directory of each disk (`recorder.disks`).
    public var disks: [RecordingThumbnailSource.DiskLocation]
    /// Expected owner of the disks.
    public var box: String?
    public init(disks: [RecordingThumbnailSource.DiskLocation], box: String?) {
        self.disks = disks
        self.box = box
    }
    /// Every readable disk as one library.
    func library() -> RecordingLibrary { RecordingLibrary(disks: disks.map { ($0.name, $0.path) }, box: box) }
}

/// A media body of exact length made straight from stored records, never transcoded and never copied to a
/// file: literal ``header`` bytes (the progressive MP4's `ftyp`+`moov`+`mdat` header; empty for fMP4), then
/// ``extents`` of the ``RecordingStream`` (whole records for fMP4, each fragment's `mdat` payload for MP4).
///
/// Reads go through a ``RecordingStreamCursor``, which checks every record against the index's slot
/// generation and its CRC-32C: a record pruned or its slot reused after the body was planned throws
/// `storage.overwritten` instead of yielding another camera's or another hour's bytes, and the connection is
/// closed mid-body (a client sees a short body, never wrong bytes).
struct PlaybackBody: Sendable {
    /// The two forms.
    enum Form: String, Sendable {
        /// `video.m4s`: init segment and fragments, as stored (ISO/IEC 14496-12 §8.8; for MSE).
        case fragmented = "m4s"
        /// `video.mp4`: one run as a progressive MP4 with `moov` first (``ProgressiveMP4``).
        case progressive = "mp4"
    }

    /// Bumped whenever the bytes made of the same records change (a new layout): part of every ``etag``.
    static let formatVersion = 1

    let form: Form
    let header: [UInt8]
    let extents: [(start: Int64, count: Int64)]
    let stream: RecordingStream
    /// Total bytes.
    let length: Int64
    /// Strong entity tag (RFC 9110 §8.8.3): a hash of ``formatVersion``, the form and every covered record's
    /// identity (disk, slot, slot generation, offset) — a reused or pruned slot changes it.
    let etag: String
    /// Box UTC of the first fragment (a keyframe) and of the end of the last one.
    let firstUTC: UTCMicros?
    let endUTC: UTCMicros?
    /// MP4 only: video frames and seconds, and when the first frame (the keyframe) is presented on the file's
    /// media timeline, seconds (its composition offset: B-frames delay it, and no edit list hides that).
    var frames: Int?
    var seconds: Double?
    var presentationOffset: Double?

    /// The fMP4 body: the stream as stored, every run's init segment before its fragments.
    static func fragmented(_ stream: RecordingStream) -> PlaybackBody {
        let records = stream.records
        return PlaybackBody(
            form: .fragmented, header: [], extents: stream.length > 0 ? [(Int64(0), stream.length)] : [],
            stream: stream,
            length: stream.length, etag: etag(.fragmented, records.map(\.identity)),
            firstUTC: stream.firstFragmentUTC, endUTC: end(records))
    }

    /// The MP4 body of the stream's first run (a later run has other codec parameters or follows a gap: it is
    /// another file, as in an evidence export): HallwatchEvidence's ``ProgressiveRun``, the same bytes an
    /// evidence bundle writes for the run. Reads each fragment's `moof` (``RecordingStream/peek(record:count:)``).
    /// - Throws: `StorageError` reading the records; `MediaError` (`media.file`) when they do not form an MP4.
    static func progressive(_ whole: RecordingStream) throws -> PlaybackBody? {
        guard let run = whole.runs.first, let plan = try ProgressiveRun(run) else { return nil }
        var body = PlaybackBody(
            form: .progressive, header: plan.header, extents: plan.extents, stream: run, length: plan.length,
            etag: etag(.progressive, run.records.map(\.identity)), firstUTC: run.firstFragmentUTC,
            endUTC: end(run.records))
        body.frames = plan.frames
        body.seconds = plan.seconds
        body.presentationOffset = plan.presentationOffset
        return body
    }

    static func etag(_ form: Form, _ identities: [String]) -> String {
        var h = SHA256()
        h.update(data: Data("hallwatch-playback/\(formatVersion)/\(form.rawValue)\n".utf8))
        for i in identities { h.update(data: Data((i + "\n").utf8)) }
        return "\"v\(formatVersion)-" + h.finalize().prefix(16).map { String(format: "%02x", $0) }.joined() + "\""
    }

    static func end(_ records: [RecordingStream.Record]) -> UTCMicros? {
        records.compactMap { r in r.startUTC.map { $0.adding(MediaTime90k(r.duration90k)) } }.max()
    }

    /// The pieces of bytes `[from, to)` of the body, in order: literal header bytes or stream ranges.
    func pieces(from: Int64, to: Int64) -> [Piece] {
        var out: [Piece] = []
        let headerEnd = Int64(header.count)
        if from < headerEnd {
            out.append(.bytes(Array(header[Int(from)..<Int(min(to, headerEnd))])))
        }
        var at = headerEnd
        for e in extents {
            let lo = max(from, at)
            let hi = min(to, at + e.count)
            if lo < hi { out.append(.stream(e.start + (lo - at), hi - lo)) }
            at += e.count
            if at >= to { break }
        }
        return out
    }

    enum Piece: Equatable {
        case bytes([UInt8])
        case stream(Int64, Int64)
    }

    /// Bytes `[from, to)` whole, read now (tests and small ranges).
    /// - Throws: as ``RecordingStream/read(from:count:)``.
    func read(from: Int64, to: Int64) throws -> [UInt8] {
        let reader = BodyReader(self)
        var out: [UInt8] = []
        for piece in pieces(from: from, to: to) {
            switch piece {
            case .bytes(let b): out += b
            case .stream(let start, let count): out += try reader.read(start, Int(count))
            }
        }
        return out
    }
}

/// Reads a ``PlaybackBody``'s stream sequentially through one ``RecordingStreamCursor`` (one record held at a
/// time: memory does not grow with the range). Used by one response at a time.
final class BodyReader: @unchecked Sendable {
    let cursor: RecordingStreamCursor
    init(_ body: PlaybackBody) { cursor = body.stream.cursor() }

    /// `count` bytes of the stream from `start`.
    func read(_ start: Int64, _ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let n = try out.withUnsafeMutableBytes { buffer throws(StorageError) in
            try cursor.read(at: start, into: buffer)
        }
        guard n == count else { throw StorageError(.overwritten, "the recording ended at \(start + Int64(n))") }
        return out
    }

    /// The same on a Dispatch thread (storage reads block; the cooperative pool must not).
    func readOffPool(_ start: Int64, _ count: Int) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { c in
            PlaybackBody.queue.async { c.resume(with: Result { try self.read(start, count) }) }
        }
    }
}

extension PlaybackBody {
    /// Where playback's blocking reads run (index queries, record reads), off Swift's cooperative pool.
    static let queue = DispatchQueue(label: "hallwatch.web.playback", attributes: .concurrent)

    /// Runs `work` on ``queue``.
    static func offPool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { c in queue.async { c.resume(with: Result { try work() }) } }
    }
}
