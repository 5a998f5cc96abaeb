import Foundation

/// The config-signing keys a box trusts, and how a newer keyring is accepted.
///
/// Two forms of keyring directory on the box:
/// - **Signed keyring** (`keyring.txt`, ``SignedKeyring``): offline root keys with a threshold sign versioned
///   keyrings of config-signing keys, each key with an expiry and a building pattern. A stick may carry newer
///   keyrings under `HALLWATCH/keyring/<version>/` (`keyring.txt` and `sig-1.minisig` … `sig-8.minisig`); the
///   box accepts version N+1 only when a threshold of N's roots *and* a threshold of N+1's roots signed it
///   (The Update Framework's root rotation rule, TUF specification §5.3), one version at a time.
/// - **Plain key set** (a `version` file and `*.pub` files): every key valid for every building, no expiry;
///   for development and images that install their keys directly.
public struct Keyring: Sendable, Equatable {
    /// One trusted config-signing key.
    public struct Entry: Sendable, Equatable {
        /// The key.
        public var key: Minisign.PublicKey
        /// Which buildings it may sign for: `*`, an exact building id, or a prefix followed by `*`.
        public var pattern: String
        /// Seconds since the epoch after which it signs nothing (`Int64.max`: never).
        public var expiresUnix: Int64

        /// Whether the key may sign a bundle for `building`.
        public func covers(_ building: String) -> Bool {
            if pattern == "*" { return true }
            if pattern.hasSuffix("*") { return building.hasPrefix(String(pattern.dropLast())) }
            return building == pattern
        }
    }

    /// The keyring's version (a bundle's `keyring` line must not exceed it).
    public var version: Int
    /// The trusted config-signing keys.
    public var entries: [Entry]
    /// The signed keyring this came from, when it did (rotation starts from it).
    public var signed: SignedKeyring?

    /// The keys alone.
    public var keys: [Minisign.PublicKey] { entries.map(\.key) }

    /// A plain key set of `keys` at `version`: every building, no expiry.
    public init(version: Int, keys: [Minisign.PublicKey]) {
        self.version = version
        self.entries = keys.map { Entry(key: $0, pattern: "*", expiresUnix: .max) }
        self.signed = nil
    }

    /// The keys of a signed keyring.
    public init(_ signed: SignedKeyring) {
        version = signed.version
        entries = signed.keys
        self.signed = signed
    }

    /// Loads the keyring directory at `path`: `keyring.txt` when present, else `version` and `*.pub`.
    /// - Throws: `provision.keyring` when the directory, its `version` or any key is unreadable or malformed,
    ///   or when it holds no key.
    public static func load(directory path: String) throws(ProvisionError) -> Keyring {
        let fm = FileManager.default
        if let data = fm.contents(atPath: path + "/keyring.txt") {
            // Installed with the image or accepted by rotation: trusted as stored.
            return Keyring(try SignedKeyring.parse(Array(data)))
        }
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

    /// The most root signatures read per keyring version from a stick.
    public static let maxSignatures = 8

    /// Accepts the newer keyrings a stick carries, one version at a time (TUF's rule, above).
    /// - Parameter persist: the box's keyring directory to write each accepted version to (atomically),
    ///   or `nil` to accept in memory only (`hallwatchctl config verify`).
    /// - Returns: the newest keyring accepted (or `self`).
    /// - Throws: `provision.keyring` when a newer keyring on the stick is malformed or not signed by both
    ///   thresholds; the bundle is then refused (a stick that tries a wrong rotation is hostile).
    public func rotated(from stick: any StickSource, persist: String?) throws(ProvisionError) -> Keyring {
        guard var current = signed else { return self }
        for _ in 0..<16 {
            let dir = "HALLWATCH/keyring/\(current.version + 1)"
            let text = try stick.read(dir + "/keyring.txt", maxBytes: SignedKeyring.maxBytes + 1)
            if text.isEmpty { break }
            var signatures: [Minisign.Signature] = []
            for i in 1...Self.maxSignatures {
                let bytes = try stick.read(dir + "/sig-\(i).minisig", maxBytes: Minisign.Signature.maxBytes + 1)
                if bytes.isEmpty { break }
                signatures.append(try Minisign.Signature(bytes: bytes))
            }
            let next = try current.accept(next: text, signatures: signatures)
            if let persist { try Self.persist(text, in: persist) }
            current = next
        }
        return Keyring(current)
    }

    private static func persist(_ text: [UInt8], in dir: String) throws(ProvisionError) {
        let tmp = dir + "/keyring.txt.new"
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ProvisionError(.keyring, "cannot write \(tmp)") }
        let n = text.withUnsafeBytes { write(fd, $0.baseAddress, text.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard n == text.count, synced, rename(tmp, dir + "/keyring.txt") == 0 else {
            throw ProvisionError(.keyring, "cannot replace \(dir)/keyring.txt")
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }
}

/// A versioned keyring signed by offline roots: `keyring.txt`.
///
/// Grammar (every line ends in `\n`, one space between fields, at most 16 KiB):
///
/// ```
/// hallwatch-keyring 1
/// version <1…2^31>
/// threshold <1…16>
/// root <minisign public key, base64>              (threshold…16 lines)
/// key <expires YYYY-MM-DDTHH:MM:SSZ> <pattern> <minisign public key, base64>   (1…64 lines)
/// ```
///
/// A pattern is `*`, a building id, or a building-id prefix followed by `*`.
public struct SignedKeyring: Sendable, Equatable {
    /// The largest `keyring.txt` accepted, in bytes.
    public static let maxBytes = 16 * 1024
    /// The version.
    public var version: Int
    /// How many distinct roots must sign the next version (and this one, when it is accepted).
    public var threshold: Int
    /// The root keys.
    public var roots: [Minisign.PublicKey]
    /// The config-signing keys.
    public var keys: [Keyring.Entry]

    /// Parses `keyring.txt`.
    /// - Throws: `provision.keyring` with every problem.
    public static func parse(_ bytes: [UInt8]) throws(ProvisionError) -> SignedKeyring {
        guard bytes.count <= maxBytes, bytes.last == 0x0A,
            bytes.allSatisfy({ $0 == 0x0A || (0x20...0x7E).contains($0) })
        else { throw ProvisionError(.keyring, "keyring.txt is not printable ASCII lines of at most \(maxBytes) bytes") }
        let lines = bytes.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: false) }
        var problems: [String] = []
        func field(_ i: Int, _ key: String) -> Int? {
            guard i < lines.count, lines[i].count == 2, lines[i][0] == key, let v = Int(lines[i][1]), v > 0,
                v <= 1 << 31, String(v) == lines[i][1]
            else {
                problems.append("line \(i + 1): expected `\(key) <number>`")
                return nil
            }
            return v
        }
        if lines.first?.map(String.init) != ["hallwatch-keyring", "1"] {
            problems.append("line 1: not hallwatch-keyring 1")
        }
        let version = field(1, "version")
        let threshold = field(2, "threshold")
        var roots: [Minisign.PublicKey] = []
        var keys: [Keyring.Entry] = []
        for (i, parts) in lines.enumerated().dropFirst(3) {
            if parts.count == 2, parts[0] == "root", keys.isEmpty,
                let k = try? Minisign.PublicKey(text: String(parts[1]))
            {
                roots.append(k)
            } else if parts.count == 4, parts[0] == "key", let t = BundleManifest.rfc3339(String(parts[1])),
                parts[2] == "*" || BundleManifest.isID(String(parts[2]))
                    || (parts[2].hasSuffix("*") && BundleManifest.isID(String(parts[2].dropLast()))),
                let k = try? Minisign.PublicKey(text: String(parts[3]))
            {
                keys.append(Keyring.Entry(key: k, pattern: String(parts[2]), expiresUnix: t))
            } else {
                problems.append("line \(i + 1): expected `root <key>` or `key <expires> <pattern> <key>` (roots first)")
            }
        }
        if let threshold, !(threshold...16).contains(roots.count) {
            problems.append("\(roots.count) roots for a threshold of \(threshold) (at most 16)")
        }
        if Set(roots.map(\.keyID)).count != roots.count { problems.append("a root is listed twice") }
        if !(1...64).contains(keys.count) { problems.append("\(keys.count) keys; expected 1 to 64") }
        guard problems.isEmpty, let version, let threshold else {
            throw ProvisionError(.keyring, "keyring.txt is malformed: " + problems.joined(separator: "; "))
        }
        return SignedKeyring(version: version, threshold: threshold, roots: roots, keys: keys)
    }

    /// How many distinct keys of `roots` signed `text` among `signatures`.
    static func signers(of text: [UInt8], _ signatures: [Minisign.Signature], roots: [Minisign.PublicKey]) -> Int {
        var ids = Set<[UInt8]>()
        for s in signatures {
            if let k = try? Minisign.verify(s, of: text, keys: roots) { ids.insert(k.keyID) }
        }
        return ids.count
    }

    /// Accepts `text` as the next version: exactly ``version`` + 1, signed by ``threshold`` of this
    /// keyring's roots and by its own threshold of its own roots.
    /// - Throws: `provision.keyring` otherwise.
    public func accept(next text: [UInt8], signatures: [Minisign.Signature]) throws(ProvisionError) -> SignedKeyring {
        let next = try Self.parse(text)
        guard next.version == version + 1 else {
            throw ProvisionError(.keyring, "keyring \(next.version) where \(version + 1) was expected")
        }
        let old = Self.signers(of: text, signatures, roots: roots)
        guard old >= threshold else {
            throw ProvisionError(
                .keyring,
                "keyring \(next.version) is signed by \(old) of keyring \(version)'s roots; \(threshold) needed")
        }
        let new = Self.signers(of: text, signatures, roots: next.roots)
        guard new >= next.threshold else {
            throw ProvisionError(
                .keyring, "keyring \(next.version) is signed by \(new) of its own roots; \(next.threshold) needed")
        }
        return next
    }
}
