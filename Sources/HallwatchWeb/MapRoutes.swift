import Foundation
import HallwatchConfig
import HallwatchCore
import Hummingbird
import Mustache
import NIOCore

/// Leaflet as Debian's `libjs-leaflet` installs it, read at start and served by the box as
/// `/static/leaflet/leaflet.js` and `/static/leaflet/leaflet.css` (nothing from the internet).
public struct LeafletFiles: Sendable {
    /// Where Debian puts it.
    public static let directory = "/usr/share/javascript/leaflet"
    public var js: String
    public var css: String

    /// Reads the minified script (about a third of `leaflet.js`; the full one when it is missing) and the style
    /// from `directory`; `nil` when Leaflet is not installed (the map page then says so).
    public static func load(directory: String = LeafletFiles.directory) -> LeafletFiles? {
        guard
            let js = (try? String(contentsOfFile: directory + "/leaflet.min.js", encoding: .utf8))
                ?? (try? String(contentsOfFile: directory + "/leaflet.js", encoding: .utf8)),
            let css = try? String(contentsOfFile: directory + "/leaflet.css", encoding: .utf8)
        else { return nil }
        return LeafletFiles(js: js, css: css)
    }
}

/// The map's data, `GET /api/v1/map`: the floors, and the pins of the cameras this user may see with their
/// live state. Coordinates are the floor image's pixels (``HallwatchConfig/MapConfig``).
struct MapView: Codable, Sendable, Equatable {
    struct Floor: Codable, Sendable, Equatable {
        var id: String
        var name: String
        var level: Int
        /// The image's size in pixels.
        var width: Int
        var height: Int
        /// Where the page loads the image (`/map/floors/{id}`).
        var url: String
        /// The image's path in the configuration; only for users who may place pins (the YAML they download).
        var imagePath: String?
    }
    struct Camera: Codable, Sendable, Equatable {
        var id: String
        /// The name the configuration gives the camera.
        var name: String
        var floor: String
        var x: Int
        var y: Int
        /// Degrees clockwise from the top of the image.
        var direction: Int
        /// Field of view, degrees.
        var angle: Int
        /// `online`, `connecting`, `offline` or `unknown`.
        var state: String
        /// The stream the pop-up plays (`sub` when the camera has one, else `main`).
        var stream: String
    }
    struct Door: Codable, Sendable, Equatable {
        var id: String
        var floor: String
        var x: Int
        var y: Int
    }
    var floors: [Floor]
    var cameras: [Camera]
    var doors: [Door]
    /// Whether this user may use placement mode.
    var canPlace: Bool
}

/// One camera's live state on the map's event stream (`event: cameras`).
struct MapCameraState: Codable, Sendable, Equatable {
    var id: String
    var state: String
}

/// A door pin's state on the map's event stream (`event: doors`): the door's state from its events, whether it
/// is alarming (`forced` or `held`: the pin flashes), and the cameras to highlight meanwhile (direct, then
/// indirect; only those the user may see).
struct MapDoorState: Codable, Sendable, Equatable {
    var id: String
    var state: String
    var alarm: Bool
    var cameras: [String]
}

/// The floor-plan map: `/map` (the page), `/api/v1/map` (its data), `/api/v1/map/events` (live camera and door
/// states),
/// `/map/floors/{id}` (the images), and its static files. Permission `map` (every role and responder
/// sessions), cameras limited to the user's groups; placement mode needs `placePins` and no group limit.
enum MapRoutes {
    static func table(_ env: WebEnvironment) -> [WebRoute] {
        [
            WebRoute(method: .get, path: "/map", access: .permission(.map)) { _, ctx in page(env, ctx) },
            WebRoute(method: .get, path: "/api/v1/map", access: .permission(.map)) { _, ctx in
                let view = mapView(env, ctx)
                try await WebRoutes.auditCameraView(env, ctx, view.cameras.map(\.id), details: "map")
                return try WebResponses.json(view)
            },
            WebRoute(method: .get, path: "/api/v1/map/events", access: .permission(.map)) { _, ctx in
                // Checked four times a second, so a forced door flashes within ~¼ s of its event (goal ≤ 1 s).
                WebRoutes.eventStream(env, ctx, period: .milliseconds(250)) { encoder in
                    [
                        (
                            "cameras",
                            try encoder.encode(
                                WebRoutes.scopedStatus(env, ctx).cameras.map {
                                    MapCameraState(id: $0.id, state: $0.state)
                                })
                        ),
                        ("doors", try encoder.encode(doorStates(env, ctx))),
                    ]
                }
            },
            WebRoute(method: .get, path: "/map/floors/{id}", access: .permission(.map)) { _, ctx in
                guard let id = ctx.parameters.get("id"), let image = env.map?.current().images[id] else {
                    return WebResponses.problem(.notFound, "map.floor", "No such floor.")
                }
                return Response(
                    status: .ok, headers: [.contentType: image.kind.mediaType, .cacheControl: "private, max-age=60"],
                    body: .init(byteBuffer: ByteBuffer(bytes: image.bytes)))
            },
            WebRoute(method: .get, path: "/static/map.js", access: .anyone) { _, _ in
                WebResponses.asset(MapAssets.mapJS, type: "text/javascript; charset=utf-8")
            },
            WebRoute(method: .get, path: "/static/map.css", access: .anyone) { _, _ in
                WebResponses.asset(MapAssets.mapCSS, type: "text/css; charset=utf-8")
            },
            WebRoute(method: .get, path: "/static/leaflet/leaflet.js", access: .anyone) { _, _ in
                leaflet(env.leaflet?.js, type: "text/javascript; charset=utf-8")
            },
            WebRoute(method: .get, path: "/static/leaflet/leaflet.css", access: .anyone) { _, _ in
                leaflet(env.leaflet?.css, type: "text/css; charset=utf-8")
            },
        ]
    }

    /// One of Leaflet's files, cached a day; 404 `map.leaflet` when Leaflet is not installed.
    static func leaflet(_ text: String?, type: String) -> Response {
        guard let text else {
            return WebResponses.problem(.notFound, "map.leaflet", "Leaflet (libjs-leaflet) is not installed.")
        }
        var r = WebResponses.asset(text, type: type)
        r.headers[.cacheControl] = "max-age=86400"
        return r
    }

    /// The stream a map pop-up plays: `sub` when the camera has a sub stream (small, H.264: quick on a phone's
    /// cellular link), else `main`.
    static func popupStream(_ camera: StatusView.Camera?) -> String { camera?.sub == nil ? "main" : "sub" }

    /// The map cut to what the context's user may see.
    static func mapView(_ env: WebEnvironment, _ context: WebContext) -> MapView {
        let snapshot = env.map?.current()
        let status = WebRoutes.scopedStatus(env, context).cameras
        let rows = Dictionary(status.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let placer = canPlace(env, context)
        guard let snapshot, let map = snapshot.map else {
            return MapView(floors: [], cameras: [], doors: [], canPlace: false)
        }
        let floors = map.floors.compactMap { f -> MapView.Floor? in
            guard let image = snapshot.images[f.id] else { return nil }
            return MapView.Floor(
                id: f.id, name: f.name, level: f.level, width: image.width, height: image.height,
                url: "/map/floors/\(f.id)", imagePath: placer ? f.image : nil)
        }
        let cameras = map.cameras.compactMap { pin -> MapView.Camera? in
            guard let row = rows[pin.camera.rawValue] else { return nil }  // not this user's
            return MapView.Camera(
                id: pin.camera.rawValue, name: snapshot.names[pin.camera] ?? pin.camera.rawValue, floor: pin.floor,
                x: pin.x, y: pin.y, direction: pin.direction, angle: pin.angle, state: row.state,
                stream: popupStream(row))
        }
        let doors = map.doors.map { MapView.Door(id: $0.id, floor: $0.floor, x: $0.x, y: $0.y) }
        return MapView(floors: floors, cameras: cameras, doors: doors, canPlace: placer)
    }

    /// The states of the map's door pins that are configured doors; for a user limited to camera groups, only
    /// doors with a camera they see, and only those cameras.
    static func doorStates(_ env: WebEnvironment, _ context: WebContext) -> [MapDoorState] {
        guard let pins = env.map?.current().map?.doors, !pins.isEmpty, let events = env.events,
            let views = try? events.doorViews()
        else { return [] }
        let visible = EventRoutes.visible(env, context)
        let byID = Dictionary(views.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return pins.compactMap { pin in
            guard let v = byID[pin.id] else { return nil }
            let cameras = (v.direct + v.indirect).filter { visible?.contains($0) ?? true }
            guard visible == nil || !cameras.isEmpty else { return nil }
            return MapDoorState(
                id: v.id, state: v.state, alarm: v.state == "forced" || v.state == "held", cameras: cameras)
        }
    }

    /// Placement mode: permission `placePins` and no camera-group limit (the YAML holds every pin).
    static func canPlace(_ env: WebEnvironment, _ context: WebContext) -> Bool {
        guard let user = context.user, context.responder == nil else { return false }
        return user.role.permissions.contains(.placePins) && env.settings.visibleCameras(for: user) == nil
    }

    // swift-format-ignore
    static let template = try! MustacheTemplate(string: Pages.head + """
        <link rel="stylesheet" href="/static/leaflet/leaflet.css"><link rel="stylesheet" href="/static/map.css">
        <title>Map — {{building}}</title>
        <script src="/static/leaflet/leaflet.js" defer></script><script src="/static/live.js" defer></script>
        <script src="/static/map.js" defer></script></head>
        <body class="map-page{{#responder}} responder{{/responder}}">
        <header><h1>{{building}}</h1>
        <nav>{{^responder}}<a href="/">Status</a> · <a href="/live">Live grid</a>{{/responder}}{{#responder}}<span class="who">{{label}} · until <time datetime="{{expires}}">{{expiresLocal}}</time></span>{{/responder}}</nav>
        <label class="floors">Floor <select id="floor"></select></label>
        {{#canPlace}}<span class="placement"><button type="button" id="place">Placement mode</button>
        <button type="button" id="download" hidden>Download map YAML</button></span>{{/canPlace}}
        </header>
        <main><div id="map" role="application" aria-label="Floor plan with camera pins"></div>
        <p id="map-note" aria-live="polite"></p></main></body></html>
        """)

    /// `/map`: the page; everything else comes from `/api/v1/map` and the event stream.
    static func page(_ env: WebEnvironment, _ context: WebContext) -> Response {
        var model: [String: Any] = ["building": env.building, "canPlace": canPlace(env, context)]
        if let r = context.responder {
            model["responder"] = true
            model["label"] = r.label
            model["expires"] = r.expires.iso8601
            model["expiresLocal"] = env.time.format(r.expires)
        }
        return WebResponses.html(Pages.render(template, model))
    }
}
