import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchEvidence
import HallwatchMedia
import HallwatchStorage

/// What `hallwatchctl recordings --json` prints: a camera's runs and the gaps between them.
public struct RecordingsReport: Codable, Sendable {
    /// One run: an unbroken stretch of recording with one init segment.
    public struct Run: Codable, Sendable {
        /// The run id.
        public var run: UInt64
        /// Start, ISO 8601 UTC.
        public var start: String
        /// End, ISO 8601 UTC.
        public var end: String
        /// Start, µs since the epoch (UTC).
        public var startMicros: Int64
        /// End, µs since the epoch (UTC).
        public var endMicros: Int64
        /// Media duration from the stream's timestamps, seconds.
        public var mediaSeconds: Double
        /// Fragments recorded in the run.
        public var fragments: Int
        /// Payload bytes recorded in the run.
        public var bytes: Int64
        /// Largest hole between one fragment's end and the next one's start inside the run, 90 kHz
        /// ticks (0 for a run recorded without loss). -1 when not computed (`--fragment-gaps` not given).
        public var maxFragmentGap90k: Int64
    }
    /// A stretch without recording between two runs.
    public struct Gap: Codable, Sendable {
        /// Start of the gap (the earlier run's end), ISO 8601 UTC.
        public var from: String
        /// End of the gap (the later run's start), ISO 8601 UTC.
        public var to: String
        /// Start of the gap, µs since the epoch.
        public var fromMicros: Int64
        /// End of the gap, µs since the epoch.
        public var toMicros: Int64
        /// Length of the gap, seconds.
        public var seconds: Double
    }
    /// The camera id.
    public var camera: String
    /// Its runs, oldest first.
    public var runs: [Run]
    /// The gaps between consecutive runs.
    public var gaps: [Gap]
    /// Sum of the runs' media durations, seconds.
    public var totalSeconds: Double

    /// The human listing.
    public func render() -> String {
        var lines = ["camera \(camera): \(runs.count) run(s), \(String(format: "%.1f", totalSeconds)) s recorded"]
        var gapIndex = 0
        for (i, r) in runs.enumerated() {
            lines.append(
                "  run \(r.run)  \(r.start) → \(r.end)  \(String(format: "%8.1f", r.mediaSeconds)) s  \(r.fragments) fragments  \(r.bytes) bytes"
            )
            if i + 1 < runs.count, gapIndex < gaps.count {
                let g = gaps[gapIndex]
                gapIndex += 1
                lines.append(
                    "  gap  \(g.from) → \(g.to)  \(String(format: "%.3f", abs(g.seconds) < 0.0005 ? 0 : g.seconds)) s")
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// Read-side operations of `hallwatchctl` on a box's recording disks (all of `recorder.disks`, read as
/// one by ``RecordingLibrary``).
public enum RecordingQueries {
    /// Every configured disk, opened for reading (``HallwatchEvidence/EvidenceExport/library(_:)``).
    public static func library(_ config: HallwatchConfig) -> RecordingLibrary { EvidenceExport.library(config) }

    /// Lists the camera's runs and gaps. With `fragmentGaps`, reads every fragment's header to measure the
    /// largest hole inside each run (reads the recording, so it is slow for long ranges).
    /// - Throws: `StorageError`.
    public static func recordings(
        config: HallwatchConfig, camera: CameraID, fragmentGaps: Bool,
        warn: (String) -> Void = { _ in }
    ) throws -> RecordingsReport {
        try requireKnown(camera, config)
        let reader = try readable(config, warn: warn)
        let runs = try reader.runs(camera: camera)
        var out: [RecordingsReport.Run] = []
        var gaps: [RecordingsReport.Gap] = []
        for (i, r) in runs.enumerated() {
            var maxGap: Int64 = -1
            if fragmentGaps {
                maxGap = 0
                for seg in try reader.segments(
                    camera: camera, from: r.startUTC, to: UTCMicros(r.endUTC.micros + 1), startAtKeyframe: false)
                where seg.run == r.run {
                    for (a, b) in zip(seg.fragments, seg.fragments.dropFirst()) {
                        maxGap = max(maxGap, b.meta.start90k.ticks - a.meta.end90k.ticks)
                    }
                }
            }
            out.append(
                .init(
                    run: r.run, start: r.startUTC.iso8601, end: r.endUTC.iso8601, startMicros: r.startUTC.micros,
                    endMicros: r.endUTC.micros, mediaSeconds: r.media90k.seconds, fragments: r.fragmentCount,
                    bytes: r.payloadBytes, maxFragmentGap90k: maxGap))
            if i > 0 {
                let prev = runs[i - 1]
                gaps.append(
                    .init(
                        from: prev.endUTC.iso8601, to: r.startUTC.iso8601, fromMicros: prev.endUTC.micros,
                        toMicros: r.startUTC.micros,
                        seconds: Double(r.startUTC.micros - prev.endUTC.micros) / 1e6))
            }
        }
        return RecordingsReport(
            camera: camera.rawValue, runs: out, gaps: gaps, totalSeconds: out.reduce(0) { $0 + $1.mediaSeconds })
    }

    /// Every configured disk, opened for an operator's command (``HallwatchEvidence/EvidenceExport/readable(_:warn:)``).
    public static func readable(_ config: HallwatchConfig, warn: (String) -> Void) throws -> RecordingLibrary {
        try EvidenceExport.readable(config, warn: warn)
    }

    /// Refuses a camera that is neither configured nor recorded on the disk (``HallwatchEvidence/EvidenceExport/requireKnown(_:_:)``).
    static func requireKnown(_ camera: CameraID, _ config: HallwatchConfig) throws {
        try EvidenceExport.requireKnown(camera, config)
    }

}
