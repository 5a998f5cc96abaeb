import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// End-to-end checks of the real `hallwatch-simcam` executable with ffprobe as the RTSP client (TCP
/// interleaved transport, RFC 7826 §14). Each test starts its own simcam on a free port on 127.0.0.1.
@Suite("hallwatch-simcam over RTSP", .timeLimit(.minutes(2)))
struct SimCamProcessTests {
    /// Frame duration of every clip (25 fps), in seconds.
    static let frame = 0.040
    /// Length of one pass over bigbuckbunny (132 frames), in seconds.
    static let bbbPeriod = 5.28

    @Test func servesEachClipWithItsCodecsAndPictureSize() async throws {
        try await Repo.ensureClips()
        let mounts = [
            ("aac", "h264-aac.mp4"), ("bframes", "h264-bframes.mp4"), ("hevc", "hevc.mp4"),
            ("fullhd", "fullhd.mp4"),
        ]
        let cam = try SimCamProcess(mounts: mounts.map { ($0.0, Repo.clip($0.1)) })
        defer { _ = cam.stop() }
        for (name, file) in mounts {
            let (source, _) = try await ffprobe(Repo.clip(file), ["-show_streams"])
            let (served, _) = try await ffprobe(
                try #require(cam.urls[name]), ["-rtsp_transport", "tcp", "-show_streams"])
            let want = try #require(source.streams).map {
                "\($0.codec_name ?? "?") \($0.width ?? 0)x\($0.height ?? 0) \($0.channels ?? 0)ch \($0.sample_rate ?? "-")"
            }
            let got = try #require(served.streams).map {
                "\($0.codec_name ?? "?") \($0.width ?? 0)x\($0.height ?? 0) \($0.channels ?? 0)ch \($0.sample_rate ?? "-")"
            }
            #expect(got == want, "mount \(name)")
        }
        let (aac, _) = try await ffprobe(try #require(cam.urls["aac"]), ["-rtsp_transport", "tcp", "-show_streams"])
        #expect(aac.streams?.map { $0.codec_name } == ["h264", "aac"])
        #expect(aac.streams?.first?.width == 1280 && aac.streams?.first?.height == 720)
        let (hevc, _) = try await ffprobe(try #require(cam.urls["hevc"]), ["-rtsp_transport", "tcp", "-show_streams"])
        #expect(hevc.streams?.map { $0.codec_name } == ["hevc"])
        #expect(hevc.streams?.first?.width == 640 && hevc.streams?.first?.height == 272)
        #expect(cam.stop() == 0)
    }

    /// 12 s of the 5.28-s clip crosses the loop boundary twice: timestamps must run on without a step back
    /// or a hole, at real-time pace.
    @Test func loopsWithContinuousTimestampsInRealTime() async throws {
        try await Repo.ensureClips()
        let cam = try SimCamProcess(mounts: [("bbb", Repo.clip("h264-aac.mp4"))], extra: ["--log-level", "debug"])
        defer { _ = cam.stop() }
        let url = try #require(cam.urls["bbb"])
        let (probe, run) = try await ffprobe(
            url,
            [
                "-rtsp_transport", "tcp", "-read_intervals", "%+12", "-show_entries",
                "packet=stream_index,pts_time,flags",
            ])
        let packets = try #require(probe.packets)
        let video = packets.filter { $0.stream_index == 0 }
        let audio = packets.filter { $0.stream_index == 1 }
        try checkContinuity(video, frame: Self.frame, minimumSpan: 11.5, label: "video")
        // AAC: 1024 samples at 48 kHz = 21.3 ms; the frame that overhangs the video's end is cut each pass.
        try checkContinuity(audio, frame: 1024.0 / 48000, minimumSpan: 11.5, label: "audio")
        // Keyframes (the clip's only IDR) exactly one period apart: the stream really looped, twice.
        let keys = video.filter(\.isKey).compactMap(\.pts)
        #expect(keys.count >= 2)
        for (k, t) in keys.enumerated() {
            #expect(abs(t - Double(k + 1) * Self.bbbPeriod) < 0.002, "keyframe \(k + 1) at \(t) s")
        }
        // Real-time pacing: 12 s of media took about 12 s of wall clock (not a burst).
        #expect(run.seconds > 10.5, "read 12 s of media in \(run.seconds) s")
        #expect(run.seconds < 20)
        #expect(cam.log.contains("pass=2"), "the server logs each loop at debug level")
    }

    @Test func twoConcurrentClientsOnOneMountBothPlay() async throws {
        try await Repo.ensureClips()
        let cam = try SimCamProcess(mounts: [("bbb", Repo.clip("h264-aac.mp4"))])
        defer { _ = cam.stop() }
        let url = try #require(cam.urls["bbb"])
        let args = [
            "-rtsp_transport", "tcp", "-read_intervals", "%+7", "-select_streams", "v",
            "-show_entries", "packet=stream_index,pts_time,flags",
        ]
        async let first = ffprobe(url, args)
        async let second = ffprobe(url, args)
        let results = try await [first, second]
        for (i, (probe, run)) in results.enumerated() {
            let video = try #require(probe.packets)
            #expect(video.count >= 165, "client \(i) got \(video.count) packets")
            try checkContinuity(video, frame: Self.frame, minimumSpan: 6.5, label: "client \(i)")
            #expect(video.filter(\.isKey).compactMap(\.pts).contains { abs($0 - Self.bbbPeriod) < 0.002 })
            #expect(run.seconds > 5.5)
        }
        #expect(cam.log.contains("(2 active on this mount)"), "each client gets its own pipeline")
        #expect(cam.stop() == 0)
    }

    @Test func exitsZeroOnSigtermAndSigintWithAClientConnected() async throws {
        try await Repo.ensureClips()
        for sig in [SIGTERM, SIGINT] {
            let cam = try SimCamProcess(mounts: [("hevc", Repo.clip("hevc.mp4"))])
            let url = try #require(cam.urls["hevc"])
            // A client is playing when the signal arrives.
            async let client = ffprobe(
                url, ["-rtsp_transport", "tcp", "-read_intervals", "%+30", "-show_entries", "packet=pts_time"],
                timeout: 40)
            try await Task.sleep(for: .seconds(2))
            let status = await onThreadNoThrow { cam.stop(signal: sig) }
            #expect(status == 0, "signal \(sig): exit status \(String(describing: status))\n\(cam.log)")
            _ = try? await client
        }
    }

    @Test func refusesBadArgumentsWithExitCode64() async throws {
        try await Repo.ensureClips()
        let exe = try Repo.simcamExecutable()
        let cases: [([String], String)] = [
            (["--mount", "cam=/nonexistent/clip.mp4"], "missing file"),
            (["--mount", "just-a-name"], "NAME=FILE"),
            (["--mount", "bad name=\(Repo.clip("hevc.mp4"))"], "mount name"),
            (["--mount", "cam=\(Repo.root.appendingPathComponent("Package.swift").path)"], "unsupported media"),
            ([], "--mount"),
        ]
        for (args, message) in cases {
            let r = try await onThread { try run(exe, ["--port", "0"] + args, timeout: 20) }
            #expect(r.status == 64, "\(args): \(r.status) \(r.error)")
            #expect(r.error.contains(message), "\(args): \(r.error)")
            #expect(!r.output.contains("simcam ready"))
        }
    }
}

/// Blocking work off the pool, for closures that do not throw.
func onThreadNoThrow<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { c in
        Thread { c.resume(returning: body()) }.start()
    }
}

/// Asserts the packets' PTS (in arrival order) strictly increase, no gap exceeds 2 `frame`s, and they span
/// at least `minimumSpan` seconds. At most the very first packet may lack a PTS (FFmpeg's RTP demuxer leaves
/// the first access unit of a new connection unstamped).
func checkContinuity(_ packets: [Probe.Packet], frame: Double, minimumSpan: Double, label: String) throws {
    let missing = packets.enumerated().filter { $0.element.pts == nil }.map(\.offset)
    #expect(missing.isEmpty || missing == [0], "\(label): packets without PTS at \(missing)")
    let pts = packets.compactMap(\.pts)
    try #require(pts.count > 10, "\(label): only \(pts.count) packets")
    let steps = zip(pts, pts.dropFirst()).map { $1 - $0 }
    let backwards = steps.enumerated().filter { $0.element <= 0 }
    #expect(
        backwards.isEmpty,
        "\(label): PTS not increasing at \(backwards.prefix(5).map { "#\($0.offset): \(pts[$0.offset]) → \(pts[$0.offset + 1])" })"
    )
    let maxStep = steps.max() ?? 0
    #expect(maxStep <= 2 * frame + 0.001, "\(label): largest PTS gap \(maxStep) s > 2 frames (\(2 * frame) s)")
    #expect(pts.last! - pts.first! >= minimumSpan, "\(label): spans \(pts.first!)…\(pts.last!) s")
}
