/// The static files the pages use, compiled in (no resource bundle to lose on install; nothing from the
/// internet). Served under `/static/`.
enum Assets {
    /// Chart.js 3 (UMD build) as Debian's `libjs-chart.js` installs it; served as `/static/chart.min.js`.
    static let chartJSPath = "/usr/share/javascript/chart.js/chart.min.js"

    // swift-format-ignore
    static let statusCSS = """
        :root { font-family: system-ui, sans-serif; color: #111; background: #fff; }
        body { margin: 0; }
        header { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: center;
          padding: .5rem 1rem; background: #1d3557; color: #fff; gap: .5rem; }
        header h1 { font-size: 1.2rem; margin: 0; }
        header a, header a:visited { color: #fff; }
        form.filter { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: flex-end; margin: 1rem 0; }
        form.filter input { width: auto; }
        header form { display: flex; gap: .5rem; align-items: center; }
        main { padding: 0 1rem 1rem; }
        main.narrow { max-width: 28rem; margin: 2rem auto; }
        label { display: block; margin-top: .8rem; }
        input { width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; }
        input[type=checkbox] { width: auto; }
        label.choice { display: inline-block; margin: .3rem 1rem .3rem 0; }
        button { padding: .5rem 1rem; font-size: 1rem; margin-top: .8rem; }
        header button { margin: 0; }
        .error { color: #a00; font-weight: bold; }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #ddd; }
        .state-online, .health-healthy, .proc-up { color: #064; }
        .state-offline, .state-not-recording, .health-failed, .health-missing, .proc-down { color: #a00; font-weight: bold; }
        .state-connecting, .state-unknown, .proc-stopping, .health-quarantined { color: #850; }
        pre { background: #f4f4f4; padding: .5rem; overflow-x: auto; }
        .fingerprint { overflow-wrap: anywhere; font-size: .85rem; }
        dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
        dt { font-weight: bold; } dd { margin: 0; overflow-wrap: anywhere; }
        .clock-bad { color: #a00; font-weight: bold; }
        .plot { position: relative; height: 220px; max-width: 60rem; margin-bottom: 1rem; }
        img.thumb { width: 160px; height: auto; display: block; background: #eee; }
        img.thumb.missing { visibility: hidden; }
        header a, header a:visited { color: #fff; }
        .tile { position: relative; background: #000; aspect-ratio: 16 / 9; }
        .tile video { width: 100%; height: 100%; object-fit: contain; display: block; }
        .tile .note { position: absolute; left: .4rem; bottom: .3rem; color: #fff; font-size: .8rem;
          background: rgba(0,0,0,.5); padding: 0 .3rem; }
        .tile .name { position: absolute; left: .4rem; top: .3rem; color: #fff; font-size: .9rem;
          background: rgba(0,0,0,.5); padding: 0 .3rem; text-decoration: none; }
        .grid { display: grid; grid-template-columns: repeat(2, 1fr); gap: 4px; }
        .grid-1 { grid-template-columns: 1fr; } .grid-3 { grid-template-columns: repeat(3, 1fr); }
        .grid-4 { grid-template-columns: repeat(4, 1fr); }
        .grid .tile { cursor: zoom-in; } .tile:fullscreen { aspect-ratio: auto; cursor: zoom-out; }
        .layouts { margin: 0 0 .5rem; } .layouts button[aria-pressed="true"] { font-weight: bold; }
        @media (max-width: 600px) { .grid { grid-template-columns: 1fr; } }
        @media (max-width: 600px) {
          thead { position: absolute; left: -9999px; }
          tr { display: block; border-bottom: 2px solid #bbb; padding: .3rem 0; }
          th, td { display: flex; justify-content: space-between; gap: .75rem; border: 0; padding: .15rem .3rem; }
          td > span { text-align: right; }
          th[data-label]::before, td[data-label]::before { content: attr(data-label); font-weight: normal; color: #555; }
        }
        """

    // swift-format-ignore
    static let statusJS = """
        // Live status: server-sent events from /api/v1/status/events; every value goes in through textContent.
        'use strict';
        (function () {
          function el(tag, text, attrs) {
            var e = document.createElement(tag);
            if (text !== undefined && text !== null) e.textContent = text;
            for (var k in (attrs || {})) e.setAttribute(k, attrs[k]);
            return e;
          }
          function cell(row, tag, label, text, cls) {
            var c = el(tag, text, { 'data-label': label });
            if (tag === 'th') c.setAttribute('scope', 'row');
            if (cls) c.className = cls;
            row.appendChild(c);
            return c;
          }
          function fixed(v, digits, unit) { return v === null || v === undefined ? '–' : v.toFixed(digits) + unit; }
          // One <img> per camera, kept across the row rebuilds of live updates, reloaded every 10 s.
          var thumbs = {};
          function watch(img) {
            img.addEventListener('load', function () { img.classList.remove('missing'); });
            img.addEventListener('error', function () { img.classList.add('missing'); });
          }
          function thumb(id) {
            if (!thumbs[id]) {
              var img = el('img', null, { 'class': 'thumb', width: '160', alt: id + ': newest recorded picture', 'data-camera': id });
              watch(img);
              img.src = '/api/v1/cameras/' + encodeURIComponent(id) + '/thumbnail.jpg';
              thumbs[id] = img;
            }
            return thumbs[id];
          }
          function refreshThumbs() {
            for (var id in thumbs) {
              thumbs[id].src = '/api/v1/cameras/' + encodeURIComponent(id) + '/thumbnail.jpg?t=' + Date.now();
            }
          }
          function renderCameras(cameras) {
            var body = document.querySelector('#cameras tbody');
            body.replaceChildren();
            if (cameras.length === 0) { var r = el('tr'); r.appendChild(el('td', 'No camera to show.', { colspan: '8' })); body.appendChild(r); }
            cameras.forEach(function (c) {
              var r = el('tr', null, { 'data-camera': c.id });
              cell(r, 'th', 'Camera').appendChild(el('a', c.id, { href: '/live/' + encodeURIComponent(c.id) }));
              cell(r, 'td', 'Picture').appendChild(thumb(c.id));
              var s = el('span', c.state);
              if (c.reasonCode) { s.appendChild(document.createTextNode(' ')); s.appendChild(el('small', c.reasonCode + ': ' + (c.reasonMessage || ''))); }
              cell(r, 'td', 'State', null, 'state-' + c.state).appendChild(s);
              cell(r, 'td', 'Codec', c.codec || '–');
              cell(r, 'td', 'Size', c.width && c.height ? c.width + '×' + c.height : '–');
              cell(r, 'td', 'FPS', fixed(c.fps, 1, ''));
              cell(r, 'td', 'Bitrate', c.bitrateBps == null ? '–' : (c.bitrateBps / 1e6).toFixed(2) + ' Mb/s');
              cell(r, 'td', 'Last fragment', fixed(c.lastFragmentAgeSeconds, 1, ' s'));
              body.appendChild(r);
            });
          }
          function renderDisks(disks) {
            var body = document.querySelector('#disks tbody');
            body.replaceChildren();
            disks.forEach(function (d) {
              var r = el('tr');
              cell(r, 'th', 'Disk', d.name);
              var h = el('span', d.health);
              if (d.reasonCode) { h.appendChild(document.createTextNode(' ')); h.appendChild(el('small', d.reasonCode)); }
              cell(r, 'td', 'Health', null, 'health-' + d.health).appendChild(h);
              cell(r, 'td', 'Free slots', d.freeSlots + '/' + d.slotCount);
              cell(r, 'td', 'Cameras', d.cameras.join(', '));
              body.appendChild(r);
            });
          }
          function renderProcesses(processes) {
            var body = document.querySelector('#processes tbody');
            body.replaceChildren();
            processes.forEach(function (p) {
              var r = el('tr');
              cell(r, 'th', 'Process', p.name);
              cell(r, 'td', 'State', p.state, 'proc-' + p.state);
              cell(r, 'td', 'PID', p.pid > 0 ? String(p.pid) : '–');
              body.appendChild(r);
            });
          }
          function renderAlarms(alarms) {
            var list = document.getElementById('alarms');
            list.replaceChildren();
            if (alarms.length === 0) list.appendChild(el('li', 'None since the web process started.'));
            alarms.forEach(function (a) {
              var li = el('li');
              li.appendChild(el('code', a.code));
              li.appendChild(document.createTextNode(' ' + (a.camera || a.process || '') + ' ' + a.message + ' '));
              li.appendChild(el('time', a.atLocal || a.at || '', { datetime: a.at || '', title: a.at || '' }));
              list.appendChild(li);
            });
          }
          function uptime(seconds) {
            var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600), m = Math.floor(seconds % 3600 / 60);
            return d > 0 ? d + ' d ' + h + ' h' : h > 0 ? h + ' h ' + m + ' min' : m + ' min';
          }
          function clockText(c) {
            if (c.synchronised === null || c.synchronised === undefined) return 'unknown';
            var parts = [];
            if (c.offsetMs !== null && c.offsetMs !== undefined) parts.push('offset ' + (c.offsetMs >= 0 ? '+' : '') + c.offsetMs.toFixed(3) + ' ms');
            if (c.maxErrorMs !== null && c.maxErrorMs !== undefined) parts.push('max error ' + c.maxErrorMs.toFixed(0) + ' ms');
            return (c.synchronised ? 'synchronised' : 'NOT synchronised') + (parts.length ? ' (' + parts.join(', ') + ')' : '');
          }
          function renderBox(b) {
            if (!b || !document.getElementById('box')) return;
            document.getElementById('box-uptime').textContent = uptime(b.uptimeSeconds);
            var t = document.getElementById('box-time');
            t.textContent = b.local; t.title = b.utc; t.setAttribute('datetime', b.utc);
            document.getElementById('box-utc').textContent = b.utc;
            var c = document.getElementById('box-clock');
            c.textContent = clockText(b.clock); c.className = 'clock-' + (b.clock.synchronised ? 'ok' : 'bad');
          }
          function start() {
            document.querySelectorAll('img.thumb').forEach(function (img) {
              watch(img); thumbs[img.getAttribute('data-camera')] = img;
              if (img.complete && img.naturalWidth === 0) img.classList.add('missing');
            });
            setInterval(refreshThumbs, 10000);
            if (!window.EventSource) return;
            var live = document.getElementById('live');
            var source = new EventSource('/api/v1/status/events');
            source.addEventListener('status', function (event) {
              var s = JSON.parse(event.data);
              var at = document.getElementById('at');
              at.textContent = s.atLocal; at.title = s.at; at.setAttribute('datetime', s.at);
              renderBox(s.box);
              renderCameras(s.cameras); renderDisks(s.disks); renderProcesses(s.processes); renderAlarms(s.alarms);
              live.textContent = '';
            });
            source.onerror = function () { live.textContent = '(reconnecting…)'; };
          }
          document.addEventListener('DOMContentLoaded', start);
        })();
        """

    // swift-format-ignore
    static let plotsJS = """
        // The 24 h plots: /api/v1/plots drawn with Chart.js (served from the box), refreshed every minute.
        'use strict';
        (function () {
          var charts = {};
          function draw(id, labels, datasets, unit) {
            var canvas = document.getElementById(id);
            if (!canvas) return;
            if (charts[id]) {
              charts[id].data.labels = labels; charts[id].data.datasets = datasets; charts[id].update('none');
            } else {
              charts[id] = new Chart(canvas, {
                type: 'line', data: { labels: labels, datasets: datasets },
                options: { animation: false, responsive: true, maintainAspectRatio: false, spanGaps: true,
                  elements: { point: { radius: 0 } },
                  scales: { y: { beginAtZero: true, title: { display: true, text: unit } },
                            x: { ticks: { maxTicksLimit: 8 } } } }
              });
            }
            canvas.setAttribute('data-drawn', String(datasets.length));
          }
          var colours = ['#1d3557', '#e63946', '#2a9d8f', '#e9c46a', '#8d5cf6', '#f4a261', '#457b9d', '#6d6875'];
          function load() {
            var note = document.getElementById('plots-note');
            if (!window.Chart) { note.textContent = 'Plots need Chart.js (libjs-chart.js) on the box.'; return; }
            fetch('/api/v1/plots', { credentials: 'same-origin' }).then(function (r) {
              if (!r.ok) throw new Error('HTTP ' + r.status);
              return r.json();
            }).then(function (p) {
              draw('plot-bitrate', p.labels, p.cameras.map(function (c, i) {
                return { label: c.id, borderColor: colours[i % colours.length], borderWidth: 1.5,
                         data: c.bitsPerSecond.map(function (v) { return v / 1e6; }) };
              }), 'Mb/s');
              draw('plot-disks', p.labels, p.disks.map(function (d, i) {
                var c = d.capacityBytes >= 1e9 ? (d.capacityBytes / 1e9).toFixed(1) + ' GB' : (d.capacityBytes / 1e6).toFixed(0) + ' MB';
                return { label: d.name + ' (of ' + c + ')',
                         borderColor: colours[(i + 3) % colours.length], borderWidth: 1.5,
                         data: d.usedBytes.map(function (v) { return v / 1e9; }) };
              }), 'GB');
              note.textContent = p.times.length ? 'Times in the time zone of the building; 10-minute means.' : '';
            }).catch(function (e) { note.textContent = 'Plots unavailable (' + e.message + ').'; });
          }
          document.addEventListener('DOMContentLoaded', function () { load(); setInterval(load, 60000); });
        })();
        """
}
