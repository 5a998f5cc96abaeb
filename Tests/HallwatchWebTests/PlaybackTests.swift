import Foundation
import HTTPTypes
import HallwatchCore
import HallwatchEvidence
import HallwatchMedia
import HallwatchStorage
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@testable import HallwatchWeb

/// Real recordings (the test clips in `.media`, `make clips`, recorded through the storage writer onto a real
/// disk of 1 MiB slots) served by the playback routes and checked with stock ffmpeg/ffprobe.
@Suite(.serialized, .enabled(if: PlaybackRig.available, "no clips in .media (make clips) or no ffmpeg"))
struct PlaybackTests {
    /// `lobby`: 20 s of H.264 with B-frames, 30 s of nothing, 10 s of HEVC.
    @Test("the recordings API: runs, the gap, the codec change, fragments, init segments; 404 outside the groups")
    func recordingsAPI() async throws {
        let rig = try PlaybackRig()
        defer { rig.cleanup() }
        var harness = try rig.harness()
        // What the web's state history saw meanwhile: lobby refused its RTSP connection 3 s into the gap.
        let history = CameraHistory(database: harness.database)
        harness.env.history = history
        let h = harness
        try history.record([
            .init(subject: "lobby", at: rig.start, state: "online"),
            .init(
                subject: "lobby", at: rig.secondStart.adding(micros: -27_000_000), state: "offline",
                code: "rtsp.connect", message: "connection refused"),
            .init(subject: "lobby", at: rig.secondStart, state: "online"),
        ])
        try await h.app().test(.router) { client in
            let admin = try #require(try await signIn(client, user: "admin"))
            let (from, to) = (rig.start.adding(micros: -5_000_000), rig.secondStart.adding(micros: 20_000_000))
            let view = try await client.execute(
                uri: "/api/v1/cameras/lobby/runs?from=\(from.iso8601)&to=\(to.iso8601)", method: .get,
                headers: cookieHeader(admin)
            ) { r in
                #expect(r.status == .ok)
                return try JSONDecoder().decode(RecordingsView.self, from: Data(buffer: r.body))
            }
            #expect(view.runs.count == 2)
            #expect(view.runs.first?.codec?.hasPrefix("avc1.") == true)
            #expect(view.runs.first?.width == 640 && view.runs.first?.height == 272)
            #expect(
                view.runs.last?.codec?.hasPrefix("hvc1.") == true || view.runs.last?.codec?.hasPrefix("hev1.") == true)
            #expect(view.gaps.count == 1)
            #expect(abs((view.gaps.first?.seconds ?? 0) - 30) < 0.2, "\(view.gaps)")
            #expect(view.gaps.first?.cause == "camera.offline", "\(view.gaps)")
            #expect(view.gaps.first?.detail?.hasPrefix("rtsp.connect: connection refused (from ") == true)
            #expect(view.codecChanges.count == 1)
            #expect(view.fragments.count == rig.first.fragments + rig.second.fragments)
            #expect(view.fragments.allSatisfy { $0.keyframe })
            #expect(view.initSegments.count == 2 && view.initSegments.map(\.id) == view.runs.map(\.id))
            #expect(view.runs.first?.start == rig.start.iso8601)
            let audited = try await h.env.audit.entries().last
            #expect(audited?.action == "camera.view" && audited?.object == "lobby")
            // Bad times and ranges.
            for query in [
                "from=yesterday&to=\(to.iso8601)", "from=\(to.iso8601)&to=\(from.iso8601)", "to=\(to.iso8601)",
            ] {
                try await client.execute(
                    uri: "/api/v1/cameras/lobby/runs?\(query)", method: .get, headers: cookieHeader(admin)
                ) { r in #expect(r.status == .badRequest, "\(query)") }
            }
            // A viewer limited to the parking group: the same 404 as a camera that does not exist.
            let facilities = try #require(try await signIn(client, user: "facilities"))
            for path in ["runs", "video.mp4", "video.m4s"] {
                try await client.execute(
                    uri: "/api/v1/cameras/lobby/\(path)?from=\(from.iso8601)&to=\(to.iso8601)", method: .get,
                    headers: cookieHeader(facilities)
                ) { r in #expect(r.status == .notFound, "\(path)") }
            }
        }
    }

    @Test("video.mp4: moov first, hvc1, ffprobe's duration and frames, framehash equal to the stored fragments'")
    func progressiveMP4() async throws {
        let rig = try PlaybackRig()
        defer { rig.cleanup() }
        let h = try rig.harness()
        try await h.app().test(.router) { client in
            let admin = try #require(try await signIn(client, user: "admin"))
            for (start, seconds) in [(rig.start.adding(micros: 3_000_000), 10.0), (rig.secondStart, 8.0)] {
                let query = "from=\(start.iso8601)&to=\(start.adding(micros: Int64(seconds * 1e6)).iso8601)"
                let mp4 = try await get(client, "/api/v1/cameras/lobby/video.mp4?\(query)", admin)
                let m4s = try await get(client, "/api/v1/cameras/lobby/video.m4s?\(query)", admin)
                #expect(mp4.status == .ok && m4s.status == .ok)
                #expect(mp4.headers[.contentLength] == String(mp4.body.count))
                #expect(mp4.headers[.acceptRanges] == "bytes")
                let moov = try #require(mp4.body.firstRange(of: Array("moov".utf8)))
                let mdat = try #require(mp4.body.firstRange(of: Array("mdat".utf8)))
                #expect(moov.lowerBound < mdat.lowerBound)
                #expect(mp4.body.firstRange(of: Array("elst".utf8)) == nil)
                if start == rig.secondStart { #expect(mp4.body.firstRange(of: Array("hev1".utf8)) == nil) }
                let files = try rig.write(["body.mp4": mp4.body, "body.m4s": m4s.body])
                // The .m4s is the stored records byte for byte: the mp4's frames must hash the same.
                let stored = try PlaybackRig.run("/usr/bin/ffmpeg", PlaybackRig.framehash(files[1]))
                let served = try PlaybackRig.run("/usr/bin/ffmpeg", PlaybackRig.framehash(files[0]))
                #expect(served.status == 0 && stored.status == 0)
                let hashes = served.out.split(separator: "\n").filter { !$0.hasPrefix("#") }
                #expect(hashes.count > 100)
                #expect(
                    hashes.map { $0.split(separator: ",").last! }
                        == stored.out.split(separator: "\n").filter { !$0.hasPrefix("#") }.map {
                            $0.split(separator: ",").last!
                        })
                let probe = try PlaybackRig.run(
                    "/usr/bin/ffprobe",
                    [
                        "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                        "stream=nb_read_frames,nb_frames,duration,start_time", "-of", "default=nw=1", files[0],
                    ])
                let fields = Dictionary(
                    probe.out.split(separator: "\n").map {
                        let kv = $0.split(separator: "=", maxSplits: 1)
                        return (String(kv[0]), String(kv.count > 1 ? kv[1] : ""))
                    }, uniquingKeysWith: { a, _ in a })
                let body = try #require(try rig.body(.progressive, from: start, seconds: seconds))
                #expect(Int(fields["nb_read_frames"] ?? "") == hashes.count)
                #expect(Int(fields["nb_frames"] ?? "") == body.frames)
                #expect(abs((Double(fields["duration"] ?? "") ?? 0) - (body.seconds ?? -1)) < 0.001, "\(fields)")
                // The first frame is presented after the keyframe's composition delay, as the header says.
                let offset = try #require(body.presentationOffset)
                #expect(abs((Double(fields["start_time"] ?? "") ?? -1) - offset) < 0.001, "\(fields)")
                #expect(
                    mp4.headers[HTTPField.Name("Hallwatch-Presentation-Offset")!] == String(format: "%.6f", offset))
                // Starts at the keyframe at or before `from`, covers `to`.
                #expect((body.seconds ?? 0) >= seconds - 0.05)
                #expect(mp4.headers[HTTPField.Name("Hallwatch-Covered-From")!] == body.firstUTC?.iso8601)
            }
            // Audited once per playback, however many requests.
            let plays = try await h.env.audit.entries().filter { $0.action == "playback" }
            #expect(plays.count == 4)
            #expect(plays.first?.actor == "admin" && plays.first?.object == "lobby")
            #expect(plays.first?.details.hasPrefix("video.mp4 ") == true)
        }
    }

    @Test("Range: random slices equal the whole; suffix, If-Range and unsatisfiable ranges; If-None-Match")
    func ranges() async throws {
        let rig = try PlaybackRig()
        defer { rig.cleanup() }
        let h = try rig.harness()
        try await h.app().test(.router) { client in
            let admin = try #require(try await signIn(client, user: "admin"))
            for form in ["mp4", "m4s"] {
                let uri =
                    "/api/v1/cameras/lobby/video.\(form)?from=\(rig.start.adding(micros: 2_500_000).iso8601)&to=\(rig.start.adding(micros: 9_000_000).iso8601)"
                let whole = try await get(client, uri, admin)
                let etag = try #require(whole.headers[.eTag])
                var random = SystemRandomNumberGenerator()
                for _ in 0..<24 {
                    let a = Int.random(in: 0..<whole.body.count, using: &random)
                    let b = Int.random(in: a..<min(whole.body.count, a + 300_000), using: &random)
                    let part = try await get(client, uri, admin, [.range: "bytes=\(a)-\(b)"])
                    #expect(part.status == .partialContent)
                    #expect(part.headers[.contentRange] == "bytes \(a)-\(b)/\(whole.body.count)")
                    #expect(part.headers[.eTag] == etag)
                    #expect(part.body == Array(whole.body[a...b]), "\(form) \(a)-\(b)")
                }
                let tail = try await get(client, uri, admin, [.range: "bytes=-1000"])
                #expect(tail.status == .partialContent && tail.body == Array(whole.body.suffix(1000)))
                let open = try await get(client, uri, admin, [.range: "bytes=100-"])
                #expect(open.body == Array(whole.body.dropFirst(100)))
                let beyond = try await get(client, uri, admin, [.range: "bytes=\(whole.body.count)-"])
                #expect(beyond.status == .rangeNotSatisfiable)
                #expect(beyond.headers[.contentRange] == "bytes */\(whole.body.count)")
                let stale = try await get(client, uri, admin, [.range: "bytes=0-9", .ifRange: "\"v1-stale\""])
                #expect(stale.status == .ok && stale.body == whole.body)
                let cached = try await get(client, uri, admin, [.ifNoneMatch: etag])
                #expect(cached.status == .notModified && cached.body.isEmpty)
            }
        }
    }

    /// A fresh user's finding: a stretch pruned from the middle of a run was drawn as recorded (one run, no
    /// gap) while its video answered 404. A run is now shown as the spans it still has, split at holes of 2 s or
    /// more, each hole a gap with cause `deleted`; jitter below 2 s is no gap.
    @Test("a run with a deleted middle is two spans with a gap between them")
    func runSpans() {
        let t0 = UTCMicros(1_799_990_000_000_000)
        func f(_ s: Double, _ d: Double = 1) -> (start: UTCMicros, end: UTCMicros) {
            (t0.adding(micros: Int64(s * 1e6)), t0.adding(micros: Int64((s + d) * 1e6)))
        }
        let fragments = [f(0), f(1), f(2.5), f(4), f(60), f(61), f(62)]
        let spans = RecordedSpans.split(fragments)
        #expect(spans.map(\.indices) == [0..<4, 4..<7])
        #expect(spans.map { $0.start.micros - t0.micros } == [0, 60_000_000])
        #expect(spans.map { $0.end.micros - t0.micros } == [5_000_000, 63_000_000])
        #expect(RecordedSpans.split([]).isEmpty)
        #expect(RecordedSpans.split([f(0, 10), f(3), f(11)]).map(\.indices) == [0..<3])
    }

    @Test("stream=sub plays a camera's sub stream (lot-north/sub), audited as such; 404 playback.stream without one")
    func subStreams() async throws {
        let rig = try PlaybackRig()
        defer { rig.cleanup() }
        let writer = try rig.writer()
        let sub = try ClipRecording.record(
            try ClipRecording.fragmentedClip(at: PlaybackRig.media + "/h264-bframes.mp4"),
            camera: CameraID("lot-north/sub")!, runStart: rig.start, seconds: 10, to: writer)
        try writer.close()
        let h = try rig.harness()
        let (from, to) = (rig.start.adding(micros: -1_000_000), rig.start.adding(micros: 12_000_000))
        let range = "from=\(from.iso8601)&to=\(to.iso8601)"
        try await h.app().test(.router) { client in
            // The facilities user sees the parking cameras, lot-north among them.
            let lots = try #require(try await signIn(client, user: "facilities"))
            let view = try await client.execute(
                uri: "/api/v1/cameras/lot-north/runs?\(range)&stream=sub", method: .get, headers: cookieHeader(lots)
            ) { r in
                #expect(r.status == .ok)
                return try JSONDecoder().decode(RecordingsView.self, from: Data(buffer: r.body))
            }
            #expect(view.camera == "lot-north/sub" && view.runs.count == 1)
            #expect(view.fragments.count == sub.fragments)
            let mp4 = try await get(client, "/api/v1/cameras/lot-north/video.mp4?\(range)&stream=sub", lots)
            #expect(mp4.status == .ok && mp4.headers[HTTPField.Name("Hallwatch-Covered-From")!] == rig.start.iso8601)
            #expect(Array(mp4.body[4..<8]) == Array("ftyp".utf8))
            let audited = try await h.env.audit.entries().filter { $0.action == "playback" }
            #expect(audited.last?.object == "lot-north/sub", "\(audited)")
            // The main stream has nothing recorded here; another camera has no sub stream; no such stream name.
            #expect(try await get(client, "/api/v1/cameras/lot-north/video.mp4?\(range)", lots).status == .notFound)
            let admin = try #require(try await signIn(client, user: "admin"))
            for uri in [
                "/api/v1/cameras/lobby/runs?\(range)&stream=sub", "/api/v1/cameras/lot-north/runs?\(range)&stream=hd",
            ] {
                let r = try await get(client, uri, admin)
                #expect(
                    r.status == .notFound && String(decoding: r.body, as: UTF8.self).contains("playback.stream"),
                    "\(uri)")
            }
        }
    }

    @Test("the ETag changes when a covered slot is reused, and the old body then fails instead of serving other bytes")
    func slotReuse() async throws {
        let rig = try PlaybackRig()
        defer { rig.cleanup() }
        let before = try #require(try rig.body(.progressive, from: rig.start, seconds: 6))
        let beforeM4S = try #require(try rig.body(.fragmented, from: rig.start, seconds: 6))
        #expect(before.etag == (try rig.body(.progressive, from: rig.start, seconds: 6))?.etag)
        let whole = try before.read(from: 0, to: before.length)
        #expect(whole.count == Int(before.length))
        // Fill the 16 slots of 1 MiB until the ring reuses the oldest (no pruner runs).
        let writer = try rig.writer()
        _ = try ClipRecording.record(
            try ClipRecording.fragmentedClip(at: PlaybackRig.media + "/h264-bframes.mp4"), camera: CameraID("gym")!,
            runStart: rig.secondStart.adding(micros: 60_000_000), seconds: 400, to: writer)
        try writer.close()
        let after = try rig.body(.progressive, from: rig.start, seconds: 6)
        #expect(after?.etag != before.etag)
        #expect(try rig.body(.fragmented, from: rig.start, seconds: 6)?.etag != beforeM4S.etag)
        // The planned body's records are gone: reading them is a clean storage.overwritten, never other bytes.
        #expect(throws: StorageError.self) { _ = try before.read(from: 0, to: before.length) }
        do {
            _ = try beforeM4S.read(from: 0, to: beforeM4S.length)
            Issue.record("read a pruned range")
        } catch let e as StorageError {
            #expect(e.code == .overwritten, "\(e)")
        }
    }

    struct Got {
        var status: HTTPResponse.Status
        var headers: HTTPFields
        var body: [UInt8]
    }

    func get(_ client: some TestClientProtocol, _ uri: String, _ cookie: String, _ extra: HTTPFields = [:])
        async throws -> Got
    {
        var headers = cookieHeader(cookie)
        headers.append(contentsOf: extra)
        return try await client.execute(uri: uri, method: .get, headers: headers) { r in
            Got(status: r.status, headers: r.headers, body: Array(buffer: r.body))
        }
    }
}

/// A disk of 16 slots of 1 MiB with camera `lobby`: 20 s of `h264-bframes.mp4`, 30 s of nothing, 10 s of
/// `hevc.mp4`, recorded through the storage writer.
struct PlaybackRig {
    static let media =
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path + "/.media"
    static let available =
        ["h264-bframes.mp4", "hevc.mp4"].allSatisfy {
            FileManager.default.fileExists(atPath: media + "/" + $0)
        } && FileManager.default.isExecutableFile(atPath: "/usr/bin/ffprobe")

    let dir: String
    let camera = CameraID("lobby")!
    let start = UTCMicros(1_799_990_000_000_000)
    let secondStart: UTCMicros
    let first: ClipRecording.Written
    let second: ClipRecording.Written

    init(name: String = #function) throws {
        dir =
            FileManager.default.temporaryDirectory.path
            + "/hallwatch-playback-tests/\(name.filter { $0.isLetter })-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = try RecordingDisk.initialize(at: dir + "/disk", box: "box1", slotCount: 16, slotSizeBytes: 1 << 20)
        let writer = try Self.writer(dir)
        first = try ClipRecording.record(
            try ClipRecording.fragmentedClip(at: Self.media + "/h264-bframes.mp4"), camera: camera, runStart: start,
            seconds: 20, to: writer)
        secondStart = start.adding(micros: first.media90k * 100 / 9 + 30_000_000)
        second = try ClipRecording.record(
            try ClipRecording.fragmentedClip(at: Self.media + "/hevc.mp4"), camera: camera, runStart: secondStart,
            seconds: 10, to: writer)
        try writer.close()
    }

    static func writer(_ dir: String) throws -> DiskWriter {
        var logger = Logger(label: "hallwatch.web.playback.test")
        logger.logLevel = .error
        return try DiskWriter(disk: RecordingDisk.open(at: dir + "/disk", box: "box1"), logger: logger)
    }
    func writer() throws -> DiskWriter { try Self.writer(dir) }

    var disks: RecordingDisks { RecordingDisks(disks: [.init(name: "d0", path: dir + "/disk")], box: "box1") }

    func harness() throws -> Harness {
        var h = try Harness()
        h.env.recordings = disks
        return h
    }

    /// The body the route would serve for `[from, from + seconds)`.
    func body(_ form: PlaybackBody.Form, from: UTCMicros, seconds: Double) throws -> PlaybackBody? {
        let stream = try disks.library().stream(
            camera: camera, from: from, to: from.adding(micros: Int64(seconds * 1e6)), startAtKeyframe: true)
        guard stream.fragmentCount > 0 else { return nil }
        return form == .fragmented ? PlaybackBody.fragmented(stream) : try PlaybackBody.progressive(stream)
    }

    /// Writes files into the rig's directory; their paths.
    func write(_ files: KeyValuePairs<String, [UInt8]>) throws -> [String] {
        try files.map { file in
            let path = dir + "/" + file.key
            try Data(file.value).write(to: URL(fileURLWithPath: path))
            return path
        }
    }

    static func framehash(_ file: String) -> [String] {
        ["-v", "error", "-i", file, "-map", "0:v", "-c", "copy", "-f", "framehash", "-hash", "sha256", "-"]
    }

    static func run(_ exe: String, _ args: [String]) throws -> (status: Int32, out: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    func cleanup() { try? FileManager.default.removeItem(atPath: dir) }
}
