/// A camera's identifier: 1–32 bytes of `[a-z0-9_-]`, starting with a letter or digit.
///
/// It appears in bus topics (`hallwatch/v1/<box>/camera/<id>/…`), systemd instance names
/// (`hallwatch-capture@<id>.service`) and the 32-byte camera field of every record header, so the
/// alphabet and length are deliberately narrow.
public struct CameraID: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// The identifier's text.
    public let rawValue: String

    /// The largest identifier, in UTF-8 bytes: the width of the camera field in the slot and record headers
    /// on the recording disks, so it can never grow without a new on-disk format version.
    public static let maxBytes = 32

    /// Validates `rawValue`; returns `nil` when it is empty, longer than ``maxBytes`` or uses other characters.
    public init?(_ rawValue: String) {
        guard Self.isValid(rawValue) else { return nil }
        self.rawValue = rawValue
    }

    /// Whether `text` is a valid camera identifier.
    public static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...maxBytes).contains(bytes.count) else { return false }
        func ok(_ b: UInt8) -> Bool { (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2D || b == 0x5F }
        guard bytes.allSatisfy(ok), bytes[0] != 0x2D, bytes[0] != 0x5F else { return false }
        return true
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
                    debugDescription: "expected a camera id of 1-32 characters a-z, 0-9, '-' or '_', got \"\(text)\""))
        }
        self = id
    }

    /// Encodes the id as its string.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}
