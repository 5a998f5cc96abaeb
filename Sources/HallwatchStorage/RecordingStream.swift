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
        // The last part starting at or before `from`.
        var lo = 0
        var hi = parts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if starts[mid] <= from { lo = mid } else { hi = mid - 1 }
        }
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
