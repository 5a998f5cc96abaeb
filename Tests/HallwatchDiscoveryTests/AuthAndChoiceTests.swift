import Foundation
import HallwatchCore
import Testing

@testable import HallwatchDiscovery

@Suite("WS-UsernameToken")
struct UsernameTokenTests {
    /// The ONVIF Application Programmer's Guide vector.
    @Test func programmersGuideVector() throws {
        let nonce = try #require(Data(base64Encoded: "LKqI6G/AikKCQrN0zqZFlg=="))
        #expect(
            UsernameToken.passwordDigest(nonce: Array(nonce), created: "2010-09-16T07:50:45Z", password: "userpassword")
                == "tuOSpGlFlIXsozq4HFNeeGeFLEI=")
    }

    /// A camera one hour behind the box: `Created` is written in the camera's clock.
    @Test func createdIsCorrectedByTheClockOffset() throws {
        let nonce = Array(try #require(Data(base64Encoded: "LKqI6G/AikKCQrN0zqZFlg==")))
        let box = try #require(ISO8601.parse("2010-09-16T08:50:45.250Z"))
        let t = UsernameToken(
            username: "admin", password: "userpassword", nonce: nonce, boxNow: box,
            clockOffset: ClockOffset(micros: -3_600_000_000))
        #expect(t.created == "2010-09-16T07:50:45Z")
        #expect(t.nonceBase64 == "LKqI6G/AikKCQrN0zqZFlg==")
        #expect(t.passwordDigest == "tuOSpGlFlIXsozq4HFNeeGeFLEI=")
        #expect(!t.description.contains("userpassword") && !t.description.contains(t.passwordDigest))
        #expect(!t.securityHeaderXML.contains("userpassword"))
        #expect(t.securityHeaderXML.contains("<wsu:Created>2010-09-16T07:50:45Z</wsu:Created>"))
    }

    @Test func usernameIsEscapedAndNoncesDiffer() {
        let t = UsernameToken(
            username: "a<b&c", password: "p", nonce: UsernameToken.randomNonce(), boxNow: UTCMicros(0),
            clockOffset: .zero)
        #expect(t.securityHeaderXML.contains("<wsse:Username>a&lt;b&amp;c</wsse:Username>"))
        #expect(UsernameToken.randomNonce() != UsernameToken.randomNonce())
        #expect(UsernameToken.randomNonce().count == 16)
    }
}

@Suite("Stream choice")
struct StreamChoiceTests {
    func profile(
        _ token: String, _ enc: VideoEncoding?, _ w: Int?, _ h: Int?, source: String = "src", fps: Double? = nil
    ) -> MediaProfile {
        MediaProfile(
            token: token, name: "ignored", fixed: nil, videoSourceToken: source, sourceBounds: nil,
            videoEncoder: VideoEncoderConfiguration(
                token: nil, name: nil, encoding: enc,
                resolution: w.flatMap { w in h.map { PixelSize(width: w, height: $0) } },
                frameRateLimit: fps, bitrateLimitKbps: nil, govLength: nil))
    }

    @Test func orderAndNamesDoNotMatter() {
        let ps = [
            profile("z-small", .h265, 640, 360), profile("a-jpeg", .jpeg, 3840, 2160),
            profile("m-big", .h264, 2560, 1440), profile("b-mid", .h264, 1280, 720),
        ]
        for perm in [ps, ps.reversed(), [ps[2], ps[0], ps[3], ps[1]]] {
            let c = StreamChooser.choose(perm)
            #expect(c.count == 1)
            #expect(c[0].main?.token == "m-big")
            #expect(c[0].sub?.token == "z-small")
        }
    }

    @Test func tiesAndUndetermined() {
        let c = StreamChooser.choose([
            profile("p1", .h264, 1920, 1080, fps: 15), profile("p2", .h265, 1920, 1080, fps: 25),
            profile("p3", nil, nil, nil), profile("p4", .h264, nil, nil),
            profile("other", .h264, 800, 600, source: "second"),
        ])
        #expect(c.map(\.videoSourceToken) == ["second", "src"])
        #expect(c[1].main?.token == "p2")  // same size, higher frame rate
        #expect(c[1].sub == nil)  // nothing smaller
        #expect(c[1].undetermined == ["p3", "p4"])
        #expect(c[0].main?.token == "other")
        #expect(StreamChooser.choose([]).isEmpty)
    }

    @Test func encodingNames() {
        #expect(VideoEncoding("H264") == .h264)
        #expect(VideoEncoding("h.265") == .h265)
        #expect(VideoEncoding("HEVC") == .h265)
        #expect(VideoEncoding("JPEG") == .jpeg)
        #expect(VideoEncoding("VP8") == .other("VP8"))
    }

    @Test func xsDurations() {
        #expect(parseXSDuration("PT0S") == 0)
        #expect(parseXSDuration("PT1M30.5S") == 90.5)
        #expect(parseXSDuration("P1DT2H") == 93_600)
        #expect(parseXSDuration("P1Y") == nil)
        #expect(parseXSDuration("60") == nil)
        #expect(parseXSDuration("PT") == nil)
    }
}
