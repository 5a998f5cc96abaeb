import Testing

@testable import HallwatchWeb

@Suite("Live grid layouts and the HLS playlist")
struct LiveGridAndHLSTests {
    @Test("a user's layout is saved in the web database; other users keep 2×2; a size outside 1–4 is ignored")
    func layoutsPerUser() async throws {
        let layouts = LiveLayouts(database: try WebDatabase(path: ":memory:"))
        #expect(try await layouts.size(for: "ana") == 2)
        try await layouts.save(3, for: "ana")
        try await layouts.save(4, for: "ana")
        try await layouts.save(9, for: "bo")
        #expect(try await layouts.size(for: "ana") == 4)
        #expect(try await layouts.size(for: "bo") == 2)
    }

    @Test("the playlist (RFC 8216) names the run's init segment and each stored fragment with its duration")
    func playlist() {
        #expect(
            LiveHLS.playlist(run: 77, fragments: [(4, 90_000), (5, 117_000)]) == """
                #EXTM3U
                #EXT-X-VERSION:7
                #EXT-X-TARGETDURATION:2
                #EXT-X-MEDIA-SEQUENCE:4
                #EXT-X-MAP:URI="hls/77-init.mp4"
                #EXTINF:1.000,
                hls/77-4.m4s
                #EXTINF:1.300,
                hls/77-5.m4s

                """)
    }
}
