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
    /// A stretch without recording: between two runs, at least ``minimumGapSeconds`` long; or inside one run,
    /// at least 2 s long (``HallwatchEvidence/RecordedSpans``), where its middle was deleted (``cause``).
    public struct Gap: Codable, Sendable {
        /// The run the gap follows, or the run it is inside (``cause`` `deleted`).
        public var afterRun: UInt64
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
        /// `deleted` for a stretch gone from the middle of a run (a slot pruned by retention, or on a disk that
        /// failed: ``HallwatchEvidence/GapCause/deleted``); `nil` between runs, where this command cannot tell
        /// why (the web's recordings API says it from the box's state history).
        public var cause: String?
    }
    /// The camera id.
    public var camera: String
    /// Its runs, oldest first.
    public var runs: [Run]
    /// The gaps between consecutive runs (only those of at least ``minimumGapSeconds``) and the holes inside
    /// runs, oldest first.
    public var gaps: [Gap]

    /// Between two runs, less than this (seconds) is not a gap: a run split by a new init segment (parameter
    /// sets changed: a resolution switch, a new session) continues at once, its start placed within the
    /// arrival jitter of the frames around the split (tens of ms). Before issue 12 such splits were listed as
    /// "gaps" of 0 ms. 0.1 s.
    public static let minimumGapSeconds = 0.1
    /// Sum of the runs' media durations, seconds.
    public var totalSeconds: Double

    /// The gaps between consecutive `runs` (oldest first) of at least ``minimumGapSeconds``.
    public static func gaps(between runs: [RunSummary]) -> [Gap] {
        zip(runs, runs.dropFirst()).compactMap { prev, r in
            let seconds = Double(r.startUTC.micros - prev.endUTC.micros) / 1e6
            guard seconds >= minimumGapSeconds else { return nil }
            return Gap(
                afterRun: prev.run, from: prev.endUTC.iso8601, to: r.startUTC.iso8601, fromMicros: prev.endUTC.micros,
                toMicros: r.startUTC.micros, seconds: seconds)
        }
    }

    /// The human listing.
    public func render() -> String {
        var lines = ["camera \(camera): \(runs.count) run(s), \(String(format: "%.1f", totalSeconds)) s recorded"]
        for (i, r) in runs.enumerated() {
            lines.append(
                "  run \(r.run)  \(r.start) → \(r.end)  \(String(format: "%8.1f", r.mediaSeconds)) s  \(r.fragments) fragments  \(r.bytes) bytes"
            )
            for h in gaps where h.afterRun == r.run && h.cause == GapCause.deleted {
                lines.append(
                    "  hole \(h.from) → \(h.to)  \(String(format: "%.3f", h.seconds)) s  deleted from the run's middle (a slot pruned, or lost with a failed disk)"
                )
            }
            guard i + 1 < runs.count else { continue }
            if let g = gaps.first(where: { $0.afterRun == r.run && $0.cause == nil }) {
                lines.append("  gap  \(g.from) → \(g.to)  \(String(format: "%.3f", g.seconds)) s")
            } else {
                lines.append("       (the next run follows at once: a new init segment, no video missing)")
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
        for r in runs {
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
        }
        // A run whose span is longer than its media by a hole's length has lost a stretch of its middle: only
        // those runs' fragments are listed from the index to find where.
        var holes: [RecordingsReport.Gap] = []
        for r in runs
        where r.endUTC.micros - r.startUTC.micros - Int64(r.media90k.seconds * 1e6) >= RecordedSpans.minGapMicros {
            holes += try Self.holes(in: r, camera: camera, library: reader)
        }
        return RecordingsReport(
            camera: camera.rawValue, runs: out,
            gaps: (RecordingsReport.gaps(between: runs) + holes).sorted { $0.fromMicros < $1.fromMicros },
            totalSeconds: out.reduce(0) { $0 + $1.mediaSeconds })
    }

    /// The stretches deleted from the middle of `run` (``HallwatchEvidence/RecordedSpans``), from the index
    /// alone (no record is read).
    /// - Throws: `StorageError` from the index.
    static func holes(in run: RunSummary, camera: CameraID, library: RecordingLibrary) throws -> [RecordingsReport.Gap]
    {
        let stream = try library.stream(
            camera: camera, from: run.startUTC, to: UTCMicros(run.endUTC.micros + 1), startAtKeyframe: false)
        var out: [RecordingsReport.Gap] = []
        for part in stream.runs where part.runIDs == [run.run] {
            let fragments = part.records.compactMap { r in
                r.startUTC.map { (start: $0, end: $0.adding(MediaTime90k(r.duration90k))) }
            }.sorted { $0.start < $1.start }
            let spans = RecordedSpans.split(fragments)
            for (a, b) in zip(spans, spans.dropFirst()) {
                out.append(
                    .init(
                        afterRun: run.run, from: a.end.iso8601, to: b.start.iso8601, fromMicros: a.end.micros,
                        toMicros: b.start.micros, seconds: Double(b.start.micros - a.end.micros) / 1e6,
                        cause: GapCause.deleted))
            }
        }
        return out
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
