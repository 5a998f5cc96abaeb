/// A parsed `bundle.txt`: the signed, line-based manifest of one building's configuration bundle.
///
/// The grammar (version 1; every line ends in `\n`, fields are separated by exactly one space, no `\r`, no
/// tabs, no trailing space, no blank line, the header lines exactly once and in this order):
///
/// ```
/// hallwatch-bundle 1
/// district <id>
/// building <id>
/// boxes any | adopt | <serial>[,<serial>…]
/// version <1…2^53>
/// issued <YYYY-MM-DDTHH:MM:SSZ>
/// expires <YYYY-MM-DDTHH:MM:SSZ>
/// keyring <0…2^31>
/// cleartext-secrets yes                                       (optional: see below)
/// file <size bytes> <SHA-256, 64 lowercase hex> <name>      (1…256 lines, names unique)
/// ```
///
/// `<id>` is `[a-z0-9][a-z0-9-]{0,62}`; a serial `[A-Za-z0-9-]{1,64}` (at most 64 serials); a name is one or
/// two components of `[A-Za-z0-9_][A-Za-z0-9._-]{0,63}` joined by `/` (so no `..`, no absolute path, no
/// control character); sizes are 1…``maxFileBytes``. Files under `secrets/` must be `age`-encrypted to the box
/// (`secrets/<name>.age`) unless the manifest says `cleartext-secrets yes`. The whole manifest is at most ``maxBytes``. Parsing is
/// linear in the input and allocates at most a few times its size (the fuzz test in
/// HallwatchProvisionTests holds it to that).
public struct BundleManifest: Sendable, Equatable {
    /// Which boxes a bundle is for.
    public enum Boxes: Sendable, Equatable {
        /// Any box of the building.
        case any
        /// A fresh box (no building yet) adopts it.
        case adopt
        /// Only these serials.
        case serials([String])
    }

    /// One listed file.
    public struct File: Sendable, Equatable {
        /// Exact size in bytes.
        public var sizeBytes: Int
        /// SHA-256 of the content (FIPS 180-4), 32 bytes.
        public var sha256: [UInt8]
        /// Relative name under `HALLWATCH/<building>/files/`.
        public var name: String
    }

    /// The largest manifest accepted, in bytes (64 KiB).
    public static let maxBytes = 64 * 1024
    /// The most files a bundle lists.
    public static let maxFiles = 256
    /// The largest file a bundle lists, in bytes (32 MiB).
    public static let maxFileBytes = 32 * 1024 * 1024
    /// The most bytes all listed files add up to (64 MiB): the provisioner holds a bundle's files in memory
    /// between verification and staging (its unit allows 128 MiB).
    public static let maxTotalBytes = 64 * 1024 * 1024

    /// District id.
    public var district: String
    /// Building id (also the folder name under `HALLWATCH/`).
    public var building: String
    /// Which boxes.
    public var boxes: Boxes
    /// The bundle version; only ever goes up per building.
    public var version: Int
    /// Issue time, seconds since the Unix epoch (UTC).
    public var issuedUnix: Int64
    /// Expiry time, seconds since the Unix epoch (UTC).
    public var expiresUnix: Int64
    /// The keyring version the bundle needs at least.
    public var keyringVersion: Int
    /// The listed files, in manifest order.
    public var files: [File]
    /// Whether files under `secrets/` may be in clear text (the receipt warns when one is).
    public var cleartextSecrets = false

    /// Parses `bytes` strictly; every problem found is listed (each as `line N: …`).
    /// - Throws: ``ProvisionError`` `provision.manifest` with every problem, one per line of its message.
    public static func parse(_ bytes: [UInt8]) throws(ProvisionError) -> BundleManifest {
        var problems: [String] = []
        func fail(_ line: Int, _ why: String) { if problems.count < 20 { problems.append("line \(line): \(why)") } }
        guard bytes.count <= maxBytes else {
            throw ProvisionError(.manifest, "bundle.txt is larger than \(maxBytes) bytes")
        }
        guard bytes.last == UInt8(ascii: "\n") else {
            throw ProvisionError(.manifest, "bundle.txt is empty or does not end with a newline")
        }
        for b in bytes where b != 0x0A && (b < 0x20 || b > 0x7E) {
            throw ProvisionError(.manifest, "bundle.txt holds a byte that is not printable ASCII (0x\(hex([b])))")
        }
        let lines = bytes.dropLast().split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        let header = ["hallwatch-bundle", "district", "building", "boxes", "version", "issued", "expires", "keyring"]
        guard lines.count > header.count else {
            throw ProvisionError(.manifest, "bundle.txt has \(lines.count) lines; the header alone needs 8")
        }
        var values: [String] = []
        for (i, key) in header.enumerated() {
            let parts = lines[i].split(separator: " ", omittingEmptySubsequences: false)
            if parts.count != 2 || parts[0] != key || parts[1].isEmpty {
                fail(i + 1, "expected `\(key) <value>`")
                values.append("")
            } else {
                values.append(String(parts[1]))
            }
        }
        if !values[0].isEmpty && values[0] != "1" { fail(1, "format version \(values[0]) is not 1") }
        if !values[1].isEmpty && !isID(values[1]) { fail(2, "district is not [a-z0-9][a-z0-9-]{0,62}") }
        if !values[2].isEmpty && !isID(values[2]) { fail(3, "building is not [a-z0-9][a-z0-9-]{0,62}") }
        var boxes = Boxes.any
        switch values[3] {
        case "", "any": break
        case "adopt": boxes = .adopt
        case let list:
            let serials = list.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            if serials.count > 64 || !serials.allSatisfy(isSerial) || Set(serials).count != serials.count {
                fail(4, "boxes is not any, adopt or up to 64 distinct serials [A-Za-z0-9-]{1,64} joined by commas")
            }
            boxes = .serials(serials)
        }
        let version = number(values[4], max: 1 << 53, min: 1)
        if version == nil && !values[4].isEmpty { fail(5, "version is not a number in 1…2^53") }
        let issued = rfc3339(values[5])
        if issued == nil && !values[5].isEmpty { fail(6, "issued is not YYYY-MM-DDTHH:MM:SSZ") }
        let expires = rfc3339(values[6])
        if expires == nil && !values[6].isEmpty { fail(7, "expires is not YYYY-MM-DDTHH:MM:SSZ") }
        if let issued, let expires, expires <= issued { fail(7, "expires is not after issued") }
        let keyring = number(values[7], max: 1 << 31, min: 0)
        if keyring == nil && !values[7].isEmpty { fail(8, "keyring is not a number in 0…2^31") }

        let cleartextSecrets = lines[header.count] == "cleartext-secrets yes"
        let firstFile = header.count + (cleartextSecrets ? 1 : 0)
        let fileLines = lines[firstFile...]
        if fileLines.count > maxFiles {
            fail(firstFile + 1, "\(fileLines.count) files listed; at most \(maxFiles)")
        }
        if fileLines.isEmpty { fail(firstFile + 1, "no file listed") }
        var files: [File] = []
        var names = Set<String>()
        var total = 0
        for (offset, line) in fileLines.prefix(maxFiles).enumerated() {
            let n = firstFile + offset + 1
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 4, parts[0] == "file" else {
                fail(n, "expected `file <size> <sha256> <name>`")
                continue
            }
            guard let size = number(String(parts[1]), max: maxFileBytes, min: 1) else {
                fail(n, "size is not a number in 1…\(maxFileBytes)")
                continue
            }
            guard let digest = hexBytes(parts[2]), digest.count == 32 else {
                fail(n, "the SHA-256 is not 64 lowercase hex digits")
                continue
            }
            let name = String(parts[3])
            guard isName(name) else {
                fail(n, "the name is not one or two components of [A-Za-z0-9_][A-Za-z0-9._-]{0,63}")
                continue
            }
            if name.hasPrefix("secrets/"), !name.hasSuffix(".age"), !cleartextSecrets {
                fail(n, "\(name) is a secret in clear text; encrypt it with age or say `cleartext-secrets yes`")
                continue
            }
            guard names.insert(name.lowercased()).inserted else {
                fail(n, "\(name) is listed twice (FAT names ignore case)")
                continue
            }
            total += size
            files.append(File(sizeBytes: size, sha256: digest, name: name))
        }
        if total > maxTotalBytes { fail(lines.count, "the files add up to more than \(maxTotalBytes) bytes") }
        guard problems.isEmpty, let version, let issued, let expires, let keyring else {
            throw ProvisionError(.manifest, "bundle.txt is malformed: " + problems.joined(separator: "; "))
        }
        return BundleManifest(
            district: values[1], building: values[2], boxes: boxes, version: version, issuedUnix: issued,
            expiresUnix: expires, keyringVersion: keyring, files: files, cleartextSecrets: cleartextSecrets)
    }

    /// The manifest's text in the grammar above (what `hallwatchctl config bundle` writes); `parse` of it
    /// gives `self` back.
    public var text: String {
        var out = "hallwatch-bundle 1\ndistrict \(district)\nbuilding \(building)\n"
        switch boxes {
        case .any: out += "boxes any\n"
        case .adopt: out += "boxes adopt\n"
        case .serials(let s): out += "boxes \(s.joined(separator: ","))\n"
        }
        out += "version \(version)\nissued \(Self.formatRFC3339(issuedUnix))\n"
        out += "expires \(Self.formatRFC3339(expiresUnix))\nkeyring \(keyringVersion)\n"
        if cleartextSecrets { out += "cleartext-secrets yes\n" }
        for f in files { out += "file \(f.sizeBytes) \(hex(f.sha256)) \(f.name)\n" }
        return out
    }

    /// Whether `name` is a district or building id.
    public static func isID(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard (1...63).contains(u.count), isLowerAlnum(u[0]) else { return false }
        return u.allSatisfy { isLowerAlnum($0) || $0 == UInt8(ascii: "-") }
    }

    /// Whether `s` is a box serial.
    public static func isSerial(_ s: String) -> Bool {
        let u = Array(s.utf8)
        return (1...64).contains(u.count) && u.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "-") }
    }

    /// Whether `s` is a file name a bundle may list (see the grammar).
    public static func isName(_ s: String) -> Bool {
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count) else { return false }
        return parts.allSatisfy { part in
            let u = Array(part.utf8)
            guard (1...64).contains(u.count), isAlnum(u[0]) || u[0] == UInt8(ascii: "_") else { return false }
            return u.allSatisfy {
                isAlnum($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-")
            }
        }
    }

    /// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC only) → seconds since the epoch; `nil` for anything else.
    public static func rfc3339(_ s: String) -> Int64? {
        let u = Array(s.utf8)
        guard u.count == 20, u[4] == 0x2D, u[7] == 0x2D, u[10] == UInt8(ascii: "T"), u[13] == 0x3A, u[16] == 0x3A,
            u[19] == UInt8(ascii: "Z")
        else { return nil }
        func digits(_ r: Range<Int>) -> Int? {
            var v = 0
            for i in r {
                guard (0x30...0x39).contains(u[i]) else { return nil }
                v = v * 10 + Int(u[i] - 0x30)
            }
            return v
        }
        guard let y = digits(0..<4), let mo = digits(5..<7), let d = digits(8..<10), let h = digits(11..<13),
            let mi = digits(14..<16), let se = digits(17..<19), y >= 1970, (1...12).contains(mo), h < 24, mi < 60,
            se < 60
        else { return nil }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard (1...monthDays[mo - 1]).contains(d) else { return nil }
        return Int64(daysFromCivil(y, mo, d)) * 86_400 + Int64(h * 3600 + mi * 60 + se)
    }

    /// Seconds since the epoch → `YYYY-MM-DDTHH:MM:SSZ`.
    public static func formatRFC3339(_ t: Int64) -> String {
        let days = Int(t >= 0 ? t / 86_400 : (t - 86_399) / 86_400)
        let secs = Int(t - Int64(days) * 86_400)
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let yyyy = String(repeating: "0", count: max(0, 4 - String(y).count)) + String(y)
        return "\(yyyy)-\(two(m))-\(two(d))T\(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60))Z"
    }

    private static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func number(_ s: String, max: Int, min: Int) -> Int? {
        let u = Array(s.utf8)
        guard (1...16).contains(u.count), u.allSatisfy({ (0x30...0x39).contains($0) }),
            u.count == 1 || u[0] != 0x30, let v = Int(s), v >= min, v <= max
        else { return nil }
        return v
    }

    private static func isLowerAlnum(_ b: UInt8) -> Bool { (0x61...0x7A).contains(b) || (0x30...0x39).contains(b) }
    private static func isAlnum(_ b: UInt8) -> Bool { isLowerAlnum(b) || (0x41...0x5A).contains(b) }
}

/// Lowercase hex of `bytes`.
func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 15)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Lowercase hex → bytes; `nil` for odd lengths or any other character.
func hexBytes<S: StringProtocol>(_ s: S) -> [UInt8]? {
    let u = Array(s.utf8)
    guard u.count % 2 == 0 else { return nil }
    func v(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
    var out: [UInt8] = []
    out.reserveCapacity(u.count / 2)
    var i = 0
    while i < u.count {
        guard let hi = v(u[i]), let lo = v(u[i + 1]) else { return nil }
        out.append(hi << 4 | lo)
        i += 2
    }
    return out
}
