import Foundation
import HallwatchCore
import Hummingbird
import HummingbirdTesting
import Testing

@testable import HallwatchWeb

/// A fresh user's findings about events, on a real SQLite file: a user limited to camera groups saw no events
/// at all once 500 newer ones concerned other cameras; events from year 0 were stored (201) and deleted by
/// retention a minute later; an HTTP source could take the name of an ONVIF device the box subscribes to.
@Suite("hallwatch-web: events a group-limited user sees, times the box cannot keep, reserved source names")
struct EventScopeTests {
    static let hour: Int64 = 3_600_000_000

    func document(_ e: EventHarness, _ id: String, camera: String, at t: UTCMicros) throws -> JSONValue {
        let doc = e.event(id: id, time: t.iso8601, extra: #","data":{"cameras":["\#(camera)"]}"#)
        return try JSONDecoder().decode(JSONValue.self, from: Data(doc.utf8))
    }

    @Test("the camera filter runs before the limit: one lobby event under 600 newer gym ones is found")
    func groupFilterBeforeLimit() async throws {
        let e = try EventHarness()
        let events = try #require(e.h.env.events)
        let grant = try #require(try events.store.grant(token: e.onguard))
        let now = e.h.clocks.utcNow()
        let mine = [try document(e, "mine", camera: "lobby", at: now.adding(micros: -2 * Self.hour))]
        #expect(try await events.ingest(mine, grant: grant, address: "127.0.0.1").map(\.status) == [201])
        for batch in 0..<2 {
            let gym = try (0..<300).map { i in
                try document(e, "gym-\(batch)-\(i)", camera: "gym", at: now.adding(micros: -Self.hour + Int64(i)))
            }
            let answers = try await events.ingest(gym, grant: grant, address: "127.0.0.1")
            #expect(answers.allSatisfy { $0.status == 201 })
        }
        var q = EventStore.Query(from: now.adding(micros: -24 * Self.hour), to: now.adding(micros: 1), limit: 500)
        #expect(try events.store.events(q).count == 500)
        #expect(!(try events.store.events(q).map(\.id).contains("mine")))
        q.anyCamera = ["lobby"]
        #expect(try events.store.events(q).map(\.id) == ["mine"])
        q.anyCamera = ["lobby", "gym"]
        #expect(try events.store.events(q).count == 500)
        q.anyCamera = []
        #expect(try events.store.events(q).isEmpty)
    }

    @Test("the events page of a user limited to the parking cameras lists neither the east door nor its events")
    func thePageShowsOnlyWhatTheUserSees() async throws {
        let e = try EventHarness()
        let t = e.h.clocks.utcNow().adding(micros: -1_000_000)
        try await e.h.app().test(.router) { client in
            try await client.execute(
                uri: "/api/v1/events", method: .post, headers: bearer(e.onguard),
                body: .init(string: e.event(id: "d1", time: t.iso8601, extra: #","subject":"east""#))
            ) { #expect($0.status == .created) }
            let office = try #require(try await signIn(client, user: "office"))
            try await client.execute(uri: "/events", method: .get, headers: cookieHeader(office)) {
                let page = String(buffer: $0.body)
                #expect($0.status == .ok)
                #expect(page.contains(#"<option value="east">East entrance</option>"#))
                #expect(page.contains(#"data-door="east""#))
            }
            let lots = try #require(try await signIn(client, user: "facilities"))
            try await client.execute(uri: "/events", method: .get, headers: cookieHeader(lots)) {
                let page = String(buffer: $0.body)
                #expect($0.status == .ok)
                #expect(!page.contains("East entrance"), "the door's name leaks to a user who sees none of its cameras")
                #expect(!page.contains(#"data-door="east""#))
                #expect(page.contains(#"<option value="">any</option>"#))
            }
        }
    }

    @Test("the events page shows 100 rows and links to the older ones; paging loses and repeats nothing at equal times")
    func thePagePages() async throws {
        let e = try EventHarness()
        let events = try #require(e.h.env.events)
        let grant = try #require(try events.store.grant(token: e.onguard))
        let now = e.h.clocks.utcNow()
        // 250 events, three to a second (equal times across a page boundary are ordered by seq).
        let docs = try (0..<250).map { i in
            try document(e, "p\(i)", camera: "lobby", at: now.adding(micros: -Self.hour + Int64(i / 3) * 1_000_000))
        }
        #expect(try await events.ingest(docs, grant: grant, address: "127.0.0.1").allSatisfy { $0.status == 201 })
        try await e.h.app().test(.router) { client in
            let office = try #require(try await signIn(client, user: "office"))
            var uri: String? = "/events"
            var seen: [String] = []
            var pages = 0
            while let next = uri {
                pages += 1
                let page = try await client.execute(uri: next, method: .get, headers: cookieHeader(office)) {
                    #expect($0.status == .ok)
                    return String(buffer: $0.body)
                }
                let rows = page.components(separatedBy: "<tr data-type=").count - 1
                #expect(rows == (pages < 3 ? 100 : 50), "page \(pages): \(rows) rows")
                seen += page.components(separatedBy: "data-seq=\"").dropFirst().map { String($0.prefix { $0 != "\"" }) }
                #expect(page.contains(#"id="events-newest""#) == (pages > 1))
                uri = page.range(of: #"<a id="events-older" href=""#).map { r in
                    String(page[r.upperBound...].prefix { $0 != "\"" }).replacingOccurrences(of: "&amp;", with: "&")
                }
                if pages > 3 { break }
            }
            #expect(pages == 3)
            // 250 rows in all, none twice.
            #expect(seen.count == 250 && Set(seen).count == 250)
            let api = try await client.execute(
                uri: "/api/v1/events?limit=1000&from=\(now.adding(micros: -2 * Self.hour).iso8601)", method: .get,
                headers: cookieHeader(office)
            ) { try #require(try json($0)["events"] as? [[String: Any]]) }
            #expect(api.count == 250)
            try await client.execute(uri: "/events?before=12:x", method: .get, headers: cookieHeader(office)) {
                #expect(String(buffer: $0.body).contains("before must be TIME:SEQ"))
            }
        }
    }

    @Test("older than the box keeps video: 400 events.tooOld, nothing stored; just inside: 201")
    func tooOldIsRefused() async throws {
        var limits = EventService.Limits()
        limits.maxBehind = .seconds(30 * 86_400)
        let e = try EventHarness(limits: limits)
        let events = try #require(e.h.env.events)
        let grant = try #require(try events.store.grant(token: e.onguard))
        let now = e.h.clocks.utcNow()
        let old = [
            ("year0", "0000-01-01T00:00:00Z"), ("epoch", "1970-01-01T00:00:00Z"),
            ("month", now.adding(micros: -31 * 24 * Self.hour).iso8601),
        ]
        for (id, time) in old {
            let doc = try JSONDecoder().decode(JSONValue.self, from: Data(e.event(id: id, time: time).utf8))
            let answer = try #require(try await events.ingest([doc], grant: grant, address: "127.0.0.1").first)
            #expect(answer.status == 400, "\(id): \(answer.status)")
            #expect(["events.tooOld", "events.time"].contains(answer.refusal?.code ?? ""), "\(id): \(answer.refusal)")
        }
        let inside = now.adding(micros: -29 * 24 * Self.hour).iso8601
        let doc = try JSONDecoder().decode(JSONValue.self, from: Data(e.event(id: "inside", time: inside).utf8))
        #expect(try await events.ingest([doc], grant: grant, address: "127.0.0.1").map(\.status) == [201])
        let all = EventStore.Query(from: UTCMicros(Int64.min / 2), to: UTCMicros(Int64.max / 2), limit: 1000)
        #expect(try events.store.events(all).map(\.id) == ["inside"])
    }

    @Test("an HTTP source may not be named onvif:…, the box's own ONVIF subscriptions")
    func onvifNamesAreReserved() throws {
        for name in ["onvif:entrance-door", "ONVIF:entrance-door"] {
            #expect(throws: EventSourceInput.Refusal.self) {
                try EventSourceInput(name: name, types: nil, doors: nil)
            }
        }
        #expect(try EventSourceInput(name: "onguard:panel1", types: nil, doors: nil).name == "onguard:panel1")
    }
}
