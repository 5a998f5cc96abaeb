import Foundation
import HallwatchCore
import Logging
import Synchronization
import Testing

@testable import HallwatchMedia

/// A fake camera on 127.0.0.1 that answers RTSP requests with whatever the test wants (RFC 7826 framing:
/// a request ends at an empty line; every reply echoes the CSeq).
final class FakeRTSPServer: @unchecked Sendable {
    let listener: Int32
    let port: Int
    let reply: @Sendable (_ method: String, _ cseq: String, _ request: String) -> [UInt8]?
    private let stopped = Atomic<Bool>(false)
    private var thread: Thread?
    /// Every request received, in order (request line and headers).
    let requests = Mutex<[String]>([])
    /// Called with the connection after the PLAY reply was written: a camera that streams over time.
    /// Runs on the server thread; requests that arrive meanwhile are read after it returns.
    var afterPlay: (@Sendable (Int32) -> Void)?
    /// Close the connection right after answering a request with this method (a booting camera's 503).
    var closeAfter: String?

    convenience init(reply: @escaping @Sendable (_ method: String, _ cseq: String) -> String?) throws {
        try self.init(raw: { method, cseq, _ in reply(method, cseq).map { Array($0.utf8) } })
    }

    /// A camera whose replies may carry binary data (interleaved RTP after PLAY) and depend on the request.
    init(raw reply: @escaping @Sendable (_ method: String, _ cseq: String, _ request: String) -> [UInt8]?) throws {
        self.reply = reply
        // Close-on-exec: not inherited by processes other suites start (mosquitto).
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        port = Int(UInt16(bigEndian: addr.sin_port))
        Glibc.listen(fd, 8)
        listener = fd
        let t = Thread { [self] in serve() }
        thread = t
        t.start()
    }

    var url: String { "rtsp://127.0.0.1:\(port)/stream" }

    func serve() {
        while !stopped.load(ordering: .relaxed) {
            let c = accept(listener, nil, nil)
            guard c >= 0 else { return }
            var buffer = [UInt8]()
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = read(c, &chunk, chunk.count)
                if n <= 0 { break }
                buffer += chunk[0..<n]
                while let end = findEnd(buffer) {
                    let request = String(decoding: buffer[0..<end], as: UTF8.self)
                    buffer.removeFirst(end + 4)
                    let method = String(request.split(separator: " ").first ?? "")
                    let cseq =
                        request.split(separator: "\r\n").first { $0.lowercased().hasPrefix("cseq:") }.map {
                            $0.dropFirst(5).trimmingCharacters(in: .whitespaces)
                        } ?? "0"
                    requests.withLock { $0.append(request) }
                    if let r = reply(method, cseq, request) {
                        _ = r.withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    }
                    if method == "PLAY", let stream = afterPlay { stream(c) }
                    if method == closeAfter { break }
                }
                if let m = closeAfter, requests.withLock({ $0.last?.hasPrefix(m) == true }) { break }
            }
            close(c)
        }
    }

    func findEnd(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
    deinit { stop() }
}

final class NullSink: FragmentSink {
    var frames = 0
    func deliver(_ frame: MediaSegment) { frames += 1 }
}

/// Runs one capture session against `url` and returns the error it ends with and how long it took.
func captureError(_ url: String, timeout: Duration = .seconds(2), password: String? = nil) -> (MediaError?, Double, Int)
{
    let session = CaptureSession(
        camera: CameraID("hostile")!,
        source: RTSPSourceOptions(
            url: url, username: password == nil ? nil : "user", password: password, ioTimeout: timeout),
        policy: FragmentPolicy(), clocks: SystemClocks(), logger: Logger(label: "test"))
    let sink = NullSink()
    let start = Date()
    do {
        try session.run(stop: StopFlag(), sink: sink) { _ in }
        return (nil, Date().timeIntervalSince(start), sink.frames)
    } catch let e as MediaError {
        return (e, Date().timeIntervalSince(start), sink.frames)
    } catch {
        Issue.record("untyped error \(error)")
        return (nil, Date().timeIntervalSince(start), sink.frames)
    }
}

func ok(_ cseq: String, _ extra: String = "", body: String = "") -> String {
    "RTSP/1.0 200 OK\r\nCSeq: \(cseq)\r\n\(extra)"
        + (body.isEmpty ? "\r\n" : "Content-Type: application/sdp\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
}

@Suite("Hostile cameras", .serialized)
struct HostileCameraTests {
    @Test func nobodyListening() {
        let port = { () -> Int in
            let s = try! FakeRTSPServer { _, _ in nil }
            let p = s.port
            s.stop()
            return p
        }()
        let (e, seconds, frames) = captureError("rtsp://127.0.0.1:\(port)/x")
        #expect(e?.code == "rtsp.connect")
        #expect(seconds < 2)
        #expect(frames == 0)
    }

    @Test func silentCameraTimesOut() throws {
        let server = try FakeRTSPServer { _, _ in nil }  // accepts, never answers
        let (e, seconds, _) = captureError(server.url, timeout: .seconds(2))
        #expect(e?.code == "rtsp.timeout", "got \(String(describing: e))")
        #expect(seconds >= 1.5 && seconds < 6, "gave up after \(seconds) s")
    }

    @Test func garbageReply() throws {
        let server = try FakeRTSPServer { _, _ in
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n\u{1}\u{2}garbage\r\n\r\n"
        }
        let (e, seconds, frames) = captureError(server.url)
        let code = try #require(e?.code.rawValue)
        #expect(code.hasPrefix("rtsp."), "got \(code)")
        #expect(seconds < 6 && frames == 0)
    }

    @Test func malformedSDP() throws {
        let server = try FakeRTSPServer { method, cseq in
            method == "DESCRIBE"
                ? ok(cseq, body: "v=0\r\nthis is not SDP\r\nm=video banana\r\n")
                : ok(cseq, "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n")
        }
        let (e, _, frames) = captureError(server.url)
        let code = try #require(e?.code)
        #expect(["rtsp.garbage", "media.noVideo", "rtsp.connect"].contains(code), "got \(code)")
        #expect(frames == 0)
    }

    @Test func unsupportedCodecIsNamed() throws {
        // A camera offering only Motion JPEG (RTP payload type 26, RFC 2435).
        let sdp =
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 0 RTP/AVP 26\r\na=control:track1\r\n"
        let server = try FakeRTSPServer { method, cseq in
            switch method {
            case "DESCRIBE": return ok(cseq, "Content-Base: \("rtsp://127.0.0.1")/stream/\r\n", body: sdp)
            case "SETUP": return ok(cseq, "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 12345678\r\n")
            case "PLAY": return ok(cseq, "Session: 12345678\r\nRange: npt=0.000-\r\n")
            default: return ok(cseq, "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n")
            }
        }
        let (e, _, frames) = captureError(server.url)
        #expect(e?.code == "media.unsupportedCodec", "got \(String(describing: e))")
        #expect(e?.message.contains("mjpeg") == true)
        #expect(frames == 0)
    }

    /// A URL with a line break would let whoever wrote it (an operator's typo, a camera's ONVIF reply) add
    /// request lines and headers: nothing is sent.
    @Test func aURLWithALineBreakIsNeverSent() throws {
        let server = try FakeRTSPServer { _, cseq in ok(cseq) }
        let (e, _, frames) = captureError(server.url + "\r\nX-Injected: 1\r\n\r\nOPTIONS rtsp://elsewhere/ RTSP/1.0")
        #expect(["rtsp.badURL", "rtsp.connect"].contains(e?.code.rawValue ?? "none"), "got \(String(describing: e))")
        #expect(frames == 0)
        #expect(!server.requests.withLock { $0.joined() }.contains("X-Injected"))
    }

    /// A camera whose SDP names a control URL with a space would make us write a forged request line: refused.
    @Test func aControlURLWithASpaceFromTheCameraIsRefused() throws {
        let sdp =
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n"
            + "a=rtpmap:96 H264/90000\r\na=control:track1 RTSP/1.0\r\n"
        let server = try FakeRTSPServer { method, cseq in
            switch method {
            case "DESCRIBE": return ok(cseq, "Content-Base: \("rtsp://127.0.0.1")/stream/\r\n", body: sdp)
            default: return ok(cseq, "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n")
            }
        }
        let (e, _, frames) = captureError(server.url)
        #expect(e?.code == .badURL, "got \(String(describing: e))")
        #expect(frames == 0)
        #expect(!server.requests.withLock { $0 }.contains { $0.hasPrefix("SETUP") })
    }

    @Test func refusedCredentials() throws {
        let server = try FakeRTSPServer { method, cseq in
            method == "OPTIONS"
                ? ok(cseq, "Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN\r\n")
                : "RTSP/1.0 401 Unauthorized\r\nCSeq: \(cseq)\r\nWWW-Authenticate: Basic realm=\"cam\"\r\n\r\n"
        }
        let (e, _, _) = captureError(server.url, password: "wrong")
        #expect(e?.code == "rtsp.auth", "got \(String(describing: e))")
        #expect(e?.message.contains("wrong") == false, "the password leaked into the error")
    }
}
