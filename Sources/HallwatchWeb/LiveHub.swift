import Foundation
import HallwatchCore
import HallwatchDataPlane
import Logging
import Synchronization

/// The web's side of the live tap: one subscription to the recorder's live socket per camera, however many
/// browsers watch it, fanned out to each browser through its own bounded ``HallwatchDataPlane/LiveQueue``
/// (HallwatchDataPlane's `Protocol.md`, L6). A browser that falls behind — 4 MiB queued, or media queued for
/// more than 0.5 s (a link slower than the stream) — is skipped to the next keyframe and told (`drop`); the
/// recorder never sees it.
public final class LiveHub: Sendable {
    /// The recorder's live socket (``HallwatchDataPlane/LiveWire/socketPath(dataPlaneSocket:)``).
    public let socketPath: String
    let feeds = Mutex<[CameraID: LiveFeed]>([:])
    let logger: Logger
    /// Each browser's queue bound, bytes (default 4 MiB: 8 s at 4 Mbit/s).
    public let viewerQueueBytes: Int
    /// Each browser's queue bound in time, µs of the recorder's clock between the oldest media queued and the
    /// newest: 0.5 s. Measured through a relay at half the 4 Mbit/s camera's rate, the byte bound alone let the
    /// delay grow past 17 s in 30 s with no `drop` (`Tests/Browser/slow_link.py`).
    public static let viewerQueueLagMicros: Int64 = 500_000

    /// A hub reading the live socket at `socketPath`.
    public init(socketPath: String, viewerQueueBytes: Int = 4 << 20, logger: Logger) {
        self.socketPath = socketPath
        self.viewerQueueBytes = viewerQueueBytes
        self.logger = logger
    }

    /// A new viewer of `camera`: its feed (started if needed) and its queue, which starts with the init
    /// segment and the media since the most recent keyframe the web has.
    func subscribe(_ camera: CameraID) -> (LiveFeed, LiveQueue) {
        let feed = feeds.withLock { f in
            if let x = f[camera] { return x }
            let x = LiveFeed(camera: camera, socketPath: socketPath, queueBytes: viewerQueueBytes, logger: logger)
            f[camera] = x
            return x
        }
        let queue = feed.fanout.subscribe()
        feed.ensureRunning()
        return (feed, queue)
    }

    /// Viewers now, per camera (for the page and the metrics).
    public func viewerCounts() -> [CameraID: Int] {
        feeds.withLock { $0.mapValues { $0.fanout.viewerCount } }
    }
}

/// One camera's subscription to the recorder: a thread reading the live socket while anyone watches (and
/// 30 s after the last viewer left, so a reload finds it warm), reconnecting every 0.5 s when the recorder
/// is away. What a reconnect sends again (the init segment and the media since the keyframe) is recognised by
/// run and media time and not handed to the viewers twice (by media time, not sequence number: fragments and
/// per-frame chunks of one run are numbered apart).
final class LiveFeed: Sendable {
    let camera: CameraID
    let socketPath: String
    let logger: Logger
    let fanout: LiveFanout
    let running = Atomic<Bool>(false)
    /// The newest init segment's run and bytes, and the newest unit's run and start (90 kHz), handed on.
    let seen = Mutex<(initRun: UInt64, initBytes: [UInt8], run: UInt64, start90k: Int64)>((0, [], 0, -1))
    /// How long the subscription outlives its last viewer.
    static let lingerNanos: UInt64 = 30_000_000_000

    init(camera: CameraID, socketPath: String, queueBytes: Int, logger: Logger) {
        self.camera = camera
        self.socketPath = socketPath
        self.logger = logger
        fanout = LiveFanout(queueBytes: queueBytes, queueLagMicros: LiveHub.viewerQueueLagMicros)
    }

    func ensureRunning() {
        guard running.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
        else { return }
        let t = Thread { [self] in readLoop() }
        t.name = "web-live-\(camera)"
        t.start()
    }

    /// Whether `event` is new (not sent again by a reconnect); records it.
    func isNew(_ event: LiveEvent) -> Bool {
        seen.withLock { s in
            switch event {
            case .initSegment(let u):
                if u.segment.meta.run == s.initRun && u.segment.payload == s.initBytes { return false }
                s.initRun = u.segment.meta.run
                s.initBytes = u.segment.payload
                return true
            case .media(let u):
                let m = u.segment.meta
                if m.run == s.run && m.start90k.ticks <= s.start90k { return false }
                s.run = m.run
                s.start90k = m.start90k.ticks
                return true
            case .drop: return true
            }
        }
    }

    func readLoop() {
        var idleSince: UInt64?
        while true {
            let now = DispatchTime.now().uptimeNanoseconds
            if fanout.viewerCount == 0 {
                if let since = idleSince, now - since > Self.lingerNanos {
                    running.store(false, ordering: .sequentiallyConsistent)
                    // A viewer that came in meanwhile: keep going if nobody else took over.
                    guard fanout.viewerCount > 0,
                        running.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing)
                            .exchanged
                    else { return }
                }
                idleSince = idleSince ?? now
            } else {
                idleSince = nil
            }
            do {
                let conn = try UnixSocket.connect(path: socketPath)
                try conn.send(.hello(camera))  // L2
                var tv = timeval(tv_sec: 10, tv_usec: 0)
                setsockopt(conn.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                while true {
                    var p = pollfd(fd: conn.fd, events: Int16(POLLIN), revents: 0)
                    if poll(&p, 1, 1000) == 0 {
                        if fanout.viewerCount == 0 {
                            let t = DispatchTime.now().uptimeNanoseconds
                            idleSince = idleSince ?? t
                            if t - idleSince! > Self.lingerNanos { break }
                        } else {
                            idleSince = nil
                        }
                        continue
                    }
                    guard let event = try conn.receiveLive() else { break }
                    switch event {
                    case .initSegment(let u), .media(let u): if isNew(event) { fanout.publish(u) }
                    case .drop: continue  // the viewers' own queues skip them to a keyframe by themselves
                    }
                }
            } catch {
                logger.debug("live tap not reachable", metadata: ["camera.id": "\(camera)", "error": "\(error)"])
            }
            usleep(500_000)
        }
    }
}
