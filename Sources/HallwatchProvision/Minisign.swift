import Foundation
import HallwatchSodium

/// minisign public keys, signatures and the box's secret key (the formats of `minisign` 0.11 and
/// `signify-openbsd`, written down in HallwatchSodium's `MinisignFormat`), verified with libsodium, with the
/// provisioner's typed errors.
///
/// Three signature forms are accepted: `ED` (prehashed, minisign's default) with a trusted comment, `Ed`
/// (legacy, `minisign -l`) with one, and `Ed` without (signify's).
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
            guard let parsed = MinisignFormat.parsePublicKey(text) else {
                throw ProvisionError(.keyring, "not a minisign or signify Ed25519 public key")
            }
            keyID = parsed.keyID
            key = parsed.publicKey
        }

        /// The public key file's base64 line (what `minisign -P` takes).
        public var line: String { MinisignFormat.publicKeyLine(keyID: keyID, publicKey: key) }
    }

    /// A parsed signature file (HallwatchSodium's ``MinisignFormat/Signature``).
    public typealias Signature = MinisignFormat.Signature

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
            // A 32-byte key and an 8-byte id always make a valid public key line.
            try! PublicKey(text: MinisignFormat.publicKeyLine(keyID: keyID, publicKey: Array(secret[32..<64])))
        }

        /// Parses a secret key file made with `minisign -G -W` or `hallwatchctl config keygen`.
        /// - Throws: `provision.keyring` when it is encrypted, malformed or inconsistent.
        public init(text: String) throws(ProvisionError) {
            do { (keyID, secret) = try MinisignFormat.parseSecretKey(text) } catch {
                switch error {
                case .encrypted:
                    throw ProvisionError(
                        .keyring, "the secret key is encrypted; the box's key is made with minisign -G -W")
                case .inconsistent: throw ProvisionError(.keyring, "the secret key's checksum or halves do not match")
                case .malformed: throw ProvisionError(.keyring, "not a minisign secret key")
                }
            }
        }

        /// A minisign signature file (prehashed `ED` form, with `trustedComment`) of `message`.
        public func sign(_ message: [UInt8], trustedComment: String) -> String {
            MinisignFormat.signatureFile(
                of: message, keyID: keyID, secretKey: secret, trustedComment: trustedComment,
                untrustedComment: "signature from a Hallwatch box")
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
        var bare = MinisignFormat.Signature(
            prehashed: signature.prehashed, keyID: signature.keyID, signature: signature.signature)
        guard MinisignFormat.verify(bare, of: message, publicKey: key.key) else {
            throw ProvisionError(.signature, "the signature does not verify with key \(key.keyIDText)")
        }
        bare.trustedComment = signature.trustedComment
        bare.globalSignature = signature.globalSignature
        guard MinisignFormat.verify(bare, of: message, publicKey: key.key) else {
            throw ProvisionError(.signature, "the trusted comment's signature does not verify")
        }
        return key
    }
}

extension MinisignFormat.Signature {
    /// The largest signature file accepted, in bytes.
    public static let maxBytes = 4096

    /// Parses a signature file read from a stick (at most ``maxBytes``, UTF-8).
    /// - Throws: `provision.signature` when malformed.
    public init(bytes: [UInt8]) throws(ProvisionError) {
        func bad(_ why: String) -> ProvisionError { ProvisionError(.signature, "the signature file \(why)") }
        guard bytes.count <= Self.maxBytes else { throw bad("is larger than \(Self.maxBytes) bytes") }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw bad("is not UTF-8") }
        do { self = try MinisignFormat.parseSignature(text) } catch { throw bad(error.why) }
    }
}
