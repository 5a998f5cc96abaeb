import Crypto
import Foundation
import HallwatchSodium

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
        let signature = signer.sign(Data(Sodium.blake2b512(Array(message))))
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
        return key.isValidSignature(signature, for: Data(Sodium.blake2b512(Array(message))))
            && key.isValidSignature(global, for: signature + comment)
    }
}
