import Crypto
import Foundation
import HallwatchCore
import HallwatchMedia
import HallwatchStorage
import Testing

@testable import HallwatchEvidence

/// Evidence bundles written from real recordings (the test clips recorded through the storage writer) and
/// checked with the standard tools a recipient has: `sha256sum`, Debian's `openssl`, stock `ffmpeg`.
@Suite(.serialized, .enabled(if: Clips.available, "no clips in .media (make clips)"))
struct BundleTests {
    static let tools = ["/usr/bin/sha256sum", "/usr/bin/openssl"].allSatisfy {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    static func signer() -> BundleSigner {
        let seed = Data((0..<32).map { UInt8($0 * 7 & 0xFF) })
        let key = try! Curve25519.Signing.PrivateKey(rawRepresentation: seed)
        return BundleSigner(publicKey: key.publicKey.rawRepresentation) {
            (try? Curve25519.Signing.PrivateKey(rawRepresentation: seed).signature(for: $0)) ?? Data()
        }
    }

    /// Runs a program in `dir`; its exit status and output.
    static func run(_ exe: String, _ args: [String], in dir: String) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// An H.264 run, 30 s of nothing, then an HEVC run: two files listed with the gap; every standard check
    /// passes; the framehash is stock ffmpeg's; one flipped byte in any file is named by `verify`.
    @Test(.enabled(if: tools)) func aBundleAcrossAGapVerifiesWithStandardTools() throws {
        let rig = try DiskRig(slots: 16, slotSizeBytes: 1 << 20)
        defer { rig.cleanup() }
        let writer = try rig.writer()
        let first = try ClipRecording.record(
            try Clips.fragmented("h264-bframes.mp4"), camera: rig.camera, runStart: rig.start, seconds: 4, to: writer)
        let secondStart = rig.start.adding(micros: first.media90k * 100 / 9 + 30_000_000)
        _ = try ClipRecording.record(
            try Clips.fragmented("hevc.mp4"), camera: rig.camera, runStart: secondStart, seconds: 4, to: writer)
        try writer.close()

        let dir = rig.dir + "/bundle"
        var steps: [EvidenceBundle.Progress] = []
        let t0 = Date()
        let manifest = try EvidenceBundle.write(
            .init(
                cameras: [rig.camera], from: rig.start.adding(micros: -5_000_000),
                to: secondStart.adding(micros: 60_000_000), reason: "fight in hall B", caseNumber: "2026-0142",
                exportedBy: "tester", box: "test-box", holds: ["h-0000abcd"]),
            from: rig.library(), to: dir, signer: Self.signer(), now: UTCMicros(1_765_000_000_000_000)
        ) { steps.append($0) }
        let seconds = Date().timeIntervalSince(t0)
        let cam = try #require(manifest.cameras.first)
        #expect(cam.files.count == 2 && steps.filter { !$0.path.isEmpty }.count == 2)
        #expect(cam.gaps.count == 1)
        #expect(abs((cam.gaps.first?.seconds ?? 0) - 30) < 0.2, "\(cam.gaps)")
        #expect(cam.files.allSatisfy { $0.path.hasPrefix("video/hall-b/") && $0.path.hasSuffix(".mp4") })
        let bytes = cam.files.reduce(0) { $0 + $1.bytes }
        print(
            String(
                format: "bundle: %d files, %.1f MB of video in %.2f s (%.0f MB/s)", cam.files.count,
                Double(bytes) / 1e6, seconds, Double(bytes) / 1e6 / seconds))

        // Standard tools.
        let sums = try Self.run("/usr/bin/sha256sum", ["-c", "SHA256SUMS"], in: dir)
        #expect(sums.status == 0, "\(sums.out)")
        let ossl = try Self.run(
            "/usr/bin/openssl",
            [
                "pkeyutl", "-verify", "-pubin", "-inkey", "keys/box-ed25519.pem", "-rawin", "-in", "SHA256SUMS",
                "-sigfile", "SHA256SUMS.sig",
            ], in: dir)
        #expect(ossl.status == 0 && ossl.out.contains("Signature Verified Successfully"), "\(ossl.out)")
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/minisign") {
            let mini = try Self.run(
                "/usr/bin/minisign", ["-V", "-p", "keys/box.minisign.pub", "-m", "SHA256SUMS"], in: dir)
            #expect(mini.status == 0 && mini.out.contains("Signature and comment signature verified"), "\(mini.out)")
        }
        // The framehash is what stock ffmpeg prints for the files, in name order.
        var stock = ""
        for f in cam.files.map(\.path).sorted() {
            let r = try Self.run(
                "/usr/bin/ffmpeg",
                [
                    "-v", "error", "-i", f, "-map", "0", "-c", "copy", "-fflags", "+bitexact", "-f", "framehash",
                    "-hash",
                    "sha256", "-",
                ], in: dir)
            #expect(r.status == 0)
            stock += r.out
        }
        let ours = try String(contentsOfFile: dir + "/" + cam.framehash, encoding: .utf8)
        #expect(ours == stock)
        #expect(
            ours.split(separator: "\n").filter { !$0.hasPrefix("#") }.count == cam.files.reduce(0) { $0 + $1.frames })
        // Each file: `moov` before `mdat`, no edit list, HEVC as hvc1.
        for (i, f) in cam.files.enumerated() {
            let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f.path))
            let moov = try #require(data.range(of: Data("moov".utf8)))
            let mdat = try #require(data.range(of: Data("mdat".utf8)))
            #expect(moov.lowerBound < mdat.lowerBound)
            #expect(data.range(of: Data("elst".utf8)) == nil)
            if i == 1 { #expect(data.range(of: Data("hvc1".utf8)) != nil && data.range(of: Data("hev1".utf8)) == nil) }
        }
        #expect(EvidenceBundle.verify(directory: dir).ok)

        // One flipped byte in any file: verify fails naming that file.
        let all =
            (try String(contentsOfFile: dir + "/SHA256SUMS", encoding: .utf8)).split(separator: "\n").map {
                String($0.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)[2])
            } + ["SHA256SUMS", "SHA256SUMS.sig", "SHA256SUMS.minisig"]
        #expect(all.contains("manifest.json") && all.contains("README.txt") && all.contains("keys/box-ed25519.pem"))
        for name in all {
            let url = URL(fileURLWithPath: dir + "/" + name)
            let original = try Data(contentsOf: url)
            var flipped = original
            flipped[original.count / 2] ^= 0x01
            try flipped.write(to: url)
            let verdict = EvidenceBundle.verify(directory: dir)
            #expect(verdict.failingFile == name, "\(name): \(verdict)")
            try original.write(to: url)
        }
        // A file added to the bundle is named too.
        try Data("added later".utf8).write(to: URL(fileURLWithPath: dir + "/video/hall-b/note.txt"))
        #expect(EvidenceBundle.verify(directory: dir).failingFile == "video/hall-b/note.txt")
        try FileManager.default.removeItem(atPath: dir + "/video/hall-b/note.txt")

        // The signer's fingerprint is reported, and a recipient who knows the box's can require it: a bundle
        // re-signed by someone else's key verifies on its own, never against the box's fingerprint.
        let good = EvidenceBundle.verify(directory: dir)
        let fingerprint = EvidenceBundle.fingerprint(publicKey: Self.signer().publicKey)
        #expect(good.ok && good.signerFingerprint == fingerprint && good.detail.contains(fingerprint))
        #expect(EvidenceBundle.verify(directory: dir, expectedFingerprint: fingerprint.lowercased()).ok)
        let other = EvidenceBundle.fingerprint(publicKey: Data(repeating: 7, count: 32))
        let forged = EvidenceBundle.verify(directory: dir, expectedFingerprint: other)
        #expect(forged.failingFile == EvidenceBundle.publicKeyPath && forged.detail.contains("not this box's"))

        // Links and special files are refused before anything is read (a link to /dev/zero was read forever).
        let mp4 = try #require(all.first { $0.hasSuffix(".mp4") })
        let saved = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + mp4))
        try FileManager.default.removeItem(atPath: dir + "/" + mp4)
        try FileManager.default.createSymbolicLink(atPath: dir + "/" + mp4, withDestinationPath: "/dev/zero")
        let linked = EvidenceBundle.verify(directory: dir)
        #expect(linked.failingFile == mp4 && linked.detail.contains("symbolic link"), "\(linked)")
        try FileManager.default.removeItem(atPath: dir + "/" + mp4)
        try saved.write(to: URL(fileURLWithPath: dir + "/" + mp4))
        #expect(mkfifo(dir + "/video/fifo", 0o600) == 0)
        #expect(EvidenceBundle.verify(directory: dir).failingFile == "video/fifo")
        unlink(dir + "/video/fifo")
        #expect(EvidenceBundle.verify(directory: dir).ok)
    }

    /// The exported frames are the camera's, byte for byte: each packet's size and SHA-256 in the bundle's
    /// framehash equal those stock `ffmpeg` prints for the source clip (the same packets, in order), and the
    /// source's SEI NAL unit (x264's user-data SEI, as a signing camera's SEI would be) is in the export verbatim.
    @Test func theFramesAreTheSourceClipsWithTheirSEI() throws {
        let rig = try DiskRig(slots: 16, slotSizeBytes: 1 << 20)
        defer { rig.cleanup() }
        let writer = try rig.writer()
        _ = try ClipRecording.record(
            try Clips.fragmented("h264-bframes.mp4"), camera: rig.camera, runStart: rig.start, seconds: 4, to: writer)
        try writer.close()
        let dir = rig.dir + "/bundle"
        let manifest = try EvidenceBundle.write(
            .init(
                cameras: [rig.camera], from: rig.start, to: rig.start.adding(micros: 60_000_000), reason: "r",
                caseNumber: "c", exportedBy: "t", box: "test-box"),
            from: rig.library(), to: dir, signer: Self.signer(), now: rig.start)
        let file = try #require(manifest.cameras.first?.files.first)
        /// `(size, sha256)` of each packet of stream 0 in framehash text.
        func packets(_ text: String) -> [String] {
            text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map {
                $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            }.filter { $0.count == 6 && $0[0] == "0" }.map { $0[4] + " " + $0[5] }
        }
        let source = try Self.run(
            "/usr/bin/ffmpeg",
            [
                "-v", "error", "-i", Clips.media + "/h264-bframes.mp4", "-map", "0:v", "-c", "copy", "-f", "framehash",
                "-hash", "sha256", "-",
            ], in: rig.dir)
        #expect(source.status == 0)
        let ours = packets(try String(contentsOfFile: dir + "/" + manifest.cameras[0].framehash, encoding: .utf8))
        let theirs = packets(source.out)
        #expect(ours.count == file.frames && ours.count >= 100 && ours.count <= theirs.count)
        #expect(ours == Array(theirs.prefix(ours.count)))
        // x264's SEI (user data unregistered, ITU-T H.264 §D.1.7): its text up to the terminating NUL.
        let clip = try Data(contentsOf: URL(fileURLWithPath: Clips.media + "/h264-bframes.mp4"))
        let start = try #require(clip.range(of: Data("x264 - core".utf8))).lowerBound
        let end = try #require(clip[start...].firstIndex(of: 0))
        let sei = clip[(start - 21)..<end]  // from the NAL header: type 6, payload type 5, size, UUID, text
        let exported = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + file.path))
        #expect(sei.count > 100 && exported.range(of: sei) != nil)
    }

    @Test func aBundleRefusesANonEmptyDirectory() throws {
        let rig = try DiskRig(slots: 4, slotSizeBytes: 1 << 20)
        defer { rig.cleanup() }
        try Data("x".utf8).write(to: URL(fileURLWithPath: rig.dir + "/note"))
        let error = #expect(throws: EvidenceBundleError.self) {
            _ = try EvidenceBundle.write(
                .init(
                    cameras: [rig.camera], from: rig.start, to: rig.start.adding(micros: 1_000_000), reason: "r",
                    caseNumber: "c", exportedBy: "t", box: "test-box"),
                from: rig.library(), to: rig.dir, signer: Self.signer(), now: rig.start)
        }
        #expect(error?.code == .bundle)
    }
}
