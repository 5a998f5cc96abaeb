import Foundation
import HTTPTypes
import HallwatchCore
import Hummingbird
import NIOCore

/// The handlers of door and alarm events (issue 16): the contract's ingest and cursor (event-source tokens),
/// the JSON lists for the timeline and the map, and the two pages (``EventPages``).
enum EventRoutes {
    /// `application/cloudevents+json`: one event (CloudEvents JSON format §4).
    static let singleType = "application/cloudevents+json"
    /// `application/cloudevents-batch+json`: a JSON array of events (CloudEvents JSON format §4.2).
    static let batchType = "application/cloudevents-batch+json"
    /// Most bytes of a single event's request body.
    static let maxSingleBytes = 64 << 10
    /// Deepest JSON nesting accepted.
    static let maxDepth = 32

    static func unavailable() -> Response {
        WebResponses.problem(.serviceUnavailable, "events.unavailable", "Door and alarm events are not set up here.")
    }

    static func problem(_ r: EventRefusal) -> Response {
        WebResponses.problem(HTTPResponse.Status(code: r.status), r.code, r.message)
    }

    /// `POST /api/v1/events`: one event (201 stored, 200 identical repeat with the stored receipt, 409
    /// conflict), or a batch of at most 500 (200 with one result per event, in order). 400 bad JSON or event,
    /// 403 another source's event or out of the token's bounds, 413 too large, 415 another media type, 429
    /// over the source's rate (`Retry-After` seconds).
    static func post(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        guard let events = env.events, let grant = context.eventGrant else { return unavailable() }
        let type = request.headers[.contentType]?.split(separator: ";").first.map {
            $0.trimmingCharacters(in: .whitespaces).lowercased()
        }
        guard let type, type == singleType || type == batchType else {
            return WebResponses.problem(
                .unsupportedMediaType, "events.mediaType",
                "Send \(singleType) (one event) or \(batchType) (a list of at most \(events.limits.maxBatch)).")
        }
        let batch = type == batchType
        let limit = batch ? events.limits.maxBatchBytes : maxSingleBytes
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            return tooLarge(limit)
        }
        let body: ByteBuffer
        do { body = try await request.body.collect(upTo: limit) } catch { return tooLarge(limit) }
        let bytes = body.readableBytesView
        let value: JSONValue
        do { value = try JSONValue.eventDocument(bytes, maxDepth: maxDepth) } catch { return problem(error) }
        let items: [JSONValue]
        if batch {
            guard case .array(let list) = value, !list.isEmpty, list.count <= events.limits.maxBatch else {
                return WebResponses.problem(
                    .badRequest, "events.invalid", "A batch is a JSON list of 1–\(events.limits.maxBatch) events.")
            }
            items = list
        } else {
            items = [value]
        }
        if let wait = events.admit(source: grant.source.name, count: items.count) {
            var r = WebResponses.problem(
                .tooManyRequests, "events.rate", "Too many events from \(grant.source.name); retry in \(wait) s.")
            r.headers[.retryAfter] = "\(wait)"
            return r
        }
        let answers = try await events.ingest(items, grant: grant, address: context.remoteAddress)
        if batch {
            return try WebResponses.json(BatchAnswer(results: answers.map(BatchAnswer.Result.init)))
        }
        let a = answers[0]
        switch a.status {
        case 200, 201:
            var r = try WebResponses.json(a.receipt!)
            r.status = HTTPResponse.Status(code: a.status)
            return r
        case 409:
            var r = try WebResponses.json(
                ConflictAnswer(error: "events.conflict", message: a.refusal!.message, stored: a.receipt!))
            r.status = .conflict
            return r
        default: return problem(a.refusal!)
        }
    }

    static func tooLarge(_ limit: Int) -> Response {
        WebResponses.problem(
            .contentTooLarge, "events.tooLarge", "The body is larger than \(limit) bytes (data.raw: at most 16 KiB).")
    }

    /// A batch's answer: one result per event, in order.
    struct BatchAnswer: Codable {
        struct Result: Codable {
            var status: Int
            var receipt: EventReceipt?
            var error: String?
            var message: String?
            init(_ a: EventService.Answer) {
                status = a.status
                receipt = a.receipt
                error = a.refusal?.code
                message = a.refusal?.message
            }
        }
        var results: [Result]
    }

    /// A conflict's answer: the refusal and the receipt of what was stored first.
    struct ConflictAnswer: Codable {
        var error: String
        var message: String
        var stored: EventReceipt
    }

    /// `GET /api/v1/sources/{id}/cursor`: where the token's own source resumes (another source's: 403).
    static func cursor(_ env: WebEnvironment, _ context: WebContext) async throws -> Response {
        guard let events = env.events, let grant = context.eventGrant else { return unavailable() }
        guard context.parameters.get("id") == grant.source.name else {
            return WebResponses.problem(
                .forbidden, "events.source", "This token belongs to source '\(grant.source.name)'.")
        }
        return try WebResponses.json(try events.cursor(source: grant.source.name))
    }

    // MARK: - lists for people's pages

    /// The cameras the user may see; `nil`: all.
    static func visible(_ env: WebEnvironment, _ context: WebContext) -> Set<String>? {
        context.user.flatMap { env.settings.visibleCameras(for: $0) }.map { Set($0.map(\.rawValue)) }
    }

    /// `events` cut to what a user limited to camera groups may see: only events with a camera they see,
    /// without the others.
    static func scoped(_ events: [StoredEvent], visible: Set<String>?) -> [StoredEvent] {
        guard let visible else { return events }
        return events.compactMap { e in
            guard e.cameras.contains(where: visible.contains) else { return nil }
            var e = e
            e.cameras = e.cameras.filter(visible.contains)
            e.directCameras = e.directCameras.filter(visible.contains)
            return e
        }
    }

    /// A list query from the URL: `from`, `to` (RFC 3339 with an offset; default the last 24 h to one hour
    /// ahead), `camera`, `door`, `type`, `limit` (1–1000, default 500).
    static func query(_ request: Request, now: UTCMicros) throws(EventRefusal) -> EventStore.Query {
        let q = FormFields.parse(String(request.uri.query?.prefix(4096) ?? ""))
        func time(_ name: String, _ fallback: UTCMicros) throws(EventRefusal) -> UTCMicros {
            guard let text = q[name], !text.isEmpty else { return fallback }
            do {
                return try TimeExpression.parseStrict(text, now: now)
            } catch {
                throw EventRefusal(400, "events.filter", "\(name): \(error)")
            }
        }
        let from = try time("from", now.adding(micros: -86_400_000_000))
        let to = try time("to", now.adding(micros: 3_600_000_000))
        guard from < to else { throw EventRefusal(400, "events.filter", "from must be before to") }
        func text(_ name: String) -> String? {
            q[name].flatMap { $0.isEmpty || $0.utf8.count > 140 ? nil : $0 }
        }
        var limit = 500
        if let l = q["limit"] {
            guard let n = Int(l), (1...1000).contains(n) else {
                throw EventRefusal(400, "events.filter", "limit must be 1–1000")
            }
            limit = n
        }
        var query = EventStore.Query(
            from: from, to: to, camera: text("camera"), door: text("door"), type: text("type"), limit: limit)
        if let b = q["before"], !b.isEmpty {
            let parts = b.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, b.utf8.count <= 40, let t = Int64(parts[0]), let seq = Int64(parts[1]) else {
                throw EventRefusal(400, "events.filter", "before must be TIME:SEQ, as the page's Older link gives it")
            }
            query.before = EventStore.Query.Position(timeMicros: t, seq: seq)
        }
        return query
    }

    /// `GET /api/v1/events`: the stored events, newest first, cut to the user's cameras (the status page's
    /// server-sent events have their own route, `GET /api/v1/status/events`).
    static func list(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        guard let events = env.events else { return unavailable() }
        let q: EventStore.Query
        do { q = try query(request, now: env.clocks.utcNow()) } catch { return problem(error) }
        let visible = visible(env, context)
        if let camera = q.camera, let visible, !visible.contains(camera) {
            return WebResponses.problem(.notFound, "events.camera", "No such camera.")
        }
        var scope = q
        scope.anyCamera = visible
        return try WebResponses.json(EventList(events: scoped(try events.store.events(scope), visible: visible)))
    }

    /// The JSON list's shape.
    struct EventList: Codable {
        var events: [StoredEvent]
    }

    /// `GET /api/v1/doors`: each configured door with its state and newest event (doors whose cameras the user
    /// may not see are left out for a user limited to camera groups).
    static func doors(_ env: WebEnvironment, _ context: WebContext) async throws -> Response {
        guard let events = env.events else { return unavailable() }
        var doors = try events.doorViews()
        if let visible = visible(env, context) {
            doors = doors.filter { d in (d.direct + d.indirect).contains(where: visible.contains) }
        }
        return try WebResponses.json(DoorList(doors: doors))
    }

    struct DoorList: Codable {
        var doors: [DoorView]
    }
}
