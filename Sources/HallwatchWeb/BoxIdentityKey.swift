import Crypto
import Foundation
import HallwatchCore

/// The box's Ed25519 identity key (RFC 8032, swift-crypto's `Curve25519.Signing`): made once on first start in
/// the web's state directory, never leaving the box. It signs the audit log's checkpoints
/// (``AuditCheckpoint``); export bundles and USB receipts are to use the same key.
///
/// Files (both written with ``TLSIdentity``'s write-then-rename, `fsync`ed):
/// - `identity.key` — mode 0600, readable by `hallwatch-web` (and root) only: the text
///   `hallwatch-ed25519-private-v1` and the 32-byte private seed in base64, one per line.
/// - `identity.pub` — mode 0644: `hallwatch-ed25519-public-v1` and the 32-byte public key in base64. What
///   `hallwatchctl audit verify` checks checkpoints with, and what a district records per box.
///
/// Steps of ``load(directory:)``:
/// 1. `identity.key` exists: narrow it to 0600, read it (a corrupt file is an error, never replaced: a new key
///    would orphan every checkpoint signed so far). Otherwise make a key and write it.
/// 2. Write `identity.pub` from the private key when it is missing or differs.
public struct BoxIdentityKey: Sendable {
    /// The 32-byte private seed (swift-crypto's key type is not `Sendable`).
    let seed: Data
    /// The 32-byte public key (RFC 8032 §5.1.5 encoding).
    public let publicKey: Data

    /// The private key.
    var privateKey: Curve25519.Signing.PrivateKey { try! Curve25519.Signing.PrivateKey(rawRepresentation: seed) }

    /// File names in the state directory.
    public static let privateFile = "identity.key"
    /// The public half's file name.
    public static let publicFile = "identity.pub"
    static let privateHeader = "hallwatch-ed25519-private-v1"
    static let publicHeader = "hallwatch-ed25519-public-v1"

    /// A key from its 32-byte seed (tests; ``load(directory:)`` otherwise).
    /// - Throws: swift-crypto's error when `seed` is not 32 bytes.
    public init(seed: Data) throws {
        let key = try Curve25519.Signing.PrivateKey(rawRepresentation: seed)
        self.seed = key.rawRepresentation
        publicKey = key.publicKey.rawRepresentation
    }

    /// A new random key.
    public static func generate() -> BoxIdentityKey {
        try! BoxIdentityKey(seed: Curve25519.Signing.PrivateKey().rawRepresentation)
    }

    /// SHA-256 of the 32-byte public key, upper-case hex pairs joined by `:` (the form of the TLS fingerprint):
    /// what the status page and `hallwatchctl status` show and a district writes down per box.
    public var fingerprintSHA256: String { Self.fingerprint(publicKey: publicKey) }

    /// The fingerprint of any 32-byte Ed25519 public key (see ``fingerprintSHA256``).
    public static func fingerprint(publicKey: Data) -> String {
        SHA256.hash(data: publicKey).map { String(format: "%02X", $0) }.joined(separator: ":")
    }

    /// An Ed25519 signature (64 bytes) of `message`.
    public func sign(_ message: Data) -> Data {
        (try? privateKey.signature(for: message)) ?? Data()
    }

    /// Whether `signature` is `publicKey`'s Ed25519 signature of `message`.
    public static func isValid(signature: Data, of message: Data, publicKey: Data) -> Bool {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return false }
        return key.isValidSignature(signature, for: message)
    }

    /// Loads or makes the key in `directory` (see the steps above).
    /// - Throws: `SystemError` for file errors; ``IdentityKeyError`` for a file that is not a key.
    public static func load(directory: String) throws -> BoxIdentityKey {
        let keyPath = directory + "/" + privateFile
        let key: BoxIdentityKey
        if FileManager.default.fileExists(atPath: keyPath) {
            guard chmod(keyPath, 0o600) == 0 else { throw SystemError("chmod", subject: keyPath) }
            key = try BoxIdentityKey(seed: try read(keyPath, header: privateHeader))
        } else {
            key = generate()
            try TLSIdentity.writeAtomically(
                "\(privateHeader)\n\(key.seed.base64EncodedString())\n", to: keyPath, mode: 0o600)
        }
        let pubPath = directory + "/" + publicFile
        if (try? readPublicKey(path: pubPath)) != key.publicKey {
            try TLSIdentity.writeAtomically(
                "\(publicHeader)\n\(key.publicKey.base64EncodedString())\n", to: pubPath, mode: 0o644)
        }
        return key
    }

    /// Reads an existing private key file (`identity.key`) without making one (signing an export bundle).
    /// - Throws: `SystemError` for file errors; ``IdentityKeyError`` for a file that is not a key.
    public static func readPrivateKey(path: String) throws -> BoxIdentityKey {
        try BoxIdentityKey(seed: try read(path, header: privateHeader))
    }

    /// Reads a public key file (`identity.pub`).
    /// - Throws: `SystemError` or ``IdentityKeyError``.
    public static func readPublicKey(path: String) throws -> Data {
        try read(path, header: publicHeader)
    }

    static func read(_ path: String, header: String) throws -> Data {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw SystemError("open", errno: errno == 0 ? ENOENT : errno, subject: path)
        }
        let lines = String(decoding: data.prefix(4096), as: UTF8.self).split(separator: "\n")
        guard lines.count == 2, lines[0] == header, let bytes = Data(base64Encoded: String(lines[1])),
            bytes.count == 32
        else { throw IdentityKeyError(path: path) }
        return bytes
    }
}

/// A key file that is not what its name says (`audit.keyFile`).
public struct IdentityKeyError: HallwatchError {
    /// The file.
    public var path: String
    /// `audit.keyFile`.
    public var stableCode: String { "audit.keyFile" }
    /// One sentence.
    public var message: String { "\(path) is not a Hallwatch Ed25519 key file" }
    /// Code and message.
    public var description: String { "\(stableCode): \(message)" }
}
