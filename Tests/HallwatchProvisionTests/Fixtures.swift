import Foundation
import HallwatchSodium
import Testing

@testable import HallwatchProvision

/// Helpers: run Debian's tools (minisign, signify-openbsd, mkfs.vfat, mcopy, mkfs.ext4), temporary
/// directories, signed bundles and stick images. Every image is a plain file: nothing is mounted.
enum Fx {
    struct RunResult {
        var status: Int32
        var out: String
    }

    @discardableResult
    static func run(_ argv: [String], input: String? = nil, env: [String: String] = [:]) throws -> RunResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0].hasPrefix("/") ? argv[0] : "/usr/bin/env")
        p.arguments = argv[0].hasPrefix("/") ? Array(argv.dropFirst()) : argv
        var e = ProcessInfo.processInfo.environment
        e["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
        e["MTOOLS_SKIP_CHECK"] = "1"
        for (k, v) in env { e[k] = v }
        p.environment = e
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        let inp = Pipe()
        p.standardInput = inp
        try p.run()
        if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
        try inp.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return RunResult(status: p.terminationStatus, out: String(decoding: data, as: UTF8.self))
    }

    static func tempDir(_ tag: String) -> String {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("hw-prov-\(tag)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d.path
    }

    static func write(_ path: String, _ bytes: [UInt8]) {
        try! FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }

    static func read(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }

    /// A minisign key pair (no password) in `dir`: `<name>.pub`, `<name>.sec`.
    static func minisignKey(_ dir: String, _ name: String) throws -> (pub: String, sec: String) {
        let r = try run(["minisign", "-G", "-W", "-p", "\(dir)/\(name).pub", "-s", "\(dir)/\(name).sec"])
        #expect(r.status == 0, "\(r.out)")
        return ("\(dir)/\(name).pub", "\(dir)/\(name).sec")
    }

    /// A signify key pair (no password).
    static func signifyKey(_ dir: String, _ name: String) throws -> (pub: String, sec: String) {
        let r = try run(["signify-openbsd", "-G", "-n", "-p", "\(dir)/\(name).pub", "-s", "\(dir)/\(name).sec"])
        #expect(r.status == 0, "\(r.out)")
        return ("\(dir)/\(name).pub", "\(dir)/\(name).sec")
    }

    enum Form: String, CaseIterable { case prehashed, legacy, signify }

    /// Signs `file` into `sigPath` with the real CLI of `form`.
    static func sign(_ file: String, sec: String, form: Form, sigPath: String) throws {
        let argv: [String]
        switch form {
        case .prehashed: argv = ["minisign", "-S", "-s", sec, "-m", file, "-x", sigPath, "-t", "hallwatch test"]
        case .legacy: argv = ["minisign", "-S", "-l", "-s", sec, "-m", file, "-x", sigPath, "-t", "hallwatch test"]
        case .signify: argv = ["signify-openbsd", "-S", "-s", sec, "-m", file, "-x", sigPath]
        }
        let r = try run(argv)
        #expect(r.status == 0, "\(r.out)")
    }

    static let goodYAML = """
        box: lincoln-es
        building: Lincoln Elementary
        recorder:
          disks: [{ name: disk0, path: /srv/disk0 }]
        cameras:
          - id: lobby
            source: rtsp://10.1.2.3/axis-media/media.amp

        """

    /// One building's bundle laid out on the host under `root/HALLWATCH/<building>/`.
    struct Bundle {
        var district = "lincoln-usd"
        var building = "north-es"
        var boxes = "any"
        var version = 2
        var issued = "2026-12-01T00:00:00Z"
        var expires = "2099-01-01T00:00:00Z"
        var keyring = 1
        var files: [(String, [UInt8])] = [("hallwatch.yaml", Array(goodYAML.utf8))]
        /// Says `cleartext-secrets yes` (secrets/ files travel unencrypted; the receipt warns).
        var cleartextSecrets = false

        var manifestText: String {
            var s = "hallwatch-bundle 1\ndistrict \(district)\nbuilding \(building)\nboxes \(boxes)\n"
            s += "version \(version)\nissued \(issued)\nexpires \(expires)\nkeyring \(keyring)\n"
            if cleartextSecrets { s += "cleartext-secrets yes\n" }
            for (name, bytes) in files { s += "file \(bytes.count) \(hex(Sodium.sha256(bytes))) \(name)\n" }
            return s
        }

        /// Writes manifest, files and signature under `root`.
        func lay(in root: String, sec: String, form: Form = .prehashed, manifest: String? = nil) throws {
            let dir = "\(root)/HALLWATCH/\(building)"
            Fx.write("\(dir)/bundle.txt", Array((manifest ?? manifestText).utf8))
            for (name, bytes) in files { Fx.write("\(dir)/files/\(name)", bytes) }
            try Fx.sign("\(dir)/bundle.txt", sec: sec, form: form, sigPath: "\(dir)/bundle.txt.minisig")
        }
    }

    /// A FAT image of the tree `root` (its `HALLWATCH/` and any junk beside it), made with mkfs.vfat and mcopy.
    static func fatImage(of root: String, at image: String, fat: Int = 32, sizeKiB: Int = 40_000) throws {
        try? FileManager.default.removeItem(atPath: image)
        var r = try run(["mkfs.vfat", "-C", "-F", "\(fat)", image, "\(sizeKiB)"])
        #expect(r.status == 0, "\(r.out)")
        for name in try FileManager.default.contentsOfDirectory(atPath: root) {
            r = try run(["mcopy", "-s", "-i", image, "\(root)/\(name)", "::/"])
            #expect(r.status == 0, "\(r.out)")
        }
    }

    /// `fatImage` inside an MBR-partitioned image (the partition at 1 MiB, type 0x0C).
    static func partitionedImage(of root: String, at image: String) throws {
        let inner = image + ".part"
        try fatImage(of: root, at: inner)
        let part = read(inner)
        try? FileManager.default.removeItem(atPath: inner)
        var mbr = [UInt8](repeating: 0, count: 1 << 20)
        mbr[446 + 4] = 0x0C
        let lba = 2048
        let sectors = part.count / 512
        for i in 0..<4 {
            mbr[446 + 8 + i] = UInt8(truncatingIfNeeded: lba >> (8 * i))
            mbr[446 + 12 + i] = UInt8(truncatingIfNeeded: sectors >> (8 * i))
        }
        mbr[510] = 0x55
        mbr[511] = 0xAA
        write(image, mbr + part)
    }

    /// An exFAT image of the tree `root` (mkfs.exfat, then the tree copied in through exfat-fuse on a loop
    /// device in a private mount namespace; the loop device is detached again).
    static func exfatImage(of root: String, at image: String, sizeMiB: Int = 16) throws {
        try? FileManager.default.removeItem(atPath: image)
        #expect(try run(["truncate", "-s", "\(sizeMiB)M", image]).status == 0)
        #expect(try run(["mkfs.exfat", image]).status == 0)
        let loop = try run(["losetup", "-f", "--show", image])
        #expect(loop.status == 0, "\(loop.out)")
        let dev = loop.out.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? run(["losetup", "-d", dev]) }
        let script = """
            set -e; m=$(mktemp -d); mount.exfat-fuse -d "$1" "$m" >/dev/null 2>&1 & f=$!
            until grep -q " $m " /proc/self/mountinfo; do sleep 0.02; done
            cp -r "$2"/. "$m"/; sync; umount "$m"; wait $f; rmdir "$m"
            """
        let r = try run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", dev, root])
        #expect(r.status == 0, "\(r.out)")
    }

    /// The receipts on `image` (text files), read back with mtools.
    static func receipts(_ image: String) throws -> [String] {
        let r = try run(["mdir", "-b", "-i", image, "::/HALLWATCH/receipts"])
        return try r.out.split(separator: "\n").filter { $0.hasSuffix(".txt") }.map { path in
            try run(["mcopy", "-i", image, String(path), "-"]).out
        }
    }
}
