/// What a browser needs to know of an init segment before it creates a `SourceBuffer`: the RFC 6381 codec
/// string, derived from the `avcC` or `hvcC` box the init segment carries (never from the camera's SDP, whose
/// levels are often wrong), and the picture size of the visual sample entry.
public struct InitSegmentInfo: Sendable, Equatable {
    /// RFC 6381 `codecs` value: `avc1.PPCCLL` (ISO/IEC 14496-15 §5.3.3) or `hvc1.…`/`hev1.…` (Annex E).
    public var codec: String
    /// Picture width and height, pixels (ISO/IEC 14496-12 §12.1.3 `VisualSampleEntry`).
    public var width: Int
    public var height: Int

    /// Parses `ftyp`+`moov`; `nil` when no `avc1`/`avc3`/`hvc1`/`hev1` sample entry with its configuration box
    /// is found (ISO/IEC 14496-12 §8.5.2 `stsd`, inside `moov/trak/mdia/minf/stbl`).
    public init?(initSegment bytes: [UInt8]) {
        guard let moov = Self.child("moov", in: bytes[...]) else { return nil }
        var found: InitSegmentInfo?
        search: for trak in Self.children("trak", in: moov) {
            guard let mdia = Self.child("mdia", in: trak), let minf = Self.child("minf", in: mdia),
                let stbl = Self.child("stbl", in: minf), let stsd = Self.child("stsd", in: stbl), stsd.count >= 8
            else { continue }
            // stsd: full box header (4), entry count (4), then sample entries.
            let entries = stsd.dropFirst(8)
            for (type, entry) in Self.boxes(in: entries) {
                guard ["avc1", "avc3", "hvc1", "hev1"].contains(type), entry.count >= 78 else { continue }
                let b = entry.startIndex
                // SampleEntry: 6 reserved + 2 data_reference_index; VisualSampleEntry: 16 bytes, then width, height.
                let width = Int(entry[b + 24]) << 8 | Int(entry[b + 25])
                let height = Int(entry[b + 26]) << 8 | Int(entry[b + 27])
                let inner = entry.dropFirst(78)
                if type.hasPrefix("avc"), let avcC = Self.child("avcC", in: inner), avcC.count >= 4 {
                    let a = avcC.startIndex
                    let hex = [avcC[a + 1], avcC[a + 2], avcC[a + 3]].map { Self.hex2($0) }.joined()
                    found = InitSegmentInfo(codec: "\(type).\(hex)", width: width, height: height)
                } else if let hvcC = Self.child("hvcC", in: inner), hvcC.count >= 13 {
                    found = InitSegmentInfo(codec: Self.hevcCodec(type, hvcC), width: width, height: height)
                }
                if found != nil { break search }
            }
        }
        guard let found else { return nil }
        self = found
    }

    init(codec: String, width: Int, height: Int) {
        self.codec = codec
        self.width = width
        self.height = height
    }

    /// ISO/IEC 14496-15 Annex E.3: `hvc1.[A-C]?profile.compat(bit-reversed, hex).(L|H)level.constraints`.
    static func hevcCodec(_ type: String, _ c: ArraySlice<UInt8>) -> String {
        let b = c.startIndex
        let profileSpace = c[b + 1] >> 6
        let tier = (c[b + 1] >> 5) & 1
        let profile = c[b + 1] & 0x1f
        let compat = UInt32(c[b + 2]) << 24 | UInt32(c[b + 3]) << 16 | UInt32(c[b + 4]) << 8 | UInt32(c[b + 5])
        var reversed: UInt32 = 0
        for i in 0..<32 where compat & (1 << i) != 0 { reversed |= 1 << (31 - i) }
        var constraints = Array(c[(b + 6)..<(b + 12)])
        while let last = constraints.last, last == 0 { constraints.removeLast() }
        let level = c[b + 12]
        var s = "\(type)."
        if profileSpace > 0 { s += String(UnicodeScalar(UInt8(64) + profileSpace)) }
        s += "\(profile).\(String(reversed, radix: 16, uppercase: true)).\(tier == 1 ? "H" : "L")\(level)"
        for byte in constraints { s += "." + String(byte, radix: 16, uppercase: true) }
        return s
    }

    static func hex2(_ b: UInt8) -> String {
        let s = String(b, radix: 16, uppercase: true)
        return s.count == 1 ? "0" + s : s
    }

    /// The boxes directly in `bytes`: type and body (after the 8- or 16-byte header). Stops at a malformed size.
    static func boxes(in bytes: ArraySlice<UInt8>) -> [(String, ArraySlice<UInt8>)] {
        var out: [(String, ArraySlice<UInt8>)] = []
        var i = bytes.startIndex
        while i + 8 <= bytes.endIndex {
            var size = Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            let type = String(decoding: bytes[(i + 4)..<(i + 8)], as: UTF8.self)
            var header = 8
            if size == 1, i + 16 <= bytes.endIndex {
                size = bytes[(i + 8)..<(i + 16)].reduce(0) { $0 << 8 | Int($1) }
                header = 16
            } else if size == 0 {
                size = bytes.endIndex - i
            }
            guard size >= header, i + size <= bytes.endIndex else { break }
            out.append((type, bytes[(i + header)..<(i + size)]))
            i += size
        }
        return out
    }

    static func children(_ type: String, in bytes: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        boxes(in: bytes).filter { $0.0 == type }.map(\.1)
    }

    static func child(_ type: String, in bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        children(type, in: bytes).first
    }
}
