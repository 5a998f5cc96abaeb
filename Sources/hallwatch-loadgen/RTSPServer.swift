// The load generator's RTSP server: one thread, non-blocking sockets, poll(2), and a send tick.
import Foundation
import HallwatchCore

/// How a client's due packets are handed to the kernel.
enum SendMode: String, CaseIterable {
    /// `writev` with two iovecs per packet: the client's patched 16-byte header and the shared payload.
    case writev
    /// Headers and payloads copied into one contiguous buffer, then one `write`.
    case copy
}

/// Serves ``RTPTrack`` to any number of RTSP clients on `/cam<k>` from one thread.
///
/// Protocol, per connection:
/// 1. Requests (OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN) are read into a buffer of at most
///    ``RTSPRequest/maxRequestBytes`` and answered at once; interleaved frames the client sends (RTCP
///    receiver reports on channel 1) are skipped by their length (RFC 7826 §14).
/// 2. SETUP accepts only `RTP/AVP/TCP;interleaved=a-b` (461 otherwise) and fixes the channel `a`.
/// 3. PLAY sets the client's start; packet k of loop L is due at start + L × loop + its send time. Each
///    tick (``tickNanos``) every playing client's due packets go out in as few `writev`/`write` calls as
///    the iovec limit allows. Sequence numbers keep counting across loops and each loop's RTP timestamps
///    are one loop duration later, so the client sees one endless stream.
/// 4. A client whose socket does not take its due bytes keeps a backlog (due − written bytes, nothing is
///    queued: the bytes are recomputed from the shared track); past ``maxBacklogBytes`` it is dropped.
final class RTSPServer {
    struct Options {
        /// IPv4 address to listen on; no authentication, so loopback unless you mean it.
        var listen = "127.0.0.1"
        /// TCP port; 0 picks a free one (see ``RTSPServer/port``).
        var port = 0
        /// Paths served: `/cam0` … `/cam<streams-1>`, all the same media.
        var streams = 1
        var sendMode = SendMode.writev
        /// How often due packets are sent; packets due within one tick leave together.
        var tickNanos: UInt64 = 10_000_000
        /// Due but unwritten bytes past which a client is dropped (and counted).
        var maxBacklogBytes = 4 << 20
        /// JSON statistics file rewritten every second, if any.
        var statsPath: String?
        /// A packet written more than this after its due time is counted late.
        var lateNanos: Int64 = 50_000_000
    }

    /// One RTSP connection and, once it PLAYs, its place in the endless stream.
    final class Client {
        let fd: Int32
        var input: [UInt8] = []
        /// Bytes of an interleaved frame from the client still to skip.
        var skipBytes = 0
        /// Responses not yet written; only written between RTP frames.
        var output: [UInt8] = []
        var camera: Int?
        var session: String?
        var channel: UInt8?
        var controlURL = ""
        let ssrc = UInt32.random(in: .min ... .max)
        let sequenceBase = UInt16.random(in: .min ... .max)
        let timestampBase = UInt32.random(in: .min ... .max)
        var startNanos: Int64?
        /// Absolute packet numbers (loop × packets per loop + index): next to write, first not yet due.
        var next = 0, due = 0
        /// Bytes of packet `next` already written.
        var partialBytes = 0
        var closeWhenWritten = false
        init(fd: Int32) { self.fd = fd }
    }

    struct Stats {
        var accepted = 0, dropped = 0, bytesSent = 0, packetsSent = 0, packetsLate = 0, maxLateNanos: Int64 = 0
    }

    let track: RTPTrack
    let options: Options
    private(set) var port = 0
    private var listenFD: Int32 = -1
    private var clients: [Int32: Client] = [:]
    private(set) var stats = Stats()
    private static let maxBatch = 512  // packets per writev: 2 iovecs each, IOV_MAX is 1024
    private let headers = UnsafeMutableRawPointer.allocate(
        byteCount: maxBatch * RTPTrack.frameHeaderBytes, alignment: 16)
    private let iovecs = UnsafeMutablePointer<iovec>.allocate(capacity: 2 * maxBatch)
    private let copyBuffer: UnsafeMutableRawPointer

    /// Binds and listens on `options.listen:options.port` (port 0: any free port, read back into ``port``).
    /// - Throws: ``SystemError`` when the address cannot be bound.
    init(track: RTPTrack, options: Options) throws {
        self.track = track
        self.options = options
        let largestFrame = track.entries.map(\.frameBytes).max() ?? 0
        copyBuffer = UnsafeMutableRawPointer.allocate(byteCount: Self.maxBatch * largestFrame, alignment: 16)
        listenFD = socket(
            AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listenFD >= 0 else { throw SystemError("socket") }
        var one: Int32 = 1
        setsockopt(listenFD, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(options.port).bigEndian
        guard inet_pton(AF_INET, options.listen, &addr.sin_addr) == 1 else {
            throw SystemError("inet_pton", errno: EINVAL, subject: options.listen)
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listenFD, $0, len) }
        }
        guard bound == 0, listen(listenFD, 1024) == 0 else {
            throw SystemError("bind", subject: "\(options.listen):\(options.port)")
        }
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listenFD, $0, &len) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
    }

    deinit {
        for fd in clients.keys { close(fd) }
        close(listenFD)
        headers.deallocate()
        iovecs.deallocate()
        copyBuffer.deallocate()
    }

    /// Runs the event loop forever (the process ends by signal).
    func run() -> Never {
        var fds: [pollfd] = []
        var nextTick = monotonicNanos()
        var nextStats = nextTick
        while true {
            // Readable sockets only: writes are attempted each tick and a full socket waits for the next one,
            // so no POLLOUT churn. poll(2) over ~100 descriptors 100 times a second costs next to nothing.
            fds.removeAll(keepingCapacity: true)
            fds.append(pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0))
            for fd in clients.keys { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            let now = monotonicNanos()
            // Nobody playing: no tick, wake for requests or the stats file only.
            let wake = clients.values.contains { $0.startNanos != nil } ? nextTick : nextStats
            let timeoutMs = wake > now ? Int32((wake - now + 999_999) / 1_000_000) : 0
            if poll(&fds, nfds_t(fds.count), timeoutMs) > 0 {
                for p in fds where p.revents != 0 {
                    if p.fd == listenFD {
                        acceptAll()
                        continue
                    }
                    guard let client = clients[p.fd] else { continue }
                    if p.revents & Int16(POLLIN) == 0 {
                        drop(client, counted: false)
                        continue
                    }  // error/hang-up
                    readRequests(client)
                }
            }
            let after = monotonicNanos()
            if after >= nextTick {
                for client in clients.values where client.startNanos != nil { flush(client, now: Int64(after)) }
                nextTick = max(nextTick + options.tickNanos, after + options.tickNanos / 2)
            }
            if after >= nextStats {
                if let path = options.statsPath { writeStats(to: path) }
                nextStats = after + 1_000_000_000
            }
        }
    }

    private func acceptAll() {
        while true {
            let fd = accept(listenFD, nil, nil)
            guard fd >= 0 else { return }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            clients[fd] = Client(fd: fd)
            stats.accepted += 1
        }
    }

    private func drop(_ client: Client, counted: Bool) {
        if counted { stats.dropped += 1 }
        close(client.fd)
        clients[client.fd] = nil
    }

    // MARK: requests

    private func readRequests(_ client: Client) {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(client.fd, &chunk, chunk.count)
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) {
                drop(client, counted: false)
                return
            }
            if n < 0 { break }
            client.input += chunk[..<n]
            guard consumeInput(client) else { return }
        }
        writeResponses(client)
    }

    /// Handles every complete request in the client's input; `false` when the client was closed.
    private func consumeInput(_ client: Client) -> Bool {
        var start = 0
        defer { client.input.removeFirst(min(start, client.input.count)) }
        while start < client.input.count {
            if client.skipBytes > 0 {
                let k = min(client.skipBytes, client.input.count - start)
                start += k
                client.skipBytes -= k
                continue
            }
            let rest = client.input[start...]
            if rest.first == 0x24 {  // '$': an interleaved frame (RTCP from the client), skipped
                guard rest.count >= 4 else { break }
                client.skipBytes = 4 + Int(rest[start + 2]) << 8 + Int(rest[start + 3])
                continue
            }
            switch RTSPRequest.parse(rest) {
            case .needMore:
                return true
            case .reject(let status):
                client.output += RTSPResponse(status: status).bytes(cseq: nil)
                client.closeWhenWritten = true
                writeResponses(client)
                return false
            case .request(let request, let consumed):
                start += consumed
                client.output += respond(to: request, client).bytes(cseq: request.cseq)
                if client.closeWhenWritten {
                    writeResponses(client)
                    return false
                }
            }
        }
        return true
    }

    private func respond(to request: RTSPRequest, _ client: Client) -> RTSPResponse {
        let sessionHeader = client.session.map { [("Session", $0)] } ?? []
        switch request.method {
        case "OPTIONS":
            return RTSPResponse(
                status: 200, headers: [("Public", "OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN")])
        case "DESCRIBE":
            guard RTSPRequest.camera(in: request.url, streams: options.streams) != nil else {
                return RTSPResponse(status: 404)
            }
            let base = request.url.hasSuffix("/") ? request.url : request.url + "/"
            return RTSPResponse(
                status: 200, headers: [("Content-Type", "application/sdp"), ("Content-Base", base)],
                body: track.sdp(sessionID: UInt64(client.ssrc)))
        case "SETUP":
            guard let camera = RTSPRequest.camera(in: request.url, streams: options.streams) else {
                return RTSPResponse(status: 404)
            }
            let transport = request.header("transport") ?? ""
            guard transport.contains("RTP/AVP/TCP"), let channel = Self.interleavedChannel(transport) else {
                return RTSPResponse(status: 461)
            }
            if client.startNanos != nil { return RTSPResponse(status: 455, headers: sessionHeader) }
            client.camera = camera
            client.channel = channel
            client.controlURL = request.url
            let session = client.session ?? String(format: "%08X%08X", UInt32.random(in: .min ... .max), client.ssrc)
            client.session = session
            return RTSPResponse(
                status: 200,
                headers: [
                    (
                        "Transport",
                        "RTP/AVP/TCP;unicast;interleaved=\(channel)-\(channel + 1);ssrc=\(String(format: "%08X", client.ssrc))"
                    ),
                    ("Session", "\(session);timeout=60"),
                ])
        case "PLAY":
            guard client.channel != nil, let session = client.session else { return RTSPResponse(status: 455) }
            if client.startNanos == nil { client.startNanos = Int64(monotonicNanos()) }
            return RTSPResponse(
                status: 200,
                headers: [
                    ("Session", session), ("Range", "npt=0.000-"),
                    ("RTP-Info", "url=\(client.controlURL);seq=\(client.sequenceBase);rtptime=\(client.timestampBase)"),
                ])
        case "GET_PARAMETER":
            return RTSPResponse(status: 200, headers: sessionHeader)
        case "TEARDOWN":
            client.closeWhenWritten = true
            return RTSPResponse(status: 200, headers: sessionHeader)
        default:
            return RTSPResponse(
                status: 501, headers: [("Public", "OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN")])
        }
    }

    /// The first channel of `interleaved=a-b` (or `interleaved=a`) in a Transport header, when even and < 255.
    static func interleavedChannel(_ transport: String) -> UInt8? {
        guard let r = transport.range(of: "interleaved=") else { return 0 }  // absent: we choose 0-1
        let digits = transport[r.upperBound...].prefix { $0.isNumber }
        guard let a = UInt8(digits), a < 255, a % 2 == 0 else { return nil }
        return a
    }

    /// Writes pending responses, only at an RTP frame boundary; closes a client that asked to be closed.
    /// Returns whether the client is still open.
    @discardableResult
    private func writeResponses(_ client: Client) -> Bool {
        guard !client.output.isEmpty, client.partialBytes == 0 else { return true }
        let n = client.output.withUnsafeBytes { write(client.fd, $0.baseAddress, $0.count) }
        if n > 0 { client.output.removeFirst(n) }
        if client.closeWhenWritten {
            drop(client, counted: false)
            return false
        }
        return true
    }

    // MARK: sending

    @inline(__always)
    private func position(_ k: Int) -> (loop: Int, index: Int) {
        let (q, r) = k.quotientAndRemainder(dividingBy: track.entries.count)
        return (q, r)
    }

    @inline(__always)
    private func dueNanos(_ k: Int, start: Int64) -> Int64 {
        let (loop, i) = position(k)
        return start + Int64(loop) * track.loopNanos + track.entries[i].sendNanos
    }

    /// Bytes of the stream before packet `k` (loops × loop bytes + the packet's offset).
    @inline(__always)
    private func streamOffset(_ k: Int) -> Int {
        let (loop, i) = position(k)
        return loop * track.bytes.count + track.entries[i].offset
    }

    /// Sends what is due for one playing client (protocol step 3), or drops it (step 4).
    private func flush(_ client: Client, now: Int64) {
        guard let start = client.startNanos, let channel = client.channel else { return }
        while dueNanos(client.due, start: start) <= now { client.due += 1 }
        if streamOffset(client.due) - streamOffset(client.next) - client.partialBytes > options.maxBacklogBytes {
            drop(client, counted: true)
            return
        }
        guard writeResponses(client), client.output.isEmpty else { return }
        while client.next < client.due {
            let count = min(client.due - client.next, Self.maxBatch)
            var iovs = 0
            var bytes = 0
            for j in 0..<count {
                let k = client.next + j
                let (loop, i) = position(k)
                let entry = track.entries[i]
                let header = headers + j * RTPTrack.frameHeaderBytes
                header.copyMemory(from: track.bytes.baseAddress! + entry.offset, byteCount: RTPTrack.frameHeaderBytes)
                let timestamp =
                    client.timestampBase &+ UInt32(truncatingIfNeeded: Int64(loop) * track.loopDuration90k)
                    &+ entry.rtpTimestamp90k
                RTPTrack.patchHeader(
                    header, channel: channel, sequence: client.sequenceBase &+ UInt16(truncatingIfNeeded: k),
                    timestamp: timestamp, ssrc: client.ssrc)
                let skip = j == 0 ? client.partialBytes : 0
                if skip < RTPTrack.frameHeaderBytes {
                    iovecs[iovs] = iovec(iov_base: header + skip, iov_len: RTPTrack.frameHeaderBytes - skip)
                    iovs += 1
                }
                let payloadSkip = max(skip, RTPTrack.frameHeaderBytes)
                iovecs[iovs] = iovec(
                    iov_base: track.bytes.baseAddress! + entry.offset + payloadSkip,
                    iov_len: entry.frameBytes - payloadSkip)
                iovs += 1
                bytes += entry.frameBytes - skip
            }
            let written = send(client.fd, iovs: iovs, bytes: bytes)
            if written < 0 {
                if errno != EAGAIN && errno != EINTR { drop(client, counted: false) }
                return
            }
            stats.bytesSent += written
            advance(client, by: written, start: start, now: now)
            if written < bytes { return }  // the socket is full: the rest waits for a later tick
        }
    }

    /// Hands the prepared iovecs to the kernel: as they are (`writev`), or gathered into one buffer first.
    private func send(_ fd: Int32, iovs: Int, bytes: Int) -> Int {
        switch options.sendMode {
        case .writev:
            return writev(fd, iovecs, Int32(iovs))
        case .copy:
            var at = 0
            for v in 0..<iovs {
                (copyBuffer + at).copyMemory(from: iovecs[v].iov_base!, byteCount: iovecs[v].iov_len)
                at += iovecs[v].iov_len
            }
            return write(fd, copyBuffer, at)
        }
    }

    /// Moves the client's cursor past `written` bytes, counting whole packets sent and late.
    private func advance(_ client: Client, by written: Int, start: Int64, now: Int64) {
        var left = written
        while left > 0 {
            let frameBytes = track.entries[position(client.next).index].frameBytes
            let remaining = frameBytes - client.partialBytes
            if left < remaining {
                client.partialBytes += left
                return
            }
            left -= remaining
            let lateNanos = now - dueNanos(client.next, start: start)
            if lateNanos > options.lateNanos { stats.packetsLate += 1 }
            stats.maxLateNanos = max(stats.maxLateNanos, lateNanos)
            stats.packetsSent += 1
            client.next += 1
            client.partialBytes = 0
        }
    }

    private func writeStats(to path: String) {
        writeAtomically(
            json([
                "clients": clients.count, "playing": clients.values.filter { $0.startNanos != nil }.count,
                "accepted": stats.accepted, "clientsDropped": stats.dropped, "bytesSent": stats.bytesSent,
                "packetsSent": stats.packetsSent, "packetsLate": stats.packetsLate,
                "lateThresholdMs": options.lateNanos / 1_000_000, "maxLateMs": Double(stats.maxLateNanos) / 1e6,
            ]), to: path)
    }
}
