import CCRC32C
import Foundation
import HallwatchCore
import Testing

@testable import HallwatchStorage

@Suite("CRC-32C and byte formats")
struct FormatTests {
    @Test("CRC-32C check values from RFC 3720 B.4")
    func crcVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum([UInt8]((0..<32).map { UInt8($0) })) == 0x46DD_794E)
        #expect(CRC32C.checksum([]) == 0)
    }

    @Test("incremental and unaligned updates agree with one pass")
    func crcIncremental() {
        var g = SplitMix(seed: 7)
        let data = (0..<10_001).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        let whole = CRC32C.checksum(data)
        for split in [0, 1, 3, 7, 8, 9, 4096, 9_999, 10_001] {
            var c = CRC32C()
            c.update(data[0..<split])
            c.update(data[split...])
            #expect(c.value == whole, "split at \(split)")
        }
        // Against a bit-at-a-time reference, at every alignment of a short buffer.
        for start in 0..<9 {
            let slice = Array(data[start..<(start + 77)])
            #expect(CRC32C.checksum(slice) == bitwiseCRC32C(slice))
        }
    }

    @Test("the CPU instructions and the slice-by-8 tables give the same CRC-32C at every length and alignment")
    func crcHardwareEqualsTables() {
        var g = SplitMix(seed: 15)
        let data = (0..<70_000).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        // RFC 3720 B.4's vectors through the table path alone (the public type may use the instructions).
        let vectors: [([UInt8], UInt32)] = [
            (Array("123456789".utf8), 0xE306_9283), ([UInt8](repeating: 0, count: 32), 0x8A91_36AA),
            ([UInt8](repeating: 0xFF, count: 32), 0x62A8_AB43), ((0..<32).map { UInt8($0) }, 0x46DD_794E),
            ((0..<32).map { UInt8(31 - $0) }, 0x113F_DB5C),
        ]
        for (bytes, expected) in vectors {
            let tables = bytes.withUnsafeBytes { ~hw_crc32c_update_portable(0xFFFF_FFFF, $0.baseAddress, $0.count) }
            #expect(tables == expected)
            #expect(CRC32C.checksum(bytes) == expected)
        }
        data.withUnsafeBytes { all in
            for start in 0..<16 {
                for count in [0, 1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4097, 65_536] {
                    let part = UnsafeRawBufferPointer(rebasing: all[start..<(start + count)])
                    let hardware = hw_crc32c_update(0x1234_5678, part.baseAddress, part.count)
                    let tables = hw_crc32c_update_portable(0x1234_5678, part.baseAddress, part.count)
                    #expect(hardware == tables, "start \(start), \(count) bytes")
                }
            }
            #expect(CRC32C.checksum(all) == ~hw_crc32c_update_portable(0xFFFF_FFFF, all.baseAddress, all.count))
        }
        #expect(CRC32C.checksum(Array(data[3..<1003])) == bitwiseCRC32C(Array(data[3..<1003])))
        #if arch(x86_64)
            // Every x86-64 this project builds for (and this test machine) has SSE4.2.
            #expect(CRC32C.isAccelerated)
        #endif
    }

    @Test("record header golden bytes")
    func recordHeaderGolden() throws {
        let camera = try #require(CameraID("cam-01"))
        let meta = FragmentMeta(
            kind: .fragment, keyframe: true, run: 1_764_449_543_125_000, sequence: 7,
            start90k: MediaTime90k(630_000), duration90k: 90_000, utc: UTCMicros(1_764_449_550_125_000))
        let payload = [UInt8](0..<16)
        var h = RecordHeader(camera: camera, meta: meta, generation: 3, payloadBytes: 16, previousCRC: 0xDEAD_BEEF)
        let bytes = payload.withUnsafeBytes { h.encode(payload: $0) }
        // Built independently (Python struct.pack + bitwise CRC-32C) from the table in <doc:OnDiskFormat>.
        let golden =
            "4857524303016000030000000000000063616d2d3031000000000000000000000000000000000000000000000000000008f83decc1440600f09c090000000000c8c7a8ecc144060007000000905f01001000000000000000efbeadde15dcc101"
        #expect(hex(bytes) == golden)
        #expect(h.crc == 0x01C1_DC15)
        let back = try RecordHeader.decode(bytes)
        #expect(back == h)
        #expect(back.meta == meta)
        #expect(payload.withUnsafeBytes { back.crcMatches(payload: $0) })
    }

    @Test("slot header golden bytes")
    func slotHeaderGolden() throws {
        let uuid = UUID(bytes: [
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF,
        ])
        let h = SlotHeader(
            diskUUID: uuid, slot: 5, generation: 2, takeSequence: 9, takenAt: UTCMicros(1_764_449_543_125_000),
            camera: CameraID("cam-01"))
        let bytes = h.encode()
        let golden =
            "4857534c0100800000112233445566778899aabbccddeeff05000000000000000200000000000000090000000000000008f83decc144060063616d2d30310000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000443431b6"
        #expect(hex(bytes) == golden)
        #expect(h.crc == 0xB631_3444)
        #expect(try SlotHeader.decode(bytes) == h)
        var bad = bytes
        bad[30] ^= 1
        #expect(throws: StorageError.self) { try SlotHeader.decode(bad) }
    }

    @Test("a flipped payload bit fails the CRC")
    func flippedBit() throws {
        let camera = try #require(CameraID("cam-01"))
        var payload = [UInt8](repeating: 0x5A, count: 1000)
        var h = RecordHeader(
            camera: camera, meta: fragmentMeta(run: 1, sequence: 1), generation: 1, payloadBytes: 1000, previousCRC: 0)
        let bytes = payload.withUnsafeBytes { h.encode(payload: $0) }
        let decoded = try RecordHeader.decode(bytes)
        #expect(payload.withUnsafeBytes { decoded.crcMatches(payload: $0) })
        payload[500] ^= 0x04
        #expect(!payload.withUnsafeBytes { decoded.crcMatches(payload: $0) })
        // A flipped header bit is caught too (here in the sequence field).
        var headerBytes = bytes
        headerBytes[72] ^= 1
        payload[500] ^= 0x04
        let tampered = try RecordHeader.decode(headerBytes)
        #expect(!payload.withUnsafeBytes { tampered.crcMatches(payload: $0) })
    }

    @Test("camera field rejects bad padding")
    func cameraField() throws {
        #expect(try CameraField.decode([UInt8](repeating: 0, count: 32)) == nil)
        var b = CameraField.encode(CameraID("a"))
        #expect(try CameraField.decode(b) == CameraID("a"))
        b[5] = 0x41
        #expect(throws: StorageError.self) { try CameraField.decode(b) }
    }
}

/// Bit-at-a-time CRC-32C, the definition the fast table code must match.
func bitwiseCRC32C(_ data: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for b in data {
        crc ^= UInt32(b)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
    }
    return ~crc
}
