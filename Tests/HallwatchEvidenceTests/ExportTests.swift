import CFFmpeg
import Foundation
import HallwatchCore
import HallwatchStorage
import Logging
import Testing

@testable import HallwatchEvidence
@testable import HallwatchMedia

/// Streaming export over real disks made by the storage library's writer, with real H.264/H.265 fragments
/// cut from the test clips in `.media` (`make clips`); skipped when they are absent.
@Suite(.serialized, .enabled(if: Clips.available, "no clips in .media (make clips)"))
struct ExportTests {
    @Test func exportIsTheRecordedSamples() throws {
        let rig = try DiskRig(slots: 16, slotSizeBytes: 1 << 20)
        defer { rig.cleanup() }
        let clip = try Clips.fragmented("h264-bframes.mp4")
        let source = try Clips.videoPackets(MemoryByteSource(clip.initSegment + clip.fragments.flatMap(\.bytes)))
        let writer = try rig.writer()
        // Two repetitions of the clip as one run, across several 1 MiB slots.
        let period = Double(source.duration90k) / 90_000
        let written = try ClipRecording.record(
            clip, camera: rig.camera, runStart: rig.start, seconds: period * 2, to: writer)
        try writer.close()
        #expect(written.fragments == clip.fragments.count * 2)

        let out = rig.dir + "/out.mp4"
        let summary = try EvidenceExport.export(
            from: rig.library(), camera: rig.camera, from: rig.start, to: rig.start.adding(micros: 3_600_000_000),
            out: out)
        #expect(summary.files == [out])
        #expect(summary.videoFrames == source.samples.count * 2)
        #expect(abs(summary.mediaSeconds - period * 2) < 0.05, "\(summary.mediaSeconds) s for \(period * 2) s recorded")
        let exported = try Clips.videoPackets(
            MemoryByteSource([UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))))
        #expect(exported.samples.count == source.samples.count * 2)
        #expect(exported.samples == source.samples + source.samples, "every sample's bytes are the camera's")
        #expect(
            summary.bytes
                == Int64((try FileManager.default.attributesOfItem(atPath: out)[.size] as? NSNumber)?.intValue ?? -1))
    }

    @Test func aCodecChangeGivesTwoFiles() throws {
        let rig = try DiskRig(slots: 16, slotSizeBytes: 1 << 20)
        defer { rig.cleanup() }
        let h264 = try Clips.fragmented("h264-bframes.mp4")
        let hevc = try Clips.fragmented("hevc.mp4")
        let writer = try rig.writer()
        let first = try ClipRecording.record(h264, camera: rig.camera, runStart: rig.start, seconds: 4, to: writer)
        // The camera comes back 30 s later with other codec parameters: a new run.
        let secondStart = rig.start.adding(micros: first.media90k * 100 / 9 + 30_000_000)
        let second = try ClipRecording.record(hevc, camera: rig.camera, runStart: secondStart, seconds: 4, to: writer)
        try writer.close()

        let out = rig.dir + "/incident.mp4"
        let summary = try EvidenceExport.export(
            from: rig.library(), camera: rig.camera, from: rig.start, to: secondStart.adding(micros: 60_000_000),
            out: out)
        #expect(summary.files == [out, rig.dir + "/incident-2.mp4"])
        let a = try Clips.videoPackets(MemoryByteSource([UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))))
        let b = try Clips.videoPackets(
            MemoryByteSource([UInt8](try Data(contentsOf: URL(fileURLWithPath: rig.dir + "/incident-2.mp4")))))
        #expect(a.codec == "h264" && b.codec == "hevc")
        #expect(
            abs(Double(a.duration90k) - Double(first.media90k)) < 3_600
                && abs(Double(b.duration90k) - Double(second.media90k)) < 3_600)
        #expect(summary.videoFrames == a.samples.count + b.samples.count)
        // The gap between the runs is collapsed, not written.
        #expect(abs(summary.mediaSeconds - Double(first.media90k + second.media90k) / 90_000) < 0.1)
    }

    @Test func aDamagedRecordStopsTheExport() throws {
        let rig = try DiskRig(slots: 16, slotSizeBytes: 1 << 20)
        defer { rig.cleanup() }
        let clip = try Clips.fragmented("h264-bframes.mp4")
        let writer = try rig.writer()
        let written = try ClipRecording.record(clip, camera: rig.camera, runStart: rig.start, seconds: 16, to: writer)
        try writer.close()
        #expect(written.payloadBytes > 700_000)
        // Flip a byte well into slot 0's records, after the demuxer has started: that record's CRC-32C no
        // longer matches, and the export must fail with it rather than end early as if the video stopped.
        let f = try #require(
            FileHandle(forUpdatingAtPath: try RecordingDisk.open(at: rig.dir + "/disk", box: "test-box").slotPath(0)))
        try f.seek(toOffset: 600_000)
        let byte = try #require(try f.read(upToCount: 1)).first!
        try f.seek(toOffset: 600_000)
        try f.write(contentsOf: [byte ^ 0xFF])
        try f.close()
        let error = #expect(throws: StorageError.self) {
            _ = try EvidenceExport.export(
                from: rig.library(), camera: rig.camera, from: rig.start, to: rig.start.adding(micros: 60_000_000),
                out: rig.dir + "/x.mp4")
        }
        #expect(error?.code == .corrupt, "\(String(describing: error))")
    }

    /// Resident memory of a long export does not grow with its length: 10 min of 1080p (≈300 MB of records)
    /// exported in this process, its peak resident set (`VmHWM`, reset first through `/proc/self/clear_refs`)
    /// compared with the resident set before. The in-memory path held every payload twice (≈600 MB here).
    @Test func memoryStaysBoundedOverALongExport() throws {
        let rig = try DiskRig(slots: 48, slotSizeBytes: 8 << 20)
        defer { rig.cleanup() }
        let clip = try Clips.fragmented("fullhd.mp4")
        let writer = try rig.writer()
        let written = try ClipRecording.record(clip, camera: rig.camera, runStart: rig.start, seconds: 600, to: writer)
        try writer.close()
        #expect(written.payloadBytes > 200_000_000, "\(written.payloadBytes) bytes recorded")

        /// Peak resident growth (MB) of exporting the first `seconds` of the recording.
        func growthMB(seconds: Int64) throws -> (mb: Double, summary: ExportSummary) {
            let out = rig.dir + "/export-\(seconds).mp4"
            defer { try? FileManager.default.removeItem(atPath: out) }
            let before = try ProcStatus.kB("VmRSS")
            try ProcStatus.resetPeak()
            let summary = try EvidenceExport.export(
                from: rig.library(), camera: rig.camera, from: rig.start,
                to: rig.start.adding(micros: seconds * 1_000_000), out: out)
            let peak = try ProcStatus.kB("VmHWM")
            print(
                "export of \(summary.bytes / 1_000_000) MB (\(summary.videoFrames) frames, \(Int(summary.mediaSeconds)) s): resident \(before / 1024) MB before, peak \(peak / 1024) MB"
            )
            return (Double(peak - before) / 1024, summary)
        }
        let short = try growthMB(seconds: 60)
        let long = try growthMB(seconds: 700)
        #expect(abs(long.summary.mediaSeconds - Double(written.media90k) / 90_000) < 0.1)
        #expect(long.mb < 60, "resident memory grew by \(long.mb) MB for a \(long.summary.bytes / 1_000_000) MB export")
        // Ten times the media, about the same memory: only the muxer's sample tables grow (≈ 50 bytes a sample).
        #expect(long.mb - short.mb < 15, "\(short.mb) MB for 60 s, \(long.mb) MB for 600 s")
    }

    /// A bundle's video file is made in one pass: the framehash's demuxer reads the planned MP4 from the
    /// records once (almost nothing twice), the writer's file is those bytes and its SHA-256 theirs, the
    /// framehash equals the one read back from the written file, and a tenth of the range and the whole take
    /// about the same memory (in this serialized suite, so no other memory test runs meanwhile).
    @Test func aRunIsWrittenHashedAndFramehashedInOnePass() throws {
        let rig = try DiskRig(slots: 40, slotSizeBytes: 8 << 20)
        defer { rig.cleanup() }
        let writer = try rig.writer()
        _ = try ClipRecording.record(
            try Clips.fragmented("fullhd.mp4"), camera: rig.camera, runStart: rig.start, seconds: 300, to: writer)
        try writer.close()

        /// Peak resident growth (MB) of writing the first `seconds` as one file, and what it wrote.
        func oneFile(seconds: Int64) throws -> (
            mb: Double, path: String, sha: String, out: ProgressiveRunWriter,
            hash: FrameHash.Result
        ) {
            let stream = try rig.library().stream(
                camera: rig.camera, from: rig.start, to: rig.start.adding(micros: seconds * 1_000_000))
            let path = rig.dir + "/one-\(seconds).mp4"
            let before = try ProcStatus.kB("VmRSS")
            try ProcStatus.resetPeak()
            let run = try #require(stream.runs.first)
            let planned = try ProgressiveRun(run)
            let plan = try #require(planned)
            let out = try ProgressiveRunWriter(plan, to: path)
            let hash = try FrameHash.compute(source: out)
            let sha = try out.finish()
            let peak = try ProcStatus.kB("VmHWM")
            return (Double(peak - before) / 1024, path, sha, out, hash)
        }
        let short = try oneFile(seconds: 30)
        let long = try oneFile(seconds: 300)
        for f in [short, long] {
            let size = try FileManager.default.attributesOfItem(atPath: f.path)[.size] as? Int64
            #expect(size == f.out.lengthBytes && f.out.written == f.out.lengthBytes)
            #expect(try EvidenceBundle.sha256Hex(file: f.path) == f.sha)
            #expect(f.hash == (try FrameHash.compute(path: f.path)))
            #expect(f.hash.videoFrames == f.out.run.frames)
            // libavformat's probing looks back a little; the media is read once.
            #expect(f.out.readAgain < 4 << 20, "\(f.out.readAgain) bytes read twice of \(f.out.lengthBytes)")
        }
        #expect(long.out.lengthBytes > 100_000_000, "\(long.out.lengthBytes) bytes")
        print(
            "one pass: \(short.out.lengthBytes / 1_000_000) MB grew \(short.mb) MB, \(long.out.lengthBytes / 1_000_000) MB grew \(long.mb) MB; read again \(long.out.readAgain) bytes"
        )
        #expect(long.mb < 60 && long.mb - short.mb < 15, "\(short.mb) MB for 30 s, \(long.mb) MB for 300 s")
    }
}

// MARK: - Support

/// A fresh disk (`disk init` equivalent) in a temporary directory, and one camera.
struct DiskRig {
    let dir: String
    let camera = CameraID("hall-b")!
    let start = UTCMicros(1_764_000_000_000_000)

    init(slots: Int, slotSizeBytes: Int64, name: String = #function) throws {
        dir =
            FileManager.default.temporaryDirectory.path
            + "/hallwatch-evidence-tests/\(name.filter { $0.isLetter })-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = try RecordingDisk.initialize(
            at: dir + "/disk", box: "test-box", slotCount: slots, slotSizeBytes: slotSizeBytes)
    }

    func writer() throws -> DiskWriter {
        var logger = Logger(label: "hallwatch.evidence.test")
        logger.logLevel = .warning
        return try DiskWriter(disk: RecordingDisk.open(at: dir + "/disk", box: "test-box"), logger: logger)
    }

    func library() -> RecordingLibrary { RecordingLibrary(disks: [("d0", dir + "/disk")], box: "test-box") }
    func cleanup() { try? FileManager.default.removeItem(atPath: dir) }
}

enum Clips {
    static let media =
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path + "/.media"
    static let available =
        ["h264-bframes.mp4", "hevc.mp4", "fullhd.mp4"].allSatisfy {
            FileManager.default.fileExists(atPath: media + "/" + $0)
        }
        && FileManager.default.isExecutableFile(atPath: "/usr/bin/ffmpeg")

    /// The clip's video cut by ffmpeg into keyframe fragments on a 90 kHz timescale, as a camera's recording is.
    static func fragmented(_ name: String) throws -> FragmentedMP4 {
        try ClipRecording.fragmentedClip(at: media + "/" + name)
    }

    /// Every video sample's bytes, the codec and the video's duration (90 kHz ticks), read with libavformat.
    static func videoPackets(_ source: any SeekableByteSource) throws -> (
        codec: String, samples: [[UInt8]], duration90k: Int64
    ) {
        let d = try MP4Demuxer(source)
        let video = try #require(
            (0..<d.streamCount).first { d.stream($0).pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO })
        let tb = d.stream(video).pointee.time_base
        var samples: [[UInt8]] = []
        var first: Int64?
        var end: Int64 = 0
        let p = Packet()
        while try d.read(into: p) {
            guard p.streamIndex == video else { continue }
            samples.append(Array(p.data))
            let dts = p.dts ?? p.pts ?? 0
            first = first ?? dts
            end = max(end, dts + p.p.pointee.duration)
        }
        let ticks = av_rescale_q(end - (first ?? 0), tb, hw_rational(1, 90_000))
        return (codecName(d.stream(video).pointee.codecpar.pointee.codec_id), samples, ticks)
    }
}

/// This process's memory figures from `/proc/self/status`.
enum ProcStatus {
    static func kB(_ key: String) throws -> Int {
        let text = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix(key + ":") })
        return try #require(Int(line.split(separator: " ").dropFirst().first { !$0.isEmpty } ?? ""))
    }

    /// Resets `VmHWM` to the current resident set (Linux ≥ 4.0: `echo 5 > /proc/self/clear_refs`).
    static func resetPeak() throws {
        try "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
    }
}
