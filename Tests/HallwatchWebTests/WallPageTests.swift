import Foundation
import HallwatchCore
import Hummingbird
import HummingbirdTesting
import Testing

@testable import HallwatchWeb

/// The playback wall's page (issue 15: several cameras locked to one wall clock): its tiles, the cameras a user may
/// put on it, its limits, and its audit entry. The playing itself is Tests/Browser/wall.py's, in Chromium.
@Suite("hallwatch-web: the playback wall (2×2)")
struct WallPageTests {
    @Test("tiles for the asked cameras in order, repeated or comma-separated; the view audited with its time")
    func tilesAndAudit() async throws {
        let h = try Harness()
        try await h.app().test(.router) { client in
            let admin = try #require(try await signIn(client, user: "admin"))
            let uri = "/playback/wall?cameras=gym,lobby&cameras=lot-north&cameras=gym&at=2026-12-07T08:00:00Z"
            try await client.execute(uri: uri, method: .get, headers: cookieHeader(admin)) {
                #expect($0.status == .ok)
                let page = String(buffer: $0.body)
                let tiles = page.components(separatedBy: #"<figure class="wall-tile" data-camera=""#).dropFirst()
                    .map { String($0.prefix { $0 != "\"" }) }
                #expect(tiles == ["gym", "lobby", "lot-north"])
                #expect(page.contains(#"data-at="1796630400000""#))
                #expect(page.contains(#"<script src="/static/wall.js" defer>"#))
            }
            let audited = try await h.env.audit.entries().last
            #expect(audited?.action == "camera.view" && audited?.object == "gym,lobby,lot-north")
            #expect(audited?.details == "playback wall from 2026-12-07T08:00:00.000Z")
            // No cameras: the picker alone, nothing audited as viewed.
            let before = try await h.env.audit.entries().count
            try await client.execute(uri: "/playback/wall", method: .get, headers: cookieHeader(admin)) {
                #expect($0.status == .ok && String(buffer: $0.body).contains("Pick up to four cameras"))
            }
            #expect(try await h.env.audit.entries().count == before)
        }
    }

    @Test("a camera the user may not see is 404; five cameras or a bad time are 400")
    func limits() async throws {
        let h = try Harness()
        try await h.app().test(.router) { client in
            let lots = try #require(try await signIn(client, user: "facilities"))
            try await client.execute(
                uri: "/playback/wall?cameras=lot-north,lobby", method: .get, headers: cookieHeader(lots)
            ) {
                #expect($0.status == .notFound)
            }
            try await client.execute(uri: "/playback/wall?cameras=lot-north", method: .get, headers: cookieHeader(lots))
            {
                let page = String(buffer: $0.body)
                #expect($0.status == .ok)
                // Its pickers offer only the parking cameras.
                #expect(page.contains(#"<option value="lot-south">"#) && !page.contains(#"<option value="lobby">"#))
            }
            let admin = try #require(try await signIn(client, user: "admin"))
            try await client.execute(
                uri: "/playback/wall?cameras=lobby,gym,lot-north,lot-south,roof", method: .get,
                headers: cookieHeader(admin)
            ) {
                #expect(
                    $0.status == .badRequest && String(buffer: $0.body).contains("playback.range"),
                    "\($0.status) \(String(buffer: $0.body))")
            }
            try await client.execute(
                uri: "/playback/wall?cameras=lobby&at=2026-02-30T00:00:00Z", method: .get, headers: cookieHeader(admin)
            ) { #expect($0.status == .badRequest && String(buffer: $0.body).contains("playback.time")) }
        }
    }
}
