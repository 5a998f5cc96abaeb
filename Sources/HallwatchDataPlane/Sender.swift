import Foundation
import HallwatchCore
import Logging

/// The capture worker's end of the data plane (`Protocol.md`, steps P2–P5): sends a camera's segments to
/// the recorder and survives the recorder's restarts without losing what it had sent.
///
/// - The recorder may restart (it is its own process): while it is away, segments wait in a bounded
///   backlog (``maxBacklogBytes``, oldest fragments dropped first and counted in ``droppedFragments``).
/// - P4. On reconnect the sender says hello again and resends the init segment of the first backlog
///   segment's run, so the recorder can resume the run.
/// - P5. Segments a dead recorder had not read were already handed to the kernel: the last
///   ``resendWindowBytes`` of sent segments are kept and go out again first after a reconnect; the
///   recorder skips what its disks already hold (``ResendFilter``), so a `kill -9` of the recorder loses
///   nothing in flight.
/// - Sends time out after ``sendTimeout``, so a wedged recorder cannot stall RTSP reading (which would
///   make the camera drop us).
///
/// Not thread-safe: ``deliver(_:)`` is called on one thread, in order (the capture thread).
public final class DataPlaneSender: @unchecked Sendable {
    let camera: CameraID
    let logger: Logger
    let clocks: any Clocks
    /// Opens a new connection to the recorder (a Unix stream socket; a `socketpair` end in tests).
    let connectToRecorder: () throws -> FileHandleFD
    /// Largest backlog kept while the recorder is unreachable, bytes. Default 64 MiB (≈ 2 min at 4 Mbit/s).
    public let maxBacklogBytes: Int
    /// Longest a single send may block.
    public let sendTimeout: Duration
    /// Bytes of sent segments kept for a resend after a reconnect (P5): twice the connection's send buffer
    /// (`SO_SNDBUF`; `net.core.wmem_default`, 208 KiB, unless changed), which bounds what a dead recorder can
    /// have left unread — a Unix stream socket charges queued bytes to the sender's buffer — and at least
    /// 256 KiB. The newest segment is always kept, whatever its size. Set at each connect.
    public private(set) var resendWindowBytes = 512 << 10
    /// Fragments dropped because the backlog was full (or their run's init segment was gone).
    public private(set) var droppedFragments = 0

    private var socket: FileHandleFD?
    private var backlog: [MediaSegment] = []
    private var backlogBytes = 0
    /// The newest init segments (two runs), to resume whichever run the backlog starts with.
    private var recentInits: [MediaSegment] = []
    /// Segments sent on the current connection, newest last, at most ``resendWindowBytes`` (but the newest).
    private var sent: [MediaSegment] = []
    private var sentBytes = 0
    private var nextAttemptNanos: UInt64 = 0
    /// Delay before the next connect attempt: ``Self/retryNanos`` while the recorder is away (a restart
    /// must be picked up at once), doubled after each connection closed within 1 s (the recorder refusing
    /// us, e.g. as a duplicate worker), at most 10 s.
    private var retryNanos: UInt64 = DataPlaneSender.retryNanos
    private var connectedAtNanos: UInt64 = 0

    /// Delay between connect attempts while the recorder is away, ns (0.5 s).
    public static let retryNanos: UInt64 = 500_000_000

    /// A sender to the recorder's socket at `path`.
    public convenience init(
        path: String, camera: CameraID, logger: Logger, clocks: any Clocks = SystemClocks(),
        maxBacklogBytes: Int = 64 << 20, sendTimeout: Duration = .seconds(2)
    ) {
        self.init(
            camera: camera, logger: logger, clocks: clocks, maxBacklogBytes: maxBacklogBytes, sendTimeout: sendTimeout
        ) {
            try UnixSocket.connect(path: path)
        }
    }

    /// A sender whose connections come from `connect` (tests hand it `socketpair` ends).
    public init(
        camera: CameraID, logger: Logger, clocks: any Clocks, maxBacklogBytes: Int = 64 << 20,
        sendTimeout: Duration = .seconds(2),
        connect: @escaping () throws -> FileHandleFD
    ) {
        self.camera = camera
        self.logger = logger
        self.clocks = clocks
        self.maxBacklogBytes = maxBacklogBytes
        self.sendTimeout = sendTimeout
        self.connectToRecorder = connect
    }

    /// Whether a connection to the recorder is open now.
    public var isConnected: Bool { socket != nil }
    /// Segments waiting for the recorder.
    public var backlogCount: Int { backlog.count }

    /// Queues `segment` and sends what the recorder can take now; never blocks longer than ``sendTimeout``
    /// per segment, never throws (a lost recorder is retried at the next call after the retry delay).
    public func deliver(_ segment: MediaSegment) {
        if segment.meta.kind == .initSegment {
            recentInits.append(segment)
            if recentInits.count > 2 { recentInits.removeFirst() }
        }
        enqueue(segment)
        drain()
    }

    /// P7. Whether the recorder said, on the current connection, that someone watches this camera: the
    /// newest ``WireKind/watch`` frame it sent (none yet, or no connection: no). Reads what the recorder sent
    /// without blocking (one `recv` with `MSG_DONTWAIT`); the capture thread asks once per frame.
    public var wantsLiveChunks: Bool {
        readControl()
        return watched
    }

    private var watched = false
    /// Bytes of a watch frame read so far (a frame may arrive in pieces).
    private var control: [UInt8] = []

    /// P7. Takes in the watch frames the recorder sent. Anything else from the recorder breaks the protocol:
    /// it is ignored and the camera counts as unwatched (chunks are only ever an extra).
    private func readControl() {
        guard let s = socket else { return }
        var buffer = [UInt8](repeating: 0, count: 4 * DataPlane.headerBytes)
        while true {
            let n = recv(s.fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            guard n > 0 else { break }  // nothing more now; an end or error is noticed by the next send
            control += buffer[0..<n]
        }
        while control.count >= DataPlane.headerBytes {
            guard let h = try? DataPlaneMessage.decodeHeader(Array(control[0..<DataPlane.headerBytes])),
                h.kind == .watch, h.payloadBytes == 0
            else {
                logger.warning("the recorder sent something other than a watch frame; ignored")
                control.removeAll()
                watched = false
                return
            }
            control.removeFirst(DataPlane.headerBytes)
            if watched != h.meta.keyframe {
                logger.info(
                    h.meta.keyframe ? "someone watches: live chunks on" : "nobody watches: live chunks off",
                    metadata: ["camera.id": "\(camera)"])
            }
            watched = h.meta.keyframe
        }
    }

    /// P6. Sends a per-frame chunk for the live tap if the recorder is connected and nothing waits before it;
    /// otherwise drops it (chunks are never backlogged or resent: stale live video is worth nothing, and the
    /// fragments carry the same frames to the disks). Never blocks longer than ``sendTimeout``.
    public func deliverChunk(_ chunk: MediaSegment) {
        guard let s = socket, backlog.isEmpty else { return }
        do { try s.send(.chunk(chunk)) } catch { lost(error) }
    }

    private func enqueue(_ segment: MediaSegment) {
        backlog.append(segment)
        backlogBytes += segment.payload.count
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
        while let segment = backlog.first, let s = socket {
            do {
                try s.send(.segment(segment))
                backlog.removeFirst()
                backlogBytes -= segment.payload.count
                sent.append(segment)
                sentBytes += segment.payload.count
                while sent.count > 1 && sentBytes - sent[0].payload.count >= resendWindowBytes {
                    sentBytes -= sent.removeFirst().payload.count
                }
            } catch {
                lost(error)
                return
            }
        }
    }

    /// The connection failed: what the recorder may not have read goes back to the head of the backlog (P5).
    private func lost(_ error: any Error) {
        logger.warning(
            "recorder connection lost; buffering",
            metadata: ["camera.id": "\(camera)", "error": "\(error)", "backlog.frames": "\(backlog.count)"])
        socket = nil
        // P7. A new connection starts unwatched; the recorder says so again if someone watches.
        watched = false
        control.removeAll()
        // P5. What the recorder may not have read goes out again first; it skips what it stored.
        backlog.insert(contentsOf: sent, at: 0)
        backlogBytes += sentBytes
        sent.removeAll()
        sentBytes = 0
        let lived = clocks.monotonicNanos() &- connectedAtNanos
        // Closed within a second of connecting: the recorder refused us (it closes a duplicate worker's
        // connection right after the hello). Anything longer was a working connection, e.g. to a
        // recorder that crashed, and its restart must be picked up at once.
        retryNanos = lived > 1_000_000_000 ? Self.retryNanos : min(retryNanos * 2, 10_000_000_000)
        nextAttemptNanos = clocks.monotonicNanos() + retryNanos
    }

    private func connect() -> Bool {
        do {
            let s = try connectToRecorder()
            var tv = timeval(tv_sec: Int(sendTimeout.components.seconds), tv_usec: 0)
            setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var sndbuf: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            if getsockopt(s.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &len) == 0 {
                resendWindowBytes = max(256 << 10, 2 * Int(sndbuf))
            }
            try s.send(.hello(camera))  // P2
            // P4. The recorder needs the run's init segment before any fragment of it. Fragments of a run whose
            // init segment is gone (two run changes while away) cannot be stored: dropped and counted.
            while let first = backlog.first, first.meta.kind == .fragment,
                !recentInits.contains(where: { $0.meta.run == first.meta.run })
            {
                backlogBytes -= backlog.removeFirst().payload.count
                droppedFragments += 1
            }
            if let first = backlog.first, first.meta.kind == .fragment,
                let initSegment = recentInits.last(where: { $0.meta.run == first.meta.run })
            {
                try s.send(.segment(initSegment))
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
