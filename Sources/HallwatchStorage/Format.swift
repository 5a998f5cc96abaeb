import Foundation
import HallwatchCore

/// The fixed header at offset 0 of every slot file (format version 1, 128 bytes, little-endian).
///
/// Written once by ``RecordingDisk/initialize(at:box:slotCount:slotSizeBytes:clocks:progress:)`` with
/// generation 0 (never used), then rewritten each time a ``DiskWriter`` takes the slot for a camera
/// (protocol step T4), with the generation incremented. Every record in the slot repeats the
/// generation, so records left over from an earlier use of the slot never pass for current ones.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `HWSL` (`48 57 53 4C`) |
/// | 4 | 2 | format version (1) |
/// | 6 | 2 | header length in bytes (128) |
/// | 8 | 16 | disk UUID (RFC 4122 byte order), as in `meta` |
/// | 24 | 4 | slot number (the file name's `NNNNNN`) |
/// | 28 | 4 | reserved, 0 |
/// | 32 | 8 | generation: 0 = never used, +1 each time the slot is taken |
/// | 40 | 8 | take sequence: disk-wide counter, +1 each time any slot is taken (orders slots by age) |
/// | 48 | 8 | taken at: box UTC, µs since the epoch (0 when never used) |
/// | 56 | 32 | camera id, UTF-8, zero-padded (all zero when never used) |
/// | 88 | 36 | reserved, 0 |
/// | 124 | 4 | CRC-32C (RFC 3720 B.4) of bytes 0..<124 |
///
/// Records start at offset 128 (``byteCount``).
public struct SlotHeader: Sendable, Equatable {
    /// `HWSL` read as a little-endian UInt32.
    public static let magic: UInt32 = 0x4C53_5748
    /// Bytes; also where the first record starts.
    public static let byteCount = 128
    /// The slot header layout version.
    public static let formatVersion: UInt16 = 1

    /// The disk's UUID (from `meta`).
    public var diskUUID: UUID
    /// The slot's number (its file name).
    public var slot: Int
    /// 0 = never used; incremented each time the slot is (re)used.
    public var generation: UInt64
    /// Disk-wide take counter; the smallest among closed slots is the oldest (ring reuse order).
    public var takeSequence: UInt64
    /// Box UTC when the slot was taken.
    public var takenAt: UTCMicros
    /// The camera whose records fill the slot; `nil` when never used.
    public var camera: CameraID?

    /// A header with the given fields; the CRC is computed by ``encode()``.
    public init(
        diskUUID: UUID, slot: Int, generation: UInt64, takeSequence: UInt64, takenAt: UTCMicros, camera: CameraID?
    ) {
        self.diskUUID = diskUUID
        self.slot = slot
        self.generation = generation
        self.takeSequence = takeSequence
        self.takenAt = takenAt
        self.camera = camera
    }

    /// The 128 header bytes, CRC included.
    public func encode() -> [UInt8] {
        var w = ByteWriter(capacity: Self.byteCount)
        w.u32(Self.magic)
        w.u16(Self.formatVersion)
        w.u16(UInt16(Self.byteCount))
        w.raw(diskUUID.bytes)
        w.u32(UInt32(slot))
        w.u32(0)
        w.u64(generation)
        w.u64(takeSequence)
        w.i64(takenAt.micros)
        w.raw(CameraField.encode(camera))
        w.raw([UInt8](repeating: 0, count: 36))
        w.u32(CRC32C.checksum(w.bytes))
        return w.bytes
    }

    /// The CRC stored in the last 4 bytes; it seeds the record chain (``RecordHeader/previousCRC``).
    public var crc: UInt32 {
        let b = encode()
        return UInt32(b[124]) | UInt32(b[125]) << 8 | UInt32(b[126]) << 16 | UInt32(b[127]) << 24
    }

    /// Decodes and validates (magic, version, length, CRC, camera field).
    /// - Throws: ``StorageError/Code/corrupt`` or ``StorageError/Code/version``.
    public static func decode(_ bytes: [UInt8]) throws(StorageError) -> SlotHeader {
        guard bytes.count >= byteCount else { throw StorageError(.corrupt, "slot header of \(bytes.count) bytes") }
        var r = ByteReader(bytes)
        guard r.u32() == magic else { throw StorageError(.corrupt, "bad slot header magic") }
        let version = r.u16()
        guard version == formatVersion else {
            throw StorageError(.version, "slot header format version \(version), expected \(formatVersion)")
        }
        guard r.u16() == UInt16(byteCount) else { throw StorageError(.corrupt, "bad slot header length") }
        let stored = UInt32(bytes[124]) | UInt32(bytes[125]) << 8 | UInt32(bytes[126]) << 16 | UInt32(bytes[127]) << 24
        guard CRC32C.checksum(Array(bytes[0..<124])) == stored else {
            throw StorageError(.corrupt, "slot header CRC mismatch")
        }
        let uuid = UUID(bytes: r.raw(16))
        let slot = Int(r.u32())
        _ = r.u32()
        let generation = r.u64()
        let take = r.u64()
        let takenAt = r.i64()
        let camera = try CameraField.decode(r.raw(32))
        return SlotHeader(
            diskUUID: uuid, slot: slot, generation: generation, takeSequence: take, takenAt: UTCMicros(takenAt),
            camera: camera)
    }
}

/// A record's kind on disk. The numbers are stored in every record header: never renumber them. They are
/// the disk's own: the data plane numbers its wire kinds separately (HallwatchDataPlane's `WireKind`), so
/// a kind that exists only on the wire can never be written here.
public enum RecordKind: UInt8, Sendable {
    /// ISO/IEC 14496-12 `ftyp`+`moov`.
    case initSegment = 2
    /// `moof`+`mdat`.
    case fragment = 3

    /// The record kind that stores a segment of `kind`.
    public init(_ kind: SegmentKind) { self = kind == .initSegment ? .initSegment : .fragment }
    /// The segment kind this record holds.
    public var segmentKind: SegmentKind { self == .initSegment ? .initSegment : .fragment }
}

/// The fixed header in front of every record's payload (format version 1, 96 bytes, little-endian).
///
/// A record is this header followed by `payloadBytes` of payload: for an init segment an
/// ISO/IEC 14496-12 `ftyp`+`moov` (§4.3, §8.2), for a fragment a `moof`+`mdat`
/// (§8.8, §8.1.1). Records follow each other without padding from offset ``SlotHeader/byteCount``.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `HWRC` (`48 57 52 43`) |
/// | 4 | 1 | kind: 2 init segment, 3 fragment (``RecordKind``) |
/// | 5 | 1 | flags: bit 0 = fragment starts with a keyframe; other bits 0 |
/// | 6 | 2 | header length in bytes (96) |
/// | 8 | 8 | slot generation (must equal the slot header's) |
/// | 16 | 32 | camera id, UTF-8, zero-padded (must equal the slot header's) |
/// | 48 | 8 | run id |
/// | 56 | 8 | start, 90 kHz ticks since the run's start (signed) |
/// | 64 | 8 | UTC anchor of the start, µs since the epoch (signed) |
/// | 72 | 4 | sequence within the run (0 for the init segment) |
/// | 76 | 4 | duration, 90 kHz ticks (signed, ≥ 0) |
/// | 80 | 4 | payload length in bytes |
/// | 84 | 4 | reserved, 0 |
/// | 88 | 4 | previous CRC: the CRC-32C of the record before this one in the slot, or of the slot header for the first record |
/// | 92 | 4 | CRC-32C (RFC 3720 B.4) of bytes 0..<92 followed by the payload |
///
/// A scan from the slot's start stops at the first record whose magic, header length, kind,
/// generation, camera, previous CRC or CRC is wrong, or whose length would overrun the slot. The
/// previous-CRC chain means a stale record left inside an overwritten torn tail cannot be accepted
/// even if its own bytes are intact (it would have to predict the CRC of the record now before it).
public struct RecordHeader: Sendable, Equatable {
    /// `HWRC` read as a little-endian UInt32.
    public static let magic: UInt32 = 0x4352_5748
    /// Bytes.
    public static let byteCount = 96
    /// Bytes of the header covered by ``crc`` (everything before it).
    static let crcCoveredBytes = 92

    /// Init segment or fragment.
    public var kind: SegmentKind
    /// The fragment starts with a keyframe.
    public var keyframe: Bool
    /// The slot's generation when the record was written.
    public var generation: UInt64
    /// The camera (equals the slot header's).
    public var camera: CameraID
    /// Run id.
    public var run: UInt64
    /// Start, 90 kHz ticks since the run's start.
    public var start90k: MediaTime90k
    /// UTC anchor of the start, µs.
    public var utc: UTCMicros
    /// Sequence within the run (0 for the init segment).
    public var sequence: UInt32
    /// 90 kHz ticks.
    public var duration90k: Int32
    /// Bytes following the header.
    public var payloadBytes: UInt32
    /// CRC-32C of the previous record in the slot (of the slot header for the first).
    public var previousCRC: UInt32
    /// CRC-32C of header bytes 0..<92 and the payload.
    public var crc: UInt32

    /// The header for `meta` with `crc` left 0 (see ``encode(payload:)``).
    public init(camera: CameraID, meta: FragmentMeta, generation: UInt64, payloadBytes: UInt32, previousCRC: UInt32) {
        self.kind = meta.kind
        self.keyframe = meta.keyframe
        self.generation = generation
        self.camera = camera
        self.run = meta.run
        self.start90k = meta.start90k
        self.utc = meta.utc
        self.sequence = meta.sequence
        self.duration90k = meta.duration90k
        self.payloadBytes = payloadBytes
        self.previousCRC = previousCRC
        self.crc = 0
    }

    /// The record's metadata as the data plane carries it.
    public var meta: FragmentMeta {
        FragmentMeta(
            kind: kind, keyframe: keyframe, run: run, sequence: sequence, start90k: start90k, duration90k: duration90k,
            utc: utc)
    }

    /// Header plus payload, bytes.
    public var recordBytes: Int64 { Int64(Self.byteCount) + Int64(payloadBytes) }

    /// Bytes 0..<92 (everything the CRC does not hold).
    func encodePrefix() -> [UInt8] {
        var w = ByteWriter(capacity: Self.byteCount)
        w.u32(Self.magic)
        w.u8(RecordKind(kind).rawValue)
        w.u8(keyframe ? 1 : 0)
        w.u16(UInt16(Self.byteCount))
        w.u64(generation)
        w.raw(CameraField.encode(camera))
        w.u64(run)
        w.i64(start90k.ticks)
        w.i64(utc.micros)
        w.u32(sequence)
        w.u32(UInt32(bitPattern: duration90k))
        w.u32(payloadBytes)
        w.u32(0)
        w.u32(previousCRC)
        return w.bytes
    }

    /// The 96 header bytes with the CRC computed over them and `payload` (which must be
    /// ``payloadBytes`` long); also sets ``crc``.
    public mutating func encode(payload: UnsafeRawBufferPointer) -> [UInt8] {
        var bytes = encodePrefix()
        var c = CRC32C()
        c.update(bytes)
        c.update(payload)
        crc = c.value
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Decodes the fixed fields and checks what needs no context (magic, header length, kind, reserved
    /// fields, duration ≥ 0). The caller checks generation, camera, chain, length and CRC.
    /// - Throws: ``StorageError/Code/corrupt``.
    public static func decode(_ bytes: [UInt8]) throws(StorageError) -> RecordHeader {
        guard bytes.count >= byteCount else { throw StorageError(.corrupt, "record header of \(bytes.count) bytes") }
        var r = ByteReader(bytes)
        guard r.u32() == magic else { throw StorageError(.corrupt, "bad record magic") }
        let kindByte = r.u8()
        let flags = r.u8()
        guard let kind = RecordKind(rawValue: kindByte)?.segmentKind else {
            throw StorageError(.corrupt, "bad record kind \(kindByte)")
        }
        guard flags & ~1 == 0 else { throw StorageError(.corrupt, "unknown record flags \(flags)") }
        guard r.u16() == UInt16(byteCount) else { throw StorageError(.corrupt, "bad record header length") }
        let generation = r.u64()
        guard let camera = try CameraField.decode(r.raw(32)) else {
            throw StorageError(.corrupt, "record without camera")
        }
        let run = r.u64()
        let start = r.i64()
        let utc = r.i64()
        let seq = r.u32()
        let dur = Int32(bitPattern: r.u32())
        let len = r.u32()
        let reserved = r.u32()
        let prev = r.u32()
        let crc = r.u32()
        guard reserved == 0, dur >= 0 else { throw StorageError(.corrupt, "bad record reserved field or duration") }
        var h = RecordHeader(
            camera: camera,
            meta: FragmentMeta(
                kind: kind, keyframe: flags & 1 != 0, run: run, sequence: seq, start90k: MediaTime90k(start),
                duration90k: dur, utc: UTCMicros(utc)),
            generation: generation, payloadBytes: len, previousCRC: prev)
        h.crc = crc
        return h
    }

    /// Whether ``crc`` matches this header and `payload`.
    public func crcMatches(payload: UnsafeRawBufferPointer) -> Bool {
        var c = CRC32C()
        c.update(encodePrefix())
        c.update(payload)
        return c.value == crc
    }
}

/// The 32-byte zero-padded camera field of slot and record headers.
enum CameraField {
    static func encode(_ camera: CameraID?) -> [UInt8] {
        var b = Array((camera?.rawValue ?? "").utf8)
        b.append(contentsOf: [UInt8](repeating: 0, count: CameraID.maxBytes - b.count))
        return b
    }

    /// `nil` for all zeros.
    static func decode(_ b: [UInt8]) throws(StorageError) -> CameraID? {
        let end = b.firstIndex(of: 0) ?? b.count
        guard b[end...].allSatisfy({ $0 == 0 }) else { throw StorageError(.corrupt, "camera field not zero-padded") }
        if end == 0 { return nil }
        guard let text = String(validating: b[0..<end], as: UTF8.self), let id = CameraID(text) else {
            throw StorageError(.corrupt, "invalid camera id in header")
        }
        return id
    }
}

extension UUID {
    /// The 16 bytes in RFC 4122 order.
    var bytes: [UInt8] { withUnsafeBytes(of: uuid) { Array($0) } }
    init(bytes b: [UInt8]) {
        self.init(
            uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15])
        )
    }
}

/// One record found by ``SlotScanner``.
struct ScannedRecord {
    var header: RecordHeader
    /// Bytes from the slot file's start.
    var offset: Int64
    var recordBytes: Int64 { header.recordBytes }
}

/// Walks the records of one slot from a known-good point, checking each against the slot's
/// generation and camera and the CRC chain (protocol step R5). Stops at the first record that fails;
/// ``stopReason`` says why (`nil` when the slot's end was reached exactly).
struct SlotScanner {
    let file: any SlotFileHandle
    let slotSizeBytes: Int64
    let generation: UInt64
    let camera: CameraID
    /// Offset of the next record to read.
    private(set) var offset: Int64
    /// CRC of the last accepted record (or of the slot header).
    private(set) var chainCRC: UInt32
    private(set) var stopReason: String?
    /// The scan stopped at a record of this slot's generation and camera that is not whole (broken
    /// chain, overrun, short or CRC mismatch): a torn write, not the normal end of data.
    private(set) var stoppedAtTornRecord = false
    private var payloadBuffer: [UInt8] = []

    init(
        file: any SlotFileHandle, slotSizeBytes: Int64, generation: UInt64, camera: CameraID, offset: Int64,
        chainCRC: UInt32
    ) {
        self.file = file
        self.slotSizeBytes = slotSizeBytes
        self.generation = generation
        self.camera = camera
        self.offset = offset
        self.chainCRC = chainCRC
    }

    /// The next valid record, or `nil` at the end of valid data.
    /// - Throws: ``StorageError/Code/io`` only; invalid bytes end the scan instead.
    mutating func next() throws(StorageError) -> ScannedRecord? {
        guard stopReason == nil else { return nil }
        guard offset + Int64(RecordHeader.byteCount) <= slotSizeBytes else {
            stopReason = "end of slot"
            return nil
        }
        let hb = try file.readBytes(RecordHeader.byteCount, at: offset)
        let h: RecordHeader
        do { h = try RecordHeader.decode(hb) } catch {
            stopReason = error.message
            return nil
        }
        guard h.generation == generation else {
            stopReason = "generation \(h.generation), slot is at \(generation)"
            return nil
        }
        guard h.camera == camera else {
            stopReason = "record of camera \(h.camera) in a slot of \(camera)"
            return nil
        }
        guard h.previousCRC == chainCRC else {
            stopReason = "broken CRC chain"
            stoppedAtTornRecord = true
            return nil
        }
        guard offset + h.recordBytes <= slotSizeBytes else {
            stopReason = "record length overruns the slot"
            stoppedAtTornRecord = true
            return nil
        }
        let n = Int(h.payloadBytes)
        if payloadBuffer.count < n { payloadBuffer = [UInt8](repeating: 0, count: n) }
        let at = offset + Int64(RecordHeader.byteCount)
        let f = file
        let got = try narrow {
            try payloadBuffer.withUnsafeMutableBytes { b in
                try f.read(into: UnsafeMutableRawBufferPointer(rebasing: b[0..<n]), at: at)
            }
        }
        guard got == n else {
            stopReason = "record runs past the end of the file"
            stoppedAtTornRecord = true
            return nil
        }
        let ok = payloadBuffer.withUnsafeBytes { h.crcMatches(payload: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        guard ok else {
            stopReason = "record CRC mismatch"
            stoppedAtTornRecord = true
            return nil
        }
        let record = ScannedRecord(header: h, offset: offset)
        offset += h.recordBytes
        chainCRC = h.crc
        return record
    }
}
