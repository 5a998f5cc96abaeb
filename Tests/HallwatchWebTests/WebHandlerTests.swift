import Foundation
import HTTPTypes
import HallwatchCore
import Hummingbird
import HummingbirdTesting
import Testing

@testable import HallwatchWeb

@Suite("hallwatch-web handlers")
struct WebHandlerTests {
    @Test("every route of the table declares its access; a route added around the table is refused")
    func denyByDefault() async throws {
        let h = try Harness()
        let routes = WebRoutes.table(h.env)
        #expect(Set(routes.map { "\($0.method.rawValue) \($0.path)" }).count == routes.count)
        let app = h.app { router in
            router.get("/undeclared") { _, _ in "secret" }
        }
        try await app.test(.router) { client in
            let cookie = try #require(try await signIn(client, user: "admin"))
            // Walk the table: anonymous requests to every protected route are refused.
            for route in routes {
                guard case .permission = route.access else { continue }
                try await client.execute(uri: route.path, method: route.method, headers: sameOrigin()) { r in
                    #expect([.unauthorized, .seeOther, .forbidden].contains(r.status), "\(route.method) \(route.path)")
                }
            }
            // A route the table does not know: refused even to a district admin.
            try await client.execute(uri: "/undeclared", method: .get, headers: cookieHeader(cookie)) { r in
                #expect(r.status == .forbidden)
                #expect(String(buffer: r.body).contains("access.undeclared"))
            }
            try await client.execute(uri: "/nothing-here", method: .get, headers: cookieHeader(cookie)) { r in
                #expect(r.status == .notFound)
                #expect(r.headers[.contentSecurityPolicy] != nil)
            }
        }
    }

    @Test("roles: each includes the one below; only district-admin views the configuration")
    func roles() {
        #expect(Role.viewer.permissions.isSubset(of: Role.buildingAdmin.permissions))
        #expect(Role.buildingAdmin.permissions.isSubset(of: Role.districtAdmin.permissions))
        #expect(!Role.viewer.permissions.contains(.viewAuditLog))
        #expect(!Role.buildingAdmin.permissions.contains(.viewConfiguration))
        #expect(Role.districtAdmin.permissions == Set(Permission.allCases))
    }

    @Test("login: cookie flags (RFC 6265), security headers, logout ends the session server-side")
    func loginCookieHeadersLogout() async throws {
        let h = try Harness()
        try await h.app().test(.router) { client in
            try await client.execute(
                uri: "/login", method: .post, headers: sameOrigin(),
                body: form(["username": "admin", "password": password])
            ) { r in
                #expect(r.status == .seeOther)
                #expect(r.headers[.location] == "/")
                let cookie = try #require(r.headers[.setCookie])
                #expect(cookie.hasPrefix("__Host-hallwatch-session="))
                for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] { #expect(cookie.contains(flag)) }
                #expect(!cookie.contains("Domain"))
                let csp = try #require(r.headers[.contentSecurityPolicy])
                #expect(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"))
                #expect(!csp.contains("unsafe-inline"))
                #expect(csp.contains("media-src 'self' blob:"))
                #expect(r.headers[HTTPField.Name("Strict-Transport-Security")!]?.hasPrefix("max-age=") == true)
                #expect(r.headers[HTTPField.Name("X-Content-Type-Options")!] == "nosniff")
                #expect(r.headers[HTTPField.Name("Referrer-Policy")!] == "no-referrer")
            }
            let cookie = try #require(try await signIn(client, user: "office"))
            let csrf = try #require(try await h.env.sessions.find(id: cookie)?.csrfToken)
            try await client.execute(uri: "/api/v1/cameras", method: .get, headers: cookieHeader(cookie)) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(
                uri: "/logout", method: .post, headers: sameOrigin(cookie: cookie), body: form(["csrf": csrf])
            ) { r in
                #expect(r.status == .seeOther)
                #expect(r.headers[.setCookie]?.contains("Max-Age=0") == true)
            }
            // The same cookie is now worthless.
            try await client.execute(uri: "/api/v1/cameras", method: .get, headers: cookieHeader(cookie)) { r in
                #expect(r.status == .unauthorized)
            }
            try await client.execute(uri: "/", method: .get, headers: cookieHeader(cookie)) { r in
                #expect(r.status == .seeOther)
                #expect(r.headers[.location] == "/login")
            }
        }
    }

    @Test("a wrong password and an unknown user get the same answer")
    func noEnumeration() async throws {
        let h = try Harness()
        try await h.app().test(.router) { client in
            var bodies: [String] = []
            for user in ["admin", "nobody"] {
                try await client.execute(
                    uri: "/login", method: .post, headers: sameOrigin(),
                    body: form(["username": user, "password": "wrong-password"])
                ) { r in
                    #expect(r.status == .unauthorized)
                    #expect(r.headers[.setCookie] == nil)
                    bodies.append(String(buffer: r.body))
                }
            }
            #expect(bodies[0] == bodies[1])
        }
    }

    @Test("sign-in bounds count code points as the OpenAPI maxLength does: 64 four-byte letters are a wrong name")
    func loginBoundsInCodePoints() async throws {
        let h = try Harness()
        try await h.app().test(.router) { client in
            // 64 code points, 256 UTF-8 bytes, plus extra fields the form does not define: within the document's
            // schema, so not 400; no such user, so 401.
            let wide = String(repeating: "\u{1D4D0}", count: 64)
            var fields = ["username": wide, "password": String(repeating: "\u{1F511}", count: 20)]
            fields["999999999999999999999999999999"] = "0"
            try await client.execute(uri: "/login", method: .post, headers: sameOrigin(), body: form(fields)) { r in
                #expect(r.status == .unauthorized)
            }
            try await client.execute(
                uri: "/login", method: .post, headers: sameOrigin(),
                body: form(["username": wide + "a", "password": "x"])
            ) { r in
                #expect(r.status == .badRequest)
                #expect(String(buffer: r.body).contains("Enter your user name and password."))
            }
        }
    }

    @Test("login throttling: the pair locked after 3 failures, even for the right password, then back-off ends")
    func throttling() async throws {
        let h = try Harness()
        try await h.app().test(.router) { client in
            for _ in 0..<3 { #expect(try await signIn(client, user: "admin", password: "wrong-password") == nil) }
            try await client.execute(
                uri: "/login", method: .post, headers: sameOrigin(),
                body: form(["username": "admin", "password": password])
            ) { r in
                #expect(r.status == .tooManyRequests)
                #expect(r.headers[.retryAfter] != nil)
            }
            // An unknown name is throttled exactly the same way.
            for _ in 0..<3 { #expect(try await signIn(client, user: "ghost", password: "wrong-password") == nil) }
            try await client.execute(
                uri: "/login", method: .post, headers: sameOrigin(), body: form(["username": "ghost", "password": "x"])
            ) { r in #expect(r.status == .tooManyRequests) }
            h.clocks.advance(seconds: 2)
            #expect(try await signIn(client, user: "admin") != nil)
        }
    }

    @Test("throttling by (account, address): an attacker elsewhere cannot lock out admin, nor a NAT typist the others")
    func pairBackoff() {
        let clocks = TestClocks()
        let t = LoginThrottle(clocks: clocks)
        let (office, attacker, nat) = ("10.0.0.5", "198.51.100.7", "203.0.113.1")
        t.succeeded(address: office, account: "admin")  // admin's usual address
        // An attacker keeps guessing admin: its own pair backs off, bounded at 15 min; admin is not locked out.
        for _ in 0..<40 { t.failed(address: attacker, account: "admin") }
        #expect(t.lockRemaining(address: attacker, account: "admin") == .seconds(15 * 60))
        #expect(t.lockRemaining(address: office, account: "admin") == nil)
        // A school's NAT address: one bad typist locks only their own name (1 s, 2 s, … 128 s after 10).
        for _ in 0..<3 { t.failed(address: nat, account: "teacher1") }
        #expect(t.lockRemaining(address: nat, account: "teacher1") == .seconds(1))
        for _ in 0..<7 { t.failed(address: nat, account: "teacher1") }
        #expect(t.lockRemaining(address: nat, account: "teacher1") == .seconds(128))
        #expect(t.lockRemaining(address: nat, account: "teacher2") == nil)
        // A success clears the pair.
        clocks.advance(seconds: 128)
        t.succeeded(address: nat, account: "teacher1")
        #expect(t.lockRemaining(address: nat, account: "teacher1") == nil)
        clocks.advance(seconds: 3600)
        // Spraying: ten names from one address lock it for names it never signed in with, at most a minute.
        for i in 0..<9 { t.failed(address: nat, account: "guess\(i)") }
        #expect(t.lockRemaining(address: nat, account: "teacher2") == nil)
        t.failed(address: nat, account: "guess9")
        #expect(t.lockRemaining(address: nat, account: "teacher2") == .seconds(1))
        for i in 10..<40 { t.failed(address: nat, account: "guess\(i)") }
        #expect(t.lockRemaining(address: nat, account: "teacher2") == .seconds(60))
        #expect(t.lockRemaining(address: nat, account: "teacher1") == nil)  // signed in from here before
        clocks.advance(seconds: 60)
        #expect(t.lockRemaining(address: nat, account: "teacher2") == nil)
        // One name guessed from many addresses: locked for addresses that never signed in with it, not admin's.
        for i in 0..<20 { t.failed(address: "192.0.2.\(i)", account: "admin") }
        #expect(t.lockRemaining(address: "192.0.2.200", account: "admin") == .seconds(1))
        #expect(t.lockRemaining(address: office, account: "admin") == nil)
        // Counts are forgotten an hour after their last failure.
        clocks.advance(seconds: 3600)
        #expect(t.lockRemaining(address: attacker, account: "admin") == nil)
        t.failed(address: attacker, account: "admin")
        #expect(t.lockRemaining(address: attacker, account: "admin") == nil)
    }

    @Test("the addresses a user signed in from are read back from the audit log, so a restart still spares them")
    func knownAddressesSurviveARestart() async throws {
        let h = try Harness()
        try await h.app().test(.router) { client in
            _ = try #require(try await signIn(client, user: "admin"))
            #expect(try await signIn(client, user: "office", password: "wrong-password") == nil)
        }
        let pairs = try h.env.audit.signIns()
        #expect(pairs.map(\.user) == ["admin"] && pairs[0].atMicros == h.clocks.utcNow().micros)
        let restarted = LoginThrottle(clocks: h.clocks)
        for p in pairs { restarted.remember(address: p.address, account: p.user, atMicros: p.atMicros) }
        for i in 0..<20 { restarted.failed(address: "192.0.2.\(i)", account: "admin") }
        #expect(restarted.lockRemaining(address: "192.0.2.99", account: "admin") == .seconds(1))
        #expect(restarted.lockRemaining(address: pairs[0].address, account: "admin") == nil)
    }

    @Test("CSRF: cross-site or origin-less posts are refused; a session's post needs its token")
    func csrf() async throws {
        let h = try Harness()
        try await h.app().test(.router) { client in
            let body = form(["username": "admin", "password": password])
            let refusals: [HTTPFields] = [
                [HTTPField.Name("Host")!: host, .contentType: "application/x-www-form-urlencoded"],
                [
                    HTTPField.Name("Host")!: host, .origin: "https://evil.example",
                    .contentType: "application/x-www-form-urlencoded",
                ],
                [
                    HTTPField.Name("Host")!: host, HTTPField.Name("Sec-Fetch-Site")!: "cross-site",
                    .origin: "https://\(host)",
                ],
                [HTTPField.Name("Host")!: host, .origin: "http://\(host)"],
            ]
            for headers in refusals {
                try await client.execute(uri: "/login", method: .post, headers: headers, body: body) { r in
                    #expect(r.status == .forbidden)
                    #expect(String(buffer: r.body).contains("csrf.origin"))
                }
            }
            try await client.execute(
                uri: "/login", method: .post,
                headers: [
                    HTTPField.Name("Host")!: host, HTTPField.Name("Sec-Fetch-Site")!: "same-origin",
                    .contentType: "application/x-www-form-urlencoded",
                ],
                body: body
            ) { r in #expect(r.status == .seeOther) }

            let cookie = try #require(try await signIn(client, user: "admin"))
            for token in [nil, "wrong-token"] {
                var fields: [String: String] = [:]
                if let token { fields["csrf"] = token }
                try await client.execute(
                    uri: "/logout", method: .post, headers: sameOrigin(cookie: cookie), body: form(fields)
                ) { r in
                    #expect(r.status == .forbidden)
                    #expect(String(buffer: r.body).contains("csrf.token"))
                }
            }
            let csrf = try #require(try await h.env.sessions.find(id: cookie)?.csrfToken)
            try await client.execute(
                uri: "/logout", method: .post,
                headers: sameOrigin([HTTPField.Name("X-CSRF-Token")!: csrf], cookie: cookie)
            ) { r in #expect(r.status == .seeOther) }
        }
    }

    @Test("sessions end after 15 min idle and after 12 h however active (injected clock)")
    func sessionExpiry() async throws {
        let h = try Harness()
        try await h.app().test(.router) { client in
            let idle = try #require(try await signIn(client, user: "office"))
            h.clocks.advance(seconds: 14 * 60)
            try await client.execute(uri: "/api/v1/cameras", method: .get, headers: cookieHeader(idle)) { r in
                #expect(r.status == .ok)
            }
            h.clocks.advance(seconds: 15 * 60)
            try await client.execute(uri: "/api/v1/cameras", method: .get, headers: cookieHeader(idle)) { r in
                #expect(r.status == .unauthorized)
            }

            let busy = try #require(try await signIn(client, user: "office"))
            for _ in 0..<(12 * 6 - 1) {
                h.clocks.advance(seconds: 10 * 60)
                try await client.execute(uri: "/api/v1/cameras", method: .get, headers: cookieHeader(busy)) { r in
                    #expect(r.status == .ok)
                }
            }
            h.clocks.advance(seconds: 10 * 60)
            try await client.execute(uri: "/api/v1/cameras", method: .get, headers: cookieHeader(busy)) { r in
                #expect(r.status == .unauthorized)
            }
        }
    }

    @Test("a user limited to the parking group sees no other camera anywhere")
    func cameraGroupScoping() async throws {
        let h = try Harness()
        try await h.app().test(.router) { client in
            let cookie = try #require(try await signIn(client, user: "facilities"))
            try await client.execute(uri: "/api/v1/cameras", method: .get, headers: cookieHeader(cookie)) { r in
                #expect(r.status == .ok)
                let list = try JSONDecoder().decode(CameraList.self, from: Data(buffer: r.body))
                #expect(list.cameras.map(\.id) == ["lot-north", "lot-south"])
            }
            for uri in ["/api/v1/status", "/"] {
                try await client.execute(uri: uri, method: .get, headers: cookieHeader(cookie)) { r in
                    #expect(r.status == .ok)
                    let text = String(buffer: r.body)
                    for hidden in ["lobby", "gym", "rtsp.auth"] { #expect(!text.contains(hidden), "\(uri): \(hidden)") }
                    #expect(text.contains("lot-north"))
                }
            }
            let all = try #require(try await signIn(client, user: "office"))
            try await client.execute(uri: "/api/v1/cameras", method: .get, headers: cookieHeader(all)) { r in
                let list = try JSONDecoder().decode(CameraList.self, from: Data(buffer: r.body))
                #expect(list.cameras.count == 4)
                #expect(list.cameras.first { $0.id == "gym" }?.reasonCode == "rtsp.auth")
            }
        }
    }

    @Test("the status page escapes what the bus says and carries no inline script")
    func statusPage() async throws {
        let h = try Harness()
        try await h.app().test(.router) { client in
            let cookie = try #require(try await signIn(client, user: "admin"))
            try await client.execute(uri: "/", method: .get, headers: cookieHeader(cookie)) { r in
                #expect(r.status == .ok)
                let html = String(buffer: r.body)
                #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
                #expect(!html.contains("<script>alert"))
                #expect(html.contains("<script src=\"/static/status.js\" defer></script>"))
                // Every script is a file of the box's own (responder banner, status, Chart.js, plots): none inline.
                #expect(html.components(separatedBy: "<script").count == 5)
                #expect(html.components(separatedBy: "<script src=\"/static/").count == 5)
                #expect(html.contains("District IT"))
                #expect(html.contains("<code class=\"fingerprint\">AB:CD</code>"))
                #expect(html.contains("name=\"viewport\""))
            }
            try await client.execute(uri: "/static/status.js", method: .get, headers: [HTTPField.Name("Host")!: host]) {
                r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType]?.hasPrefix("text/javascript") == true)
                #expect(!String(buffer: r.body).contains("innerHTML"))
            }
        }
    }

    @Test("a box with no user shows how to provision one, and nobody can sign in")
    func noUsers() async throws {
        let h = try Harness(settings: makeSettings(users: []))
        try await h.app().test(.router) { client in
            try await client.execute(uri: "/login", method: .get, headers: [HTTPField.Name("Host")!: host]) { r in
                #expect(String(buffer: r.body).contains("hallwatchctl user hash"))
            }
            #expect(try await signIn(client, user: "admin", password: "admin") == nil)
        }
    }

    @Test("logins, failures, logouts and camera views are audited in one intact chain")
    func audited() async throws {
        let h = try Harness()
        try await h.app().test(.router) { client in
            _ = try await signIn(client, user: "admin", password: "wrong-password")
            let cookie = try #require(try await signIn(client, user: "admin"))
            try await client.execute(uri: "/api/v1/cameras", method: .get, headers: cookieHeader(cookie)) { _ in }
        }
        let entries = try await h.env.audit.entries()
        #expect(entries.map(\.action) == ["login.failure", "login.success", "camera.view"])
        #expect(entries[2].object == "lobby,gym,lot-north,lot-south")
        #expect(AuditChain.verify(entries) == .intact(count: 3, head: entries[2].hash))
        #expect(try AuditLog.verify(filePath: h.auditPath) == .intact(count: 3, head: entries[2].hash))
    }

    @Test("bounded inputs: oversized forms refused, long names refused, no file path reaches the disk")
    func boundedInputs() async throws {
        let h = try Harness()
        try await h.app().test(.router) { client in
            try await client.execute(
                uri: "/login", method: .post, headers: sameOrigin(),
                body: ByteBuffer(string: "username=admin&password=" + String(repeating: "x", count: 5000))
            ) { r in #expect(r.status == .contentTooLarge) }
            try await client.execute(
                uri: "/login", method: .post, headers: sameOrigin(),
                body: form(["username": String(repeating: "a", count: 65), "password": password])
            ) { r in #expect(r.status == .badRequest) }
            // Static files are fixed routes compiled in: traversal has nothing to reach.
            for uri in [
                "/static/../etc/passwd", "/static/%2e%2e/%2e%2e/etc/passwd", "/static/%252e%252e/etc/passwd",
                "/static//etc/passwd", "/static/status.js/../../web.sqlite",
            ] {
                try await client.execute(uri: uri, method: .get, headers: [.hostHeader: host]) { r in
                    #expect([.notFound, .seeOther, .unauthorized].contains(r.status), "\(uri)")
                    #expect(!String(buffer: r.body).contains("root:"))
                }
            }
        }
    }

    @Test("the plain-HTTP port only redirects to HTTPS")
    func redirect() async throws {
        let app = Application(router: WebService.redirectRouter(httpsPort: 8443))
        try await app.test(.router) { client in
            try await client.execute(
                uri: "/status?x=1", method: .get, headers: [:]
            ) { r in
                #expect(r.status == .permanentRedirect)
                #expect(r.headers[.location] == "https://localhost:8443/status?x=1")
            }
        }
    }
}

@Suite("hallwatch-web /metrics")
struct WebMetricsTests {
    static let token = String(repeating: "t0k3n", count: 8)

    @Test("/metrics needs the bearer token; a session is not enough; the scrape is Prometheus text")
    func metrics() async throws {
        let database = try WebDatabase(path: ":memory:")
        let clocks = TestClocks()
        let settings = makeSettings()
        let env = WebEnvironment(
            settings: settings,
            sessions: SessionStore(database: database, clocks: clocks, idle: .seconds(900), lifetime: .seconds(43200)),
            throttle: LoginThrottle(clocks: clocks), audit: AuditLog(database: database, clocks: clocks, filePath: nil),
            status: FakeStatus(), clocks: clocks, building: "B", metricsToken: Self.token)
        try await Application(router: WebRoutes.router(environment: env)).test(.router) { client in
            let cookie = try #require(try await signIn(client, user: "admin"))
            for headers: HTTPFields in [
                [:], cookieHeader(cookie), [.authorization: "Bearer wrong"], [.authorization: "Basic \(Self.token)"],
            ] {
                try await client.execute(uri: "/metrics", method: .get, headers: headers) { r in
                    #expect(r.status == .unauthorized)
                }
            }
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(Self.token)"]) {
                r in
                #expect(r.status == .ok)
                let text = String(buffer: r.body)
                #expect(text.contains("hallwatch_camera_online{camera=\"gym\"} 0"))
                #expect(text.contains("hallwatch_camera_online{camera=\"lobby\"} 1"))
                #expect(text.contains("hallwatch_disk_free_slots{disk=\"disk0\"} 60"))
                #expect(text.contains("hallwatch_process_up{process=\"recorder\"} 1"))
                #expect(text.contains("# TYPE hallwatch_camera_bitrate_bits_per_second gauge"))
            }
        }
        // No token configured: nobody.
        let h = try Harness()
        try await h.app().test(.router) { client in
            try await client.execute(uri: "/metrics", method: .get, headers: [.authorization: "Bearer \(Self.token)"]) {
                r in #expect(r.status == .unauthorized)
            }
        }
    }
}

@Test("the OpenAPI document is served, is JSON, and describes every API route of the table with its method")
func openAPIDocument() async throws {
    let h = try Harness()
    try await h.app().test(.router) { client in
        try await client.execute(uri: "/api/v1/openapi.json", method: .get, headers: [.hostHeader: host]) { r in
            #expect(r.status == .ok)
            let doc = try #require(try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any])
            #expect(doc["openapi"] as? String == "3.1.0")
            let paths = try #require(doc["paths"] as? [String: [String: Any]])
            // The JSON API, the form posts tools use (/login, /logout) and /metrics; not the HTML page or assets.
            for route in WebRoutes.table(h.env)
            where route.path.hasPrefix("/api/v1/") || route.method == .post || route.path == "/metrics" {
                let methods = paths[route.path]
                #expect(methods?[route.method.rawValue.lowercased()] != nil, "\(route.method) \(route.path)")
            }
        }
    }
}

@Test("a method the table does not declare for a path is 405 with Allow (RFC 9110 §15.5.6); unknown paths 404")
func methodNotAllowed() async throws {
    let h = try Harness()
    try await h.app().test(.router) { client in
        try await client.execute(uri: "/login", method: .put, headers: sameOrigin()) { r in
            #expect(r.status == .methodNotAllowed)
            #expect(r.headers[.allow] == "GET, POST")
        }
        try await client.execute(uri: "/api/v1/cameras/lobby/thumbnail.jpg", method: .delete, headers: sameOrigin()) {
            r in
            #expect(r.status == .methodNotAllowed)
            #expect(r.headers[.allow] == "GET")
        }
        try await client.execute(uri: "/api/v1/nothing", method: .delete, headers: sameOrigin()) { r in
            #expect(r.status == .notFound)
        }
    }
}
