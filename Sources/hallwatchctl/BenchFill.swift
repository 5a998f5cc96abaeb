// hallwatchctl bench-fill: a recording disk full of synthetic video, for benchmarks (Tests/Bench/pruner.sh).
import ArgumentParser
import Foundation
import HallwatchControl
import HallwatchCore
import HallwatchEvidence
import HallwatchMedia
import HallwatchProcess
import HallwatchStorage
import Logging

struct BenchFill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-fill",
        abstract: "Initialise DIR and record synthetic fragments into it through the real writer (benchmarks only).",
        shouldDisplay: false)
    @Argument(help: "A missing or empty directory.") var path: String
    @Option(help: "Owning box.") var box = "bench"
    @Option(help: "Fragments in all.") var fragments = 100_000
    @Option(help: "Cameras, recorded side by side.") var cameras = 4
    @Option(help: "Payload bytes per fragment.") var payload = 1_000
    @Option(help: "Media seconds per fragment.") var fragmentSeconds = 1.0
    @Option(help: "Slots.") var slots = 500
    @Option(help: "Bytes per slot.") var slotSize: Int64 = 256 << 10
    @Option(help: "The newest fragment ends this many seconds before now.") var endsAgo = 0.0
    @Option(
        help:
            "A fragmented MP4 (ffmpeg -movflags +frag_keyframe+empty_moov+default_base_moof) recorded over and over as camera bench-0 instead of synthetic fragments (Tests/Bench/export.sh)."
    )
    var clip: String?
    @Option(help: "With --clip: media seconds to record.") var seconds = 3600.0
    @Option(help: "With --clip: the camera id it is recorded as.") var clipCamera = "bench-0"
    @Option(
        help:
            "With --clip: record it for this many cameras, bench-0 … bench-(N-1), one after the other over the same span (Tests/Bench/export16.sh)."
    )
    var clipCameras = 1

    func validate() throws {
        guard CameraID(clipCamera) != nil else { throw ValidationError("--clip-camera: not a camera id") }
        guard (1...256).contains(clipCameras) else { throw ValidationError("--clip-cameras: 1-256") }
        guard (1...1000).contains(cameras), fragments > 0, payload > 0, fragmentSeconds > 0, fragmentSeconds <= 60
        else {
            throw ValidationError("expected 1-1000 cameras, positive counts, fragments of at most 60 s")
        }
    }

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .error)
        let logger = Logger(label: "hallwatchctl.bench-fill")
        let disk = try RecordingDisk.initialize(at: path, box: box, slotCount: slots, slotSizeBytes: slotSize)
        let writer = try DiskWriter(disk: disk, logger: logger)
        if let clip {
            let video = try FragmentedMP4([UInt8](try Data(contentsOf: URL(fileURLWithPath: clip))))
            let start = SystemClocks().utcNow().adding(micros: -Int64((seconds + endsAgo) * 1e6))
            let ids = clipCameras == 1 ? [clipCamera] : (0..<clipCameras).map { "bench-\($0)" }
            for id in ids {
                let w = try ClipRecording.record(
                    video, camera: CameraID(id)!, runStart: start, seconds: seconds, to: writer)
                say(
                    "filled \(path): \(id): \(w.fragments) fragments of \(clip), \(String(format: "%.1f", Double(w.media90k) / 90_000)) s, \(w.payloadBytes) bytes, from \(start.iso8601)"
                )
            }
            try writer.close()
            return
        }
        let perCamera = (fragments + cameras - 1) / cameras
        let tick = Int64((fragmentSeconds * 90_000).rounded())
        let runStart = realClocks.utcNow().adding(micros: -Int64((Double(perCamera) * fragmentSeconds + endsAgo) * 1e6))
        let ids = (0..<cameras).map { CameraID("bench-\($0)")! }
        let body = [UInt8](repeating: 0x5A, count: payload)
        for id in ids {
            try writer.append(
                camera: id,
                meta: FragmentMeta(
                    kind: .initSegment, keyframe: false, run: UInt64(runStart.micros), sequence: 0,
                    start90k: .zero, duration90k: 0, utc: runStart), payload: Array(repeating: 1, count: 600))
        }
        var written = 0
        for i in 0..<perCamera {
            let start = MediaTime90k(Int64(i) * tick)
            for id in ids where written < fragments {
                try writer.append(
                    camera: id,
                    meta: FragmentMeta(
                        kind: .fragment, keyframe: true, run: UInt64(runStart.micros), sequence: UInt32(i + 1),
                        start90k: start, duration90k: Int32(tick), utc: runStart.adding(start)), payload: body)
                written += 1
            }
            if i % 50 == 49 { try writer.syncAndCommit() }
        }
        try writer.close()
        let stats = try RecordingReader(at: path, box: box)
        say(
            "filled \(path): \(written) fragments of \(cameras) cameras, \(try stats.cameras().count) indexed, index \(stats.indexSizeBytes()) bytes"
        )
    }
}
