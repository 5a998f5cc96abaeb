import HallwatchCore
import HallwatchDataPlane
import HallwatchEvidence
import HallwatchStorage

/// `GET /api/v1/cameras/{id}/runs?from=&to=`: what is recorded of a camera over a range, from the index (one
/// init record read per run for its codec). Times are RFC 3339 UTC with milliseconds, durations seconds.
/// Built on each request, so the newest run grows as the page polls.
struct RecordingsView: Codable, Sendable, Equatable {
    /// One run: what one capture session recorded without a break (a reconnect or a codec change starts another).
    struct Run: Codable, Sendable, Equatable {
        /// Run id (decimal: UTC µs at which the capture worker started it); also the id of its init segment.
        var id: String
        /// First fragment's start and last fragment's end in the range.
        var start: String
        var end: String
        /// RFC 6381 codec string and picture size, from the run's init segment (`null` when it names no codec).
        var codec: String?
        var width: Int?
        var height: Int?
        var fragments: Int
        var bytes: Int64
    }
    /// Time between two runs with nothing recorded.
    struct Gap: Codable, Sendable, Equatable {
        var from: String
        var to: String
        var seconds: Double
        /// Why, where known (``GapCause``): `deleted` for a stretch gone from the middle of a run (pruned by
        /// retention, or on a disk that failed); between runs, from the streams' state history
        /// (``CameraHistory``): `camera.offline`, `recorder.down` or `box.restart`; `null` when the box does not
        /// know.
        var cause: String?
        /// What the box said then, e.g. `rtsp.connect: connection refused (from 2026-12-07T10:02:03.000Z)`.
        var detail: String?
    }
    /// A run whose codec or size differs from the one before it.
    struct CodecChange: Codable, Sendable, Equatable {
        var at: String
        var run: String
        var from: String?
        var to: String?
    }
    /// An evidence hold overlapping the range.
    struct Hold: Codable, Sendable, Equatable {
        var id: String
        var from: String
        var to: String
        var reason: String
        var caseID: String
        var released: Bool
    }
    /// One stored fragment (a scrub point when it is a keyframe).
    struct Fragment: Codable, Sendable, Equatable {
        var start: String
        var duration: Double
        var keyframe: Bool
        var bytes: Int64
        /// The run, hence init segment, it decodes with.
        var initId: String
    }
    /// One init segment (`ftyp`+`moov`).
    struct InitSegment: Codable, Sendable, Equatable {
        var id: String
        var bytes: Int64
        var codec: String?
    }

    var camera: String
    var from: String
    var to: String
    var runs: [Run]
    var gaps: [Gap]
    var codecChanges: [CodecChange]
    var holds: [Hold]
    /// Empty, with ``fragmentsOmitted`` true, for ranges over an hour (ask for a narrower range).
    var fragments: [Fragment]
    var fragmentsOmitted: Bool
    var initSegments: [InitSegment]

    /// The view of `camera` over `[from, to)`; `cause` says why nothing was recorded between two runs, where known.
    /// - Throws: `StorageError` from the index or an init record.
    static func make(
        library: RecordingLibrary, camera: CameraID, from: UTCMicros, to: UTCMicros,
        cause: (UTCMicros, UTCMicros) -> GapCause? = { _, _ in nil }
    ) throws -> RecordingsView {
        let stream = try library.stream(camera: camera, from: from, to: to, startAtKeyframe: false)
        let listFragments = to.micros - from.micros <= Playback.maxFragmentListMicros
        var view = RecordingsView(
            camera: camera.rawValue, from: from.iso8601, to: to.iso8601, runs: [], gaps: [], codecChanges: [],
            holds: [], fragments: [], fragmentsOmitted: !listFragments, initSegments: [])
        var previous: (end: UTCMicros, info: InitSegmentInfo?)?
        for run in stream.runs {
            let records = run.records
            guard let initRecord = records.first, initRecord.isInitSegment else { continue }
            let fragments = records.dropFirst().filter { $0.startUTC != nil }.sorted { $0.startUTC! < $1.startUTC! }
            guard !fragments.isEmpty else { continue }
            let info = InitSegmentInfo(initSegment: try run.read(from: 0, count: Int(initRecord.bytes)))
            let id = String(initRecord.run)
            view.initSegments.append(InitSegment(id: id, bytes: initRecord.bytes, codec: info?.codec))
            // A run is shown as the spans it still has: a stretch deleted from its middle (a slot pruned, or on
            // a disk that failed) is a gap, never drawn as recorded.
            let spans = RecordedSpans.split(
                fragments.map { ($0.startUTC!, $0.startUTC!.adding(MediaTime90k($0.duration90k))) })
            for span in spans {
                let part = fragments[span.indices]
                view.runs.append(
                    Run(
                        id: id, start: span.start.iso8601, end: span.end.iso8601, codec: info?.codec,
                        width: info?.width, height: info?.height, fragments: part.count,
                        bytes: part.reduce(0) { $0 + $1.bytes }))
                if let previous {
                    if span.start.micros - previous.end.micros >= RecordedSpans.minGapMicros {
                        let why =
                            span.indices.lowerBound > 0
                            ? GapCause(cause: GapCause.deleted) : cause(previous.end, span.start)
                        view.gaps.append(
                            Gap(
                                from: previous.end.iso8601, to: span.start.iso8601,
                                seconds: Double(span.start.micros - previous.end.micros) / 1e6,
                                cause: why?.cause, detail: why?.detail))
                    }
                    if previous.info != info {
                        view.codecChanges.append(
                            CodecChange(at: span.start.iso8601, run: id, from: previous.info?.codec, to: info?.codec))
                    }
                }
                previous = (span.end, info)
            }
            if listFragments {
                view.fragments += fragments.map {
                    Fragment(
                        start: $0.startUTC!.iso8601, duration: Double($0.duration90k) / 90_000, keyframe: $0.keyframe,
                        bytes: $0.bytes, initId: id)
                }
            }
        }
        view.holds = try library.holds(camera: camera).filter { $0.from < to && $0.to > from }.map {
            Hold(
                id: $0.id, from: $0.from.iso8601, to: $0.to.iso8601, reason: $0.reason, caseID: $0.caseID,
                released: $0.releasedAt != nil)
        }
        return view
    }
}
