import Foundation
import HTTPTypes
import HallwatchCore
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@testable import HallwatchWeb

/// Responder links through the real router and a real SQLite database: who may make them, the PIN and its
/// lockout, what a responder session may and may not reach (deny by default), scope to a camera group, expiry,
/// revocation, the dispatch system's token, the banner and the audit entries.
@Suite("hallwatch-web responder links")
struct ResponderLinkTests {
    static func harness() throws -> Harness {
        var h = try Harness()
        h.env.responders = ResponderLinks(database: h.database, clocks: h.clocks)
        h.env.live = LiveHub(socketPath: "/nonexistent/recorder-live.sock", logger: Logger(label: "test"))
        return h
    }

    /// JSON headers of a same-origin request with the session's CSRF token.
    static func json(_ cookie: String, csrf: String) -> HTTPFields {
        [
            .hostHeader: host, .origin: "https://\(host)", .contentType: "application/json",
            .cookie: "\(WebCookies.sessionName)=\(cookie)", HTTPField.Name("X-CSRF-Token")!: csrf,
        ]
    }

    static func responderHeaders(_ id: String, _ extra: HTTPFields = [:]) -> HTTPFields {
        var h: HTTPFields = [.cookie: "\(ResponderAccess.cookieName)=\(id)", .hostHeader: host]
        h.append(contentsOf: extra)
        return h
    }

    /// Makes a link as `admin`; returns the decoded answer.
    static func create(
        _ client: some TestClientProtocol, _ h: Harness, _ body: String, status: HTTPResponse.Status = .created
    ) async throws -> ResponderRoutes.Created? {
        let cookie = try #require(try await signIn(client, user: "admin"))
        let csrf = try #require(try await h.env.sessions.find(id: cookie)?.csrfToken)
        return try await client.execute(
            uri: "/api/v1/responder-links", method: .post, headers: json(cookie, csrf: csrf),
            body: ByteBuffer(string: body)
        ) { r in
            #expect(r.status == status, "\(String(buffer: r.body))")
            return try? JSONDecoder().decode(ResponderRoutes.Created.self, from: Data(buffer: r.body))
        }
    }

    /// Opens the link with `pin`; returns the responder cookie's value (nil when refused) and the status.
    static func open(_ client: some TestClientProtocol, _ url: String, pin: String?) async throws -> (
        String?, HTTPResponse.Status, String
    ) {
        let path = String(url.dropFirst("https://\(host)".count))
        var headers = sameOrigin()
        headers[.userAgent] = "TestPhone/1.0"
        return try await client.execute(
            uri: path, method: .post, headers: headers, body: form(pin.map { ["pin": $0] } ?? [:])
        ) { r in
            let cookie = r.headers[.setCookie].flatMap { set -> String? in
                guard set.hasPrefix(ResponderAccess.cookieName + "=") else { return nil }
                return String(set.split(separator: ";")[0].split(separator: "=", maxSplits: 1)[1])
            }
            return (cookie, r.status, String(buffer: r.body))
        }
    }

    @Test("making a link: admins only, every input bounded, URL and QR code in the answer, audited")
    func create() async throws {
        let h = try Self.harness()
        try await h.app().test(.router) { client in
            let office = try #require(try await signIn(client, user: "office"))
            let officeCSRF = try #require(try await h.env.sessions.find(id: office)?.csrfToken)
            try await client.execute(
                uri: "/api/v1/responder-links", method: .post, headers: Self.json(office, csrf: officeCSRF),
                body: ByteBuffer(string: #"{"label":"x"}"#)
            ) { r in #expect(r.status == .forbidden) }
            for bad in [
                #"{"label":""}"#, #"{"label":"Engine 3","minutes":14}"#, #"{"label":"Engine 3","minutes":721}"#,
                #"{"label":"Engine 3","pin":"12345"}"#, #"{"label":"Engine 3","pin":"12345a"}"#,
                #"{"label":"a\nb"}"#, #"{"label":"Engine 3","pin":""}"#, "not json",
                // Misspelt keys are refused, never ignored (a link without the PIN or group the caller meant).
                #"{"label":"Engine 3","PIN":"314159"}"#, #"{"label":"Engine 3","cameras":["lobby"]}"#,
                #"{"label":"Engine 3","group":"parking"}"#,
                // A key twice: which PIN, which group? Refused, never one of them kept silently.
                #"{"label":"Engine 3","pin":"314159","pin":null}"#,
                #"{"label":"Engine 3","cameraGroup":"parking","cameraGroup":null}"#,
            ] {
                _ = try await Self.create(client, h, bad, status: .badRequest)
            }
            _ = try await Self.create(client, h, #"{"label":"Engine 3","cameraGroup":"nope"}"#, status: .notFound)
            let made = try #require(
                try await Self.create(client, h, #"{"label":"Engine 3","pin":"123456","cameraGroup":"parking"}"#))
            #expect(made.url.hasPrefix("https://\(host)/r/") && made.url.count == "https://\(host)/r/".count + 43)
            #expect(made.qrSVG.hasPrefix("<svg") && made.qrSVG.contains("<path d=\"M"))
            #expect(made.link.state == "active" && made.link.pin && made.link.cameraGroup == "parking")
            #expect(made.link.openings == 0 && made.link.createdBy == "admin")
            let created = try #require(ISO8601.parse(made.link.created))
            let expires = try #require(ISO8601.parse(made.link.expires))
            #expect(expires.micros - created.micros == 4 * 3600 * 1_000_000)  // the default: 4 h
            let entries = try await h.env.audit.entries()
            let entry = try #require(entries.last { $0.action == "responderLink.create" })
            #expect(entry.actor == "admin" && entry.object == made.link.id)
            #expect(entry.details.contains("label Engine 3") && entry.details.contains("cameras parking"))
        }
    }

    @Test("the PIN: wrong ones counted and audited, the fifth locks the link, admins see the lock")
    func pinLockout() async throws {
        let h = try Self.harness()
        try await h.app().test(.router) { client in
            let made = try #require(try await Self.create(client, h, #"{"label":"Sgt. Ruiz","pin":"424242"}"#))
            let path = String(made.url.dropFirst("https://\(host)".count))
            try await client.execute(uri: path, method: .get, headers: [.hostHeader: host]) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).contains("id=\"pin\"") && String(buffer: r.body).contains("Sgt. Ruiz"))
            }
            for attempt in 1...4 {
                let (cookie, status, body) = try await Self.open(client, made.url, pin: "000000")
                #expect(cookie == nil && status == .unauthorized)
                #expect(body.contains("\(5 - attempt) attempt"), "\(body)")
            }
            let (cookie, status, body) = try await Self.open(client, made.url, pin: "000000")
            #expect(cookie == nil && status == .notFound && body.contains("responder.locked"))
            // Locked: the right PIN no longer opens it.
            let (again, againStatus, _) = try await Self.open(client, made.url, pin: "424242")
            #expect(again == nil && againStatus == .notFound)
            let actions = try await h.env.audit.entries().map(\.action)
            #expect(actions.filter { $0 == "responderLink.pin" }.count == 4)
            #expect(actions.filter { $0 == "responderLink.locked" }.count == 1)
            let admin = try #require(try await signIn(client, user: "admin"))
            try await client.execute(uri: "/api/v1/responder-banner", method: .get, headers: cookieHeader(admin)) { r in
                let banner = try JSONDecoder().decode(ResponderRoutes.Banner.self, from: Data(buffer: r.body))
                #expect(banner.admin && banner.links.map(\.state) == ["locked"] && banner.links[0].failedPINs == 5)
            }
        }
    }

    @Test("a responder session: the map and live view of its group's cameras; everything else refused")
    func scope() async throws {
        let h = try Self.harness()
        try await h.app().test(.router) { client in
            let made = try #require(
                try await Self.create(client, h, #"{"label":"Engine 3","pin":"123456","cameraGroup":"parking"}"#))
            let (cookie, status, _) = try await Self.open(client, made.url, pin: "123456")
            #expect(status == .seeOther)
            let id = try #require(cookie)
            for (uri, expected) in [
                ("/map", HTTPResponse.Status.ok), ("/api/v1/map", .ok), ("/live/lot-north", .ok),
                ("/live/lobby", .notFound), ("/", .forbidden), ("/api/v1/status", .forbidden),
                ("/api/v1/cameras", .forbidden), ("/api/v1/cameras/lot-north/thumbnail.jpg", .forbidden),
                ("/audit", .forbidden), ("/audit.csv", .forbidden), ("/api/v1/plots", .forbidden),
                ("/api/v1/responder-links", .forbidden), ("/responder-links", .forbidden),
            ] {
                try await client.execute(uri: uri, method: .get, headers: Self.responderHeaders(id)) { r in
                    #expect(r.status == expected, "\(uri): \(r.status)")
                }
            }
            // What a person sees: a refused page is a page with the way back to the map, not JSON; the live page
            // links only the map (no Status, no timeline: both would be refused).
            try await client.execute(uri: "/", method: .get, headers: Self.responderHeaders(id)) { r in
                let page = String(buffer: r.body)
                #expect(r.headers[.contentType]?.hasPrefix("text/html") == true)
                #expect(page.contains(#"data-code="access.denied""#) && page.contains(#"<a id="back" href="/map">"#))
            }
            try await client.execute(uri: "/live/lot-north", method: .get, headers: Self.responderHeaders(id)) { r in
                let page = String(buffer: r.body)
                #expect(r.status == .ok && page.contains(#"<nav><a href="/map">Map</a></nav>"#), "\(page)")
                #expect(!page.contains(#"href="/""#) && !page.contains("timeline"))
            }
            // The live socket: only the group's cameras.
            for (camera, expected) in [("lot-north", HTTPResponse.Status.ok), ("lobby", .notFound), ("gym", .notFound)]
            {
                var upgrade = LiveRouteTests.upgrade(nil)
                upgrade[.cookie] = "\(ResponderAccess.cookieName)=\(id)"
                try await client.execute(uri: "/api/v1/cameras/\(camera)/live", method: .get, headers: upgrade) { r in
                    #expect(r.status == expected, "\(camera)")
                }
            }
            // No state change at all, not even signing out.
            try await client.execute(
                uri: "/logout", method: .post, headers: Self.responderHeaders(id, [.origin: "https://\(host)"])
            ) { r in #expect(r.status == .forbidden) }
            // The opening is audited with address and user agent; the session is a viewer now.
            let opened = try #require(try await h.env.audit.entries().last { $0.action == "responderLink.open" })
            #expect(opened.object == made.link.id && opened.details.contains("agent TestPhone/1.0"))
            #expect(opened.actor.hasPrefix("responder:\(made.link.id):"))
            #expect(try await h.env.responders!.viewers()[made.link.id] == 1)
            let links = try await ResponderRoutes.views(h.env)
            #expect(links.first?.openings == 1 && links.first?.viewers == 1)
        }
    }

    @Test("revoking ends every session of the link at once; expiry ends them too")
    func revokeAndExpiry() async throws {
        let h = try Self.harness()
        try await h.app().test(.router) { client in
            let made = try #require(try await Self.create(client, h, #"{"label":"Engine 3"}"#))
            let (a, _, _) = try await Self.open(client, made.url, pin: nil)
            let (b, _, _) = try await Self.open(client, made.url, pin: nil)
            let (one, two) = (try #require(a), try #require(b))
            #expect(try await h.env.sessions.stillLive(idHash: SessionStore.hash(one)))
            let admin = try #require(try await signIn(client, user: "admin"))
            let csrf = try #require(try await h.env.sessions.find(id: admin)?.csrfToken)
            try await client.execute(
                uri: "/api/v1/responder-links/\(made.link.id)", method: .delete, headers: Self.json(admin, csrf: csrf)
            ) { r in #expect(r.status == .noContent) }
            for id in [one, two] {
                #expect(try await !h.env.sessions.stillLive(idHash: SessionStore.hash(id)))
                try await client.execute(uri: "/api/v1/map", method: .get, headers: Self.responderHeaders(id)) { r in
                    #expect(r.status == .unauthorized)
                    #expect(String(buffer: r.body).contains("responder.revoked"))
                }
            }
            // A reload, and another: the page says why each time (the cookie is kept), never the staff sign-in.
            for _ in 0..<2 {
                try await client.execute(uri: "/map", method: .get, headers: Self.responderHeaders(one)) { r in
                    let page = String(buffer: r.body)
                    #expect(r.status == .unauthorized && r.headers[.setCookie] == nil && r.headers[.location] == nil)
                    #expect(page.contains(#"data-code="responder.revoked">This link was revoked.</p>"#), "\(page)")
                    #expect(!page.contains("password"))
                }
            }
            let (reopened, status, body) = try await Self.open(client, made.url, pin: nil)
            #expect(reopened == nil && status == .notFound && body.contains("responder.revoked"))
            try await client.execute(
                uri: "/api/v1/responder-links/\(made.link.id)", method: .delete, headers: Self.json(admin, csrf: csrf)
            ) { r in #expect(r.status == .notFound) }
            #expect(try await h.env.audit.entries().contains { $0.action == "responderLink.revoke" })

            // Expiry: a 15-minute link ends 15 minutes later, whatever its sessions do.
            let short = try #require(try await Self.create(client, h, #"{"label":"Medic 7","minutes":15}"#))
            let (s, _, _) = try await Self.open(client, short.url, pin: nil)
            let session = try #require(s)
            h.clocks.advance(seconds: 14 * 60)
            try await client.execute(uri: "/api/v1/map", method: .get, headers: Self.responderHeaders(session)) { r in
                #expect(r.status == .ok)
            }
            h.clocks.advance(seconds: 61)
            try await client.execute(uri: "/api/v1/map", method: .get, headers: Self.responderHeaders(session)) { r in
                #expect(r.status == .unauthorized && String(buffer: r.body).contains("responder.expired"))
            }
            #expect(try await !h.env.sessions.stillLive(idHash: SessionStore.hash(session)))
            let (late, lateStatus, _) = try await Self.open(client, short.url, pin: nil)
            #expect(late == nil && lateStatus == .notFound)
            let path = String(short.url.dropFirst("https://\(host)".count))
            try await client.execute(uri: path, method: .get, headers: [.hostHeader: host]) { r in
                #expect(r.status == .notFound && String(buffer: r.body).contains("expired"))
            }
        }
    }

    @Test("a dispatch system's bearer token makes links without a session or Origin; nothing else")
    func dispatchToken() async throws {
        var h = try Self.harness()
        let token = String(repeating: "d", count: 40)
        h.env.dispatchToken = token
        try await h.app().test(.router) { client in
            let body = ByteBuffer(string: #"{"label":"County 911","minutes":60}"#)
            try await client.execute(
                uri: "/api/v1/responder-links", method: .post,
                headers: [.hostHeader: host, .authorization: "Bearer \(token)", .contentType: "application/json"],
                body: body
            ) { r in
                #expect(r.status == .created)
                let made = try JSONDecoder().decode(ResponderRoutes.Created.self, from: Data(buffer: r.body))
                #expect(made.link.createdBy == "dispatch" && made.link.cameraGroup == nil)
            }
            try await client.execute(
                uri: "/api/v1/responder-links", method: .post,
                headers: [.hostHeader: host, .authorization: "Bearer wrong", .contentType: "application/json"],
                body: body
            ) { r in #expect(r.status == .unauthorized) }
            try await client.execute(
                uri: "/api/v1/status", method: .get, headers: [.hostHeader: host, .authorization: "Bearer \(token)"]
            ) { r in #expect(r.status == .unauthorized) }
        }
    }

    @Test("the QR code: libqrencode's modules drawn as an SVG with a quiet zone")
    func qrCode() throws {
        let code = try QRCode("https://box.example/r/" + String(repeating: "A", count: 43))
        #expect(code.width >= 21 && (code.width - 17) % 4 == 0)  // 17 + 4 × version (ISO/IEC 18004 §5.3.1)
        // The three finder patterns: dark corners.
        #expect(code.isDark(x: 0, y: 0) && code.isDark(x: code.width - 1, y: 0) && code.isDark(x: 0, y: code.width - 1))
        let svg = code.svg()
        #expect(svg.contains("viewBox=\"0 0 \(code.width + 8) \(code.width + 8)\""))
        #expect(throws: QRCode.Problem.self) { try QRCode("") }
        #expect(throws: QRCode.Problem.self) { try QRCode(String(repeating: "x", count: 513)) }
    }
}
