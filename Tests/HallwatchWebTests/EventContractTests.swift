import Foundation
import HTTPTypes
import HallwatchConfig
import HallwatchCore
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

@testable import HallwatchWeb

/// What the event service published and which holds it placed.
final class EventSink: Sendable {
    struct Message: Sendable {
        var topic: String
        var payload: String
        var retain: Bool
    }
    let messages = Mutex<[Message]>([])
    let holds = Mutex<[(cameras: [String], from: UTCMicros, to: UTCMicros, reason: String)]>([])
    func published(_ prefix: String) -> [Message] { messages.withLock { $0.filter { $0.topic.hasPrefix(prefix) } } }
}

/// A harness with door and alarm events: a real SQLite store file (reopened to test restarts), a door `east`
/// (lobby direct, gym indirect, 5 s pre-roll, 20 s post-roll, holds on door.forced), sources `onguard` and
/// `axis` with one token each.
struct EventHarness {
    var h: Harness
    let sink = EventSink()
    let path: String
    var onguard = ""
    var axis = ""

    static let door: DoorConfig = {
        var d = DoorConfig(id: "east")
        d.name = "East entrance"
        d.refs = [DoorReference(source: "onguard", ref: "panel1/reader3")]
        d.direct = [CameraID("lobby")!]
        d.indirect = [CameraID("gym")!]
        d.preRoll = .seconds(5)
        d.postRoll = .seconds(20)
        d.holdOn = ["door.forced"]
        return d
    }()

    init(limits: EventService.Limits = EventService.Limits(), path: String? = nil) throws {
        h = try Harness()
        self.path = path ?? FileManager.default.temporaryDirectory.path + "/hw-events-\(UUID().uuidString).sqlite"
        try attach(limits: limits)
        onguard = try h.env.events!.store.addSource(
            "onguard", types: nil, doors: nil, addresses: nil, now: h.clocks.utcNow())
        axis = try h.env.events!.store.addSource(
            "axis", types: ["door.opened", "door.closed"], doors: nil, addresses: nil, now: h.clocks.utcNow())
    }

    /// (Re)opens the store at ``path`` — a restart of the web as far as events go.
    mutating func attach(limits: EventService.Limits = EventService.Limits()) throws {
        let sink = sink
        h.env.events = EventService(
            store: try EventStore(path: path), doors: [Self.door], box: "box1", clocks: h.clocks, audit: h.env.audit,
            limits: limits,
            publish: { topic, payload, retain in
                sink.messages.withLock {
                    $0.append(.init(topic: topic, payload: String(decoding: payload, as: UTF8.self), retain: retain))
                }
            },
            placeHold: { cameras, from, to, reason, _ in
                sink.holds.withLock { $0.append((cameras.map(\.rawValue), from, to, reason)) }
                return cameras.map { "h-\($0)" }
            })
    }

    /// The store's bytes, its write-ahead log included, as Latin-1 text (to look for what must not be there).
    func storeBytes() -> String {
        [path, path + "-wal"].compactMap { FileManager.default.contents(atPath: $0) }
            .map { String(decoding: $0, as: Unicode.ASCII.self) }.joined()
    }

    /// A CloudEvent of source `source` at `time` (default: the clock, ISO 8601 UTC).
    func event(
        id: String, source: String = "onguard", type: String = "access.denied", time: String? = nil,
        extra: String = ""
    ) -> String {
        let t = time ?? h.clocks.utcNow().iso8601
        return #"{"specversion":"1.0","id":"\#(id)","source":"\#(source)","type":"\#(type)","time":"\#(t)"\#(extra)}"#
    }
}

func bearer(_ token: String, batch: Bool = false) -> HTTPFields {
    [
        .authorization: "Bearer \(token)",
        .contentType: batch ? "application/cloudevents-batch+json" : "application/cloudevents+json",
    ]
}

func text(_ r: TestResponse) -> String { String(buffer: r.body) }

func json(_ r: TestResponse) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any])
}

@Suite("hallwatch-web: door and alarm events, the contract")
struct EventContractTests {
    @Test(
        "401 without a live token; 201 stored, 200 identical repeat with the same body, 409 conflict kept and audited")
    func tokensAndIdempotency() async throws {
        let e = try EventHarness()
        try await e.h.app().test(.live) { client in
            let one = e.event(id: "a1")
            for auth in ["", "Bearer nope", "Basic \(e.onguard)"] {
                var headers = bearer(e.onguard)
                headers[.authorization] = auth.isEmpty ? nil : auth
                try await client.execute(
                    uri: "/api/v1/events", method: .post, headers: headers, body: .init(string: one)
                ) {
                    #expect($0.status == .unauthorized)
                    #expect($0.headers[.wwwAuthenticate] == "Bearer")
                    #expect(text($0).contains("events.token"))
                }
            }
            let first = try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(e.onguard), body: .init(string: one)
            ) { r -> String in
                #expect(r.status == .created)
                let j = try json(r)
                #expect(j["id"] as? String == "a1" && j["source"] as? String == "onguard" && j["seq"] as? Int == 1)
                #expect(j["late"] as? Bool == false)
                return text(r)
            }
            e.h.clocks.advance(seconds: 5)
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(e.onguard), body: .init(string: one)
            ) {
                #expect($0.status == .ok)
                #expect(text($0) == first)
            }
            let other = one.replacingOccurrences(of: "access.denied", with: "access.granted")
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(e.onguard), body: .init(string: other)
            ) {
                #expect($0.status == .conflict)
                let j = try json($0)
                #expect(j["error"] as? String == "events.conflict")
                #expect((j["stored"] as? [String: Any])?["seq"] as? Int == 1)
            }
        }
        #expect(try e.h.env.events!.store.conflictCount() == 1)
        let stored = try e.h.env.events!.store.events(
            .init(from: UTCMicros(0), to: e.h.clocks.utcNow().adding(micros: 1)))
        #expect(stored.map(\.type) == ["access.denied"])
        let audit = try await e.h.env.audit.entries().filter { $0.action == "event.conflict" }
        #expect(audit.count == 1 && audit[0].object == "onguard/a1" && audit[0].actor == "source:onguard")
        #expect(audit[0].address == "127.0.0.1")
    }

    @Test("403 for another source's event and outside the token's types; 400 naive time, bad JSON; 415 other type")
    func refusals() async throws {
        let e = try EventHarness()
        try await e.h.app().test(.router) { client in
            func post(_ token: String, _ body: String, type: String? = nil) async throws -> (
                HTTPResponse.Status, String
            ) {
                var headers = bearer(token)
                if let type { headers[.contentType] = type }
                return try await client.execute(
                    uri: "/api/v1/events", method: .post, headers: headers, body: .init(string: body)
                ) {
                    ($0.status, text($0))
                }
            }
            var (status, body) = try await post(e.axis, e.event(id: "x", source: "onguard", type: "door.opened"))
            #expect(status == .forbidden && body.contains("events.source") && body.contains("belongs to source 'axis'"))
            (status, body) = try await post(e.axis, e.event(id: "x", source: "axis", type: "door.forced"))
            #expect(status == .forbidden && body.contains("events.scope"))
            (status, body) = try await post(e.onguard, e.event(id: "x", time: "2027-01-15T08:00:00"))
            #expect(status == .badRequest && body.contains("events.naiveTime"))
            (status, body) = try await post(e.onguard, e.event(id: "x", time: "2027-01-15 08:00:00.5"))
            #expect(status == .badRequest && body.contains("events.naiveTime"))
            // A time far ahead of the box's clock is refused: it would move the cursor past every real event.
            (status, body) = try await post(e.onguard, e.event(id: "x", time: "9999-12-31T23:59:59Z"))
            #expect(status == .badRequest && body.contains("events.future"), "\(body)")
            (status, body) = try await post(e.onguard, "{\"specversion\":\"1.0\",")
            #expect(status == .badRequest && body.contains("events.invalid"))
            (status, body) = try await post(
                e.onguard, String(repeating: "[", count: 100) + String(repeating: "]", count: 100))
            #expect(status == .badRequest && body.contains("events.invalid"))
            (status, body) = try await post(e.onguard, e.event(id: "x", type: "door.exploded"))
            #expect(status == .badRequest && body.contains("door.exploded"))
            (status, body) = try await post(e.onguard, e.event(id: "x", type: "x.lenel.alarm-acknowledged"))
            #expect(status == .created)
            (status, body) = try await post(e.onguard, e.event(id: "y"), type: "application/json")
            #expect(status == .unsupportedMediaType && body.contains("events.mediaType"))
            // A session cookie is no event-source token.
            let cookie = try #require(try await signIn(client, user: "admin"))
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: sameOrigin(cookie: cookie),
                body: .init(string: e.event(id: "z"))
            ) { #expect($0.status == .unauthorized) }
        }
    }

    @Test("413 for a raw vendor record over 16 KiB and for an oversized body; PINs and card numbers never stored")
    func sizesAndPrivacy() async throws {
        let e = try EventHarness()
        try await e.h.app().test(.router) { client in
            let big = String(repeating: "x", count: 16 << 10)
            let raw = e.event(id: "r1", extra: #","data":{"raw":{"text":"\#(big)"}}"#)
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(e.onguard), body: .init(string: raw)
            ) {
                #expect($0.status == .contentTooLarge)
                #expect(text($0).contains("events.tooLarge"))
            }
            let huge = e.event(id: "r2", extra: #","pad":"\#(String(repeating: "y", count: 70_000))""#)
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(e.onguard), body: .init(string: huge)
            ) {
                #expect($0.status == .contentTooLarge)
            }
            let secret = e.event(
                id: "p1",
                extra:
                    #","data":{"holder":"Jane Student","raw":{"Card_Number":"123456789","PIN":"4321","panel":"p1","nested":[{"cardNo":"99"}]}}"#
            )
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(e.onguard), body: .init(string: secret)
            ) {
                #expect($0.status == .created)
            }
        }
        let published = e.sink.published("hallwatch/v1/box1/events/access.denied")
        #expect(published.count == 1 && published[0].retain == false)
        let doc = published[0].payload
        #expect(doc.contains(#""panel":"p1""#))
        for gone in ["123456789", "4321", "\"99\"", "Jane", "Card_Number", "PIN"] {
            #expect(!doc.contains(gone), "\(gone)")
        }
        let file = e.storeBytes()
        #expect(!file.contains("123456789") && !file.contains("Jane Student") && file.contains("panel"))
    }

    @Test("400 events.duplicateKey for a name twice in one object, at any depth; 400 events.subject for no such door")
    func ambiguityAndUnknownSubjects() async throws {
        let e = try EventHarness()
        try await e.h.app().test(.router) { client in
            func post(_ body: String, batch: Bool = false) async throws -> (HTTPResponse.Status, [String: Any]) {
                try await client.execute(
                    uri: "/api/v1/events", method: .post, headers: bearer(e.onguard, batch: batch),
                    body: .init(string: body)
                ) { ($0.status, try json($0)) }
            }
            // Which type was meant? Foundation would keep one silently.
            let twice = e.event(id: "k1", type: "access.denied", extra: #","type":"access.granted""#)
            var (status, j) = try await post(twice)
            #expect(status == .badRequest && j["error"] as? String == "events.duplicateKey")
            #expect((j["message"] as? String)?.contains("'type'") == true)
            // The same name escaped, and a repeat deep in the vendor's record.
            (status, j) = try await post(e.event(id: "k2", extra: #","\u0073ubject":"east","subject":"east""#))
            #expect(
                status == .badRequest && j["message"] as? String != nil
                    && j["error"] as? String == "events.duplicateKey")
            (status, j) = try await post(e.event(id: "k3", extra: #","data":{"raw":{"a":[{"door":1, "door" :2}]}}"#))
            #expect(status == .badRequest && j["error"] as? String == "events.duplicateKey")
            // Equal names in different objects, and a string value that looks like a name, are fine.
            (status, j) = try await post(
                e.event(id: "k4", extra: #","data":{"raw":{"a":{"door":1},"b":{"door":2},"c":"door:"}}"#))
            #expect(status == .created)
            (status, j) = try await post(
                "[\(e.event(id: "k5")),\(e.event(id: "k6", extra: #","id":"k7""#))]", batch: true)
            #expect(status == .badRequest && j["error"] as? String == "events.duplicateKey")
            // A subject naming no door is refused (it would link no camera and place no hold); a configured one,
            // or an unknown vendor reference (a panel door without cameras), is stored.
            (status, j) = try await post(e.event(id: "s1", type: "door.forced", extra: #","subject":"eats""#))
            #expect(status == .badRequest && j["error"] as? String == "events.subject")
            #expect((j["message"] as? String)?.contains("'eats'") == true)
            (status, j) = try await post(e.event(id: "s2", type: "door.forced", extra: #","subject":"east""#))
            #expect(status == .created && j["door"] as? String == "east")
            (status, j) = try await post(e.event(id: "s3", type: "door.opened", extra: #","doorref":"panel9/reader1""#))
            #expect(status == .created && j["door"] == nil)
        }
        let stored = try e.h.env.events!.store.events(.init(from: UTCMicros(0), to: UTCMicros(Int64.max / 2)))
        #expect(Set(stored.map(\.id)) == ["k4", "s2", "s3"])
        #expect(e.sink.holds.withLock { $0.count } == 1)
        // The bus path (ONVIF subscribers) reads its documents the same way.
        let doc =
            #"{"specversion":"1.0","id":"o1","id":"o2","source":"onvif:x","type":"door.forced","time":"\#(e.h.clocks.utcNow().iso8601)"}"#
        let refusal = try await e.h.env.events!.ingestFromBus(
            topic: BusTopics(box: "box1").onvifEvents("x"), payload: Array(doc.utf8))
        #expect(refusal?.code == "events.duplicateKey")
    }

    @Test("429 with Retry-After over the source's rate; a batch of 500 is accepted, each event answered in order")
    func rateAndBatch() async throws {
        var limits = EventService.Limits()
        limits.ratePerSecond = 1000
        limits.burst = 600
        let e = try EventHarness(limits: limits)
        try await e.h.app().test(.router) { client in
            let batch = "[" + (0..<500).map { e.event(id: "b\($0)") }.joined(separator: ",") + "]"
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(e.onguard, batch: true),
                body: .init(string: batch)
            ) {
                #expect($0.status == .ok)
                let results = try #require(try json($0)["results"] as? [[String: Any]])
                #expect(results.count == 500)
                #expect(results.allSatisfy { $0["status"] as? Int == 201 })
                #expect((results[499]["receipt"] as? [String: Any])?["id"] as? String == "b499")
            }
            let over = "[" + (500..<700).map { e.event(id: "b\($0)") }.joined(separator: ",") + "]"
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(e.onguard, batch: true), body: .init(string: over)
            ) {
                #expect($0.status == .tooManyRequests)
                #expect($0.headers[.retryAfter] == "1")
                #expect(text($0).contains("events.rate"))
            }
            let tooMany = "[" + (0..<501).map { e.event(id: "c\($0)") }.joined(separator: ",") + "]"
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(e.onguard, batch: true),
                body: .init(string: tooMany)
            ) { #expect($0.status == .badRequest) }
            // Another source has its own bucket.
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(e.axis),
                body: .init(string: e.event(id: "o1", source: "axis", type: "door.opened"))
            ) { #expect($0.status == .created) }
        }
        #expect(try e.h.env.events!.cursor(source: "onguard").count == 500)
    }

    @Test("two times kept: a late event is stored and flagged; a source 3 s behind raises events.clockSkew")
    func lateAndSkew() async throws {
        let e = try EventHarness()
        try await e.h.app().test(.router) { client in
            let now = e.h.clocks.utcNow()
            let old = now.adding(micros: -3_600_000_000).iso8601
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(e.onguard),
                body: .init(string: e.event(id: "late", time: old))
            ) {
                #expect($0.status == .created)
                let j = try json($0)
                #expect(j["late"] as? Bool == true && j["time"] as? String == old)
                #expect(j["receivedAt"] as? String == now.iso8601)
            }
            #expect(e.sink.published("hallwatch/v1/box1/errors").isEmpty)
            for i in 0..<3 {
                let t = e.h.clocks.utcNow().adding(micros: -3_000_000).iso8601
                try await client.execute(
                    uri: "/api/v1/events", method: .post, headers: bearer(e.onguard),
                    body: .init(string: e.event(id: "s\(i)", time: t))
                ) { #expect($0.status == .created) }
                e.h.clocks.advance(seconds: 1)
            }
            let errors = e.sink.published("hallwatch/v1/box1/errors")
            #expect(errors.count == 1)
            #expect(errors.first?.payload.contains(#""code":"events.clockSkew""#) == true)
            try await client.execute(uri: "/api/v1/sources/onguard/cursor", method: .get, headers: bearer(e.onguard)) {
                #expect($0.status == .ok)
                let j = try json($0)
                #expect(j["count"] as? Int == 4 && j["lastId"] as? String == "s2")
                #expect(j["clockSkewAlarm"] as? Bool == true && j["clockSkewSeconds"] as? Double == 3)
            }
            try await client.execute(uri: "/api/v1/sources/onguard/cursor", method: .get, headers: bearer(e.axis)) {
                #expect($0.status == .forbidden)
            }
        }
    }

    @Test("the store survives a restart: a repeat after reopening answers 200 with the first body")
    func restart() async throws {
        var e = try EventHarness()
        let (token, event) = (e.onguard, e.event(id: "r"))
        let first = try await e.h.app().test(.router) { client in
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(token), body: .init(string: event)
            ) { text($0) }
        }
        try e.attach()
        try await e.h.app().test(.router) { client in
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(token), body: .init(string: event)
            ) {
                #expect($0.status == .ok)
                #expect(text($0) == first)
            }
        }
    }

    @Test(
        "door.forced at a configured door: hold over [t − pre-roll, t + post-roll] on its direct cameras, audited; door state retained"
    )
    func doorForcedHold() async throws {
        let e = try EventHarness()
        let t = e.h.clocks.utcNow().adding(micros: -1_000_000)
        try await e.h.app().test(.router) { client in
            let forced = e.event(id: "f1", type: "door.forced", time: t.iso8601, extra: #","doorref":"panel1/reader3""#)
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(e.onguard), body: .init(string: forced)
            ) {
                #expect($0.status == .created)
                let j = try json($0)
                #expect(j["door"] as? String == "east" && j["holds"] as? [String] == ["h-lobby"])
            }
            // A denied card at the same door holds nothing.
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(e.onguard),
                body: .init(string: e.event(id: "d1", extra: #","subject":"east""#))
            ) { #expect($0.status == .created) }
            let cookie = try #require(try await signIn(client, user: "office"))
            try await client.execute(
                uri: "/api/v1/events?camera=lobby&from=\(t.adding(micros: -1).iso8601)", method: .get,
                headers: cookieHeader(cookie)
            ) {
                #expect($0.status == .ok)
                let list = try #require(try json($0)["events"] as? [[String: Any]])
                #expect(list.map { $0["id"] as? String } == ["d1", "f1"])
                #expect(list[1]["directCameras"] as? [String] == ["lobby"] && list[1]["preRollSeconds"] as? Double == 5)
                #expect(list[1]["holds"] as? [String] == ["h-lobby"])
            }
            // Without a query it is still the JSON list (the status stream lives at /api/v1/status/events).
            try await client.execute(uri: "/api/v1/events", method: .get, headers: cookieHeader(cookie)) {
                #expect($0.status == .ok && $0.headers[.contentType]?.hasPrefix("application/json") == true)
                let events = try json($0)["events"] as? [Any]
                #expect(events?.count == 2)
            }
            try await client.execute(uri: "/api/v1/doors", method: .get, headers: cookieHeader(cookie)) {
                let doors = try #require(try json($0)["doors"] as? [[String: Any]])
                #expect(doors.count == 1 && doors[0]["state"] as? String == "forced")
                #expect((doors[0]["lastEvent"] as? [String: Any])?["id"] as? String == "d1")
            }
            // The facilities user sees only the parking cameras: no door, no event.
            let lots = try #require(try await signIn(client, user: "facilities"))
            try await client.execute(uri: "/api/v1/events?type=door.forced", method: .get, headers: cookieHeader(lots))
            {
                let events = try json($0)["events"] as? [Any]
                #expect(events?.count == 0)
            }
            try await client.execute(uri: "/api/v1/events?camera=lobby", method: .get, headers: cookieHeader(lots)) {
                #expect($0.status == .notFound)
            }
        }
        let holds = e.sink.holds.withLock { $0 }
        #expect(holds.count == 1)
        #expect(holds.first?.cameras == ["lobby"])
        #expect(holds.first?.from == t.adding(micros: -5_000_000) && holds.first?.to == t.adding(micros: 20_000_000))
        #expect(holds.first?.reason == "door.forced at door east (onguard event f1)")
        let audited = try await e.h.env.audit.entries().filter { $0.action == "event.hold" }
        #expect(audited.count == 1 && audited[0].object == "lobby" && audited[0].details.hasPrefix("h-lobby "))
        // Give the door-state publication (a task) a moment.
        for _ in 0..<50 where e.sink.published("hallwatch/v1/box1/doors/east").count < 2 {
            try await Task.sleep(for: .milliseconds(20))
        }
        let states = e.sink.published("hallwatch/v1/box1/doors/east")
        #expect(states.count == 2 && states.allSatisfy(\.retain))
        #expect(states.allSatisfy { $0.payload.contains(#""state":"forced""#) })
    }

    @Test("tokens: two live while rotating, the third revokes the oldest; revoke ends them all")
    func rotation() async throws {
        let e = try EventHarness()
        let store = e.h.env.events!.store
        let now = e.h.clocks.utcNow()
        let second = try store.addSource("onguard", types: nil, doors: nil, addresses: nil, now: now)
        #expect(try store.grant(token: e.onguard) != nil && store.grant(token: second) != nil)
        let third = try store.addSource("onguard", types: nil, doors: nil, addresses: nil, now: now)
        #expect(try store.grant(token: e.onguard) == nil)
        #expect(try store.grant(token: second)?.source.name == "onguard" && store.grant(token: third) != nil)
        #expect(try store.sources().first { $0.name == "onguard" }?.liveTokens == 2)
        #expect(try store.revokeSource("onguard", now: now))
        #expect(try store.grant(token: second) == nil && store.grant(token: third) == nil)
        // Only hashes are stored.
        let file = e.storeBytes()
        #expect(!file.contains(third) && !file.contains(e.axis) && file.contains("onguard"))
        // Bound to addresses: 403 from any other.
        let bound = try store.addSource("panel", types: nil, doors: nil, addresses: ["10.9.9.9"], now: now)
        try await e.h.app().test(.router) { client in
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(bound),
                body: .init(string: e.event(id: "q", source: "panel"))
            ) {
                #expect($0.status == .forbidden && text($0).contains("events.address"))
            }
        }
    }

    @Test(
        "ONVIF events from the bus: stored as source onvif:<topic's id> at the door its DoorToken names; other types, topics and sources refused; a late door event does not turn the state back"
    )
    func onvifEventsFromTheBus() async throws {
        var e = try EventHarness()
        var door = EventHarness.door
        door.refs = [DoorReference(source: "onvif:ctl", ref: "Door1")]
        let sink = e.sink
        e.h.env.events = EventService(
            store: try EventStore(path: e.path), doors: [door], box: "box1", clocks: e.h.clocks, audit: e.h.env.audit,
            publish: { topic, payload, retain in
                sink.messages.withLock {
                    $0.append(.init(topic: topic, payload: String(decoding: payload, as: UTF8.self), retain: retain))
                }
            })
        let events = try #require(e.h.env.events)
        let now = e.h.clocks.utcNow()
        func doc(_ id: String, _ type: String, _ source: String = "onvif:ctl", at t: UTCMicros) -> [UInt8] {
            Array(
                #"{"specversion":"1.0","id":"\#(id)","source":"\#(source)","type":"\#(type)","time":"\#(t.iso8601)","doorref":"Door1","data":{"topic":"Door/State/DoorAlarm"}}"#
                    .utf8)
        }
        let topic = "hallwatch/v1/box1/onvif-events/ctl"
        #expect(try await events.ingestFromBus(topic: topic, payload: doc("o1", "door.forced", at: now)) == nil)
        // The same message again (a repeated publication): an identical repeat, stored once.
        #expect(try await events.ingestFromBus(topic: topic, payload: doc("o1", "door.forced", at: now)) == nil)
        // Older, arriving later: stored, but the door stays forced.
        #expect(
            try await events.ingestFromBus(
                topic: topic, payload: doc("o2", "door.closed", at: now.adding(micros: -60_000_000))) == nil)
        // Another device's id in the document than in the topic; a type the subscriber never sends; another box.
        #expect(
            try await events.ingestFromBus(topic: topic, payload: doc("o3", "door.opened", "onvif:other", at: now))?
                .status == 403)
        #expect(
            try await events.ingestFromBus(topic: topic, payload: doc("o4", "panic", at: now))?.code == "events.scope")
        #expect(
            try await events.ingestFromBus(
                topic: "hallwatch/v1/box2/onvif-events/ctl", payload: doc("o5", "door.opened", at: now))?.status == 400)
        let stored = try events.store.events(.init(from: now.adding(micros: -3_600_000_000), to: now.adding(micros: 1)))
        #expect(stored.map(\.id) == ["o1", "o2"])
        #expect(stored.allSatisfy { $0.source == "onvif:ctl" && $0.door == "east" })
        let views = try events.doorViews()
        #expect(views.first?.state == "forced" && views.first?.lastEvent?.id == "o1")
        let states = sink.published("hallwatch/v1/box1/doors/east")
        #expect(states.count == 2 && states.allSatisfy { $0.payload.contains(#""state":"forced""#) })
    }
}
