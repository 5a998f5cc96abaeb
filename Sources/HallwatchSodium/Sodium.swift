import CSodium

/// The few libsodium primitives the provisioner uses (Debian `libsodium-dev`, the library minisign itself
/// links): Ed25519 verification (RFC 8032), BLAKE2b-512 (RFC 7693) and SHA-256 (FIPS 180-4).
public enum Sodium {
    private static let ready: Bool = sodium_init() >= 0

    /// Whether `signature` (64 bytes) is a valid Ed25519 signature of `message` by `publicKey` (32 bytes).
    public static func verifyEd25519(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard ready, signature.count == 64, publicKey.count == 32 else { return false }
        return message.withUnsafeBufferPointer { m in
            crypto_sign_verify_detached(signature, m.baseAddress, UInt64(m.count), publicKey) == 0
        }
    }

    /// The Ed25519 signature (64 bytes) of `message` by `secretKey` (libsodium's 64-byte form: seed ‖ public).
    public static func signEd25519(message: [UInt8], secretKey: [UInt8]) -> [UInt8] {
        precondition(ready && secretKey.count == 64, "libsodium failed to initialise, or not a 64-byte key")
        var sig = [UInt8](repeating: 0, count: 64)
        _ = message.withUnsafeBufferPointer { m in
            crypto_sign_detached(&sig, nil, m.baseAddress, UInt64(m.count), secretKey)
        }
        return sig
    }

    /// Whether `secretKey` (seed ‖ public, 64 bytes) is consistent: its seed derives its public half.
    public static func isConsistentEd25519(secretKey: [UInt8]) -> Bool {
        guard ready, secretKey.count == 64 else { return false }
        var pk = [UInt8](repeating: 0, count: 32)
        var sk = [UInt8](repeating: 0, count: 64)
        crypto_sign_seed_keypair(&pk, &sk, Array(secretKey[0..<32]))
        defer { sodium_memzero(&sk, 64) }
        return pk == Array(secretKey[32..<64])
    }

    /// BLAKE2b-512 of `message` (unkeyed), 64 bytes: what minisign's prehashed `ED` form signs.
    public static func blake2b512(_ message: [UInt8]) -> [UInt8] {
        precondition(ready, "libsodium failed to initialise")
        var out = [UInt8](repeating: 0, count: 64)
        _ = message.withUnsafeBufferPointer { m in
            crypto_generichash(&out, 64, m.baseAddress, UInt64(m.count), nil, 0)
        }
        return out
    }

    /// BLAKE2b of `message` (unkeyed) with an output of `outputBytes` (16–64) bytes; minisign's secret-key
    /// checksum is its 32-byte form.
    public static func blake2b(_ message: [UInt8], outputBytes: Int) -> [UInt8] {
        precondition(ready && (16...64).contains(outputBytes), "libsodium failed to initialise, or a bad length")
        var out = [UInt8](repeating: 0, count: outputBytes)
        _ = message.withUnsafeBufferPointer { m in
            crypto_generichash(&out, outputBytes, m.baseAddress, UInt64(m.count), nil, 0)
        }
        return out
    }

    /// A new Ed25519 key pair from libsodium's CSPRNG: public (32 bytes) and secret (64: seed ‖ public).
    public static func ed25519KeyPair() -> (publicKey: [UInt8], secretKey: [UInt8]) {
        precondition(ready, "libsodium failed to initialise")
        var pk = [UInt8](repeating: 0, count: 32)
        var sk = [UInt8](repeating: 0, count: 64)
        crypto_sign_keypair(&pk, &sk)
        return (pk, sk)
    }

    /// `count` bytes from libsodium's CSPRNG (`randombytes_buf`).
    public static func randomBytes(_ count: Int) -> [UInt8] {
        precondition(ready, "libsodium failed to initialise")
        var out = [UInt8](repeating: 0, count: count)
        randombytes_buf(&out, count)
        return out
    }

    /// SHA-256 of `message`, 32 bytes.
    public static func sha256(_ message: [UInt8]) -> [UInt8] {
        var h = SHA256Stream()
        h.update(message)
        return h.finish()
    }

    /// An incremental SHA-256 (for files copied in chunks), owning libsodium's state.
    public struct SHA256Stream: ~Copyable {
        private var state = crypto_hash_sha256_state()
        /// A fresh hash.
        public init() {
            precondition(Sodium.ready, "libsodium failed to initialise")
            crypto_hash_sha256_init(&state)
        }
        /// Adds `bytes`.
        public mutating func update(_ bytes: [UInt8]) {
            _ = bytes.withUnsafeBufferPointer { crypto_hash_sha256_update(&state, $0.baseAddress, UInt64($0.count)) }
        }
        /// The 32-byte digest.
        public consuming func finish() -> [UInt8] {
            var out = [UInt8](repeating: 0, count: 32)
            crypto_hash_sha256_final(&state, &out)
            return out
        }
    }
}
