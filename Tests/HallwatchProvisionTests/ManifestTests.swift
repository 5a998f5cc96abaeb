import Foundation
import Testing

@testable import HallwatchProvision

@Suite("bundle.txt parser")
struct ManifestTests {
    static let digest = String(repeating: "ab", count: 32)
    static func text(files: [String]? = nil, boxes: String = "any", version: String = "7") -> String {
        var s = """
            hallwatch-bundle 1
            district lincoln-usd
            building north-es
            boxes \(boxes)
            version \(version)
            issued 2026-12-01T00:00:00Z
            expires 2027-01-01T00:00:00Z
            keyring 1

            """
        for f in files ?? ["file 120 \(digest) hallwatch.yaml", "file 5 \(digest) plans/level-1.png"] {
            s += f + "\n"
        }
        return s
    }

    func parse(_ s: String) throws(ProvisionError) -> BundleManifest { try BundleManifest.parse(Array(s.utf8)) }

    @Test func parsesAndRoundTrips() throws {
        let m = try parse(Self.text())
        #expect(m.district == "lincoln-usd" && m.building == "north-es" && m.boxes == .any && m.version == 7)
        #expect(m.issuedUnix == 1_796_083_200 && m.expiresUnix == 1_798_761_600 && m.keyringVersion == 1)
        #expect(m.files.map(\.name) == ["hallwatch.yaml", "plans/level-1.png"] && m.files[0].sizeBytes == 120)
        #expect(m.text == Self.text())
        #expect(try parse(Self.text(boxes: "SN-1,SN-2")).boxes == .serials(["SN-1", "SN-2"]))
        #expect(try parse(Self.text(boxes: "adopt")).boxes == .adopt)
    }

    @Test func secretsMustBeEncryptedUnlessTheManifestSaysSo() throws {
        let plain = Self.text(files: ["file 5 \(Self.digest) secrets/cam.password"])
        #expect(throws: ProvisionError.self) { try parse(plain) }
        let allowed = plain.replacingOccurrences(of: "keyring 1\n", with: "keyring 1\ncleartext-secrets yes\n")
        let m = try parse(allowed)
        #expect(m.cleartextSecrets && m.text == allowed)
        #expect(try parse(Self.text(files: ["file 5 \(Self.digest) secrets/cam.password.age"])).files.count == 1)
    }

    @Test func rfc3339() {
        #expect(BundleManifest.rfc3339("1970-01-01T00:00:00Z") == 0)
        #expect(BundleManifest.rfc3339("2024-02-29T23:59:59Z") == 1_709_251_199)
        #expect(BundleManifest.rfc3339("2023-02-29T00:00:00Z") == nil)
        #expect(BundleManifest.rfc3339("2024-01-01T00:00:00+01:00") == nil)
        for t: Int64 in [0, 1_709_251_199, 4_102_444_800] {
            #expect(BundleManifest.rfc3339(BundleManifest.formatRFC3339(t)) == t)
        }
    }

    /// Every hostile name and bound of issue 17 is refused with `provision.manifest`.
    static let hostile: [(String, String)] = {
        var cases: [(String, String)] = []
        cases.append(("dotdot", text(files: ["file 5 \(digest) ../etc/passwd"])))
        cases.append(("dotdot inner", text(files: ["file 5 \(digest) plans/../x"])))
        cases.append(("absolute", text(files: ["file 5 \(digest) /etc/passwd"])))
        cases.append(("two levels", text(files: ["file 5 \(digest) a/b/c"])))
        cases.append(("hidden", text(files: ["file 5 \(digest) .profile"])))
        cases.append(("too long", text(files: ["file 5 \(digest) " + String(repeating: "a", count: 65)])))
        cases.append(("size 0", text(files: ["file 0 \(digest) a"])))
        cases.append(("size 2^63", text(files: ["file 9223372036854775808 \(digest) a"])))
        cases.append(("size over max", text(files: ["file 33554433 \(digest) a"])))
        cases.append(("total over max", text(files: (0..<3).map { "file 33554432 \(digest) f\($0)" })))
        cases.append(("leading zero", text(files: ["file 05 \(digest) a"])))
        cases.append(("uppercase hex", text(files: ["file 5 \(digest.uppercased()) a"])))
        cases.append(("short hex", text(files: ["file 5 abcd a"])))
        cases.append(("duplicate", text(files: ["file 5 \(digest) a", "file 5 \(digest) A"])))
        cases.append(("257 files", text(files: (0..<257).map { "file 1 \(digest) f\($0)" })))
        cases.append(("no files", text(files: [])))
        cases.append(("double space", text(files: ["file  5 \(digest) a"])))
        cases.append(("trailing space", text(files: ["file 5 \(digest) a "])))
        cases.append(("version 0", text(version: "0")))
        cases.append(("version huge", text(version: "99999999999999999")))
        cases.append(("bad boxes", text(boxes: "SN 1")))
        cases.append(("dup serial", text(boxes: "SN1,SN1")))
        cases.append(("crlf", text().replacingOccurrences(of: "\n", with: "\r\n")))
        cases.append(("tab", text().replacingOccurrences(of: "version 7", with: "version\t7")))
        cases.append(("no final newline", String(text().dropLast())))
        cases.append(
            (
                "wrong order",
                text().replacingOccurrences(
                    of: "district lincoln-usd\nbuilding north-es", with: "building north-es\ndistrict lincoln-usd")
            ))
        cases.append(("format 2", text().replacingOccurrences(of: "hallwatch-bundle 1", with: "hallwatch-bundle 2")))
        cases.append(("expired before issued", text().replacingOccurrences(of: "2027-01-01", with: "2026-11-01")))
        cases.append(("utf8", text().replacingOccurrences(of: "north-es", with: "nörth")))
        cases.append(("nul", text().replacingOccurrences(of: "north-es", with: "north\0es")))
        cases.append(("oversize", text() + String(repeating: "x", count: 65_536) + "\n"))
        return cases
    }()

    @Test(arguments: hostile.map(\.0))
    func refuses(_ name: String) {
        let text = Self.hostile.first { $0.0 == name }!.1
        #expect(throws: ProvisionError.self, "\(name)") { try parse(text) }
        do {
            _ = try parse(text)
        } catch { #expect(error.stableCode == "provision.manifest", "\(name)") }
    }

    @Test func listsEveryProblem() {
        let bad = Self.text(files: ["file 0 \(Self.digest) a", "file 5 zz b", "file 5 \(Self.digest) ../c"])
            .replacingOccurrences(of: "version 7", with: "version x")
        do {
            _ = try parse(bad)
            Issue.record("accepted")
        } catch {
            for line in ["line 5", "line 9", "line 10", "line 11"] { #expect(error.message.contains(line), "\(line)") }
        }
    }

    /// A property test standing in for libFuzzer: 20 000 random mutations of a good manifest and of random
    /// bytes never crash the parser, and all of them together take well under a few seconds.
    @Test func fuzzNeverCrashesAndStaysFast() {
        var rng = SplitMix(seed: 17)
        let good = Array(Self.text().utf8)
        let alphabet = Array(" \n/.-0123456789abcdefxyzAZ\r\t\0\u{7f}".utf8) + [0xC3, 0xFF]
        let start = ContinuousClock.now
        var accepted = 0
        for i in 0..<20_000 {
            var b: [UInt8]
            if i % 10 == 0 {
                b = (0..<Int(rng.next() % 512)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                b = good
                for _ in 0..<(1 + Int(rng.next() % 4)) {
                    let at = Int(rng.next() % UInt64(b.count + 1))
                    switch rng.next() % 3 {
                    case 0 where at < b.count: b[at] = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                    case 1: b.insert(alphabet[Int(rng.next() % UInt64(alphabet.count))], at: at)
                    default: if at < b.count { b.remove(at: at) }
                    }
                }
            }
            if let m = try? BundleManifest.parse(b) {
                accepted += 1
                // What parses prints back to the same bytes: no two texts mean the same manifest.
                #expect(Array(m.text.utf8) == b)
            }
        }
        #expect(accepted > 0)
        #expect(ContinuousClock.now - start < .seconds(10))
    }
}

/// A small deterministic generator (SplitMix64).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
