/// A camera stream's identifier: a camera id of 1–32 bytes of `[a-z0-9_-]`, starting with a letter or digit
/// (`lobby`), or a camera's sub stream: its id with the one suffix `/sub` (`lobby/sub`), 32 bytes at most in all.
///
/// It appears in bus topics (`hallwatch/v1/<box>/camera/<id>/…`, so `camera/lobby/sub/state` for a sub
/// stream), systemd instance names (`hallwatch-capture@<escaped id>.service`, `lobby/sub` escaped to
/// `lobby-sub`), the capture worker's process name (``captureProcessName``) and the 32-byte camera field of
/// every record header, so the alphabet and length are deliberately narrow.
///
/// Sub streams are addressed by the same type on purpose: a sub stream is recorded exactly like a camera (its
/// own capture worker, data-plane connection, runs, index rows and retention), so capture, the data plane,
/// the recorder, the index and the pruner carry it without knowing it is one. Only the configuration (which
/// derives a sub stream's settings from its camera, `cameras[].subStream`) and the web (which serves it as
/// `?stream=sub` of its camera) tell the two apart, through ``camera`` and ``isSubStream``.
public struct CameraID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The identifier's text.
    public let rawValue: String

    /// The largest identifier, in UTF-8 bytes: the width of the camera field in the slot and record headers
    /// on the recording disks, so it can never grow without a new on-disk format version. A camera with a
    /// sub stream therefore has an id of at most `maxBytes - 4` bytes (``subSuffix`` included it fits).
    public static let maxBytes = 32

    /// The suffix that names a camera's sub stream.
    public static let subSuffix = "/sub"

    /// Validates `rawValue`: a camera id (``isValid(_:)``) or one followed by ``subSuffix``, at most
    /// ``maxBytes`` in all; `nil` otherwise.
    public init?(_ rawValue: String) {
        let base = rawValue.hasSuffix(Self.subSuffix) ? String(rawValue.dropLast(Self.subSuffix.count)) : rawValue
        guard Self.isValid(base), rawValue.utf8.count <= Self.maxBytes else { return nil }
        self.rawValue = rawValue
    }

    /// Whether `text` is a valid camera identifier without a sub-stream suffix (what the configuration accepts
    /// as `cameras[].id`, and the alphabet of box and disk names).
    public static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...maxBytes).contains(bytes.count) else { return false }
        func ok(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2D || b == 0x5F }
        guard bytes.allSatisfy(ok), bytes[0] != 0x2D, bytes[0] != 0x5F else { return false }
        return true
    }

    /// Whether this is a sub stream (`lobby/sub`).
    public var isSubStream: Bool { rawValue.hasSuffix(Self.subSuffix) }

    /// The camera this stream belongs to: the id without ``subSuffix`` (`lobby` for `lobby/sub` and `lobby`).
    public var camera: CameraID {
        isSubStream ? CameraID(String(rawValue.dropLast(Self.subSuffix.count)))! : self
    }

    /// This camera's sub stream (`lobby/sub`); `nil` for a sub stream, or an id too long to take the suffix.
    public var subStream: CameraID? { isSubStream ? nil : CameraID(rawValue + Self.subSuffix) }

    /// The capture worker's process name, as it appears on the bus (`process/<name>`), in pid files and logs:
    /// `capture-lobby`, and `capture-lobby.sub` for a sub stream (`.` is outside the id alphabet, so names
    /// never collide, and the name stays one topic level and one file name).
    public var captureProcessName: String { "capture-" + rawValue.replacingOccurrences(of: "/", with: ".") }

    /// The stream a capture worker's process name (``captureProcessName``) names; `nil` for any other name.
    public static func capturedBy(process name: String) -> CameraID? {
        guard name.hasPrefix("capture-") else { return nil }
        return CameraID(String(name.dropFirst("capture-".count)).replacingOccurrences(of: ".", with: "/"))
    }

    /// The id text.
    public var description: String { rawValue }
    /// Orders ids by their text.
    public static func < (a: CameraID, b: CameraID) -> Bool { a.rawValue < b.rawValue }

    /// Decodes an id from a string. Throws `DecodingError.dataCorrupted` when it is not a valid id.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let id = CameraID(text) else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription:
                        "expected a camera id of 1-32 characters a-z, 0-9, '-' or '_' (optionally with /sub), got \"\(text)\""
                ))
        }
        self = id
    }

    /// Encodes the id as its string.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}
