import Hummingbird
import Mustache

/// The live pages: one camera (`/live/{id}`) and the grid (`/live`: 1, 2×2, 3×3 or 4×4 tiles of the cameras
/// the user may see, in pages; the user's choice is saved, ``LiveLayouts``). Each tile is a `<video>` the player
/// module (`/static/live.js`, ``LiveAssets``) fills from the camera's WebSocket; no inline script (the CSP).
/// In the grid a tile off screen is paused and a click shows it full screen. Tiles of a camera with a sub stream
/// (`data-sub`) play it in the grid and on a phone, and the main stream full screen and on `/live/{id}`
/// elsewhere (`?stream=main|sub` picks one); the player falls back to the sub stream when the browser cannot
/// decode the main one (HEVC in Firefox).
///
/// Navigation: a user's page links the status page and the grid, and a camera's page its timeline (with the
/// playback permission); a responder's page links only the map — a responder may see nothing else, so it is
/// shown no link that would only be refused.
enum LivePages {
    // swift-format-ignore
    static let template = try! MustacheTemplate(string: Pages.head + """
        <title>{{title}} — {{building}}</title>
        <script src="/static/live.js" defer></script></head>
        <body>
        <header><h1>{{title}}</h1><nav>{{#responder}}<a href="/map">Map</a>{{/responder}}{{^responder}}<a href="/">Status</a> · <a href="/live">Live grid</a>{{#timeline}} · <a id="timeline-link" href="/cameras/{{timeline}}/timeline">Timeline</a>{{/timeline}}{{/responder}}</nav></header>
        <main>
        {{#isGrid}}<form class="layouts" method="post" action="/live/layout"><input type="hidden" name="csrf" value="{{csrf}}">
        <span>Layout:</span>{{#layouts}} <button type="submit" name="size" value="{{size}}"{{#current}} aria-pressed="true"{{/current}}>{{label}}</button>{{/layouts}}
        {{#previous}} <a href="/live?page={{previous}}">◀ previous</a>{{/previous}}{{#pageLabel}} <span class="page">{{pageLabel}}</span>{{/pageLabel}}{{#next}} <a href="/live?page={{next}}">next ▶</a>{{/next}}</form>{{/isGrid}}
        <div class="{{layout}}">{{#tiles}}
        <div class="tile" data-camera="{{id}}"{{#stream}} data-stream="{{stream}}"{{/stream}}{{#sub}} data-sub="1"{{/sub}}><video muted autoplay playsinline></video>
        <a class="name" href="/live/{{id}}">{{id}}</a><span class="note" aria-live="polite"></span></div>{{/tiles}}
        {{#noTiles}}<p>No camera to show.</p>{{/noTiles}}
        </div></main></body></html>
        """)

    /// `/live/{id}`: one camera, full width; 404 for a camera the user may not see (as if it did not exist).
    static func camera(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        let visible = WebRoutes.scopedStatus(env, context).cameras
        guard let id = context.parameters.get("id"), let row = visible.first(where: { $0.id == id }) else {
            return WebResponses.html(
                Pages.render(
                    template,
                    [
                        "title": "No such camera", "building": env.building, "noTiles": true,
                        "responder": context.responder != nil,
                    ]),
                status: .notFound)
        }
        let asked = request.uri.queryParameters.get("stream")
        let stream = asked == "sub" && row.sub != nil ? "sub" : asked == "main" ? "main" : nil
        var extra: [String: Any] = [:]
        if context.responder == nil, context.user?.role.permissions.contains(.playback) == true {
            extra["timeline"] = row.id
        }
        return page(env, context, title: id, layout: "single", tiles: [(row, stream)], extra: extra)
    }

    /// `/live?page=N`: the cameras the user may see, `size`×`size` a page in the layout the user chose last
    /// (2×2 until then; one column on a phone). `page` counts from 0; one past the end shows the last page.
    static func grid(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        let all = WebRoutes.scopedStatus(env, context).cameras
        let size = try await layouts(env).size(for: context.user?.name ?? "-")
        let perPage = size * size
        let pages = max(1, (all.count + perPage - 1) / perPage)
        let shown = min(max(0, request.uri.queryParameters.get("page").flatMap { Int($0) } ?? 0), pages - 1)
        let ids = Array(all.dropFirst(shown * perPage).prefix(perPage))
        var extra: [String: Any] = [
            "isGrid": true, "csrf": context.session?.csrfToken ?? "",
            "layouts": LiveLayouts.sizes.map { n in
                ["size": n, "label": n == 1 ? "1" : "\(n)×\(n)", "current": n == size] as [String: Any]
            },
        ]
        if pages > 1 { extra["pageLabel"] = "page \(shown + 1) of \(pages)" }
        if shown > 0 { extra["previous"] = "\(shown - 1)" }
        if shown + 1 < pages { extra["next"] = "\(shown + 1)" }
        // Grids play sub streams; a click (full screen) switches the tile to the main stream.
        return page(
            env, context, title: "Live", layout: "grid grid-\(size)",
            tiles: ids.map { ($0, $0.sub == nil ? nil : "sub") },
            extra: extra)
    }

    /// `POST /live/layout` (form: `size` 1–4, the CSRF token): saves the user's grid layout, back to `/live`.
    static func saveLayout(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        let body = try await request.body.collect(upTo: 16 << 10)
        guard let size = FormFields.parse(String(buffer: body))["size"].flatMap({ Int($0) }),
            LiveLayouts.sizes.contains(size), let user = context.user?.name
        else { return WebResponses.problem(.badRequest, "live.layout", "The layout is 1, 2, 3 or 4 tiles a side.") }
        try await layouts(env).save(size, for: user)
        return Response(status: .seeOther, headers: [.location: "/live"])
    }

    static func layouts(_ env: WebEnvironment) -> LiveLayouts { LiveLayouts(database: env.sessions.database) }

    /// The page with `tiles`: each camera and the stream its tile starts on (`nil`: the player chooses, `main`
    /// unless on a phone and the camera has a sub stream).
    static func page(
        _ env: WebEnvironment, _ context: WebContext, title: String, layout: String,
        tiles: [(StatusView.Camera, String?)], extra: [String: Any] = [:]
    ) -> Response {
        var model: [String: Any] = [
            "title": title, "building": env.building, "layout": layout, "responder": context.responder != nil,
            "tiles": tiles.map { c, stream -> [String: Any] in
                var t: [String: Any] = ["id": c.id, "sub": c.sub != nil]
                if let stream { t["stream"] = stream }
                return t
            },
            "noTiles": tiles.isEmpty,
        ]
        model.merge(extra) { a, _ in a }
        return WebResponses.html(Pages.render(template, model))
    }
}
