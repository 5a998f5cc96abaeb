import Foundation
import Testing

/// `hallwatchctl export --bundle` and `export verify` as an investigator runs them: a disk filled with a real
/// clip by `hallwatchctl bench-fill --clip`, an identity key file in the web's format, the standard tools.
@Suite(.serialized)
struct EvidenceBundleCLITests {
    @Test func exportBundleHoldsItsRangeAndVerifies() throws {
        try E2E.ensureClips()
        let dir = "/tmp/hw-bundle-cli-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ctl = E2E.tool("hallwatchctl")
        let frag = try E2E.run(
            "/usr/bin/ffmpeg",
            [
                "-v", "error", "-i", E2E.media + "/h264-bframes.mp4", "-an", "-c:v", "copy", "-video_track_timescale",
                "90000", "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", dir + "/clip.mp4",
            ])
        #expect(frag.status == 0, "\(frag.stderr)")
        let fill = try E2E.run(
            ctl,
            [
                "bench-fill", dir + "/disk0", "--box", "cli", "--clip", dir + "/clip.mp4", "--clip-camera", "lobby",
                "--seconds", "20", "--slots", "16", "--slot-size", "\(4 << 20)",
            ])
        #expect(fill.status == 0, "\(fill.stderr)")
        try """
        box: cli
        bus: {socket: \(dir)/bus.sock}
        recorder: {disks: [{name: disk0, path: \(dir)/disk0}]}
        """.write(toFile: dir + "/hw.yaml", atomically: true, encoding: .utf8)
        let seed = Data((0..<32).map { _ in UInt8.random(in: 0...255) })
        try "hallwatch-ed25519-private-v1\n\(seed.base64EncodedString())\n".write(
            toFile: dir + "/identity.key", atomically: true, encoding: .utf8)

        func export(_ extra: [String]) throws -> E2E.Output {
            try E2E.run(
                ctl,
                [
                    "export", "--config", dir + "/hw.yaml", "--camera", "lobby", "--from", "-1h", "--to", "now",
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
}
