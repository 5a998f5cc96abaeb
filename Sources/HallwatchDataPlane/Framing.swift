import HallwatchCore

/// The media data plane between a capture worker and the recorder: constants of the framing
/// (`HallwatchDataPlane.docc/Protocol.md`, step P1).
///
/// Frame layout, little-endian, 48-byte header then payload:
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `HWDP` |
/// | 4 | 1 | kind (``WireKind``: 1 hello, 2 init segment, 3 fragment, 5 chunk; 6 watch from the recorder; 4 drop on the live tap only) |
/// | 5 | 1 | flags (bit 0: fragment starts with a keyframe) |
/// | 6 | 2 | protocol version (``version``) |
/// | 8 | 8 | run id |
/// | 16 | 4 | sequence number within the run |
/// | 20 | 4 | duration, 90 kHz ticks |
/// | 24 | 8 | start, 90 kHz ticks since the run's start |
/// | 32 | 8 | UTC anchor of the start, microseconds since the epoch |
/// | 40 | 4 | payload length, bytes (≤ ``maxPayloadBytes``) |
/// | 44 | 4 | reserved, 0 (the live tap: arrival, ms after the UTC anchor; ``LiveWire``) |
public enum DataPlane {
    /// `HWDP`
    public static let magic: UInt32 = 0x5044_5748
    /// 2 since the wire kinds became the data plane's own (``WireKind``), apart from the record kinds on
    /// disk. A peer speaking another version is refused at its first frame (`dataplane.version`): the box's
    /// processes are updated together.
    public static let version: UInt16 = 2
    /// Bytes of a frame header.
    public static let headerBytes = 48
    /// Largest payload accepted: ``HallwatchCore/MediaSegment/maxPayloadBytes`` (16 MiB); larger frames are
    /// refused as hostile or broken.
    public static let maxPayloadBytes = MediaSegment.maxPayloadBytes

    /// P7. The frame the recorder sends a capture worker on its data-plane connection when someone starts
    /// (`watched`) or stops watching its camera: a header of kind ``WireKind/watch``, flag bit 0 set when
    /// watched, no payload.
    public static func watchFrame(_ watched: Bool) -> [UInt8] {
        var w = ByteWriter(capacity: headerBytes)
        w.u32(magic)
        w.u8(WireKind.watch.rawValue)
        w.u8(watched ? 1 : 0)
        w.u16(version)
        for _ in 0..<10 { w.u32(0) }  // run, sequence, duration, start, UTC anchor, length 0, reserved
        return w.bytes
    }
}

/// A frame's kind on the wire. Only the data plane uses these numbers; the recording disks have their
/// own (`RecordKind` in HallwatchStorage), so a kind that exists only on the wire can never reach a disk.
public enum WireKind: UInt8, Sendable {
    /// P2: names the camera the connection speaks for; payload is the camera id (UTF-8).
    case hello = 1
    /// P3: an ISO/IEC 14496-12 init segment (`ftyp`+`moov`), starting a run.
    case initSegment = 2
    /// P3: a fragment (`moof`+`mdat`) of the current run.
    case fragment = 3
    /// L4, the live tap only: the subscriber fell behind and was skipped to the next keyframe; the sequence
    /// field holds how many units were skipped. Refused on the data plane (`dataplane.protocol`).
    case drop = 4
    /// P6: a per-frame CMAF chunk (one `moof`+`mdat`, ISO/IEC 14496-12 §8.8) of the current run, for the live
    /// tap only: never stored, never backlogged or resent. Flag bit 0: the frame is a keyframe.
    case chunk = 5
    /// P7, recorder → capture worker only: someone watches the camera (flag bit 0 set) or nobody does any more;
    /// the worker sends chunks only while watched. Refused from a capture worker or the live tap.
    case watch = 6
}

/// One data-plane frame: a hello, or a media segment.
public enum DataPlaneMessage: Sendable, Equatable {
    /// The connection's first frame (P2).
    case hello(CameraID)
    /// An init segment or fragment (P3).
    case segment(MediaSegment)
    /// A per-frame chunk for the live tap (P6); its metadata's kind is `fragment`, its wire kind ``WireKind/chunk``.
    case chunk(MediaSegment)

    /// The 48-byte header of this frame.
    public func encodeHeader() -> [UInt8] {
        let (kind, meta, length): (WireKind, FragmentMeta?, Int)
        switch self {
        case .hello(let id): (kind, meta, length) = (.hello, nil, id.rawValue.utf8.count)
        case .segment(let s):
            (kind, meta, length) = (s.meta.kind == .initSegment ? .initSegment : .fragment, s.meta, s.payload.count)
        case .chunk(let s): (kind, meta, length) = (.chunk, s.meta, s.payload.count)
        }
        var w = ByteWriter(capacity: DataPlane.headerBytes)
        w.u32(DataPlane.magic)
        w.u8(kind.rawValue)
        w.u8(meta?.keyframe == true ? 1 : 0)
        w.u16(DataPlane.version)
        w.u64(meta?.run ?? 0)
        w.u32(meta?.sequence ?? 0)
        w.u32(UInt32(bitPattern: meta?.duration90k ?? 0))
        w.i64(meta?.start90k.ticks ?? 0)
        w.i64(meta?.utc.micros ?? 0)
        w.u32(UInt32(length))
        w.u32(0)
        return w.bytes
    }

    /// The frame's payload: the camera id of a hello, the boxes of a segment.
    public var payload: [UInt8] {
        switch self {
        case .hello(let id): Array(id.rawValue.utf8)
        case .segment(let s), .chunk(let s): s.payload
        }
    }

    /// A decoded header: what follows it and how many payload bytes.
    public struct Header: Sendable, Equatable {
        public var kind: WireKind
        /// The segment's metadata; for a hello, zeros.
        public var meta: FragmentMeta
        /// Payload bytes that follow the header (≤ ``DataPlane/maxPayloadBytes``).
        public var payloadBytes: Int
    }

    /// Decodes a 48-byte header.
    /// - Throws: ``DataPlaneError`` `dataplane.short`, `.magic`, `.kind`, `.version`, `.tooLarge`, `.duration`.
    public static func decodeHeader(_ h: [UInt8]) throws(DataPlaneError) -> Header {
        guard h.count == DataPlane.headerBytes else { throw DataPlaneError(.short, "header of \(h.count) bytes") }
        var r = ByteReader(h)
        guard r.u32() == DataPlane.magic else { throw DataPlaneError(.magic, "bad frame magic") }
        let kindByte = r.u8()
        guard let kind = WireKind(rawValue: kindByte) else {
            throw DataPlaneError(.kind, "unknown frame kind \(kindByte)")
        }
        let flags = r.u8()
        let version = r.u16()
        guard version == DataPlane.version else {
            throw DataPlaneError(.version, "protocol version \(version), expected \(DataPlane.version)")
        }
        let run = r.u64()
        let seq = r.u32()
        let dur = Int32(bitPattern: r.u32())
        let start = r.i64()
        let utc = r.i64()
        let len = Int(r.u32())
        guard len <= DataPlane.maxPayloadBytes else {
            throw DataPlaneError(.tooLarge, "payload of \(len) bytes exceeds \(DataPlane.maxPayloadBytes)")
        }
        guard dur >= 0 else { throw DataPlaneError(.duration, "negative duration") }
        let meta = FragmentMeta(
            kind: kind == .initSegment ? .initSegment : .fragment, keyframe: flags & 1 != 0, run: run, sequence: seq,
            start90k: MediaTime90k(start), duration90k: dur, utc: UTCMicros(utc))
        return Header(kind: kind, meta: meta, payloadBytes: len)
    }

    /// Builds the message a header and its payload describe.
    /// - Throws: ``DataPlaneError`` `dataplane.protocol` for a hello that does not name a valid camera id.
    public init(_ header: Header, payload: [UInt8]) throws(DataPlaneError) {
        switch header.kind {
        case .hello:
            guard let id = CameraID(String(decoding: payload, as: UTF8.self)) else {
                throw DataPlaneError(.protocol, "a hello must name a camera id")
            }
            self = .hello(id)
        case .initSegment, .fragment:
            self = .segment(MediaSegment(meta: header.meta, payload: payload))
        case .chunk:
            var meta = header.meta
            meta.kind = .fragment
            self = .chunk(MediaSegment(meta: meta, payload: payload))
        case .drop:
            throw DataPlaneError(.protocol, "a live tap's drop frame on the data plane")
        case .watch:
            throw DataPlaneError(.protocol, "a watch frame comes only from the recorder")
        }
    }
}

/// A malformed data-plane frame or a broken conversation.
public struct DataPlaneError: HallwatchError, Equatable {
    /// Stable codes, as operators see them in the log and on the bus.
    public struct Code: StableErrorCode {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// The stream ended inside a header or payload.
        public static let short = Code(rawValue: "dataplane.short")
        /// The first four bytes are not `HWDP`: not a data-plane peer.
        public static let magic = Code(rawValue: "dataplane.magic")
        /// A kind byte this version does not know.
        public static let kind = Code(rawValue: "dataplane.kind")
        /// A peer of another protocol version.
        public static let version = Code(rawValue: "dataplane.version")
        /// A payload over ``DataPlane/maxPayloadBytes``.
        public static let tooLarge = Code(rawValue: "dataplane.tooLarge")
        /// A negative duration.
        public static let duration = Code(rawValue: "dataplane.duration")
        /// Frames in the wrong order: no hello first, a second hello, a fragment before any init segment.
        public static let `protocol` = Code(rawValue: "dataplane.protocol")
        /// A hello naming a camera that is not configured.
        public static let unknownCamera = Code(rawValue: "dataplane.unknownCamera")
        /// A second capture worker for a camera that already has one connected.
        public static let duplicateCamera = Code(rawValue: "dataplane.duplicateCamera")
    }

    public var code: Code
    public var message: String
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "[\(code.rawValue)] \(message)" }
    /// ``code`` as text (`dataplane.*`), listed with its kind in HallwatchCore's `ErrorCodes`.
    public var stableCode: String { code.rawValue }
}

extension FileHandleFD {
    /// Sends one data-plane frame (header, then payload, in one `sendmsg` where the socket takes it).
    /// - Throws: ``HallwatchCore/SystemError`` (`EPIPE` when the peer is gone, `EAGAIN` after `SO_SNDTIMEO`).
    public func send(_ message: DataPlaneMessage) throws {
        let header = message.encodeHeader()
        let payload: [UInt8]
        switch message {
        case .hello(let id): payload = Array(id.rawValue.utf8)
        case .segment(let s), .chunk(let s): payload = s.payload
        }
        try header.withUnsafeBytes { h in try payload.withUnsafeBytes { try writeAll(h, $0) } }
    }

    /// Receives one data-plane frame; `nil` at a clean end of stream (between frames).
    /// - Throws: ``DataPlaneError`` for a malformed frame, ``HallwatchCore/SystemError`` for I/O.
    public func receiveMessage() throws -> DataPlaneMessage? {
        guard let (_, header, payload) = try receiveFrame() else { return nil }
        return try DataPlaneMessage(header, payload: payload)
    }

    /// P1. One frame: its raw header, the header decoded, its payload; `nil` at a clean end of stream.
    func receiveFrame() throws -> (raw: [UInt8], header: DataPlaneMessage.Header, payload: [UInt8])? {
        guard let bytes = try readExactly(DataPlane.headerBytes) else { return nil }
        let header = try DataPlaneMessage.decodeHeader(bytes)
        let payload = header.payloadBytes == 0 ? [] : (try readExactly(header.payloadBytes) ?? [])
        guard payload.count == header.payloadBytes else {
            throw DataPlaneError(.short, "stream ended inside a payload")
        }
        return (bytes, header, payload)
    }
}

/// Segments saved as data-plane frames, one after another (P1 layout, no hello): the load generator's
/// replayable fixture (`hallwatch-loadgen sink --save`, read by `feed`).
public enum SegmentFile {
    /// The frames of `segments`, concatenated.
    public static func encode(_ segments: [MediaSegment]) -> [UInt8] {
        var bytes: [UInt8] = []
        for s in segments {
            bytes += DataPlaneMessage.segment(s).encodeHeader()
            bytes += s.payload
        }
        return bytes
    }

    /// The segments in `bytes`.
    /// - Throws: ``DataPlaneError`` for a malformed header (a fixture of another protocol version included),
    ///   `dataplane.short` when the bytes end inside a frame, `dataplane.protocol` for a hello.
    public static func decode(_ bytes: [UInt8]) throws(DataPlaneError) -> [MediaSegment] {
        var offset = 0
        var out: [MediaSegment] = []
        while offset < bytes.count {
            guard offset + DataPlane.headerBytes <= bytes.count else {
                throw DataPlaneError(.short, "the file ends inside a header")
            }
            let header = try DataPlaneMessage.decodeHeader(Array(bytes[offset..<offset + DataPlane.headerBytes]))
            offset += DataPlane.headerBytes
            guard offset + header.payloadBytes <= bytes.count else {
                throw DataPlaneError(.short, "the file ends inside a payload")
            }
            guard header.kind == .initSegment || header.kind == .fragment else {
                throw DataPlaneError(.protocol, "a saved file holds only init segments and fragments")
            }
            out.append(MediaSegment(meta: header.meta, payload: Array(bytes[offset..<offset + header.payloadBytes])))
            offset += header.payloadBytes
        }
        return out
    }
}
