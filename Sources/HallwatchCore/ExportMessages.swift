extension BusTopics {
    /// Retained ``ExportProgress`` of one evidence export made by `hallwatch-web`, one topic per export id;
    /// updated as the job moves and kept when it ends (the web clears it when the export is deleted).
    public func export(_ id: String) -> String { "\(root)/exports/\(id)" }
    /// Wildcard for every export.
    public var allExports: String { "\(root)/exports/+" }
}

/// Where an evidence export job stands, retained on ``BusTopics/export(_:)`` and answered by
/// `GET /api/v1/exports/{id}` (the same fields).
public struct ExportProgress: Codable, Sendable, Equatable {
    /// The job's states, in order; `done` and `failed` are final.
    public enum State: String, Codable, Sendable {
        /// Waiting for a free worker (at most one or two exports run at once).
        case queued
        /// Remuxing, hashing and signing.
        case running
        /// The bundle is complete and signed.
        case done
        /// Stopped; ``ExportProgress/error`` says why. Nothing of it is kept but this record.
        case failed
    }
    /// Export id (`x-` and 12 hex digits), also the bundle's `exportID`.
    public var id: String
    /// Where the job is.
    public var state: State
    /// Cameras, in the order asked.
    public var cameras: [CameraID]
    /// The range asked for, box UTC µs (`from` inclusive, `to` exclusive).
    public var from: UTCMicros
    /// End of the range.
    public var to: UTCMicros
    /// Why, as given.
    public var reason: String
    /// Case or incident number, as given.
    public var caseNumber: String
    /// The user who asked.
    public var requestedBy: String
    /// When it was asked for.
    public var createdAt: UTCMicros
    /// When it ended (`done` or `failed`).
    public var finishedAt: UTCMicros?
    /// 0…1, by recorded bytes remuxed.
    public var fraction: Double
    /// Files written, of ``filesTotal``.
    public var filesDone: Int
    /// Files the bundle will hold (one per recorded run and camera); 0 until the job runs.
    public var filesTotal: Int
    /// Recorded bytes of the range (the estimate the budget was checked against).
    public var recordedBytes: Int64
    /// Size of the finished bundle, bytes (0 before `done`).
    public var bundleBytes: Int64
    /// The evidence holds requested over the range (one per camera).
    public var holds: [String]
    /// Why it failed: a stable code and a message.
    public var error: ErrorEvent?

    /// A new, queued export.
    public init(
        id: String, cameras: [CameraID], from: UTCMicros, to: UTCMicros, reason: String, caseNumber: String,
        requestedBy: String, createdAt: UTCMicros, recordedBytes: Int64
    ) {
        self.id = id
        self.state = .queued
        self.cameras = cameras
        self.from = from
        self.to = to
        self.reason = reason
        self.caseNumber = caseNumber
        self.requestedBy = requestedBy
        self.createdAt = createdAt
        self.fraction = 0
        self.filesDone = 0
        self.filesTotal = 0
        self.recordedBytes = recordedBytes
        self.bundleBytes = 0
        self.holds = []
    }
}
