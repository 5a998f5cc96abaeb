import HallwatchCore

/// Why nothing was recorded between two runs of a stream, where the box knows (issue 15: "the gaps between them
/// with their cause where known"). The web's recordings API and the evidence manifest's gaps carry it; the web
/// finds it in its history of the streams' states (HallwatchWeb's `CameraHistory`).
public struct GapCause: Codable, Sendable, Equatable {
    /// `deleted` (a stretch gone from the middle of a run: pruned by retention, or on a disk that failed),
    /// `camera.offline` (its capture worker said so, or was itself down: `capture.down`), `recorder.down`
    /// (the recorder was not running) or `box.restart` (the box started inside the gap: a power cut or a reboot).
    public var cause: String
    /// What the box said at the time, e.g. `rtsp.connect: connection refused (from 10:02:03Z)`; `nil` when there
    /// is nothing more to say.
    public var detail: String?

    /// The causes, as ``cause`` spells them.
    public static let deleted = "deleted"
    public static let cameraOffline = "camera.offline"
    public static let recorderDown = "recorder.down"
    public static let boxRestart = "box.restart"

    /// A cause, with what was said.
    public init(cause: String, detail: String? = nil) {
        self.cause = cause
        self.detail = detail
    }
}

/// Where a run has holes: its fragments cut into the stretches that follow each other without a hole of
/// ``minGapMicros`` or more. A hole inside a run is a stretch deleted from its middle (``GapCause/deleted``):
/// the web's recordings API and `hallwatchctl recordings` both show it by this one rule.
public enum RecordedSpans {
    /// Less than this between one fragment's end and the next one's start is jitter, not a hole: 2 s (µs).
    public static let minGapMicros: Int64 = 2_000_000

    /// One stretch with no hole: the indices of its fragments, its start and its end (box UTC).
    public struct Span: Equatable, Sendable {
        public var indices: Range<Int>
        public var start: UTCMicros
        public var end: UTCMicros
    }

    /// Splits `fragments` (start and end on the box's UTC clock, in start order) where one starts
    /// ``minGapMicros`` or more after the latest end before it.
    public static func split(_ fragments: [(start: UTCMicros, end: UTCMicros)]) -> [Span] {
        var out: [Span] = []
        for (i, f) in fragments.enumerated() {
            if var last = out.last, f.start.micros - last.end.micros < minGapMicros {
                last.indices = last.indices.lowerBound..<(i + 1)
                last.end = max(last.end, f.end)
                out[out.count - 1] = last
            } else {
                out.append(Span(indices: i..<(i + 1), start: f.start, end: f.end))
            }
        }
        return out
    }
}
