/// The static files the pages use, compiled in (no resource bundle to lose on install; nothing from the
/// internet). Served under `/static/`.
enum Assets {
    // swift-format-ignore
    static let statusCSS = """
        :root { font-family: system-ui, sans-serif; color: #111; background: #fff; }
        body { margin: 0; }
        header { display: flex; flex-wrap: wrap; justify-content: space-between; align-items: center;
          padding: .5rem 1rem; background: #1d3557; color: #fff; gap: .5rem; }
        header h1 { font-size: 1.2rem; margin: 0; }
        header form { display: flex; gap: .5rem; align-items: center; }
        main { padding: 0 1rem 1rem; }
        main.narrow { max-width: 28rem; margin: 2rem auto; }
        label { display: block; margin-top: .8rem; }
        input { width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; }
        button { padding: .5rem 1rem; font-size: 1rem; margin-top: .8rem; }
        header button { margin: 0; }
        .error { color: #a00; font-weight: bold; }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #ddd; }
        .state-online, .health-healthy, .proc-up { color: #064; }
        .state-offline, .health-failed, .health-missing, .proc-down { color: #a00; font-weight: bold; }
        .state-connecting, .state-unknown, .proc-stopping, .health-quarantined { color: #850; }
        pre { background: #f4f4f4; padding: .5rem; overflow-x: auto; }
        .fingerprint { overflow-wrap: anywhere; font-size: .85rem; }
        header a, header a:visited { color: #fff; }
        .tile { position: relative; background: #000; aspect-ratio: 16 / 9; }
        .tile video { width: 100%; height: 100%; object-fit: contain; display: block; }
        .tile .note { position: absolute; left: .4rem; bottom: .3rem; color: #fff; font-size: .8rem;
          background: rgba(0,0,0,.5); padding: 0 .3rem; }
        .tile .name { position: absolute; left: .4rem; top: .3rem; color: #fff; font-size: .9rem;
          background: rgba(0,0,0,.5); padding: 0 .3rem; text-decoration: none; }
        .grid { display: grid; grid-template-columns: repeat(2, 1fr); gap: 4px; }
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
        // Live status: server-sent events from /api/v1/events; every value goes in through textContent.
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
          function renderCameras(cameras) {
            var body = document.querySelector('#cameras tbody');
            body.replaceChildren();
            if (cameras.length === 0) { var r = el('tr'); r.appendChild(el('td', 'No camera to show.', { colspan: '7' })); body.appendChild(r); }
            cameras.forEach(function (c) {
              var r = el('tr', null, { 'data-camera': c.id });
              cell(r, 'th', 'Camera').appendChild(el('a', c.id, { href: '/live/' + encodeURIComponent(c.id) }));
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
              li.appendChild(el('time', a.at || ''));
              list.appendChild(li);
            });
          }
          function start() {
            if (!window.EventSource) return;
            var live = document.getElementById('live');
            var source = new EventSource('/api/v1/events');
            source.addEventListener('status', function (event) {
              var s = JSON.parse(event.data);
              document.getElementById('at').textContent = s.at;
              renderCameras(s.cameras); renderDisks(s.disks); renderProcesses(s.processes); renderAlarms(s.alarms);
              live.textContent = '';
            });
            source.onerror = function () { live.textContent = '(reconnecting…)'; };
          }
          document.addEventListener('DOMContentLoaded', start);
        })();
        """
}
