import HallwatchCore
import Synchronization

/// The recorder's end of one data-plane connection (`Protocol.md`, steps P2, P3 and P5).
///
/// ```swift
/// let receiver = try DataPlaneReceiver(conn, isKnown: isKnown, cameras: connected)   // P2
/// var filter = ResendFilter(storedEnd: pool.storedEnd(of:))
/// while let segment = try receiver.next() {                                            // P3
///     guard filter.admit(segment, of: receiver.camera) else { continue }               // P5
///     try lane.deliver(segment)
/// }
/// ```
/// The camera is released (for a new connection) when the receiver is deinitialised.
public final class DataPlaneReceiver {
    /// The camera this connection speaks for (its hello).
    public let camera: CameraID
    let conn: FileHandleFD
    let cameras: ConnectedCameras

    /// P2. Reads the hello and claims its camera.
    /// - Parameters:
    ///   - isKnown: Whether the camera is configured (the recorder may re-read its configuration here).
    ///   - cameras: The cameras connected now: a second connection for one of them is refused.
    /// - Throws: ``DataPlaneError`` `dataplane.protocol` (no hello first, or the stream ended before it),
    ///   `.unknownCamera`, `.duplicateCamera`, or a framing code; ``HallwatchCore/SystemError`` for I/O.
    public init(_ conn: FileHandleFD, isKnown: (CameraID) -> Bool, cameras: ConnectedCameras) throws {
        guard case .hello(let id)? = try conn.receiveMessage() else {
            throw DataPlaneError(.protocol, "the first frame must be a hello naming a camera")
        }
        guard isKnown(id) else { throw DataPlaneError(.unknownCamera, "camera '\(id)' is not in the configuration") }
        guard cameras.claim(id) else {
            throw DataPlaneError(
                .duplicateCamera, "camera '\(id)' already has a capture worker connected; refusing a second one")
        }
        self.camera = id
        self.conn = conn
        self.cameras = cameras
    }

    deinit { cameras.release(camera) }

    /// P3. The next init segment or fragment; `nil` when the capture worker closed the connection.
    /// - Throws: ``DataPlaneError`` `dataplane.protocol` for a second hello, or a framing code;
    ///   ``HallwatchCore/SystemError`` for I/O (a reset connection, a shutdown).
    public func next() throws -> MediaSegment? {
        while let unit = try nextUnit() {
            if case .segment(let s) = unit { return s }
        }
        return nil
    }

    /// What a capture worker sends after its hello: a segment to store, or a chunk for the live tap only.
    public enum Unit: Sendable {
        /// P3: an init segment or fragment, to be stored.
        case segment(MediaSegment)
        /// P6: a per-frame chunk, for the live tap only.
        case chunk(MediaSegment)
    }

    /// P3 and P6. The next segment or chunk; `nil` when the capture worker closed the connection.
    /// - Throws: as ``next()``.
    public func nextUnit() throws -> Unit? {
        switch try conn.receiveMessage() {
        case nil: return nil
        case .hello?: throw DataPlaneError(.protocol, "a second hello")
        case .segment(let s)?: return .segment(s)
        case .chunk(let s)?: return .chunk(s)
        }
    }
}

/// The cameras with a capture worker connected now: one connection per camera. A second worker for the
/// same camera (a duplicated unit, a second demo) is refused, never interleaved into the first one's runs.
public final class ConnectedCameras: Sendable {
    private let ids = Mutex<Set<CameraID>>([])
    public init() {}
    /// Claims `id`; `false` when another connection holds it.
    public func claim(_ id: CameraID) -> Bool { ids.withLock { $0.insert(id).inserted } }
    /// Releases `id` (when its connection ends).
    public func release(_ id: CameraID) { _ = ids.withLock { $0.remove(id) } }
}

/// P5 at the recorder: a reconnecting capture worker sends its last segments again (those a dead recorder
/// may not have read); fragments of a run that end at or before what the disks already hold for it are
/// skipped, so nothing is stored twice and nothing is lost. Init segments always pass (they open the run
/// again on the disk being written).
public struct ResendFilter {
    /// Per camera, the run and media end (90 kHz ticks) of the newest fragment stored, or `nil`.
    let storedEnd: (CameraID) -> (run: UInt64, end90k: Int64)?
    /// Fragments skipped since the last ``takeSkipped()``.
    public private(set) var skipped = 0

    public init(storedEnd: @escaping (CameraID) -> (run: UInt64, end90k: Int64)?) { self.storedEnd = storedEnd }

    /// Whether `segment` of `camera` is to be stored; counts the ones that are not.
    public mutating func admit(_ segment: MediaSegment, of camera: CameraID) -> Bool {
        if segment.meta.kind == .fragment, let end = storedEnd(camera), end.run == segment.meta.run,
            segment.meta.start90k.ticks < end.end90k
        {
            skipped += 1
            return false
        }
        return true
    }

    /// The number of fragments skipped since the last call, and resets it (for one log line per resend).
    public mutating func takeSkipped() -> Int {
        defer { skipped = 0 }
        return skipped
    }
}
