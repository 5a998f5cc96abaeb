import Foundation
import Testing

@testable import HallwatchProvision

/// The signed keyring: offline roots (2 of 3) sign versioned keyrings of config-signing keys with expiry
/// and a building pattern; rotation needs the old and the new roots' thresholds (TUF).
@Suite(
    "Signed keyring and rotation", .serialized,
    .enabled(if: getuid() == 0, "the reader sandbox, loop devices and FUSE need root"))
struct KeyringTests {
    /// The base64 line of a public key file.
    static func b64(_ pubPath: String) -> String {
        String(decoding: Fx.read(pubPath), as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
    }

    static func keyringText(version: Int, threshold: Int, roots: [String], keys: [(String, String, String)]) -> String {
        var s = "hallwatch-keyring 1\nversion \(version)\nthreshold \(threshold)\n"
        for r in roots { s += "root \(b64(r))\n" }
        for (expires, pattern, pub) in keys { s += "key \(expires) \(pattern) \(b64(pub))\n" }
        return s
    }

    struct Setup {
        var box: TestBox
        var roots: [(pub: String, sec: String)] = []
        var district: (pub: String, sec: String)

        init(keyExpires: String = "2099-01-01T00:00:00Z", pattern: String = "north-*") throws {
            box = try TestBox("keyring")
            for i in 1...4 { roots.append(try Fx.minisignKey(box.dir, "root\(i)")) }
            district = box.key
            // The box's keyring: version 1, roots 1–3, threshold 2, the district key for north-*.
            try? FileManager.default.removeItem(atPath: box.dir + "/keyring")
            let text = KeyringTests.keyringText(
                version: 1, threshold: 2, roots: roots[0..<3].map(\.pub), keys: [(keyExpires, pattern, district.pub)])
            Fx.write(box.dir + "/keyring/keyring.txt", Array(text.utf8))
        }
    }

    @Test func keysArePatternedAndExpire() throws {
        var s = try Setup()
        defer { s.box.cleanup() }
        #expect(s.box.provisioner.keyring.version == 1 && s.box.provisioner.keyring.signed?.roots.count == 3)
        #expect(s.box.process(try s.box.stick([Fx.Bundle()], name: "ok.img")).result == .applied)
        // The key may not sign for south-ms.
        s.box.identity.building = "south-ms"
        var south = Fx.Bundle()
        south.building = "south-ms"
        south.version = 9
        var out = s.box.process(try s.box.stick([south], name: "south.img"))
        #expect(out.result == .refused && out.reasons.contains { $0.code == .unknownKey }, "\(out.reasons)")
        // An expired key.
        let e = try Setup(keyExpires: "2026-06-01T00:00:00Z")
        defer { e.box.cleanup() }
        out = e.box.process(try e.box.stick([Fx.Bundle()], name: "exp.img"))
        #expect(out.result == .refused && out.reasons.contains { $0.code == .expired }, "\(out.reasons)")
        #expect(out.reasons.contains { $0.message.contains("key ") })
    }

    /// Lays keyring version 2 (roots 2–4, a new district key) on the stick tree, signed by `signers`.
    func rotation(_ s: Setup, tree: String, signers: [Int], newKey: String) throws {
        let text = Self.keyringText(
            version: 2, threshold: 2, roots: s.roots[1..<4].map(\.pub),
            keys: [("2099-01-01T00:00:00Z", "*", newKey)])
        let dir = tree + "/HALLWATCH/keyring/2"
        Fx.write(dir + "/keyring.txt", Array(text.utf8))
        for (n, i) in signers.enumerated() {
            try Fx.sign(
                dir + "/keyring.txt", sec: s.roots[i].sec, form: .prehashed, sigPath: dir + "/sig-\(n + 1).minisig")
        }
    }

    @Test func rotationNeedsBothThresholds() throws {
        let s = try Setup()
        defer { s.box.cleanup() }
        let newKey = try Fx.minisignKey(s.box.dir, "district2")
        let keyringBefore = Fx.read(s.box.dir + "/keyring/keyring.txt")
        // Wrongly signed: roots 1 and 4 — one old root (threshold 2) and one new: refused, keyring unchanged.
        for (name, signers) in [("wrong", [0, 3]), ("oldonly", [0, 1]), ("newonly", [3])] {
            let tree = s.box.dir + "/tree-" + name
            var b = Fx.Bundle()
            b.version = 4
            try b.lay(in: tree, sec: newKey.sec)
            try rotation(s, tree: tree, signers: signers, newKey: newKey.pub)
            let image = s.box.dir + "/" + name + ".img"
            try Fx.fatImage(of: tree, at: image)
            var p = s.box.provisioner
            p.keyringDirectory = s.box.dir + "/keyring"
            let out = p.process(device: image, apply: true)
            #expect(out.result == .refused && out.reasons.first?.code == .keyring, "\(name): \(out.reasons)")
            #expect(Fx.read(s.box.dir + "/keyring/keyring.txt") == keyringBefore)
            #expect(try Fx.receipts(image).last?.contains("reason: provision.keyring: ") == true)
        }
        // Rightly signed: roots 2 and 3 are in both the old and the new set.
        let tree = s.box.dir + "/tree-right"
        var b = Fx.Bundle()
        b.version = 4
        try b.lay(in: tree, sec: newKey.sec)
        try rotation(s, tree: tree, signers: [1, 2], newKey: newKey.pub)
        let image = s.box.dir + "/right.img"
        try Fx.fatImage(of: tree, at: image)
        var p = s.box.provisioner
        p.keyringDirectory = s.box.dir + "/keyring"
        let out = p.process(device: image, apply: true)
        #expect(out.result == .applied, "\(out.reasons)")
        let now = try Keyring.load(directory: s.box.dir + "/keyring")
        let newID = try Minisign.PublicKey(text: String(decoding: Fx.read(newKey.pub), as: UTF8.self)).keyIDText
        #expect(now.version == 2 && now.keys.map(\.keyIDText) == [newID])
        // The old district key is no longer trusted.
        var old = Fx.Bundle()
        old.version = 5
        let out2 = s.box.process(try s.box.stick([old], name: "oldkey.img"))
        #expect(out2.result == .refused && out2.reasons.first?.code == .unknownKey)
    }

    @Test func malformedKeyringsAreRefused() {
        for text in [
            "", "hallwatch-keyring 1\nversion 1\nthreshold 2\n", "hallwatch-keyring 2\nversion 1\nthreshold 1\n",
            "hallwatch-keyring 1\nversion 01\nthreshold 1\nroot x\n",
        ] {
            #expect(throws: ProvisionError.self) { try SignedKeyring.parse(Array(text.utf8)) }
        }
    }
}
