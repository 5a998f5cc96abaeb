import Dispatch
import Foundation
import HallwatchCore
import HallwatchEvidence
import HallwatchMedia
import HallwatchStorage
import Synchronization

/// Where thumbnails come from: the newest recorded keyframe of a camera as a JPEG. Blocking.
public protocol ThumbnailSource: Sendable {
    /// The newest keyframe of `camera` as a JPEG, or `nil` when nothing of it is recorded.
    /// - Throws: `StorageError` reading the disks, `MediaError` (`media.thumbnail`) decoding or encoding.
    func thumbnail(camera: CameraID) throws -> JPEGThumbnail?
}

/// ``ThumbnailSource`` over the recording disks, read-only through HallwatchStorage's ``RecordingLibrary``:
/// the camera's newest fragment (``RecordingLibrary/lastFragment(camera:)``), the stream from the keyframe that
/// starts its GOP (every keyframe starts a fragment), decoded by HallwatchMedia's ``KeyframeThumbnail``. The
/// library is opened per call, so a disk that appears or fails later is seen.
public struct RecordingThumbnailSource: ThumbnailSource {
    let disks: [DiskLocation]
    let box: String?

    /// A disk's name and directory (`recorder.disks`).
    public struct DiskLocation: Sendable {
        public var name: String
        public var path: String
        public init(name: String, path: String) {
            self.name = name
            self.path = path
        }
    }

    public init(disks: [DiskLocation], box: String?) {
        self.disks = disks
        self.box = box
    }

    public func thumbnail(camera: CameraID) throws -> JPEGThumbnail? {
        let library = RecordingLibrary(disks: disks.map { ($0.name, $0.path) }, box: box)
        guard let last = try library.lastFragment(camera: camera) else { return nil }
        let stream = try library.stream(
            camera: camera, from: last.startUTC, to: last.startUTC.adding(micros: 1), startAtKeyframe: true)
        guard let run = stream.runs.last, run.fragmentCount > 0 else { return nil }
        return try KeyframeThumbnail.make(from: RecordingByteSource(run))
    }
}

/// The thumbnails the page shows: each camera's picture made at most once per ``maxAge`` (cached in memory,
/// failures too, so a broken recording is not decoded on every request), concurrent requests for one camera
/// sharing one decode, and at most ``maxConcurrentDecodes`` decodes at once across cameras — on threads of
/// their own (a semaphore on a Dispatch queue), never on Swift's cooperative pool.
public final class ThumbnailCache: Sendable {
    /// How long a picture is served before a new one is made: 10 s (the page refreshes that often).
    public static let maxAge: Duration = .seconds(10)
    /// Most decodes at once (each takes a core for tens of milliseconds).
    public static let maxConcurrentDecodes = 2

    enum Cached {
        case picture(JPEGThumbnail?, at: MonotonicInstant)
        case failure(String, at: MonotonicInstant)
        var at: MonotonicInstant {
            switch self {
            case .picture(_, let at), .failure(_, let at): at
            }
        }
    }
    struct State {
        var cached: [CameraID: Cached] = [:]
        var inflight: [CameraID: Task<Cached, Never>] = [:]
    }

    let source: any ThumbnailSource
    let clocks: any Clocks
    let state = Mutex(State())
    let gate = DispatchSemaphore(value: ThumbnailCache.maxConcurrentDecodes)
    let queue = DispatchQueue(label: "hallwatch.web.thumbnails", attributes: .concurrent)
    /// Decodes started, and the most that ran at once (for tests and metrics).
    let counters = Mutex((started: 0, running: 0, mostRunning: 0))

    public init(source: any ThumbnailSource, clocks: any Clocks) {
        self.source = source
        self.clocks = clocks
    }

    /// The camera's picture: cached if younger than ``maxAge``, else made now (or joined, if another request is
    /// making it). `nil` when nothing of the camera is recorded.
    /// - Throws: ``ThumbnailError`` with the reason the picture could not be made (cached as long as a picture).
    public func thumbnail(camera: CameraID) async throws -> JPEGThumbnail? {
        let now = clocks.monotonicNow()
        let task: Task<Cached, Never> = state.withLock { s in
            if let c = s.cached[camera], now - c.at < Self.maxAge { return Task { c } }
            if let t = s.inflight[camera] { return t }
            let t = Task { await self.make(camera) }
            s.inflight[camera] = t
            return t
        }
        switch await task.value {
        case .picture(let p, _): return p
        case .failure(let reason, _): throw ThumbnailError(reason: reason)
        }
    }

    /// How many decodes ran, and the most at once.
    public var decodeCounts: (started: Int, mostAtOnce: Int) {
        counters.withLock { ($0.started, $0.mostRunning) }
    }

    func make(_ camera: CameraID) async -> Cached {
        let result: Cached = await withCheckedContinuation { c in
            queue.async { c.resume(returning: self.decode(camera)) }
        }
        state.withLock { s in
            s.cached[camera] = result
            s.inflight[camera] = nil
        }
        return result
    }
}

extension ThumbnailCache {
    /// One decode on a Dispatch thread, after the gate lets it in.
    func decode(_ camera: CameraID) -> Cached {
        gate.wait()
        counters.withLock {
            $0.started += 1
            $0.running += 1
            $0.mostRunning = max($0.mostRunning, $0.running)
        }
        defer {
            counters.withLock { $0.running -= 1 }
            gate.signal()
        }
        do {
            return .picture(try source.thumbnail(camera: camera), at: clocks.monotonicNow())
        } catch {
            return .failure("\(error)", at: clocks.monotonicNow())
        }
    }
}

/// A thumbnail that could not be made; the reason is logged, the client gets 503.
public struct ThumbnailError: Error, Sendable, CustomStringConvertible {
    /// Why (the storage or media error's text).
    public var reason: String
    public var description: String { reason }
}
