import Foundation
import HTTPTypes
import HallwatchCore
import Hummingbird
import HummingbirdTesting
import Testing

@testable import HallwatchWeb

@Suite("hallwatch-web: the audit page")
struct AuditPageTests {
    static func settings() -> WebSettings {
        var s = makeSettings()
        s.users.append(
            UserConfig(name: "lot-admin", passwordHash: testHash, role: .buildingAdmin, cameraGroups: ["parking"]))
        s.users.append(UserConfig(name: "principal", passwordHash: testHash, role: .buildingAdmin))
        return s
    }

    /// Entries an hour apart from 2027-01-15T08:00Z (03:00 EST): views of lobby, lot-north, both; a deletion.
    static func fill(_ h: Harness) async throws {
        let log = h.env.audit
        try await log.record(actor: "office", address: "10.0.0.1", action: "camera.view", object: "lobby")
        h.clocks.advance(seconds: 3600)
        try await log.record(actor: "facilities", address: "10.0.0.2", action: "camera.view", object: "lot-north")
        h.clocks.advance(seconds: 3600)
        try await log.record(actor: "office", address: "10.0.0.1", action: "camera.view", object: "lobby,lot-north")
        h.clocks.advance(seconds: 3600)
        try await log.record(actor: "pruner", address: "-", action: "recording.deleted", object: "gym")
        try await log.record(actor: "-", address: "10.0.0.9", action: "login.failure", object: "=cmd|' /C calc'!A0")
    }

    func body(_ r: TestResponse) -> String { String(buffer: r.body) }

    @Test("admins browse and filter by time (building zone), actor, action and camera; each view is audited")
    func browseAndFilter() async throws {
        let h = try Harness(settings: Self.settings(), time: try #require(BuildingTime(identifier: "America/New_York")))
        try await Self.fill(h)
        try await h.app().test(.router) { client in
            let cookie = try #require(try await signIn(client, user: "principal"))
            try await client.execute(uri: "/audit", method: .get, headers: cookieHeader(cookie)) { r in
                #expect(r.status == .ok)
                let page = body(r)
                // Five entries and the sign-in; local times with UTC in the title.
                #expect(page.contains("6 of 6 entries"))
                #expect(page.contains(#"title="2027-01-15T08:00:00.000Z">2027-01-15 03:00:00 EST</time>"#))
                #expect(page.contains("recording.deleted"))
                // HTML-escaped, never markup.
                // (The one script is the responder banner every page loads.)
                let banner = "<script src=\"/static/banner.js\" defer></script>"
                let scripts = page.replacingOccurrences(of: banner, with: "")
                #expect(page.contains(" /C calc") && !scripts.contains("<script"))
            }
            let queries: [(String, [String])] = [
                ("actor=office", ["lobby,lot-north", ">lobby<"]),
                ("action=camera.view&camera=lot-north", ["lobby,lot-north", ">lot-north<"]),
                ("action=login.", ["login.failure", "login.success"]),
                // 04:00–05:00 EST is 09:00–10:00 UTC: the facilities view only.
                ("from=2027-01-15T04%3A00&to=2027-01-15T05%3A00", [">lot-north<"]),
            ]
            for (query, expected) in queries {
                try await client.execute(uri: "/audit?" + query, method: .get, headers: cookieHeader(cookie)) { r in
                    #expect(r.status == .ok)
                    let page = body(r)
                    for e in expected { #expect(page.contains(e), "\(query): \(e)") }
                    #expect(page.contains("of \(expected.count) entries"), "\(query)")
                    #expect(page.contains(#"href="/audit.csv?\#(query.replacingOccurrences(of: "&", with: "&amp;"))""#))
                }
            }
            try await client.execute(uri: "/audit?from=yesterday", method: .get, headers: cookieHeader(cookie)) { r in
                #expect(r.status == .badRequest)
                #expect(body(r).contains("is not a date and time"))
            }
            let views = try await h.env.audit.entries().filter { $0.action == "auditlog.view" }
            #expect(views.count == 5)
            #expect(views.allSatisfy { $0.actor == "principal" })
            #expect(views[1].details == "actor office")
            #expect(views[4].details == "from 2027-01-15T09:00:00.000Z, to 2027-01-15T10:00:00.000Z")
        }
    }

    @Test("the CSV download: the filter's entries oldest first, UTC, formulas defused, audited")
    func download() async throws {
        let h = try Harness(settings: Self.settings())
        try await Self.fill(h)
        try await h.app().test(.router) { client in
            let cookie = try #require(try await signIn(client, user: "admin"))
            try await client.execute(uri: "/audit.csv?actor=-", method: .get, headers: cookieHeader(cookie)) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "text/csv; charset=utf-8")
                #expect(r.headers[.contentDisposition]?.hasPrefix("attachment; filename=\"audit-box1-") == true)
                let lines = body(r).split(separator: "\r\n")
                #expect(lines.first == "seq,time,actor,address,action,object,details,previousHash,hash")
                #expect(lines.count == 2)
                #expect(lines[1].contains(",'-,10.0.0.9,login.failure,'=cmd|' /C calc'!A0,"))
            }
            try await client.execute(uri: "/audit.csv", method: .get, headers: cookieHeader(cookie)) { r in
                let seqs = body(r).split(separator: "\r\n").dropFirst().map { $0.split(separator: ",")[0] }
                #expect(seqs == ["1", "2", "3", "4", "5", "6", "7"])
            }
            let last = try #require(try await h.env.audit.entries().last)
            #expect(last.action == "auditlog.export" && last.details == "all" && last.actor == "admin")
        }
    }

    @Test("viewers may not see the audit log; an admin limited to parking sees no entry of another camera")
    func access() async throws {
        let h = try Harness(settings: Self.settings())
        try await Self.fill(h)
        try await h.app().test(.router) { client in
            let viewer = try #require(try await signIn(client, user: "office"))
            for uri in ["/audit", "/audit.csv"] {
                try await client.execute(uri: uri, method: .get, headers: cookieHeader(viewer)) { r in
                    #expect(r.status == .forbidden, "\(uri)")
                }
            }
            try await client.execute(uri: "/", method: .get, headers: cookieHeader(viewer)) { r in
                #expect(!body(r).contains(#"href="/audit""#))
            }
            let lot = try #require(try await signIn(client, user: "lot-admin"))
            try await client.execute(uri: "/", method: .get, headers: cookieHeader(lot)) { r in
                #expect(body(r).contains(#"<a href="/audit">Audit log</a>"#))
            }
            try await client.execute(uri: "/audit.csv", method: .get, headers: cookieHeader(lot)) { r in
                let text = body(r)
                #expect(text.contains(",lot-north,"))
                #expect(!text.contains("lobby") && !text.contains(",gym,"))
            }
            // 600 newer entries of another camera: the page's 500-row limit counts only what the admin may see
            // (a fresh user's finding: the limit was applied first, and the page came back empty).
            for _ in 0..<600 {
                try await h.env.audit.record(
                    actor: "office", address: "10.0.0.1", action: "camera.view", object: "lobby")
            }
            try await client.execute(uri: "/audit?camera=", method: .get, headers: cookieHeader(lot)) { r in
                let text = body(r)
                #expect(text.contains(#"<td data-label="Object">lot-north</td>"#), "\(text.suffix(2000))")
                #expect(!text.contains(#"<td data-label="Object">lobby</td>"#))
            }
        }
    }
}
