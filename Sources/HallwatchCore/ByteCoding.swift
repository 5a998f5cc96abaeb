/// Little-endian byte coding of fixed binary headers: the data plane's frames (HallwatchDataPlane) and
/// the record headers on the recording disks (HallwatchStorage).

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
