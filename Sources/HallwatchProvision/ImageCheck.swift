/// Checks of a bundle's floor-plan images by their bytes, never by a decoder: the magic bytes and the
/// header's dimensions (at most ``maxSide`` pixels a side).
///
/// Formats: PNG (ISO/IEC 15948: the 8-byte signature, then the IHDR chunk whose width and height are
/// big-endian 32-bit at offsets 16 and 20) and JPEG (ISO/IEC 10918-1: `0xFFD8`, then marker segments until a
/// start-of-frame `0xFFC0`–`0xFFCF` other than `0xFFC4`, `0xFFC8` and `0xFFCC`, whose height and width are big-endian 16-bit at
/// offsets 3 and 5 of the segment). A name ending `.png`, `.jpg` or `.jpeg` must be that format.
public enum ImageCheck {
    /// The largest side accepted, in pixels.
    public static let maxSide = 8192

    /// The problem with `bytes` as the image `name` names, or `nil` when it is fine or not an image name.
    public static func problem(name: String, bytes: [UInt8]) -> String? {
        let lower = name.lowercased()
        let size: (width: Int, height: Int)?
        if lower.hasSuffix(".png") {
            guard bytes.count >= 24, bytes[0..<8] == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A],
                bytes[12..<16] == Array("IHDR".utf8)[...]
            else { return "\(name): not a PNG file (magic bytes or IHDR)" }
            size = (be32(bytes, 16), be32(bytes, 20))
        } else if lower.hasSuffix(".jpg") || lower.hasSuffix(".jpeg") {
            guard bytes.count >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return "\(name): not a JPEG file" }
            size = jpegSize(bytes)
            if size == nil { return "\(name): a JPEG file without a frame header" }
        } else {
            return nil
        }
        guard let size, (1...maxSide).contains(size.width), (1...maxSide).contains(size.height) else {
            return "\(name): \(size?.width ?? 0)×\(size?.height ?? 0) pixels; at most \(maxSide)×\(maxSide)"
        }
        return nil
    }

    private static func be32(_ b: [UInt8], _ at: Int) -> Int {
        Int(b[at]) << 24 | Int(b[at + 1]) << 16 | Int(b[at + 2]) << 8 | Int(b[at + 3])
    }

    private static func jpegSize(_ b: [UInt8]) -> (width: Int, height: Int)? {
        var i = 2
        while i + 9 < b.count {
            guard b[i] == 0xFF else { return nil }
            let marker = b[i + 1]
            if marker == 0xFF {
                i += 1
                continue
            }
            let length = Int(b[i + 2]) << 8 | Int(b[i + 3])
            if (0xC0...0xCF).contains(marker), ![0xC4, 0xC8, 0xCC].contains(marker) {
                return (Int(b[i + 7]) << 8 | Int(b[i + 8]), Int(b[i + 5]) << 8 | Int(b[i + 6]))
            }
            guard length >= 2 else { return nil }
            i += 2 + length
        }
        return nil
    }
}
