import Foundation
import Testing

@testable import HallwatchProvision

/// `hallwatchctl config bundle/verify/receipts` as an installer runs them: the built executable, real
/// minisign, stick images.
@Suite(
    "hallwatchctl config: bundle, verify, receipts", .serialized,
    .enabled(if: getuid() == 0, "the reader sandbox, loop devices and FUSE need root"))
struct InstallerToolsTests {
    static var ctl: String? {
        CrashTests.tool.map { ($0 as NSString).deletingLastPathComponent + "/hallwatchctl" }
            .flatMap { FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil }
    }

    @Test func bundleSignVerifyApplyAndReadTheInventory() throws {
        let ctl = try #require(Self.ctl, "build hallwatchctl first (swift build)")
        let box = try TestBox("ctl")
        defer { box.cleanup() }
        let tree = box.dir + "/tree"
        let dir = tree + "/HALLWATCH/north-es"
        Fx.write(dir + "/files/hallwatch.yaml", Array(Fx.goodYAML.utf8))
        Fx.write(dir + "/files/plans/notes.txt", Array("floor 1\n".utf8))
        var r = try Fx.run([
            ctl, "config", "bundle", dir, "--district", "lincoln-usd", "--version", "2", "--expires",
            "2099-01-01T00:00:00Z", "--issued", "2026-12-01T00:00:00Z",
        ])
        #expect(r.status == 0, "\(r.out)")
        let m = try BundleManifest.parse(Fx.read(dir + "/bundle.txt"))
        #expect(m.files.map(\.name) == ["hallwatch.yaml", "plans/notes.txt"] && m.version == 2)
        try Fx.sign(dir + "/bundle.txt", sec: box.key.sec, form: .prehashed, sigPath: dir + "/bundle.txt.minisig")
        let image = box.dir + "/stick.img"
        try Fx.fatImage(of: tree, at: image)
        let verify = [
            ctl, "config", "verify", image, "--keyring", box.dir + "/keyring", "--building", "north-es", "--district",
            "lincoln-usd", "--box", "SN-0001",
        ]
        r = try Fx.run(verify)
        #expect(r.status == 0 && r.out.contains("result: would apply"), "\(r.out)")
        #expect(box.store.current() == nil)  // verify applies nothing
        // Another building: refused, exit 1, every reason printed.
        r = try Fx.run(verify.map { $0 == "north-es" ? "south-ms" : $0 })
        #expect(r.status == 1 && r.out.contains("reason: provision.noBundle"), "\(r.out)")
        // A flipped byte in the signed manifest.
        var bytes = Fx.read(dir + "/bundle.txt")
        bytes[20] ^= 1
        Fx.write(dir + "/bundle.txt", bytes)
        let bad = box.dir + "/bad.img"
        try Fx.fatImage(of: tree, at: bad)
        r = try Fx.run(verify.map { $0 == image ? bad : $0 })
        #expect(r.status == 1 && r.out.contains("reason: provision.signature"), "\(r.out)")
        // An ext4 stick: ignored, exit 2.
        let ext4 = box.dir + "/ext4.img"
        #expect(try Fx.run(["mkfs.ext4", "-q", "-d", tree, ext4, "8M"]).status == 0)
        r = try Fx.run(verify.map { $0 == image ? ext4 : $0 })
        #expect(r.status == 2, "\(r.out)")
        // Apply on the box, then the inventory from the receipts.
        #expect(box.process(image).result == .applied)
        #expect(box.process(image).result == .alreadyApplied)
        r = try Fx.run([ctl, "config", "receipts", image])
        #expect(r.status == 0, "\(r.out)")
        let lines = r.out.split(separator: "\n")
        #expect(lines.first == "building,box,result,version_before,version_after,signer,box_clock,reasons,signature")
        #expect(lines.contains { $0.hasPrefix("north-es,SN-0001,applied,0,2,") })
        #expect(lines.contains { $0.hasPrefix("north-es,SN-0001,already-applied,2,2,") })
    }

    /// Issue 17's `config validate FILE` ("every problem at once with file:line") and the stick refuse the same
    /// file for the same reasons: a disk name the generator cannot mount by label, a relative `passwordFile`,
    /// an unknown key and a consistency problem, all in one run.
    @Test func validateAndTheStickRefuseTheSameProblemsInOneRun() throws {
        let ctl = try #require(Self.ctl, "build hallwatchctl first (swift build)")
        let box = try TestBox("validate")
        defer { box.cleanup() }
        let yaml = """
            box: lincoln-es
            recorder:
              disks: [{ name: recordings, path: /srv/disk0 }, { name: disk1, path: srv/disk1 }]
            cameras:
              - id: lobby
                source: rtsp://10.1.2.3/axis-media/media.amp
                passwordFile: secrets/lobby.password
                colour: red

            """
        let file = box.dir + "/hallwatch.yaml"
        Fx.write(file, Array(yaml.utf8))
        var r = try Fx.run([ctl, "config", "validate", file])
        let expected = [
            "3: recorder.disks.[0].name: expected 1-6 characters a-z, 0-9, '-' or '_' (not starting with '-' or '_'; the disk's ext4 label is hallwatch-<name>, at most 16 bytes), got \"recordings\"",
            "7: cameras.[0].passwordFile: expected an absolute path (starting with /), got \"secrets/lobby.password\": a relative one would be read from whichever directory a process runs in",
            "8: unknown key 'colour' in cameras.[0]; expected one of: audio, disk, id, name, onvifEndpoint, passwordFile, retention, source, subStream, transport, username",
            "3: recorder.disks.[1].path: disk path 'srv/disk1' must be absolute (start with /)",
        ]
        #expect(r.status == 78, "\(r.out)")
        #expect(r.out.split(separator: "\n").map(String.init) == expected.map { file + ":" + $0 }, "\(r.out)")
        r = try Fx.run([ctl, "config", "validate", box.dir + "/missing.yaml"])
        #expect(r.status == 66 && r.out.contains("missing.yaml:0: no such file"), "\(r.out)")
        Fx.write(file, Array(Fx.goodYAML.utf8))
        r = try Fx.run([ctl, "config", "validate", file])
        #expect(r.status == 0 && r.out == "ok: \(file)\n", "\(r.out)")
        // The same file on a signed stick: refused with the same diagnostics, nothing applied.
        var bundle = Fx.Bundle()
        bundle.files = [("hallwatch.yaml", Array(yaml.utf8))]
        let out = box.process(try box.stick([bundle], name: "bad-config.img"))
        #expect(out.result == .refused && box.store.current() == nil)
        #expect(
            out.reasons.map(\.message) == expected.map { "hallwatch.yaml:" + $0 }
                && out.reasons.allSatisfy { $0.code == .config }, "\(out.reasons)")
    }

    @Test func bundleRefusesNamesABoxWouldRefuse() throws {
        let dir = Fx.tempDir("names") + "/north-es"
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        Fx.write(dir + "/files/hallwatch.yaml", Array("box: x\n".utf8))
        Fx.write(dir + "/files/a/b/deep.txt", Array("x".utf8))
        Fx.write(dir + "/files/.hidden", Array("x".utf8))
        try FileManager.default.createSymbolicLink(atPath: dir + "/files/link", withDestinationPath: "/etc/passwd")
        do {
            _ = try InstallerTools.writeManifest(
                buildingDirectory: dir, district: "d", boxes: .any, version: 1, issuedUnix: 0, expiresUnix: 10,
                keyringVersion: 1)
            Issue.record("accepted")
        } catch {
            #expect(error.code == .manifest)
            for name in ["a/b", ".hidden", "link"] { #expect(error.message.contains(name), "\(name)") }
        }
    }
}
