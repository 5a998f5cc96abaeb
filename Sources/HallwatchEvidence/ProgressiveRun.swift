import Crypto
import Foundation
import HallwatchCore
import HallwatchMedia
import HallwatchStorage

/// One recorded run as a standard MP4 with `moov` first (``HallwatchMedia/ProgressiveMP4``), planned from the
/// index and each fragment's `moof` alone: the file is literal ``header`` bytes (`ftyp`+`moov`+`mdat` header),
/// then ``extents`` of the run's ``HallwatchStorage/RecordingStream`` (each fragment's `mdat` payload), so it
/// is written or served straight from the stored records, every sample byte for byte.
///
/// The web's `video.mp4` body and the evidence bundle's video files are both this plan (one layout, so a
/// downloaded file and an exported one of the same run are the same bytes).
public struct ProgressiveRun: Sendable {
    /// The run read.
    public let stream: RecordingStream
    /// `ftyp`, `moov` and the `mdat` box header: the file's first bytes.
    public let header: [UInt8]
    /// Then these byte ranges of ``stream``, in order: `(start, count)`, bytes.
    public let extents: [(start: Int64, count: Int64)]
    /// The file's length, bytes.
    public let length: Int64
    /// Video samples (access units) in the file.
    public let frames: Int
    /// Video duration, seconds (the sum of the samples' durations).
    public let seconds: Double
    /// When the first video sample is presented on the file's timeline, seconds: its composition offset
    /// (B-frames delay it, and no edit list hides that).
    public let presentationOffset: Double?

    /// The plan of `run` (one run: its init segment, then its fragments). Reads the init segment and the
    /// first bytes of each fragment (``HallwatchStorage/RecordingStream/peek(record:count:)``), keeping only
    /// each `moof` while the layout is made (a few KiB per fragment).
    /// - Returns: `nil` when the run has no init segment first or no fragment.
    /// - Throws: ``HallwatchStorage/StorageError`` reading the records; ``HallwatchMedia/MediaError``
    ///   `media.file` when they do not form an MP4 (ISO/IEC 14496-12 §8.8).
    public init?(_ run: RecordingStream) throws {
        guard run.fragmentCount > 0 else { return nil }
        let records = run.records
        guard let initRecord = records.first, initRecord.isInitSegment else { return nil }
        let initSegment = try run.read(from: 0, count: Int(initRecord.bytes))
        var fragments: [ProgressiveMP4.Fragment] = []
        var fragmentStarts: [Int64] = []
        for (i, r) in records.enumerated() where !r.isInitSegment {
            var head = try run.peek(record: i, count: 16 << 10)
            if let need = ProgressiveMP4.headBytesNeeded(head) {
                if need > head.count, Int64(need) <= r.bytes {
                    head = try run.peek(record: i, count: need)
                } else if need < head.count {
                    // A copy of the moof alone (removeSubrange keeps the capacity): memory grows with the moofs,
                    // not with 16 KiB per fragment (29 MB for an hour of 2 s fragments).
                    head = Array(head[..<need])
                }
            }
            fragments.append(.init(head: head, bytes: r.bytes))
            fragmentStarts.append(r.streamOffset)
        }
        let layout = try ProgressiveMP4.layout(initSegment: initSegment, fragments: fragments)
        stream = run
        header = layout.header
        extents = layout.extents.map { (fragmentStarts[$0.fragment] + $0.offset, $0.count) }
        length = layout.totalBytes
        frames = layout.sampleCounts[layout.videoTrack] ?? 0
        seconds = layout.videoSeconds
        presentationOffset =
            layout.videoTimescale > 0
            ? Double(layout.videoFirstCompositionOffset) / Double(layout.videoTimescale) : nil
    }
}

/// Writes a ``ProgressiveRun`` to a file in one pass while serving its bytes to a reader: a
/// ``HallwatchMedia/SeekableByteSource`` over the planned file whose reads also append to the output file,
/// and to its SHA-256, every byte the first time the reading gets past it.
///
/// The evidence bundle hands this source to ``HallwatchMedia/FrameHash/compute(source:textPath:)``: the
/// framehash's demuxer reads the file's bytes from the stored records (each record checked against the index
/// and its CRC-32C), and the same bytes go to disk and through SHA-256 once (swift-crypto), never re-read from
/// the written file. A read ahead of what is written first writes the bytes in between; a look back is served
/// from the records again. ``finish()`` writes whatever the reader never asked for (nothing, for an MP4 the
/// demuxer reads to its end) and closes the file. Memory: one stored record
/// (``HallwatchStorage/RecordingStreamCursor``) and one buffer of ``bufferBytes``, whatever the run's length.
public final class ProgressiveRunWriter: SeekableByteSource {
    /// The plan written.
    public let run: ProgressiveRun
    /// Bytes written so far (and hashed): the file's first `written` bytes.
    public private(set) var written: Int64 = 0
    /// Bytes the reader asked for again, behind ``written`` (read from the records a second time): a few
    /// libavformat probe buffers, not a second pass.
    public private(set) var readAgain: Int64 = 0
    private let cursor: RecordingStreamCursor
    /// The file and its SHA-256, written on a thread of their own.
    private let file: HashingFileWriter
    /// File offset where each extent starts (after the header).
    private let extentStarts: [Int64]
    private let onProgress: ((Int64) -> Void)?
    private var scratch: [UInt8]

    /// Size of the buffer used to fill a forward jump and to write what was never read, bytes.
    public static let bufferBytes = 1 << 20

    /// Creates `path` (which must not exist) for `run`'s bytes.
    /// - Parameter progress: Told the stream bytes of `run` written so far, every
    ///   ``EvidenceBundle/progressStepBytes``.
    /// - Throws: ``EvidenceBundleError`` `export.bundle` when the file cannot be created.
    public init(_ run: ProgressiveRun, to path: String, progress: ((Int64) -> Void)? = nil) throws {
        self.run = run
        cursor = run.stream.cursor()
        onProgress = progress
        var starts: [Int64] = []
        var at = Int64(run.header.count)
        for e in run.extents {
            starts.append(at)
            at += e.count
        }
        extentStarts = starts
        scratch = []
        file = try HashingFileWriter(creating: path)
    }

    /// The planned file's length, bytes.
    public var lengthBytes: Int64 { run.length }

    /// Copies the planned file's bytes from `offset` into `buffer`; the part past ``written`` is appended to
    /// the file and the SHA-256 first (after the bytes between ``written`` and `offset`, when it jumps ahead).
    /// - Throws: ``HallwatchStorage/StorageError`` reading a record (overwritten, corrupt, I/O);
    ///   ``EvidenceBundleError`` `export.bundle` when the file cannot be written (a full disk: ENOSPC).
    public func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard offset >= 0, offset < run.length, buffer.count > 0 else { return 0 }
        if offset > written { try writeThrough(offset) }
        let n = try copy(from: offset, into: buffer)
        let end = offset + Int64(n)
        readAgain += min(end, written) - offset
        if end > written {
            try append(UnsafeRawBufferPointer(rebasing: buffer[Int(written - offset)..<n]))
        }
        return n
    }

    /// Writes the rest of the file, closes it (no `fsync`: the bundle is a copy, the records stay on the disk)
    /// and returns its SHA-256, lower-case hex.
    /// - Throws: as ``read(at:into:)``; `export.bundle` when closing fails.
    public func finish() throws -> String {
        try writeThrough(run.length)
        return try file.finish()
    }

    /// Appends the planned bytes from ``written`` up to `end`.
    private func writeThrough(_ end: Int64) throws {
        if scratch.isEmpty { scratch = [UInt8](repeating: 0, count: Self.bufferBytes) }
        while written < end {
            let want = Int(min(Int64(scratch.count), end - written))
            try scratch.withUnsafeMutableBytes { buffer in
                let part = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want])
                let n = try copy(from: written, into: part)
                guard n == want else {
                    throw StorageError(.overwritten, "the recording ended at \(written + Int64(n)) of \(run.length)")
                }
                try append(UnsafeRawBufferPointer(part))
            }
        }
    }

    /// Copies the planned bytes from `offset` into `buffer`: header bytes, then stream ranges.
    private func copy(from offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        var copied = 0
        var at = offset
        let headerEnd = Int64(run.header.count)
        if at < headerEnd {
            let n = min(buffer.count, Int(headerEnd - at))
            run.header.withUnsafeBytes { h in
                buffer.baseAddress!.copyMemory(from: h.baseAddress! + Int(at), byteCount: n)
            }
            copied += n
            at += Int64(n)
        }
        // The extent holding `at`: the last one starting at or before it.
        var lo = 0
        var hi = extentStarts.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if extentStarts[mid] <= at { lo = mid + 1 } else { hi = mid }
        }
        var i = lo - 1
        while copied < buffer.count, i >= 0, i < run.extents.count {
            let e = run.extents[i]
            let within = at - extentStarts[i]
            let n = Int(min(Int64(buffer.count - copied), e.count - within))
            if n > 0 {
                let part = UnsafeMutableRawBufferPointer(rebasing: buffer[copied..<(copied + n)])
                let got = try cursor.read(at: e.start + within, into: part)
                guard got == n else {
                    throw StorageError(.overwritten, "the recording ended at \(e.start + within + Int64(got))")
                }
                copied += n
                at += Int64(n)
            }
            i += 1
        }
        return copied
    }

    /// Writes `bytes` at the end of the file and adds them to the SHA-256 (``HashingFileWriter``).
    private func append(_ bytes: UnsafeRawBufferPointer) throws {
        try file.append(bytes)
        let before = written
        written += Int64(bytes.count)
        if let onProgress, before / EvidenceBundle.progressStepBytes != written / EvidenceBundle.progressStepBytes {
            onProgress(written)
        }
    }
}
