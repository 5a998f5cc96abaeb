/// The timeline page's script and style (`/static/timeline.js`, `/static/timeline.css`): vanilla JavaScript,
/// nothing from the internet. What it does, on ``TimelinePage``'s `#timeline`:
///
/// - Draws the day on a canvas: runs solid, gaps hatched (a click in one says why it has no video, where the box
///   knows: the recordings API's `cause` and `detail`), evidence holds and events as markers, keyframes as ticks
///   once zoomed in below 10 minutes, the playhead; hour/minute/second labels in the building's zone
///   (`Intl.DateTimeFormat`). Zoom from 24 h down to 10 s with the wheel, a two-finger pinch, or the +/− buttons,
///   around the pointer. The recordings API is asked again after each zoom (debounced) and every 5 s, so the
///   newest run grows.
/// - Click (or tap) at a time plays from it: a `<video>` on `video.mp4?from=t&to=t+1min` (the box's moov-first
///   MP4 from the keyframe at or before t; the windows that follow are 10 min); `Hallwatch-Covered-From` (read by a one-byte range request) maps
///   media time to UTC, and the video seeks to `t` — so the first frame shown is the one on screen at t. At the
///   end of a window the next one follows.
/// - Drag scrubs: the picture follows the pointer by loading the keyframe at or before it
///   (`video.mp4?from=t&to=t+1ms`: one stored fragment) into a second `<video>` — from the sub stream
///   (`&stream=sub`) when the camera has one (`data-sub`), the main stream where the sub stream has nothing; a
///   newer position replaces the load in flight (its fetch is aborted), so stale keyframes never show. Releasing
///   plays from there (the main stream).
/// - Rates 1× and 2× (`playbackRate`); from 4× on keyframes only: the video pauses and a clock at the rate shows
///   the keyframe at or before it (one stored fragment, as scrubbing loads it), the next asked for as soon as one
///   is shown, so the clock never waits and 16× never stalls (`data-fast`, `data-fast-utc`, `data-fast-shown` for
///   tests). One frame back or on (paused), previous/next gap or event, `?at=` starts there. Events come from `GET /api/v1/events?camera=&from=&to=` when that answers JSON (ignored otherwise).
/// - For tests: `#timeline` carries `data-clicked-utc` (ms, the time a click resolved to), `data-first-frame-utc`
///   (ms, the first frame presented at it, from `requestVideoFrameCallback`: frames presented while the seek is
///   pending are not counted, and when the frame at t is the one already on screen — no callback comes for it —
///   that frame is), `data-scrub-utc` and `data-scrub-stream` (`main` or `sub`: which stream the shown keyframe
///   came from).
enum TimelineAssets {
    // swift-format-ignore
    static let js = #"""
        // Hallwatch timeline: see TimelineAssets.swift for what it does.
        'use strict';
        (function () {
          var root = document.getElementById('timeline');
          if (!root) return;
          var camera = root.dataset.camera, zone = root.dataset.zone, hasSub = root.dataset.sub === '1';
          var dayStart = Number(root.dataset.dayStart), dayEnd = Number(root.dataset.dayEnd);
          var canvas = document.getElementById('tl-canvas'), ctx = canvas.getContext('2d');
          var video = document.getElementById('tl-video'), scrub = document.getElementById('tl-scrub');
          var clock = document.getElementById('tl-clock'), note = document.getElementById('tl-note');
          var rateSelect = document.getElementById('tl-rate');
          var MIN_SPAN = 10e3, MAX_SPAN = dayEnd - dayStart, WINDOW = 600e3, FIRST_WINDOW = 60e3, FRAME = 40;
          var view = { from: dayStart, to: dayEnd };
          var data = { runs: [], gaps: [], holds: [], fragments: [], events: [] };
          var play = { coveredFrom: null, windowTo: null, offset: 0, clicked: null, firstShown: false, resume: null, token: 0 };
          var scrubState = { abort: null, pending: null };
          var pointers = new Map(), drag = null, pinch = null;
          [video, scrub].forEach(function (v) { v.disableRemotePlayback = true; v.setAttribute('playsinline', ''); });

          var fmt = new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
          var fmtMs = function (t) { var d = new Date(t); return fmt.format(d) + '.' + String(d.getUTCMilliseconds()).padStart(3, '0'); };
          var iso = function (t) { return new Date(t).toISOString(); };
          var api = function (path) { return '/api/v1/cameras/' + encodeURIComponent(camera) + path; };
          function say(text) { note.textContent = text || ''; }
          // Why the gap at t has no video, where the box knows (the recordings API's cause and detail).
          var CAUSES = { 'camera.offline': 'the camera was offline', 'recorder.down': 'the recorder was not running',
            'box.restart': 'the box was restarting', 'deleted': 'deleted by retention or lost with a failed disk' };
          function gapWhy(t) {
            var g = data.gaps.find(function (g) { return g.from <= t && t < g.to; });
            if (!g || !g.cause) return '';
            return ': ' + (CAUSES[g.cause] || g.cause) + (g.detail ? ' (' + g.detail + ')' : '');
          }

          // --- geometry
          function width() { return canvas.clientWidth || 600; }
          function timeAt(x) { return view.from + (view.to - view.from) * Math.min(1, Math.max(0, x / width())); }
          function xAt(t) { return (t - view.from) / (view.to - view.from) * width(); }
          function zoom(factor, centerX) {
            var c = timeAt(centerX), span = Math.min(MAX_SPAN, Math.max(MIN_SPAN, (view.to - view.from) * factor));
            var from = c - (c - view.from) / (view.to - view.from) * span;
            from = Math.max(dayStart, Math.min(dayEnd - span, from));
            view = { from: from, to: from + span };
            draw(); reloadSoon();
          }

          // --- data
          var reloadTimer = null, loadAbort = null, eventsAbort = null;
          function reloadSoon() { clearTimeout(reloadTimer); reloadTimer = setTimeout(load, 200); }
          function load() {
            if (loadAbort) loadAbort.abort();
            var ac = loadAbort = new AbortController();
            var q = '?from=' + iso(view.from) + '&to=' + iso(view.to);
            fetch(api('/runs') + q, { signal: ac.signal, credentials: 'same-origin' }).then(function (r) {
              if (!r.ok) throw new Error('recordings: HTTP ' + r.status);
              return r.json();
            }).then(function (j) {
              data.runs = j.runs.map(function (r) { return { from: Date.parse(r.start), to: Date.parse(r.end), codec: r.codec }; });
              data.gaps = j.gaps.map(function (g) { return { from: Date.parse(g.from), to: Date.parse(g.to), cause: g.cause, detail: g.detail }; });
              data.holds = j.holds.map(function (h) { return { from: Date.parse(h.from), to: Date.parse(h.to), id: h.id }; });
              data.fragments = j.fragments.filter(function (f) { return f.keyframe; }).map(function (f) { return Date.parse(f.start); });
              draw();
            }).catch(function (e) { if (e.name !== 'AbortError') say(e.message); });
            // The events API, where the box has one: JSON only (the status page's event stream is not it; its own
            // controller, so closing that stream never aborts the recordings' fetch).
            if (eventsAbort) eventsAbort.abort();
            var ec = eventsAbort = new AbortController();
            fetch('/api/v1/events?camera=' + encodeURIComponent(camera) + '&from=' + iso(view.from) + '&to=' + iso(view.to),
              { signal: ec.signal, credentials: 'same-origin' }).then(function (r) {
              if (!r.ok || !(r.headers.get('content-type') || '').startsWith('application/json')) { ec.abort(); return null; }
              return r.json();
            }).then(function (j) {
              if (!j) return;
              var list = Array.isArray(j) ? j : (j.events || []);
              data.events = list.map(function (e) { return Date.parse(e.at || e.start || e.time); }).filter(isFinite);
              draw();
            }).catch(function () {});
          }

          // --- drawing
          var hatch = null;
          function pattern() {
            if (hatch) return hatch;
            var p = document.createElement('canvas'); p.width = p.height = 8;
            var c = p.getContext('2d'); c.strokeStyle = '#b0b0b0'; c.beginPath(); c.moveTo(0, 8); c.lineTo(8, 0); c.stroke();
            return (hatch = ctx.createPattern(p, 'repeat'));
          }
          function tickStep(span) {
            var steps = [1e3, 5e3, 10e3, 30e3, 60e3, 300e3, 600e3, 1800e3, 3600e3, 7200e3, 10800e3];
            for (var i = 0; i < steps.length; i++) if (span / steps[i] <= width() / 70) return steps[i];
            return 21600e3;
          }
          function draw() {
            var dpr = window.devicePixelRatio || 1, w = width(), h = 96;
            if (canvas.width !== Math.round(w * dpr)) { canvas.width = Math.round(w * dpr); canvas.height = h * dpr; }
            ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
            ctx.clearRect(0, 0, w, h);
            var top = 22, bar = 40;
            data.gaps.forEach(function (g) { ctx.fillStyle = pattern(); ctx.fillRect(xAt(g.from), top, Math.max(1, xAt(g.to) - xAt(g.from)), bar); });
            ctx.fillStyle = '#2a6fd6';
            data.runs.forEach(function (r) { ctx.fillRect(xAt(r.from), top, Math.max(1, xAt(r.to) - xAt(r.from)), bar); });
            if (view.to - view.from <= 600e3) {
              ctx.fillStyle = '#0b2e66';
              data.fragments.forEach(function (t) { ctx.fillRect(xAt(t), top + bar - 8, 1, 8); });
            }
            ctx.fillStyle = '#e08a00';
            data.holds.forEach(function (o) { ctx.fillRect(xAt(o.from), top - 6, Math.max(2, xAt(o.to) - xAt(o.from)), 4); });
            ctx.fillStyle = '#c62828';
            data.events.forEach(function (t) { ctx.beginPath(); ctx.moveTo(xAt(t) - 5, top + bar + 12); ctx.lineTo(xAt(t) + 5, top + bar + 12); ctx.lineTo(xAt(t), top + bar + 3); ctx.fill(); });
            var step = tickStep(view.to - view.from);
            ctx.fillStyle = '#333'; ctx.font = '11px system-ui, sans-serif';
            for (var t = Math.ceil(view.from / step) * step; t <= view.to; t += step) {
              ctx.fillRect(xAt(t), top + bar, 1, 5);
              var label = fmt.format(new Date(t)); if (step >= 60e3) label = label.slice(0, 5);
              ctx.fillText(label, xAt(t) + 2, 12);
            }
            var now = current();
            if (now !== null) { ctx.fillStyle = '#000'; ctx.fillRect(xAt(now) - 1, 0, 2, h); }
            if (drag && drag.scrubbing) { ctx.fillStyle = '#d00'; ctx.fillRect(xAt(drag.t) - 1, 0, 2, h); }
          }

          // --- playing
          // A frame presented at media time m was recorded at coveredFrom + (m - offset): the offset is the keyframe's
          // composition delay (B-frames), which a file without an edit list keeps.
          function current() {
            if (fast) return fastNow(fast);
            return play.coveredFrom === null ? null : play.coveredFrom + (video.currentTime - play.offset) * 1000;
          }
          // A click loads a short first window (its moov is built from fewer fragments: the first frame comes
          // sooner); the windows that follow are WINDOW long.
          function startAt(t, span) {
            var token = ++play.token;
            var url = api('/video.mp4') + '?from=' + iso(t) + '&to=' + iso(Math.min(t + (span || FIRST_WINDOW), Date.now() + 60e3));
            say('loading…');
            // The video's own load and the one-byte probe of its headers (what the body covers) run at once: the
            // seek waits for both, a round trip sooner than one after the other.
            play.coveredFrom = null; play.firstShown = false; play.seeked = false; play.lastMedia = null;
            video.pause(); video.src = url;
            var metadata = new Promise(function (resolve) { video.addEventListener('loadedmetadata', resolve, { once: true }); });
            fetch(url, { headers: { Range: 'bytes=0-0' }, credentials: 'same-origin' }).then(function (r) {
              if (token !== play.token) return;
              if (r.status === 404) { say('Nothing recorded at ' + fmtMs(t) + gapWhy(t) + '.'); return; }
              if (!r.ok) { say('HTTP ' + r.status); return; }
              var from = Date.parse(r.headers.get('Hallwatch-Covered-From')), to = Date.parse(r.headers.get('Hallwatch-Covered-To'));
              var offset = Number(r.headers.get('Hallwatch-Presentation-Offset')) || 0;
              return metadata.then(function () {
                if (token !== play.token) return;
                play.coveredFrom = from; play.windowTo = to; play.offset = offset;
                // Paused until the frame at t is presented (or 2 s after the seek: on a loaded machine its frame
                // callback has come after 300 and 600 ms), then play: a frame callback may skip frames, so playing at once
                // could hide which frame came first.
                video.addEventListener('seeked', function () {
                  if (token !== play.token) return;
                  play.seeked = true;
                  // The frame at t may be the one already on screen (presented while seeking): then no new frame
                  // callback comes for it. It is, if the last frame presented covers t.
                  var m = play.lastMedia, target = video.currentTime;
                  if (!play.firstShown && m !== null && m <= target + 1e-3 && target - m < FRAME / 1000) shown(m);
                  play.resume = function () {
                    if (token !== play.token || !play.resume) return;
                    play.resume = null;
                    if (Number(rateSelect.value) >= 4) { startFast(current(), Number(rateSelect.value)); return; }
                    video.playbackRate = Number(rateSelect.value);
                    video.play().catch(function () {});
                  };
                  if (play.firstShown || !video.requestVideoFrameCallback) play.resume(); else setTimeout(play.resume, 2000);
                }, { once: true });
                video.currentTime = Math.max(0, (t - from) / 1000 + offset);
                say('');
              });
            }).catch(function (e) { say(e.message); });
          }
          function playFrom(t, fromClick) {
            stopFast(false);
            if (fromClick) { play.clicked = t; root.dataset.clickedUtc = String(Math.round(t)); delete root.dataset.firstFrameUtc; }
            startAt(t);
          }
          function shown(mediaTime) {
            play.firstShown = true;
            root.dataset.firstFrameUtc = String(Math.round(play.coveredFrom + (mediaTime - play.offset) * 1000));
          }
          if (video.requestVideoFrameCallback) {
            // Chromium presents frames while a seek is pending (the file's first frame, frames decoded on the way
            // to t): those are not the first frame at t. It counts from the first frame presented after 'seeked'.
            var onFrame = function (now, meta) {
              play.lastMedia = meta.mediaTime;
              if (play.coveredFrom !== null && play.seeked && !video.seeking && !play.firstShown) {
                shown(meta.mediaTime);
                if (play.resume) play.resume();
              }
              video.requestVideoFrameCallback(onFrame);
            };
            video.requestVideoFrameCallback(onFrame);
          }
          video.addEventListener('ended', function () { if (play.windowTo && play.windowTo < dayEnd) startAt(play.windowTo, WINDOW); });
          var wallLink = document.getElementById('tl-wall');
          video.addEventListener('timeupdate', function () {
            var t = current(); if (t !== null) { clock.textContent = fmtMs(t); if (wallLink) wallLink.search = '?cameras=' + encodeURIComponent(camera) + '&at=' + iso(t); }
            draw();
          });
          document.getElementById('tl-play').addEventListener('click', function () {
            if (play.coveredFrom === null) { playFrom(data.runs.length ? data.runs[0].from : view.from, true); return; }
            if (fast) { var t = current(); stopFast(false); play.pausedAt = t; return; }
            if (video.paused && Number(rateSelect.value) >= 4) { startFast(play.pausedAt || current(), Number(rateSelect.value)); return; }
            if (video.paused) video.play(); else video.pause();
          });
          // From 4x on, keyframes only: the <video> pauses and a clock running at the rate shows, in the scrub
          // video, the keyframe at or before it — one stored fragment at a time, the next asked for as soon as
          // one is shown. The clock never waits for a load (keyframes are skipped instead), so 16x never stalls.
          var fast = null;
          function fastNow(f) { return f.t + (performance.now() - f.at) * f.rate; }
          function startFast(t, rate) {
            stopFast(false);
            video.pause();
            var f = fast = { t: t, at: performance.now(), rate: rate, busy: false };
            root.dataset.fast = '1';
            f.timer = setInterval(function () {
              var now = fastNow(f), end = data.runs.length ? data.runs[data.runs.length - 1].to : now;
              clock.textContent = fmtMs(Math.min(now, end));
              if (now >= end) { stopFast(false); return; }
              if (f.busy) return;
              f.busy = true;
              scrubTo(now, function (shown) {
                if (f !== fast) return;
                f.busy = false;
                if (shown === null) return;
                root.dataset.fastUtc = String(Math.round(shown));
                root.dataset.fastShown = String((Number(root.dataset.fastShown) || 0) + 1);
                draw();
              });
            }, 40);
          }
          // Ends keyframe playback; with `resume`, plays on normally from where its clock is.
          function stopFast(resume) {
            if (!fast) return;
            var f = fast; fast = null;
            clearInterval(f.timer);
            delete root.dataset.fast;
            scrub.hidden = true;
            if (resume) startAt(fastNow(f));
          }
          rateSelect.addEventListener('change', function () {
            var r = Number(rateSelect.value);
            if (fast) {
              if (r >= 4) { fast.t = fastNow(fast); fast.at = performance.now(); fast.rate = r; } else stopFast(true);
            } else if (r >= 4 && current() !== null) {
              startFast(current(), r);
            } else {
              video.playbackRate = r;
            }
          });
          function step(frames) { stopFast(false); video.pause(); video.currentTime = Math.max(play.offset, video.currentTime + frames * FRAME / 1000); }
          document.getElementById('tl-step').addEventListener('click', function () { step(1); });
          document.getElementById('tl-step-back').addEventListener('click', function () { step(-1); });
          function jump(dir) {
            var now = current() || view.from;
            var marks = data.gaps.map(function (g) { return dir > 0 ? g.to : g.from; }).concat(data.events).sort(function (a, b) { return a - b; });
            var target = dir > 0 ? marks.find(function (m) { return m > now + 1000; }) : marks.reverse().find(function (m) { return m < now - 1000; });
            if (target !== undefined) playFrom(target, false);
          }
          document.getElementById('tl-next-gap').addEventListener('click', function () { jump(1); });
          document.getElementById('tl-prev-gap').addEventListener('click', function () { jump(-1); });
          document.getElementById('tl-zoom-in').addEventListener('click', function () { zoom(0.5, width() / 2); });
          document.getElementById('tl-zoom-out').addEventListener('click', function () { zoom(2, width() / 2); });
          document.addEventListener('keydown', function (e) {
            if (e.key === 'ArrowRight') step(1); else if (e.key === 'ArrowLeft') step(-1);
            else if (e.key === ' ') { e.preventDefault(); document.getElementById('tl-play').click(); }
          });

          // --- scrubbing: one keyframe at a time, the newest position wins
          function scrubTo(t, onShown) {
            root.dataset.scrubUtc = String(Math.round(t));
            if (scrubState.abort) scrubState.abort.abort();
            var ac = scrubState.abort = new AbortController();
            var url = api('/video.mp4') + '?from=' + iso(t) + '&to=' + iso(t + 1), used = 'main';
            var get = function (u) {
              return fetch(u, { signal: ac.signal, credentials: 'same-origin' }).then(function (r) {
                if (!r.ok) throw new Error('none');
                return r.blob();
              });
            };
            // The sub stream's keyframe where there is one (a fraction of the bytes); the main stream's where the sub
            // stream has nothing (its retention is shorter).
            var body = !hasSub ? get(url) : get(url + '&stream=sub').then(function (b) { used = 'sub'; return b; }, function (e) {
              if (e.name === 'AbortError') throw e;
              return get(url);
            });
            body.then(function (b) {
              if (ac !== scrubState.abort) return;
              root.dataset.scrubStream = used;
              if (scrub.src) URL.revokeObjectURL(scrub.src);
              if (onShown) scrub.addEventListener('loadeddata', function () { onShown(t); }, { once: true });
              scrub.src = URL.createObjectURL(b);
              scrub.hidden = false;
            }).catch(function () { if (onShown) onShown(null); });
          }

          // --- pointer: click plays, drag scrubs, two fingers pinch; wheel zooms
          canvas.addEventListener('pointerdown', function (e) {
            canvas.setPointerCapture(e.pointerId);
            pointers.set(e.pointerId, e.offsetX);
            if (pointers.size === 2) {
              var xs = Array.from(pointers.values()); pinch = { d: Math.abs(xs[0] - xs[1]) || 1 }; drag = null;
            } else { drag = { x: e.offsetX, t: timeAt(e.offsetX), scrubbing: false }; }
          });
          canvas.addEventListener('pointermove', function (e) {
            if (!pointers.has(e.pointerId)) return;
            pointers.set(e.pointerId, e.offsetX);
            if (pinch && pointers.size === 2) {
              var xs = Array.from(pointers.values()), d = Math.abs(xs[0] - xs[1]) || 1;
              zoom(pinch.d / d, (xs[0] + xs[1]) / 2); pinch.d = d; return;
            }
            if (drag && (drag.scrubbing || Math.abs(e.offsetX - drag.x) > 5)) {
              stopFast(false); drag.scrubbing = true; drag.t = timeAt(e.offsetX); video.pause(); scrubTo(drag.t); draw();
            }
          });
          function up(e) {
            pointers.delete(e.pointerId);
            if (pointers.size < 2) pinch = null;
            if (!drag || e.type === 'pointercancel') { drag = null; return; }
            var t = drag.scrubbing ? drag.t : timeAt(e.offsetX);
            drag = null; scrub.hidden = true;
            playFrom(t, true);
          }
          canvas.addEventListener('pointerup', up);
          canvas.addEventListener('pointercancel', up);
          canvas.addEventListener('wheel', function (e) { e.preventDefault(); zoom(Math.pow(1.0015, e.deltaY), e.offsetX); }, { passive: false });
          window.addEventListener('resize', draw);

          window.hallwatchTimeline = { view: function () { return view; }, xAt: xAt, timeAt: timeAt, playFrom: playFrom, current: current };
          draw(); load();
          setInterval(load, 5000);
          var at = Number(root.dataset.at);
          if (at) { view = { from: Math.max(dayStart, at - 1800e3), to: Math.min(dayEnd, at + 1800e3) }; draw(); load(); playFrom(at, true); }
        })();
        """#

    static let css = """
        #timeline { max-width: 1200px; }
        .tl-player { position: relative; background: #000; aspect-ratio: 16 / 9; }
        .tl-player video { position: absolute; inset: 0; width: 100%; height: 100%; object-fit: contain; }
        #tl-clock { position: absolute; left: .5rem; top: .4rem; color: #fff; font: 600 1rem system-ui, sans-serif;
          text-shadow: 0 0 3px #000; }
        #tl-note { position: absolute; left: .5rem; bottom: .4rem; color: #fff; font-size: .85rem; }
        .tl-controls { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; margin: .5rem 0; }
        .tl-controls button { min-width: 2.75rem; min-height: 2.75rem; }
        #tl-canvas { width: 100%; height: 96px; touch-action: none; cursor: crosshair; display: block; }
        .tl-legend span { display: inline-block; width: 1rem; height: .7rem; margin-left: .6rem; vertical-align: middle; }
        .tl-legend .run { background: #2a6fd6; }
        .tl-legend .gap { background: repeating-linear-gradient(135deg, #b0b0b0 0 1px, transparent 1px 5px); }
        .tl-legend .hold { background: #e08a00; }
        .tl-legend .event { background: #c62828; }
        .tl-days a { display: inline-block; padding: .2rem .3rem; }
        .tl-days a[aria-current] { font-weight: 700; }
        """
}
