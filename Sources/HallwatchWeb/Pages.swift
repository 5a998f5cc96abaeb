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
        <script src="/static/status.js" defer></script></head>
        <body>
        <header><h1>{{building}}</h1><nav><a href="/live">Live grid</a></nav>
        <form method="post" action="/logout"><span>{{user}} ({{role}})</span>
        <input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Sign out</button></form>
        </header>
        <main>
        <p class="updated">Updated <time id="at">{{at}}</time> <span id="live" aria-live="polite"></span></p>
        <section aria-labelledby="h-cameras"><h2 id="h-cameras">Cameras</h2>
        <table id="cameras"><thead><tr><th scope="col">Camera</th><th scope="col">State</th><th scope="col">Codec</th>
        <th scope="col">Size</th><th scope="col">FPS</th><th scope="col">Bitrate</th><th scope="col">Last fragment</th></tr></thead>
        <tbody>{{#cameras}}<tr data-camera="{{id}}"><th scope="row" data-label="Camera"><a href="/live/{{id}}">{{id}}</a></th>
        <td data-label="State" class="state-{{state}}"><span>{{state}}{{#reason}} <small>{{reason}}</small>{{/reason}}</span></td>
        <td data-label="Codec">{{codec}}</td><td data-label="Size">{{size}}</td><td data-label="FPS">{{fps}}</td>
        <td data-label="Bitrate">{{bitrate}}</td><td data-label="Last fragment">{{age}}</td></tr>{{/cameras}}
        {{#noCameras}}<tr><td colspan="7">No camera to show.</td></tr>{{/noCameras}}</tbody></table></section>
        <section aria-labelledby="h-disks"><h2 id="h-disks">Disks</h2>
        <table id="disks"><thead><tr><th scope="col">Disk</th><th scope="col">Health</th><th scope="col">Free slots</th>
        <th scope="col">Cameras</th></tr></thead><tbody>{{#disks}}<tr><th scope="row" data-label="Disk">{{name}}</th>
        <td data-label="Health" class="health-{{health}}"><span>{{health}}{{#reason}} <small>{{reason}}</small>{{/reason}}</span></td>
        <td data-label="Free slots">{{slots}}</td><td data-label="Cameras">{{cameras}}</td></tr>{{/disks}}</tbody></table></section>
        <section aria-labelledby="h-processes"><h2 id="h-processes">Processes</h2>
        <table id="processes"><thead><tr><th scope="col">Process</th><th scope="col">State</th><th scope="col">PID</th></tr></thead>
        <tbody>{{#processes}}<tr><th scope="row" data-label="Process">{{name}}</th>
        <td data-label="State" class="proc-{{state}}">{{state}}</td><td data-label="PID">{{pid}}</td></tr>{{/processes}}</tbody></table></section>
        <section aria-labelledby="h-alarms"><h2 id="h-alarms">Recent alarms</h2>
        <ul id="alarms">{{#alarms}}<li><code>{{code}}</code> {{subject}} {{message}} <time>{{at}}</time></li>{{/alarms}}
        {{#noAlarms}}<li>None since the web process started.</li>{{/noAlarms}}</ul></section>
        {{#tls}}<footer><p>This page's certificate, SHA-256: <code class="fingerprint">{{tls}}</code></p></footer>{{/tls}}
        </main></body></html>
        """)
}
