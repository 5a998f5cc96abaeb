import CCRC32C

/// CRC-32C (Castagnoli): the checksum of every slot header and record on a recording disk.
///
/// Parameters as in RFC 3720 Appendix B.4 (iSCSI): reflected polynomial `0x82F63B78`
/// (normal form `0x1EDC6F41`), initial value `0xFFFFFFFF`, final XOR `0xFFFFFFFF`.
/// Check value: `"123456789"` → `0xE3069283`; 32 zero bytes → `0x8A9136AA` (RFC 3720 B.4).
///
/// The bytes go through the `CCRC32C` C target (`Sources/CCRC32C`), the one implementation every user of this
/// checksum shares (the writer's append, recovery's scan, every read and `hallwatchctl disk check`): SSE4.2
/// `crc32` on x86-64 and the ARMv8 CRC32C instructions on aarch64 when the CPU has them (checked once at run
/// time; ~10 GB/s), else table-driven slice-by-8 (~2 GB/s). The record append path checksums every payload
/// byte once, in place, so this is never a reason to copy.
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

    /// Whether this machine computes it with CPU instructions (SSE4.2 or ARMv8 CRC32) rather than tables.
    public static var isAccelerated: Bool { hw_crc32c_accelerated() != 0 }

    /// Adds `bytes` to the checksum.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        register = hw_crc32c_update(register, bytes.baseAddress, bytes.count)
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
