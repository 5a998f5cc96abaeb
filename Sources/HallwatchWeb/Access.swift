import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// What a signed-in user may do. Each route of ``WebRoutes`` names one (or ``Access/anyone``).
public enum Permission: String, Sendable, CaseIterable, Codable {
    /// Any signed-in user: log out.
    case session
    /// The status page and its live updates (cameras limited to the user's groups).
    case viewStatus
    /// The camera list of the API (limited to the user's groups).
    case viewCameras
    /// The audit log (building-admin and up).
    case viewAuditLog
    /// The configuration view and users list (district-admin only).
    case viewConfiguration
    /// Live video of the cameras the user may see (the WebSocket, the live and grid pages).
    case live
    /// The floor-plan map and its live camera states (cameras limited to the user's groups).
    case map
    /// The map's placement mode: drag pins, turn cones, download the `map:` YAML (building-admin and up).
    case placePins
    /// Create, list and revoke responder links (building-admin and up, or a dispatch system's token).
    case manageResponderLinks
    /// Make and revoke event sources and their tokens (building-admin and up; audited).
    case manageEventSources
    /// Recorded video of the cameras the user may see (the recordings API, the media bodies, the timeline).
    case playback
    /// Make, list, download and delete evidence exports of the cameras the user may see (building-admin and
    /// up; every step audited: ``ExportRoutes``).
    case exportEvidence
}

extension Role {
    /// The permissions of this role; each role includes the one below it.
    public var permissions: Set<Permission> {
        switch self {
        case .viewer: [.session, .viewStatus, .viewCameras, .live, .map, .playback]
        case .buildingAdmin:
            Role.viewer.permissions.union([
                .viewAuditLog, .placePins, .manageResponderLinks, .manageEventSources, .exportEvidence,
            ])
        case .districtAdmin: Role.buildingAdmin.permissions.union([.viewConfiguration])
        }
    }
}

/// Who may call a route.
public enum Access: Sendable, Hashable, CustomStringConvertible {
    /// No session needed: the login page and form, static assets. Still CSRF-checked by origin when unsafe.
    case anyone
    /// A live session whose role has the permission.
    case permission(Permission)
    /// `Authorization: Bearer <token>` equal to the token in `web.metricsTokenFile` (no token configured:
    /// nobody). For the district's Prometheus, a machine, not a person.
    case metricsToken
    /// `Authorization: Bearer <token>` of a live event source (``EventStore/grant(token:)``), from an address
    /// the source allows; no session, no CSRF check (a browser never sends the token by itself). The handler
    /// finds the grant in ``WebContext/eventGrant``.
    case eventToken

    public var description: String {
        switch self {
        case .anyone: "anyone"
        case .permission(let p): p.rawValue
        case .metricsToken: "metrics token"
        case .eventToken: "event source token"
        }
    }
}

/// The request context of the web: the client address and, once ``AccessMiddleware`` let the request through,
/// the session and its user.
public struct WebContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Where a WebSocket route leaves its handler for the upgrade (hummingbird-websocket's router support).
    public let webSocket = WebSocketHandlerReference<WebContext>()
    /// The client's IP address as the socket tells it (`unknown` in handler tests).
    public var remoteAddress: String
    /// The live session (routes other than ``Access/anyone``).
    public var session: WebSession?
    /// The session's user, as the configuration says now (role changes apply at once). For a responder
    /// session, a stand-in user (`responder:<link>:<session>`) limited to the link's camera group.
    public var user: UserConfig?
    /// The responder link this request's session came from (``ResponderLinks``); `nil` for users.
    public var responder: ResponderGrant?
    /// The event source a valid token grants (``Access/eventToken`` routes).
    public var eventGrant: EventGrant?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// Request bodies are small here (forms); anything bigger is refused before it is read.
    public var maxUploadSize: Int { 16 << 10 }
}

/// Security headers on every response, errors included (OWASP Secure Headers Project): a CSP with no inline
/// script (`media-src 'self' blob:` for video), HSTS, `frame-ancestors 'none'`, nosniff, no referrer.
/// Dynamic responses are `Cache-Control: no-store`.
public struct SecurityHeadersMiddleware: RouterMiddleware {
    public typealias Context = WebContext

    /// The Content-Security-Policy of every response.
    public static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
        + "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

    public init() {}

    public func handle(
        _ request: Request, context: WebContext, next: (Request, WebContext) async throws -> Response
    ) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let e as any HTTPResponseError {
            response = try e.response(from: request, context: context)
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            response = WebResponses.text(.internalServerError, "internal error")
        }
        var h = response.headers
        h[.contentSecurityPolicy] = Self.contentSecurityPolicy
        h[.strictTransportSecurity] = "max-age=31536000"
        h[.xContentTypeOptions] = "nosniff"
        h[.referrerPolicy] = "no-referrer"
        h[.xFrameOptions] = "DENY"
        h[.crossOriginOpenerPolicy] = "same-origin"
        if h[.cacheControl] == nil { h[.cacheControl] = "no-store" }
        response.headers = h
        return response
    }
}

/// Deny by default: the one place that lets a request reach a handler.
///
/// 1. A matched route that is not in the route table (added to the router some other way) is refused 403.
/// 2. An unsafe method (anything but GET, HEAD, OPTIONS) — and a WebSocket upgrade, which browsers send across
///    sites with the cookie (cross-site WebSocket hijacking) — must come from this origin: `Sec-Fetch-Site:
///    same-origin`, or an `Origin` equal to `https://<Host>` (OWASP CSRF Prevention Cheat Sheet, "Fetch
///    Metadata" and "Verifying Origin"; RFC 6455 §10.2); otherwise 403.
/// 2a. ``Access/eventToken`` routes skip 2 and 4: a machine's bearer token, checked by ``eventToken(_:_:_:_:)``.
/// 3. ``Access/anyone`` passes; ``Access/metricsToken`` needs the bearer token (else 401). Any other route needs a live session (cookie ``WebCookies/sessionName``) whose
///    user still exists (else 401; a browser's GET of a page is sent to `/login` instead) and whose role has
///    the permission (else 403).
/// 4. An unsafe request with a session must carry its CSRF token (header `X-CSRF-Token` or form field
///    `csrf`), compared in constant time; otherwise 403.
public struct AccessMiddleware: RouterMiddleware {
    public typealias Context = WebContext
    let table: [RouteKey: Access]
    let environment: WebEnvironment
    /// Each table path's components (`{name}` matches any one) and its methods: for `405` with `Allow`.
    let paths: [(components: [Substring], methods: [String])]

    struct RouteKey: Hashable {
        var method: String
        var path: String
    }

    init(routes: [WebRoute], environment: WebEnvironment) {
        var t: [RouteKey: Access] = [:]
        for r in routes { t[RouteKey(method: r.method.rawValue, path: r.path)] = r.access }
        table = t
        self.environment = environment
        var byPath: [String: [String]] = [:]
        for r in routes { byPath[r.path, default: []].append(r.method.rawValue) }
        paths = byPath.sorted { $0.key < $1.key }.map { ($0.key.split(separator: "/"), $0.value.sorted()) }
    }

    /// The methods the table declares for `path`, if any route has it (parameters match any one component).
    func methods(for path: String) -> [String]? {
        let parts = path.split(separator: "/")
        return paths.first { p in
            p.components.count == parts.count
                && zip(p.components, parts).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }?.methods
    }

    public func handle(
        _ request: Request, context: WebContext, next: (Request, WebContext) async throws -> Response
    ) async throws -> Response {
        // A path of the table with a method it does not declare: 405 and the methods it does (RFC 9110 §15.5.6).
        // Any other path: the router's own 404 (no handler runs).
        guard let endpoint = context.endpointPath else {
            if let allowed = methods(for: request.uri.path), !allowed.contains(request.method.rawValue) {
                var r = WebResponses.problem(
                    .methodNotAllowed, "http.method", "Use \(allowed.joined(separator: ", ")).")
                r.headers[.allow] = allowed.joined(separator: ", ")
                return r
            }
            return try await next(request, context)
        }
        guard let access = table[RouteKey(method: request.method.rawValue, path: endpoint)] else {
            context.logger.warning("refused a route that declares no permission", metadata: ["path": "\(endpoint)"])
            return WebResponses.problem(.forbidden, "access.undeclared", "This route declares no permission.")
        }
        if access == .permission(.manageResponderLinks), request.headers[.authorization] != nil {
            return try await ResponderAccess.dispatch(environment, request, context, next)  // a machine: no cookie
        }
        if access == .eventToken { return try await Self.eventToken(request, context, environment, next) }
        let unsafe = ![.get, .head, .options].contains(request.method)
        let upgrade = request.headers[.upgrade]?.lowercased() == "websocket"
        if unsafe || upgrade, !Self.sameOrigin(request) {
            return WebResponses.problem(.forbidden, "csrf.origin", "Cross-site request refused.")
        }
        if access == .metricsToken {
            guard let expected = environment.metricsToken,
                let given = request.headers[.authorization], given.hasPrefix("Bearer "),
                Self.constantTimeEqual(String(given.dropFirst(7)), expected)
            else {
                var r = WebResponses.problem(.unauthorized, "auth.token", "A valid bearer token is required.")
                r.headers[.wwwAuthenticate] = "Bearer"
                return r
            }
            return try await next(request, context)
        }
        guard case .permission(let permission) = access else { return try await next(request, context) }

        guard let id = WebCookies.session(in: request.headers),
            let session = try await environment.sessions.find(id: id)
        else {
            // No user session: perhaps a responder link's (deny by default: `map` and `live` only).
            return try await ResponderAccess.responder(environment, request, context, permission, unsafe, next)
                ?? Self.signInRequired(request)
        }
        guard let user = environment.settings.user(named: session.user) else {
            try await environment.sessions.end(idHash: session.idHash)
            return Self.signInRequired(request)
        }
        guard user.role.permissions.contains(permission) else {
            return WebResponses.problem(.forbidden, "access.denied", "Your role does not allow this.")
        }
        var request = request
        if unsafe {
            var token = request.headers[HTTPField.Name("X-CSRF-Token")!]
            if token == nil, request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") == true {
                let body = try await request.body.collect(upTo: context.maxUploadSize)
                token = FormFields.parse(String(buffer: body))["csrf"]
                request.body = .init(buffer: body)
            }
            guard let token, Self.constantTimeEqual(token, session.csrfToken) else {
                return WebResponses.problem(.forbidden, "csrf.token", "Missing or wrong CSRF token.")
            }
        }
        var context = context
        context.session = session
        context.user = user
        return try await next(request, context)
    }

    /// ``Access/eventToken``: 401 without a live token, 403 from an address its source does not allow.
    static func eventToken(
        _ request: Request, _ context: WebContext, _ environment: WebEnvironment,
        _ next: (Request, WebContext) async throws -> Response
    ) async throws -> Response {
        guard let store = environment.events?.store else { return EventRoutes.unavailable() }
        guard let given = request.headers[.authorization], given.hasPrefix("Bearer "), given.utf8.count <= 200,
            let grant = try store.grant(token: String(given.dropFirst(7)))
        else {
            var r = WebResponses.problem(.unauthorized, "events.token", "A live event-source bearer token is required.")
            r.headers[.wwwAuthenticate] = "Bearer"
            return r
        }
        if !grant.source.addresses.isEmpty, !grant.source.addresses.contains(context.remoteAddress) {
            return WebResponses.problem(
                .forbidden, "events.address", "Source '\(grant.source.name)' may not send from this address.")
        }
        var context = context
        context.eventGrant = grant
        return try await next(request, context)
    }

    static func sameOrigin(_ request: Request) -> Bool {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!] { return site == "same-origin" }
        guard let origin = request.headers[.origin], let host = request.head.authority ?? request.headers[.hostHeader]
        else { return false }
        return origin == "https://\(host)"
    }

    static func signInRequired(_ request: Request) -> Response {
        if request.method == .get, !request.uri.path.hasPrefix("/api/") {
            return Response(status: .seeOther, headers: [.location: "/login"])
        }
        return WebResponses.problem(.unauthorized, "auth.required", "Sign in first.")
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<x.count { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}

/// The session cookie (RFC 6265): `__Host-` prefixed (so only this host, path `/`, over HTTPS may set it),
/// `Secure; HttpOnly; SameSite=Strict`, no `Max-Age`: the browser forgets it when it closes, the server
/// after the idle timeout or the lifetime.
public enum WebCookies {
    /// The cookie's name; the `__Host-` prefix makes browsers refuse it unless `Secure`, `Path=/` and no `Domain`.
    public static let sessionName = "__Host-hallwatch-session"

    /// The `Set-Cookie` value that gives the browser session id `id`.
    public static func setSession(_ id: String) -> String {
        "\(sessionName)=\(id); Path=/; Secure; HttpOnly; SameSite=Strict"
    }

    /// The `Set-Cookie` value that removes it.
    public static let clearSession = "\(sessionName)=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"

    /// The session id in the request's `Cookie` headers, if any (bounded: at most 64 characters).
    public static func session(in headers: HTTPFields) -> String? { value(of: sessionName, in: headers) }

    /// The value of cookie `name` in the request's `Cookie` headers, if any (bounded: at most 64 characters).
    static func value(of name: String, in headers: HTTPFields) -> String? {
        for field in headers[values: .cookie] {
            for pair in field.split(separator: ";") {
                let kv = pair.trimmingCharacters(in: .whitespaces)
                if kv.hasPrefix(name + "=") {
                    let v = String(kv.dropFirst(name.count + 1))
                    return v.isEmpty || v.utf8.count > 64 ? nil : v
                }
            }
        }
        return nil
    }
}

/// `application/x-www-form-urlencoded` bodies (HTML forms).
public enum FormFields {
    /// Field name → value (the first of each name). `+` is a space; `%XX` is decoded; bad escapes leave the
    /// field out.
    public static func parse(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = decode(parts[0]) else { continue }
            let value = parts.count > 1 ? decode(parts[1]) : ""
            if let value, out[name] == nil { out[name] = value }
        }
        return out
    }

    static func decode(_ s: Substring) -> String? {
        s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding
    }
}

extension HTTPField.Name {
    static let strictTransportSecurity = Self("Strict-Transport-Security")!
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
    static let referrerPolicy = Self("Referrer-Policy")!
    static let xFrameOptions = Self("X-Frame-Options")!
    static let crossOriginOpenerPolicy = Self("Cross-Origin-Opener-Policy")!
    /// HTTP/1.1's `Host` (HTTPTypes moves it to `authority` on the wire; handler tests set it as a field).
    static let hostHeader = Self("Host")!
}
