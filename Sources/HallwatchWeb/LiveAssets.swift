/// The live player, a vanilla JavaScript module served from the box (`/static/live.js`; no framework, nothing
/// from the internet). It plays every `.tile[data-camera]` of the page from
/// `GET /api/v1/cameras/{id}/live` (the messages are ``LiveView``'s):
///
/// - MediaSource, or ManagedMediaSource where present (iPhone Safari ≥ 17.1), with `disableRemotePlayback`,
///   `playsinline`, muted autoplay; `isTypeSupported` is asked before `addSourceBuffer`, and a codec the browser
///   cannot play is said on the tile. A new init segment calls `changeType`.
/// - One append queue per tile, never two appends at once; the SourceBuffer in `sequence` mode, so a new run
///   whose timestamps restart, or media skipped after a `drop`, continues where the buffer ends.
/// - At most 10 s kept: older media is removed before the next append.
/// - Catch-up: after the first frame, once what arrived is appended, more than 1.5 s behind the buffered end →
///   one jump to 0.3 s before it; then a playback rate of 1.05–1.1 while more than 0.3 s behind (Safari, which rebuffers on
///   rate changes, jumps instead, at most every 5 s; elsewhere a jump again only when more than 3 s behind).
///   A playhead in a hole between buffered ranges jumps to the next range.
/// - A stall watchdog: no media for 2 s, or the playhead stuck for 2 s while media arrives → reconnect.
/// - A hidden tab disconnects after 5 s and reconnects, at the live edge, when shown again. In a grid, a tile
///   off screen (IntersectionObserver) is disconnected at once and reconnects when scrolled back; a click on a
///   tile shows it full screen (again: back to the grid).
/// - Measures: frames presented (`requestVideoFrameCallback`), time to first frame, and latency = the time a
///   frame is presented minus the time the recorder received the chunk that carried it (`latencies`), and
///   minus the time the capture worker took it in (`captureLatencies`: the unit's time, its first frame's,
///   plus the frame's media time into the unit). Published on `window.hallwatchLive`
///   and on the tile (`data-frames`, `data-latency-ms`) for tests, `make bench` and the curious.
/// - A tile's `data-stream` names its stream; without one it plays `main`, or on a phone (a viewport at most
///   600 px wide) `sub` when the camera has one (`data-sub`). A grid tile shown full screen plays `main` and
///   returns to its own stream with the grid. When the browser cannot decode the main stream's codec (HEVC in
///   Firefox), a tile with a sub stream says so and plays the sub stream (`data-fallback="sub"`); the stream
///   playing is on the tile (`data-playing`).
/// - `window.hallwatchLivePlay(el)` plays a tile made after the page loaded (the map's pop-ups) and
///   `window.hallwatchLiveStop(tile)` stops it.
enum LiveAssets {
    // swift-format-ignore
    static let playerJS = """
        // Hallwatch live player: WebSocket → MediaSource. See LiveAssets.swift for the rules it follows.
        'use strict';
        (function () {
          var MS = window.ManagedMediaSource || window.MediaSource;
          var safari = !!window.ManagedMediaSource || /^((?!chrome|android).)*safari/i.test(navigator.userAgent);
          var tiles = [];
          window.hallwatchLive = tiles;

          function Tile(el) {
            this.el = el;
            this.camera = el.getAttribute('data-camera');
            this.video = el.querySelector('video');
            this.note = el.querySelector('.note');
            this.frames = 0; this.drops = 0; this.latencies = []; this.captureLatencies = []; this.firstFrameMs = null; this.reconnects = 0;
            this.state = 'idle'; this.backoff = 500; this.offscreen = false;
            this.hasSub = el.getAttribute('data-sub') === '1';
            var phone = window.matchMedia && window.matchMedia('(max-width: 600px)').matches;
            this.stream = el.getAttribute('data-stream') || (this.hasSub && phone ? 'sub' : 'main');
            this.home = this.stream;
            var v = this.video;
            v.muted = true; v.autoplay = true; v.playsInline = true; v.disableRemotePlayback = true;
            v.setAttribute('playsinline', ''); v.setAttribute('disableremoteplayback', '');
          }
          Tile.prototype.say = function (text) { this.note.textContent = text; this.el.setAttribute('data-state', this.state); };

          Tile.prototype.start = function () {
            var self = this;
            if (!MS) { this.state = 'unsupported'; this.say('This browser has no Media Source Extensions.'); return; }
            this.stop();
            this.state = 'connecting'; this.say('connecting…');
            this.queue = []; this.sb = null; this.appended = []; this.jumped = false; this.lastJump = 0;
            this.openedAt = performance.now(); this.lastMedia = performance.now(); this.lastTime = -1; this.lastProgress = performance.now();
            this.gotMedia = false;
            var ms = this.ms = new MS();
            this.video.src = URL.createObjectURL(ms);
            ms.addEventListener('sourceopen', function () { if (self.ms === ms) self.connect(); }, { once: true });
            if (!this.rvfc && this.video.requestVideoFrameCallback) {
              this.rvfc = true;
              var onFrame = function (now, meta) { self.presented(meta); self.video.requestVideoFrameCallback(onFrame); };
              this.video.requestVideoFrameCallback(onFrame);
            }
          };

          Tile.prototype.connect = function () {
            var self = this;
            var url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/api/v1/cameras/' +
              encodeURIComponent(this.camera) + '/live?stream=' + encodeURIComponent(this.stream);
            this.el.setAttribute('data-playing', this.stream);
            var ws = this.ws = new WebSocket(url);
            ws.binaryType = 'arraybuffer';
            ws.onmessage = function (e) {
              if (self.ws !== ws) return;
              if (typeof e.data === 'string') { self.control(JSON.parse(e.data)); return; }
              var dv = new DataView(e.data);
              self.lastMedia = performance.now();
              var recv = dv.getFloat64(4, true);
              self.queue.push({ kind: dv.getUint8(0), recv: recv, taken: recv - dv.getUint16(2, true), body: new Uint8Array(e.data, 12) });
              self.pump();
            };
            ws.onclose = function () { if (self.ws === ws && self.state !== 'stopped') self.retry('connection closed'); };
          };

          Tile.prototype.control = function (m) {
            if (m.type === 'init') {
              var type = 'video/mp4; codecs="' + m.codec + '"';
              if (!MS.isTypeSupported(type)) {
                var why = 'This browser cannot play ' + m.codec + ' (' + m.width + '×' + m.height + ')';
                if (this.stream === 'main' && this.hasSub) {
                  // Say so, and play the camera's H.264 sub stream instead (for good: the codec will not change).
                  this.fallback = why + '; playing the sub stream.';
                  this.stream = this.home = 'sub'; this.el.setAttribute('data-fallback', 'sub');
                  this.say(this.fallback); this.start(); return;
                }
                this.state = 'unsupported';
                this.say(why + '.');
                this.ws.onclose = null; this.ws.close(); return;
              }
              try {
                if (!this.sb) {
                  this.sb = this.ms.addSourceBuffer(type);
                  this.sb.mode = 'sequence';
                  var self = this;
                  this.sb.addEventListener('updateend', function () { self.updated(); });
                } else if (this.sb.changeType) {
                  this.queue.push({ changeType: type });
                }
              } catch (e) { this.retry('cannot play: ' + e.name); return; }
              this.el.setAttribute('data-codec', m.codec);
              this.size = m.width + '×' + m.height;
              if (this.state === 'playing') this.say((this.fallback ? this.fallback + ' ' : '') + this.size);
            } else if (m.type === 'drop') {
              this.drops++; this.say('skipped ' + m.skipped + ' (slow link)');
            } else if (m.type === 'error') {
              this.say(m.code + ': ' + m.message);
            }
          };

          Tile.prototype.pump = function () {
            var sb = this.sb, v = this.video;
            if (!sb || sb.updating || this.queue.length === 0 || this.ms.readyState !== 'open') return;
            var b = sb.buffered;
            // Keep at most 10 s: remove what lies more than 5 s behind the playhead first.
            if (b.length && v.currentTime - b.start(0) > 10) { sb.remove(0, v.currentTime - 5); return; }
            var item = this.queue.shift();
            if (item.changeType) { sb.changeType(item.changeType); this.pump(); return; }
            // Where this unit's media starts (the buffered end before it), to place each of its frames in time.
            this.pendingRecv = item.recv; this.pendingTaken = item.taken; this.pendingStart = b.length ? b.end(b.length - 1) : null;
            try { sb.appendBuffer(item.body); }
            catch (e) {
              if (e.name === 'QuotaExceededError' && b.length) { this.queue.unshift(item); sb.remove(0, v.currentTime - 1); }
              else this.retry('append failed: ' + e.name);
            }
          };

          Tile.prototype.updated = function () {
            var b = this.sb.buffered, v = this.video;
            if (this.pendingRecv != null && b.length) {
              this.appended.push({ start: this.pendingStart, end: b.end(b.length - 1), recv: this.pendingRecv, taken: this.pendingTaken });
              if (this.appended.length > 400) this.appended.splice(0, 200);
              this.pendingRecv = null;
              if (!this.gotMedia) { this.gotMedia = true; }
            }
            this.catchUp();
            if (v.paused && b.length) { var p = v.play(); if (p && p.catch) p.catch(function () {}); }
            this.pump();
          };

          Tile.prototype.catchUp = function () {
            var v = this.video, b = v.buffered;
            if (!b.length) return;
            var t = v.currentTime, end = b.end(b.length - 1), now = performance.now();
            // A playhead before or between buffered ranges jumps to the next one.
            for (var i = 0; i < b.length; i++) {
              if (t < b.start(i)) { v.currentTime = b.start(i); return; }
              if (t <= b.end(i)) break;
            }
            var behind = end - t;
            // Jump once the backlog is appended (the buffered end is then the live edge); again only when far
            // behind (a stall), at most every 5 s.
            var jumpAgain = now - this.lastJump > 5000 && (safari || behind > 3);
            if (this.frames > 0 && this.queue.length === 0 && behind > 1.5 && (!this.jumped || jumpAgain)) {
              this.jumped = true; this.lastJump = now; v.currentTime = end - 0.3; v.playbackRate = 1; return;
            }
            // Chunks of ~0.1 s keep the buffered end within a few frames of the live edge: aim for 0.3 s behind.
            if (!safari) v.playbackRate = behind > 0.8 ? 1.1 : behind > 0.3 ? 1.05 : 1.0;
          };

          Tile.prototype.presented = function (meta) {
            var now = performance.now();
            if (this.frames === 0) { this.firstFrameMs = now - this.openedAt; }
            this.frames++;
            this.backoff = 500;
            if (this.state !== 'playing') {
              this.state = 'playing'; this.say((this.fallback ? this.fallback + ' ' : '') + (this.size || ''));
            }
            // The chunk that carried this frame: the first appended whose buffered end reaches its media time.
            for (var i = 0; i < this.appended.length; i++) {
              if (this.appended[i].end >= meta.mediaTime) {
                var a = this.appended[i], wall = Date.now(), l = wall - a.recv;
                this.latencies.push(l);
                // The unit's time is its first frame's (P6: a hand-over holds ~100 ms of frames); a later frame
                // of it was taken in that much later, by its media time.
                var into = a.start != null && meta.mediaTime > a.start ? (meta.mediaTime - a.start) * 1000 : 0;
                this.captureLatencies.push(wall - a.taken - into);
                if (this.latencies.length > 1000) { this.latencies.splice(0, 500); this.captureLatencies.splice(0, 500); }
                this.el.setAttribute('data-latency-ms', String(Math.round(l)));
                break;
              }
            }
            this.el.setAttribute('data-frames', String(this.frames));
          };

          Tile.prototype.retry = function (why) {
            var self = this;
            this.stop();
            this.state = 'retrying'; this.reconnects++; this.say(why + '; reconnecting…');
            var wait = this.backoff; this.backoff = Math.min(this.backoff * 2, 8000);
            this.timer = setTimeout(function () { self.timer = null; if (self.state === 'retrying') self.start(); }, wait);
          };

          Tile.prototype.stop = function () {
            if (this.timer) { clearTimeout(this.timer); this.timer = null; }
            if (this.ws) { this.ws.onclose = null; this.ws.close(); this.ws = null; }
            if (this.ms) { var url = this.video.src; this.ms = null; this.sb = null; this.video.removeAttribute('src'); this.video.load(); URL.revokeObjectURL(url); }
            this.state = 'stopped';
          };

          // Stall watchdog: no media for 2 s, or a playhead stuck for 2 s while media arrives → reconnect.
          Tile.prototype.watch = function () {
            if (this.state !== 'playing' && this.state !== 'connecting') return;
            var now = performance.now(), v = this.video;
            if (v.currentTime !== this.lastTime) { this.lastTime = v.currentTime; this.lastProgress = now; }
            if (now - this.lastMedia > 2000) this.retry('no video for 2 s');
            else if (this.gotMedia && now - this.lastProgress > 2000) this.retry('stalled');
            else this.catchUp();
          };

          var grid = document.querySelector('.grid');
          document.querySelectorAll('.tile[data-camera]').forEach(function (el) {
            var t = new Tile(el); tiles.push(t);
            if (!grid || !window.IntersectionObserver) t.start();
            if (grid) {
              // A click shows the tile full screen; another one (or Esc) returns to the grid.
              el.addEventListener('click', function (e) {
                if (e.target.closest && e.target.closest('a')) return;
                if (document.fullscreenElement) { document.exitFullscreen(); }
                else if (el.requestFullscreen) { el.requestFullscreen().catch(function () {}); }
              });
            }
          });
          // Full screen plays the main stream; back in the grid, the tile's own stream again.
          document.addEventListener('fullscreenchange', function () {
            tiles.forEach(function (t) {
              var want = document.fullscreenElement === t.el && !t.fallback ? 'main' : t.home;
              if (t.stream !== want) { t.stream = want; if (t.state !== 'stopped' && t.state !== 'idle') t.start(); }
            });
          });
          // Tiles made later (the map's pop-ups): play one, and stop it for good.
          window.hallwatchLivePlay = function (el) { var t = new Tile(el); tiles.push(t); t.start(); return t; };
          window.hallwatchLiveStop = function (t) {
            t.stop(); var i = tiles.indexOf(t); if (i >= 0) tiles.splice(i, 1);
          };
          if (grid && window.IntersectionObserver) {
            // Tiles off screen are paused (their sockets closed), and play again when scrolled back.
            var seen = new IntersectionObserver(function (entries) {
              entries.forEach(function (entry) {
                var t = tiles.filter(function (x) { return x.el === entry.target; })[0];
                if (!t) return;
                t.offscreen = !entry.isIntersecting;
                if (t.offscreen && t.state !== 'unsupported') { t.stop(); t.say('paused (off screen)'); }
                else if (!t.offscreen && (t.state === 'stopped' || t.state === 'idle') && !document.hidden) t.start();
              });
            });
            tiles.forEach(function (t) { seen.observe(t.el); });
          }
          setInterval(function () { tiles.forEach(function (t) { t.watch(); }); }, 500);
          var hideTimer = null;
          document.addEventListener('visibilitychange', function () {
            if (document.hidden) {
              hideTimer = setTimeout(function () { tiles.forEach(function (t) { t.stop(); t.say('paused (tab hidden)'); }); }, 5000);
            } else {
              if (hideTimer) { clearTimeout(hideTimer); hideTimer = null; }
              tiles.forEach(function (t) { if (t.state === 'stopped' && !t.offscreen) t.start(); });
            }
          });
        })();
        """
}
