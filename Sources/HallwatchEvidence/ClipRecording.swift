import Foundation
import HallwatchCore
import HallwatchMedia
import HallwatchStorage

/// Long recordings made of real video, for benchmarks and tests of export (`hallwatchctl bench-fill --clip`,
/// `Tests/Bench/export.sh`, `HallwatchEvidenceTests`): a fragmented MP4 clip appended over and over as one run
/// through the storage library's own writer, each repetition's decode times (`tfdt`) moved to follow the
/// previous one, so the recording plays as one continuous stream whose every sample is the clip's.
public enum ClipRecording {
    /// The video of the clip file at `path` cut by stock ffmpeg (`/usr/bin/ffmpeg`, stream copy) into keyframe
    /// fragments on a 90 kHz timescale, as a camera's recording is stored; for tests and benchmarks.
    /// - Throws: ``HallwatchMedia/MediaError`` `media.file` when ffmpeg fails or its output is no fragmented MP4.
    public static func fragmentedClip(at path: String) throws -> FragmentedMP4 {
        let out = FileManager.default.temporaryDirectory.path + "/hallwatch-clip-\(UUID().uuidString.prefix(8)).mp4"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        p.arguments = [
            "-v", "error", "-y", "-i", path, "-an", "-c:v", "copy", "-video_track_timescale", "90000",
            "-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", out,
        ]
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0, let data = FileManager.default.contents(atPath: out) else {
            throw MediaError("media.file", "ffmpeg could not fragment \(path)")
        }
        return try FragmentedMP4([UInt8](data))
    }

    /// What ``record(_:camera:runStart:seconds:to:)`` appended.
    public struct Written: Sendable, Equatable {
        /// Fragments appended (the init segment aside).
        public var fragments: Int
        /// Video samples' media time, 90 kHz ticks.
        public var media90k: Int64
        /// `moof`+`mdat` bytes appended.
        public var payloadBytes: Int64
    }

    /// Appends `clip` as one run of `camera` lasting at least `seconds`: the init segment, then the clip's
    /// fragments repeated, committing every 50 fragments and at the end. Each fragment is a keyframe
    /// fragment (clips cut with `frag_keyframe`); its ``HallwatchCore/FragmentMeta`` carries the video track's
    /// decode time and duration in 90 kHz ticks and box UTC `runStart` + media time.
    /// - Throws: ``HallwatchStorage/StorageError`` from the writer; ``HallwatchMedia/MediaError`` when the
    ///   clip's video track has no timescale or zero duration.
    public static func record(
        _ clip: FragmentedMP4, camera: CameraID, runStart: UTCMicros, seconds: Double,
        to writer: DiskWriter
    ) throws -> Written {
        let video = clip.videoTrack
        guard let scale = clip.timescales[video], scale > 0 else {
            throw MediaError("media.file", "the clip's video track has no timescale")
        }
        let first = clip.fragments.first!
        let last = clip.fragments.last!
        // One repetition's length per track: from the first fragment's decode time to the last one's end.
        var period: [UInt32: UInt64] = [:]
        for (track, t0) in first.decodeTime {
            period[track] = (last.decodeTime[track] ?? t0) + (last.duration[track] ?? 0) - t0
        }
        guard let videoPeriod = period[video], videoPeriod > 0 else {
            throw MediaError("media.file", "the clip's video lasts 0 s")
        }
        func ticks90k(_ t: UInt64) -> Int64 { Int64(t * 90_000 / UInt64(scale)) }
        let run = UInt64(runStart.micros)
        try writer.append(
            camera: camera,
            meta: FragmentMeta(
                kind: .initSegment, keyframe: false, run: run, sequence: 0, start90k: .zero,
                duration90k: 0, utc: runStart), payload: clip.initSegment)
        var written = Written(fragments: 0, media90k: 0, payloadBytes: 0)
        let goal90k = Int64(seconds * 90_000)
        var loop: UInt64 = 0
        while written.media90k < goal90k {
            let shift = period.mapValues { $0 * loop }
            for i in clip.fragments.indices where written.media90k < goal90k {
                let f = clip.fragments[i]
                let start = ticks90k((f.decodeTime[video] ?? 0) - (first.decodeTime[video] ?? 0) + videoPeriod * loop)
                let end = ticks90k(
                    (f.decodeTime[video] ?? 0) + (f.duration[video] ?? 0) - (first.decodeTime[video] ?? 0) + videoPeriod
                        * loop)
                let payload = clip.restamped(i, shift: shift, sequence: UInt32(written.fragments + 1))
                try writer.append(
                    camera: camera,
                    meta: FragmentMeta(
                        kind: .fragment, keyframe: true, run: run, sequence: UInt32(written.fragments + 1),
                        start90k: MediaTime90k(start), duration90k: Int32(end - start),
                        utc: runStart.adding(MediaTime90k(start))), payload: payload)
                written.fragments += 1
                written.media90k = end
                written.payloadBytes += Int64(payload.count)
                if written.fragments % 50 == 0 { try writer.syncAndCommit() }
            }
            loop += 1
        }
        try writer.syncAndCommit()
        return written
    }
}
