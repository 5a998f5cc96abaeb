import Foundation
import HallwatchCore
import HallwatchStorage
import Hummingbird
import Mustache

/// `/cameras/{id}/timeline?day=YYYY-MM-DD&at=RFC3339`: one camera's day of recordings in the building's time
/// zone, drawn and played by `/static/timeline.js` (``TimelineAssets``; no inline script: the CSP). The page
/// carries the day's bounds (UTC ms), the zone and the days that have video (a calendar of links); the script
/// asks the recordings API for the rest.
enum TimelinePage {
    /// How many days back the calendar looks.
    static let calendarDays = 62

    // swift-format-ignore
    static let template = try! MustacheTemplate(string: Pages.head + """
        <title>{{camera}} timeline — {{building}}</title>
        <link rel="stylesheet" href="/static/timeline.css">
        <script src="/static/timeline.js" defer></script></head>
        <body>
        <header><h1>{{camera}}</h1><nav><a href="/">Status</a> · <a href="/live/{{camera}}">Live</a> · <a id="tl-wall" href="/playback/wall?cameras={{camera}}">Wall (2×2)</a></nav></header>
        <main id="timeline" data-camera="{{camera}}" data-zone="{{zone}}" data-day-start="{{dayStart}}"
         data-day-end="{{dayEnd}}" data-at="{{at}}"{{#sub}} data-sub="1"{{/sub}}>
        <div class="tl-player"><video id="tl-video" muted playsinline preload="auto"></video>
        <video id="tl-scrub" muted playsinline preload="auto" hidden></video>
        <span id="tl-clock" aria-live="polite"></span><span id="tl-note" aria-live="polite"></span></div>
        <div class="tl-controls">
        <button id="tl-prev-gap" title="Previous gap or event">«</button>
        <button id="tl-step-back" title="One frame back">◀|</button>
        <button id="tl-play" title="Play or pause">▶</button>
        <button id="tl-step" title="One frame on">|▶</button>
        <button id="tl-next-gap" title="Next gap or event">»</button>
        <label>Rate <select id="tl-rate">{{#rates}}<option value="{{.}}">{{.}}×</option>{{/rates}}</select></label>
        <button id="tl-zoom-out" title="Zoom out">−</button><button id="tl-zoom-in" title="Zoom in">+</button>
        </div>
        <canvas id="tl-canvas" height="96" aria-label="Recordings of the day: click to play, drag to scrub, wheel or pinch to zoom"></canvas>
        <p class="tl-legend"><span class="run"></span> recorded <span class="gap"></span> nothing recorded
        <span class="hold"></span> evidence hold <span class="event"></span> event</p>
        <nav class="tl-days" aria-label="Days with video">{{#days}}<a href="?day={{day}}"{{#selected}} aria-current="date"{{/selected}}>{{day}}</a> {{/days}}{{^days}}No video recorded yet.{{/days}}</nav>
        </main></body></html>
        """)

    /// The page; 404 for a camera the user may not see (as if it did not exist).
    static func page(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        guard let id = context.parameters.get("id"), let camera = CameraID(id),
            WebRoutes.scopedStatus(env, context).cameras.contains(where: { $0.id == id })
        else { return WebResponses.problem(.notFound, "camera.unknown", "No such camera.") }
        let q = request.uri.queryParameters
        let now = env.clocks.utcNow()
        var at: UTCMicros?
        if let text = q.get("at"), !text.isEmpty {
            do { at = try Playback.time("at", text) } catch { return error.refusal }
        }
        // A day= that is not a date is refused, never read as today: the page would show another day's video.
        let day = q.get("day").flatMap { $0.isEmpty ? nil : $0 } ?? localDay(env.time, at ?? now)
        guard day.utf8.count == 10, let start = env.time.parseLocal(day + "T00:00:00") else {
            return WebResponses.problem(.badRequest, "playback.time", "day= is a date, YYYY-MM-DD.")
        }
        let next = localDay(env.time, start.adding(micros: 26 * 3_600_000_000))
        let end = env.time.parseLocal(next + "T00:00:00") ?? start.adding(micros: 86_400_000_000)
        var days: [String] = []
        if let disks = env.recordings {
            let runs = (try? await PlaybackBody.offPool { try disks.library().runs(camera: camera) }) ?? []
            days = daysWithVideo(runs, time: env.time, now: now)
        }
        try await WebRoutes.auditCameraView(env, context, [camera.rawValue], details: "timeline \(day)")
        let model: [String: Any] = [
            "camera": camera.rawValue, "building": env.building, "zone": env.time.identifier,
            "dayStart": String(start.micros / 1000), "dayEnd": String(end.micros / 1000),
            "at": at.map { String($0.micros / 1000) } ?? "", "rates": [1, 2, 4, 8, 16],
            "sub": LiveView.subStream(env, of: camera) != nil,
            "days": days.map { ["selected": $0 == day, "day": $0] as [String: Any] },
        ]
        return WebResponses.html(Pages.render(template, model))
    }

    /// `YYYY-MM-DD` of `t` on the building's wall clock.
    static func localDay(_ time: BuildingTime, _ t: UTCMicros) -> String {
        String(time.format(t).prefix(10))
    }

    /// The local days (newest first, at most ``calendarDays`` back from `now`) that some run touches.
    static func daysWithVideo(_ runs: [RunSummary], time: BuildingTime, now: UTCMicros) -> [String] {
        let earliest = now.adding(micros: -Int64(calendarDays) * 86_400_000_000)
        var days = Set<String>()
        for r in runs where r.endUTC > earliest {
            var t = max(r.startUTC, earliest)
            while t <= r.endUTC {
                days.insert(localDay(time, t))
                t = t.adding(micros: 6 * 3_600_000_000)  // steps shorter than any day, DST or not
            }
            days.insert(localDay(time, r.endUTC))
        }
        return days.sorted(by: >)
    }
}
