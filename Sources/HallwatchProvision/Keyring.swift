import Foundation

/// The config-signing keys a box trusts: a directory on the box with a `version` file (one decimal number)
/// and one minisign or signify public key file per key (`*.pub`).
///
/// This is the single-level key set; the threshold-signed, versioned keyring of issue 17 (offline roots,
/// The Update Framework's rotation rule) builds on it and is not written yet.
public struct Keyring: Sendable, Equatable {
    /// The keyring's version (a bundle's `keyring` line must not exceed it).
    public var version: Int
    /// The trusted keys.
    public var keys: [Minisign.PublicKey]

    /// A keyring of `keys` at `version`.
    public init(version: Int, keys: [Minisign.PublicKey]) {
        self.version = version
        self.keys = keys
    }

    /// Loads the keyring directory at `path`.
    /// - Throws: `provision.keyring` when the directory, its `version` or any key is unreadable or malformed,
    ///   or when it holds no key.
    public static func load(directory path: String) throws(ProvisionError) -> Keyring {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: path) else {
            throw ProvisionError(.keyring, "the keyring directory \(path) cannot be read")
        }
        let versionText = (try? String(contentsOfFile: path + "/version", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard let versionText, let version = Int(versionText), version >= 0 else {
            throw ProvisionError(.keyring, "the keyring has no readable version file")
        }
        var keys: [Minisign.PublicKey] = []
        for name in names.sorted() where name.hasSuffix(".pub") {
            guard let data = fm.contents(atPath: path + "/" + name), data.count <= 4096 else {
                throw ProvisionError(.keyring, "the key \(name) cannot be read")
            }
            keys.append(try Minisign.PublicKey(text: String(decoding: data, as: UTF8.self)))
        }
        guard !keys.isEmpty else { throw ProvisionError(.keyring, "the keyring holds no key") }
        return Keyring(version: version, keys: keys)
    }
}
