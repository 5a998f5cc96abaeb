import Foundation
import HTTPTypes
import HallwatchCore
import Hummingbird
import Mustache
import NIOCore

/// How responder sessions and the dispatch system's token pass ``AccessMiddleware`` (deny by default).
enum ResponderAccess {
    /// The responder session's cookie: `__Host-` prefixed, `Secure; HttpOnly; SameSite=Strict` like the
    /// user's, but its own name, so a phone that opened a link never holds a user session by it.
    static let cookieName = "__Host-hallwatch-responder"
    /// All a responder session may do: the map and live video of the link's cameras. Every other route —
    /// the status page, thumbnails, playback, exports, settings, the audit log — is refused.
    static let permissions: Set<Permission> = [.map, .live]

    static func setCookie(_ id: String) -> String { "\(cookieName)=\(id); Path=/; Secure; HttpOnly; SameSite=Strict" }

    /// The responder session id in the request's cookies (at most 64 characters).
    static func cookie(in headers: HTTPFields) -> String? { WebCookies.value(of: cookieName, in: headers) }

    /// A request to a `manageResponderLinks` route carrying `Authorization`: the dispatch system. It must be
    /// `Bearer` and the token of `web.dispatchTokenFile` (none configured: refused). No cookie, so no
    /// cross-site request can carry it: the origin check does not apply.
    static func dispatch(
        _ env: WebEnvironment, _ request: Request, _ context: WebContext,
        _ next: (Request, WebContext) async throws -> Response
    ) async throws -> Response {
        guard let expected = env.dispatchToken, let given = request.headers[.authorization],
            given.hasPrefix("Bearer "), AccessMiddleware.constantTimeEqual(String(given.dropFirst(7)), expected)
        else {
            var r = WebResponses.problem(.unauthorized, "auth.token", "A valid bearer token is required.")
            r.headers[.wwwAuthenticate] = "Bearer"
            return r
        }
        var context = context
        context.user = UserConfig(name: "dispatch", displayName: "Dispatch system", passwordHash: "!", role: .viewer)
        return try await next(request, context)
    }

    /// A request without a user session: with a live responder cookie and a permission responders have, it
    /// passes as the link's stand-in user; a responder asking for anything else is refused 403; a cookie whose
    /// link ended gets 401 with `responder.revoked`, `responder.expired`, `responder.locked` or
    /// `responder.unknown` (a page: the page that says so). No responder cookie: `nil` (sign in).
    static func responder(
        _ env: WebEnvironment, _ request: Request, _ context: WebContext, _ permission: Permission, _ unsafe: Bool,
        _ next: (Request, WebContext) async throws -> Response
    ) async throws -> Response? {
        guard let links = env.responders, let id = cookie(in: request.headers) else { return nil }
        let grant: ResponderGrant
        let csrf: String
        switch try await links.find(id: id) {
        case .failure(let problem): return ended(request, problem)
        case .success(let found):
            grant = found.0
            csrf = found.csrf
        }
        guard permissions.contains(permission), !unsafe else {
            let text = "A responder link shows the map and live video, nothing else."
            if request.method == .get, !request.uri.path.hasPrefix("/api/") {
                // A person typed or followed an address: a page with the way back, not JSON.
                return ResponderRoutes.messagePage(
                    title: "Not available", text: text, code: "access.denied", status: .forbidden, back: "/map")
            }
            return WebResponses.problem(.forbidden, "access.denied", text)
        }
        var context = context
        let user = UserConfig(
            name: "responder:\(grant.link):\(grant.sessionHash.prefix(8))", displayName: grant.label,
            passwordHash: "!", role: .viewer, cameraGroups: grant.cameraGroup.map { [$0] } ?? [])
        context.user = user
        context.responder = grant
        let now = env.clocks.utcNow()
        context.session = WebSession(
            idHash: grant.sessionHash, user: user.name, csrfToken: csrf, address: context.remoteAddress, created: now,
            lastSeen: now)
        return try await next(request, context)
    }

    /// The answer to a responder whose link ended: the page that says so, or the JSON problem. The cookie is
    /// kept (it names a session of an ended link and opens nothing): a responder who reloads is told again why,
    /// instead of landing on the staff sign-in page. Opening another link replaces it.
    static func ended(_ request: Request, _ problem: ResponderLinks.Problem) -> Response {
        if request.method == .get, !request.uri.path.hasPrefix("/api/") {
            return ResponderRoutes.messagePage(
                title: "Link ended", text: problem.message, code: problem.stableCode, status: .unauthorized)
        }
        return WebResponses.problem(.unauthorized, problem.stableCode, problem.message)
    }
}

/// Responder links: the API (`/api/v1/responder-links`), the admins' page (`/responder-links`), the link
/// itself (`/r/<token>`: the PIN, then the map), and the banner every admin page shows while a link is active.
enum ResponderRoutes {
    /// `POST /api/v1/responder-links` body.
    struct CreateRequest: Codable, Sendable {
        var label: String
        /// 15–720, default 240.
        var minutes: Int?
        /// A camera group of the web file; absent: the whole building.
        var cameraGroup: String?
        /// 6 digits; absent: no PIN.
        var pin: String?
    }

    /// A link as the API shows it, with its use.
    struct LinkView: Codable, Sendable, Equatable {
        var id: String
        var label: String
        var cameraGroup: String?
        var pin: Bool
        var createdBy: String
        var created: String
        var expires: String
        var expiresLocal: String
        /// `active`, `expired`, `revoked`, `locked`.
        var state: String
        var openings: Int
        var lastOpened: String?
        var failedPINs: Int
        /// Sessions seen in the last 30 s.
        var viewers: Int
    }

    /// `POST` answer: the link and the secret URL (shown once), with its QR code.
    struct Created: Codable, Sendable {
        var link: LinkView
        var url: String
        /// A standalone SVG of the URL's QR code (made by libqrencode on the box).
        var qrSVG: String
    }

    struct LinkList: Codable, Sendable {
        var links: [LinkView]
    }

    /// `GET /api/v1/responder-banner` for users: the links to show, and whether this user manages links (the
    /// page then asks again every 10 s).
    struct Banner: Codable, Sendable {
        var links: [LinkView]
        var admin: Bool
    }

    static func table(_ env: WebEnvironment) -> [WebRoute] {
        [
            WebRoute(method: .post, path: "/api/v1/responder-links", access: .permission(.manageResponderLinks)) {
                req, ctx in try await createJSON(env, req, ctx)
            },
            WebRoute(method: .get, path: "/api/v1/responder-links", access: .permission(.manageResponderLinks)) {
                _, _ in try WebResponses.json(LinkList(links: try await views(env)))
            },
            WebRoute(
                method: .delete, path: "/api/v1/responder-links/{id}", access: .permission(.manageResponderLinks)
            ) { _, ctx in
                guard let id = ctx.parameters.get("id"), try await revoke(env, ctx, id: id) else {
                    return WebResponses.problem(.notFound, "responder.unknown", "No such active link.")
                }
                return Response(status: .noContent)
            },
            WebRoute(method: .get, path: "/responder-links", access: .permission(.manageResponderLinks)) { _, ctx in
                try await page(env, ctx, created: nil, message: nil)
            },
            WebRoute(method: .post, path: "/responder-links/new", access: .permission(.manageResponderLinks)) {
                req, ctx in try await createForm(env, req, ctx)
            },
            WebRoute(
                method: .post, path: "/responder-links/{id}/revoke", access: .permission(.manageResponderLinks)
            ) { _, ctx in
                _ = try await revoke(env, ctx, id: ctx.parameters.get("id") ?? "")
                return Response(status: .seeOther, headers: [.location: "/responder-links"])
            },
            WebRoute(method: .get, path: "/r/{token}", access: .anyone) { req, ctx in
                try await linkPage(env, req, ctx, message: nil)
            },
            WebRoute(method: .post, path: "/r/{token}", access: .anyone) { req, ctx in try await open(env, req, ctx) },
            WebRoute(method: .get, path: "/api/v1/responder-banner", access: .anyone) { req, _ in
                try await banner(env, req)
            },
            WebRoute(method: .get, path: "/static/banner.js", access: .anyone) { _, _ in
                WebResponses.asset(MapAssets.bannerJS, type: "text/javascript; charset=utf-8")
            },
        ]
    }

    // MARK: - making and revoking

    static func views(_ env: WebEnvironment) async throws -> [LinkView] {
        guard let links = env.responders else { return [] }
        let viewers = try await links.viewers()
        let now = env.clocks.utcNow()
        return try await links.list().map { view(env, $0, now: now, viewers: viewers[$0.id] ?? 0) }
    }

    static func view(_ env: WebEnvironment, _ l: ResponderLink, now: UTCMicros, viewers: Int) -> LinkView {
        LinkView(
            id: l.id, label: l.label, cameraGroup: l.cameraGroup, pin: l.hasPIN, createdBy: l.createdBy,
            created: l.created.iso8601, expires: l.expires.iso8601, expiresLocal: env.time.format(l.expires),
            state: l.state(at: now), openings: l.openings, lastOpened: l.lastOpened?.iso8601,
            failedPINs: l.failedPINs, viewers: l.state(at: now) == "active" ? viewers : 0)
    }

    /// Makes a link for the context's user (or the dispatch system), audits it, and returns its URL and QR.
    static func create(env: WebEnvironment, _ request: Request, _ context: WebContext, _ body: CreateRequest)
        async throws -> Result<Created, ResponderLinks.Problem>
    {
        guard let links = env.responders else {
            return .failure(.init(stableCode: "responder.input", message: "Responder links are not available."))
        }
        if let group = body.cameraGroup, env.settings.cameraGroups[group] == nil {
            return .failure(.init(stableCode: "responder.group", message: "No camera group '\(group.prefix(64))'."))
        }
        // A user limited to camera groups may hand out only one of their own groups.
        if let user = context.user, !user.cameraGroups.isEmpty,
            !(body.cameraGroup.map { user.cameraGroups.contains($0) } ?? false)
        {
            return .failure(
                .init(stableCode: "responder.input", message: "Choose one of your camera groups for the link."))
        }
        guard let authority = authority(request) else {
            return .failure(.init(stableCode: "responder.input", message: "The request names no host."))
        }
        let minutes = body.minutes ?? 240
        guard (15...720).contains(minutes) else {
            return .failure(.init(stableCode: "responder.input", message: "A link lasts 15 minutes to 12 hours."))
        }
        let made: ResponderLinks.Made
        do {
            made = try await links.create(
                label: body.label, cameraGroup: body.cameraGroup, duration: .seconds(minutes * 60), pin: body.pin,
                by: context.user?.name ?? "-")
        } catch let p as ResponderLinks.Problem { return .failure(p) }
        let url = "https://\(authority)/r/\(made.token)"
        let qr = try QRCode(url).svg()
        try await env.audit.record(
            actor: context.user?.name ?? "-", address: context.remoteAddress, action: "responderLink.create",
            object: made.link.id,
            details:
                "label \(made.link.label); cameras \(made.link.cameraGroup ?? "whole building"); until \(made.link.expires.iso8601); PIN \(made.link.hasPIN ? "yes" : "no")"
        )
        return .success(
            Created(link: view(env, made.link, now: env.clocks.utcNow(), viewers: 0), url: url, qrSVG: qr))
    }

    /// The host the request was sent to (`Host`/`:authority`), if it is a plain host[:port].
    static func authority(_ request: Request) -> String? {
        guard let a = request.head.authority ?? request.headers[.hostHeader], !a.isEmpty, a.utf8.count <= 261,
            a.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-:[]".contains($0)) })
        else { return nil }
        return a
    }

    static func createJSON(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        let data = Data(try await request.body.collect(upTo: 4096).readableBytesView)
        // Unknown keys are refused, not ignored: a dispatch system that misspells `pin` or `cameraGroup` would
        // otherwise get a link without a PIN, or for the whole building, and believe otherwise.
        let known: Set<String> = ["label", "minutes", "cameraGroup", "pin"]
        // `{"pin":"314159","pin":null}`: which one was meant? Foundation keeps one silently (RFC 8259 §4).
        if let name = JSONValue.duplicateName(in: data) {
            return WebResponses.problem(
                .badRequest, "responder.input", "The key \"\(name.prefix(40))\" is given twice: send each key once.")
        }
        if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            let unknown = Set(object.keys).subtracting(known).sorted()
            if !unknown.isEmpty {
                return WebResponses.problem(
                    .badRequest, "responder.input",
                    "Unknown key(s) \(unknown.prefix(5).map { "\"\($0.prefix(40))\"" }.joined(separator: ", ")): a link takes label, minutes, cameraGroup and pin."
                )
            }
        }
        guard let body = try? JSONDecoder().decode(CreateRequest.self, from: data) else {
            return WebResponses.problem(
                .badRequest, "responder.input", "Expected JSON: label, and optionally minutes, cameraGroup, pin.")
        }
        switch try await create(env: env, request, context, body) {
        case .failure(let p):
            return WebResponses.problem(
                p.stableCode == "responder.group" ? .notFound : .badRequest, p.stableCode, p.message)
        case .success(let created):
            var r = try WebResponses.json(created)
            r.status = .created
            return r
        }
    }

    static func createForm(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        let form = FormFields.parse(String(buffer: try await request.body.collect(upTo: 4096)))
        let group = form["cameraGroup"].flatMap { $0.isEmpty ? nil : $0 }
        let body = CreateRequest(
            // The page offers 15 min to 12 h; anything else is brought into that range (the default when unreadable).
            label: form["label"] ?? "", minutes: form["minutes"].flatMap { Int($0) }.map { min(max($0, 15), 720) },
            cameraGroup: group,
            pin: form["pin"].flatMap { $0.isEmpty ? nil : $0 })
        switch try await create(env: env, request, context, body) {
        case .failure(let p):
            let status: HTTPResponse.Status = p.stableCode == "responder.group" ? .notFound : .badRequest
            return try await page(env, context, created: nil, message: p.message, status: status)
        case .success(let created): return try await page(env, context, created: created, message: nil)
        }
    }

    /// Revokes link `id` (audited): `false` when there is no such active link.
    static func revoke(_ env: WebEnvironment, _ context: WebContext, id: String) async throws -> Bool {
        guard let links = env.responders, id.utf8.count <= 64,
            try await links.revoke(id: id, by: context.user?.name ?? "-")
        else { return false }
        try await env.audit.record(
            actor: context.user?.name ?? "-", address: context.remoteAddress, action: "responderLink.revoke", object: id
        )
        return true
    }

    // MARK: - the responder's side

    /// `GET /r/{token}`: what the link is, the PIN field if it has one, and one button. Opening is a POST, so
    /// a chat app's link preview never opens a session.
    static func linkPage(
        _ env: WebEnvironment, _ request: Request, _ context: WebContext, message: String?,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let token = context.parameters.get("token") ?? ""
        guard let links = env.responders, let link = try await links.link(token: token) else {
            return messagePage(title: "No such link", text: "This responder link does not exist.", status: .notFound)
        }
        if let refusal = ResponderLinks.refusal(link, now: env.clocks.utcNow()) {
            return messagePage(title: "Link ended", text: refusal.message, code: refusal.stableCode, status: .notFound)
        }
        var model: [String: Any] = [
            "building": env.building, "label": link.label, "expires": link.expires.iso8601,
            "expiresLocal": env.time.format(link.expires), "pin": link.hasPIN, "token": token,
        ]
        if let message { model["message"] = message }
        return WebResponses.html(Pages.render(linkTemplate, model), status: status)
    }

    /// `POST /r/{token}`: checks the PIN, opens the session (audited with address and user agent), sets the
    /// responder cookie and goes to the map. A wrong PIN is audited; the one that locks the link too, and
    /// the admins' banner shows the lock.
    static func open(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        let token = context.parameters.get("token") ?? ""
        let form = FormFields.parse(String(buffer: try await request.body.collect(upTo: 1024)))
        guard let links = env.responders else {
            return messagePage(title: "No such link", text: "This responder link does not exist.", status: .notFound)
        }
        let agent = String((request.headers[.userAgent] ?? "-").prefix(256))
        switch try await links.open(
            token: token, pin: form["pin"].map { String($0.prefix(16)) }, address: context.remoteAddress,
            userAgent: agent)
        {
        case .opened(let id, let link):
            try await env.audit.record(
                actor: "responder:\(link.id):\(SessionStore.hash(id).prefix(8))", address: context.remoteAddress,
                action: "responderLink.open", object: link.id,
                details: "label \(link.label); cameras \(link.cameraGroup ?? "whole building"); agent \(agent)")
            return Response(status: .seeOther, headers: [.location: "/map", .setCookie: ResponderAccess.setCookie(id)])
        case .refused(let problem, let link, let justLocked):
            if let link, problem.stableCode == "responder.pin" || justLocked {
                try await env.audit.record(
                    actor: "-", address: context.remoteAddress,
                    action: justLocked ? "responderLink.locked" : "responderLink.pin",
                    object: link.id,
                    details: "wrong PIN \(link.failedPINs) of \(ResponderLinks.maxFailedPINs); agent \(agent)")
            }
            if problem.stableCode == "responder.pin" {
                return try await linkPage(env, request, context, message: problem.message, status: .unauthorized)
            }
            return messagePage(title: "Link ended", text: problem.message, code: problem.stableCode, status: .notFound)
        }
    }

    /// `GET /api/v1/responder-banner`: for a user who may manage links, the links that are active or locked
    /// (the banner); for a responder, its link (or the problem that ended it, 401); otherwise nothing.
    static func banner(_ env: WebEnvironment, _ request: Request) async throws -> Response {
        if let id = WebCookies.session(in: request.headers),
            let session = try await env.sessions.find(id: id, touch: false),
            let user = env.settings.user(named: session.user)
        {
            guard user.role.permissions.contains(.manageResponderLinks) else {
                return try WebResponses.json(Banner(links: [], admin: false))
            }
            let shown = try await views(env).filter { $0.state == "active" || $0.state == "locked" }
            return try WebResponses.json(Banner(links: shown, admin: true))
        }
        if let links = env.responders, let id = ResponderAccess.cookie(in: request.headers) {
            switch try await links.find(id: id) {
            case .failure(let problem): return ResponderAccess.ended(request, problem)
            case .success(let (grant, _)):
                return try WebResponses.json(["responder": grant.label, "expires": grant.expires.iso8601])
            }
        }
        return try WebResponses.json(Banner(links: [], admin: false))
    }

    // MARK: - pages

    /// A page with one message (a link that ended, or does not exist; a page a responder may not see, with
    /// the way `back`). `data-code` carries the stable code.
    static func messagePage(
        title: String, text: String, code: String = "", status: HTTPResponse.Status, back: String? = nil
    ) -> Response {
        var model: [String: Any] = ["title": title, "text": text, "code": code]
        if let back { model["back"] = back }
        return WebResponses.html(Pages.render(messageTemplate, model), status: status)
    }

    // swift-format-ignore
    static let messageTemplate = try! MustacheTemplate(string: Pages.head + """
        <title>{{title}}</title></head>
        <body><main class="narrow"><h1>{{title}}</h1><p id="ended" class="error" data-code="{{code}}">{{text}}</p>{{#back}}<p><a id="back" href="{{back}}">Back to the map</a></p>{{/back}}</main></body></html>
        """)

    // swift-format-ignore
    static let linkTemplate = try! MustacheTemplate(string: Pages.head + """
        <title>Responder access — {{building}}</title></head>
        <body><main class="narrow">
        <h1>{{building}}</h1>
        <p>Emergency access for <strong>{{label}}</strong>: the floor plan and live cameras, until
        <time datetime="{{expires}}">{{expiresLocal}}</time>. Everything you watch is logged.</p>
        <form method="post" action="/r/{{token}}">
        {{#message}}<p class="error" role="alert">{{message}}</p>{{/message}}
        {{#pin}}<label for="pin">PIN</label>
        <input id="pin" name="pin" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required autofocus>{{/pin}}
        <button type="submit" id="open">Open the map</button>
        </form></main></body></html>
        """)

    // swift-format-ignore
    static let pageTemplate = try! MustacheTemplate(string: Pages.head + """
        <title>Responder links — {{building}}</title></head>
        <body>
        <header><h1>Responder links</h1><nav><a href="/">Status</a> · <a href="/map">Map</a></nav></header>
        <main>
        {{#message}}<p class="error" role="alert">{{message}}</p>{{/message}}
        {{#created}}<section id="created" aria-labelledby="h-created"><h2 id="h-created">Link for {{label}}</h2>
        <p>Hand this to the responders. It is shown only now: the box keeps only a hash of it.</p>
        <p><a id="link-url" href="{{url}}">{{url}}</a></p>
        <img id="link-qr" src="{{qr}}" alt="QR code of the link" width="264" height="264"></section>{{/created}}
        <section aria-labelledby="h-new"><h2 id="h-new">New link</h2>
        <form method="post" action="/responder-links/new" class="filter">
        <input type="hidden" name="csrf" value="{{csrf}}">
        <label>Label <input name="label" required maxlength="100" placeholder="Engine 3"></label>
        <label>Cameras <select name="cameraGroup">{{#wholeBuilding}}<option value="">Whole building</option>{{/wholeBuilding}}{{#groups}}<option>{{.}}</option>{{/groups}}</select></label>
        <label>For <select name="minutes"><option value="15">15 min</option><option value="60">1 h</option>
        <option value="240" selected>4 h</option><option value="480">8 h</option><option value="720">12 h</option></select></label>
        <label>PIN (6 digits, optional) <input name="pin" inputmode="numeric" pattern="[0-9]{6}" maxlength="6"></label>
        <button type="submit">Make link</button></form></section>
        <section aria-labelledby="h-links"><h2 id="h-links">Links</h2>
        <table id="links"><thead><tr><th scope="col">Label</th><th scope="col">Cameras</th><th scope="col">State</th>
        <th scope="col">Until</th><th scope="col">Opened</th><th scope="col">Viewers</th><th scope="col">By</th><th scope="col"></th></tr></thead>
        <tbody>{{#links}}<tr data-link="{{id}}"><th scope="row" data-label="Label">{{label}}</th><td data-label="Cameras">{{cameras}}</td>
        <td data-label="State" class="link-{{state}}">{{state}}</td><td data-label="Until">{{expiresLocal}}</td>
        <td data-label="Opened">{{openings}}</td><td data-label="Viewers">{{viewers}}</td><td data-label="By">{{createdBy}}</td>
        <td>{{#revocable}}<form method="post" action="/responder-links/{{id}}/revoke"><input type="hidden" name="csrf" value="{{csrf}}">
        <button type="submit" class="revoke">Revoke</button></form>{{/revocable}}</td></tr>{{/links}}
        {{#noLinks}}<tr><td colspan="8">No links yet.</td></tr>{{/noLinks}}</tbody></table></section>
        </main></body></html>
        """)

    static func page(
        _ env: WebEnvironment, _ context: WebContext, created: Created?, message: String?,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let csrf = context.session?.csrfToken ?? ""
        let user = context.user
        let limited = user.map { !$0.cameraGroups.isEmpty } ?? true
        let groups = limited ? (user?.cameraGroups ?? []) : env.settings.cameraGroups.keys.sorted()
        let links = try await views(env).map { l -> [String: Any] in
            [
                "id": l.id, "label": l.label, "cameras": l.cameraGroup ?? "whole building", "state": l.state,
                "expiresLocal": l.expiresLocal, "openings": l.openings, "viewers": l.viewers, "createdBy": l.createdBy,
                "revocable": l.state == "active" || l.state == "locked", "csrf": csrf,
            ]
        }
        var model: [String: Any] = [
            "building": env.building, "csrf": csrf, "wholeBuilding": !limited, "groups": groups, "links": links,
            "noLinks": links.isEmpty,
        ]
        if let message { model["message"] = message }
        if let created {
            model["created"] = [
                "label": created.link.label, "url": created.url,
                "qr": "data:image/svg+xml;base64," + Data(created.qrSVG.utf8).base64EncodedString(),
            ]
        }
        return WebResponses.html(Pages.render(pageTemplate, model), status: status)
    }
}
