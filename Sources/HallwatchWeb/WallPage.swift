import Foundation
import HallwatchCore
import Hummingbird
import Mustache

/// `/playback/wall?cameras=A,B,C,D&at=RFC3339`: up to four cameras' recordings played side by side (2×2), locked to
/// one wall clock, so what one camera saw can be followed into the next (issue 15). `cameras` may also be
/// repeated (the page's own form sends one per slot); `at` defaults to a minute ago. Each tile plays the box's
/// moov-first MP4 of its camera, exactly as the timeline does (`video.mp4`, audited per request); the script
/// (`/static/wall.js`, ``WallAssets``) keeps every tile on the shared clock. The page's view is audited once,
/// naming its cameras. A camera the user may not see is 404, as if it did not exist.
enum WallPage {
    /// Tiles on the wall.
    static let maxCameras = 4

    // swift-format-ignore
    static let template = try! MustacheTemplate(string: Pages.head + """
        <title>Playback wall — {{building}}</title>
        <link rel="stylesheet" href="/static/wall.css">
        <script src="/static/wall.js" defer></script></head>
        <body>
        <header><h1>Playback wall</h1><nav><a href="/">Status</a></nav></header>
        <main id="wall" data-at="{{at}}" data-zone="{{zone}}">
        <form class="wall-pick" method="get" action="/playback/wall">
        {{#slots}}<label>Camera {{n}} <select name="cameras"><option value="">—</option>{{#options}}<option value="{{id}}"{{#selected}} selected{{/selected}}>{{id}}</option>{{/options}}</select></label>
        {{/slots}}<label>From <input name="at" value="{{atText}}" size="24" maxlength="40" pattern="[0-9T:.+Z-]+" title="An RFC 3339 time, e.g. 2026-12-07T08:00:00Z"></label>
        <button type="submit">Show</button></form>
        <div class="wall-controls">
        <button id="wall-back" title="10 s back">−10 s</button>
        <button id="wall-play" title="Play or pause">Pause</button>
        <button id="wall-on" title="10 s on">+10 s</button>
        <label>Rate <select id="wall-rate"><option value="1">1×</option><option value="2">2×</option></select></label>
        <span id="wall-clock" aria-live="off"></span>
        </div>
        <div class="wall-grid">{{#tiles}}<figure class="wall-tile" data-camera="{{id}}">
        <video muted playsinline preload="auto"></video>
        <figcaption><a href="/cameras/{{id}}/timeline">{{id}}</a> <span class="wall-note" aria-live="polite"></span></figcaption>
        </figure>{{/tiles}}{{^tiles}}<p>Pick up to four cameras and a time.</p>{{/tiles}}</div>
        </main></body></html>
        """)

    /// The page.
    static func page(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        let q = request.uri.queryParameters
        let visible = WebRoutes.scopedStatus(env, context).cameras.map(\.id)
        var cameras: [String] = []
        for value in q.getAll("cameras").prefix(16) {
            for id in value.split(separator: ",").prefix(16).map(String.init) where !id.isEmpty && !cameras.contains(id)
            {
                cameras.append(id)
            }
        }
        guard cameras.count <= maxCameras else {
            return WebResponses.problem(.badRequest, "playback.range", "At most \(maxCameras) cameras on the wall.")
        }
        guard cameras.allSatisfy({ CameraID($0) != nil && visible.contains($0) }) else {
            return WebResponses.problem(.notFound, "camera.unknown", "No such camera.")
        }
        let at: UTCMicros
        if let text = q.get("at"), !text.isEmpty {
            do { at = try Playback.time("at", text) } catch { return error.refusal }
        } else {
            at = env.clocks.utcNow().adding(micros: -60_000_000)
        }
        if !cameras.isEmpty {
            try await WebRoutes.auditCameraView(env, context, cameras, details: "playback wall from \(at.iso8601)")
        }
        let model: [String: Any] = [
            "building": env.building, "zone": env.time.identifier, "at": String(at.micros / 1000),
            "atText": at.iso8601,
            "slots": (0..<maxCameras).map { i in
                [
                    "n": i + 1,
                    "options": visible.map { ["id": $0, "selected": i < cameras.count && cameras[i] == $0] },
                ] as [String: Any]
            },
            "tiles": cameras.map { ["id": $0] },
        ]
        return WebResponses.html(Pages.render(template, model))
    }
}

/// The wall's script and style (`/static/wall.js`, `/static/wall.css`): vanilla JavaScript, nothing from the
/// internet. On ``WallPage``'s `#wall`:
///
/// - One wall clock (UTC ms) for the page: `data-at` when it opens, then advancing at the chosen rate while
///   playing; −10 s / +10 s move it, Pause stops it.
/// - Each tile loads its camera's `video.mp4?from=T&to=T+10min` (T the wall clock) and, as the timeline does,
///   maps media time to UTC with `Hallwatch-Covered-From` and `Hallwatch-Presentation-Offset` (a one-byte range
///   request run beside the video's own load); at the window's end the next one loads.
/// - Every 250 ms each playing tile's UTC is compared with the wall clock: more than 400 ms apart it seeks to the
///   clock; 30–400 ms apart its `playbackRate` is nudged by up to ±10 % until it is back (no visible jump); a tile
///   with nothing recorded at the clock says so and tries again every 5 s (a gap ends).
/// - For tests: each tile carries `data-utc` (ms, the frame on screen) and `data-state`
///   (`loading`/`playing`/`gap`/`error`); `#wall` carries `data-utc` (the wall clock).
enum WallAssets {
    // swift-format-ignore
    static let js = #"""
        // Hallwatch playback wall: see WallPage.swift for what it does.
        'use strict';
        (function () {
          var root = document.getElementById('wall');
          if (!root) return;
          var WINDOW = 600e3, SEEK_MS = 400, NUDGE_MS = 30, RETRY_MS = 5000;
          var fmt = new Intl.DateTimeFormat('en-GB', { timeZone: root.dataset.zone, year: 'numeric', month: '2-digit',
            day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
          var clockText = document.getElementById('wall-clock'), playButton = document.getElementById('wall-play');
          var rateSelect = document.getElementById('wall-rate');
          // The wall clock: at `base` UTC when performance.now() was `perf`, advancing at `rate` unless paused.
          var wall = { base: Number(root.dataset.at) || Date.now() - 60e3, perf: performance.now(), rate: 1, paused: false };
          function now() { return wall.paused ? wall.base : wall.base + (performance.now() - wall.perf) * wall.rate; }
          function setClock(t) { wall.base = t; wall.perf = performance.now(); }
          var iso = function (t) { return new Date(t).toISOString(); };

          var tiles = Array.prototype.map.call(document.querySelectorAll('.wall-tile'), function (el) {
            var v = el.querySelector('video');
            v.disableRemotePlayback = true;
            return { el: el, video: v, note: el.querySelector('.wall-note'), camera: el.dataset.camera,
                     coveredFrom: null, windowTo: null, offset: 0, token: 0, retry: 0 };
          });
          function state(tile, s, text) { tile.el.dataset.state = s; tile.note.textContent = text || ''; }
          function tileUTC(tile) {
            return tile.coveredFrom === null ? null : tile.coveredFrom + (tile.video.currentTime - tile.offset) * 1000;
          }
          function load(tile, t) {
            var token = ++tile.token;
            var url = '/api/v1/cameras/' + encodeURIComponent(tile.camera) + '/video.mp4?from=' + iso(t) + '&to=' +
              iso(Math.min(t + WINDOW, Date.now() + 60e3));
            tile.coveredFrom = null; tile.windowTo = null;
            state(tile, 'loading', 'loading…');
            tile.video.pause(); tile.video.src = url;
            var metadata = new Promise(function (resolve) { tile.video.addEventListener('loadedmetadata', resolve, { once: true }); });
            fetch(url, { headers: { Range: 'bytes=0-0' }, credentials: 'same-origin' }).then(function (r) {
              if (token !== tile.token) return;
              if (r.status === 404) { tile.video.removeAttribute('src'); tile.video.load(); tile.retry = Date.now() + RETRY_MS; state(tile, 'gap', 'nothing recorded at this time'); return; }
              if (!r.ok) { tile.retry = Date.now() + RETRY_MS; state(tile, 'error', 'HTTP ' + r.status); return; }
              var from = Date.parse(r.headers.get('Hallwatch-Covered-From')), to = Date.parse(r.headers.get('Hallwatch-Covered-To'));
              var offset = Number(r.headers.get('Hallwatch-Presentation-Offset')) || 0;
              return metadata.then(function () {
                if (token !== tile.token) return;
                tile.coveredFrom = from; tile.windowTo = to; tile.offset = offset;
                align(tile, true);
                state(tile, 'playing');
              });
            }).catch(function (e) { if (token === tile.token) { tile.retry = Date.now() + RETRY_MS; state(tile, 'error', e.message); } });
          }
          // Brings a tile to the wall clock: a seek when far, a nudged rate when near.
          function align(tile, force) {
            var t = now(), shown = tileUTC(tile);
            if (shown === null) return;
            if (t >= tile.windowTo) { load(tile, t); return; }
            var drift = shown - t;
            if (force || Math.abs(drift) > SEEK_MS) {
              tile.video.currentTime = Math.max(0, (t - tile.coveredFrom) / 1000 + tile.offset);
              drift = 0;
            }
            tile.video.playbackRate = wall.rate * (Math.abs(drift) > NUDGE_MS ? 1 - Math.max(-0.1, Math.min(0.1, drift / 1000)) : 1);
            if (wall.paused) tile.video.pause(); else if (tile.video.paused) tile.video.play().catch(function () {});
          }
          function tick() {
            var t = now();
            root.dataset.utc = String(Math.round(t));
            clockText.textContent = fmt.format(new Date(t));
            tiles.forEach(function (tile) {
              if (tile.el.dataset.state === 'playing') {
                align(tile, false);
                var u = tileUTC(tile);
                if (u !== null) tile.el.dataset.utc = String(Math.round(u));
              } else if ((tile.el.dataset.state === 'gap' || tile.el.dataset.state === 'error') && Date.now() >= tile.retry) {
                load(tile, t);
              }
            });
          }
          function reloadAll() { tiles.forEach(function (tile) { load(tile, now()); }); }
          playButton.addEventListener('click', function () {
            if (wall.paused) { wall.paused = false; wall.perf = performance.now(); playButton.textContent = 'Pause'; }
            else { setClock(now()); wall.paused = true; playButton.textContent = 'Play'; }
            tiles.forEach(function (tile) { align(tile, false); });
          });
          rateSelect.addEventListener('change', function () { setClock(now()); wall.rate = Number(rateSelect.value) || 1; tick(); });
          document.getElementById('wall-back').addEventListener('click', function () { setClock(now() - 10e3); tiles.forEach(function (tile) { align(tile, true); }); });
          document.getElementById('wall-on').addEventListener('click', function () { setClock(now() + 10e3); tiles.forEach(function (tile) { align(tile, true); }); });
          document.addEventListener('visibilitychange', function () { if (!document.hidden) tiles.forEach(function (tile) { align(tile, true); }); });

          window.hallwatchWall = { now: now, tiles: tiles };
          reloadAll();
          setInterval(tick, 250);
        })();
        """#

    static let css = """
        #wall { max-width: 1400px; }
        .wall-pick, .wall-controls { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: .5rem 0; }
        .wall-controls button { min-width: 2.75rem; min-height: 2.75rem; }
        #wall-clock { font: 600 1.1rem system-ui, sans-serif; font-variant-numeric: tabular-nums; }
        .wall-grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 420px), 1fr)); gap: .4rem; }
        .wall-tile { margin: 0; position: relative; background: #000; aspect-ratio: 16 / 9; }
        .wall-tile video { position: absolute; inset: 0; width: 100%; height: 100%; object-fit: contain; }
        .wall-tile figcaption { position: absolute; left: .4rem; top: .3rem; color: #fff; text-shadow: 0 0 3px #000; }
        .wall-tile figcaption a { color: #fff; }
        .wall-note { font-size: .85rem; }
        """
}
