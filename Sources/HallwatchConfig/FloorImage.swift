import Foundation
import HallwatchCore

/// A floor plan's image file, recognised by its first bytes (never by its name) and measured.
///
/// - PNG (ISO/IEC 15948 §5.2–5.3, §11.2.2): the 8-byte signature, then the `IHDR` chunk's width and height
///   (big-endian 32-bit at offsets 16 and 20).
/// - JPEG (ITU-T T.81 §B.2.2): `0xFF 0xD8 0xFF`, then the markers are walked to the first start-of-frame
///   (`SOF0`–`SOF15` but `DHT`, `JPG`, `DAC`), whose height and width are big-endian 16-bit at offsets 3 and 5
///   of its segment.
/// - SVG (SVG 1.1 §5.1.2, §7.7): UTF-8 text whose first element is `<svg`; the size is its `width` and
///   `height` (unitless or `px`), else its `viewBox`. An SVG holding `<script`, `<foreignObject`, an event
///   handler attribute (`on…=`), an entity declaration (`<!ENTITY`: entity expansion bombs) or a reference out
///   of the file (an `href` or CSS `url(…)` other than `#fragment` or `data:`) is refused: the page shows the
///   image in an `<img>` element, where none of them would run or load, and the CSP allows only the box's own
///   images, but a floor plan has no use for them.
public struct FloorImage: Sendable, Equatable {
    /// The image formats a floor plan may be in.
    public enum Kind: String, Sendable {
        case png, jpeg, svg
        /// The media type the web serves it as.
        public var mediaType: String {
            switch self {
            case .png: "image/png"
            case .jpeg: "image/jpeg"
            case .svg: "image/svg+xml"
            }
        }
    }

    /// Largest file accepted, in bytes (16 MiB).
    public static let maxBytes = 16 << 20
    /// Largest width or height, in pixels.
    public static let maxSide = 20_000

    /// The format.
    public var kind: Kind
    /// Width in pixels (SVG: user units).
    public var width: Int
    /// Height in pixels (SVG: user units).
    public var height: Int
    /// The file's bytes.
    public var bytes: [UInt8]

    /// Why an image was refused: `map.image`.
    public struct Problem: HallwatchError {
        /// What is wrong, for `file:line:` diagnostics.
        public var message: String
        /// `map.image`.
        public var stableCode: String { "map.image" }
        /// ``message``.
        public var description: String { message }
    }

    /// Reads and measures the image at `path` (an absolute path).
    /// - Throws: ``Problem`` when the path is relative, the file is missing, unreadable or larger than
    ///   ``maxBytes``, is not a PNG, JPEG or SVG, or its size cannot be read or exceeds ``maxSide``.
    public static func read(path: String) throws -> FloorImage {
        guard path.hasPrefix("/") else {
            throw Problem(message: "expected an absolute path to the floor's image, got \"\(path)\"")
        }
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        guard let attributes, attributes[.type] as? FileAttributeType == .typeRegular else {
            throw Problem(message: "no image file at \(path)")
        }
        if let size = (attributes[.size] as? NSNumber)?.intValue, size > maxBytes {
            throw Problem(message: "\(path) is larger than \(maxBytes) bytes")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Problem(message: "cannot read \(path) (permissions?)")
        }
        return try parse(Array(data), name: path)
    }

    /// Recognises and measures `bytes` (named `name` in messages). Same errors as ``read(path:)``.
    public static func parse(_ bytes: [UInt8], name: String) throws -> FloorImage {
        guard bytes.count <= maxBytes else { throw Problem(message: "\(name) is larger than \(maxBytes) bytes") }
        let measured: (Kind, Int, Int)?
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            measured = png(bytes)
        } else if bytes.starts(with: [0xFF, 0xD8, 0xFF]) {
            measured = jpeg(bytes)
        } else if let text = String(validating: bytes, as: UTF8.self), text.contains("<svg") {
            // Refused before it is read as an SVG at all: a doctype with an internal subset is not skipped.
            if let bad = svgRefusal(text) {
                throw Problem(message: "\(name): an SVG floor plan may not hold \(bad)…")
            }
            guard isSVG(text) else { throw Problem(message: "\(name) is not a PNG, JPEG or SVG image") }
            measured = svg(text)
        } else {
            throw Problem(message: "\(name) is not a PNG, JPEG or SVG image")
        }
        guard let measured else { throw Problem(message: "\(name): cannot read the picture's size") }
        let (kind, width, height) = measured
        guard (1...maxSide).contains(width), (1...maxSide).contains(height) else {
            throw Problem(message: "\(name) is \(width)×\(height); expected 1 to \(maxSide) pixels a side")
        }
        return FloorImage(kind: kind, width: width, height: height, bytes: bytes)
    }

    static func be32(_ b: [UInt8], _ at: Int) -> Int {
        b[at..<at + 4].reduce(0) { $0 << 8 | Int($1) }
    }

    static func png(_ b: [UInt8]) -> (Kind, Int, Int)? {
        guard b.count >= 24, Array(b[12..<16]) == Array("IHDR".utf8) else { return nil }
        return (.png, be32(b, 16), be32(b, 20))
    }

    static func jpeg(_ b: [UInt8]) -> (Kind, Int, Int)? {
        var i = 2
        while i + 9 < b.count {
            guard b[i] == 0xFF else { return nil }
            let marker = b[i + 1]
            if marker == 0xFF {  // fill byte
                i += 1
                continue
            }
            let length = Int(b[i + 2]) << 8 | Int(b[i + 3])
            if (0xC0...0xCF).contains(marker), ![0xC4, 0xC8, 0xCC].contains(marker) {
                return (.jpeg, Int(b[i + 7]) << 8 | Int(b[i + 8]), Int(b[i + 5]) << 8 | Int(b[i + 6]))
            }
            guard length >= 2 else { return nil }
            i += 2 + length
        }
        return nil
    }

    /// The first element (after an optional BOM, XML declaration, comments and doctype) is `<svg`.
    static func isSVG(_ text: String) -> Bool {
        var rest = Substring(text.drop { $0 == "\u{FEFF}" })
        while true {
            rest = rest.drop { $0.isWhitespace }
            if rest.hasPrefix("<svg") { return true }
            // The longest opener first: a comment also starts with `<!`.
            let closers = [("<?", "?>"), ("<!--", "-->"), ("<!", ">")]
            guard let closer = closers.first(where: { rest.hasPrefix($0.0) }), let end = rest.range(of: closer.1)
            else { return false }
            rest = rest[end.upperBound...]
        }
    }

    /// The first thing a floor plan's SVG may not hold, as the message names it, or `nil`.
    static func svgRefusal(_ text: String) -> String? {
        let lower = text.lowercased()
        for needle in ["<script", "<foreignobject", "<!entity"] where lower.contains(needle) { return needle }
        let patterns = [
            // An event handler attribute: whitespace, `on` and letters, then `=`.
            (#"\son[a-z]+\s*="#, "on"),
            // A reference out of the file: `href` (SVG 2) or `xlink:href` to anything but `#…` or `data:`.
            (#"href\s*=\s*["']\s*(?!#|data:)"#, "an external href"),
            (#"url\(\s*["']?\s*(?!#|data:)"#, "an external url("),
        ]
        return patterns.first { lower.range(of: $0.0, options: .regularExpression) != nil }?.1
    }

    static func svg(_ text: String) -> (Kind, Int, Int)? {
        guard let open = text.range(of: "<svg"), let close = text[open.upperBound...].firstIndex(of: ">") else {
            return nil
        }
        let tag = String(text[open.upperBound..<close])
        func attribute(_ name: String) -> String? {
            guard let r = tag.range(of: #"\s\#(name)\s*=\s*["']([^"']*)["']"#, options: .regularExpression) else {
                return nil
            }
            let value = tag[r].split(separator: "=", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)
            return String(value.dropFirst().dropLast())
        }
        func pixels(_ s: String?) -> Int? {
            guard var s = s?.trimmingCharacters(in: .whitespaces) else { return nil }
            if s.hasSuffix("px") { s.removeLast(2) }
            return Double(s).flatMap { $0.isFinite && $0 > 0 && $0 <= Double(maxSide) ? Int($0.rounded()) : nil }
        }
        if let w = pixels(attribute("width")), let h = pixels(attribute("height")) { return (.svg, w, h) }
        let box = (attribute("viewBox") ?? "").split(whereSeparator: { $0 == " " || $0 == "," }).compactMap {
            Double($0)
        }
        guard box.count == 4, let w = pixels(String(box[2])), let h = pixels(String(box[3])) else { return nil }
        return (.svg, w, h)
    }
}
