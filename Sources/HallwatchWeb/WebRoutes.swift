import Dispatch
import Foundation
import HTTPTypes
import HallwatchCore
import HallwatchStatus
import Hummingbird
import HummingbirdBcrypt
import HummingbirdWebSocket
import Logging
import NIOCore
import Synchronization

/// Where the web reads the box's state: the bus in production (``BusStatusSource``), a fake in tests.
public protocol StatusSource: Sendable {
    /// The box now; cameras in configuration order.
    func snapshot(now: UTCMicros) -> StatusCollector.Snapshot
    /// The recent typed errors, newest first.
    func recentAlarms() -> [ErrorEvent]
}

/// ``StatusSource`` over `HallwatchStatus`'s collector and alarms (the same snapshot `hallwatchctl status` prints).
public struct BusStatusSource: StatusSource {
    let collector: StatusCollector
    let alarms: RecentAlarms
    let configured: [CameraID]
    public init(collector: StatusCollector, alarms: RecentAlarms, configured: [CameraID]) {
        self.collector = collector
        self.alarms = alarms
        self.configured = configured
    }
    public func snapshot(now: UTCMicros) -> StatusCollector.Snapshot {
        collector.snapshot(configured: configured, now: now)
    }
    public func recentAlarms() -> [ErrorEvent] { alarms.recent() }
}

/// Everything the handlers use, built once by `hallwatch-web` (or a test).
public struct WebEnvironment: Sendable {
    /// Users, groups and web settings.
    public var settings: WebSettings
    /// Sessions in the web's database.
    public var sessions: SessionStore
    /// Login throttling.
    public var throttle: LoginThrottle
    /// The audit log (the one call every audited action goes through).
    public var audit: AuditLog
    /// The box's state (the bus).
    public var status: any StatusSource
    /// Time, injected.
    public var clocks: any Clocks
    /// Box name shown on pages.
    public var building: String
    /// The bearer token `/metrics` requires (from `web.metricsTokenFile`); `nil`: `/metrics` refuses everyone.
    public var metricsToken: String?
    /// The live view's subscriptions to the recorder's live tap; `nil`: live view answers 503.
    public var live: LiveHub?
    /// A bcrypt hash of a random password at the users' cost: an unknown user name is checked against it, so
    /// a login costs the same whether the name exists or not.
    let dummyHash: String
    let liveStreams = LiveStreamCount()
    /// Most live-update streams open at once (each holds a connection and a timer).
    public static let maxLiveStreams = 64

    public init(
        settings: WebSettings, sessions: SessionStore, throttle: LoginThrottle, audit: AuditLog,
        status: any StatusSource, clocks: any Clocks, building: String, metricsToken: String? = nil,
        live: LiveHub? = nil
    ) {
        self.metricsToken = metricsToken
        self.live = live
        self.settings = settings
        self.sessions = sessions
        self.throttle = throttle
        self.audit = audit
        self.status = status
        self.clocks = clocks
        self.building = building
        // The dummy's cost follows the configured hashes (tests use cost 4), so the timing matches.
        let cost = settings.users.first.flatMap { UInt8(String($0.passwordHash.dropFirst(4).prefix(2))) }
        dummyHash = Bcrypt.hash(SessionStore.randomToken(), cost: cost ?? PasswordHashing.cost)
    }
}

/// How many live-update streams are open.
final class LiveStreamCount: Sendable {
    let count = Mutex(0)
}

/// One route of the table: method, path, who may call it, and its handler. Routes reach the router only
/// through ``WebRoutes/router(environment:)``, and ``AccessMiddleware`` refuses any matched route not in the
/// table: a route without a declared permission cannot be called.
public struct WebRoute: Sendable {
    public let method: HTTPRequest.Method
    public let path: String
    public let access: Access
    /// For a plain route, its response; for a WebSocket route, the check before the upgrade (a response other
    /// than 200 refuses it).
    let handler: @Sendable (Request, WebContext) async throws -> Response
    /// A WebSocket route's handler after the upgrade (RFC 6455); `nil` for a plain route.
    var webSocket:
        (
            @Sendable (WebSocketInboundStream, WebSocketOutboundWriter, WebSocketRouterContext<WebContext>) async throws
                -> Void
        )? = nil
}

/// The route table and handlers of `hallwatch-web`.
public enum WebRoutes {
    /// Every route of the web, with its access. Keep this the only list.
    public static func table(_ env: WebEnvironment) -> [WebRoute] {
        [
            WebRoute(method: .get, path: "/login", access: .anyone) { _, _ in loginPage(env, message: nil) },
            WebRoute(method: .post, path: "/login", access: .anyone) { req, ctx in try await login(env, req, ctx) },
            WebRoute(method: .post, path: "/logout", access: .permission(.session)) { req, ctx in
                try await logout(env, req, ctx)
            },
            WebRoute(method: .get, path: "/", access: .permission(.viewStatus)) { _, ctx in
                try await statusPage(env, ctx)
            },
            WebRoute(method: .get, path: "/api/v1/status", access: .permission(.viewStatus)) { _, ctx in
                try WebResponses.json(scopedStatus(env, ctx))
            },
            WebRoute(method: .get, path: "/api/v1/events", access: .permission(.viewStatus)) { _, ctx in
                liveEvents(env, ctx)
            },
            WebRoute(method: .get, path: "/api/v1/cameras", access: .permission(.viewCameras)) { _, ctx in
                try await cameras(env, ctx)
            },
            WebRoute(method: .get, path: "/api/v1/openapi.json", access: .anyone) { _, _ in
                WebResponses.asset(OpenAPI.document, type: "application/json")
            },
            WebRoute(method: .get, path: "/metrics", access: .metricsToken) { _, _ in
                Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: .init(
                        byteBuffer: ByteBuffer(bytes: WebMetrics.scrape(env.status.snapshot(now: env.clocks.utcNow()))))
                )
            },
            WebRoute(method: .get, path: "/static/status.js", access: .anyone) { _, _ in
                WebResponses.asset(Assets.statusJS, type: "text/javascript; charset=utf-8")
            },
            WebRoute(method: .get, path: "/static/status.css", access: .anyone) { _, _ in
                WebResponses.asset(Assets.statusCSS, type: "text/css; charset=utf-8")
            },
            WebRoute(
                method: .get, path: "/api/v1/cameras/{id}/live", access: .permission(.live),
                handler: { req, ctx in
                    _ = try LiveView.check(env, req, ctx)
                    return Response(status: .ok)
                },
                webSocket: { inbound, outbound, ctx in
                    try await LiveView.serve(env, inbound: inbound, outbound: outbound, context: ctx)
                }),
            WebRoute(method: .get, path: "/live/{id}", access: .permission(.live)) { req, ctx in
                try await LivePages.camera(env, req, ctx)
            },
            WebRoute(method: .get, path: "/live", access: .permission(.live)) { _, ctx in
                try await LivePages.grid(env, ctx)
            },
            WebRoute(method: .get, path: "/static/live.js", access: .anyone) { _, _ in
                WebResponses.asset(LiveAssets.playerJS, type: "text/javascript; charset=utf-8")
            },
        ]
    }

    /// The router: security headers, then access control, then the table's routes.
    public static func router(environment env: WebEnvironment) -> Router<WebContext> {
        let router = Router(context: WebContext.self)
        let routes = table(env)
        router.add(middleware: SecurityHeadersMiddleware())
        router.add(middleware: AccessMiddleware(routes: routes, environment: env))
        for route in routes {
            let handler = route.handler
            if let webSocket = route.webSocket {
                router.ws(
                    RouterPath(route.path),
                    shouldUpgrade: { request, context in
                        let r = try await handler(request, context)
                        guard r.status == .ok else { throw RefusalError(refusal: r) }
                        return .upgrade([:])
                    }, onUpgrade: webSocket)
                continue
            }
            router.on(RouterPath(route.path), method: route.method) { request, context in
                try await handler(request, context)
            }
        }
        return router
    }

    // MARK: - login and logout

    static let maxUserNameBytes = 64
    static let maxPasswordBytes = 1024
    /// bcrypt runs here, one hash at a time, off the cooperative pool (each takes ~0.3 s of a core).
    static let hashQueue = DispatchQueue(label: "hallwatch.web.bcrypt")

    static func login(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        let body = try await request.body.collect(upTo: 4096)
        let form = FormFields.parse(String(buffer: body))
        let name = form["username"] ?? ""
        let password = form["password"] ?? ""
        let address = context.remoteAddress
        guard !name.isEmpty, name.utf8.count <= maxUserNameBytes, password.utf8.count <= maxPasswordBytes else {
            return loginPage(env, message: "Enter your user name and password.", status: .badRequest)
        }
        if let wait = env.throttle.lockRemaining(address: address, account: name) {
            try await env.audit.record(
                actor: "-", address: address, action: "login.failure", object: name, details: "throttled")
            let seconds = max(1, wait.components.seconds + 1)
            var r = loginPage(
                env, message: "Too many failed sign-ins. Try again in \(seconds) s.", status: .tooManyRequests)
            r.headers[.retryAfter] = "\(seconds)"
            return r
        }
        let user = env.settings.user(named: name)
        let hash = user?.passwordHash ?? env.dummyHash
        let matches = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
            hashQueue.async { c.resume(returning: PasswordHashing.verify(password, hash: hash)) }
        }
        guard let user, matches else {
            env.throttle.failed(address: address, account: name)
            try await env.audit.record(actor: "-", address: address, action: "login.failure", object: name)
            return loginPage(env, message: "Wrong user name or password.", status: .unauthorized)
        }
        env.throttle.succeeded(account: name)
        let (id, _) = try await env.sessions.create(user: user.name, address: address)
        try await env.audit.record(actor: user.name, address: address, action: "login.success", object: user.name)
        return Response(status: .seeOther, headers: [.location: "/", .setCookie: WebCookies.setSession(id)])
    }

    static func logout(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        if let s = context.session {
            try await env.sessions.end(idHash: s.idHash)
            try await env.audit.record(actor: s.user, address: context.remoteAddress, action: "logout", object: s.user)
        }
        return Response(status: .seeOther, headers: [.location: "/login", .setCookie: WebCookies.clearSession])
    }

    // MARK: - status and cameras

    /// The snapshot cut to what the context's user may see: a user limited to camera groups sees no other
    /// camera anywhere — not in the camera list, not in a disk's camera list, not as a capture process.
    static func scopedStatus(_ env: WebEnvironment, _ context: WebContext) -> StatusView {
        let snapshot = env.status.snapshot(now: env.clocks.utcNow())
        let visible = context.user.flatMap { env.settings.visibleCameras(for: $0) }
        return StatusView(snapshot: snapshot, alarms: env.status.recentAlarms(), visible: visible)
    }

    static func cameras(_ env: WebEnvironment, _ context: WebContext) async throws -> Response {
        let view = scopedStatus(env, context)
        try await auditCameraView(env, context, view.cameras.map(\.id), details: "api")
        return try WebResponses.json(CameraList(cameras: view.cameras))
    }

    static func auditCameraView(_ env: WebEnvironment, _ context: WebContext, _ ids: [String], details: String)
        async throws
    {
        try await env.audit.record(
            actor: context.user?.name ?? "-", address: context.remoteAddress, action: "camera.view",
            object: ids.isEmpty ? "-" : ids.joined(separator: ","), details: details)
    }

    static func statusPage(_ env: WebEnvironment, _ context: WebContext) async throws -> Response {
        let view = scopedStatus(env, context)
        try await auditCameraView(env, context, view.cameras.map(\.id), details: "status page")
        let page = StatusPageModel(
            building: env.building, user: context.user?.displayName ?? "", role: context.user?.role.rawValue ?? "",
            csrf: context.session?.csrfToken ?? "", status: view)
        return WebResponses.html(Pages.render(Pages.status, page.dictionary))
    }

    static func loginPage(_ env: WebEnvironment, message: String?, status: HTTPResponse.Status = .ok) -> Response {
        if env.settings.users.isEmpty {
            return WebResponses.html(Pages.render(Pages.noUsers, ["building": env.building]), status: status)
        }
        var model: [String: String] = ["building": env.building]
        if let message { model["message"] = message }
        return WebResponses.html(Pages.render(Pages.login, model), status: status)
    }

    /// Server-sent events (`text/event-stream`): a `status` event with the scoped ``StatusView`` at once and
    /// whenever it changes (checked every second, so a camera going offline shows within ~1 s of its bus
    /// message; ages change every second, so in practice one event a second), a comment after 15 quiet
    /// seconds to keep proxies from closing it. Ends when the session ends (logout, idle timeout, lifetime).
    static func liveEvents(_ env: WebEnvironment, _ context: WebContext) -> Response {
        let admitted = env.liveStreams.count.withLock { n in
            guard n < WebEnvironment.maxLiveStreams else { return false }
            n += 1
            return true
        }
        guard admitted else {
            return WebResponses.problem(.serviceUnavailable, "web.busy", "Too many live pages open.")
        }
        let sessionHash = context.session?.idHash ?? ""
        let body = ResponseBody { writer in
            defer { env.liveStreams.count.withLock { $0 -= 1 } }
            var last = Data()
            var quiet = 0
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            while !Task.isCancelled {
                guard try await env.sessions.stillLive(idHash: sessionHash) else { break }
                let data = try encoder.encode(scopedStatus(env, context))
                if data != last {
                    last = data
                    quiet = 0
                    try await writer.write(
                        ByteBuffer(string: "event: status\ndata: \(String(decoding: data, as: UTF8.self))\n\n"))
                } else {
                    quiet += 1
                    if quiet >= 15 {
                        quiet = 0
                        try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                    }
                }
                try await Task.sleep(for: .seconds(1))
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: body)
    }
}

extension SessionStore {
    /// Whether the session is still there and unexpired, without counting as activity (live streams).
    func stillLive(idHash: String) async throws -> Bool {
        let now = clocks.utcNow().micros
        let idleMicros = Self.micros(idle)
        let lifetimeMicros = Self.micros(lifetime)
        return try await database.queue.read { db in
            try Bool.fetchOne(
                db,
                sql:
                    "SELECT COUNT(*) > 0 FROM session WHERE idHash = ? AND ? - lastSeenMicros < ? AND ? - createdMicros < ?",
                arguments: [idHash, now, idleMicros, now, lifetimeMicros]) ?? false
        }
    }
}

/// The responses the handlers build.
public enum WebResponses {
    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }
    static func text(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
    }
    static func asset(_ text: String, type: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }
    static func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
    /// A JSON error `{"error": code, "message": …}` with a stable code (`auth.required`, `csrf.origin`…).
    public static func problem(_ status: HTTPResponse.Status, _ code: String, _ message: String) -> Response {
        let body = (try? JSONEncoder().encode(["error": code, "message": message])) ?? Data()
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}
