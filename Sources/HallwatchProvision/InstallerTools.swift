import Foundation
import HallwatchSodium

/// What `hallwatchctl config bundle` and `config receipts` do: write a bundle's `bundle.txt` from its
/// `files/` folder (never touching a key: the district signs it with minisign or signify), and read every
/// receipt on a stick into the district's inventory.
public enum InstallerTools {
    /// Writes `<buildingDirectory>/bundle.txt` listing every file under `<buildingDirectory>/files/` (one
    /// folder level) with its size and SHA-256, and returns the manifest.
    /// - Throws: `provision.manifest` when a name breaks the pattern, a file is empty, a symlink or special
    ///   file is found, or the result breaks a bound; every problem listed.
    public static func writeManifest(
        buildingDirectory dir: String, district: String, boxes: BundleManifest.Boxes, version: Int,
        issuedUnix: Int64, expiresUnix: Int64, keyringVersion: Int
    ) throws(ProvisionError) -> BundleManifest {
        let fm = FileManager.default
        let base = dir + "/files"
        var files: [BundleManifest.File] = []
        var problems: [String] = []
        func walk(_ rel: String, depth: Int) {
            let names = ((try? fm.contentsOfDirectory(atPath: base + rel)) ?? []).sorted()
            for name in names {
                let relName = rel.isEmpty ? name : String(rel.dropFirst()) + "/" + name
                var st = stat()
                guard lstat(base + rel + "/" + name, &st) == 0 else { continue }
                switch st.st_mode & S_IFMT {
                case S_IFDIR where depth == 0: walk(rel + "/" + name, depth: 1)
                case S_IFREG:
                    guard BundleManifest.isName(relName), st.st_size > 0,
                        let data = fm.contents(atPath: base + rel + "/" + name)
                    else {
                        problems.append("\(relName): not a name a bundle may list, or empty")
                        continue
                    }
                    files.append(.init(sizeBytes: data.count, sha256: Sodium.sha256(Array(data)), name: relName))
                default: problems.append("\(relName): not a regular file (or a folder two levels down)")
                }
            }
        }
        walk("", depth: 0)
        guard problems.isEmpty else {
            throw ProvisionError(.manifest, "cannot list: " + problems.joined(separator: "; "))
        }
        let building = (dir as NSString).lastPathComponent
        let m = BundleManifest(
            district: district, building: building, boxes: boxes, version: version, issuedUnix: issuedUnix,
            expiresUnix: expiresUnix, keyringVersion: keyringVersion, files: files)
        _ = try BundleManifest.parse(Array(m.text.utf8))  // the same bounds the box applies
        guard fm.createFile(atPath: dir + "/bundle.txt", contents: Data(m.text.utf8)) else {
            throw ProvisionError(.manifest, "cannot write \(dir)/bundle.txt")
        }
        return m
    }

    /// `hallwatchctl config keygen`: a new Ed25519 key pair from libsodium, written in minisign's format as
    /// `minisign -G -W` writes it (the secret key unencrypted, mode 0600; keep it offline or in the box's
    /// `/etc/hallwatch`), so `minisign -S -s SECRET` signs with it and `minisign -V -p PUBLIC` verifies.
    /// Neither file may exist already (`O_EXCL`): a key is never overwritten.
    /// - Returns: the public key.
    /// - Throws: `provision.keyring` when a file exists or cannot be written.
    public static func writeKeyPair(publicPath: String, secretPath: String) throws(ProvisionError) -> Minisign.PublicKey
    {
        let pair = MinisignFormat.generate()
        func create(_ path: String, _ text: String, mode: mode_t) throws(ProvisionError) {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
            guard fd >= 0 else {
                throw ProvisionError(.keyring, "cannot create \(path): \(String(cString: strerror(errno)))")
            }
            defer { close(fd) }
            let bytes = Array(text.utf8)
            guard write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
                throw ProvisionError(.keyring, "cannot write \(path)")
            }
        }
        try create(secretPath, pair.secretKeyFile, mode: 0o600)
        try create(publicPath, pair.publicKeyFile, mode: 0o644)
        return try Minisign.PublicKey(text: pair.publicKeyFile)
    }

    /// The district inventory from every receipt (`*.txt`) under `HALLWATCH/receipts/` of `stick`, as CSV
    /// (RFC 4180): building, box, result, version before, version after, signer, box clock, reasons, and the
    /// receipt's signature: `verified <key id>` when its `.txt.minisig` verifies with one of `boxKeys` (the
    /// boxes' public keys), `signed <key id>` when no keys were given, `BAD: …` when it does not verify,
    /// `unsigned` when there is none.
    public static func inventoryCSV(stick: any StickSource, boxKeys: [Minisign.PublicKey] = []) throws(ProvisionError)
        -> String
    {
        var rows = ["building,box,result,version_before,version_after,signer,box_clock,reasons,signature"]
        let names = try stick.files(in: "HALLWATCH/receipts")
        for name in names.sorted() where name.hasSuffix(".txt") {
            let bytes = try stick.read("HALLWATCH/receipts/" + name, maxBytes: 64 * 1024)
            let text = String(decoding: bytes, as: UTF8.self)
            var fields: [String: String] = [:]
            var reasons: [String] = []
            for line in text.split(separator: "\n") {
                guard let colon = line.firstIndex(of: ":") else { continue }
                let key = String(line[..<colon])
                let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                if key == "reason" { reasons.append(value) } else { fields[key] = value }
            }
            guard fields["result"] != nil else { continue }
            var signature = "unsigned"
            if names.contains(name + ".minisig") {
                do throws(ProvisionError) {
                    let sig = try Minisign.Signature(
                        bytes: try stick.read("HALLWATCH/receipts/\(name).minisig", maxBytes: 4097))
                    if boxKeys.isEmpty {
                        signature = "signed \(MinisignFormat.keyIDText(sig.keyID))"
                    } else {
                        signature = "verified " + (try Minisign.verify(sig, of: bytes, keys: boxKeys)).keyIDText
                    }
                } catch { signature = "BAD: \(error.message)" }
            }
            let cells = [
                fields["building"], fields["box"], fields["result"], fields["version-before"], fields["version-after"],
                fields["signer"], fields["box-clock"], reasons.joined(separator: " | "), signature,
            ].map { csv($0 ?? "") }
            rows.append(cells.joined(separator: ","))
        }
        return rows.joined(separator: "\n") + "\n"
    }

    private static func csv(_ s: String) -> String {
        s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
            ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }
}
