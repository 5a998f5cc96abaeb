import Foundation

/// minisign's file formats (minisign 0.11's documentation, "Key and signature formats"; `signify-openbsd`
/// reads the same public keys and legacy signatures), in one place for the provisioner (bundle signatures,
/// receipts, `hallwatchctl config keygen`) and the evidence bundle (`SHA256SUMS.minisig`):
/// - public key file: an `untrusted comment:` line, then base64 of `Ed` ‖ key id (8) ‖ Ed25519 public key (32);
/// - secret key file (unencrypted, as `minisign -G -W` writes it): an `untrusted comment:` line, then base64 of
///   `Ed` ‖ KDF `00 00` ‖ `B2` ‖ salt (32) ‖ opslimit (8) ‖ memlimit (8) ‖ key id (8) ‖ secret key (64: seed ‖
///   public) ‖ checksum (32: BLAKE2b-256 of `Ed` ‖ key id ‖ secret key; minisign 0.11 writes zeros with `-W`);
/// - signature file: an `untrusted comment:` line; base64 of `ED` (prehashed: the signature is of BLAKE2b-512
///   of the file) or `Ed` (legacy: of the file itself) ‖ key id ‖ signature (64); optionally a
///   `trusted comment:` line and base64 of the signature of (signature ‖ trusted comment).
///
/// A key id is 8 bytes; minisign prints it as a little-endian integer in upper-case hex.
public enum MinisignFormat {
    /// A parsed signature file.
    public struct Signature: Sendable, Equatable {
        /// `ED` (signature of BLAKE2b-512 of the message) rather than `Ed` (of the message).
        public var prehashed: Bool
        /// The signing key's id, 8 bytes.
        public var keyID: [UInt8]
        /// Ed25519 signature, 64 bytes.
        public var signature: [UInt8]
        /// The trusted comment (minisign), `nil` for a signify signature.
        public var trustedComment: String?
        /// Ed25519 signature of `signature ‖ trustedComment`, when there is a trusted comment.
        public var globalSignature: [UInt8]?
        /// A signature from its parts.
        public init(
            prehashed: Bool, keyID: [UInt8], signature: [UInt8], trustedComment: String? = nil,
            globalSignature: [UInt8]? = nil
        ) {
            self.prehashed = prehashed
            self.keyID = keyID
            self.signature = signature
            self.trustedComment = trustedComment
            self.globalSignature = globalSignature
        }
    }

    /// The key id as minisign prints it.
    public static func keyIDText(_ keyID: [UInt8]) -> String {
        keyID.reversed().map { String(format: "%02X", $0) }.joined()
    }

    /// The base64 line of a public key.
    public static func publicKeyLine(keyID: [UInt8], publicKey: [UInt8]) -> String {
        Data([0x45, 0x64] + keyID + publicKey).base64EncodedString()
    }

    /// A public key file.
    public static func publicKeyFile(keyID: [UInt8], publicKey: [UInt8]) -> String {
        "untrusted comment: minisign public key \(keyIDText(keyID))\n"
            + publicKeyLine(keyID: keyID, publicKey: publicKey)
            + "\n"
    }

    /// The key id and Ed25519 public key of a public key file's text (or just its base64 line); `nil` when
    /// it is not an Ed25519 minisign/signify public key.
    public static func parsePublicKey(_ text: String) -> (keyID: [UInt8], publicKey: [UInt8])? {
        let lines = text.split(whereSeparator: \.isNewline)
        let line = lines.first { !$0.hasPrefix("untrusted comment:") }
        guard lines.count <= 2, let line, let raw = Data(base64Encoded: String(line)).map(Array.init), raw.count == 42,
            raw[0] == 0x45, raw[1] == 0x64
        else { return nil }
        return (Array(raw[2..<10]), Array(raw[10..<42]))
    }

    /// An unencrypted secret key file (what `minisign -G -W` writes; minisign signs with it without asking
    /// for a password).
    public static func secretKeyFile(keyID: [UInt8], secretKey: [UInt8]) -> String {
        precondition(keyID.count == 8 && secretKey.count == 64)
        let checksum = Sodium.blake2b([0x45, 0x64] + keyID + secretKey, outputBytes: 32)
        let raw: [UInt8] =
            [0x45, 0x64, 0x00, 0x00, 0x42, 0x32] + [UInt8](repeating: 0, count: 48) + keyID + secretKey + checksum
        return "untrusted comment: minisign secret key \(keyIDText(keyID))\n" + Data(raw).base64EncodedString() + "\n"
    }

    /// Why a secret key file cannot be used.
    public enum SecretKeyProblem: Error, Sendable, Equatable {
        /// Not a minisign secret key.
        case malformed
        /// Encrypted with a password (the box's key is made with `-W`).
        case encrypted
        /// The checksum or the key's halves do not match.
        case inconsistent
    }

    /// The key id and secret key (64 bytes) of an unencrypted secret key file.
    public static func parseSecretKey(_ text: String) throws(SecretKeyProblem) -> (keyID: [UInt8], secretKey: [UInt8]) {
        let line = text.split(whereSeparator: \.isNewline).first { !$0.hasPrefix("untrusted comment:") }
        guard let line, let raw = Data(base64Encoded: String(line)).map(Array.init), raw.count == 158,
            raw[0] == 0x45, raw[1] == 0x64
        else { throw .malformed }
        guard raw[2] == 0, raw[3] == 0 else { throw .encrypted }
        let keyID = Array(raw[54..<62])
        let secret = Array(raw[62..<126])
        // minisign 0.11 leaves the checksum of an unencrypted (`-W`) key all zero; when one is there it must match.
        let checksum = Array(raw[126..<158])
        guard Sodium.isConsistentEd25519(secretKey: secret),
            checksum.allSatisfy({ $0 == 0 })
                || Sodium.blake2b([0x45, 0x64] + keyID + secret, outputBytes: 32) == checksum
        else { throw .inconsistent }
        return (keyID, secret)
    }

    /// A new key pair with a random key id: (public key file, secret key file), as `minisign -G -W` makes.
    public static func generate() -> (publicKeyFile: String, secretKeyFile: String) {
        let (pk, sk) = Sodium.ed25519KeyPair()
        let id = Sodium.randomBytes(8)
        return (publicKeyFile(keyID: id, publicKey: pk), secretKeyFile(keyID: id, secretKey: sk))
    }

    /// A prehashed signature file of `message` by `secretKey` (64 bytes) with id `keyID`.
    public static func signatureFile(
        of message: [UInt8], keyID: [UInt8], secretKey: [UInt8], trustedComment: String, untrustedComment: String
    ) -> String {
        signatureFile(of: message, keyID: keyID, trustedComment: trustedComment, untrustedComment: untrustedComment) {
            Sodium.signEd25519(message: $0, secretKey: secretKey)
        }
    }

    /// A prehashed signature file of `message`, signed by `sign` (an Ed25519 signer held elsewhere, such as
    /// a key that never leaves its store), with id `keyID`; `trustedComment` must be one line.
    public static func signatureFile(
        of message: [UInt8], keyID: [UInt8], trustedComment: String, untrustedComment: String,
        sign: ([UInt8]) -> [UInt8]
    ) -> String {
        let sig = sign(Sodium.blake2b512(message))
        let global = sign(sig + Array(trustedComment.utf8))
        return "untrusted comment: \(untrustedComment)\n" + Data([0x45, 0x44] + keyID + sig).base64EncodedString()
            + "\n" + "trusted comment: \(trustedComment)\n" + Data(global).base64EncodedString() + "\n"
    }

    /// Parses a signature file: two lines (signify's legacy form) or four (minisign's, with a trusted
    /// comment); a prehashed `ED` signature must have its trusted comment. Empty lines are skipped.
    /// - Throws: why it is malformed, as the end of a sentence ("the signature file …").
    public static func parseSignature(_ text: String) throws(SignatureProblem) -> Signature {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        guard lines.count == 2 || lines.count == 4, lines[0].hasPrefix("untrusted comment:") else {
            throw SignatureProblem("is not two or four lines starting with an untrusted comment")
        }
        guard let raw = Data(base64Encoded: lines[1]).map(Array.init), raw.count == 74, raw[0] == 0x45,
            raw[1] == 0x44 || raw[1] == 0x64
        else { throw SignatureProblem("does not hold an Ed25519 signature (ED or Ed)") }
        var s = Signature(prehashed: raw[1] == 0x44, keyID: Array(raw[2..<10]), signature: Array(raw[10..<74]))
        if lines.count == 4 {
            let prefix = "trusted comment: "
            guard lines[2].hasPrefix(prefix), let g = Data(base64Encoded: lines[3]).map(Array.init), g.count == 64
            else { throw SignatureProblem("has a malformed trusted comment or global signature") }
            s.trustedComment = String(lines[2].dropFirst(prefix.count))
            s.globalSignature = g
        } else if s.prehashed {
            throw SignatureProblem("is prehashed (ED) but has no trusted comment")
        }
        return s
    }

    /// Why a signature file is malformed.
    public struct SignatureProblem: Error, Sendable, Equatable {
        /// The end of a sentence starting "the signature file".
        public var why: String
        init(_ why: String) { self.why = why }
    }

    /// Whether `signature` is `publicKey`'s (32 bytes) signature of `message`, trusted comment included.
    public static func verify(_ signature: Signature, of message: [UInt8], publicKey: [UInt8]) -> Bool {
        let signed = signature.prehashed ? Sodium.blake2b512(message) : message
        guard Sodium.verifyEd25519(signature: signature.signature, message: signed, publicKey: publicKey) else {
            return false
        }
        guard let comment = signature.trustedComment, let global = signature.globalSignature else {
            return signature.trustedComment == nil && signature.globalSignature == nil
        }
        return Sodium.verifyEd25519(
            signature: global, message: signature.signature + Array(comment.utf8), publicKey: publicKey)
    }
}
