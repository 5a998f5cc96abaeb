import Foundation
import HallwatchSodium
import Testing

@testable import HallwatchProvision

@Suite("minisign signatures (real minisign and signify-openbsd)")
struct MinisignTests {
    @Test(arguments: Fx.Form.allCases)
    func verifiesTheRealCLIsAndRefusesFlippedBytes(_ form: Fx.Form) throws {
        let dir = Fx.tempDir("sig")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = form == .signify ? try Fx.signifyKey(dir, "k") : try Fx.minisignKey(dir, "k")
        let message = Array("hallwatch-bundle 1\n".utf8)
        Fx.write("\(dir)/m", message)
        try Fx.sign("\(dir)/m", sec: key.sec, form: form, sigPath: "\(dir)/m.sig")
        let pub = try Minisign.PublicKey(text: String(decoding: Fx.read(key.pub), as: UTF8.self))
        let sigBytes = Fx.read("\(dir)/m.sig")
        let sig = try Minisign.Signature(bytes: sigBytes)
        #expect(sig.prehashed == (form == .prehashed))
        #expect(try Minisign.verify(sig, of: message, keys: [pub]) == pub)

        // A flipped bit in the message, and in every byte of the decoded signature, fails.
        var flipped = message
        flipped[3] ^= 1
        #expect(throws: ProvisionError(.signature, "the signature does not verify with key \(pub.keyIDText)")) {
            try Minisign.verify(sig, of: flipped, keys: [pub])
        }
        for i in stride(from: 0, to: 64, by: 7) {
            var bad = sig
            bad.signature[i] ^= 0x20
            #expect(throws: ProvisionError.self) { try Minisign.verify(bad, of: message, keys: [pub]) }
        }
        if sig.trustedComment != nil {
            var bad = sig
            bad.trustedComment = "hallwatch test!"
            #expect(throws: ProvisionError(.signature, "the trusted comment's signature does not verify")) {
                try Minisign.verify(bad, of: message, keys: [pub])
            }
        }
        // Another key with another id: unknown.
        let other = try Fx.minisignKey(dir, "other")
        let otherPub = try Minisign.PublicKey(text: String(decoding: Fx.read(other.pub), as: UTF8.self))
        do {
            try Minisign.verify(sig, of: message, keys: [otherPub])
            Issue.record("accepted")
        } catch { #expect(error.code == .unknownKey) }
        // The same id with another key (a forged id): the signature fails.
        var forged = otherPub
        forged.keyID = pub.keyID
        #expect(throws: ProvisionError.self) { try Minisign.verify(sig, of: message, keys: [forged]) }
    }

    /// The box signs its receipts with a key made by `minisign -G -W`; the real minisign verifies them.
    @Test(.enabled(if: getuid() == 0, "the reader sandbox needs root"))
    func receiptsSignedByTheBoxVerifyWithMinisign() throws {
        let box = try TestBox("signed")
        defer { box.cleanup() }
        let boxKey = try Fx.minisignKey(box.dir, "box")
        var p = box.provisioner
        p.receiptKey = try Minisign.SecretKey(text: String(decoding: Fx.read(boxKey.sec), as: UTF8.self))
        #expect(
            p.receiptKey?.publicKey
                == (try Minisign.PublicKey(text: String(decoding: Fx.read(boxKey.pub), as: UTF8.self))))
        let image = try box.stick([Fx.Bundle()])
        #expect(p.process(device: image, apply: true).result == .applied)
        let names = try Fx.run(["mdir", "-b", "-i", image, "::/HALLWATCH/receipts"]).out.split(separator: "\n")
        let txt = try #require(names.first { $0.hasSuffix(".txt") })
        #expect(try Fx.run(["mcopy", "-i", image, String(txt), box.dir + "/r.txt"]).status == 0)
        #expect(try Fx.run(["mcopy", "-i", image, String(txt) + ".minisig", box.dir + "/r.txt.minisig"]).status == 0)
        var r = try Fx.run(["minisign", "-V", "-p", boxKey.pub, "-m", box.dir + "/r.txt"])
        #expect(r.status == 0 && r.out.contains("hallwatch receipt"), "\(r.out)")
        var bytes = Fx.read(box.dir + "/r.txt")
        bytes[bytes.count / 2] ^= 1
        Fx.write(box.dir + "/r.txt", bytes)
        r = try Fx.run(["minisign", "-V", "-p", boxKey.pub, "-m", box.dir + "/r.txt"])
        #expect(r.status != 0)
    }

    @Test func refusesMalformedFiles() {
        for text in [
            "", "untrusted comment: x\n", "untrusted comment: x\nAAAA\n", "hello\nRURW\n",
            "untrusted comment: x\n" + Data(repeating: 1, count: 74).base64EncodedString() + "\n",
            String(repeating: "a", count: 5000),
        ] {
            #expect(throws: ProvisionError.self, "\(text.prefix(30))") {
                try Minisign.Signature(bytes: Array(text.utf8))
            }
        }
    }

    @Test func blake2bAndSHA256KnownAnswers() {
        // RFC 7693 appendix A (BLAKE2b-512 of "abc"); FIPS 180-2 (SHA-256 of "abc").
        #expect(hex(Sodium.blake2b512(Array("abc".utf8))).hasPrefix("ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b7"))
        #expect(
            hex(Sodium.sha256(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
