import Crypto
import Foundation
import HallwatchCore

/// A JSON value kept as received (a vendor's raw record, the stored CloudEvent). Encoded with sorted keys it
/// is canonical: two documents with the same content give the same bytes (the idempotency check's basis).
public indirect enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .int(i)
        } else if let d = try? c.decode(Double.self) {
            self = .double(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// The string, if this is one.
    var string: String? { if case .string(let s) = self { s } else { nil } }
    /// The object's members, if this is an object.
    var object: [String: JSONValue]? { if case .object(let o) = self { o } else { nil } }

    /// Canonical bytes: sorted keys, no whitespace, `/` not escaped.
    func canonical() -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(self)) ?? Data()
    }

    /// Deepest nesting of arrays and objects in `bytes` (strings skipped), counted before decoding so a
    /// hostile document cannot recurse the decoder off its stack.
    static func depth(of bytes: some Collection<UInt8>) -> Int {
        var depth = 0
        var deepest = 0
        var inString = false
        var escaped = false
        for b in bytes {
            if inString {
                if escaped {
                    escaped = false
                } else if b == 0x5C {
                    escaped = true
                } else if b == 0x22 {
                    inString = false
                }
                continue
            }
            switch b {
            case 0x22: inString = true
            case 0x5B, 0x7B:
                depth += 1
                deepest = max(deepest, depth)
            case 0x5D, 0x7D: depth -= 1
            default: break
            }
        }
        return deepest
    }

    /// The first member name that occurs twice in one object of `bytes`, or `nil` when every object's names are
    /// unique. RFC 8259 §4 says names SHOULD be unique and leaves a repeat's meaning to the reader (Foundation
    /// keeps one silently); evidence-grade input is refused rather than read one way of two. Names are compared
    /// after unescaping, as Swift strings (`"a"` and `"\u0061"` are one name). Linear in the bytes; call it on
    /// bytes whose ``depth(of:)`` is bounded. For bytes that are not JSON the answer means nothing: the decoder
    /// refuses them.
    static func duplicateName(in bytes: some Collection<UInt8>) -> String? {
        let b = Array(bytes)
        var names: [Set<String>] = []  // one per open container; an array's stays empty
        var isObject: [Bool] = []
        var lastString: String?
        var i = 0
        while i < b.count {
            let c = b[i]
            if c == 0x22 {
                var j = i + 1
                var escapes = false
                while j < b.count, b[j] != 0x22 {
                    if b[j] == 0x5C {
                        escapes = true
                        j += 1
                    }
                    j += 1
                }
                guard j < b.count else { return nil }
                lastString =
                    escapes
                    ? (try? JSONDecoder().decode([String].self, from: Data([0x5B] + b[i...j] + [0x5D])))?.first
                    : String(decoding: b[(i + 1)..<j], as: UTF8.self)
                i = j + 1
                continue
            }
            switch c {
            case 0x20, 0x09, 0x0A, 0x0D:
                i += 1
                continue  // whitespace between a name and its colon
            case 0x7B, 0x5B:
                names.append([])
                isObject.append(c == 0x7B)
            case 0x7D, 0x5D:
                if !names.isEmpty {
                    names.removeLast()
                    isObject.removeLast()
                }
            case 0x3A:
                if let name = lastString, isObject.last == true {
                    if !names[names.count - 1].insert(name).inserted { return name }
                }
            default: break
            }
            lastString = nil
            i += 1
        }
        return nil
    }

    /// One request's or bus message's JSON: nesting at most `maxDepth`, no name twice in an object, decoded.
    /// - Throws: ``EventRefusal`` 400 `events.invalid` (not JSON, too deep) or `events.duplicateKey`.
    static func eventDocument(_ bytes: some Collection<UInt8>, maxDepth: Int) throws(EventRefusal) -> JSONValue {
        guard depth(of: bytes) <= maxDepth, let value = try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
        else { throw EventRefusal(400, "events.invalid", "The body is not JSON (or nests too deep).") }
        if let name = duplicateName(in: bytes) {
            throw EventRefusal(
                400, "events.duplicateKey",
                "The name '\(name.prefix(64))' occurs twice in one object (RFC 8259 §4); send each name once.")
        }
        return value
    }
}

/// Why an event was refused: the HTTP status, a stable code (registered in `ErrorCodes`) and a message that
/// names the field.
public struct EventRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// 400, 403, 413…
    public let status: Int
    /// `events.invalid`, `events.naiveTime`, `events.tooLarge`…
    public let code: String
    /// What to fix, naming the field.
    public let message: String
    init(_ status: Int, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }
    public var description: String { "\(code): \(message)" }
}

/// One event of the contract, checked: a CloudEvents 1.0 structured-mode JSON object
/// (CloudEvents spec v1.0.2 §3 and the JSON event format §3).
///
/// Required: `specversion` `1.0`, `id` (1–128 bytes), `source` (the event source's name, 1–128 bytes of
/// `[A-Za-z0-9._:/-]`), `type` (``EventType``), `time` (RFC 3339 with `Z` or an offset: a naive time is
/// refused). Optional: `subject` (a configured door or zone id), `sequence` (the source's counter, an integer
/// or a string of digits: the CloudEvents sequence extension), `doorref` (the source's native door
/// reference), `datacontenttype` (`application/json` only), `data` (an object: `cameras` (camera ids, ≤ 16),
/// `raw` (the vendor's record, any JSON, ≤ 16 KiB encoded), `holder` (a credential holder's name, dropped
/// unless the building keeps names)). Other extension attributes are kept when they are strings, numbers or
/// booleans of at most 256 bytes.
///
/// Privacy: members named like a PIN or a card number (`pin`, `cardNumber`, `card_no`, `credential`,
/// `facilityCode`, `badgeNumber`…, any case and separators) are removed from the whole document, `raw`
/// included, before anything is stored or published.
public struct IncomingEvent: Sendable, Equatable {
    public var id: String
    public var source: String
    public var type: String
    /// The event's own time (the source's clock).
    public var time: UTCMicros
    public var subject: String?
    public var sequence: Int64?
    public var doorRef: String?
    /// Cameras named by the source (in addition to the door's).
    public var cameras: [CameraID]
    /// The document as stored and published: the received one with PIN/card members (and the holder's name,
    /// unless kept) removed.
    public var document: JSONValue
    /// SHA-256 (hex) of ``document``'s canonical bytes: equal for an identical repeat.
    public var contentHash: String
    /// ``document``'s canonical bytes (sorted keys, no whitespace), made once: stored and published as they are.
    public var canonicalDocument: Data

    /// Most bytes of `data.raw`, encoded.
    public static let maxRawBytes = 16 << 10
    /// Longest `id`, `source`, `doorref`.
    public static let maxFieldBytes = 128

    /// Member names (lower-cased, without `_`, `-`, `.`, spaces) that are never stored.
    static let secretNames: Set<String> = [
        "pin", "pincode", "pinnumber", "card", "cardno", "cardnum", "cardnumber", "cardid", "cardcode", "credential",
        "credentialnumber", "credentialid", "credentialcode", "badge", "badgeno", "badgenumber", "badgeid",
        "facilitycode", "cardformat", "track2", "wiegand", "rawcard", "carddata", "issuecode",
    ]

    /// Checks one CloudEvent.
    /// - Parameter keepHolder: whether `data.holder` is kept (the building's choice; default not).
    /// - Throws: ``EventRefusal`` 400 (`events.invalid`, `events.naiveTime`, `events.time`), 413 (`events.tooLarge`).
    public init(_ value: JSONValue, keepHolder: Bool = false) throws(EventRefusal) {
        guard var o = value.object else { throw EventRefusal(400, "events.invalid", "an event is a JSON object") }
        guard o["specversion"]?.string == "1.0" else {
            throw EventRefusal(400, "events.invalid", "specversion must be \"1.0\" (CloudEvents 1.0)")
        }
        func text(_ name: String, max: Int, required: Bool) throws(EventRefusal) -> String? {
            guard let v = o[name], v != .null else {
                if required { throw EventRefusal(400, "events.invalid", "\(name) is required") }
                return nil
            }
            guard let s = v.string, !s.isEmpty, s.utf8.count <= max,
                !s.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else {
                throw EventRefusal(
                    400, "events.invalid", "\(name) must be a string of 1–\(max) bytes without control characters")
            }
            return s
        }
        id = try text("id", max: Self.maxFieldBytes, required: true)!
        source = try text("source", max: Self.maxFieldBytes, required: true)!
        guard source.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._:/-".contains($0)) }) else {
            throw EventRefusal(400, "events.invalid", "source may hold only letters, digits and . _ : / -")
        }
        type = try text("type", max: 140, required: true)!
        guard EventTypes.isValid(type) else {
            throw EventRefusal(
                400, "events.invalid",
                "type '\(type)' is neither a normalised type (\(EventTypes.normalised.sorted().joined(separator: ", "))) nor x.<vendor>.<name>"
            )
        }
        let timeText = try text("time", max: 64, required: true)!
        do {
            time = try ISO8601.parseStrict(timeText)
        } catch {
            throw EventRefusal(400, error.reason == .noOffset ? "events.naiveTime" : "events.time", "time: \(error)")
        }
        subject = try text("subject", max: 64, required: false)
        doorRef = try text("doorref", max: Self.maxFieldBytes, required: false)
        switch o["sequence"] {
        case nil, .null?: sequence = nil
        case .int(let n)? where n >= 0: sequence = n
        case .string(let s)? where (1...18).contains(s.count) && s.allSatisfy({ $0.isASCII && $0.isNumber }):
            sequence = Int64(s)
        default: throw EventRefusal(400, "events.invalid", "sequence must be a non-negative integer (or its digits)")
        }
        if let ct = o["datacontenttype"], ct != .null {
            guard ct.string?.hasPrefix("application/json") == true else {
                throw EventRefusal(400, "events.invalid", "datacontenttype must be application/json")
            }
        }
        var cams: [CameraID] = []
        if var data = o["data"], data != .null {
            guard var d = data.object else { throw EventRefusal(400, "events.invalid", "data must be a JSON object") }
            if let c = d["cameras"], c != .null {
                guard case .array(let list) = c, list.count <= 16 else {
                    throw EventRefusal(400, "events.invalid", "data.cameras must be a list of at most 16 camera ids")
                }
                for item in list {
                    guard let s = item.string, let id = CameraID(s) else {
                        throw EventRefusal(
                            400, "events.invalid", "data.cameras holds something that is not a camera id")
                    }
                    cams.append(id)
                }
            }
            if let raw = d["raw"], raw.canonical().count > Self.maxRawBytes {
                throw EventRefusal(413, "events.tooLarge", "data.raw is larger than 16 KiB")
            }
            if !keepHolder { d["holder"] = nil }
            data = .object(d)
            o["data"] = data
        }
        for (k, v) in o where !Self.attributes.contains(k) {
            // Extension attributes (CloudEvents §3.1.1): lower-case letters and digits, primitive values.
            let ok =
                (1...20).contains(k.count) && k.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber) }
                && {
                    switch v {
                    case .bool, .int, .double: true
                    case .string(let s): s.utf8.count <= 256
                    default: false
                    }
                }()
            guard ok else { throw EventRefusal(400, "events.invalid", "extension attribute '\(k)' is not allowed") }
        }
        cameras = cams
        document = Self.scrub(.object(o))
        canonicalDocument = document.canonical()
        contentHash = SHA256.hash(data: canonicalDocument).map { String(format: "%02x", $0) }.joined()
    }

    /// The CloudEvents context attributes this contract reads.
    static let attributes: Set<String> = [
        "specversion", "id", "source", "type", "time", "subject", "sequence", "doorref", "datacontenttype", "data",
        "dataschema",
    ]

    /// `value` without members named like a secret (``secretNames``), at any depth.
    static func scrub(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let o):
            var out: [String: JSONValue] = [:]
            for (k, v) in o {
                let folded = String(k.lowercased().filter { !"_-. ".contains($0) })
                if secretNames.contains(folded) { continue }
                out[k] = scrub(v)
            }
            return .object(out)
        case .array(let a): return .array(a.map(scrub))
        default: return value
        }
    }
}
