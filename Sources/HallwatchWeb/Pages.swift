import Mustache

/// The server-rendered pages (swift-mustache; `{{x}}` is HTML-escaped, and no template uses `{{{x}}}`).
/// No inline script or style: the CSP forbids both; behaviour comes from `/static/status.js`.
enum Pages {
    static func render(_ template: MustacheTemplate, _ model: Any) -> String { template.render(model) }

    static let head = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <link rel="stylesheet" href="/static/status.css">
        <script src="/static/banner.js" defer></script>
        """

    // swift-format-ignore
    static let login = try! MustacheTemplate(string: head + """
        <title>Sign in — {{building}}</title></head>
        <body><main class="narrow">
        <h1>{{building}}</h1>
        <form method="post" action="/login">
        {{#message}}<p class="error" role="alert">{{message}}</p>{{/message}}
        <label for="username">User name</label>
        <input id="username" name="username" autocomplete="username" required maxlength="64" autofocus>
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
        <button type="submit">Sign in</button>
        </form></main></body></html>
        """)

    // swift-format-ignore
    static let noUsers = try! MustacheTemplate(string: head + """
        <title>No users yet — {{building}}</title></head>
        <body><main class="narrow">
        <h1>{{building}}: no user can sign in yet</h1>
        <p>This box has no default user or password. To add the first one, on the box (as root):</p>
        <ol>
        <li>Run <code>hallwatchctl user hash</code> and type the new password twice; it prints a hash.</li>
        <li>Add the user to <code>/etc/hallwatch/web.yaml</code>:
        <pre>users:
          - name: admin
            displayName: District IT
            role: district-admin
            passwordHash: "$2b$12$…"</pre></li>
        <li>Run <code>systemctl restart hallwatch-web</code> and reload this page.</li>
        </ol></main></body></html>
        """)

    // swift-format-ignore
    static let status = try! MustacheTemplate(string: head + """
        <title>{{building}} — Hallwatch</title>
        <script src="/static/status.js" defer></script>
        <script src="/static/chart.min.js" defer></script><script src="/static/plots.js" defer></script></head>
        <body>
        <header><h1>{{building}}</h1>
        <nav><a href="/live">Live grid</a> <a href="/map">Map</a> <a href="/events">Events</a>\
        {{#canLinks}} <a href="/responder-links">Responder links</a>{{/canLinks}}\
        {{#canAudit}} <a href="/audit">Audit log</a>{{/canAudit}}</nav>
        <form method="post" action="/logout"><span>{{user}} ({{role}})</span>
        <input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Sign out</button></form>
        </header>
        <main>
        <p class="updated">Updated <time id="at" datetime="{{at}}" title="{{at}}">{{atLocal}}</time> <span id="live" aria-live="polite"></span></p>
        <section aria-labelledby="h-cameras"><h2 id="h-cameras">Cameras</h2>
        <table id="cameras"><thead><tr><th scope="col">Camera</th><th scope="col">Picture</th><th scope="col">State</th><th scope="col">Codec</th>
        <th scope="col">Size</th><th scope="col">FPS</th><th scope="col">Bitrate</th><th scope="col">Last fragment</th></tr></thead>
        <tbody>{{#cameras}}<tr data-camera="{{id}}"><th scope="row" data-label="Camera"><a href="/live/{{id}}">{{id}}</a></th>
        <td data-label="Picture"><img class="thumb" src="/api/v1/cameras/{{id}}/thumbnail.jpg" alt="{{id}}: newest recorded picture" width="160" data-camera="{{id}}"></td>
        <td data-label="State" class="state-{{state}}"><span>{{state}}{{#reason}} <small>{{reason}}</small>{{/reason}}</span></td>
        <td data-label="Codec">{{codec}}</td><td data-label="Size">{{size}}</td><td data-label="FPS">{{fps}}</td>
        <td data-label="Bitrate">{{bitrate}}</td><td data-label="Last fragment">{{age}}</td></tr>{{/cameras}}
        {{#noCameras}}<tr><td colspan="8">No camera to show.</td></tr>{{/noCameras}}</tbody></table></section>
        <section aria-labelledby="h-disks"><h2 id="h-disks">Disks</h2>
        <table id="disks"><thead><tr><th scope="col">Disk</th><th scope="col">Health</th><th scope="col">Free slots</th>
        <th scope="col">Cameras</th></tr></thead><tbody>{{#disks}}<tr><th scope="row" data-label="Disk">{{name}}</th>
        <td data-label="Health" class="health-{{health}}"><span>{{health}}{{#reason}} <small>{{reason}}</small>{{/reason}}</span></td>
        <td data-label="Free slots">{{slots}}</td><td data-label="Cameras">{{cameras}}</td></tr>{{/disks}}</tbody></table></section>
        <section aria-labelledby="h-plots"><h2 id="h-plots">Last 24 hours</h2>
        <div class="plot"><canvas id="plot-bitrate" role="img" aria-label="Bit rate per camera over the last 24 hours, in megabits per second"></canvas></div>
        <div class="plot"><canvas id="plot-disks" role="img" aria-label="Recordings on each disk over the last 24 hours, in gigabytes"></canvas></div>
        <p id="plots-note" aria-live="polite"></p></section>
        <section aria-labelledby="h-processes"><h2 id="h-processes">Processes</h2>
        <table id="processes"><thead><tr><th scope="col">Process</th><th scope="col">State</th><th scope="col">PID</th></tr></thead>
        <tbody>{{#processes}}<tr><th scope="row" data-label="Process">{{name}}</th>
        <td data-label="State" class="proc-{{state}}">{{state}}</td><td data-label="PID">{{pid}}</td></tr>{{/processes}}</tbody></table></section>
        <section aria-labelledby="h-alarms"><h2 id="h-alarms">Recent alarms</h2>
        <ul id="alarms">{{#alarms}}<li><code>{{code}}</code> {{subject}} {{message}} <time datetime="{{at}}" title="{{at}}">{{atLocal}}</time></li>{{/alarms}}
        {{#noAlarms}}<li>None since the web process started.</li>{{/noAlarms}}</ul></section>
        {{#box}}<section aria-labelledby="h-box"><h2 id="h-box">This box</h2>
        <dl id="box">
        <dt>Name</dt><dd id="box-name">{{name}}</dd>
        <dt>Building</dt><dd id="box-building">{{building}}</dd>
        <dt>Software</dt><dd id="box-version">{{version}}</dd>
        <dt>Up for</dt><dd id="box-uptime">{{uptime}}</dd>
        <dt>Clock</dt><dd><time id="box-time" datetime="{{utc}}" title="{{utc}}">{{local}}</time> <small>({{zone}}; UTC <span id="box-utc">{{utc}}</span>)</small></dd>
        <dt>Time sync</dt><dd id="box-clock" class="clock-{{clockState}}">{{clock}}</dd>
        <dt>Identity key</dt><dd><code class="fingerprint" id="box-identity">{{identity}}</code> <small>Ed25519, SHA-256</small></dd>
        <dt>Certificate</dt><dd><code class="fingerprint" id="box-tls">{{tls}}</code> <small>SHA-256</small></dd>
        </dl></section>{{/box}}
        {{#tls}}<footer><p>This page's certificate, SHA-256: <code class="fingerprint">{{tls}}</code></p></footer>{{/tls}}
        </main></body></html>
        """)
}
