import Crypto
import Foundation
import HallwatchSodium

/// The minisign formats (HallwatchSodium's `MinisignFormat`, shared with the provisioner) for a bundle's
/// second signature of `SHA256SUMS`, made with the same Ed25519 key (RFC 8032) so `minisign -V` checks it: the
/// prehashed `ED` form with a trusted comment.
///
/// The key id is the first 8 bytes of SHA-256 of the public key, so every bundle of a box names the same id.
public enum Minisign {
    /// The 8-byte key id of `publicKey` (32 bytes).
    public static func keyID(publicKey: Data) -> Data { Data(SHA256.hash(data: publicKey).prefix(8)) }

    /// A minisign public key file for `publicKey` (32 bytes).
    public static func publicKeyFile(publicKey: Data) -> String {
        MinisignFormat.publicKeyFile(keyID: Array(keyID(publicKey: publicKey)), publicKey: Array(publicKey))
    }

    /// A minisign signature file of `message`, signed by `signer`; `trustedComment` must be one line.
    public static func signatureFile(of message: Data, signer: BundleSigner, trustedComment: String) -> String {
        let id = Array(keyID(publicKey: signer.publicKey))
        return MinisignFormat.signatureFile(
            of: Array(message), keyID: id, trustedComment: trustedComment,
            untrustedComment: "signature from a Hallwatch box's identity key \(MinisignFormat.keyIDText(id))"
        ) { Array(signer.sign(Data($0))) }
    }

    /// Whether `signatureFile` is a valid pre-hashed minisign signature of `message` by the key in
    /// `publicKeyFile` (key ids equal, both the signature and the trusted comment's signature valid).
    public static func verify(message: Data, signatureFile: String, publicKeyFile: String) -> Bool {
        guard let key = MinisignFormat.parsePublicKey(publicKeyFile),
            let sig = try? MinisignFormat.parseSignature(signatureFile), sig.prehashed, sig.keyID == key.keyID,
            sig.trustedComment != nil
        else { return false }
        return MinisignFormat.verify(sig, of: Array(message), publicKey: key.publicKey)
    }
}
