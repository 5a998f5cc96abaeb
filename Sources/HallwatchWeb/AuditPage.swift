import Foundation
import GRDB
import HallwatchCore
import Hummingbird
import Mustache
import NIOCore

/// What the audit page and its CSV download select: a time range and exact actor, action and camera.
public struct AuditFilter: Sendable, Equatable {
    /// From (inclusive), UTC.
    public var from: UTCMicros?
    /// To (exclusive), UTC.
    public var to: UTCMicros?
    /// The actor, exactly (`admin`, `pruner`, `-`).
    public var actor: String?
    /// The action, exactly (`login.failure`), or a prefix ending in `.` (`login.`).
    public var action: String?
    /// A camera named in the entry's object (one of its comma-separated ids).
    public var camera: String?
    /// Cameras whose entries are left out (a user limited to camera groups: the configured cameras outside
    /// them). In the query, so the row limit counts only entries the user may see.
    public var hiddenCameras: Set<String> = []

    public init(
        from: UTCMicros? = nil, to: UTCMicros? = nil, actor: String? = nil, action: String? = nil,
        camera: String? = nil
    ) {
        self.from = from
        self.to = to
        self.actor = actor
        self.action = action
        self.camera = camera
    }

    /// The filter of a query string's fields `from`, `to` (the building's local time as `YYYY-MM-DDTHH:MM`, or
    /// ISO 8601 with `Z`), `actor`, `action`, `camera`; empty fields are absent.
    /// - Returns: the filter, or the text of what is wrong.
    static func parse(_ fields: [String: String], time: BuildingTime) -> Result<AuditFilter, AuditFilterError> {
        func value(_ k: String) -> String? {
            guard let v = fields[k]?.trimmingCharacters(in: .whitespaces), !v.isEmpty else { return nil }
            return String(v.prefix(AuditLog.maxFieldBytes))
        }
        func instant(_ k: String) -> Result<UTCMicros?, AuditFilterError> {
            guard let v = value(k) else { return .success(nil) }
            if let t = ISO8601.parse(v) ?? time.parseLocal(v) { return .success(t) }
            return .failure(AuditFilterError(message: "'\(k)' is not a date and time (YYYY-MM-DDTHH:MM)."))
        }
        var f = AuditFilter(actor: value("actor"), action: value("action"), camera: value("camera"))
        switch (instant("from"), instant("to")) {
        case (.success(let a), .success(let b)):
            f.from = a
            f.to = b
        case (.failure(let e), _), (_, .failure(let e)): return .failure(e)
        }
        return .success(f)
    }

    /// The SQL condition and its arguments.
    var condition: (sql: String, arguments: StatementArguments) {
        var clauses = ["1"]
        var args: [(any DatabaseValueConvertible)?] = []
        if let from {
            clauses.append("timeMicros >= ?")
            args.append(from.micros)
        }
        if let to {
            clauses.append("timeMicros < ?")
            args.append(to.micros)
        }
        if let actor {
            clauses.append("actor = ?")
            args.append(actor)
        }
        if let action {
            if action.hasSuffix(".") {
                clauses.append("substr(action, 1, ?) = ?")
                args.append(action.count)
            } else {
                clauses.append("action = ?")
            }
            args.append(action)
        }
        if let camera {
            // instr, not LIKE: `_` in a camera id is not a wildcard.
            clauses.append("instr(',' || object || ',', ',' || ? || ',') > 0")
            args.append(camera)
        }
        for hidden in hiddenCameras.sorted() {
            clauses.append("instr(',' || object || ',', ',' || ? || ',') = 0")
            args.append(hidden)
        }
        return (clauses.joined(separator: " AND "), StatementArguments(args))
    }
}

/// A filter that cannot be read (shown on the page, 400).
struct AuditFilterError: Error, Equatable {
    var message: String
}

extension AuditLog {
    /// The entries `filter` selects, newest first, at most `limit`, and how many there are in all.
    public func search(_ filter: AuditFilter, limit: Int) async throws -> (entries: [AuditEntry], total: Int) {
        let (sql, arguments) = filter.condition
        return try await database.queue.read { db in
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit WHERE \(sql)", arguments: arguments) ?? 0
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM audit WHERE \(sql) ORDER BY seq DESC LIMIT ?",
                arguments: arguments + [limit])
            return (rows.map(Self.entry), total)
        }
    }

    static func entry(_ row: Row) -> AuditEntry {
        AuditEntry(
            seq: row["seq"], timeMicros: row["timeMicros"], actor: row["actor"], address: row["address"],
            action: row["action"], object: row["object"], details: row["details"], previousHash: row["previousHash"],
            hash: row["hash"])
    }
}

/// `GET /audit` (the page) and `GET /audit.csv` (the download): building-admin and up. Each view and download
/// is itself audited after it is read (`auditlog.view`, `auditlog.export`, with the filter). A user limited to camera groups sees no
/// entry naming a configured camera outside them.
enum AuditPage {
    /// Most rows on the page (newest first); the CSV has every match up to ``maxCSVRows``.
    static let maxPageRows = 500
    /// Most rows in one download.
    static let maxCSVRows = 100_000

    static func filterFields(_ request: Request) -> [String: String] {
        FormFields.parse(String(request.uri.query?.prefix(4096) ?? ""))
    }

    /// Entries a camera-group-limited user may not see: any object part that is a configured camera outside
    /// the user's groups.
    /// The configured cameras outside a camera-group-limited user's groups (empty for everyone else).
    static func hidden(_ env: WebEnvironment, _ context: WebContext) -> Set<String> {
        guard let user = context.user, let visible = env.settings.visibleCameras(for: user) else { return [] }
        let configured = Set(env.status.snapshot(now: env.clocks.utcNow()).cameras.map(\.camera.rawValue))
        return configured.subtracting(visible.map(\.rawValue))
    }

    static func scoped(_ entries: [AuditEntry], _ env: WebEnvironment, _ context: WebContext) -> [AuditEntry] {
        guard let user = context.user, let visible = env.settings.visibleCameras(for: user) else { return entries }
        let configured = Set(env.status.snapshot(now: env.clocks.utcNow()).cameras.map(\.camera.rawValue))
        let seen = Set(visible.map(\.rawValue))
        return entries.filter { e in
            !e.object.split(separator: ",").contains { configured.contains(String($0)) && !seen.contains(String($0)) }
        }
    }

    static func describe(_ f: AuditFilter) -> String {
        var parts: [String] = []
        if let v = f.from { parts.append("from \(v.iso8601)") }
        if let v = f.to { parts.append("to \(v.iso8601)") }
        if let v = f.actor { parts.append("actor \(v)") }
        if let v = f.action { parts.append("action \(v)") }
        if let v = f.camera { parts.append("camera \(v)") }
        return parts.isEmpty ? "all" : parts.joined(separator: ", ")
    }

    static func page(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        let fields = filterFields(request)
        var model: [String: Any] = [
            "building": env.building, "user": context.user?.displayName ?? "", "csrf": context.session?.csrfToken ?? "",
            "zone": env.time.identifier,
        ]
        for k in ["from", "to", "actor", "action", "camera"] { model[k] = fields[k] ?? "" }
        switch AuditFilter.parse(fields, time: env.time) {
        case .failure(let e):
            model["message"] = e.message
            return WebResponses.html(Pages.render(Pages.audit, model), status: .badRequest)
        case .success(var filter):
            filter.hiddenCameras = hidden(env, context)
            let (found, total) = try await env.audit.search(filter, limit: maxPageRows)
            try await env.audit.record(
                actor: context.user?.name ?? "-", address: context.remoteAddress, action: "auditlog.view",
                details: describe(filter))
            let entries = scoped(found, env, context)
            model["entries"] = entries.map { e -> [String: Any] in
                let t = UTCMicros(e.timeMicros)
                return [
                    "seq": "\(e.seq)", "utc": t.iso8601, "local": env.time.format(t), "actor": e.actor,
                    "address": e.address, "action": e.action, "object": e.object, "details": e.details,
                ]
            }
            model["none"] = entries.isEmpty
            model["count"] = "\(entries.count)"
            model["total"] = "\(total)"
            model["more"] = total > found.count
            model["query"] = request.uri.query.map { "?" + $0.prefix(4096) } ?? ""
            return WebResponses.html(Pages.render(Pages.audit, model))
        }
    }

    static func csv(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        var filter: AuditFilter
        switch AuditFilter.parse(filterFields(request), time: env.time) {
        case .failure(let e): return WebResponses.problem(.badRequest, "audit.filter", e.message)
        case .success(let f): filter = f
        }
        filter.hiddenCameras = hidden(env, context)
        let (found, _) = try await env.audit.search(filter, limit: maxCSVRows)
        try await env.audit.record(
            actor: context.user?.name ?? "-", address: context.remoteAddress, action: "auditlog.export",
            details: describe(filter))
        let entries = scoped(found, env, context).reversed()
        let name =
            "audit-\(env.facts.box)-\(env.clocks.utcNow().iso8601.prefix(19).replacingOccurrences(of: ":", with: "")).csv"
        return Response(
            status: .ok,
            headers: [
                .contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"\(name)\"",
            ],
            body: .init(byteBuffer: ByteBuffer(string: AuditLog.csv(Array(entries)))))
    }
}

extension Pages {
    // swift-format-ignore
    static let audit = try! MustacheTemplate(string: head + """
        <title>Audit log — {{building}}</title></head>
        <body>
        <header><h1><a href="/">{{building}}</a>: audit log</h1>
        <form method="post" action="/logout"><span>{{user}}</span>
        <input type="hidden" name="csrf" value="{{csrf}}"><button type="submit">Sign out</button></form>
        </header>
        <main>
        <form method="get" action="/audit" class="filter" aria-label="Filter the audit log">
        <div><label for="from">From ({{zone}})</label><input id="from" name="from" type="datetime-local" value="{{from}}"></div>
        <div><label for="to">To ({{zone}})</label><input id="to" name="to" type="datetime-local" value="{{to}}"></div>
        <div><label for="actor">Actor</label><input id="actor" name="actor" value="{{actor}}" maxlength="64"></div>
        <div><label for="action">Action</label><input id="action" name="action" value="{{action}}" maxlength="64" placeholder="login. or login.failure"></div>
        <div><label for="camera">Camera</label><input id="camera" name="camera" value="{{camera}}" maxlength="64"></div>
        <div><button type="submit">Filter</button></div>
        </form>
        {{#message}}<p class="error" role="alert">{{message}}</p>{{/message}}
        {{^message}}<p>{{count}} of {{total}} entries{{#more}} (the newest {{count}}; the download has them all){{/more}}.
        <a id="download" href="/audit.csv{{query}}" download>Download CSV</a> (times in UTC)</p>
        <table id="audit"><thead><tr><th scope="col">#</th><th scope="col">Time</th><th scope="col">Actor</th>
        <th scope="col">Address</th><th scope="col">Action</th><th scope="col">Object</th><th scope="col">Details</th></tr></thead>
        <tbody>{{#entries}}<tr><th scope="row" data-label="#">{{seq}}</th>
        <td data-label="Time"><time datetime="{{utc}}" title="{{utc}}">{{local}}</time></td>
        <td data-label="Actor">{{actor}}</td><td data-label="Address">{{address}}</td><td data-label="Action">{{action}}</td>
        <td data-label="Object">{{object}}</td><td data-label="Details">{{details}}</td></tr>{{/entries}}
        {{#none}}<tr><td colspan="7">No entry matches.</td></tr>{{/none}}</tbody></table>{{/message}}
        </main></body></html>
        """)
}
