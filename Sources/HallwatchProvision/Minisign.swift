import Foundation
import HallwatchSodium

/// minisign public keys and signatures (the format of `minisign` 0.11 and `signify-openbsd`), verified with
/// libsodium.
///
/// Format (minisign's documentation, "Signature format"): a public key file is an `untrusted comment:` line
/// and the base64 of `"Ed"` ‖ key id (8 bytes) ‖ Ed25519 public key (32 bytes). A signature file is an
/// `untrusted comment:` line, the base64 of signature algorithm (2 bytes) ‖ key id (8) ‖ signature (64),
/// then — minisign only — a `trusted comment: <text>` line and the base64 of a global signature (64) over
/// signature ‖ comment text. The algorithm is `ED` (prehashed: the signature covers BLAKE2b-512 of the file,
/// minisign's default) or `Ed` (legacy: the signature covers the file itself; `minisign -l` and signify).
/// Three forms are accepted: `ED` with a trusted comment, `Ed` with one, and `Ed` without (signify's).
public enum Minisign {
    /// A trusted public key.
    public struct PublicKey: Sendable, Equatable {
        /// Key id, 8 bytes (little-endian in minisign's printouts: ``keyIDText``).
        public var keyID: [UInt8]
        /// Ed25519 public key, 32 bytes.
        public var key: [UInt8]
        /// The key id as minisign prints it (16 uppercase hex digits of the little-endian number).
        public var keyIDText: String { hex(keyID.reversed()).uppercased() }

        /// Parses a public key file's text, or just its base64 line.
        /// - Throws: `provision.keyring` when it is not a minisign/signify Ed25519 public key.
        public init(text: String) throws(ProvisionError) {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map {
                $0.hasSuffix("\r") ? String($0.dropLast()) : String($0)
            }
            let b64 = lines.first { !$0.hasPrefix("untrusted comment:") } ?? ""
            guard lines.count <= 2, let raw = Data(base64Encoded: b64).map(Array.init), raw.count == 42,
                raw[0] == UInt8(ascii: "E"), raw[1] == UInt8(ascii: "d")
            else { throw ProvisionError(.keyring, "not a minisign or signify Ed25519 public key") }
            keyID = Array(raw[2..<10])
            key = Array(raw[10..<42])
        }
    }

    /// A parsed signature file.
    public struct Signature: Sendable, Equatable {
        /// True for `ED` (BLAKE2b-512 prehashed), false for legacy `Ed`.
        public var prehashed: Bool
        /// Key id, 8 bytes.
        public var keyID: [UInt8]
        /// Ed25519 signature, 64 bytes.
        public var signature: [UInt8]
        /// The trusted comment (minisign), `nil` for signify's form.
        public var trustedComment: String?
        /// The global signature over signature ‖ trusted comment, when there is a trusted comment.
        public var globalSignature: [UInt8]?

        /// The largest signature file accepted, in bytes.
        public static let maxBytes = 4096

        /// Parses a signature file.
        /// - Throws: `provision.signature` when malformed.
        public init(bytes: [UInt8]) throws(ProvisionError) {
            func bad(_ why: String) -> ProvisionError { ProvisionError(.signature, "the signature file \(why)") }
            guard bytes.count <= Self.maxBytes else { throw bad("is larger than \(Self.maxBytes) bytes") }
            guard let text = String(validating: bytes, as: UTF8.self) else { throw bad("is not UTF-8") }
            let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
            guard lines.count == 2 || lines.count == 4, lines[0].hasPrefix("untrusted comment:") else {
                throw bad("is not two or four lines starting with an untrusted comment")
            }
            guard let raw = Data(base64Encoded: lines[1]).map(Array.init), raw.count == 74,
                raw[0] == UInt8(ascii: "E"), raw[1] == UInt8(ascii: "D") || raw[1] == UInt8(ascii: "d")
            else { throw bad("does not hold an Ed25519 signature (ED or Ed)") }
            prehashed = raw[1] == UInt8(ascii: "D")
            keyID = Array(raw[2..<10])
            signature = Array(raw[10..<74])
            if lines.count == 4 {
                let prefix = "trusted comment: "
                guard lines[2].hasPrefix(prefix), let g = Data(base64Encoded: lines[3]).map(Array.init), g.count == 64
                else { throw bad("has a malformed trusted comment or global signature") }
                trustedComment = String(lines[2].dropFirst(prefix.count))
                globalSignature = g
            } else {
                guard !prehashed else { throw bad("is prehashed (ED) but has no trusted comment") }
                trustedComment = nil
                globalSignature = nil
            }
        }
    }

    /// An unencrypted minisign secret key (`minisign -G -W`): the box's own identity, which signs its receipts.
    ///
    /// Format (minisign's documentation): the base64 of signature algorithm `Ed` (2) ‖ KDF algorithm (2, zero:
    /// not encrypted) ‖ checksum algorithm `B2` (2) ‖ KDF salt (32) ‖ opslimit (8) ‖ memlimit (8) ‖ key id (8) ‖
    /// Ed25519 secret key (64: seed ‖ public key) ‖ checksum (32).
    public struct SecretKey: Sendable {
        /// Key id, 8 bytes.
        public var keyID: [UInt8]
        /// seed ‖ public key, 64 bytes.
        var secret: [UInt8]
        /// The public key a verifier uses.
        public var publicKey: PublicKey {
            var p = try! PublicKey(text: Data([0x45, 0x64] + keyID + Array(secret[32..<64])).base64EncodedString())
            p.keyID = keyID
            return p
        }

        /// Parses a secret key file made with `minisign -G -W`.
        /// - Throws: `provision.keyring` when it is encrypted, malformed or inconsistent.
        public init(text: String) throws(ProvisionError) {
            let b64 = text.split(separator: "\n").first { !$0.hasPrefix("untrusted comment:") }.map(String.init) ?? ""
            guard let raw = Data(base64Encoded: b64).map(Array.init), raw.count == 158, raw[0] == 0x45, raw[1] == 0x64
            else { throw ProvisionError(.keyring, "not a minisign secret key") }
            guard raw[2] == 0, raw[3] == 0 else {
                throw ProvisionError(.keyring, "the secret key is encrypted; the box's key is made with minisign -G -W")
            }
            keyID = Array(raw[54..<62])
            secret = Array(raw[62..<126])
            guard Sodium.isConsistentEd25519(secretKey: secret) else {
                throw ProvisionError(.keyring, "the secret key's halves do not match")
            }
        }

        /// A minisign signature file (prehashed `ED` form, with `trustedComment`) of `message`.
        public func sign(_ message: [UInt8], trustedComment: String) -> String {
            let sig = Sodium.signEd25519(message: Sodium.blake2b512(message), secretKey: secret)
            let global = Sodium.signEd25519(message: sig + Array(trustedComment.utf8), secretKey: secret)
            return "untrusted comment: signature from a Hallwatch box\n"
                + Data([0x45, 0x44] + keyID + sig).base64EncodedString() + "\n"
                + "trusted comment: \(trustedComment)\n" + Data(global).base64EncodedString() + "\n"
        }
    }

    /// Verifies `signature` of `message` against `keys` (any one whose id matches).
    /// - Returns: the key that verified.
    /// - Throws: `provision.unknownKey` when no key has the signature's id; `provision.signature` when the
    ///   signature or the trusted comment's global signature does not verify.
    @discardableResult
    public static func verify(_ signature: Signature, of message: [UInt8], keys: [PublicKey]) throws(ProvisionError)
        -> PublicKey
    {
        guard let key = keys.first(where: { $0.keyID == signature.keyID }) else {
            throw ProvisionError(
                .unknownKey, "signed by key \(hex(signature.keyID.reversed()).uppercased()), not in the keyring")
        }
        let signed = signature.prehashed ? Sodium.blake2b512(message) : message
        guard Sodium.verifyEd25519(signature: signature.signature, message: signed, publicKey: key.key) else {
            throw ProvisionError(.signature, "the signature does not verify with key \(key.keyIDText)")
        }
        if let comment = signature.trustedComment, let global = signature.globalSignature {
            guard
                Sodium.verifyEd25519(
                    signature: global, message: signature.signature + Array(comment.utf8), publicKey: key.key)
            else { throw ProvisionError(.signature, "the trusted comment's signature does not verify") }
        }
        return key
    }
}
