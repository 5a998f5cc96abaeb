import Hummingbird
import Mustache

/// The live pages: one camera (`/live/{id}`) and the 2×2 grid (`/live`). Each tile is a `<video>` the player
/// module (`/static/live.js`, ``LiveAssets``) fills from the camera's WebSocket; no inline script (the CSP).
enum LivePages {
    // swift-format-ignore
    static let template = try! MustacheTemplate(string: Pages.head + """
        <title>{{title}} — {{building}}</title>
        <script src="/static/live.js" defer></script></head>
        <body>
        <header><h1>{{title}}</h1><nav><a href="/">Status</a> · <a href="/live">Live grid</a></nav></header>
        <main>
        <div class="{{layout}}">{{#tiles}}
        <div class="tile" data-camera="{{id}}"><video muted autoplay playsinline></video>
        <a class="name" href="/live/{{id}}">{{id}}</a><span class="note" aria-live="polite"></span></div>{{/tiles}}
        {{#noTiles}}<p>No camera to show.</p>{{/noTiles}}
        </div></main></body></html>
        """)

    /// `/live/{id}`: one camera, full width; 404 for a camera the user may not see (as if it did not exist).
    static func camera(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        let visible = WebRoutes.scopedStatus(env, context).cameras.map(\.id)
        guard let id = context.parameters.get("id"), visible.contains(id) else {
            return WebResponses.html(
                Pages.render(template, ["title": "No such camera", "building": env.building, "noTiles": true]),
                status: .notFound)
        }
        return page(env, title: id, layout: "single", ids: [id])
    }

    /// `/live`: the first four cameras the user may see, 2×2 (one column on a phone).
    static func grid(_ env: WebEnvironment, _ context: WebContext) async throws -> Response {
        let ids = Array(WebRoutes.scopedStatus(env, context).cameras.map(\.id).prefix(4))
        return page(env, title: "Live", layout: "grid", ids: ids)
    }

    static func page(_ env: WebEnvironment, title: String, layout: String, ids: [String]) -> Response {
        let model: [String: Any] = [
            "title": title, "building": env.building, "layout": layout,
            "tiles": ids.map { ["id": $0] }, "noTiles": ids.isEmpty,
        ]
        return WebResponses.html(Pages.render(template, model))
    }
}
