import Dispatch
import Foundation
import HTTPTypes
import HallwatchCore
import HallwatchMedia
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
    /// The box section's facts (name, building, version, fingerprints).
    public var facts: BoxFacts
    /// Uptime and clock synchronisation.
    public var host: any HostFacts
    /// The building's time zone (`web.timeZone`).
    public var time: BuildingTime
    /// Signs the audit chain's head; `nil` without an identity key (on-demand checkpoints then answer 503).
    public var checkpointer: AuditCheckpointer?
    /// Camera thumbnails; `nil`: none (the route answers 404).
    public var thumbnails: ThumbnailCache?
    /// The 24 h plots' data; `nil`: none (empty series).
    public var plots: PlotCache?
    /// Chart.js (Debian's `libjs-chart.js`), read at start; `nil` when not installed (the page draws no plots).
    public var chartJS: String?
    /// The live view's subscriptions to the recorder's live tap; `nil`: live view answers 503.
    public var live: LiveHub?
    /// The floor-plan map (``MapRoutes``); `nil`: `/map` shows no floor.
    public var map: MapStore?
    /// Leaflet (Debian's `libjs-leaflet`), read at start; `nil` when not installed.
    public var leaflet: LeafletFiles?
    /// Responder links (``ResponderRoutes``), in the web's database.
    public var responders: ResponderLinks?
    /// The dispatch system's bearer token (`web.dispatchTokenFile`); `nil`: only admins make responder links.
    public var dispatchToken: String?
    /// Door and alarm events (issue 16); `nil`: their routes answer 503.
    public var events: EventService?
    /// Live HLS from the stored fragments, for browsers without Media Source Extensions; `nil`: its routes answer 503.
    public var hls: LiveHLS?
    /// The recording disks playback reads; `nil`: the recordings API and media bodies answer 503.
    public var recordings: RecordingDisks? = nil
    /// Evidence exports (``ExportJobs``); `nil`: their routes answer 503.
    public var exports: ExportJobs? = nil
    /// The streams' state history, which says why a gap has no video; `nil`: gaps between runs have no cause.
    public var history: CameraHistory? = nil
    /// A bcrypt hash of a random password at the users' cost: an unknown user name is checked against it, so
    /// a login costs the same whether the name exists or not.
    let dummyHash: String
    let liveStreams = LiveStreamCount()
    let thumbnailViews = RepeatedViews()
    let playbackViews = RepeatedViews()
    /// Most live-update streams open at once (each holds a connection and a timer).
    public static let maxLiveStreams = 64

    public init(
        settings: WebSettings, sessions: SessionStore, throttle: LoginThrottle, audit: AuditLog,
        status: any StatusSource, clocks: any Clocks, building: String, metricsToken: String? = nil,
        facts: BoxFacts? = nil, host: any HostFacts = SystemHostFacts(), time: BuildingTime = .utc,
        checkpointer: AuditCheckpointer? = nil, thumbnails: ThumbnailCache? = nil, plots: PlotCache? = nil,
        chartJS: String? = nil,
        live: LiveHub? = nil, map: MapStore? = nil, leaflet: LeafletFiles? = nil, responders: ResponderLinks? = nil,
        dispatchToken: String? = nil
    ) {
        self.map = map
        self.leaflet = leaflet
        self.responders = responders
        self.dispatchToken = dispatchToken
        self.plots = plots
        self.chartJS = chartJS
        self.thumbnails = thumbnails
        self.metricsToken = metricsToken
        self.facts = facts ?? BoxFacts(box: "-", building: building)
        self.host = host
        self.time = time
        self.checkpointer = checkpointer
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

/// Which (session, camera) thumbnail views were audited when, so a page's 10-second refreshes are audited once per
/// ``window`` (the first view, then one per window while the page stays open). Bounded: at most ``maxKeys`` keys,
/// the table is emptied when full (the next view of each is audited again: never fewer entries, only more).
final class RepeatedViews: Sendable {
    static let window: Duration = .seconds(600)
    static let maxKeys = 20_000
    let seen = Mutex<[String: MonotonicInstant]>([:])

    /// Whether this view is to be audited (and if so, notes it).
    func first(session: String, camera: String, now: MonotonicInstant) -> Bool {
        seen.withLock { seen in
            let key = session + "|" + camera
            if let at = seen[key], now - at < Self.window { return false }
            if seen.count >= Self.maxKeys { seen.removeAll() }
            seen[key] = now
            return true
        }
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
            WebRoute(method: .get, path: "/api/v1/status/events", access: .permission(.viewStatus)) { _, ctx in
                liveEvents(env, ctx)
            },
            WebRoute(method: .get, path: "/api/v1/events", access: .permission(.viewStatus)) { req, ctx in
                try await EventRoutes.list(env, req, ctx)
            },
            WebRoute(method: .get, path: "/api/v1/cameras", access: .permission(.viewCameras)) { _, ctx in
                try await cameras(env, ctx)
            },
            WebRoute(method: .get, path: "/api/v1/cameras/{id}/thumbnail.jpg", access: .permission(.viewCameras)) {
                _, ctx in try await thumbnail(env, ctx)
            },
            WebRoute(method: .get, path: "/api/v1/plots", access: .permission(.viewStatus)) { _, ctx in
                let visible = ctx.user.flatMap { env.settings.visibleCameras(for: $0) }.map { Set($0.map(\.rawValue)) }
                guard let plots = env.plots else {
                    return try WebResponses.json(
                        PlotData(times: [], labels: [], bucketSeconds: 600, cameras: [], disks: []))
                }
                return try WebResponses.json(try await plots.plots(visible: visible, time: env.time))
            },
            WebRoute(method: .get, path: "/static/chart.min.js", access: .anyone) { _, _ in
                guard let js = env.chartJS else {
                    return WebResponses.problem(
                        .notFound, "chart.missing", "Chart.js (libjs-chart.js) is not installed.")
                }
                var r = WebResponses.asset(js, type: "text/javascript; charset=utf-8")
                r.headers[.cacheControl] = "max-age=86400"
                return r
            },
            WebRoute(method: .get, path: "/audit", access: .permission(.viewAuditLog)) { req, ctx in
                try await AuditPage.page(env, req, ctx)
            },
            WebRoute(method: .get, path: "/audit.csv", access: .permission(.viewAuditLog)) { req, ctx in
                try await AuditPage.csv(env, req, ctx)
            },
            WebRoute(method: .post, path: "/api/v1/audit/checkpoint", access: .permission(.viewAuditLog)) { _, ctx in
                try await signCheckpoint(env, ctx)
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
            WebRoute(method: .get, path: "/static/plots.js", access: .anyone) { _, _ in
                WebResponses.asset(Assets.plotsJS, type: "text/javascript; charset=utf-8")
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
            WebRoute(method: .get, path: "/live", access: .permission(.live)) { req, ctx in
                try await LivePages.grid(env, req, ctx)
            },
            WebRoute(method: .post, path: "/live/layout", access: .permission(.live)) { req, ctx in
                try await LivePages.saveLayout(env, req, ctx)
            },
            WebRoute(method: .get, path: "/api/v1/cameras/{id}/live.m3u8", access: .permission(.live)) { req, ctx in
                try await LiveHLS.playlistRoute(env, req, ctx)
            },
            WebRoute(method: .get, path: "/api/v1/cameras/{id}/hls/{segment}", access: .permission(.live)) {
                req, ctx in try await LiveHLS.segmentRoute(env, req, ctx)
            },
            WebRoute(method: .get, path: "/static/live.js", access: .anyone) { _, _ in
                WebResponses.asset(LiveAssets.playerJS, type: "text/javascript; charset=utf-8")
            },
        ] + MapRoutes.table(env) + ResponderRoutes.table(env) + EventRoutes.table(env) + Playback.routes(env)
            + ExportRoutes.table(env)
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

    /// The sign-in form's bounds, in Unicode code points as the OpenAPI document's `maxLength` counts them
    /// (JSON Schema 2020-12 §6.3.1): a longer field is 400; a field within them but longer in UTF-8 bytes than any
    /// stored name or password (64 and 1024 bytes) is simply a wrong one, 401.
    static let maxUserNameCodePoints = 64
    static let maxPasswordCodePoints = 1024
    /// bcrypt runs here, one hash at a time, off the cooperative pool (each takes ~0.3 s of a core).
    static let hashQueue = DispatchQueue(label: "hallwatch.web.bcrypt")

    static func login(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        let body = try await request.body.collect(upTo: 4096)
        let form = FormFields.parse(String(buffer: body))
        let name = form["username"] ?? ""
        let password = form["password"] ?? ""
        let address = context.remoteAddress
        guard !name.isEmpty, name.unicodeScalars.count <= maxUserNameCodePoints,
            password.unicodeScalars.count <= maxPasswordCodePoints
        else {
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
        env.throttle.succeeded(address: address, account: name)
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

    // MARK: - audit

    /// Audits the request, then signs the chain's head — so the checkpoint covers its own request.
    static func signCheckpoint(_ env: WebEnvironment, _ context: WebContext) async throws -> Response {
        guard let checkpointer = env.checkpointer else {
            return WebResponses.problem(.serviceUnavailable, "web.noIdentity", "This box has no identity key yet.")
        }
        try await env.audit.record(
            actor: context.user?.name ?? "-", address: context.remoteAddress, action: "auditlog.checkpoint")
        return try WebResponses.json(try await checkpointer.checkpoint())
    }

    // MARK: - status and cameras

    /// The snapshot cut to what the context's user may see: a user limited to camera groups sees no other
    /// camera anywhere — not in the camera list, not in a disk's camera list, not as a capture process.
    static func scopedStatus(_ env: WebEnvironment, _ context: WebContext) -> StatusView {
        let now = env.clocks.utcNow()
        let snapshot = env.status.snapshot(now: now)
        let visible = context.user.flatMap { env.settings.visibleCameras(for: $0) }
        let box = BoxView(
            facts: env.facts, host: env.host, time: env.time, now: now, tlsFromBus: snapshot.web?.tlsSHA256)
        return StatusView(
            snapshot: snapshot, alarms: env.status.recentAlarms(), visible: visible, box: box, time: env.time)
    }

    static func cameras(_ env: WebEnvironment, _ context: WebContext) async throws -> Response {
        let view = scopedStatus(env, context)
        try await auditCameraView(env, context, view.cameras.map(\.id), details: "api")
        return try WebResponses.json(CameraList(cameras: view.cameras))
    }

    /// The newest keyframe of a camera the user may see, as a JPEG ≤ 320 px wide (cached 10 s; audited).
    /// A camera that is not configured or not in the user's groups is 404 alike (its existence is not told).
    static func thumbnail(_ env: WebEnvironment, _ context: WebContext) async throws -> Response {
        guard let text = context.parameters.get("id"), let camera = CameraID(text),
            scopedStatus(env, context).cameras.contains(where: { $0.id == camera.rawValue })
        else { return WebResponses.problem(.notFound, "camera.unknown", "No such camera.") }
        // The page reloads each picture every 10 s: audited once per session and camera per 10 minutes.
        if env.thumbnailViews.first(
            session: context.session?.idHash ?? context.remoteAddress, camera: camera.rawValue,
            now: env.clocks.monotonicNow())
        {
            try await auditCameraView(env, context, [camera.rawValue], details: "thumbnail")
        }
        guard let cache = env.thumbnails else {
            return WebResponses.problem(.notFound, "thumbnail.none", "No thumbnails on this box.")
        }
        let picture: JPEGThumbnail?
        do { picture = try await cache.thumbnail(camera: camera) } catch {
            context.logger.warning(
                "thumbnail failed", metadata: ["camera.id": "\(camera)", "error": "\(error)"])
            return WebResponses.problem(.serviceUnavailable, "thumbnail.failed", "The picture could not be made.")
        }
        guard let picture else {
            return WebResponses.problem(.notFound, "thumbnail.none", "Nothing of this camera is recorded yet.")
        }
        return Response(
            status: .ok, headers: [.contentType: "image/jpeg", .cacheControl: "private, max-age=10"],
            body: .init(byteBuffer: ByteBuffer(bytes: picture.jpeg)))
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
        var page = StatusPageModel(
            building: env.building, user: context.user?.displayName ?? "", role: context.user?.role.rawValue ?? "",
            csrf: context.session?.csrfToken ?? "", status: view)
        page.dictionary["canAudit"] = context.user?.role.permissions.contains(.viewAuditLog) == true
        page.dictionary["canLinks"] = context.user?.role.permissions.contains(.manageResponderLinks) == true
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
        eventStream(env, context, event: "status") { scopedStatus(env, context) }
    }

    /// The server-sent event stream of ``liveEvents(_:_:)`` with any value: `event` with `value()` at once
    /// and whenever it changes (checked every second).
    static func eventStream<Value: Encodable & Sendable>(
        _ env: WebEnvironment, _ context: WebContext, event: String, value: @escaping @Sendable () -> Value
    ) -> Response {
        eventStream(env, context, period: .seconds(1)) { encoder in [(event, try encoder.encode(value()))] }
    }

    /// A server-sent event stream of several named events (the map's `cameras` and `doors`, ``MapRoutes``): each
    /// event's JSON at once and whenever it changes, checked every `period`; a comment after 15 quiet seconds to
    /// keep proxies from closing it. The session is checked about once a second; the stream ends with it. At most
    /// ``WebEnvironment/maxLiveStreams`` streams at once (503 `web.busy` beyond).
    static func eventStream(
        _ env: WebEnvironment, _ context: WebContext, period: Duration,
        events: @escaping @Sendable (JSONEncoder) throws -> [(String, Data)]
    ) -> Response {
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
            var last: [String: Data] = [:]
            let clock = ContinuousClock()
            var spoke = clock.now
            var checked = clock.now - .seconds(2)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            while !Task.isCancelled {
                if clock.now - checked >= .seconds(1) {
                    guard try await env.sessions.stillLive(idHash: sessionHash) else { break }
                    checked = clock.now
                }
                for (event, data) in try events(encoder) where last[event] != data {
                    last[event] = data
                    spoke = clock.now
                    try await writer.write(
                        ByteBuffer(string: "event: \(event)\ndata: \(String(decoding: data, as: UTF8.self))\n\n"))
                }
                if clock.now - spoke >= .seconds(15) {
                    spoke = clock.now
                    try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                }
                try await Task.sleep(for: period)
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-store"], body: body)
    }
}

extension SessionStore {
    /// Whether the session is still there and unexpired, without counting as activity (live streams). A
    /// responder session (``ResponderLinks``) is live while its link is neither expired, revoked nor locked.
    func stillLive(idHash: String) async throws -> Bool {
        let now = clocks.utcNow().micros
        let idleMicros = Self.micros(idle)
        let lifetimeMicros = Self.micros(lifetime)
        let user = try await database.queue.read { db in
            try Bool.fetchOne(
                db,
                sql:
                    "SELECT COUNT(*) > 0 FROM session WHERE idHash = ? AND ? - lastSeenMicros < ? AND ? - createdMicros < ?",
                arguments: [idHash, now, idleMicros, now, lifetimeMicros]) ?? false
        }
        if user { return true }
        return try await ResponderLinks(database: database, clocks: clocks).stillLive(idHash: idHash)
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
