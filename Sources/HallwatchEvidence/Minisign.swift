import Crypto
import Foundation

/// The minisign formats (<https://jedisct1.github.io/minisign/>) for a bundle's second signature of
/// `SHA256SUMS`, made with the same Ed25519 key (RFC 8032) so `minisign -V` checks it:
/// - public key file: an `untrusted comment:` line, then base64 of `Ed` ‖ key id (8 bytes) ‖ public key (32);
/// - signature file: an `untrusted comment:` line; base64 of `ED` ‖ key id ‖ Ed25519(BLAKE2b-512(file)) (the
///   pre-hashed algorithm); a `trusted comment:` line; base64 of Ed25519(signature ‖ trusted comment).
///
/// The key id is the first 8 bytes of SHA-256 of the public key, so every bundle of a box names the same id.
public enum Minisign {
    /// The 8-byte key id of `publicKey` (32 bytes).
    public static func keyID(publicKey: Data) -> Data { Data(SHA256.hash(data: publicKey).prefix(8)) }

    /// The key id as minisign prints it: the 8 bytes read as a little-endian integer, upper-case hex.
    static func keyIDText(_ id: Data) -> String { id.reversed().map { String(format: "%02X", $0) }.joined() }

    /// A minisign public key file for `publicKey` (32 bytes).
    public static func publicKeyFile(publicKey: Data) -> String {
        let id = keyID(publicKey: publicKey)
        return "untrusted comment: minisign public key \(keyIDText(id))\n"
            + (Data("Ed".utf8) + id + publicKey).base64EncodedString() + "\n"
    }

    /// A minisign signature file of `message`, signed by `signer`; `trustedComment` must be one line.
    public static func signatureFile(of message: Data, signer: BundleSigner, trustedComment: String) -> String {
        let id = keyID(publicKey: signer.publicKey)
        let signature = signer.sign(Data(Blake2b.hash512(message)))
        let global = signer.sign(signature + Data(trustedComment.utf8))
        return "untrusted comment: signature from a Hallwatch box's identity key \(keyIDText(id))\n"
            + (Data("ED".utf8) + id + signature).base64EncodedString() + "\n"
            + "trusted comment: \(trustedComment)\n" + global.base64EncodedString() + "\n"
    }

    /// Whether `signatureFile` is a valid pre-hashed minisign signature of `message` by the key in
    /// `publicKeyFile` (key ids equal, both the signature and the trusted comment's signature valid).
    public static func verify(message: Data, signatureFile: String, publicKeyFile: String) -> Bool {
        let pubLines = publicKeyFile.split(separator: "\n")
        let sigLines = signatureFile.split(separator: "\n", omittingEmptySubsequences: false)
        guard pubLines.count >= 2, sigLines.count >= 4, let pub = Data(base64Encoded: String(pubLines[1])),
            pub.count == 42, pub.prefix(2) == Data("Ed".utf8), let sig = Data(base64Encoded: String(sigLines[1])),
            sig.count == 74, sig.prefix(2) == Data("ED".utf8), sig[2..<10] == pub[2..<10],
            sigLines[2].hasPrefix("trusted comment: "), let global = Data(base64Encoded: String(sigLines[3])),
            let key = try? Curve25519.Signing.PublicKey(rawRepresentation: pub.suffix(32))
        else { return false }
        let signature = Data(sig.suffix(64))
        let comment = Data(sigLines[2].dropFirst("trusted comment: ".count).utf8)
        return key.isValidSignature(signature, for: Data(Blake2b.hash512(message)))
            && key.isValidSignature(global, for: signature + comment)
    }
}

/// BLAKE2b-512 without a key (RFC 7693), for minisign's pre-hashed signatures; swift-crypto has no BLAKE2.
enum Blake2b {
    static let iv: [UInt64] = [
        0x6a09_e667_f3bc_c908, 0xbb67_ae85_84ca_a73b, 0x3c6e_f372_fe94_f82b, 0xa54f_f53a_5f1d_36f1,
        0x510e_527f_ade6_82d1, 0x9b05_688c_2b3e_6c1f, 0x1f83_d9ab_fb41_bd6b, 0x5be0_cd19_137e_2179,
    ]
    static let sigma: [[Int]] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
        [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
        [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
        [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
        [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
        [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
        [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
        [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
        [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
        [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
    ]

    /// The 64-byte BLAKE2b-512 digest of `data` (RFC 7693 §3.3).
    static func hash512(_ data: Data) -> [UInt8] {
        var h = iv
        h[0] ^= 0x0101_0040  // digest length 64, no key, fanout 1, depth 1
        let bytes = [UInt8](data)
        let blocks = max(1, (bytes.count + 127) / 128)
        for b in 0..<blocks {
            var block = [UInt8](repeating: 0, count: 128)
            let start = b * 128
            let end = min(bytes.count, start + 128)
            if start < end { block.replaceSubrange(0..<(end - start), with: bytes[start..<end]) }
            let last = b == blocks - 1
            compress(&h, block, counter: UInt64(last ? bytes.count : start + 128), last: last)
        }
        return h.flatMap { word in (0..<8).map { UInt8(truncatingIfNeeded: word >> (8 * UInt64($0))) } }
    }

    static func compress(_ h: inout [UInt64], _ block: [UInt8], counter: UInt64, last: Bool) {
        var m = [UInt64](repeating: 0, count: 16)
        for i in 0..<16 {
            for j in 0..<8 { m[i] |= UInt64(block[i * 8 + j]) << (8 * UInt64(j)) }
        }
        var v = h + iv
        v[12] ^= counter
        if last { v[14] = ~v[14] }
        func rotr(_ x: UInt64, _ n: UInt64) -> UInt64 { (x >> n) | (x << (64 - n)) }
        func g(_ a: Int, _ b: Int, _ c: Int, _ d: Int, _ x: UInt64, _ y: UInt64) {
            v[a] = v[a] &+ v[b] &+ x
            v[d] = rotr(v[d] ^ v[a], 32)
            v[c] = v[c] &+ v[d]
            v[b] = rotr(v[b] ^ v[c], 24)
            v[a] = v[a] &+ v[b] &+ y
            v[d] = rotr(v[d] ^ v[a], 16)
            v[c] = v[c] &+ v[d]
            v[b] = rotr(v[b] ^ v[c], 63)
        }
        for r in 0..<12 {
            let s = sigma[r % 10]
            g(0, 4, 8, 12, m[s[0]], m[s[1]])
            g(1, 5, 9, 13, m[s[2]], m[s[3]])
            g(2, 6, 10, 14, m[s[4]], m[s[5]])
            g(3, 7, 11, 15, m[s[6]], m[s[7]])
            g(0, 5, 10, 15, m[s[8]], m[s[9]])
            g(1, 6, 11, 12, m[s[10]], m[s[11]])
            g(2, 7, 8, 13, m[s[12]], m[s[13]])
            g(3, 4, 9, 14, m[s[14]], m[s[15]])
        }
        for i in 0..<8 { h[i] ^= v[i] ^ v[i + 8] }
    }
}
