import Foundation
import Testing

@testable import HallwatchProvision

/// One simulated box: a keyring, a configuration store, a minisign key, and a scratch tree for sticks.
struct TestBox {
    let dir: String
    let key: (pub: String, sec: String)
    var identity = BoxIdentity(serial: "SN-0001", district: "lincoln-usd", building: "north-es")
    var nowUnix: Int64 = 1_796_083_200 + 86_400  // 2026-12-02
    /// The switch spool the store notes switches in (none by default).
    var switchSpool: String?
    var store: ConfigStore { ConfigStore(root: dir + "/store", switchSpool: switchSpool) }

    init(_ tag: String, form: Fx.Form = .prehashed) throws {
        dir = Fx.tempDir(tag)
        key = form == .signify ? try Fx.signifyKey(dir, "district") : try Fx.minisignKey(dir, "district")
        try FileManager.default.createDirectory(atPath: dir + "/keyring", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: key.pub, toPath: dir + "/keyring/district.pub")
        Fx.write(dir + "/keyring/version", Array("1\n".utf8))
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: dir) }

    var provisioner: Provisioner {
        Provisioner(
            identity: identity, keyring: try! Keyring.load(directory: dir + "/keyring"), store: store,
            nowUnix: nowUnix, buildTimeUnix: 1_790_000_000)
    }

    /// A FAT32 image holding `bundles` (each laid out and signed), plus optional changes to the tree first.
    func stick(
        _ bundles: [Fx.Bundle], name: String = "stick.img", form: Fx.Form = .prehashed, fat: Int = 32,
        tweak: (String) throws -> Void = { _ in }
    ) throws -> String {
        let tree = dir + "/tree-" + name
        try? FileManager.default.removeItem(atPath: tree)
        for b in bundles { try b.lay(in: tree, sec: key.sec, form: form) }
        try tweak(tree)
        let image = dir + "/" + name
        try Fx.fatImage(of: tree, at: image, fat: fat)
        return image
    }

    /// A FAT32 image holding `bundle` whose manifest has `line` appended, signed again (a hostile line in a
    /// correctly signed manifest).
    func stick(_ bundle: Fx.Bundle, extraLine line: String, name: String) throws -> String {
        let dir = "HALLWATCH/\(bundle.building)"
        return try stick(
            [bundle], name: name,
            tweak: { tree in
                Fx.write("\(tree)/\(dir)/bundle.txt", Array((bundle.manifestText + line + "\n").utf8))
                try Fx.sign(
                    "\(tree)/\(dir)/bundle.txt", sec: key.sec, form: .prehashed,
                    sigPath: "\(tree)/\(dir)/bundle.txt.minisig")
            })
    }

    func process(_ image: String, apply: Bool = true) -> ProvisionOutcome {
        provisioner.process(device: image, apply: apply)
    }

    /// The bytes of every file in the current release (name → bytes), for "unchanged" checks.
    func currentFiles() -> [String: [UInt8]] {
        guard let cur = store.current() else { return [:] }
        let base = store.root + "/releases/" + cur
        var out: [String: [UInt8]] = [:]
        let walker = FileManager.default.enumerator(atPath: base)
        while let rel = walker?.nextObject() as? String {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: base + "/" + rel, isDirectory: &isDir), !isDir.boolValue {
                out[rel] = Fx.read(base + "/" + rel)
            }
        }
        return out
    }
}

@Suite(
    "Provisioning from FAT stick images (mtools, no mount)", .serialized,
    .enabled(if: getuid() == 0, "the reader sandbox, loop devices and FUSE need root"))
struct ProvisionTests {
    @Test(arguments: Fx.Form.allCases)
    func appliesEachSignatureFormThenReplugIsAlreadyApplied(_ form: Fx.Form) throws {
        let box = try TestBox("apply", form: form)
        defer { box.cleanup() }
        let image = try box.stick([Fx.Bundle()], form: form)
        let out = box.process(image)
        #expect(out.result == .applied, "\(out.reasons)")
        #expect(out.change?.summary == "cameras +lobby; disks +disk0")
        #expect(box.currentFiles()["hallwatch.yaml"] == Array(Fx.goodYAML.utf8))
        #expect(box.store.state().versionFloor == 2)
        let again = box.process(image)
        #expect(again.result == .alreadyApplied && again.reasons.isEmpty, "\(again.reasons)")
        #expect(box.process(image).result == .alreadyApplied)  // the same second again: its own name
        let receipts = try Fx.receipts(image)
        #expect(receipts.count == 3)
        let names = try Fx.run(["mdir", "-b", "-i", image, "::/HALLWATCH/receipts"]).out
        #expect(names.contains("T000000Z-2_already-applied.txt"), "\(names)")
        #expect(receipts.contains { $0.contains("result: applied\n") && $0.contains("version-after: 2\n") })
        #expect(receipts.contains { $0.contains("result: already-applied\n") })
        #expect(receipts.allSatisfy { $0.contains("box: SN-0001\n") && $0.contains("signer: ") })
    }

    @Test func exfatThroughFuseInAPrivateMountNamespace() throws {
        let box = try TestBox("exfat")
        defer { box.cleanup() }
        let tree = box.dir + "/tree"
        var b = Fx.Bundle()
        b.files.append(("plans/floor.txt", Array("exfat\n".utf8)))
        try b.lay(in: tree, sec: box.key.sec)
        Fx.write(tree + "/junk.txt", Array("junk".utf8))
        let image = box.dir + "/exfat.img"
        try Fx.exfatImage(of: tree, at: image)
        #expect(StickVolume.detect(path: image) == .exfat(offsetBytes: 0))
        let mountsBefore = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        let out = box.process(image)
        #expect(out.result == .applied, "\(out.reasons)")
        #expect(box.currentFiles()["plans/floor.txt"] == Array("exfat\n".utf8))
        // Nothing stayed mounted here, and no loop device stayed attached to the image.
        #expect(try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) == mountsBefore)
        #expect(!(try Fx.run(["losetup", "-j", image]).out.contains(image)))
        // The receipt was written back to the exFAT volume.
        let stick = ExfatStick(VolumeLocation(device: image, offsetBytes: 0))
        let names = try stick.directories(in: "HALLWATCH")
        #expect(names.contains("receipts") && names.contains("north-es"))
        // A flipped byte in a listed file on exFAT: refused, current unchanged.
        var v3 = b
        v3.version = 3
        let tree3 = box.dir + "/tree3"
        try v3.lay(in: tree3, sec: box.key.sec)
        Fx.write(tree3 + "/HALLWATCH/north-es/files/plans/floor.txt", Array("exfaT\n".utf8))
        try Fx.exfatImage(of: tree3, at: image)
        let before = box.currentFiles()
        let refused = box.process(image)
        #expect(refused.result == .refused && refused.reasons.first?.code == .file, "\(refused.reasons)")
        #expect(box.currentFiles() == before)
    }

    @Test func fat16PartitionedJunkAndManyBuildings() throws {
        var box = try TestBox("many")
        defer { box.cleanup() }
        // 40 buildings on one stick, junk beside HALLWATCH/: each box takes its own.
        let bundles = (0..<40).map { i in
            var b = Fx.Bundle()
            b.building = "school-\(i)"
            b.files.append(("plans/floor.txt", Array("building \(i)\n".utf8)))
            return b
        }
        let tree = box.dir + "/tree40"
        for b in bundles { try b.lay(in: tree, sec: box.key.sec) }
        Fx.write(tree + "/junk/readme.txt", Array("junk".utf8))
        Fx.write(tree + "/HALLWATCH/receipts/old.txt", Array("an old receipt".utf8))
        let fat16 = box.dir + "/fat16.img"
        try Fx.fatImage(of: tree, at: fat16, fat: 16, sizeKiB: 30_000)
        box.identity.building = "school-7"
        var out = box.process(fat16)
        #expect(out.result == .applied, "\(out.reasons)")
        #expect(box.currentFiles()["plans/floor.txt"] == Array("building 7\n".utf8))
        let parted = box.dir + "/parted.img"
        try Fx.partitionedImage(of: tree, at: parted)
        #expect(StickVolume.detect(path: parted) == .fat(offsetBytes: 1 << 20))
        // A directory (a fresh user's `config verify` on the bundle folder) is named as one.
        #expect(StickVolume.detect(path: tree) == .ignored("a directory, not a stick or a stick's image"))
        var other = try TestBox("parted")
        defer { other.cleanup() }
        other.identity.building = "school-31"
        let reSigned = other.dir + "/tree31"
        var b31 = bundles[31]
        b31.version = 5
        try b31.lay(in: reSigned, sec: other.key.sec)
        let parted31 = other.dir + "/parted31.img"
        try Fx.partitionedImage(of: reSigned, at: parted31)
        out = other.process(parted31)
        #expect(out.result == .applied, "\(out.reasons)")
        #expect(other.currentFiles()["plans/floor.txt"] == Array("building 31\n".utf8))
        // Box school-7 on the 40-building stick signed by another district key: unknown key.
        out = other.process(fat16)
        #expect(out.result == .refused && out.reasons.contains { $0.code == .unknownKey })
    }

    /// A refusal: the outcome, the receipt's text, and `current` and the state unchanged.
    func expectRefused(
        _ box: TestBox, _ image: String, _ code: ProvisionError.Code, _ comment: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let before = (box.currentFiles(), box.store.state(), box.store.current())
        let start = ContinuousClock.now
        let out = box.process(image)
        let took = ContinuousClock.now - start
        #expect(out.result == .refused, "\(comment)", sourceLocation: sourceLocation)
        #expect(out.reasons.contains { $0.code == code }, "\(comment): \(out.reasons)", sourceLocation: sourceLocation)
        #expect(took < .seconds(1), "\(comment) took \(took)", sourceLocation: sourceLocation)
        #expect(box.currentFiles() == before.0 && box.store.state() == before.1, sourceLocation: sourceLocation)
        #expect(box.store.current() == before.2, sourceLocation: sourceLocation)
        let receipt = try Fx.receipts(image).last ?? ""
        #expect(receipt.contains("result: refused\n"), "\(comment)", sourceLocation: sourceLocation)
        #expect(
            receipt.contains("reason: \(code.rawValue): "), "\(comment): \(receipt)", sourceLocation: sourceLocation)
    }

    @Test func refusesHostileAndWrongSticks() throws {
        var box = try TestBox("refuse")
        defer { box.cleanup() }
        // First apply version 2, so refusals are checked against a real current release.
        #expect(box.process(try box.stick([Fx.Bundle()], name: "v2.img")).result == .applied)
        var v3 = Fx.Bundle()
        v3.version = 3
        let dir = "HALLWATCH/north-es"

        func flip(_ rel: String, at: Int) -> (String) throws -> Void {
            { tree in
                var b = Fx.read("\(tree)/\(rel)")
                b[at] ^= 0x01
                Fx.write("\(tree)/\(rel)", b)
            }
        }
        try expectRefused(
            box, try box.stick([v3], name: "s1.img", tweak: flip("\(dir)/bundle.txt.minisig", at: 110)), .signature,
            "flipped signature byte")
        try expectRefused(
            box, try box.stick([v3], name: "s2.img", tweak: flip("\(dir)/bundle.txt", at: 40)), .signature,
            "flipped manifest byte")
        try expectRefused(
            box, try box.stick([v3], name: "s3.img", tweak: flip("\(dir)/files/hallwatch.yaml", at: 10)), .file,
            "flipped file byte")
        try expectRefused(
            box,
            try box.stick(
                [v3], name: "s4.img",
                tweak: { try FileManager.default.removeItem(atPath: "\($0)/\(dir)/files/hallwatch.yaml") }), .file,
            "missing file")
        try expectRefused(
            box,
            try box.stick(
                [v3], name: "s5.img",
                tweak: { Fx.write("\($0)/\(dir)/files/hallwatch.yaml", Array((Fx.goodYAML + "#").utf8)) }), .file,
            "longer file")
        // Unknown key: signed by a key the box does not have.
        let stranger = try Fx.minisignKey(box.dir, "stranger")
        try expectRefused(
            box, try box.stick([v3], name: "s6.img", tweak: { try v3.lay(in: $0, sec: stranger.sec) }), .unknownKey,
            "unknown key")
        var old = Fx.Bundle()
        old.version = 1
        try expectRefused(box, try box.stick([old], name: "s7.img"), .replay, "older version")
        var sameOther = Fx.Bundle()
        sameOther.files.append(("extra.txt", Array("x".utf8)))
        try expectRefused(box, try box.stick([sameOther], name: "s8.img"), .replay, "equal version, other hash")
        var expired = v3
        expired.issued = "2026-01-01T00:00:00Z"
        expired.expires = "2026-06-01T00:00:00Z"
        try expectRefused(box, try box.stick([expired], name: "s9.img"), .expired, "expired bundle")
        // A box clock at 1970 does not make an expired bundle valid: the time floor holds.
        box.nowUnix = 0
        try expectRefused(box, try box.stick([expired], name: "s10.img"), .expired, "clock at 1970")
        box.nowUnix = 1_796_083_200 + 86_400
        var otherBuilding = v3
        otherBuilding.building = "south-ms"
        try expectRefused(
            box,
            try box.stick(
                [otherBuilding], name: "s11.img",
                tweak: { tree in
                    try FileManager.default.moveItem(atPath: "\(tree)/HALLWATCH/south-ms", toPath: "\(tree)/\(dir)")
                }), .otherBox, "another building's bundle in this building's folder")
        var otherDistrict = v3
        otherDistrict.district = "other-usd"
        try expectRefused(box, try box.stick([otherDistrict], name: "s12.img"), .otherBox, "another district")
        var otherSerial = v3
        otherSerial.boxes = "SN-9999"
        try expectRefused(box, try box.stick([otherSerial], name: "s13.img"), .otherBox, "another serial")
        var needsKeyring = v3
        needsKeyring.keyring = 2
        try expectRefused(box, try box.stick([needsKeyring], name: "s14.img"), .keyring, "newer keyring needed")
        // Hostile names and bounds in a correctly signed manifest.
        let digest = String(repeating: "0", count: 64)
        for (i, line) in ["file 5 \(digest) ../../etc/shadow", "file 5 \(digest) /etc/shadow", "file 0 \(digest) a"]
            .enumerated()
        {
            try expectRefused(
                box, try box.stick(v3, extraLine: line, name: "n\(i).img"), .manifest, "hostile line \(line)")
        }
        var many = v3
        many.files = (0..<257).map { ("f\($0)", [UInt8(ascii: "x")]) }
        try expectRefused(box, try box.stick([many], name: "many.img"), .manifest, "257 files")
        try expectRefused(
            box,
            try box.stick(
                [v3], name: "big.img",
                tweak: { tree in
                    Fx.write("\(tree)/\(dir)/bundle.txt", Array(repeating: UInt8(ascii: "a"), count: 70_000))
                }), .manifest, "manifest over 64 KiB")
        // YAML that does not validate: an alias bomb, deep nesting, a schema error; every error listed.
        let bomb =
            "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
            + "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "\n"
        let hostileYAML = [
            bomb, deep, "box: x\nrecorder: 5\ncameras: nope\n", "box: \u{FF}\n", "box: a\nbox: b\n",
            "box: !!binary aGk=\n", "box: !custom x\n", "box: a\n" + String(repeating: "#", count: 1 << 20) + "\n",
        ]
        for (i, yaml) in hostileYAML.enumerated() {
            var b = v3
            b.files = [("hallwatch.yaml", Array(yaml.utf8))]
            if i == 3 { b.files = [("hallwatch.yaml", [0x62, 0x6F, 0x78, 0x3A, 0x20, 0xFF, 0x0A])] }
            try expectRefused(box, try box.stick([b], name: "y\(i).img"), .config, "YAML case \(i)")
        }
        // Floor plans checked by magic bytes and header dimensions (never decoded); every error listed.
        func png(width: UInt32, height: UInt32) -> [UInt8] {
            var b: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
            for v in [width, height] { b += [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: v >> $0) } }
            return b + [8, 2, 0, 0, 0, 0, 0, 0, 0]
        }
        var plans = v3
        plans.files += [
            ("plans/huge.png", png(width: 30_000, height: 30_000)), ("plans/fake.png", Array("GIF89a.....".utf8)),
            ("plans/fake.jpg", png(width: 10, height: 10)), ("plans/ok.png", png(width: 800, height: 600)),
        ]
        try expectRefused(box, try box.stick([plans], name: "plans.img"), .config, "floor plans")
        let planReceipt = try Fx.receipts(box.dir + "/plans.img").last ?? ""
        #expect(
            planReceipt.contains("plans/huge.png: 30000×30000 pixels")
                && planReceipt.contains("plans/fake.png: not a PNG"))
        #expect(planReceipt.contains("plans/fake.jpg: not a JPEG") && !planReceipt.contains("ok.png"))
        // The files on the stick read through mtools: a truncated image (a stick pulled mid-copy).
        var large = v3
        large.files.append(("big.bin", (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }))
        let full = try box.stick([large], name: "trunc.img")
        let bytes = Fx.read(full)
        Fx.write(full, Array(bytes.prefix(2_000_000)))
        let before = box.currentFiles()
        let out = box.process(full)
        #expect(out.result == .refused && box.currentFiles() == before, "\(out.reasons)")
    }

    @Test func ignoresExt4AndRandomSticks() throws {
        let box = try TestBox("ignore")
        defer { box.cleanup() }
        let tree = box.dir + "/ext-tree"
        try Fx.Bundle().lay(in: tree, sec: box.key.sec)
        // ext4 with a symlink where hallwatch.yaml is named, and a FIFO: the stick is ignored outright.
        try FileManager.default.removeItem(atPath: tree + "/HALLWATCH/north-es/files/hallwatch.yaml")
        try FileManager.default.createSymbolicLink(
            atPath: tree + "/HALLWATCH/north-es/files/hallwatch.yaml", withDestinationPath: "/etc/shadow")
        mkfifo(tree + "/HALLWATCH/north-es/fifo", 0o644)
        let ext4 = box.dir + "/ext4.img"
        #expect(try Fx.run(["mkfs.ext4", "-q", "-d", tree, ext4, "8M"]).status == 0)
        var out = box.process(ext4)
        #expect(out.result == .ignored && out.reasons.first?.code == .ignored && box.store.current() == nil)
        let random = box.dir + "/random.img"
        var rng = SplitMix(seed: 3)
        Fx.write(random, (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        out = box.process(random)
        #expect(out.result == .ignored && box.store.current() == nil)
        // An NTFS boot sector (OEM id `NTFS    `, 55 AA): ignored.
        var ntfs = [UInt8](repeating: 0, count: 1 << 20)
        for (i, c) in "NTFS    ".utf8.enumerated() { ntfs[3 + i] = c }
        ntfs[11] = 0
        ntfs[12] = 2
        ntfs[510] = 0x55
        ntfs[511] = 0xAA
        Fx.write(box.dir + "/ntfs.img", ntfs)
        out = box.process(box.dir + "/ntfs.img")
        #expect(out.result == .ignored && out.reasons.first?.message.contains("NTFS") == true)
        let exfat = box.dir + "/exfat.img"
        Fx.write(exfat, [UInt8](repeating: 0, count: 8 << 20))
        #expect(try Fx.run(["mkfs.exfat", exfat]).status == 0)
        #expect(StickVolume.detect(path: exfat) == .exfat(offsetBytes: 0))
    }

    @Test func freshBoxAdoptsTheOneAdoptBundle() throws {
        var box = try TestBox("adopt")
        defer { box.cleanup() }
        box.identity = BoxIdentity(serial: "SN-NEW")
        var adopt = Fx.Bundle()
        adopt.boxes = "adopt"
        var notMine = Fx.Bundle()
        notMine.building = "south-ms"
        let image = try box.stick([adopt, notMine])
        let out = box.process(image)
        #expect(out.result == .applied, "\(out.reasons)")
        #expect(box.store.state().building == "north-es")
        var second = adopt
        second.building = "east-hs"
        var fresh = try TestBox("adopt2")
        defer { fresh.cleanup() }
        fresh.identity = BoxIdentity(serial: "SN-NEW")
        let two = try fresh.stick([adopt, second])
        let refused = fresh.process(two)
        #expect(refused.result == .refused && refused.reasons.first?.code == .ambiguous)
    }

    @Test func aReceiptThatCannotBeWrittenWaitsForTheNextStick() throws {
        var box = try TestBox("pending")
        defer { box.cleanup() }
        // A write-protected stick (a read-only loop device): the bundle applies, the receipt stays pending.
        let image = try box.stick([Fx.Bundle()], name: "ro.img")
        let attach = try Fx.run(["losetup", "-r", "-f", "--show", image])
        try #require(attach.status == 0, "no loop device: \(attach.out)")
        let node = attach.out.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? Fx.run(["losetup", "-d", node]) }
        let out = box.process(node)
        #expect(out.result == .applied && out.reasons.contains { $0.code == .receipt }, "\(out.reasons)")
        let pending = try FileManager.default.contentsOfDirectory(atPath: box.store.root + "/pending-receipts")
        #expect(pending.count == 2)
        // The next stick carries both the pending receipt and its own.
        var v3 = Fx.Bundle()
        v3.version = 3
        box.nowUnix += 60
        let next = try box.stick([v3], name: "next.img")
        #expect(box.process(next).result == .applied)
        let receipts = try Fx.receipts(next)
        #expect(receipts.count == 2 && receipts.contains { $0.contains("reason: provision.receipt: ") })
        #expect(try FileManager.default.contentsOfDirectory(atPath: box.store.root + "/pending-receipts").isEmpty)
    }

    @Test func ageSecretsAreDecryptedForThisBoxOnly() throws {
        var box = try TestBox("age")
        defer { box.cleanup() }
        let id = box.dir + "/box.agekey"
        let other = box.dir + "/other.agekey"
        #expect(try Fx.run(["age-keygen", "-o", id]).status == 0)
        #expect(try Fx.run(["age-keygen", "-o", other]).status == 0)
        let recipient = try Fx.run(["age-keygen", "-y", id]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        let otherRecipient = try Fx.run(["age-keygen", "-y", other]).out.trimmingCharacters(in: .whitespacesAndNewlines)
        func encrypted(_ text: String, to r: String) throws -> [UInt8] {
            Fx.write(box.dir + "/plain", Array(text.utf8))
            #expect(try Fx.run(["age", "-r", r, "-o", box.dir + "/enc.age", box.dir + "/plain"]).status == 0)
            return Fx.read(box.dir + "/enc.age")
        }
        var b = Fx.Bundle()
        b.files.append(("secrets/lobby.password", try encrypted("hunter2", to: recipient)))
        b.files[1].0 += ".age"
        var p = box.provisioner
        p.ageIdentity = id
        let image = try box.stick([b], name: "age.img")
        let out = p.process(device: image, apply: true)
        #expect(out.result == .applied, "\(out.reasons)")
        #expect(box.currentFiles()["secrets/lobby.password"] == Array("hunter2".utf8))
        #expect(box.currentFiles()["secrets/lobby.password.age"] == nil)
        let receipt = try Fx.receipts(image).last ?? ""
        #expect(receipt.contains("box-recipient: \(recipient)\n") && !receipt.contains("hunter2"))
        // Encrypted to another box: refused, current unchanged.
        var wrong = b
        wrong.version = 3
        wrong.files[1].1 = try encrypted("hunter3", to: otherRecipient)
        box.identity.serial = "SN-0001"
        let before = box.currentFiles()
        let refused = p.process(device: try box.stick([wrong], name: "wrong.img"), apply: true)
        #expect(refused.result == .refused && refused.reasons.first?.code == .config, "\(refused.reasons)")
        #expect(box.currentFiles() == before)
        // In clear text, allowed by the manifest: applied, and the receipt warns.
        var clear = Fx.Bundle()
        clear.version = 4
        clear.files.append(("secrets/gym.password", Array("swordfish".utf8)))
        let tree = box.dir + "/tree-clear"
        try clear.lay(
            in: tree, sec: box.key.sec,
            manifest: clear.manifestText.replacingOccurrences(
                of: "keyring 1\n", with: "keyring 1\ncleartext-secrets yes\n"))
        let clearImage = box.dir + "/clear.img"
        try Fx.fatImage(of: tree, at: clearImage)
        let warned = p.process(device: clearImage, apply: true)
        #expect(warned.result == .applied && warned.reasons.map(\.code) == [.cleartextSecret], "\(warned.reasons)")
        let r2 = try Fx.receipts(clearImage).last ?? ""
        #expect(r2.contains("reason: provision.cleartextSecret: secrets/gym.password travelled in clear text"))
        #expect(!r2.contains("swordfish"))
    }

    @Test func rollbackSwapsBackByteForByte() throws {
        let box = try TestBox("rollback")
        defer { box.cleanup() }
        #expect(box.process(try box.stick([Fx.Bundle()], name: "a.img")).result == .applied)
        let v2 = box.currentFiles()
        var v3 = Fx.Bundle()
        v3.version = 3
        v3.files = [("hallwatch.yaml", Array((Fx.goodYAML + "# three\n").utf8))]
        #expect(box.process(try box.stick([v3], name: "b.img")).result == .applied)
        #expect(box.currentFiles() != v2)
        try box.store.rollback(reason: "test", nowUnix: 0)
        #expect(try Fx.receipts(box.dir + "/b.img").last?.contains("changed: none\n") == true)  // a comment only
        #expect(box.currentFiles() == v2)
        #expect(box.store.state().versionFloor == 3)  // the floor stays
        #expect(String(decoding: Fx.read(box.store.root + "/audit.log"), as: UTF8.self).contains("rollback"))
    }

    /// Step S1 of HallwatchProcess's `CaptureUnitSync`: each switch of `current` (apply U4, rollback, revert V2)
    /// drops one file naming the cause and the release into the switch spool — only when the directory exists
    /// (systemd's `hallwatch-config.path` makes it on the appliance; the demo and tests have none).
    @Test func everySwitchOfCurrentDropsOneFileInTheSwitchSpool() throws {
        var box = try TestBox("spool")
        defer { box.cleanup() }
        let spool = box.dir + "/config-switched"
        box.switchSpool = spool
        func noted() throws -> [String] {
            try FileManager.default.contentsOfDirectory(atPath: spool).sorted().map {
                String(decoding: Fx.read(spool + "/" + $0), as: UTF8.self)
            }
        }
        #expect(box.process(try box.stick([Fx.Bundle()], name: "a.img")).result == .applied)
        #expect(!FileManager.default.fileExists(atPath: spool))  // no spool: nothing written, nothing failed
        let v2 = try #require(box.store.current())
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        var v3 = Fx.Bundle()
        v3.version = 3
        v3.files = [("hallwatch.yaml", Array((Fx.goodYAML + "# three\n").utf8))]
        #expect(box.process(try box.stick([v3], name: "b.img")).result == .applied)
        let v3r = try #require(box.store.current())
        #expect(try noted() == ["applied \(v3r)\n"])
        // A replug changes nothing: nothing noted.
        #expect(box.process(try box.stick([v3], name: "b2.img")).result == .alreadyApplied)
        #expect(try noted().count == 1)
        try box.store.rollback(reason: "test", nowUnix: 0)
        #expect(try noted().contains("rollback \(v2)\n"))
        // A revert (the health gate's V1–V4) back to the snapshot: noted as reverted to the old release.
        let before = box.store.snapshot()
        var v4 = Fx.Bundle()
        v4.version = 4
        v4.files = [("hallwatch.yaml", Array((Fx.goodYAML + "# four\n").utf8))]
        #expect(box.process(try box.stick([v4], name: "c.img")).result == .applied)
        let v4r = try #require(box.store.current())
        try box.store.restore(before, removing: v4r)
        let all = try noted()
        #expect(all.count == 4 && all.contains("applied \(v4r)\n") && all.contains("reverted \(v2)\n"), "\(all)")
        #expect(box.store.current() == v2)
    }
}
