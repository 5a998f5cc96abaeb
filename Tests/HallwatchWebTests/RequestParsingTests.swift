import Foundation
import HTTPTypes
import HallwatchCore
import Hummingbird
import HummingbirdTesting
import Testing

@testable import HallwatchWeb

/// What a request names — a byte range, a time — read strictly, and refused with a typed code when it cannot be
/// (fresh-user findings: `bytes=-0` answered 200, `+99:00` and `2026-02-30` were accepted).
@Suite("hallwatch-web: Range headers and request times are read strictly")
struct RequestParsingTests {
    @Test("Range: bytes=-0 is unsatisfiable (416, RFC 9110 §14.1.1); signs and over-long numbers are no range")
    func byteRanges() {
        func resolved(_ header: String, length: Int64 = 1000) -> ByteRange.Resolved {
            ByteRange.parse(header, ifRange: nil, etag: "\"e\"").resolve(length: length)
        }
        #expect(resolved("bytes=-0") == .unsatisfiable)
        #expect(resolved("bytes=-0", length: 0) == .unsatisfiable)
        #expect(resolved("bytes=-5") == .part(995, 1000))
        #expect(resolved("bytes=-5000") == .part(0, 1000))
        #expect(resolved("bytes=0-0") == .part(0, 1))
        #expect(resolved("bytes=990-") == .part(990, 1000))
        #expect(resolved("bytes=1000-") == .unsatisfiable)
        // Not ranges at all: ignored, the whole body (RFC 9110 §14.2).
        #expect(ByteRange.parse("bytes=-+5", ifRange: nil, etag: "").spec == .invalid)
        #expect(ByteRange.parse("bytes=+1-2", ifRange: nil, etag: "").spec == .invalid)
        #expect(ByteRange.parse("bytes=5-4", ifRange: nil, etag: "").spec == .invalid)
        #expect(
            ByteRange.parse("bytes=1-" + String(repeating: "9", count: 19), ifRange: nil, etag: "").spec == .invalid)
        #expect(resolved("bytes=-+5") == .whole)
    }

    @Test("the recordings API and the timeline refuse 2026-02-30 and +99:00 with 400 playback.time, naming the field")
    func playbackTimes() async throws {
        let h = try Harness()
        try await h.app().test(.router) { client in
            let cookie = try #require(try await signIn(client, user: "admin"))
            let cases = [
                ("/api/v1/cameras/lobby/runs?from=2026-02-30T00:00:00Z&to=2026-03-01T00:00:00Z", "from=", "not exist"),
                (
                    "/api/v1/cameras/lobby/runs?from=2026-02-01T00:00:00Z&to=2026-02-01T08:00:00%2B99:00", "to=",
                    "±23:59"
                ),
                ("/api/v1/cameras/lobby/video.mp4?from=2026-02-01T00:00:00&to=2026-02-01T00:01:00Z", "from=", "no UTC"),
                ("/cameras/lobby/timeline?at=2026-02-30T08:00:00Z", "at=", "not exist"),
            ]
            for (uri, field, why) in cases {
                try await client.execute(uri: uri, method: .get, headers: cookieHeader(cookie)) {
                    #expect($0.status == .badRequest, "\(uri)")
                    let j = try json($0)
                    #expect(j["error"] as? String == "playback.time", "\(uri)")
                    let message = j["message"] as? String ?? ""
                    #expect(message.hasPrefix(field) && message.contains(why), "\(uri): \(message)")
                }
            }
            for day in ["2026-02-30", "abc", "2026-2-3", "2026-02-01T00:00"] {
                try await client.execute(
                    uri: "/cameras/lobby/timeline?day=\(day)", method: .get, headers: cookieHeader(cookie)
                ) { #expect($0.status == .badRequest && text($0).contains("playback.time"), "day=\(day)") }
            }
            // An empty day= is today's page.
            try await client.execute(uri: "/cameras/lobby/timeline?day=", method: .get, headers: cookieHeader(cookie)) {
                #expect($0.status == .ok)
            }
        }
    }

    @Test("an event time of 2026-02-30 or +99:00 is 400 events.time; without an offset events.naiveTime; filters too")
    func eventTimes() async throws {
        let e = try EventHarness()
        try await e.h.app().test(.router) { client in
            let cases = [
                ("2026-02-30T08:00:00Z", "events.time"), ("2026-12-01T08:00:00+99:00", "events.time"),
                ("2026-12-01T08:00:00+01:60", "events.time"), ("2026-12-01T08:00:00", "events.naiveTime"),
                ("2026-12-01T8:00:00Z", "events.time"),
            ]
            for (time, code) in cases {
                try await client.execute(
                    uri: "/api/v1/events", method: .post, headers: bearer(e.onguard),
                    body: .init(string: e.event(id: "t-\(time)", time: time))
                ) {
                    #expect($0.status == .badRequest, "\(time)")
                    let j = try json($0)
                    #expect(j["error"] as? String == code, "\(time)")
                }
            }
            #expect(try e.h.env.events!.store.events(.init(from: UTCMicros(0), to: UTCMicros(Int64.max / 2))).isEmpty)
            let cookie = try #require(try await signIn(client, user: "admin"))
            try await client.execute(
                uri: "/api/v1/events?from=2026-02-30T00:00:00Z", method: .get, headers: cookieHeader(cookie)
            ) {
                #expect($0.status == .badRequest)
                let j = try json($0)
                #expect(j["error"] as? String == "events.filter")
                #expect((j["message"] as? String)?.contains("does not exist") == true)
            }
            try await client.execute(uri: "/api/v1/events?from=-2h", method: .get, headers: cookieHeader(cookie)) {
                #expect($0.status == .ok)
            }
        }
    }
}
