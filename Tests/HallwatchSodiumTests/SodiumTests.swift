import CSodium
import Testing

@testable import HallwatchSodium

/// Known answers: what libsodium must give for the published vectors.
@Suite("libsodium primitives")
struct SodiumTests {
    static func hex(_ b: [UInt8]) -> String { b.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() }

    /// RFC 7693 Appendix A, the empty message, and six 128-byte blocks exactly (as Python's hashlib prints them).
    @Test func blake2b512KnownAnswers() {
        #expect(
            Self.hex(Sodium.blake2b512(Array("abc".utf8)))
                == "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"
        )
        #expect(
            Self.hex(Sodium.blake2b512([]))
                == "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419d25e1031afee585313896444934eb04b903a685b1448b755d56f701afe9be2ce"
        )
        #expect(
            Self.hex(Sodium.blake2b512((0..<768).map { UInt8($0 % 256) }))
                == "323e97a7a859ee63c9013debb0ca995811e73117a2f574723416e596ebc184e37a59b66d2f597df4a7c1b0d1d41a1a7f28774f46a6864d56c57b9d6c5f7302fb"
        )
    }

    /// A signature verifies with its key and fails with a flipped byte.
    @Test func ed25519SignsAndVerifies() {
        var pk = [UInt8](repeating: 0, count: 32)
        var secret = [UInt8](repeating: 0, count: 64)
        crypto_sign_seed_keypair(&pk, &secret, [UInt8](repeating: 7, count: 32))
        #expect(Sodium.isConsistentEd25519(secretKey: secret))
        let message = Array("SHA256SUMS".utf8)
        let signature = Sodium.signEd25519(message: message, secretKey: secret)
        #expect(Sodium.verifyEd25519(signature: signature, message: message, publicKey: Array(secret[32...])))
        var bad = signature
        bad[0] ^= 1
        #expect(!Sodium.verifyEd25519(signature: bad, message: message, publicKey: Array(secret[32...])))
    }
}
