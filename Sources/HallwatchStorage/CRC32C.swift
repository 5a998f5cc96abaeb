/// CRC-32C (Castagnoli): the checksum of every slot header and record on a recording disk.
///
/// Parameters as in RFC 3720 Appendix B.4 (iSCSI): reflected polynomial `0x82F63B78`
/// (normal form `0x1EDC6F41`), initial value `0xFFFFFFFF`, final XOR `0xFFFFFFFF`.
/// Check value: `"123456789"` → `0xE3069283`; 32 zero bytes → `0x8A9136AA` (RFC 3720 B.4).
///
/// The table-driven "slicing-by-8" method consumes 8 bytes per step with eight 256-entry tables
/// (8 KiB, built once). The record append path checksums every payload byte once, in place, so
/// this runs at memory speed rather than being a reason to copy.
///
/// ```swift
/// var crc = CRC32C()
/// crc.update(header)
/// crc.update(payload)
/// let value = crc.value
/// ```
public struct CRC32C: Sendable, Equatable {
    /// The running register (pre-inverted); read ``value`` for the checksum.
    private var register: UInt32 = 0xFFFF_FFFF

    /// A checksum of nothing yet.
    public init() {}

    /// The checksum of everything passed to ``update(_:)-(UnsafeRawBufferPointer)`` so far.
    public var value: UInt32 { ~register }

    /// Adds `bytes` to the checksum.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        register = CRC32CTables.update(register, bytes)
    }

    /// Adds `bytes` to the checksum.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Adds `bytes` to the checksum.
    public mutating func update(_ bytes: ArraySlice<UInt8>) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The CRC-32C of `bytes`.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c = CRC32C()
        c.update(bytes)
        return c.value
    }

    /// The CRC-32C of `bytes`.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}

/// The eight slicing tables, built once and never freed (8 KiB).
///
/// A raw pointer rather than `[UInt32]` so the inner loop has neither bounds checks nor retain/release.
private enum CRC32CTables {
    nonisolated(unsafe) static let table: UnsafePointer<UInt32> = {
        let t = UnsafeMutablePointer<UInt32>.allocate(capacity: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
            t[i] = c
        }
        for i in 0..<256 {
            var c = t[i]
            for k in 1..<8 {
                c = (c >> 8) ^ t[Int(c & 0xFF)]
                t[k * 256 + i] = c
            }
        }
        return UnsafePointer(t)
    }()

    @inline(__always)
    static func update(_ register: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return register }
        let t = table
        var crc = register
        var p = base
        var n = bytes.count
        // Head: single bytes until `p` is 8-byte aligned.
        while n > 0 && UInt(bitPattern: p) & 7 != 0 {
            crc = (crc >> 8) ^ t[Int((crc ^ UInt32(p.load(as: UInt8.self))) & 0xFF)]
            p += 1
            n -= 1
        }
        // Body: 8 bytes per step (the value is read little-endian, as the reflected CRC consumes it).
        while n >= 8 {
            let word = UInt64(littleEndian: p.load(as: UInt64.self))
            let lo = UInt32(truncatingIfNeeded: word) ^ crc
            let hi = UInt32(truncatingIfNeeded: word >> 32)
            crc =
                t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
            p += 8
            n -= 8
        }
        // Tail.
        while n > 0 {
            crc = (crc >> 8) ^ t[Int((crc ^ UInt32(p.load(as: UInt8.self))) & 0xFF)]
            p += 1
            n -= 1
        }
        return crc
    }
}
