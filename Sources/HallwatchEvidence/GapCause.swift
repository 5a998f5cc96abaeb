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
