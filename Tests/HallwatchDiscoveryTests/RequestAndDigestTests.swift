import Foundation
import HallwatchCore
import Testing

@testable import HallwatchDiscovery

@Suite("HTTP Digest")
struct HTTPDigestTests {
    /// RFC 7616 §3.9.1: the same challenge answered with SHA-256 and with MD5.
    static let rfc7616 =
        #"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
    static let rfc7616MD5 =
        #"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
    static let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"

    @Test func rfc7616VectorsSHA256FirstThenMD5() throws {
        let cs = DigestChallenge.parse([Self.rfc7616MD5, Self.rfc7616])
        #expect(cs.map(\.algorithm) == [.sha256, .md5])
        #expect(cs[0].qop == ["auth", "auth-int"])
        #expect(cs[0].opaque == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        let sha = cs[0].authorization(
            method: "GET", uri: "/dir/index.html", username: "Mufasa", password: "Circle of Life", cnonce: Self.cnonce)
        #expect(sha.contains(#"response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1""#))
        #expect(sha.contains("qop=auth, nc=00000001"))
        let md5 = cs[1].authorization(
            method: "GET", uri: "/dir/index.html", username: "Mufasa", password: "Circle of Life", cnonce: Self.cnonce)
        #expect(md5.contains(#"response="8ca523f5e9506fed4657c9700eebdbec""#))
    }

    /// RFC 2617 §3.5 (qop=auth) and the same challenge without qop (RFC 2069 form).
    @Test func rfc2617WithAndWithoutQop() throws {
        let withQop = try #require(
            DigestChallenge.parse([
                #"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#
            ]).first)
        #expect(withQop.algorithm == .md5)
        #expect(
            withQop.authorization(
                method: "GET", uri: "/dir/index.html", username: "Mufasa", password: "Circle Of Life",
                cnonce: "0a4f113b"
            )
            .contains(#"response="6629fae49393a05397450978507c4ef1""#))
        let noQop = try #require(
            DigestChallenge.parse([#"Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093""#])
                .first)
        let a = noQop.authorization(
            method: "GET", uri: "/dir/index.html", username: "Mufasa", password: "Circle Of Life", cnonce: "x")
        #expect(a.contains(#"response="670fd8c2df070c60b045671b8b24ff02""#))
        #expect(!a.contains("qop=") && !a.contains("cnonce"))
        #expect(!a.contains("Circle Of Life"))
    }

    @Test func severalChallengesInOneHeaderAndJunk() {
        let cs = DigestChallenge.parse([
            #"Basic realm="cam", Digest realm="cam", nonce="abc", stale=TRUE, algorithm=md5-sess"#
        ])
        #expect(cs.count == 1)
        #expect(cs.first?.algorithm == .md5Session)
        #expect(cs.first?.stale == true)
        #expect(DigestChallenge.parse(["Digest realm=\"x\""]).isEmpty)  // no nonce
        #expect(DigestChallenge.parse(["Digest realm=\"x\", nonce=\"n\", algorithm=SHA-512"]).isEmpty)  // unknown
        #expect(DigestChallenge.parse(["Digest " + String(repeating: "a=b, ", count: 2_000)]).isEmpty)  // over the cap
        #expect(DigestChallenge.parse(["\"=,,==\"\"Digest"]).isEmpty)
        #expect(DigestChallenge.parse([""]).isEmpty)
    }
}

@Suite("ONVIF requests")
struct ONVIFRequestTests {
    @Test func envelopesParseBackWithTheirBodyAndToken() throws {
        let token = UsernameToken(
            username: "admin", password: "pw", nonce: Array(repeating: 7, count: 16),
            boxNow: UTCMicros(1_700_000_000_000_000), clockOffset: ClockOffset(micros: 3_600_000_000))
        let cases: [(ONVIFRequest, String, String)] = [
            (.getSystemDateAndTime, NS.device, "GetSystemDateAndTime"),
            (.getDeviceInformation, NS.device, "GetDeviceInformation"),
            (.getServices(includeCapability: false), NS.device, "GetServices"),
            (.getCapabilities, NS.device, "GetCapabilities"),
            (.getProfiles, NS.media, "GetProfiles"),
            (.getStreamUri(profileToken: "Profile_1&<x>"), NS.media, "GetStreamUri"),
            (.getProfiles2, NS.media2, "GetProfiles"), (.getStreamUri2(profileToken: "p"), NS.media2, "GetStreamUri"),
        ]
        for (request, ns, local) in cases {
            let env = try SOAPEnvelope.parse(request.envelope(token: request == .getSystemDateAndTime ? nil : token))
            #expect(env.version == .soap12)
            #expect(env.body.child(ns, local) != nil, "\(local)")
            #expect(request.action == ns + "/" + local)
            #expect(request.isMedia == (ns != NS.device))
            let t = env.header?.child(NS.wsse, "Security")?.child(NS.wsse, "UsernameToken")
            if request == .getSystemDateAndTime {
                #expect(env.header == nil)  // sent without a token: it is how the clock offset is learnt
            } else {
                #expect(t?.childText(NS.wsse, "Username") == "admin")
                #expect(t?.childText(NS.wsse, "Password") == token.passwordDigest)
                #expect(t?.childText(NS.wsu, "Created") == "2023-11-14T23:13:20Z")  // box time + 1 h
            }
        }
        let su = try SOAPEnvelope.parse(ONVIFRequest.getStreamUri(profileToken: "Profile_1&<x>").envelope(token: nil))
        #expect(su.body.child(NS.media, "GetStreamUri")?.childText(NS.media, "ProfileToken") == "Profile_1&<x>")
        #expect(
            ONVIFRequest.getProfiles.contentType
                == #"application/soap+xml; charset=utf-8; action="http://www.onvif.org/ver10/media/wsdl/GetProfiles""#)
    }
}

@Suite("Media service 2")
struct Media2Tests {
    /// A media 2 reply shaped like a Hikvision camera's (H.265 main, H.264 sub, JPEG), written for this test.
    static let reply = #"""
        <env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:tr2="http://www.onvif.org/ver20/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><env:Body><tr2:GetProfilesResponse>
        <tr2:Profiles token="Profile_1" fixed="true"><tr2:Name>mainStream</tr2:Name><tr2:Configurations>
          <tr2:VideoSource token="VideoSourceToken"><tt:Name>VideoSourceConfig</tt:Name><tt:UseCount>3</tt:UseCount><tt:SourceToken>VideoSource_1</tt:SourceToken><tt:Bounds x="0" y="0" width="2688" height="1520"/></tr2:VideoSource>
          <tr2:VideoEncoder token="VideoEncoderToken_1" GovLength="50" Profile="Main"><tt:Name>VideoEncoder_1</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H265</tt:Encoding><tt:Resolution><tt:Width>2688</tt:Width><tt:Height>1520</tt:Height></tt:Resolution><tt:RateControl ConstantBitRate="false"><tt:FrameRateLimit>25</tt:FrameRateLimit><tt:BitrateLimit>4096</tt:BitrateLimit></tt:RateControl></tr2:VideoEncoder>
        </tr2:Configurations></tr2:Profiles>
        <tr2:Profiles token="Profile_2" fixed="true"><tr2:Name>subStream</tr2:Name><tr2:Configurations>
          <tr2:VideoSource token="VideoSourceToken"><tt:SourceToken>VideoSource_1</tt:SourceToken></tr2:VideoSource>
          <tr2:VideoEncoder token="VideoEncoderToken_2" GovLength="50"><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>640</tt:Width><tt:Height>360</tt:Height></tt:Resolution></tr2:VideoEncoder>
        </tr2:Configurations></tr2:Profiles>
        <tr2:Profiles token="Profile_3"><tr2:Name>jpeg</tr2:Name><tr2:Configurations>
          <tr2:VideoSource token="VideoSourceToken"><tt:SourceToken>VideoSource_1</tt:SourceToken></tr2:VideoSource>
          <tr2:VideoEncoder token="VideoEncoderToken_3"><tt:Encoding>JPEG</tt:Encoding><tt:Resolution><tt:Width>320</tt:Width><tt:Height>180</tt:Height></tt:Resolution></tr2:VideoEncoder>
        </tr2:Configurations></tr2:Profiles>
        </tr2:GetProfilesResponse></env:Body></env:Envelope>
        """#

    @Test func profilesAndChoice() throws {
        let p = try MediaProfile.parseList(Data(Self.reply.utf8))
        #expect(p.map(\.token) == ["Profile_1", "Profile_2", "Profile_3"])
        #expect(p.map(\.name) == ["mainStream", "subStream", "jpeg"])
        #expect(p.map { $0.videoEncoder?.encoding } == [.h265, .h264, .jpeg])
        #expect(p[0].videoEncoder?.govLength == 50)
        #expect(p[0].videoEncoder?.frameRateLimit == 25)
        #expect(p[0].sourceBounds == PixelSize(width: 2688, height: 1520))
        let c = StreamChooser.choose(p)
        #expect(c.count == 1 && c[0].videoSourceToken == "VideoSource_1")
        #expect(c[0].main?.token == "Profile_1")
        #expect(c[0].sub?.token == "Profile_2")
    }

    @Test func streamURI() throws {
        let reply =
            #"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tr2="http://www.onvif.org/ver20/media/wsdl"><s:Body><tr2:GetStreamUriResponse><tr2:Uri> rtsp://192.0.2.13/Streaming/Channels/101?x=1&amp;y=2 </tr2:Uri></tr2:GetStreamUriResponse></s:Body></s:Envelope>"#
        #expect(try StreamURI.parse(Data(reply.utf8)).uri == "rtsp://192.0.2.13/Streaming/Channels/101?x=1&y=2")
    }
}
