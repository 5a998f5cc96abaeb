import Foundation
import HallwatchCore
import Hummingbird
import Mustache

extension EventRoutes {
    /// The routes of door and alarm events (added to ``WebRoutes/table(_:)``).
    static func table(_ env: WebEnvironment) -> [WebRoute] {
        [
            WebRoute(method: .post, path: "/api/v1/events", access: .eventToken) { req, ctx in
                try await post(env, req, ctx)
            },
            WebRoute(method: .get, path: "/api/v1/sources/{id}/cursor", access: .eventToken) { _, ctx in
                try await cursor(env, ctx)
            },
            WebRoute(method: .get, path: "/api/v1/doors", access: .permission(.viewStatus)) { _, ctx in
                try await doors(env, ctx)
            },
            WebRoute(method: .get, path: "/events", access: .permission(.viewStatus)) { req, ctx in
                try await EventPages.events(env, req, ctx)
            },
            WebRoute(method: .get, path: "/admin/event-sources", access: .permission(.manageEventSources)) { _, ctx in
                try await EventPages.sources(env, ctx, token: nil, message: nil)
            },
            WebRoute(method: .post, path: "/admin/event-sources", access: .permission(.manageEventSources)) {
                req, ctx in try await EventPages.addSource(env, req, ctx)
            },
            WebRoute(
                method: .post, path: "/admin/event-sources/{name}/revoke", access: .permission(.manageEventSources)
            ) { _, ctx in try await EventPages.revokeSource(env, ctx) },
        ]
    }
}

/// The events page (`/events`: filter by door, type and time; each event links to its direct cameras'
/// playback from the pre-roll) and the event sources page (`/admin/event-sources`: make, rotate and revoke
/// source tokens; audited). Server-rendered, no script.
enum EventPages {
    // swift-format-ignore
    static let eventsTemplate = try! MustacheTemplate(string: Pages.head + """
        <title>Events — {{building}}</title></head>
        <body>
        <header><h1>Door and alarm events</h1><nav><a href="/">Status</a> · <a href="/live">Live grid</a>{{#canManage}} · <a href="/admin/event-sources">Event sources</a>{{/canManage}}</nav></header>
        <main>
        <form method="get" action="/events" class="filters">
        <label for="door">Door</label><select id="door" name="door"><option value="">any</option>{{#doors}}<option value="{{id}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/doors}}</select>
        <label for="type">Type</label><select id="type" name="type"><option value="">any</option>{{#types}}<option value="{{name}}"{{#selected}} selected{{/selected}}>{{name}}</option>{{/types}}</select>
        <label for="from">From</label><input id="from" name="from" value="{{from}}" maxlength="40">
        <label for="to">To</label><input id="to" name="to" value="{{to}}" maxlength="40">
        <button type="submit">Show</button></form>
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        <table id="events"><thead><tr><th scope="col">Time</th><th scope="col">Type</th><th scope="col">Door</th>
        <th scope="col">Source</th><th scope="col">Received</th><th scope="col">Video</th></tr></thead>
        <tbody>{{#events}}<tr data-type="{{type}}" data-door="{{door}}" data-seq="{{seq}}" class="event-{{kind}}">
        <td data-label="Time"><time datetime="{{time}}" title="{{time}}">{{timeLocal}}</time></td>
        <td data-label="Type"><code>{{type}}</code>{{#late}} <small class="late">late</small>{{/late}}</td>
        <td data-label="Door">{{doorName}}</td><td data-label="Source">{{source}}</td>
        <td data-label="Received"><time datetime="{{receivedAt}}" title="{{receivedAt}}">{{receivedLocal}}</time></td>
        <td data-label="Video">{{#play}}<a class="play" href="/cameras/{{camera}}/timeline?at={{at}}">Play {{camera}}</a> {{/play}}{{#others}}<a href="/live/{{camera}}">{{camera}}</a> {{/others}}{{#held}}<small>held</small>{{/held}}</td></tr>{{/events}}
        {{#noEvents}}<tr><td colspan="6">No events in this range.</td></tr>{{/noEvents}}</tbody></table>
        <nav class="pages" aria-label="More events">{{#newest}}<a id="events-newest" href="{{newest}}">Newest</a> {{/newest}}{{#older}}<a id="events-older" href="{{older}}" rel="next">Older events</a>{{/older}}</nav>
        </main></body></html>
        """)

    /// Rows on one page of `/events` (a phone scrolls through a hundred, not five hundred).
    static let pageRows = 100

    /// `/events` with the filters of `q` and the page after `before` (`TIME:SEQ`), every value percent-encoded.
    static func link(_ q: EventStore.Query, before: String?) -> String {
        var fields = [("from", q.from.iso8601), ("to", q.to.iso8601)]
        if let door = q.door { fields.append(("door", door)) }
        if let type = q.type { fields.append(("type", type)) }
        if let camera = q.camera { fields.append(("camera", camera)) }
        if let before { fields.append(("before", before)) }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return "/events?"
            + fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }
            .joined(separator: "&")
    }

    /// `/events`: a page of events, newest first, with a link to the next older page.
    static func events(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        guard let service = env.events else { return EventRoutes.unavailable() }
        let now = env.clocks.utcNow()
        var model: [String: Any] = ["building": env.building]
        model["canManage"] = context.user?.role.permissions.contains(.manageEventSources) == true
        var rows: [StoredEvent] = []
        var q = EventStore.Query(from: now.adding(micros: -86_400_000_000), to: now.adding(micros: 3_600_000_000))
        let visible = EventRoutes.visible(env, context)
        do {
            q = try EventRoutes.query(request, now: now)
            var scope = q
            scope.anyCamera = visible
            // A page of at most ``pageRows``, one more asked for to know whether an older page exists.
            scope.limit = min(q.limit, pageRows) + 1
            rows = EventRoutes.scoped(try service.store.events(scope), visible: visible)
            if rows.count > min(q.limit, pageRows), let last = rows.dropLast().last {
                rows.removeLast()
                model["older"] = link(q, before: "\(UTCMicros.parseStored(last.time).micros):\(last.seq)")
            }
            if q.before != nil { model["newest"] = link(q, before: nil) }
        } catch let e as EventRefusal {
            model["error"] = e.message
        }
        let names = Dictionary(service.doors.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        // The filter offers the doors the user may see (a camera of theirs sees it), as `/api/v1/doors` lists them:
        // a building admin limited to the gym does not learn the other doors' names.
        let doors = service.doors.filter { d in
            visible.map { v in (d.direct + d.indirect).contains { v.contains($0.rawValue) } } ?? true
        }
        model["doors"] = doors.map {
            ["id": $0.id, "name": $0.name, "selected": $0.id == q.door] as [String: Any]
        }
        model["types"] = EventTypes.normalised.sorted().map { ["name": $0, "selected": $0 == q.type] as [String: Any] }
        model["from"] = q.from.iso8601
        model["to"] = q.to.iso8601
        model["events"] = rows.map { e -> [String: Any] in
            let time = UTCMicros.parseStored(e.time)
            let at = time.adding(micros: -Int64(e.preRollSeconds * 1e6)).iso8601
            return [
                "time": e.time, "timeLocal": env.time.format(time), "type": e.type, "late": e.late, "seq": e.seq,
                "kind": e.type.replacingOccurrences(of: ".", with: "-"), "door": e.door ?? "",
                "doorName": e.door.map { names[$0] ?? $0 } ?? (e.subject ?? "—"), "source": e.source,
                "receivedAt": e.receivedAt, "receivedLocal": env.time.format(UTCMicros.parseStored(e.receivedAt)),
                "play": e.directCameras.map { ["camera": $0, "at": at] },
                "others": e.cameras.filter { !e.directCameras.contains($0) }.map { ["camera": $0] },
                "held": !e.holds.isEmpty,
            ]
        }
        model["noEvents"] = rows.isEmpty
        return WebResponses.html(Pages.render(eventsTemplate, model))
    }

    // swift-format-ignore
    static let sourcesTemplate = try! MustacheTemplate(string: Pages.head + """
        <title>Event sources — {{building}}</title></head>
        <body>
        <header><h1>Event sources</h1><nav><a href="/">Status</a> · <a href="/events">Events</a></nav></header>
        <main>
        {{#message}}<p class="error" role="alert">{{message}}</p>{{/message}}
        {{#token}}<section aria-labelledby="h-token"><h2 id="h-token">New token for {{source}}</h2>
        <p>Copy it now: it is shown only this once (the box keeps only its hash). An older token of this source stays valid until the next rotation or a revoke.</p>
        <p><code id="new-token">{{token}}</code></p></section>{{/token}}
        <table id="sources"><thead><tr><th scope="col">Source</th><th scope="col">Types</th><th scope="col">Doors</th>
        <th scope="col">Live tokens</th><th scope="col"></th></tr></thead>
        <tbody>{{#sources}}<tr data-source="{{name}}"><th scope="row">{{name}}</th><td>{{types}}</td><td>{{doors}}</td><td>{{state}}</td>
        <td>{{#live}}<form method="post" action="/admin/event-sources/{{name}}/revoke"><input type="hidden" name="csrf" value="{{csrf}}">
        <button type="submit">Revoke</button></form>{{/live}}</td></tr>{{/sources}}
        {{#noSources}}<tr><td colspan="5">No event source yet.</td></tr>{{/noSources}}</tbody></table>
        <section aria-labelledby="h-add"><h2 id="h-add">Add a source or rotate its token</h2>
        <form method="post" action="/admin/event-sources"><input type="hidden" name="csrf" value="{{csrf}}">
        <label for="name">Name (the events' <code>source</code>)</label><input id="name" name="name" required maxlength="64">
        <label for="types">Types (comma-separated; empty: any)</label><input id="types" name="types" maxlength="1000">
        <label for="doors">Doors (comma-separated; empty: any)</label><input id="doors" name="doors" maxlength="1000">
        <label for="addresses">Addresses it sends from (comma-separated IPs; empty: any)</label><input id="addresses" name="addresses" maxlength="1000">
        <button type="submit">Make token</button></form></section>
        </main></body></html>
        """)

    /// `/admin/event-sources`, with a just-made token shown once.
    static func sources(
        _ env: WebEnvironment, _ context: WebContext, token: (source: String, token: String)?, message: String?,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        guard let service = env.events else { return EventRoutes.unavailable() }
        let csrf = context.session?.csrfToken ?? ""
        let list = try service.store.sources()
        var model: [String: Any] = [
            "building": env.building, "csrf": csrf, "noSources": list.isEmpty,
            "sources": list.map { s -> [String: Any] in
                [
                    "name": s.name, "types": s.types.isEmpty ? "any" : s.types.joined(separator: ", "),
                    "doors": s.doors.isEmpty ? "any" : s.doors.joined(separator: ", "),
                    "state": s.revokedMicros == nil ? "\(s.liveTokens)" : "revoked", "live": s.revokedMicros == nil,
                    "csrf": csrf,
                ]
            },
        ]
        if let token {
            model["token"] = token.token
            model["source"] = token.source
        }
        if let message { model["message"] = message }
        return WebResponses.html(Pages.render(sourcesTemplate, model), status: status)
    }

    /// `POST /admin/event-sources` (form: name, types, doors): makes the source or rotates its token; audited.
    static func addSource(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        guard let service = env.events else { return EventRoutes.unavailable() }
        let form = FormFields.parse(String(buffer: try await request.body.collect(upTo: context.maxUploadSize)))
        let input: EventSourceInput
        do {
            input = try EventSourceInput(
                name: form["name"] ?? "", types: form["types"], doors: form["doors"], addresses: form["addresses"])
        } catch {
            return try await sources(env, context, token: nil, message: error.message, status: .badRequest)
        }
        let token = try service.store.addSource(
            input.name, types: input.types, doors: input.doors, addresses: input.addresses, now: env.clocks.utcNow())
        try await env.audit.record(
            actor: context.user?.name ?? "-", address: context.remoteAddress, action: "eventsource.token",
            object: input.name, details: input.summary)
        return try await sources(env, context, token: (input.name, token), message: nil)
    }

    /// `POST /admin/event-sources/{name}/revoke`: revokes the source and its tokens; audited.
    static func revokeSource(_ env: WebEnvironment, _ context: WebContext) async throws -> Response {
        guard let service = env.events else { return EventRoutes.unavailable() }
        let name = context.parameters.get("name") ?? ""
        guard try service.store.revokeSource(name, now: env.clocks.utcNow()) else {
            return try await sources(env, context, token: nil, message: "No live source '\(name)'.", status: .notFound)
        }
        try await env.audit.record(
            actor: context.user?.name ?? "-", address: context.remoteAddress, action: "eventsource.revoke",
            object: name)
        return Response(status: .seeOther, headers: [.location: "/admin/event-sources"])
    }
}

/// What an admin typed for a new event source (the page and `hallwatchctl event-source add`), checked.
public struct EventSourceInput: Sendable, Equatable {
    /// The source's name: 1–64 of `[A-Za-z0-9._:/-]` (its events' CloudEvents `source`), not starting with
    /// `onvif:` (reserved for the box's own ONVIF subscriptions).
    public var name: String
    /// Types its tokens may send; `nil`: any.
    public var types: [String]?
    /// Doors its events may name; `nil`: any.
    public var doors: [String]?
    /// Client IP addresses its tokens may send from; `nil`: any.
    public var addresses: [String]?

    /// A refused input.
    public struct Refusal: Error, Sendable {
        public let message: String
    }

    /// Checks the fields; `types`, `doors` and `addresses` are comma-separated (empty: any).
    /// - Throws: ``Refusal`` naming the field.
    public init(name: String, types: String?, doors: String?, addresses: String? = nil) throws(Refusal) {
        guard (1...64).contains(name.count),
            name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._:/-".contains($0)) })
        else { throw Refusal(message: "A source name is 1–64 letters, digits and . _ : / -.") }
        // `onvif:<device>` names the box's own ONVIF subscriptions (events over the bus, never over HTTPS): a
        // token for such a name would let an HTTP client speak as a door controller the box subscribes to.
        guard !name.lowercased().hasPrefix("onvif:") else {
            throw Refusal(message: "Names starting with onvif: are the box's own ONVIF subscriptions; choose another.")
        }
        self.name = name
        func list(_ text: String?) -> [String]? {
            let items = (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                .filter { !$0.isEmpty }
            return items.isEmpty ? nil : items
        }
        self.types = list(types)
        self.doors = list(doors)
        self.addresses = list(addresses)
        for a in self.addresses ?? [] {
            var v4 = in_addr()
            var v6 = in6_addr()
            guard inet_pton(AF_INET, a, &v4) == 1 || inet_pton(AF_INET6, a, &v6) == 1 else {
                throw Refusal(message: "'\(a)' is not an IP address.")
            }
        }
        for t in self.types ?? [] where !EventTypes.isValid(t) {
            throw Refusal(message: "'\(t)' is not an event type (a normalised one or x.<vendor>.<name>).")
        }
        for d in self.doors ?? [] where CameraID(d) == nil {
            throw Refusal(message: "'\(d)' is not a door id.")
        }
        guard (self.types?.count ?? 0) <= 32, (self.doors?.count ?? 0) <= 64, (self.addresses?.count ?? 0) <= 16 else {
            throw Refusal(message: "At most 32 types, 64 doors and 16 addresses.")
        }
    }

    /// `types=…; doors=…; addresses=…` for the audit log.
    public var summary: String {
        "types=\(types?.joined(separator: ",") ?? "any"); doors=\(doors?.joined(separator: ",") ?? "any"); "
            + "addresses=\(addresses?.joined(separator: ",") ?? "any")"
    }
}

extension UTCMicros {
    /// A time this code wrote with `iso8601` (the store's own text); the epoch if it is not one.
    static func parseStored(_ text: String) -> UTCMicros { ISO8601.parse(text) ?? UTCMicros(0) }
}
