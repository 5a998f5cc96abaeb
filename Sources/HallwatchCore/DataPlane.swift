import Foundation

/// The media data plane between a capture worker and the recorder (DESIGN.md § Two planes).
///
/// A capture worker connects to the recorder's Unix stream socket and sends frames: first a `hello`
/// naming its camera, then an `initSegment` (ISO/IEC 14496-12 `ftyp`+`moov`) whenever codec parameters
/// change (each starts a new run), then `fragment`s (`moof`+`mdat`, ISO/IEC 14496-12 §8.8). Video never
/// rides the MQTT bus.
///
/// Frame layout, little-endian, 48-byte header then payload:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `HWDP` |
/// | 4 | 1 | kind (1 hello, 2 init segment, 3 fragment) |
/// | 5 | 1 | flags (bit 0: fragment starts with a keyframe) |
/// | 6 | 2 | protocol version (1) |
/// | 8 | 8 | run id |
/// | 16 | 4 | sequence number within the run |
/// | 20 | 4 | duration, 90 kHz ticks |
/// | 24 | 8 | start, 90 kHz ticks since the run's start |
/// | 32 | 8 | UTC anchor of the start, microseconds since the epoch |
/// | 40 | 4 | payload length, bytes (≤ ``maxPayloadBytes``) |
/// | 44 | 4 | reserved, 0 |
public enum DataPlane {
    /// `HWDP`
    public static let magic: UInt32 = 0x5044_5748
    public static let version: UInt16 = 1
    public static let headerBytes = 48
    /// Largest payload accepted (16 MiB); larger frames are refused as hostile or broken.
    public static let maxPayloadBytes = 16 << 20
}

/// What a data-plane frame carries.
///
/// The raw values are also stored in every record header on the recording disks (HallwatchStorage's
/// on-disk format): never renumber them.
public enum FrameKind: UInt8, Sendable, Codable {
    case hello = 1
    case initSegment = 2
    case fragment = 3
}

/// Metadata of one init segment or fragment: the same fields travel on the data plane and are stored in
/// the record header on disk.
public struct FragmentMeta: Sendable, Equatable, Hashable {
    public var kind: FrameKind
    /// The fragment begins with a keyframe (IDR for H.264, IRAP for H.265).
    public var keyframe: Bool
    /// Run id: a run is a stretch of continuous media with one init segment; chosen by the capture worker
    /// as the box UTC microseconds at which the run started, so it is unique per camera and sortable.
    public var run: UInt64
    /// 0 for the init segment, then 1, 2, … for fragments of the run.
    public var sequence: UInt32
    /// Start of the fragment's first sample (decode order), 90 kHz ticks since the run's start.
    public var start90k: MediaTime90k
    /// Sum of the video samples' durations, 90 kHz ticks.
    public var duration90k: Int32
    /// Box UTC of ``start90k``: the run's arrival anchor plus media time.
    public var utc: UTCMicros

    public init(
        kind: FrameKind, keyframe: Bool, run: UInt64, sequence: UInt32, start90k: MediaTime90k, duration90k: Int32,
        utc: UTCMicros
    ) {
        self.kind = kind
        self.keyframe = keyframe
        self.run = run
        self.sequence = sequence
        self.start90k = start90k
        self.duration90k = duration90k
        self.utc = utc
    }

    /// End of the fragment, 90 kHz ticks since the run's start.
    public var end90k: MediaTime90k { MediaTime90k(start90k.ticks + Int64(duration90k)) }
}

/// One data-plane frame.
public struct DataPlaneFrame: Sendable, Equatable {
    public var meta: FragmentMeta
    public var payload: [UInt8]
    public init(meta: FragmentMeta, payload: [UInt8]) {
        self.meta = meta
        self.payload = payload
    }

    /// A `hello` frame introducing `camera`.
    public static func hello(_ camera: CameraID) -> DataPlaneFrame {
        DataPlaneFrame(
            meta: FragmentMeta(
                kind: .hello, keyframe: false, run: 0, sequence: 0, start90k: .zero, duration90k: 0, utc: UTCMicros(0)),
            payload: Array(camera.rawValue.utf8))
    }

    /// The 48-byte header for this frame.
    public func encodeHeader() -> [UInt8] {
        var w = ByteWriter(capacity: DataPlane.headerBytes)
        w.u32(DataPlane.magic)
        w.u8(meta.kind.rawValue)
        w.u8(meta.keyframe ? 1 : 0)
        w.u16(DataPlane.version)
        w.u64(meta.run)
        w.u32(meta.sequence)
        w.u32(UInt32(bitPattern: meta.duration90k))
        w.i64(meta.start90k.ticks)
        w.i64(meta.utc.micros)
        w.u32(UInt32(payload.count))
        w.u32(0)
        return w.bytes
    }

    /// Decodes a header; returns the metadata and the payload length to read next.
    /// - Throws: ``DataPlaneError`` when the magic, version, kind or length is wrong.
    public static func decodeHeader(_ h: [UInt8]) throws -> (FragmentMeta, Int) {
        guard h.count == DataPlane.headerBytes else {
            throw DataPlaneError(code: "dataplane.short", message: "header of \(h.count) bytes")
        }
        var r = ByteReader(h)
        guard r.u32() == DataPlane.magic else {
            throw DataPlaneError(code: "dataplane.magic", message: "bad frame magic")
        }
        guard let kind = FrameKind(rawValue: r.u8()) else {
            throw DataPlaneError(code: "dataplane.kind", message: "unknown frame kind")
        }
        let flags = r.u8()
        let version = r.u16()
        guard version == DataPlane.version else {
            throw DataPlaneError(
                code: "dataplane.version", message: "protocol version \(version), expected \(DataPlane.version)")
        }
        let run = r.u64()
        let seq = r.u32()
        let dur = Int32(bitPattern: r.u32())
        let start = r.i64()
        let utc = r.i64()
        let len = Int(r.u32())
        guard len <= DataPlane.maxPayloadBytes else {
            throw DataPlaneError(
                code: "dataplane.tooLarge", message: "payload of \(len) bytes exceeds \(DataPlane.maxPayloadBytes)")
        }
        guard dur >= 0 else { throw DataPlaneError(code: "dataplane.duration", message: "negative duration") }
        return (
            FragmentMeta(
                kind: kind, keyframe: flags & 1 != 0, run: run, sequence: seq, start90k: MediaTime90k(start),
                duration90k: dur, utc: UTCMicros(utc)), len
        )
    }
}

/// A malformed data-plane frame. Codes: `dataplane.short`, `.magic`, `.kind`, `.version`, `.tooLarge`,
/// `.duration`, `.protocol` (frames in the wrong order).
public struct DataPlaneError: Error, Sendable, CustomStringConvertible {
    public var code: String
    public var message: String
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "[\(code)] \(message)" }
}

/// Little-endian writer for fixed binary headers.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]
    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }
    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func i64(_ v: Int64) { u64(UInt64(bitPattern: v)) }
    public mutating func raw(_ v: [UInt8]) { bytes.append(contentsOf: v) }
}

/// Little-endian reader for fixed binary headers; the caller checks the length first.
public struct ByteReader {
    let bytes: [UInt8]
    public private(set) var offset: Int
    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }
    public mutating func u8() -> UInt8 {
        defer { offset += 1 }
        return bytes[offset]
    }
    public mutating func u16() -> UInt16 { UInt16(u8()) | UInt16(u8()) << 8 }
    public mutating func u32() -> UInt32 { UInt32(u16()) | UInt32(u16()) << 16 }
    public mutating func u64() -> UInt64 { UInt64(u32()) | UInt64(u32()) << 32 }
    public mutating func i64() -> Int64 { Int64(bitPattern: u64()) }
    public mutating func raw(_ n: Int) -> [UInt8] {
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }
}
