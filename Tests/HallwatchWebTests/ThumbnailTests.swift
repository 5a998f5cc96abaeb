import Foundation
import HTTPTypes
import HallwatchCore
import HallwatchMedia
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing

@testable import HallwatchWeb

/// A source that takes `delay` per picture and counts calls per camera; `gym` has nothing recorded, `lobby`
/// fails once asked with `failLobby`.
final class FakeThumbnails: ThumbnailSource {
    let calls = Mutex<[String: Int]>([:])
    let delay: Double
    let failLobby: Bool
    init(delay: Double = 0.05, failLobby: Bool = false) {
        self.delay = delay
        self.failLobby = failLobby
    }
    func thumbnail(camera: CameraID) throws -> JPEGThumbnail? {
        calls.withLock { $0[camera.rawValue, default: 0] += 1 }
        usleep(useconds_t(delay * 1e6))
        if camera.rawValue == "gym" { return nil }
        if failLobby && camera.rawValue == "lobby" { throw ThumbnailError(reason: "storage.corrupt: test") }
        return JPEGThumbnail(jpeg: [0xFF, 0xD8] + Array(camera.rawValue.utf8) + [0xFF, 0xD9], width: 320, height: 180)
    }
    func count(_ camera: String) -> Int { calls.withLock { $0[camera] ?? 0 } }
}

@Suite("hallwatch-web: thumbnails")
struct ThumbnailTests {
    @Test("cached 10 s, one decode per camera however many ask, at most two decodes at once")
    func cache() async throws {
        let clocks = TestClocks()
        let source = FakeThumbnails()
        let cache = ThumbnailCache(source: source, clocks: clocks)
        let ids = (1...8).map { CameraID("cam-\($0)")! }
        // 8 cameras × 3 requests at once.
        try await withThrowingTaskGroup(of: JPEGThumbnail?.self) { group in
            for id in ids {
                for _ in 0..<3 { group.addTask { try await cache.thumbnail(camera: id) } }
            }
            for try await t in group { #expect(t?.width == 320) }
        }
        #expect(ids.allSatisfy { source.count($0.rawValue) == 1 })
        let counts = cache.decodeCounts
        #expect(counts.started == 8)
        #expect(counts.mostAtOnce <= ThumbnailCache.maxConcurrentDecodes && counts.mostAtOnce >= 1)
        clocks.advance(seconds: 9)
        _ = try await cache.thumbnail(camera: ids[0])
        #expect(source.count("cam-1") == 1)
        clocks.advance(seconds: 2)
        _ = try await cache.thumbnail(camera: ids[0])
        #expect(source.count("cam-1") == 2)
        // Nothing recorded: nil, cached too.
        #expect(try await cache.thumbnail(camera: CameraID("gym")!) == nil)
        #expect(try await cache.thumbnail(camera: CameraID("gym")!) == nil)
        #expect(source.count("gym") == 1)
    }

    static func harness(_ source: FakeThumbnails) throws -> Harness {
        var h = try Harness()
        h.env.thumbnails = ThumbnailCache(source: source, clocks: h.clocks)
        return h
    }

    @Test("the route: a JPEG of a camera the user may see, audited; other cameras 404 alike; failures 503")
    func route() async throws {
        let source = FakeThumbnails(failLobby: true)
        let h = try Self.harness(source)
        try await h.app().test(.router) { client in
            let facilities = try #require(try await signIn(client, user: "facilities"))
            try await client.execute(
                uri: "/api/v1/cameras/lot-north/thumbnail.jpg", method: .get, headers: cookieHeader(facilities)
            ) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "image/jpeg")
                #expect(r.headers[.cacheControl] == "private, max-age=10")
                #expect(Array(Data(buffer: r.body).prefix(2)) == [0xFF, 0xD8])
            }
            let last = try #require(try await h.env.audit.entries().last)
            #expect(last.action == "camera.view" && last.object == "lot-north" && last.details == "thumbnail")
            #expect(last.actor == "facilities")
            // The page's refresh every 10 s: audited again only after 10 minutes.
            func thumbnailViews() async throws -> Int {
                try await h.env.audit.entries().count { $0.details == "thumbnail" && $0.object == "lot-north" }
            }
            for _ in 0..<3 {
                h.clocks.advance(seconds: 10)
                try await client.execute(
                    uri: "/api/v1/cameras/lot-north/thumbnail.jpg", method: .get, headers: cookieHeader(facilities)
                ) { r in #expect(r.status == .ok) }
            }
            #expect(try await thumbnailViews() == 1)
            h.clocks.advance(seconds: 600)
            try await client.execute(
                uri: "/api/v1/cameras/lot-north/thumbnail.jpg", method: .get, headers: cookieHeader(facilities)
            ) { r in #expect(r.status == .ok) }
            #expect(try await thumbnailViews() == 2)
            // Outside the user's groups, not configured, not an id: the same 404, and nothing decoded.
            for camera in ["lobby", "nowhere", "..%2Fetc"] {
                try await client.execute(
                    uri: "/api/v1/cameras/\(camera)/thumbnail.jpg", method: .get, headers: cookieHeader(facilities)
                ) { r in
                    #expect(r.status == .notFound, "\(camera)")
                    #expect(String(buffer: r.body).contains("camera.unknown"), "\(camera)")
                }
            }
            #expect(source.count("lobby") == 0)
            let admin = try #require(try await signIn(client, user: "admin"))
            try await client.execute(
                uri: "/api/v1/cameras/gym/thumbnail.jpg", method: .get, headers: cookieHeader(admin)
            ) { r in #expect(r.status == .notFound) }
            try await client.execute(
                uri: "/api/v1/cameras/lobby/thumbnail.jpg", method: .get, headers: cookieHeader(admin)
            ) { r in
                #expect(r.status == .serviceUnavailable)
                #expect(String(buffer: r.body).contains("thumbnail.failed"))
                #expect(!String(buffer: r.body).contains("storage.corrupt"))
            }
            try await client.execute(uri: "/api/v1/cameras/lobby/thumbnail.jpg", method: .get, headers: [:]) { r in
                #expect(r.status == .unauthorized)
            }
            // The status page shows a picture per camera the user may see.
            try await client.execute(uri: "/", method: .get, headers: cookieHeader(facilities)) { r in
                let page = String(buffer: r.body)
                #expect(page.contains(#"src="/api/v1/cameras/lot-north/thumbnail.jpg""#))
                #expect(!page.contains("/api/v1/cameras/lobby/"))
            }
        }
    }
}
