import Foundation
import HTTPTypes
import HallwatchCore
import HallwatchDataPlane
import Hummingbird
import HummingbirdTesting
import HummingbirdWSTesting
import HummingbirdWebSocket
import Logging
import NIOCore
import Synchronization
import Testing

@testable import HallwatchWeb

/// `ftyp` + `moov/trak/mdia/minf/stbl/stsd/avc1` with an `avcC` (High, level 3.1) of 1280×720.
func h264Init() -> [UInt8] {
    func box(_ type: String, _ body: [UInt8]) -> [UInt8] {
        let n = UInt32(8 + body.count)
        return [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + Array(type.utf8) + body
    }
    var visual = [UInt8](repeating: 0, count: 78)
    (visual[24], visual[25], visual[26], visual[27]) = (0x05, 0x00, 0x02, 0xD0)
    let entry = box("avc1", visual + box("avcC", [1, 0x64, 0x00, 0x1F, 0xFF, 0xE0]))
    let stsd = box("stsd", [0, 0, 0, 0, 0, 0, 0, 1] + entry)
    return box("ftyp", Array("isom".utf8)) + box("moov", box("trak", box("mdia", box("minf", box("stbl", stsd)))))
}

@Suite("hallwatch-web live view")
struct LiveRouteTests {
    static func upgrade(_ cookie: String?, origin: String? = "https://\(host)") -> HTTPFields {
        var h: HTTPFields = [
            .hostHeader: host, .upgrade: "websocket", .connection: "Upgrade",
            HTTPField.Name("Sec-WebSocket-Version")!: "13",
            HTTPField.Name("Sec-WebSocket-Key")!: "dGhlIHNhbXBsZSBub25jZQ==",
        ]
        if let origin { h[.origin] = origin }
        if let cookie { h[.cookie] = "\(WebCookies.sessionName)=\(cookie)" }
        return h
    }

    @Test("the live route: permission, camera groups (404 as for no camera), Origin, stream, upgrade, no tap")
    func access() async throws {
        var h = try Harness()
        h.env.live = LiveHub(socketPath: "/nonexistent/recorder-live.sock", logger: Logger(label: "test"))
        try await h.app().test(.router) { client in
            let path = "/api/v1/cameras/lobby/live?stream=main"
            try await client.execute(uri: path, method: .get, headers: Self.upgrade(nil)) { r in
                #expect(r.status == .unauthorized)
            }
            let parking = try #require(try await signIn(client, user: "facilities"))
            for (uri, status, code) in [
                ("/api/v1/cameras/lobby/live", HTTPResponse.Status.notFound, "live.camera"),
                ("/api/v1/cameras/nope/live", .notFound, "live.camera"),
                // A sub stream is asked for with ?stream=sub of its camera, never by its own id.
                ("/api/v1/cameras/lot-north/live?stream=sub", .ok, ""),
                ("/api/v1/cameras/lot-south/live?stream=sub", .notFound, "live.stream"),
                ("/api/v1/cameras/lot-north/live?stream=hd", .notFound, "live.stream"),
                ("/api/v1/cameras/lot-north%2Fsub/live", .notFound, "live.camera"),
                ("/api/v1/cameras/lot-north/live", .ok, ""),
            ] {
                try await client.execute(uri: uri, method: .get, headers: Self.upgrade(parking)) { r in
                    #expect(r.status == status, "\(uri)")
                    #expect(code.isEmpty || String(buffer: r.body).contains(code), "\(uri)")
                }
            }
            let office = try #require(try await signIn(client, user: "office"))
            try await client.execute(uri: path, method: .get, headers: Self.upgrade(office)) { r in
                #expect(r.status == .ok)
            }
            // Cross-site WebSocket hijacking: the browser sends the cookie, the Origin gives it away.
            try await client.execute(
                uri: path, method: .get, headers: Self.upgrade(office, origin: "https://evil.example")
            ) { r in
                #expect(r.status == .forbidden)
                #expect(String(buffer: r.body).contains("csrf.origin"))
            }
            try await client.execute(uri: path, method: .get, headers: Self.upgrade(office, origin: nil)) { r in
                #expect(r.status == .forbidden)
            }
            try await client.execute(uri: path, method: .get, headers: cookieHeader(office)) { r in
                #expect(r.status == .badRequest)
                #expect(String(buffer: r.body).contains("live.upgrade"))
            }
            try await client.execute(uri: "/live/lobby", method: .get, headers: cookieHeader(parking)) { r in
                #expect(r.status == .notFound)
            }
            // A camera's live page links its timeline; the grid, being many cameras, does not.
            try await client.execute(uri: "/live/lot-north", method: .get, headers: cookieHeader(parking)) { r in
                let html = String(buffer: r.body)
                #expect(html.contains(#"<a id="timeline-link" href="/cameras/lot-north/timeline">Timeline</a>"#))
                #expect(html.contains(#"<a href="/">Status</a>"#))
            }
            try await client.execute(uri: "/live", method: .get, headers: cookieHeader(parking)) { r in
                let html = String(buffer: r.body)
                #expect(html.contains("data-camera=\"lot-north\"") && !html.contains("data-camera=\"lobby\""))
                // Grid tiles play the sub stream of a camera that has one.
                #expect(html.contains("data-camera=\"lot-north\" data-stream=\"sub\" data-sub=\"1\""))
                #expect(html.contains("data-camera=\"lot-south\"><video"))
                #expect(!html.contains("lot-north/sub"))
                #expect(html.contains("<script src=\"/static/live.js\" defer></script>"))
                #expect(html.components(separatedBy: "<script").count == 3)  // live.js and the responder banner
                #expect(!html.contains("timeline-link"))
            }
            try await client.execute(uri: "/api/v1/cameras", method: .get, headers: cookieHeader(parking)) { r in
                // The sub stream is no camera of its own: it is lot-north's `sub`.
                let list = try JSONDecoder().decode(CameraList.self, from: Data(buffer: r.body))
                #expect(list.cameras.map(\.id) == ["lot-north", "lot-south"])
                #expect(list.cameras.first?.sub?.state == "online" && list.cameras.last?.sub == nil)
            }
        }
        h.env.live = nil
        try await h.app().test(.router) { client in
            let office = try #require(try await signIn(client, user: "office"))
            try await client.execute(
                uri: "/api/v1/cameras/lobby/live", method: .get, headers: Self.upgrade(office)
            ) { r in #expect(r.status == .serviceUnavailable) }
        }
    }

    @Test("a real WebSocket: codec message, init segment, keyframe-first media with its receive times; audited")
    func liveSocketEndToEnd() async throws {
        // A live tap of our own on a Unix socket, holding an init segment and one keyframe fragment.
        let dir = FileManager.default.temporaryDirectory.path + "/hw-live-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tap = LiveTap(logger: Logger(label: "test"))
        let lobby = CameraID("lobby")!
        let received = Int64(1_800_000_000_000_000)
        tap.publish(
            MediaSegment(
                meta: FragmentMeta(
                    kind: .initSegment, keyframe: false, run: 7, sequence: 0, start90k: .zero, duration90k: 0,
                    utc: UTCMicros(received)), payload: h264Init()), of: lobby, receivedMicros: received)
        tap.publish(
            MediaSegment(
                meta: FragmentMeta(
                    kind: .fragment, keyframe: true, run: 7, sequence: 1, start90k: .zero, duration90k: 90_000,
                    utc: UTCMicros(received)), payload: Array(repeating: 0xAB, count: 40_000)), of: lobby,
            receivedMicros: received + 1_000_000)
        let listener = try UnixSocket.listen(path: dir + "/recorder-live.sock")
        Thread { tap.acceptLoop(listener, isKnown: { _ in true }) }.start()
        defer { tap.stop(listener) }

        var h = try Harness()
        h.env.live = LiveHub(socketPath: dir + "/recorder-live.sock", logger: Logger(label: "test"))
        let router = WebRoutes.router(environment: h.env)
        let app = Application(router: router, server: .http1WebSocketUpgrade(webSocketRouter: router))
        let messages = MessageLog()
        try await app.test(.live) { client in
            let cookie = try #require(try await signIn(client, user: "admin"))
            // The client sends its own `Origin: ws://…`; a browser's fetch metadata says what a browser would.
            let headers: HTTPFields = [
                HTTPField.Name("Sec-Fetch-Site")!: "same-origin", .cookie: "\(WebCookies.sessionName)=\(cookie)",
            ]
            _ = try await client.ws(
                "/api/v1/cameras/lobby/live?stream=main",
                configuration: .init(maxFrameSize: 1 << 20, additionalHeaders: headers)
            ) { inbound, _, _ in
                for try await message in inbound.messages(maxSize: 1 << 20) {
                    switch message {
                    case .text(let t): messages.add("text " + t)
                    case .binary(var b):
                        let kind = b.readInteger(as: UInt8.self) ?? 0
                        let flags = b.readInteger(as: UInt8.self) ?? 0
                        let inCapture = b.readInteger(endianness: .little, as: UInt16.self) ?? 0
                        let ms = Double(bitPattern: b.readInteger(endianness: .little, as: UInt64.self) ?? 0)
                        messages.add("binary \(kind) \(flags) \(inCapture) \(Int64(ms)) \(b.readableBytes)")
                    }
                    if messages.count == 3 { break }
                }
            }
        }
        let log = messages.all
        #expect(log.count == 3)
        #expect(log.first?.contains("\"codec\":\"avc1.64001F\"") == true, "\(log)")
        #expect(log.first?.contains("\"width\":1280") == true)
        #expect(log.dropFirst().first == "binary 1 0 0 1800000000000 \(h264Init().count)")
        // Taken in by the capture worker at its UTC anchor, received by the recorder 1 000 ms later.
        #expect(log.dropFirst(2).first == "binary 2 1 1000 1800000001000 40000")
        // The end of the view is audited once the socket is gone.
        var actions: [String] = []
        for _ in 0..<50 {
            actions = try await h.env.audit.entries().map(\.action)
            if actions.contains("live.end") { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(actions.contains("live.start") && actions.contains("live.end"), "\(actions)")
        let entries = try await h.env.audit.entries()
        #expect(entries.first { $0.action == "live.end" }?.object == "lobby")
        #expect(AuditChain.verify(entries) == .intact(count: entries.count, head: entries.last!.hash))
    }
}

/// Messages a WebSocket client received, in order.
final class MessageLog: Sendable {
    let lines = Mutex<[String]>([])
    func add(_ s: String) { lines.withLock { $0.append(s) } }
    var count: Int { lines.withLock { $0.count } }
    var all: [String] { lines.withLock { $0 } }
}
