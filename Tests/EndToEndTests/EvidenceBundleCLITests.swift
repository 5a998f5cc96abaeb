import Foundation
import Testing

/// `hallwatchctl export --bundle` and `export verify` as an investigator runs them: a disk filled with a real
/// clip by `hallwatchctl bench-fill --clip`, an identity key file in the web's format, the standard tools. No box
/// runs around the disk, so there is no audit log to write: the exports say `--no-audit`.
@Suite(.serialized)
struct EvidenceBundleCLITests {
    /// A scratch directory `/tmp/hw-<name>-<pid>` whose `disk0` holds 20 s of the B-frame clip (fragmented by
    /// stock ffmpeg, then filled in by `hallwatchctl bench-fill` as camera `lobby` of box `cli`; 16 slots of
    /// `slotSize` bytes; `extra` more bench-fill arguments). The caller removes it.
    static func filledDisk(_ name: String, slotSize: Int, extra: [String] = []) throws -> String {
        try E2E.ensureClips()
        let dir = "/tmp/hw-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let frag = try E2E.run(
            "/usr/bin/ffmpeg",
            [
                "-v", "error", "-i", E2E.media + "/h264-bframes.mp4", "-an", "-c:v", "copy", "-video_track_timescale",
                "90000", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", dir + "/clip.mp4",
            ])
        #expect(frag.status == 0, "\(frag.stderr)")
        let fill = try E2E.run(
            E2E.tool("hallwatchctl"),
            [
                "bench-fill", dir + "/disk0", "--box", "cli", "--clip", dir + "/clip.mp4", "--clip-camera", "lobby",
                "--seconds", "20", "--slots", "16", "--slot-size", "\(slotSize)",
            ] + extra)
        #expect(fill.status == 0, "\(fill.stderr)")
        return dir
    }

    /// `dir/hw.yaml` (box `cli`, the filled disk) and `dir/identity.key` (a fresh key in the web's format).
    static func writeConfigAndKey(_ dir: String) throws {
        try """
        box: cli
        bus: {socket: \(dir)/bus.sock}
        recorder: {disks: [{name: disk0, path: \(dir)/disk0}]}
        """.write(toFile: dir + "/hw.yaml", atomically: true, encoding: .utf8)
        let seed = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
        try "hallwatch-ed25519-private-v1\n\(seed.base64EncodedString())\n".write(
            toFile: dir + "/identity.key", atomically: true, encoding: .utf8)
    }

    @Test func exportBundleHoldsItsRangeAndVerifies() throws {
        let dir = try Self.filledDisk("bundle-cli", slotSize: 4 << 20)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ctl = E2E.tool("hallwatchctl")
        try Self.writeConfigAndKey(dir)

        func export(_ extra: [String]) throws -> E2E.Output {
            try E2E.run(
                ctl,
                [
                    "export", "--no-audit", "--config", dir + "/hw.yaml", "--camera", "lobby", "--from", "-1h", "--to",
                    "now",
                    "--reason", "incident in the lobby", "--case", "2026-17",
                ] + extra)
        }
        // No key: a clear error, nothing held.
        let noKey = try export(["--bundle", dir + "/b0", "--signing-key", dir + "/missing.key"])
        #expect(noKey.status == 1 && noKey.stderr.contains("export.signingKey"), "\(noKey.stderr)")

        let t0 = Date()
        let ex = try export(["--bundle", dir + "/bundle", "--signing-key", dir + "/identity.key"])
        let seconds = Date().timeIntervalSince(t0)
        #expect(ex.status == 0, "\(ex.stderr)")
        #expect(ex.stderr.contains("1/1"), "progress: \(ex.stderr)")
        print(
            "export --bundle: \(ex.stdout.trimmingCharacters(in: .newlines)) (\(String(format: "%.2f", seconds)) s wall)"
        )

        // The hold exists over the range.
        let holds = try E2E.run(ctl, ["hold", "list", "--config", dir + "/hw.yaml", "--json"])
        #expect(
            holds.status == 0 && holds.stdout.contains("2026-17") && holds.stdout.contains("lobby"), "\(holds.stdout)")
        let manifest = try String(contentsOfFile: dir + "/bundle/manifest.json", encoding: .utf8)
        #expect(manifest.contains("\"exportedBy\"") && manifest.contains("\"h-"), "\(manifest)")

        let ok = try E2E.run(ctl, ["export", "verify", dir + "/bundle"])
        #expect(ok.status == 0, "\(ok.stdout)")
        let sums = try E2E.run("/bin/sh", ["-c", "cd \(dir)/bundle && sha256sum -c SHA256SUMS"])
        #expect(sums.status == 0, "\(sums.stdout)")
        let ossl = try E2E.run(
            "/bin/sh",
            [
                "-c",
                "cd \(dir)/bundle && openssl pkeyutl -verify -pubin -inkey keys/box-ed25519.pem -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig",
            ])
        #expect(ossl.status == 0, "\(ossl.stdout) \(ossl.stderr)")

        // One flipped byte in the video: verify exits 1 naming the file.
        let video = try #require(
            try FileManager.default.contentsOfDirectory(atPath: dir + "/bundle/video/lobby").first)
        let path = dir + "/bundle/video/lobby/" + video
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count / 3] ^= 0x80
        try data.write(to: URL(fileURLWithPath: path))
        let bad = try E2E.run(ctl, ["export", "verify", dir + "/bundle"])
        #expect(bad.status == 1 && bad.stdout.contains("video/lobby/" + video), "\(bad.stdout)")
    }

    /// The export's evidence hold keeps its range past `maxAge`: video recorded 10 minutes ago with a 5-minute
    /// `maxAge` survives a real `hallwatch-pruner --once` pass while the bundle's hold stands, and the next pass
    /// after `hallwatchctl hold release` deletes it (all but the slot still open, which waits for its close).
    @Test func theExportsHoldKeepsItsRangePastMaxAge() throws {
        let dir = try Self.filledDisk("bundle-hold", slotSize: 256 << 10, extra: ["--ends-ago", "600"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ctl = E2E.tool("hallwatchctl")
        let config = dir + "/hw.yaml"
        try """
        box: cli
        bus: {socket: \(dir)/bus.sock}
        recorder: {disks: [{name: disk0, path: \(dir)/disk0}]}
        retention: {maxAge: 5m, minAge: 0s, reserve: 0s, reserveSlots: 0}
        cameras:
          - {id: lobby, source: "rtsp://127.0.0.1:1/lobby"}
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let seed = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
        try "hallwatch-ed25519-private-v1\n\(seed.base64EncodedString())\n".write(
            toFile: dir + "/identity.key", atomically: true, encoding: .utf8)
        /// Bytes of an export of everything recorded (0: nothing).
        func recorded() throws -> Int {
            try? FileManager.default.removeItem(atPath: dir + "/check.mp4")
            _ = try E2E.run(
                ctl,
                [
                    "export", "--no-audit", "--config", config, "--camera", "lobby", "--from", "-1h", "--to", "now",
                    "--out",
                    dir + "/check.mp4",
                ])
            return ((try? FileManager.default.attributesOfItem(atPath: dir + "/check.mp4"))?[.size] as? Int) ?? 0
        }
        let all = try recorded()
        #expect(all > 500_000)
        let ex = try E2E.run(
            ctl,
            [
                "export", "--no-audit", "--config", config, "--camera", "lobby", "--from", "-15m", "--to", "-5m",
                "--reason",
                "fight in the lobby", "--case", "2026-0412", "--bundle", dir + "/bundle", "--signing-key",
                dir + "/identity.key",
            ])
        #expect(ex.status == 0, "\(ex.stderr)")
        let pruner = E2E.tool("hallwatch-pruner")
        let held = try E2E.run(pruner, ["--config", config, "--once"])
        #expect(held.status == 0, "\(held.stderr)")
        #expect(try recorded() == all, "the held range was pruned: \(held.stdout) \(held.stderr)")
        let list = try E2E.run(ctl, ["hold", "list", "--config", config, "--json"])
        let id = try #require(
            list.stdout.range(of: #"h-[0-9a-f]{8}"#, options: .regularExpression).map { String(list.stdout[$0]) },
            "\(list.stdout)")
        #expect(try E2E.run(ctl, ["hold", "release", "--config", config, id]).status == 0)
        let released = try E2E.run(pruner, ["--config", config, "--once"])
        #expect(released.status == 0, "\(released.stderr)")
        // Every closed slot goes; the one the recorder would still be writing stays until it is closed.
        #expect(try recorded() < all / 2, "released, the range older than maxAge stays: \(released.stdout)")
    }

    /// A fresh user's finding: an export to a full disk left a partial file, and `--bundle` said "muxer refused".
    /// Both forms now fail with `export.noSpace` naming "no space left" and the path, and leave nothing behind.
    @Test(.enabled(if: geteuid() == 0, "needs root to mount a tmpfs (CI runs as root)"))
    func aFullDiskFailsBothFormsWithNoSpaceAndLeavesNothing() throws {
        let dir = try Self.filledDisk("nospace", slotSize: 4 << 20)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeConfigAndKey(dir)
        // 20 s of the clip export to about 1 MB: a 256 KiB file system fills mid-file.
        let full = dir + "/full"
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        try #require(E2E.run("/bin/mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", full]).status == 0)
        defer { _ = try? E2E.run("/bin/umount", ["-l", full]) }
        let ctl = E2E.tool("hallwatchctl")
        let common = [
            "export", "--no-audit", "--config", dir + "/hw.yaml", "--camera", "lobby", "--from", "-1h", "--to", "now",
        ]
        let file = try E2E.run(ctl, common + ["--out", full + "/clip.mp4"])
        #expect(file.status == 1, "\(file.stderr)")
        #expect(
            file.stderr.contains("[export.noSpace] no space left on device writing \(full)/clip.mp4"), "\(file.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: full) == [], "a partial file was left")

        let bundle = try E2E.run(
            ctl,
            common + [
                "--bundle", full + "/bundle", "--reason", "test", "--case", "2026-1", "--no-hold", "--signing-key",
                dir + "/identity.key",
            ])
        #expect(bundle.status == 1, "\(bundle.stderr)")
        #expect(bundle.stderr.contains("no space left on device writing \(full)/bundle/"), "\(bundle.stderr)")
        #expect(bundle.stderr.contains("export.noSpace") && !bundle.stderr.contains("muxer refused"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: full) == [], "the bundle was left behind")
        // A bundle directory that existed (empty) stays, emptied again.
        try FileManager.default.createDirectory(atPath: full + "/given", withIntermediateDirectories: false)
        let given = try E2E.run(
            ctl,
            common + [
                "--bundle", full + "/given", "--reason", "test", "--case", "2026-1", "--no-hold", "--signing-key",
                dir + "/identity.key",
            ])
        #expect(given.status == 1 && given.stderr.contains("export.noSpace"), "\(given.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: full) == ["given"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: full + "/given") == [])
        // The same export to a disk with room works: the failure was the space, nothing else.
        let ok = try E2E.run(ctl, common + ["--out", dir + "/roomy.mp4"])
        #expect(ok.status == 0, "\(ok.stderr)")
        let size = (try FileManager.default.attributesOfItem(atPath: dir + "/roomy.mp4")[.size] as? NSNumber)?.intValue
        #expect((size ?? 0) > 256 << 10, "the export is smaller than the full file system: \(size ?? 0) bytes")
    }
}
