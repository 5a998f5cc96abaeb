import Crypto
import Foundation
import HallwatchCore
import HallwatchDiscovery

/// One simulated ONVIF device: one endpoint reference, one RTSP mount, one recordable profile (and a JPEG one
/// that a client must skip), and optionally a smaller sub-stream profile on a second mount.
public struct SimulatedDevice: Sendable, Equatable {
    /// 0-based index; also its HTTP path segment (`/onvif/INDEX/device_service`).
    public var index: Int
    /// `urn:uuid:…`, derived from the listen address, HTTP port and index (stable across restarts).
    public var endpointAddress: String
    /// The RTSP mount served for it (`rtsp://ADDRESS:RTSPPORT/MOUNT`).
    public var mount: String
    /// `H264` or `H265`.
    public var encoding: String
    /// Picture width the profile claims, pixels.
    public var width: Int
    /// Picture height the profile claims, pixels.
    public var height: Int
    /// Frame rate the profile claims, frames per second.
    public var fps: Double
    /// `SIM-<index>-<8 hex>`.
    public var serial: String
    /// A locally administered MAC (02:…), published in the `MAC/` scope.
    public var mac: String
    /// The sub stream's profile (token `sub`), served from its own mount; `nil`: the device has none.
    public var sub: SubProfile?

    /// A second, smaller recordable profile: what a real camera's `subStream` profile is.
    public struct SubProfile: Sendable, Equatable {
        /// The RTSP mount served for it.
        public var mount: String
        /// `H264` or `H265`.
        public var encoding: String
        /// Picture width, pixels.
        public var width: Int
        /// Picture height, pixels.
        public var height: Int
        /// A sub profile from its parts.
        public init(mount: String, encoding: String, width: Int, height: Int) {
            self.mount = mount
            self.encoding = encoding
            self.width = width
            self.height = height
        }
    }

    /// A device for `mount` whose identity (endpoint, serial, MAC) derives from `seed` and `index`; `width`,
    /// `height` in pixels and `fps` describe the clip served.
    public init(index: Int, seed: String, mount: String, encoding: String, width: Int, height: Int, fps: Double) {
        let h = Array(SHA256.hash(data: Array("\(seed)|\(index)|\(mount)".utf8)))
        func hex(_ r: Range<Int>) -> String { h[r].map { String(format: "%02x", $0) }.joined() }
        endpointAddress =
            "urn:uuid:\(hex(0..<4))-\(hex(4..<6))-4\(hex(6..<8).dropFirst())-a\(hex(8..<10).dropFirst())-\(hex(10..<16))"
        self.index = index
        self.mount = mount
        self.encoding = encoding
        self.width = width
        self.height = height
        self.fps = fps
        serial = "SIM-\(index)-\(hex(16..<20))"
        mac = "02:" + (20..<25).map { String(format: "%02x", h[$0]) }.joined(separator: ":")
    }
}

/// Behaviours of real cameras the simulator can reproduce, one flag each (issue 5, simulated camera).
public enum SimQuirk: String, Sendable, CaseIterable, Hashable {
    /// ProbeMatch and Hello without `d:Scopes`.
    case noScopes = "no-scopes"
    /// A link-local (169.254/16) device XAddr before the real one; service XAddrs and stream URIs name the
    /// link-local host too (a camera that picked up an autoconfigured address first).
    case linkLocalXAddrFirst = "link-local-xaddr-first"
    /// ProbeMatches whose `RelatesTo` is a fresh UUID instead of the Probe's MessageID.
    case badRelatesTo = "bad-relates-to"
    /// Every operation needs credentials, GetSystemDateAndTime included (as Axis and Vivotek do); that one
    /// is answered to valid credentials without the `Created` time check. (The HTTP `Date` header is the
    /// host's: Hummingbird sets it.)
    case strictAuth = "strict-auth"
    /// Stream URIs good for one connection (`InvalidAfterConnect` true, Dahua-like), each with a fresh
    /// `?onetime=N` query that the RTSP server ignores.
    case invalidAfterConnect = "invalid-after-connect"
}

/// Which authentication the simulated device accepts (ONVIF Core §5.12).
public enum SimAuthMode: String, Sendable, CaseIterable {
    /// WS-UsernameToken only; anything else gets a `ter:NotAuthorized` fault (HTTP 400).
    case usernameToken = "usernametoken"
    /// HTTP Digest only (RFC 7616, MD5 and SHA-256 offered, `qop=auth`); a request without it gets 401.
    case digest
    /// Either; a request with neither gets a 401 Digest challenge, a wrong token a `ter:NotAuthorized` fault.
    case both
}

/// SOAP 1.2 replies of the simulated device and media services (ONVIF Core §8, Media Service §5).
enum SimSOAP {
    static func envelope(_ body: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>\
        <env:Envelope xmlns:env="\(NS.soap12)" xmlns:tds="\(NS.device)" xmlns:trt="\(NS.media)" \
        xmlns:tt="\(NS.schema)" xmlns:ter="\(NS.error)"><env:Body>\(body)</env:Body></env:Envelope>
        """
    }

    static func fault(code: String, subcode: String, reason: String) -> String {
        envelope(
            """
            <env:Fault><env:Code><env:Value>env:\(code)</env:Value><env:Subcode><env:Value>\(subcode)</env:Value>\
            </env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">\(reason)</env:Text></env:Reason></env:Fault>
            """)
    }

    static func dateTime(_ t: UTCMicros) -> String {
        let iso = ISO8601.format(t)  // YYYY-MM-DDTHH:MM:SS.mmmZ
        func n(_ from: Int, _ len: Int) -> Int { Int(iso.dropFirst(from).prefix(len)) ?? 0 }
        let dt =
            "<tt:Time><tt:Hour>\(n(11, 2))</tt:Hour><tt:Minute>\(n(14, 2))</tt:Minute><tt:Second>\(n(17, 2))</tt:Second></tt:Time>"
            + "<tt:Date><tt:Year>\(n(0, 4))</tt:Year><tt:Month>\(n(5, 2))</tt:Month><tt:Day>\(n(8, 2))</tt:Day></tt:Date>"
        return envelope(
            """
            <tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>Manual</tt:DateTimeType>\
            <tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>\
            <tt:UTCDateTime>\(dt)</tt:UTCDateTime><tt:LocalDateTime>\(dt)</tt:LocalDateTime>\
            </tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>
            """)
    }

    static func deviceInformation(_ d: SimulatedDevice) -> String {
        envelope(
            """
            <tds:GetDeviceInformationResponse><tds:Manufacturer>Hallwatch</tds:Manufacturer>\
            <tds:Model>SimCam</tds:Model><tds:FirmwareVersion>1.0.\(d.index)</tds:FirmwareVersion>\
            <tds:SerialNumber>\(d.serial)</tds:SerialNumber><tds:HardwareId>simcam-\(d.mount)</tds:HardwareId>\
            </tds:GetDeviceInformationResponse>
            """)
    }

    static func services(device: String, media: String, events: String) -> String {
        func s(_ ns: String, _ x: String) -> String {
            "<tds:Service><tds:Namespace>\(ns)</tds:Namespace><tds:XAddr>\(x)</tds:XAddr>"
                + "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
        }
        return envelope(
            "<tds:GetServicesResponse>\(s(NS.device, device))\(s(NS.media, media))\(s(NS.events, events))"
                + "</tds:GetServicesResponse>")
    }

    static func capabilities(device: String, media: String, events: String) -> String {
        envelope(
            """
            <tds:GetCapabilitiesResponse><tds:Capabilities><tt:Device><tt:XAddr>\(device)</tt:XAddr></tt:Device>\
            <tt:Events><tt:XAddr>\(events)</tt:XAddr><tt:WSSubscriptionPolicySupport>false</tt:WSSubscriptionPolicySupport>\
            <tt:WSPullPointSupport>true</tt:WSPullPointSupport>\
            <tt:WSPausableSubscriptionManagerInterfaceSupport>false</tt:WSPausableSubscriptionManagerInterfaceSupport>\
            </tt:Events><tt:Media><tt:XAddr>\(media)</tt:XAddr><tt:StreamingCapabilities><tt:RTPMulticast>false</tt:RTPMulticast>\
            <tt:RTP_TCP>true</tt:RTP_TCP><tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>\
            </tds:Capabilities></tds:GetCapabilitiesResponse>
            """)
    }

    /// The JPEG snapshot profile first (a client must not pick by order), then the recordable one, then the sub
    /// stream's when the device has one.
    static func profiles(_ d: SimulatedDevice) -> String {
        func profile(token: String, name: String, encoding: String, w: Int, h: Int, fps: Double, kbps: Int) -> String {
            """
            <trt:Profiles token="\(token)" fixed="true"><tt:Name>\(name)</tt:Name>\
            <tt:VideoSourceConfiguration token="vsc0"><tt:Name>source</tt:Name><tt:UseCount>2</tt:UseCount>\
            <tt:SourceToken>vs0</tt:SourceToken><tt:Bounds x="0" y="0" width="\(d.width)" height="\(d.height)"/>\
            </tt:VideoSourceConfiguration><tt:VideoEncoderConfiguration token="vec-\(token)"><tt:Name>\(name)</tt:Name>\
            <tt:UseCount>1</tt:UseCount><tt:Encoding>\(encoding)</tt:Encoding><tt:Resolution><tt:Width>\(w)</tt:Width>\
            <tt:Height>\(h)</tt:Height></tt:Resolution><tt:Quality>5</tt:Quality><tt:RateControl>\
            <tt:FrameRateLimit>\(Int(fps.rounded()))</tt:FrameRateLimit><tt:EncodingInterval>1</tt:EncodingInterval>\
            <tt:BitrateLimit>\(kbps)</tt:BitrateLimit></tt:RateControl><tt:SessionTimeout>PT60S</tt:SessionTimeout>\
            </tt:VideoEncoderConfiguration></trt:Profiles>
            """
        }
        return envelope(
            "<trt:GetProfilesResponse>"
                + profile(token: "snapshot", name: "mainStream", encoding: "JPEG", w: 320, h: 180, fps: 1, kbps: 512)
                + profile(
                    token: "main", name: "jpeg-preview", encoding: d.encoding, w: d.width, h: d.height, fps: d.fps,
                    kbps: 4096)
                + (d.sub.map {
                    profile(
                        token: "sub", name: "subStream", encoding: $0.encoding, w: $0.width, h: $0.height, fps: d.fps,
                        kbps: 512)
                } ?? "")
                + "</trt:GetProfilesResponse>")
    }

    /// An envelope for the event service's replies (ONVIF Core §9.1), with the WS-Addressing action header.
    static func eventEnvelope(action: String, _ body: String) -> String {
        """
        <?xml version="1.0" encoding="UTF-8"?>\
        <env:Envelope xmlns:env="\(NS.soap12)" xmlns:tev="\(NS.events)" xmlns:wsnt="\(NS.wsnt)" \
        xmlns:wsa="\(NS.wsa10)" xmlns:tt="\(NS.schema)" xmlns:tns1="\(NS.topics)">\
        <env:Header><wsa:Action>\(action)</wsa:Action></env:Header><env:Body>\(body)</env:Body></env:Envelope>
        """
    }

    static func createPullPoint(address: String, now: UTCMicros, end: UTCMicros) -> String {
        eventEnvelope(
            action: NS.events + "/EventPortType/CreatePullPointSubscriptionResponse",
            """
            <tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference><wsa:Address>\(address)</wsa:Address>\
            </tev:SubscriptionReference><wsnt:CurrentTime>\(now.iso8601)</wsnt:CurrentTime>\
            <wsnt:TerminationTime>\(end.iso8601)</wsnt:TerminationTime></tev:CreatePullPointSubscriptionResponse>
            """)
    }

    static func pullMessages(now: UTCMicros, end: UTCMicros, messages: [String]) -> String {
        eventEnvelope(
            action: NS.events + "/PullPointSubscription/PullMessagesResponse",
            "<tev:PullMessagesResponse><tev:CurrentTime>\(now.iso8601)</tev:CurrentTime>"
                + "<tev:TerminationTime>\(end.iso8601)</tev:TerminationTime>\(messages.joined())</tev:PullMessagesResponse>"
        )
    }

    static func renew(now: UTCMicros, end: UTCMicros) -> String {
        eventEnvelope(
            action: NS.wsnt + "/SubscriptionManager/RenewResponse",
            "<wsnt:RenewResponse><wsnt:TerminationTime>\(end.iso8601)</wsnt:TerminationTime>"
                + "<wsnt:CurrentTime>\(now.iso8601)</wsnt:CurrentTime></wsnt:RenewResponse>")
    }

    static func unsubscribe() -> String {
        eventEnvelope(action: NS.wsnt + "/SubscriptionManager/UnsubscribeResponse", "<wsnt:UnsubscribeResponse/>")
    }

    static func streamURI(_ uri: String, invalidAfterConnect: Bool = false) -> String {
        envelope(
            """
            <trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>\(uri.replacingOccurrences(of: "&", with: "&amp;"))</tt:Uri>\
            <tt:InvalidAfterConnect>\(invalidAfterConnect)</tt:InvalidAfterConnect>\
            <tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:GetStreamUriResponse>
            """)
    }
}
