import Foundation
import HallwatchCore
import Logging
import Synchronization

/// The live tap's frames (`Protocol.md`, L1 and L4): the data plane's 48-byte header and payload, with two
/// differences — the kind may be ``WireKind/drop``, and the header's last four bytes (offset 44, reserved on
/// the data plane) carry the arrival: milliseconds from the segment's UTC anchor to the recorder's receipt.
public enum LiveWire {
    /// The group the live socket is given when the box has it (the web's supplementary group): capture
    /// workers share the `hallwatch` group with the recorder and must not watch.
    public static let groupName = "hallwatch-live"

    /// The path of the live socket beside the data-plane socket `dataPlaneSocket`: `recorder.sock` →
    /// `recorder-live.sock` in the same directory (so it lives wherever the configuration puts the run
    /// directory, and needs no key of its own).
    public static func socketPath(dataPlaneSocket: String) -> String {
        let base = dataPlaneSocket.hasSuffix(".sock") ? String(dataPlaneSocket.dropLast(5)) : dataPlaneSocket
        return base + "-live.sock"
    }

    /// The header and payload of `event`.
    public static func encode(_ event: LiveEvent) -> (header: [UInt8], payload: [UInt8]) {
        switch event {
        case .initSegment(let u), .media(let u):
            var header = (u.isChunk ? DataPlaneMessage.chunk(u.segment) : .segment(u.segment)).encodeHeader()
            let arrivalMs = max(0, min(Int64(UInt32.max), (u.receivedMicros - u.segment.meta.utc.micros) / 1000))
            withUnsafeBytes(of: UInt32(arrivalMs).littleEndian) { header.replaceSubrange(44..<48, with: $0) }
            return (header, u.segment.payload)
        case .drop(let skipped):
            var w = ByteWriter(capacity: DataPlane.headerBytes)
            w.u32(DataPlane.magic)
            w.u8(WireKind.drop.rawValue)
            w.u8(0)
            w.u16(DataPlane.version)
            w.u64(0)
            w.u32(UInt32(clamping: skipped))
            for _ in 0..<7 { w.u32(0) }  // duration, start, UTC anchor, payload length 0, arrival
            assert(w.bytes.count == DataPlane.headerBytes)
            return (w.bytes, [])
        }
    }
}

extension FileHandleFD {
    /// L4. Sends one live event (header and payload in one `sendmsg` where the socket takes it).
    /// - Throws: ``HallwatchCore/SystemError`` (`EPIPE` when the subscriber is gone, `EAGAIN` after `SO_SNDTIMEO`).
    public func sendLive(_ event: LiveEvent) throws {
        let (header, payload) = LiveWire.encode(event)
        try header.withUnsafeBytes { h in try payload.withUnsafeBytes { try writeAll(h, $0) } }
    }

    /// L4 at the subscriber: the next live event; `nil` when the recorder closed the connection.
    /// - Throws: ``DataPlaneError`` for a malformed frame or a hello, ``HallwatchCore/SystemError`` for I/O.
    public func receiveLive() throws -> LiveEvent? {
        guard let (bytes, header, payload) = try receiveFrame() else { return nil }
        let arrivalMs = Int64(bytes[44]) | Int64(bytes[45]) << 8 | Int64(bytes[46]) << 16 | Int64(bytes[47]) << 24
        let received = header.meta.utc.micros + arrivalMs * 1000
        switch header.kind {
        case .hello, .watch: throw DataPlaneError(.protocol, "a \(header.kind) frame from the live tap")
        case .drop: return .drop(skipped: Int(header.meta.sequence))
        case .initSegment:
            return .initSegment(LiveUnit(MediaSegment(meta: header.meta, payload: payload), receivedMicros: received))
        case .fragment, .chunk:
            return .media(
                LiveUnit(
                    MediaSegment(meta: header.meta, payload: payload), receivedMicros: received,
                    isChunk: header.kind == .chunk))
        }
    }
}

/// The recorder's live tap (`Protocol.md`, L1–L6): a second Unix socket where a subscriber (the web process)
/// names a camera and receives its current init segment, the media since the most recent keyframe, then new
/// media as the recorder reads it off the data plane — before it is written or fsynced. One ``LiveFanout``
/// per camera, shared by every subscriber; ``publish(_:of:receivedMicros:)`` never waits for one.
///
/// Threads: one accepting; one per subscriber, writing its queue to its socket (blocking, `SO_SNDTIMEO`
/// 10 s) and ending when the subscriber goes.
public final class LiveTap: Sendable {
    let fanouts = Mutex<[CameraID: LiveFanout]>([:])
    let connections = Mutex<[Int32: FileHandleFD]>([:])
    let stopping = Atomic<Bool>(false)
    let logger: Logger
    /// Each subscriber's queue bound, bytes.
    public let queueBytes: Int

    /// A tap whose subscribers' queues hold up to `queueBytes`.
    public init(queueBytes: Int = 8 << 20, logger: Logger) {
        self.queueBytes = queueBytes
        self.logger = logger
    }

    /// The fanout of `camera`, made on first use.
    public func fanout(for camera: CameraID) -> LiveFanout {
        fanouts.withLock { f in
            if let x = f[camera] { return x }
            let x = LiveFanout(queueBytes: queueBytes)
            f[camera] = x
            return x
        }
    }

    /// Per camera, the run whose per-frame chunks flow and when the last one arrived (µs).
    let chunking = Mutex<[CameraID: (run: UInt64, lastMicros: Int64)]>([:])
    /// Cameras whose chunks stopped mid-run: their fragments go to the tap again from the next keyframe on
    /// (the fragment in between overlaps what the chunks carried).
    let resumingFragments = Mutex<Set<CameraID>>([])
    /// How long after its last chunk a camera's fragments go to the live tap again, µs (2 s).
    static let chunkTimeoutMicros: Int64 = 2_000_000

    /// L3. Hands a segment the recorder just read to the camera's ring and subscribers — unless the same frames
    /// flow as per-frame chunks (P6), in which case only its init segments are.
    public func publish(_ segment: MediaSegment, of camera: CameraID, receivedMicros: Int64) {
        if segment.meta.kind == .fragment {
            let chunked = chunking.withLock { c in
                guard let x = c[camera], x.run == segment.meta.run else { return false }
                if receivedMicros - x.lastMicros < Self.chunkTimeoutMicros { return true }
                c[camera] = nil
                resumingFragments.withLock { _ = $0.insert(camera) }
                return false
            }
            if chunked { return }
            let waiting = resumingFragments.withLock { r in
                if segment.meta.keyframe { r.remove(camera) }
                return r.contains(camera)
            }
            if waiting { return }
        } else {
            resumingFragments.withLock { _ = $0.remove(camera) }
        }
        fanout(for: camera).publish(LiveUnit(segment, receivedMicros: receivedMicros))
    }

    /// P7. Per camera, its capture worker's data-plane connection and what it was last told.
    let workers = Mutex<[CameraID: (conn: FileHandleFD, told: Bool)]>([:])

    /// P7. The capture worker of `camera` connected on `conn`: it is told at once whether anyone watches, and
    /// again whenever that changes, until ``detachWorker(_:_:)``.
    public func attachWorker(_ camera: CameraID, _ conn: FileHandleFD) {
        workers.withLock { $0[camera] = (conn, false) }
        watchChanged(camera)
    }

    /// P7. The worker's connection `conn` ended (a newer connection for the camera is left alone).
    public func detachWorker(_ camera: CameraID, _ conn: FileHandleFD) {
        workers.withLock { w in
            if let x = w[camera], x.conn === conn { w[camera] = nil }
        }
    }

    /// P7. Tells `camera`'s worker whether anyone watches now, if that is news. The frame is sent without
    /// blocking (`MSG_DONTWAIT`); a worker that does not read them (its buffer full) is simply not told —
    /// the recorder never waits for a capture worker here either.
    func watchChanged(_ camera: CameraID) {
        let watched = fanout(for: camera).viewerCount > 0
        workers.withLock { w in
            guard var x = w[camera], x.told != watched else { return }
            let frame = DataPlane.watchFrame(watched)
            let n = frame.withUnsafeBytes {
                Glibc.send(x.conn.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
            if n == frame.count {
                x.told = watched
                w[camera] = x
            }
        }
    }

    /// L3 and P6. Hands a per-frame chunk to the camera's ring and subscribers. The switch from fragments to
    /// chunks happens at a keyframe chunk (the ring restarts there); from then on the run's fragments are no
    /// longer handed to the tap, until no chunk came for 2 s.
    public func publishChunk(_ chunk: MediaSegment, of camera: CameraID, receivedMicros: Int64) {
        let admitted = chunking.withLock { c in
            if let x = c[camera], x.run == chunk.meta.run,
                receivedMicros - x.lastMicros < Self.chunkTimeoutMicros
            {
                c[camera] = (x.run, receivedMicros)
                return true
            }
            guard chunk.meta.keyframe else { return false }
            c[camera] = (chunk.meta.run, receivedMicros)
            return true
        }
        if admitted { fanout(for: camera).publish(LiveUnit(chunk, receivedMicros: receivedMicros, isChunk: true)) }
    }

    /// L1. Accepts subscribers on `listener` until ``stop(_:)``, for the cameras `isKnown` accepts; blocks the
    /// calling thread.
    public func acceptLoop(_ listener: FileHandleFD, isKnown: @escaping @Sendable (CameraID) -> Bool) {
        while !stopping.load(ordering: .relaxed) {
            guard let conn = try? UnixSocket.accept(listener) else {
                if stopping.load(ordering: .relaxed) { return }
                usleep(100_000)
                continue
            }
            let t = Thread { [self] in serve(conn, isKnown: isKnown) }
            t.name = "recorder-live"
            t.start()
        }
    }

    /// Ends the accept loop and every subscriber.
    public func stop(_ listener: FileHandleFD) {
        stopping.store(true, ordering: .relaxed)
        Glibc.shutdown(listener.fd, Int32(SHUT_RDWR))
        connections.withLock { for (_, c) in $0 { Glibc.shutdown(c.fd, Int32(SHUT_RDWR)) } }
        for f in fanouts.withLock({ Array($0.values) }) { f.closeAll() }
    }

    /// One subscriber: L2 (its hello, within 5 s), then L4–L5 until it goes.
    func serve(_ conn: FileHandleFD, isKnown: (CameraID) -> Bool) {
        let fd = conn.fd
        connections.withLock { $0[fd] = conn }
        defer {
            connections.withLock { _ = $0.removeValue(forKey: fd) }
            // Closed here, not when the last reference goes: the thread that ran this may keep its closure
            // (and the connection) alive, and the subscriber must see the end at once.
            conn.close()
        }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard case .hello(let camera)? = try? conn.receiveMessage() else {
            logger.info("live subscriber sent no hello; closed")
            return
        }
        guard isKnown(camera) else {
            logger.info("live subscriber named an unknown camera; closed", metadata: ["camera.id": "\(camera)"])
            return
        }
        tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let fanout = fanout(for: camera)
        let queue = fanout.subscribe()
        watchChanged(camera)  // P7
        defer {
            fanout.unsubscribe(queue)
            watchChanged(camera)
        }
        logger.info("live subscriber", metadata: ["camera.id": "\(camera)"])
        while !stopping.load(ordering: .relaxed) {
            switch queue.next(timeout: .seconds(1)) {
            case .none:
                // Idle camera: notice a subscriber that went away (its end reads as EOF).
                var byte: UInt8 = 0
                let n = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
                if n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) { return }
            case .some(nil): return
            case .some(let event?):
                do { try conn.sendLive(event) } catch {
                    logger.info(
                        "live subscriber gone", metadata: ["camera.id": "\(camera)", "error": "\(error)"])
                    return
                }
            }
        }
    }
}
