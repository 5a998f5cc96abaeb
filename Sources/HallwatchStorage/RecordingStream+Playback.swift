import Foundation
import GRDB
import HallwatchCore

/// What playback needs of a ``RecordingStream`` besides its bytes: where each record lies in it, which
/// stored record it is (slot, generation: the identity an HTTP `ETag` covers, RFC 9110 §8.8.3), and the first
/// bytes of a fragment (its `moof`, ISO/IEC 14496-12 §8.8.4) without reading the rest.
extension RecordingStream {
    /// One record of the stream, as the index describes it (nothing read).
    public struct Record: Sendable, Equatable {
        /// Init segment (`ftyp`+`moov`) or fragment (`moof`+`mdat`).
        public var isInitSegment: Bool
        /// The run it belongs to (the capture worker's run id, UTC µs at which the run started).
        public var run: UInt64
        /// Where its payload starts in the stream, bytes.
        public var streamOffset: Int64
        /// Payload bytes.
        public var bytes: Int64
        /// Fragments: start on the box's UTC clock; `nil` for an init segment.
        public var startUTC: UTCMicros?
        /// Fragments: media start, 90 kHz ticks since the run's start; `nil` for an init segment.
        public var start90k: Int64?
        /// Fragments: duration, 90 kHz ticks (0 for an init segment).
        public var duration90k: Int64
        /// Fragments: whether it starts with a keyframe (every stored keyframe starts a fragment).
        public var keyframe: Bool
        /// Identity of the stored record: disk UUID, slot, slot generation (a reused slot has a newer one) and
        /// byte offset in the slot file, as `uuid/slot/generation/offset`. Equal identities hold equal bytes.
        public var identity: String
    }

    /// Every record of the stream in order, from the index alone.
    public var records: [Record] {
        parts.indices.map { i in
            let p = parts[i]
            return Record(
                isInitSegment: p.expected.kind == .initSegment, run: p.expected.run, streamOffset: starts[i],
                bytes: p.payloadBytes, startUTC: p.startUTC, start90k: p.mediaStart90k,
                duration90k: p.expected.duration90k ?? 0, keyframe: p.expected.keyframe ?? false,
                identity: "\(p.reader.disk.meta.diskUUID.uuidString)/\(p.slot)/\(p.expected.generation)/\(p.offset)")
        }
    }

    /// The first `count` bytes (fewer when the payload is shorter) of record `index`'s payload, after its
    /// record header was checked against the index (kind, camera, run, generation, length) but without its
    /// CRC-32C, which needs the whole payload: for the `moof` of each fragment when a progressive MP4's
    /// `moov` is built. A later ``read(from:count:)`` of the same record checks the CRC.
    /// - Throws: as ``read(from:count:)``; ``StorageError/Code/invalidArgument`` for an index out of range.
    public func peek(record index: Int, count: Int) throws(StorageError) -> [UInt8] {
        guard parts.indices.contains(index), count >= 0 else {
            throw StorageError(.invalidArgument, "record \(index) of \(parts.count)")
        }
        let p = parts[index]
        var files = SlotFiles(disk: p.reader.disk, opener: p.reader.opener)
        _ = try files.readRecord(slot: p.slot, offset: p.offset, expected: p.expected, checkingPayload: false)
        let n = Int(min(Int64(count), p.payloadBytes))
        return try files.file(p.slot).readBytes(n, at: p.offset + Int64(RecordHeader.byteCount))
    }
}

extension RecordingReader {
    /// The evidence holds in this disk's index (released and lapsed ones too), read-only; empty when the index
    /// predates holds (schema 1: the pruner or `hallwatchctl hold` migrates it).
    /// - Throws: ``StorageError/Code/index`` when the index cannot be read.
    public func holds() throws(StorageError) -> [EvidenceHold] {
        try withSQLite("reading holds") {
            try db.read { db in
                guard try db.tableExists("evidenceHold") else { return [] }
                return try RetentionIndex.holds(db)
            }
        }
    }
}

extension RecordingLibrary {
    /// The holds of `camera` on every disk, merged (one per id), oldest first.
    /// - Throws: ``StorageError/Code/index``.
    public func holds(camera: CameraID) throws(StorageError) -> [EvidenceHold] {
        var all: [EvidenceHold] = []
        for r in readers { all += try r.reader.holds().filter { $0.camera == camera } }
        return EvidenceHolds.merge(all)
    }
}
