import HallwatchCore

/// A camera's recording over a time range as one fMP4 byte stream of known ``length`` (bytes): each
/// run's init segment (`ftyp`+`moov`, ISO/IEC 14496-12 §8.2) then its fragments (`moof`+`mdat`, §8.8),
/// run after run, possibly across slots and disks. Built from the index alone
/// (``RecordingReader/stream(camera:from:to:startAtKeyframe:)``, ``RecordingLibrary/stream(camera:from:to:startAtKeyframe:)``);
/// ``read(from:count:)`` reads only the records a byte range covers, each checked against its CRC-32C,
/// so an HTTP range request (RFC 9110 §14) is answered without reading the rest.
public struct RecordingStream: Sendable {
    /// One record's payload in the stream.
    struct Part: Sendable {
        let reader: RecordingReader
        let slot: Int
        /// Offset of the record (its header), bytes from the slot file's start.
        let offset: Int64
        let payloadBytes: Int64
        let expected: Expectation
        /// Fragments only: media start (90 kHz ticks in the run) and box UTC start.
        var mediaStart90k: Int64? = nil
        var startUTC: UTCMicros? = nil
    }

    let parts: [Part]
    /// Where each part starts in the stream, bytes; one more entry than parts (the total).
    let starts: [Int64]

    init(parts: [Part]) {
        self.parts = parts
        var starts: [Int64] = [0]
        starts.reserveCapacity(parts.count + 1)
        for p in parts { starts.append(starts.last! + p.payloadBytes) }
        self.starts = starts
    }

    /// Total bytes of the stream.
    public var length: Int64 { starts.last! }
    /// The stream cut at each init segment: one stream per run (its init segment, then its fragments), in
    /// order. A run is what one MP4 track can hold; the next run may change codec parameters (a CMAF track
    /// switch), so each is demuxed on its own. Reads nothing.
    public var runs: [RecordingStream] {
        var out: [[Part]] = []
        for p in parts {
            if p.expected.kind == .initSegment || out.isEmpty { out.append([p]) } else { out[out.count - 1].append(p) }
        }
        return out.map(RecordingStream.init(parts:))
    }

    /// Box UTC at which the stream's first fragment starts (its first keyframe); `nil` without fragments.
    public var firstFragmentUTC: UTCMicros? { parts.first { $0.expected.kind != .initSegment }?.startUTC }

    /// The run ids in the stream, in order (one per init segment).
    public var runIDs: [UInt64] { parts.filter { $0.expected.kind == .initSegment }.map(\.expected.run) }

    /// A reader of this stream that holds at most one record's payload (see ``RecordingStreamCursor``).
    public func cursor() -> RecordingStreamCursor { RecordingStreamCursor(self) }
    /// Number of init segments (runs) and fragments in the stream.
    public var initSegmentCount: Int { parts.count { $0.expected.kind == .initSegment } }
    public var fragmentCount: Int { parts.count - initSegmentCount }

    /// Bytes `[from, from + count)` of the stream (fewer at its end; empty past it).
    /// - Throws: ``StorageError/Code/overwritten`` when a record was pruned or reused since the index
    ///   was read; ``StorageError/Code/corrupt`` when one fails its CRC-32C or does not match the index;
    ///   ``StorageError/Code/io``; ``StorageError/Code/invalidArgument`` for a negative range.
    public func read(from: Int64, count: Int) throws(StorageError) -> [UInt8] {
        guard from >= 0, count >= 0 else {
            throw StorageError(.invalidArgument, "negative byte range \(from)+\(count)")
        }
        let end = min(length, from + Int64(count))
        guard from < end else { return [] }
        let lo = part(containing: from)
        var out: [UInt8] = []
        out.reserveCapacity(Int(end - from))
        var files: [ObjectIdentifier: SlotFiles] = [:]
        var i = lo
        while i < parts.count && starts[i] < end {
            let p = parts[i]
            let key = ObjectIdentifier(p.reader)
            var f = files[key] ?? SlotFiles(disk: p.reader.disk, opener: p.reader.opener)
            let payload = try f.readRecord(slot: p.slot, offset: p.offset, expected: p.expected).payload
            files[key] = f
            let a = Int(max(0, from - starts[i]))
            let b = Int(min(p.payloadBytes, end - starts[i]))
            out += payload[a..<b]
            i += 1
        }
        return out
    }

    /// Index of the last part starting at or before `offset` (bytes; `0 <= offset < length`).
    func part(containing offset: Int64) -> Int {
        var lo = 0
        var hi = parts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if starts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }
}

/// Reads a ``RecordingStream`` at any offset with a bounded buffer: one record's payload (its `moof`+`mdat`,
/// a second or so of video: about 1 MB at 8 Mbit/s) and the slot file it is in. A read inside the record held
/// is a copy; a read past it loads the record that holds it, checked against the index and its CRC-32C,
/// and drops the one before. Sequential reads, as a demuxer makes, therefore read each record once, whatever
/// the length of the stream.
///
/// Not thread-safe: one reader at a time (each export makes its own).
public final class RecordingStreamCursor {
    /// The stream read.
    public let stream: RecordingStream
    /// Slot files of the disk read last, opened on demand; dropped when the reading moves to another disk
    /// or slot, so at most one slot file is open.
    private var files: SlotFiles?
    private var filesKey: (reader: ObjectIdentifier, slot: Int)?
    /// The record payload held: its part index and bytes.
    private var held: (part: Int, payload: [UInt8])?

    init(_ stream: RecordingStream) { self.stream = stream }

    /// Total bytes of the stream.
    public var length: Int64 { stream.length }

    /// Copies bytes from `offset` (bytes from the stream's start) into `buffer`.
    /// - Returns: The bytes copied: `buffer.count`, fewer only at the stream's end, 0 at or past it.
    /// - Throws: as ``RecordingStream/read(from:count:)``.
    public func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws(StorageError) -> Int {
        guard offset >= 0 else { throw StorageError(.invalidArgument, "negative stream offset \(offset)") }
        var copied = 0
        var at = offset
        while copied < buffer.count, at < stream.length {
            let i: Int
            if let held, stream.starts[held.part] <= at, at < stream.starts[held.part + 1] {
                i = held.part
            } else {
                i = stream.part(containing: at)
            }
            let payload = try self.payload(i)
            let from = Int(at - stream.starts[i])
            let n = min(buffer.count - copied, payload.count - from)
            payload.withUnsafeBytes { src in
                (buffer.baseAddress! + copied).copyMemory(from: src.baseAddress! + from, byteCount: n)
            }
            copied += n
            at += Int64(n)
        }
        return copied
    }

    /// The payload of part `i`, from the one held or read now (replacing it).
    private func payload(_ i: Int) throws(StorageError) -> [UInt8] {
        if let held, held.part == i { return held.payload }
        held = nil  // release the previous record before reading the next
        let p = stream.parts[i]
        let key = (ObjectIdentifier(p.reader), p.slot)
        if filesKey.map({ $0.reader != key.0 || $0.slot != key.1 }) ?? true {
            files = SlotFiles(disk: p.reader.disk, opener: p.reader.opener)
            filesKey = key
        }
        let payload = try files!.readRecord(slot: p.slot, offset: p.offset, expected: p.expected).payload
        guard Int64(payload.count) == p.payloadBytes else {
            throw StorageError(
                .corrupt,
                "slot \(p.slot) offset \(p.offset): payload is \(payload.count) bytes, index says \(p.payloadBytes)")
        }
        held = (i, payload)
        return payload
    }
}

extension RecordingLibrary {
    /// ``RecordingReader/stream(camera:from:to:startAtKeyframe:)`` over every disk: a run found on
    /// several disks is merged in media order, a fragment written to two disks (F3) kept once, and runs
    /// follow each other in time order.
    /// - Throws: as ``RecordingReader/stream(camera:from:to:startAtKeyframe:)``.
    public func stream(camera: CameraID, from: UTCMicros, to: UTCMicros, startAtKeyframe: Bool = true)
        throws(StorageError) -> RecordingStream
    {
        // Per run: its init part (from the disk that has its earliest fragment) and its fragment parts.
        var runs: [UInt64: (initPart: RecordingStream.Part, fragments: [RecordingStream.Part])] = [:]
        for r in readers {
            let s = try r.reader.stream(camera: camera, from: from, to: to, startAtKeyframe: startAtKeyframe)
            var current: UInt64?
            for p in s.parts {
                if p.expected.kind == .initSegment {
                    current = p.expected.run
                    if runs[p.expected.run] == nil { runs[p.expected.run] = (p, []) }
                } else if let run = current {
                    runs[run]?.fragments.append(p)
                }
            }
        }
        var parts: [RecordingStream.Part] = []
        let ordered = runs.values.sorted {
            ($0.fragments.map { $0.startUTC?.micros ?? 0 }.min() ?? 0)
                < ($1.fragments.map { $0.startUTC?.micros ?? 0 }.min() ?? 0)
        }
        for run in ordered {
            parts.append(run.initPart)
            var seen = Set<Int64>()
            for f in run.fragments.sorted(by: { ($0.mediaStart90k ?? 0) < ($1.mediaStart90k ?? 0) })
            where seen.insert(f.mediaStart90k ?? 0).inserted {
                parts.append(f)
            }
        }
        return RecordingStream(parts: parts)
    }
}
