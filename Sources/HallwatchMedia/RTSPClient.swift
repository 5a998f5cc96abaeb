import Foundation
import HallwatchCore

/// Hallwatch's own RTSP 1.0 client (RFC 2326; the framing is unchanged in RFC 7826 §20) for one camera
/// session with RTP interleaved on the RTSP TCP connection (RFC 2326 §10.12, RFC 7826 §14).
///
/// Why not libavformat's client: it reads every interleaved RTP packet with two or three `poll` + `recv`
/// pairs (≈ 4 600 system calls per second at 8 Mbit/s, half the worker's CPU). This client reads the
/// socket in 256 KiB gulps and asks the kernel to wake it only when 32 KiB have arrived
/// (`SO_RCVLOWAT`) or 100 ms have passed, so a camera costs tens of system calls per second.
///
/// What it does: OPTIONS, DESCRIBE (SDP, ``VideoMediaDescription``), SETUP of the video media only with
/// `RTP/AVP/TCP;unicast;interleaved=0-1`, PLAY; `GET_PARAMETER` (or OPTIONS when the camera does not list
/// it) as keep-alive at half the session timeout; TEARDOWN when closed, so the camera frees the session
/// (cameras with a session limit otherwise refuse the reconnect). Basic and Digest authentication
/// (RFC 2326 §D.1, RFC 7616). Every reply is bounded: 16 KiB of headers, 64 KiB of body, 64 headers.
///
/// Errors are ``MediaError``: `rtsp.connect` (unreachable, refused, a non-2xx reply), `rtsp.dropped` (the
/// connection reset or failed while playing), `rtsp.auth` (401
/// after our credentials, or credentials needed and none configured), `rtsp.timeout` (no byte for the
/// I/O timeout), `rtsp.ended` (the camera closed the connection), `rtsp.garbage` (a reply that is not
/// RTSP, a malformed header or SDP).
final class RTSPClient {
    /// A parsed reply (RFC 2326 §7).
    struct Response {
        var status: Int
        var reason: String
        /// Header fields in order, names as sent.
        var headers: [(name: String, value: String)]
        var body: [UInt8]
        func header(_ name: String) -> String? {
            headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
        }
        func headers(_ name: String) -> [String] {
            headers.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
        }
    }

    /// What arrives on the connection: a reply, a request from the camera, or an interleaved frame
    /// whose payload stays valid until the next call to ``next()``.
    enum Message {
        case response(Response)
        case request(method: String, cseq: String?)
        case interleaved(channel: UInt8, payload: UnsafeRawBufferPointer)
    }

    static let maxHeaderBytes = 16 << 10, maxBodyBytes = 64 << 10, maxHeaders = 64
    /// Bytes of unframeable input tolerated before the stream is declared garbage.
    static let maxGarbageBytes = 64 << 10
    static let bufferBytes = 256 << 10
    /// The kernel wakes the reader when this many bytes are queued (`SO_RCVLOWAT`) …
    static let wakeBytes: Int32 = 32 << 10
    /// … or after this long, whichever is first (ms).
    static let wakeMillis: Int32 = 100

    let url: String
    private let username: String?
    private let password: String?
    private let stop: StopFlag
    private let ioTimeoutNanos: UInt64
    private var fd: Int32 = -1
    private let buffer: UnsafeMutableRawBufferPointer
    private var head = 0, tail = 0
    private var lastProgress: UInt64
    private var cseq = 0
    private var garbageBytes = 0
    private var digest: DigestChallenge?
    private var digestCount = 0
    private var basic = false
    /// `Session` id from SETUP (RFC 2326 §12.37), without `;timeout=`.
    private(set) var session: String?
    /// The SSRC the SETUP reply's `Transport` named (`ssrc=`, 8 hex digits, RFC 7826 §18.54), set before PLAY
    /// is sent; and the first RTP sequence number PLAY's `RTP-Info` announced (§18.45), once its reply came.
    private(set) var setupSSRC: UInt32?
    private(set) var playFirstSequence: UInt16?
    /// Keep-alive period: half the session timeout the camera gave (default 60 s, RFC 2326 §12.37).
    private(set) var keepAliveNanos: UInt64 = 30_000_000_000
    private var keepAliveMethod = "OPTIONS"
    private var lastRequestNanos: UInt64 = 0
    /// While a reply is awaited: when waiting for it ends (monotonic ns).
    private var replyDeadline: UInt64?
    /// The camera accepted Basic authentication (the password crossed the network in clear text).
    private(set) var usedBasic = false
    /// System calls made to read the socket (`poll` and `recv`), for the benchmark and the status.
    private(set) var readCalls = 0
    /// Where time is read (timeouts, keep-alives).
    private let clocks: any Clocks
    /// The session plays (``streaming()`` was called): a connection lost now is `rtsp.dropped`.
    private var playing = false

    /// Connects to the camera's RTSP port (554 when the URL names none). Timeouts and keep-alives are
    /// measured on `clocks`' monotonic time.
    /// - Throws: ``MediaError`` `rtsp.connect`, `rtsp.timeout`.
    init(url: String, username: String?, password: String?, stop: StopFlag, ioTimeout: Duration, clocks: any Clocks)
        throws
    {
        self.url = url
        self.username = username
        self.password = password
        self.stop = stop
        self.clocks = clocks
        ioTimeoutNanos = UInt64(max(1, ioTimeout.components.seconds)) * 1_000_000_000
        lastProgress = clocks.monotonicNanos()
        buffer = .allocate(byteCount: Self.bufferBytes, alignment: 16)
        // Every stored property is set by now, so a throw below runs deinit (which frees the buffer).
        guard let parts = URLComponents(string: url), parts.scheme?.lowercased() == "rtsp", let host = parts.host,
            !host.isEmpty
        else {
            throw MediaError("rtsp.connect", "not an rtsp:// URL")
        }
        fd = try Self.connect(
            host: host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")), port: parts.port ?? 554,
            stop: stop, timeoutNanos: ioTimeoutNanos, clocks: clocks)
    }

    /// From now on the camera streams: wake the reader only for ``wakeBytes`` or after ``wakeMillis``
    /// (during the handshake every small reply is read at once).
    func streaming() {
        playing = true
        var low = Self.wakeBytes
        setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &low, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit {
        if fd >= 0 {
            if let s = session {
                // Best effort: the camera frees the session now instead of at its timeout.
                _ = try? send(method: "TEARDOWN", url: url, headers: [("Session", s)])
            }
            close(fd)
        }
        buffer.deallocate()
    }

    // MARK: requests

    /// Sends a request and waits for its reply, retrying once with credentials on 401. Interleaved
    /// frames that arrive meanwhile (some cameras start RTP before the PLAY reply) go to `early`.
    /// - Throws: ``MediaError``; a non-2xx final reply is `rtsp.connect` (or `rtsp.auth` for 401).
    @discardableResult
    func request(
        _ method: String, url: String, headers: [(String, String)] = [], allowFailureStatus: Bool = false,
        early: (UInt8, UnsafeRawBufferPointer) -> Void = { _, _ in }
    ) throws -> Response {
        var attempt = 0
        while true {
            let sent = try send(method: method, url: url, headers: headers)
            let reply = try awaitReply(cseq: sent, method: method, early: early)
            if reply.status == 401 {
                attempt += 1
                let challenges = reply.headers("WWW-Authenticate")
                guard let user = username else {
                    throw MediaError("rtsp.auth", "the camera asks for credentials (\(method)) and none are configured")
                }
                let stale = DigestChallenge.parse(challenges).first
                if attempt > 2 || (attempt == 2 && stale?.stale != true) {
                    throw MediaError(
                        "rtsp.auth", "the camera refused the credentials of user '\(user)' (\(method) → 401)")
                }
                if let d = stale {
                    digest = d
                    digestCount = 0
                    basic = false
                } else if digest == nil, challenges.contains(where: { $0.lowercased().hasPrefix("basic") }) {
                    basic = true
                } else {
                    throw MediaError(
                        "rtsp.auth",
                        "the camera asks for an authentication scheme Hallwatch does not speak (or downgrades Digest to Basic)"
                    )
                }
                continue
            }
            // 503 is never "any reply will do": a camera still booting answers OPTIONS with it and then closes the
            // connection, and the DESCRIBE that followed used to report only that close.
            guard (200..<300).contains(reply.status) || (allowFailureStatus && reply.status != 503) else {
                var error = MediaError(
                    reply.status == 461 ? .transport : .connect,
                    "the camera answered \(method) with \(reply.status) \(VideoMediaDescription.printable(reply.reason))"
                )
                if reply.status == 461 { error.message += " (it does not send RTP over TCP)" }
                // A camera still booting says when to come back (503 + Retry-After, RFC 7826 §18.44); the worker waits that long.
                if reply.status == 503, let text = reply.header("Retry-After"),
                    let seconds = Int64(text.trimmingCharacters(in: .whitespaces)), seconds >= 0
                {
                    error.retryAfter = .seconds(min(seconds, 300))
                    error.message += " (the camera is not ready; it asks to retry after \(min(seconds, 300)) s)"
                }
                throw error
            }
            return reply
        }
    }

    /// Writes one request; returns its CSeq.
    /// - Throws: ``MediaError`` `rtsp.badURL` when the URL holds a space or a control character, or a header
    ///   value a control character: the URL and session ids come from the camera's SDP and replies, and a CR/LF
    ///   in them would add request lines or headers of the camera's choosing (RFC 7826 §20.1 grammar).
    @discardableResult
    func send(method: String, url: String, headers: [(String, String)]) throws -> Int {
        guard !url.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }),
            !headers.contains(where: { $0.1.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) }),
            // The user name goes into the Authorization header (an operator's `probe --username` too).
            !(username ?? "").utf8.contains(where: { $0 < 0x20 || $0 == 0x7F })
        else {
            throw MediaError(
                .badURL,
                "refusing to send \(method) to \(printable(url, limit: 200)): spaces or control characters in the URL, a header or the user name"
            )
        }
        cseq += 1
        var text = "\(method) \(url) RTSP/1.0\r\nCSeq: \(cseq)\r\nUser-Agent: Hallwatch\r\n"
        if let user = username {
            if let d = digest {
                digestCount += 1
                let cnonce = String(UInt64.random(in: 0...UInt64.max), radix: 16)
                text +=
                    "Authorization: \(d.authorization(method: method, uri: url, username: user, password: password ?? "", cnonce: cnonce, nonceCount: digestCount))\r\n"
            } else if basic {
                usedBasic = true
                text += "Authorization: Basic \(Data("\(user):\(password ?? "")".utf8).base64EncodedString())\r\n"
            }
        }
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        text += "\r\n"
        try writeAll(Array(text.utf8))
        lastRequestNanos = now()
        return cseq
    }

    /// Waits for the reply to request `cseq`, at most the I/O timeout in all: a camera that streams, trickles
    /// bytes or answers other CSeqs instead never holds the handshake longer than that.
    private func awaitReply(cseq: Int, method: String, early: (UInt8, UnsafeRawBufferPointer) -> Void) throws
        -> Response
    {
        replyDeadline = now() + ioTimeoutNanos
        defer { replyDeadline = nil }
        while true {
            if now() > replyDeadline! {
                throw MediaError(
                    "rtsp.timeout", "the camera did not answer \(method) within \(ioTimeoutNanos / 1_000_000_000) s")
            }
            switch try next() {
            case .response(let r):
                // A reply to an earlier request (a keep-alive) is skipped; one without CSeq is taken as ours.
                if let c = r.header("CSeq").flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) }), c != cseq {
                    continue
                }
                return r
            case .request(let method, let c):
                try answerCameraRequest(method, cseq: c)
            case .interleaved(let channel, let payload):
                early(channel, payload)
            }
        }
    }

    /// A camera may send requests too (RFC 2326 §10: ANNOUNCE, GET_PARAMETER, SET_PARAMETER, …); we
    /// implement none of them, and say so so it does not wait for us.
    func answerCameraRequest(_ method: String, cseq: String?) throws {
        let reply = "RTSP/1.0 501 Not Implemented\r\nCSeq: \(cseq ?? "0")\r\n\r\n"
        try writeAll(Array(reply.utf8))
    }

    // MARK: session

    /// DESCRIBE → the video media and the base URL for SETUP (Content-Base, Content-Location, or ours).
    func describe() throws -> (VideoMediaDescription, base: String) {
        // Any RTSP reply will do (some cameras answer OPTIONS with 501); garbage, silence or 401 fail here.
        let options = try request("OPTIONS", url: url, allowFailureStatus: true)
        if let pub = options.header("Public"), pub.uppercased().contains("GET_PARAMETER") {
            keepAliveMethod = "GET_PARAMETER"
        }
        let reply = try request("DESCRIBE", url: url, headers: [("Accept", "application/sdp")])
        let sdp = String(decoding: reply.body, as: UTF8.self)
        let media = try VideoMediaDescription.parse(sdp)
        let base = reply.header("Content-Base") ?? reply.header("Content-Location") ?? url
        return (media, base.trimmingCharacters(in: .whitespaces))
    }

    /// SETUP of one media with RTP on interleaved channels 0 (RTP) and 1 (RTCP), then PLAY of the session.
    /// - Returns: the interleaved channel RTP arrives on (the camera may choose another pair).
    func setupAndPlay(_ media: VideoMediaDescription, base: String, early: (UInt8, UnsafeRawBufferPointer) -> Void)
        throws -> UInt8
    {
        let setup = try request(
            "SETUP", url: media.setupURL(base: base), headers: [("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")])
        guard let sessionHeader = setup.header("Session") else {
            throw MediaError("rtsp.garbage", "the camera's SETUP reply has no Session header")
        }
        let fields = sessionHeader.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let id = fields.first, !id.isEmpty, id.utf8.count <= 256 else {
            throw MediaError("rtsp.garbage", "malformed Session header")
        }
        session = id
        if let t = fields.dropFirst().first(where: { $0.lowercased().hasPrefix("timeout=") }),
            let seconds = UInt64(t.dropFirst(8)), seconds >= 1
        {
            keepAliveNanos = min(seconds, 3600) * 500_000_000  // half the timeout; 0 or absurd values ignored
        }
        var channel: UInt8 = 0
        if let transport = setup.header("Transport"),
            let il = transport.split(separator: ";").first(where: { $0.lowercased().hasPrefix("interleaved=") }),
            let first = il.dropFirst(12).split(separator: "-").first, let c = UInt8(first)
        {
            channel = c
        }
        if let transport = setup.header("Transport"),
            let field = transport.split(separator: ";").first(where: { $0.lowercased().hasPrefix("ssrc=") })
        {
            setupSSRC = UInt32(field.dropFirst(5).trimmingCharacters(in: .whitespaces), radix: 16)
        }
        let play = try request(
            "PLAY", url: media.playURL(base: base), headers: [("Session", id), ("Range", "npt=0.000-")], early: early)
        // RTP-Info: url=…;seq=N;rtptime=T[, url=…] — one entry per stream; only the video media was SETUP.
        if let info = play.header("RTP-Info")?.split(separator: ",").first,
            let seq = info.split(separator: ";").first(where: {
                $0.trimmingCharacters(in: .whitespaces).lowercased().hasPrefix("seq=")
            })
        {
            playFirstSequence = UInt16(seq.trimmingCharacters(in: .whitespaces).dropFirst(4))
        }
        return channel
    }

    /// Sends a keep-alive when half the session timeout has passed since the last request. Its reply is
    /// read (and skipped) by ``next()`` like any other message.
    func keepAliveIfDue() throws {
        guard let s = session, now() - lastRequestNanos >= keepAliveNanos else { return }
        try send(method: keepAliveMethod, url: url, headers: [("Session", s)])
    }

    // MARK: framing

    /// The next message on the connection. Blocks until one is complete, the I/O timeout passes
    /// (`rtsp.timeout`), the camera closes (`rtsp.ended`) or the stop flag is set (returns after
    /// throwing `rtsp.stopped`, which the caller treats as a clean end).
    func next() throws -> Message {
        while true {
            if let m = try parseBuffered() { return m }
            if let d = replyDeadline, now() > d {
                throw MediaError("rtsp.timeout", "the camera did not answer within \(ioTimeoutNanos / 1_000_000_000) s")
            }
            try fill()
        }
    }

    private func parseBuffered() throws -> Message? {
        while head < tail {
            let b0 = buffer[head]
            if b0 == 0x24 {  // '$' channel length(16) payload
                guard tail - head >= 4 else { return nil }
                let length = Int(buffer[head + 2]) << 8 | Int(buffer[head + 3])
                guard tail - head >= 4 + length else { return nil }
                let channel = buffer[head + 1]
                let payload = UnsafeRawBufferPointer(rebasing: buffer[(head + 4)..<(head + 4 + length)])
                head += 4 + length
                garbageBytes = 0
                return .interleaved(channel: channel, payload: payload)
            }
            if (0x41...0x5A).contains(b0) {  // 'A'…'Z': a reply or a request
                return try parseText()
            }
            // Not framed: skip to the next '$' or letter (a camera's stray bytes), within limits.
            head += 1
            garbageBytes += 1
            if garbageBytes > Self.maxGarbageBytes {
                throw MediaError(
                    "rtsp.garbage", "the camera sent \(garbageBytes) bytes that are neither RTSP nor interleaved RTP")
            }
        }
        return nil
    }

    private func parseText() throws -> Message? {
        let available = UnsafeRawBufferPointer(rebasing: buffer[head..<tail])
        guard let headerEnd = Self.find(crlfcrlfIn: available, limit: Self.maxHeaderBytes) else {
            if available.count > Self.maxHeaderBytes {
                throw MediaError("rtsp.garbage", "an RTSP header block longer than \(Self.maxHeaderBytes) bytes")
            }
            return nil
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: available[..<headerEnd]), as: UTF8.self)
        var lines = text.components(separatedBy: "\r\n")
        let first = lines.removeFirst()
        guard lines.count <= Self.maxHeaders else {
            throw MediaError("rtsp.garbage", "more than \(Self.maxHeaders) RTSP header fields")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else {
                throw MediaError(
                    "rtsp.garbage", "malformed RTSP header field: \(VideoMediaDescription.printable(line))")
            }
            headers.append(
                (
                    String(line[..<colon]).trimmingCharacters(in: .whitespaces),
                    String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
                ))
        }
        var bodyLength = 0
        if let cl = headers.first(where: { $0.name.caseInsensitiveCompare("Content-Length") == .orderedSame }) {
            guard let n = Int(cl.value), n >= 0, n <= Self.maxBodyBytes else {
                throw MediaError(
                    "rtsp.garbage", "bad or too large Content-Length: \(VideoMediaDescription.printable(cl.value))")
            }
            bodyLength = n
        }
        let total = headerEnd + 4 + bodyLength
        guard available.count >= total else { return nil }
        let body = Array(UnsafeRawBufferPointer(rebasing: available[(headerEnd + 4)..<total]))
        head += total
        garbageBytes = 0
        if first.hasPrefix("RTSP/") {
            // RTSP/1.0 SP status SP reason
            let f = first.split(separator: " ", maxSplits: 2)
            guard f.count >= 2, let status = Int(f[1]), (100...599).contains(status) else {
                throw MediaError(
                    "rtsp.garbage", "malformed RTSP status line: \(VideoMediaDescription.printable(first))")
            }
            return .response(
                Response(status: status, reason: f.count > 2 ? String(f[2]) : "", headers: headers, body: body))
        }
        let f = first.split(separator: " ")
        guard f.count == 3, f[2].hasPrefix("RTSP/") else {
            throw MediaError(
                "rtsp.garbage", "the camera's reply is not RTSP: \(VideoMediaDescription.printable(first))")
        }
        return .request(
            method: String(f[0]), cseq: headers.first { $0.name.caseInsensitiveCompare("CSeq") == .orderedSame }?.value)
    }

    static func find(crlfcrlfIn b: UnsafeRawBufferPointer, limit: Int) -> Int? {
        let n = min(b.count, limit + 4)
        guard n >= 4 else { return nil }
        for i in 0...(n - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }

    // MARK: socket

    /// Reads what the socket has into the buffer, waiting (in `wakeMillis` steps) for at most the I/O timeout.
    private func fill() throws {
        if head == tail {
            head = 0
            tail = 0
        }
        if tail == buffer.count || (head > 0 && buffer.count - tail < 70_000) {
            // Move the unread part to the front; the bounds above keep it below 128 KiB.
            let unread = tail - head
            buffer.baseAddress!.copyMemory(from: buffer.baseAddress! + head, byteCount: unread)
            head = 0
            tail = unread
        }
        while true {
            if stop.isStopped { throw MediaError("rtsp.stopped", "stopped") }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            readCalls += 1
            let ready = poll(&pfd, 1, Self.wakeMillis)
            if ready < 0 && errno != EINTR {
                throw MediaError("rtsp.connect", "poll failed: \(SystemError.text(errno))")
            }
            // Woken by SO_RCVLOWAT or by the timer: either way take what is there.
            readCalls += 1
            let n = recv(fd, buffer.baseAddress! + tail, buffer.count - tail, Int32(MSG_DONTWAIT))
            if n > 0 {
                tail += n
                lastProgress = now()
                return
            }
            if n == 0 { throw MediaError("rtsp.ended", "the camera closed the connection") }
            let e = errno
            guard e == EAGAIN || e == EWOULDBLOCK || e == EINTR else {
                // Mid-stream (a camera resetting the connection) the session was dropped; before, we could not connect.
                if playing {
                    throw MediaError("rtsp.dropped", "the camera dropped the session: \(SystemError.text(e))")
                }
                throw MediaError("rtsp.connect", "reading from the camera failed: \(SystemError.text(e))")
            }
            if now() - lastProgress > ioTimeoutNanos {
                throw MediaError("rtsp.timeout", "no data from the camera for \(ioTimeoutNanos / 1_000_000_000) s")
            }
        }
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        var offset = 0
        let deadline = now() + ioTimeoutNanos
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if n > 0 {
                offset += n
                continue
            }
            let e = errno
            guard n < 0, e == EAGAIN || e == EWOULDBLOCK || e == EINTR else {
                throw MediaError("rtsp.connect", "writing to the camera failed: \(SystemError.text(e))")
            }
            if stop.isStopped { throw MediaError("rtsp.stopped", "stopped") }
            if now() > deadline { throw MediaError("rtsp.timeout", "the camera does not read our requests") }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            _ = poll(&pfd, 1, Self.wakeMillis)
        }
    }

    /// A non-blocking TCP connection to `host:port` (IPv4 or IPv6), within `timeoutNanos`.
    private static func connect(host: String, port: Int, stop: StopFlag, timeoutNanos: UInt64, clocks: any Clocks)
        throws -> Int32
    {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let r = getaddrinfo(host, String(port), &hints, &list)
        guard r == 0, let first = list else {
            throw MediaError(
                "rtsp.connect", "cannot resolve the camera's host name: \(String(cString: gai_strerror(r)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        let deadline = clocks.monotonicNanos() + timeoutNanos
        while let a = ai {
            ai = a.pointee.ai_next
            let fd = socket(
                a.pointee.ai_family,
                Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else {
                lastError = SystemError.text(errno)
                continue
            }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            if Glibc.connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return fd }
            guard errno == EINPROGRESS else {
                lastError = SystemError.text(errno)
                close(fd)
                continue
            }
            while true {
                if stop.isStopped {
                    close(fd)
                    throw MediaError("rtsp.stopped", "stopped")
                }
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&pfd, 1, wakeMillis)
                if ready > 0 {
                    var err: Int32 = 0
                    var len = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
                    if err == 0 { return fd }
                    lastError = SystemError.text(err)
                    break
                }
                if clocks.monotonicNanos() > deadline {
                    close(fd)
                    throw MediaError(
                        "rtsp.timeout", "no answer from the camera within \(timeoutNanos / 1_000_000_000) s")
                }
            }
            close(fd)
        }
        throw MediaError("rtsp.connect", "cannot connect to the camera: \(lastError)")
    }

    /// Monotonic nanoseconds on the injected clocks.
    func now() -> UInt64 { clocks.monotonicNanos() }
}
