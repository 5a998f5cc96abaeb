import Foundation
import Testing

@testable import HallwatchProvision

/// Sticks that lie below the file level: FAT entries patched by hand, a stalling reader, a stick rewritten
/// between the manifest and the file copy.
@Suite(
    "Hostile sticks below the file level", .serialized,
    .enabled(if: getuid() == 0, "the reader sandbox, loop devices and FUSE need root"))
struct HostileStickTests {
    /// The offset of the 32-byte directory entry with short name `name11` (ISO/IEC 9293: name at 0, high
    /// cluster at 20, low cluster at 26, size at 28).
    static func entry(_ image: [UInt8], _ name11: String) -> Int? {
        let n = Array(name11.utf8)
        var i = 0
        while i + 32 <= image.count {
            if image[i] == n[0], Array(image[i..<(i + 11)]) == n { return i }
            i += 32
        }
        return nil
    }

    static func u32(_ b: [UInt8], _ at: Int) -> Int {
        Int(b[at]) | Int(b[at + 1]) << 8 | Int(b[at + 2]) << 16 | Int(b[at + 3]) << 24
    }

    static func put32(_ b: inout [UInt8], _ at: Int, _ v: UInt32) {
        for i in 0..<4 { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }

    func stickWithBig(_ box: TestBox, name: String) throws -> (String, [UInt8]) {
        var b = Fx.Bundle()
        b.version = 3
        b.files.append(("big.bin", (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }))
        let image = try box.stick([b], name: name)
        return (image, Fx.read(image))
    }

    /// The exFAT reader's regular-file check (``ExfatStick/checkedOperations``, the very shell text the helper
    /// runs after mounting) on a tmpfs fixture in a private mount namespace, since exFAT itself cannot store
    /// these entries: a symlink (to `/etc/shadow`), a FIFO, a device node (`/dev/zero`'s) and a directory where
    /// a file is named read as nothing — the provisioner's exact size and SHA-256 then refuse the bundle — and
    /// are never listed; a symlinked directory is not listed either; a regular file beside them reads whole.
    /// A mount lacking one of the flags the reader wants stops everything (exit 90).
    @Test(.timeLimit(.minutes(1))) func aTmpfsFixtureOfSymlinkFifoDeviceAndDirectoryReadsAsNothing() throws {
        func fixture(want: String) -> String {
            #"""
            set -eu
            op=$1 p=$2 arg=$3
            mnt=$(mktemp -d /tmp/hw-tmpfs.XXXXXX)
            trap 'umount "$mnt" 2>/dev/null || true; rmdir "$mnt"' EXIT
            mount -t tmpfs -o size=1m,mode=0755 tmpfs "$mnt"
            d="$mnt/HALLWATCH/north-es/files"
            mkdir -p "$d" "$mnt/HALLWATCH/south-ms"
            printf 'box: b\n' > "$d/ok.yaml"
            ln -s /etc/shadow "$d/hallwatch.yaml"
            mkfifo "$d/fifo.yaml"
            mknod "$d/zero.yaml" c 1 5
            mkdir "$d/dir.yaml"
            ln -s /etc "$mnt/HALLWATCH/linked"
            opts=ro,nosuid,nodev,noexec

            """# + "want=\"\(want)\"\n" + ExfatStick.checkedOperations
        }
        let flags = "ro nosuid nodev noexec nosymfollow"
        func run(_ op: String, _ path: String, _ arg: String = "4096", want: String = flags) throws -> Fx.RunResult {
            try Fx.run([
                "timeout", "20", "unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", fixture(want: want),
                "sh", op, path, arg,
            ])
        }
        let ok = try run("read", "HALLWATCH/north-es/files/ok.yaml")
        #expect(ok.status == 0 && ok.out == "box: b\n", "\(ok)")
        for name in ["hallwatch.yaml", "fifo.yaml", "zero.yaml", "dir.yaml"] {
            let r = try run("read", "HALLWATCH/north-es/files/" + name)
            #expect(r.status == 0 && r.out.isEmpty, "\(name): \(r)")
        }
        let files = try run("files", "HALLWATCH/north-es/files")
        #expect(files.status == 0 && files.out == "ok.yaml\n", "\(files)")
        let dirs = try run("list", "HALLWATCH")
        #expect(dirs.status == 0 && dirs.out.split(separator: "\n").sorted() == ["north-es", "south-ms"], "\(dirs)")
        // A flag the mount does not show (here `sync`, never asked for): exit 90, nothing read.
        let missing = try run("read", "HALLWATCH/north-es/files/ok.yaml", want: flags + " sync")
        #expect(missing.status == 90 && missing.out.isEmpty, "\(missing)")
    }

    @Test func fatEntryClaiming4GiBAndClusterLoopAreRefused() throws {
        let box = try TestBox("fatlies")
        defer { box.cleanup() }
        // A directory entry claiming 4 GiB: mtools reads the real chain only; the size check refuses.
        var (image, bytes) = try stickWithBig(box, name: "huge.img")
        let e = try #require(Self.entry(bytes, "BIG     BIN"))
        Self.put32(&bytes, e + 28, 0xFFFF_FFFF)
        Fx.write(image, bytes)
        var start = ContinuousClock.now
        var out = box.process(image)
        #expect(out.result == .refused && out.reasons.contains { $0.code == .file }, "\(out.reasons)")
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(box.store.current() == nil)
        // A cluster chain that loops onto itself.
        (image, bytes) = try stickWithBig(box, name: "loop.img")
        let e2 = try #require(Self.entry(bytes, "BIG     BIN"))
        let cluster =
            Int(bytes[e2 + 26]) | Int(bytes[e2 + 27]) << 8 | Int(bytes[e2 + 20]) << 16
            | Int(bytes[e2 + 21]) << 24
        let bytesPerSector = Int(bytes[11]) | Int(bytes[12]) << 8
        let reserved = Int(bytes[14]) | Int(bytes[15]) << 8
        let fatBytes = Self.u32(bytes, 36) * bytesPerSector
        for copy in 0..<Int(bytes[16]) {
            let fat = reserved * bytesPerSector + copy * fatBytes
            Self.put32(&bytes, fat + 4 * (cluster + 1), UInt32(cluster))  // the second cluster points back
        }
        Fx.write(image, bytes)
        start = ContinuousClock.now
        out = box.process(image)
        #expect(out.result == .refused && out.reasons.contains { $0.code == .file }, "\(out.reasons)")
        #expect(ContinuousClock.now - start < .seconds(1))
        #expect(box.store.current() == nil)
        let receipt = try Fx.receipts(image).last ?? ""
        #expect(receipt.contains("reason: provision.file: big.bin"))
    }

    /// A directory where a listed file is named, on FAT and on exFAT: refused (`provision.file`), nothing staged.
    @Test func aDirectoryWhereAFileIsNamed() throws {
        let box = try TestBox("dirfile")
        defer { box.cleanup() }
        var b = Fx.Bundle()
        b.files.append(("plans", Array("a file".utf8)))
        let tree = box.dir + "/tree"
        try b.lay(in: tree, sec: box.key.sec)
        let named = tree + "/HALLWATCH/north-es/files/plans"
        try FileManager.default.removeItem(atPath: named)
        Fx.write(named + "/inside.txt", Array("a file".utf8))
        let fat = box.dir + "/fat.img"
        try Fx.fatImage(of: tree, at: fat)
        let exfat = box.dir + "/exfat.img"
        try Fx.exfatImage(of: tree, at: exfat)
        for image in [fat, exfat] {
            let out = box.process(image)
            #expect(out.result == .refused && out.reasons.map(\.code) == [.file], "\(image): \(out.reasons)")
            #expect(box.store.current() == nil)
        }
    }

    @Test func aStallingReaderIsKilledAtItsDeadline() throws {
        let box = try TestBox("stall")
        defer { box.cleanup() }
        let image = try box.stick([Fx.Bundle()])
        // A "sandbox" that forks a child holding the pipe and stalls: the whole group is killed.
        let stall = ReaderSandbox(
            prefix: ["/bin/sh", "-c", "sleep 30 & sleep 30; exec \"$@\"", "sh"], deadline: .milliseconds(300))
        let start = ContinuousClock.now
        let out = box.provisioner.process(device: image, apply: true, sandbox: stall)
        let took = ContinuousClock.now - start
        #expect(out.result == .refused && out.reasons.first?.code == .reader, "\(out.reasons)")
        #expect(took < .seconds(2), "\(took)")
        #expect(box.store.current() == nil)
    }

    /// A sandbox that cannot start is named when the provisioner starts: under a service manager that forbids
    /// network namespaces, `unshare --net` exits 1, every read came back empty and each stick read as one without
    /// a bundle (make image-test).
    @Test func aSandboxThatCannotStartIsNamedNotMistakenForAnEmptyStick() throws {
        try ReaderSandbox.default.check()
        let broken = ReaderSandbox(prefix: ["/bin/sh", "-c", "exit 1", "sh"], deadline: .seconds(5))
        #expect(throws: ProvisionError.self) { try broken.check() }
        do {
            try broken.check()
        } catch {
            #expect(error.code == .reader)
            #expect(error.message.contains("/bin/sh -c exit 1 sh` exits 1"), "\(error.message)")
        }
    }

    /// A stick whose files change after the manifest was read: what is applied is what verified, or nothing.
    struct ShiftingStick: StickSource {
        let real: MtoolsStick
        let swapped: [String: [UInt8]]
        func read(_ path: String, maxBytes: Int) throws(ProvisionError) -> [UInt8] {
            if let s = swapped[path] { return Array(s.prefix(maxBytes)) }
            return try real.read(path, maxBytes: maxBytes)
        }
        func directories(in path: String) throws(ProvisionError) -> [String] { try real.directories(in: path) }
        func files(in path: String) throws(ProvisionError) -> [String] { try real.files(in: path) }
        func create(_ path: String, contents: [UInt8]) throws(ProvisionError) {}
    }

    @Test func aStickRewrittenAfterTheManifestIsRefused() throws {
        let box = try TestBox("shift")
        defer { box.cleanup() }
        let image = try box.stick([Fx.Bundle()])
        let evil = Array((Fx.goodYAML.replacingOccurrences(of: "10.1.2.3", with: "10.6.6.6")).utf8)
        let stick = ShiftingStick(
            real: MtoolsStick(VolumeLocation(device: image, offsetBytes: 0)),
            swapped: ["HALLWATCH/north-es/files/hallwatch.yaml": evil])
        var outcome = ProvisionOutcome(
            result: .refused, reasons: [], building: "north-es", manifest: nil, signerKeyID: nil, versionBefore: 0,
            versionAfter: 0)
        #expect(throws: ProvisionError.self) {
            try box.provisioner.check(stick: stick, building: "north-es", outcome: &outcome)
        }
        #expect(outcome.reasons.map(\.code) == [.file])
    }
}
