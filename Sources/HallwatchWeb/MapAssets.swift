/// The map page's script and style (`/static/map.js`, `/static/map.css`) and the responder-link banner every
/// page loads (`/static/banner.js`). Vanilla JavaScript; Leaflet comes from Debian's `libjs-leaflet`, served
/// by the box; no inline script or style (the CSP).
///
/// The map (`map.js`):
/// - `L.CRS.Simple`: one map unit is one pixel of the floor's image, `y` down as in the configuration
///   (`lat = height − y`, `lng = x`). The floor switcher swaps the image overlay and its pins.
/// - A camera pin is a round marker in its state's colour (online green — also when it is live but not being
///   recorded, which the status page shows in red: a responder needs live video —, connecting or unknown amber,
///   offline red) with the camera's configured name beside it, and a cone of its viewing direction and
///   field of view. States follow `/api/v1/map/events` (server-sent events, once a second), so a camera going
///   offline turns red without a reload.
/// - Tapping a pin opens a pop-up that plays it live through the live player (`/static/live.js`,
///   `window.hallwatchLivePlay`), on the pin's stream (`sub` when the camera has one); "Full screen" opens
///   `/live/{id}` (main stream). Closing the pop-up stops the player.
/// - Door pins (squares) follow the same stream's `doors` event (checked every 250 ms): a door whose state is
///   `forced` or `held` flashes (`data-alarm="true"`) and the pins of its cameras are highlighted
///   (`data-highlight="true"`) until a `door.closed` (or `door.opened`) ends it. The time each door started
///   flashing is in `window.hallwatchMap.alarmSince` (ms since the epoch; the bench reads it).
/// - Placement mode (building admins without a camera-group limit): pins and doors can be dragged, each
///   camera's direction and field of view set with sliders in its pop-up; "Download map YAML" saves the
///   resulting `map:` section (the page never writes the configuration).
/// - Published for tests: `window.hallwatchMap` (`map`, `pins`, `floor`, `yaml()`).
enum MapAssets {
    // swift-format-ignore
    static let mapCSS = """
        body.map-page { display: flex; flex-direction: column; height: 100vh; height: 100dvh; }
        body.map-page main { flex: 1; padding: 0; position: relative; min-height: 0; }
        #map { position: absolute; inset: 0; background: #f7f5ef; }
        #map-note { position: absolute; left: .5rem; bottom: .5rem; margin: 0; z-index: 1000; background: rgba(255,255,255,.85);
          padding: 0 .3rem; }
        #map-note:empty { display: none; }
        header label.floors { color: #fff; display: flex; gap: .4rem; align-items: center; margin: 0; }
        header select { font-size: 1rem; padding: .3rem; }
        header .who { font-weight: bold; }
        .pin { border-radius: 50%; border: 3px solid #fff; box-shadow: 0 0 0 1px #333; box-sizing: border-box; }
        .pin[data-state=online], .pin[data-state=not-recording] { background: #1a7f37; }
        .pin[data-state=offline] { background: #c62828; }
        .pin[data-state=connecting], .pin[data-state=unknown] { background: #b26a00; }
        .door { background: #1d3557; border: 2px solid #fff; box-sizing: border-box; }
        .door[data-alarm=true] { animation: door-alarm 0.8s steps(1, end) infinite; }
        @keyframes door-alarm { 0% { background: #c62828; box-shadow: 0 0 0 6px rgba(198,40,40,.5); } 50% { background: #ffd60a; box-shadow: 0 0 0 2px #c62828; } }
        .pin[data-highlight=true] { box-shadow: 0 0 0 3px #ffd60a, 0 0 0 6px #c62828; }
        @media (prefers-reduced-motion: reduce) { .door[data-alarm=true] { animation: none; background: #c62828; box-shadow: 0 0 0 6px #ffd60a; } }
        .leaflet-tooltip.pin-name { font-weight: bold; padding: 1px 4px; }
        .popup { width: min(400px, 76vw); }
        .popup .tile { width: 100%; }
        .popup .full { display: inline-block; margin-top: .4rem; font-size: 1rem; }
        .popup label { display: block; margin-top: .4rem; }
        .placing .pin { cursor: move; }
        """

    // swift-format-ignore
    static let mapJS = """
        // Hallwatch floor-plan map. See MapAssets.swift for what it does.
        'use strict';
        (function () {
          var note = document.getElementById('map-note');
          var select = document.getElementById('floor');
          var placeButton = document.getElementById('place');
          var downloadButton = document.getElementById('download');
          if (!window.L) { note.textContent = 'The map needs Leaflet (libjs-leaflet) on the box.'; return; }
          var map = L.map('map', { crs: L.CRS.Simple, minZoom: -4, maxZoom: 3, zoomSnap: 0.25, zoomDelta: 0.5,
            attributionControl: false, tap: true, touchZoom: true, bounceAtZoomLimits: false });
          var data = null, floor = null, overlay = null, layer = L.layerGroup().addTo(map), pins = {}, placing = false;
          var doorPins = {}, doorStates = {}, alarmSince = {};
          var api = window.hallwatchMap = { map: map, pins: pins, doors: doorPins, alarmSince: alarmSince, floor: null,
            yaml: yaml, events: null };

          function ll(f, x, y) { return L.latLng(f.height - y, x); }
          function clamp(v, lo, hi) { return Math.max(lo, Math.min(hi, v)); }
          function toXY(f, latlng) {
            return { x: clamp(Math.round(latlng.lng), 0, f.width), y: clamp(Math.round(f.height - latlng.lat), 0, f.height) };
          }
          function conePoints(f, c) {
            var r = Math.max(40, Math.min(f.width, f.height) * 0.09), pts = [], steps = Math.max(2, Math.round(c.angle / 10));
            if (c.angle < 360) pts.push(ll(f, c.x, c.y));
            for (var i = 0; i <= steps; i++) {
              var a = (c.direction - c.angle / 2 + c.angle * i / steps) * Math.PI / 180;
              pts.push(ll(f, c.x + Math.sin(a) * r, c.y - Math.cos(a) * r));
            }
            return pts;
          }
          function floorById(id) { return data.floors.filter(function (f) { return f.id === id; })[0]; }

          function pinIcon(c) {
            return L.divIcon({ className: 'pin', iconSize: [26, 26], iconAnchor: [13, 13], html: '' });
          }
          function decorate(p) {
            var el = p.marker.getElement();
            if (!el) return;
            el.setAttribute('data-camera', p.camera.id);
            el.setAttribute('data-state', p.camera.state);
            el.setAttribute('role', 'button');
            el.setAttribute('aria-label', p.camera.name + ', ' + p.camera.state);
            el.setAttribute('title', p.camera.name);
            var lit = Object.keys(doorStates).some(function (id) {
              return doorStates[id].alarm && doorStates[id].cameras.indexOf(p.camera.id) >= 0;
            });
            el.setAttribute('data-highlight', lit ? 'true' : 'false');
          }
          function decorateDoor(d) {
            var el = d.marker.getElement(), s = doorStates[d.door.id];
            if (!el) return;
            el.setAttribute('data-door', d.door.id);
            el.setAttribute('data-state', s ? s.state : 'unknown');
            el.setAttribute('data-alarm', s && s.alarm ? 'true' : 'false');
            el.setAttribute('aria-label', 'Door ' + d.door.id + ', ' + (s ? s.state : 'unknown'));
          }

          function drawCamera(c) {
            var f = floor;
            var cone = L.polygon(conePoints(f, c), { color: '#1d3557', weight: 1, fillOpacity: 0.18, interactive: false });
            var marker = L.marker(ll(f, c.x, c.y), { icon: pinIcon(c), draggable: placing, keyboard: true, riseOnHover: true });
            marker.bindTooltip(c.name, { permanent: true, direction: 'right', offset: [14, 0], className: 'pin-name' });
            var p = pins[c.id] = { camera: c, marker: marker, cone: cone };
            cone.addTo(layer); marker.addTo(layer); decorate(p);
            marker.on('click', function () { if (placing) placementPopup(p); else livePopup(p); });
            marker.on('drag', function () {
              var q = toXY(f, marker.getLatLng()); c.x = q.x; c.y = q.y; cone.setLatLngs(conePoints(f, c));
            });
          }

          function drawDoor(d) {
            var f = floor;
            var icon = L.divIcon({ className: 'door', iconSize: [16, 16], iconAnchor: [8, 8] });
            var m = L.marker(ll(f, d.x, d.y), { icon: icon, draggable: placing, title: 'Door ' + d.id });
            m.bindTooltip('Door ' + d.id, { direction: 'top' });
            m.on('drag', function () { var q = toXY(f, m.getLatLng()); d.x = q.x; d.y = q.y; });
            m.addTo(layer);
            decorateDoor(doorPins[d.id] = { door: d, marker: m });
          }

          function showFloor(id) {
            var f = floorById(id);
            if (!f) return;
            floor = api.floor = f;
            layer.clearLayers();
            Object.keys(pins).forEach(function (k) { delete pins[k]; });
            Object.keys(doorPins).forEach(function (k) { delete doorPins[k]; });
            if (overlay) map.removeLayer(overlay);
            var bounds = L.latLngBounds([0, 0], [f.height, f.width]);
            overlay = L.imageOverlay(f.url, bounds, { alt: 'Floor plan: ' + f.name }).addTo(map);
            map.setMaxBounds(bounds.pad(0.5));
            map.fitBounds(bounds);
            map.setMinZoom(map.getZoom() - 1);
            data.cameras.filter(function (c) { return c.floor === f.id; }).forEach(drawCamera);
            data.doors.filter(function (d) { return d.floor === f.id; }).forEach(drawDoor);
            select.value = f.id;
          }

          function livePopup(p) {
            var c = p.camera;
            var box = document.createElement('div'); box.className = 'popup';
            var tile = document.createElement('div'); tile.className = 'tile';
            tile.setAttribute('data-camera', c.id); tile.setAttribute('data-stream', c.stream || 'main');
            var v = document.createElement('video'); v.muted = true; v.autoplay = true; v.setAttribute('playsinline', '');
            var name = document.createElement('a'); name.className = 'name'; name.textContent = c.name;
            name.href = '/live/' + encodeURIComponent(c.id);
            var n = document.createElement('span'); n.className = 'note'; n.setAttribute('aria-live', 'polite');
            tile.appendChild(v); tile.appendChild(name); tile.appendChild(n); box.appendChild(tile);
            var full = document.createElement('a'); full.className = 'full'; full.textContent = 'Full screen';
            full.href = '/live/' + encodeURIComponent(c.id); box.appendChild(full);
            var player = null;
            p.marker.unbindPopup();
            p.marker.bindPopup(box, { maxWidth: 420, minWidth: 240, autoPanPadding: [10, 10] });
            p.marker.once('popupclose', function () {
              if (player && window.hallwatchLiveStop) window.hallwatchLiveStop(player);
              player = null; p.marker.unbindPopup();
            });
            p.marker.openPopup();
            if (window.hallwatchLivePlay) player = window.hallwatchLivePlay(tile);
            else n.textContent = 'The live player did not load.';
          }

          function slider(label, value, min, max, onInput) {
            var l = document.createElement('label'); l.textContent = label + ' ';
            var i = document.createElement('input'); i.type = 'range'; i.min = min; i.max = max; i.value = value;
            var out = document.createElement('output'); out.textContent = value + '°';
            i.addEventListener('input', function () { out.textContent = i.value + '°'; onInput(parseInt(i.value, 10)); });
            l.appendChild(i); l.appendChild(out);
            return l;
          }

          function placementPopup(p) {
            var c = p.camera, f = floor;
            var box = document.createElement('div'); box.className = 'popup';
            var h = document.createElement('strong'); h.textContent = c.name; box.appendChild(h);
            box.appendChild(slider('Direction', c.direction, 0, 359, function (v) { c.direction = v; p.cone.setLatLngs(conePoints(f, c)); }));
            box.appendChild(slider('Field of view', c.angle, 1, 360, function (v) { c.angle = v; p.cone.setLatLngs(conePoints(f, c)); }));
            p.marker.unbindPopup();
            p.marker.bindPopup(box, { minWidth: 220 });
            p.marker.once('popupclose', function () { p.marker.unbindPopup(); });
            p.marker.openPopup();
          }

          function q(s) { return JSON.stringify(String(s)); }
          function yaml() {
            var out = ['map:', '  floors:'];
            data.floors.forEach(function (f) {
              out.push('    - id: ' + f.id, '      name: ' + q(f.name), '      level: ' + f.level, '      image: ' + q(f.imagePath || ''));
            });
            out.push(data.cameras.length ? '  cameras:' : '  cameras: []');
            data.cameras.forEach(function (c) {
              out.push('    - camera: ' + c.id, '      floor: ' + c.floor, '      x: ' + c.x, '      y: ' + c.y,
                '      direction: ' + c.direction, '      angle: ' + c.angle);
            });
            out.push(data.doors.length ? '  doors:' : '  doors: []');
            data.doors.forEach(function (d) {
              out.push('    - id: ' + d.id, '      floor: ' + d.floor, '      x: ' + d.x, '      y: ' + d.y);
            });
            return out.join('\\n') + '\\n';
          }

          function setPlacing(on) {
            placing = on;
            document.body.classList.toggle('placing', on);
            placeButton.textContent = on ? 'Done placing' : 'Placement mode';
            placeButton.setAttribute('aria-pressed', on ? 'true' : 'false');
            downloadButton.hidden = !on;
            map.closePopup();
            showFloor(floor.id);
          }

          function download() {
            var blob = new Blob([yaml()], { type: 'application/yaml' });
            var a = document.createElement('a'); a.href = URL.createObjectURL(blob); a.download = 'map.yaml';
            document.body.appendChild(a); a.click(); a.remove();
            setTimeout(function () { URL.revokeObjectURL(a.href); }, 1000);
          }

          function states(list) {
            list.forEach(function (s) {
              var p = pins[s.id];
              data.cameras.forEach(function (c) { if (c.id === s.id) c.state = s.state; });
              if (p) decorate(p);
            });
          }

          function doors(list) {
            Object.keys(doorStates).forEach(function (k) { delete doorStates[k]; });
            list.forEach(function (s) {
              doorStates[s.id] = s;
              if (s.alarm && !alarmSince[s.id]) alarmSince[s.id] = Date.now();
              if (!s.alarm) delete alarmSince[s.id];
            });
            Object.keys(doorPins).forEach(function (k) { decorateDoor(doorPins[k]); });
            Object.keys(pins).forEach(function (k) { decorate(pins[k]); });
          }

          fetch('/api/v1/map', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
            if (!r.ok) throw new Error('the map could not be loaded (' + r.status + ')');
            return r.json();
          }).then(function (d) {
            data = d;
            if (!d.floors.length) { note.textContent = 'This box has no floor plan (the map: section of its configuration).'; return; }
            d.floors.forEach(function (f) {
              var o = document.createElement('option'); o.value = f.id; o.textContent = f.name; select.appendChild(o);
            });
            select.addEventListener('change', function () { map.closePopup(); showFloor(select.value); });
            var first = d.floors.filter(function (f) { return d.cameras.some(function (c) { return c.floor === f.id; }); })[0] || d.floors[0];
            showFloor(first.id);
            if (placeButton) {
              placeButton.addEventListener('click', function () { setPlacing(!placing); });
              downloadButton.addEventListener('click', download);
            }
            var es = api.events = new EventSource('/api/v1/map/events');
            es.addEventListener('cameras', function (e) { states(JSON.parse(e.data)); });
            es.addEventListener('doors', function (e) { doors(JSON.parse(e.data)); });
            document.body.setAttribute('data-map-ready', 'true');
          }).catch(function (e) { note.textContent = e.message; });
        })();
        """

    // swift-format-ignore
    static let bannerJS = """
        // Responder links: the banner on admin pages while a link is active, and on a responder's pages the
        // notice that the link ended (revoked, expired, locked). Values go in through textContent only.
        // The banner is one line whatever the number of links (a phone keeps its screen): each link's label, its
        // end time or LOCKED and its viewers, cut with an ellipsis; the whole text is its title, and it links to
        // the links page.
        'use strict';
        (function () {
          var bar = null;
          function banner() {
            if (!bar) {
              bar = document.createElement('div'); bar.id = 'responder-banner'; bar.setAttribute('role', 'status');
              bar.style.background = '#b00020';
              var a = document.createElement('a'); a.href = '/responder-links'; bar.appendChild(a);
              var s = a.style; s.display = 'block'; s.color = '#fff'; s.padding = '.15rem .6rem'; s.fontWeight = 'bold';
              s.fontSize = '.85rem'; s.lineHeight = '1.4'; s.whiteSpace = 'nowrap'; s.overflow = 'hidden';
              s.textOverflow = 'ellipsis'; s.textDecoration = 'none';
              document.body.insertBefore(bar, document.body.firstChild);
            }
            return bar;
          }
          function render(links) {
            if (!links.length) { if (bar) { bar.remove(); bar = null; } return; }
            var b = banner().firstChild;
            var parts = links.map(function (l) {
              // expiresLocal is "YYYY-MM-DD HH:MM:SS ZONE": the hour and minute say enough on one line.
              return l.label + (l.state === 'locked' ? ' LOCKED after wrong PINs' : ' until ' + l.expiresLocal.slice(11, 16)) +
                ' (' + l.viewers + ' viewer' + (l.viewers === 1 ? '' : 's') + ')';
            });
            b.textContent = (links.length === 1 ? 'Responder link: ' : links.length + ' responder links: ') + parts.join(' · ');
            b.title = b.textContent + ' — manage links';
            bar.setAttribute('data-links', links.map(function (l) { return l.id; }).join(' '));
          }
          function ended(problem) {
            if (document.getElementById('ended')) return;  // the page itself already says why (a reload)
            (window.hallwatchLive || []).forEach(function (t) { t.stop(); });
            if (window.hallwatchMap && window.hallwatchMap.events) window.hallwatchMap.events.close();
            var d = document.getElementById('responder-ended') || document.createElement('div');
            d.id = 'responder-ended'; d.setAttribute('role', 'alert'); d.setAttribute('data-code', problem.error);
            var s = d.style; s.position = 'fixed'; s.inset = '0'; s.zIndex = '5000'; s.background = 'rgba(0,0,0,.85)';
            s.color = '#fff'; s.display = 'flex'; s.alignItems = 'center'; s.justifyContent = 'center';
            s.fontSize = '1.5rem'; s.padding = '2rem'; s.textAlign = 'center';
            d.textContent = problem.message;
            document.body.appendChild(d);
          }
          function poll() {
            fetch('/api/v1/responder-banner', { credentials: 'same-origin', cache: 'no-store' }).then(function (r) {
              return r.json().then(function (j) { return { status: r.status, body: j }; });
            }).then(function (a) {
              if (a.status === 401 && String(a.body.error).indexOf('responder.') === 0) { ended(a.body); return; }
              if (a.body.responder) { setTimeout(poll, 1000); return; }
              render(a.body.links || []);
              if (a.body.admin) setTimeout(poll, 10000);
            }).catch(function () { setTimeout(poll, 5000); });
          }
          poll();
        })();
        """
}
