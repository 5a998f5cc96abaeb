import Foundation
import HallwatchCore
import HallwatchMedia
import Logging

/// A capture worker's data-plane connection to the recorder (``DataPlane``), as a ``FragmentSink``.
///
/// The recorder may restart (it is its own process): while it is away, frames wait in a bounded backlog
/// (``maxBacklogBytes``, oldest fragments dropped first and counted), and on reconnect the worker
/// introduces itself again and resends the init segment of the first frame's run before the backlog, so
/// the recorder can resume the run. Frames a dead recorder had not read yet were already handed to the
/// kernel: the last ``resendWindowBytes`` of sent frames are kept and sent again after a reconnect, and the
/// recorder skips what its disks already hold (so a `kill -9` of the recorder loses nothing in flight). Sends time out after ``sendTimeout`` so a wedged recorder cannot stall RTSP
/// reading (which would make the camera drop us).
public final class RecorderConnection: FragmentSink, @unchecked Sendable {
    let path: String
    let camera: CameraID
    let logger: Logger
    /// Largest backlog kept while the recorder is unreachable. Default 64 MiB (≈ 2 min at 4 Mbit/s).
    public let maxBacklogBytes: Int
    /// Longest a single send may block.
    public let sendTimeout: Duration
    /// Bytes of sent frames kept for a resend after a reconnect: twice the connection's send buffer
    /// (`SO_SNDBUF`; `net.core.wmem_default`, 208 KiB, unless changed), which bounds what a dead recorder can
    /// have left unread — a Unix stream socket charges queued bytes to the sender's buffer — and at least
    /// 256 KiB. The newest frame is always kept, whatever its size. Set at each connect.
    public private(set) var resendWindowBytes = 512 << 10

    // Touched only on the capture thread (deliver is called there, in order).
    private var socket: FileHandleFD?
    private var backlog: [DataPlaneFrame] = []
    private var backlogBytes = 0
    /// The newest init segments (two runs), to resume whichever run the backlog starts with.
    private var recentInits: [DataPlaneFrame] = []
    /// Frames sent on the current connection, newest last, at most ``resendWindowBytes`` (but the newest).
    private var sent: [DataPlaneFrame] = []
    private var sentBytes = 0
    private var nextAttemptNanos: UInt64 = 0
    /// Delay before the next connect attempt: 0.5 s while the recorder is away (a restart must be picked up at
    /// once), doubled after each connection closed within 1 s (the recorder refusing us, e.g. as a duplicate
    /// worker), at most 10 s.
    private var retryNanos: UInt64 = 500_000_000
    private var connectedAtNanos: UInt64 = 0
    private let clocks = SystemClocks()
    /// Fragments dropped because the backlog was full.
    public private(set) var droppedFragments = 0

    public init(
        path: String, camera: CameraID, logger: Logger, maxBacklogBytes: Int = 64 << 20,
        sendTimeout: Duration = .seconds(2)
    ) {
        self.path = path
        self.camera = camera
        self.logger = logger
        self.maxBacklogBytes = maxBacklogBytes
        self.sendTimeout = sendTimeout
    }

    public func deliver(_ frame: DataPlaneFrame) {
        if frame.meta.kind == .initSegment {
            recentInits.append(frame)
            if recentInits.count > 2 { recentInits.removeFirst() }
        }
        enqueue(frame)
        drain()
    }

    private func enqueue(_ frame: DataPlaneFrame) {
        backlog.append(frame)
        backlogBytes += frame.payload.count
        while backlogBytes > maxBacklogBytes, let i = backlog.firstIndex(where: { $0.meta.kind == .fragment }) {
            backlogBytes -= backlog[i].payload.count
            backlog.remove(at: i)
            droppedFragments += 1
        }
    }

    private func drain() {
        if socket == nil {
            let now = clocks.monotonicNanos()
            guard now >= nextAttemptNanos else { return }
            nextAttemptNanos = now + retryNanos
            guard connect() else { return }
            connectedAtNanos = now
        }
        while let frame = backlog.first, let s = socket {
            do {
                try s.send(frame)
                backlog.removeFirst()
                backlogBytes -= frame.payload.count
                sent.append(frame)
                sentBytes += frame.payload.count
                while sent.count > 1 && sentBytes - sent[0].payload.count >= resendWindowBytes {
                    sentBytes -= sent.removeFirst().payload.count
                }
            } catch {
                logger.warning(
                    "recorder connection lost; buffering",
                    metadata: ["camera.id": "\(camera)", "error": "\(error)", "backlog.frames": "\(backlog.count)"])
                socket = nil
                // What the recorder may not have read goes out again first; it skips what it stored.
                backlog.insert(contentsOf: sent, at: 0)
                backlogBytes += sentBytes
                sent.removeAll()
                sentBytes = 0
                let lived = clocks.monotonicNanos() - connectedAtNanos
                // Closed within a second of connecting: the recorder refused us (it closes a duplicate worker's
                // connection right after the hello). Anything longer was a working connection, e.g. to a
                // recorder that crashed, and its restart must be picked up at once.
                retryNanos = lived > 1_000_000_000 ? 500_000_000 : min(retryNanos * 2, 10_000_000_000)
                nextAttemptNanos = clocks.monotonicNanos() + retryNanos
                return
            }
        }
    }

    private func connect() -> Bool {
        do {
            let s = try UnixSocket.connect(path: path)
            var tv = timeval(tv_sec: Int(sendTimeout.components.seconds), tv_usec: 0)
            setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var sndbuf: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            if getsockopt(s.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == 0 {
                resendWindowBytes = max(256 << 10, 2 * Int(sndbuf))
            }
            try s.send(.hello(camera))
            // The recorder needs the run's init segment before any fragment of it. Fragments of a run whose
            // init segment is gone (two run changes while away) cannot be stored: dropped and counted.
            while let first = backlog.first, first.meta.kind == .fragment,
                !recentInits.contains(where: { $0.meta.run == first.meta.run })
            {
                backlogBytes -= backlog.removeFirst().payload.count
                droppedFragments += 1
            }
            if let first = backlog.first, first.meta.kind == .fragment,
                let initFrame = recentInits.last(where: { $0.meta.run == first.meta.run })
            {
                try s.send(initFrame)
            }
            socket = s
            logger.info(
                "connected to the recorder", metadata: ["camera.id": "\(camera)", "backlog.frames": "\(backlog.count)"])
            return true
        } catch {
            logger.debug("recorder not reachable", metadata: ["error": "\(error)"])
            return false
        }
    }
}
