import Foundation
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
