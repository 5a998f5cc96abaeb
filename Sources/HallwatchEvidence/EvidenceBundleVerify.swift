import Crypto
import Foundation
import HallwatchCore
import HallwatchMedia

extension EvidenceBundle {
    /// The outcome of ``verify(directory:)``.
    public struct Verdict: Sendable, Equatable, CustomStringConvertible {
        /// The first file that failed (bundle path), `nil` when everything verified.
        public var failingFile: String?
        /// Why it failed, or what was checked.
        public var detail: String
        /// Files whose SHA-256 matched `SHA256SUMS`.
        public var filesChecked: Int
        /// The fingerprint of the key that signed `SHA256SUMS` (``fingerprint(publicKey:)``), once the signature
        /// verified: anyone can make a bundle that verifies against a key of their own, so a recipient compares
        /// this with the box's fingerprint obtained another way (the box's status page, the district's register).
        public var signerFingerprint: String? = nil
        /// Whether everything verified.
        public var ok: Bool { failingFile == nil }
        /// `OK: …` or `FAILED: <file>: …`.
        public var description: String { failingFile.map { "FAILED: \($0): \(detail)" } ?? "OK: \(detail)" }
    }

    /// SHA-256 of a 32-byte Ed25519 public key, upper-case hex pairs joined by `:`: the form in which the box's
    /// status page, `hallwatchctl status` and the web's log show the box's identity key.
    public static func fingerprint(publicKey: Data) -> String {
        SHA256.hash(data: publicKey).map { String(format: "%02X", $0) }.joined(separator: ":")
    }

    /// Checks a bundle made by ``write(_:from:to:signer:now:progress:)``, in order:
    /// 0. everything in the bundle is a regular file or a directory: a symlink, FIFO or device is refused
    ///    before anything is read (a link to `/dev/zero` would make the check read forever, a link out of the
    ///    bundle would hash a file the bundle does not hold);
    /// 1. `SHA256SUMS` is signed (`SHA256SUMS.sig`, Ed25519, RFC 8032) by the key in `keys/box-ed25519.pem`,
    ///    and, when `expectedFingerprint` is given, that key is the one it names (colons and case ignored);
    /// 2. every file it lists has its SHA-256, `SHA256SUMS.minisig` verifies (``Minisign``), and no other file
    ///    is in the bundle;
    /// 3. each `frames/<camera>.framehash` equals the framehash of `video/<camera>/*.mp4`, re-demuxed.
    ///
    /// When the signature fails, the file named is the one a single change explains: the key when its hash
    /// differs from its line, `SHA256SUMS` when any of its lines no longer matches, else `SHA256SUMS.sig`.
    /// Reads every file once (and the MP4s twice); never writes.
    public static func verify(directory dir: String, expectedFingerprint: String? = nil) -> Verdict {
        func fail(_ file: String, _ why: String, _ n: Int = 0) -> Verdict {
            Verdict(failingFile: file, detail: why, filesChecked: n)
        }
        if let odd = notRegular(dir) { return fail(odd.path, "\(odd.kind), not a regular file: refused") }
        guard let sumsData = FileManager.default.contents(atPath: dir + "/SHA256SUMS") else {
            return fail("SHA256SUMS", "missing or unreadable")
        }
        // Parse `<64 hex>  <path>` lines.
        var lines: [(hash: String, path: String)] = []
        var malformed = false
        for line in String(decoding: sumsData, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        where !line.isEmpty {
            let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard parts.count == 3, parts[0].count == 64, parts[1].isEmpty,
                parts[0].allSatisfy({ $0.isHexDigit && !$0.isUppercase }), !parts[2].contains("..")
            else {
                malformed = true
                continue
            }
            lines.append((String(parts[0]), String(parts[2].hasPrefix("*") ? parts[2].dropFirst() : parts[2])))
        }
        var mismatched: [String] = []
        for l in lines {
            let actual = try? sha256Hex(file: dir + "/" + l.path)
            if actual != l.hash { mismatched.append(l.path) }
        }
        // The signature over the sums.
        let pemText = FileManager.default.contents(atPath: dir + "/" + publicKeyPath).map {
            String(decoding: $0, as: UTF8.self)
        }
        guard let pemText else { return fail(publicKeyPath, "missing or unreadable") }
        let signature = FileManager.default.contents(atPath: dir + "/SHA256SUMS.sig") ?? Data()
        let signerKey = publicKey(pem: pemText)
        let signed: Bool = {
            guard let raw = signerKey, let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw)
            else { return false }
            return key.isValidSignature(signature, for: sumsData)
        }()
        if !signed {
            if mismatched.contains(publicKeyPath) || publicKey(pem: pemText) == nil {
                return fail(
                    publicKeyPath, "not the key SHA256SUMS.sig was made with (it differs from its SHA256SUMS line)")
            }
            if malformed || !mismatched.isEmpty {
                return fail(
                    "SHA256SUMS", "its signature SHA256SUMS.sig does not verify and its lines do not match the files")
            }
            return fail("SHA256SUMS.sig", "not an Ed25519 signature of SHA256SUMS by \(publicKeyPath)")
        }
        let signer = signerKey.map(fingerprint(publicKey:)) ?? ""
        if let expected = expectedFingerprint {
            func normal(_ f: String) -> String { f.uppercased().filter { $0 != ":" && !$0.isWhitespace } }
            guard normal(expected) == normal(signer) else {
                return fail(
                    publicKeyPath,
                    "signed by a key with fingerprint \(signer), not the expected \(expected): not this box's bundle")
            }
        }
        if malformed { return fail("SHA256SUMS", "a line is not `<sha256>  <path>`") }
        if let bad = mismatched.first {
            return fail(
                bad,
                FileManager.default.fileExists(atPath: dir + "/" + bad) ? "SHA-256 differs from SHA256SUMS" : "missing")
        }
        let minisig = FileManager.default.contents(atPath: dir + "/SHA256SUMS.minisig").map {
            String(decoding: $0, as: UTF8.self)
        }
        let minisignKey = FileManager.default.contents(atPath: dir + "/" + minisignKeyPath).map {
            String(decoding: $0, as: UTF8.self)
        }
        guard let minisig, let minisignKey,
            Minisign.verify(message: sumsData, signatureFile: minisig, publicKeyFile: minisignKey)
        else {
            return fail("SHA256SUMS.minisig", "not a minisign signature of SHA256SUMS by \(minisignKeyPath)")
        }
        let listed = Set(lines.map(\.path))
        if let extra = listedFiles(dir).first(where: { !listed.contains($0) }) {
            return fail(extra, "not listed in SHA256SUMS")
        }
        // Framehash of each camera's files, re-demuxed.
        for framehash in lines.map(\.path) where framehash.hasPrefix("frames/") && framehash.hasSuffix(".framehash") {
            let camera = String(framehash.dropFirst("frames/".count).dropLast(".framehash".count))
            let files = lines.map(\.path).filter { $0.hasPrefix("video/\(camera)/") && $0.hasSuffix(".mp4") }.sorted()
            var text = ""
            for f in files {
                do { text += try FrameHash.compute(path: dir + "/" + f).text } catch {
                    return fail(f, "cannot be read as MP4: \(error)", lines.count)
                }
            }
            let stored = FileManager.default.contents(atPath: dir + "/" + framehash).map {
                String(decoding: $0, as: UTF8.self)
            }
            if stored != text {
                return fail(
                    framehash, "differs from the frames of \(files.joined(separator: ", "))", lines.count)
            }
        }
        return Verdict(
            failingFile: nil,
            detail:
                "\(lines.count) files match SHA256SUMS, its Ed25519 signature verifies, the framehashes match the video; "
                + (expectedFingerprint == nil
                    ? "signed by key \(signer): compare it with the box's fingerprint from a source other than the bundle"
                    : "signed by key \(signer), the expected one"),
            filesChecked: lines.count, signerFingerprint: signer)
    }

    /// The first entry under `dir` (walked without following links) that is neither a regular file nor a
    /// directory: its path in the bundle and what it is.
    static func notRegular(_ dir: String) -> (path: String, kind: String)? {
        var pending = [""]
        while let rel = pending.popLast() {
            let full = rel.isEmpty ? dir : dir + "/" + rel
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: full) else { continue }
            for name in names.sorted() {
                let path = rel.isEmpty ? name : rel + "/" + name
                var st = stat()
                guard lstat(dir + "/" + path, &st) == 0 else { return (path, "unreadable") }
                switch st.st_mode & S_IFMT {
                case S_IFREG: continue
                case S_IFDIR: pending.append(path)
                case S_IFLNK: return (path, "a symbolic link")
                case S_IFIFO: return (path, "a FIFO")
                case S_IFCHR, S_IFBLK: return (path, "a device node")
                case S_IFSOCK: return (path, "a socket")
                default: return (path, "not a file")
                }
            }
        }
        return nil
    }
}
