import Foundation

/// The SOAP 1.2 requests the discovery agent sends to a device, in the order issue 5 §2 gives
/// (ONVIF Core §8, Media Service Spec §5).
public enum ONVIFRequest: Sendable, Equatable {
    /// `tds:GetSystemDateAndTime` — sent without a token (ONVIF Core §5.12.1: devices must answer it).
    case getSystemDateAndTime
    case getDeviceInformation
    /// `tds:GetServices`; `includeCapability` asks for each service's capabilities too.
    case getServices(includeCapability: Bool)
    /// `tds:GetCapabilities` for category `All`: the fallback when GetServices is not supported.
    case getCapabilities
    /// `trt:GetProfiles` (media service 1).
    case getProfiles
    /// `trt:GetStreamUri` for RTP unicast over RTSP.
    case getStreamUri(profileToken: String)
    /// `tr2:GetProfiles` with every configuration (media service 2: the one that reports H.265).
    case getProfiles2
    /// `tr2:GetStreamUri` over RTSP (media service 2).
    case getStreamUri2(profileToken: String)

    /// The SOAP action URI (also the `action` parameter of the Content-Type).
    public var action: String {
        switch self {
        case .getSystemDateAndTime: return NS.device + "/GetSystemDateAndTime"
        case .getDeviceInformation: return NS.device + "/GetDeviceInformation"
        case .getServices: return NS.device + "/GetServices"
        case .getCapabilities: return NS.device + "/GetCapabilities"
        case .getProfiles: return NS.media + "/GetProfiles"
        case .getStreamUri: return NS.media + "/GetStreamUri"
        case .getProfiles2: return NS.media2 + "/GetProfiles"
        case .getStreamUri2: return NS.media2 + "/GetStreamUri"
        }
    }

    /// The HTTP Content-Type for SOAP 1.2 with this action (SOAP 1.2 Part 2 §7.1.4, RFC 3902).
    public var contentType: String { "application/soap+xml; charset=utf-8; action=\"\(action)\"" }

    /// Whether the request goes to a media service (version 1, or 2 for the `…2` cases) rather than the
    /// device service.
    public var isMedia: Bool {
        switch self {
        case .getProfiles, .getStreamUri, .getProfiles2, .getStreamUri2: return true
        default: return false
        }
    }

    var body: String {
        switch self {
        case .getSystemDateAndTime: return "<tds:GetSystemDateAndTime/>"
        case .getDeviceInformation: return "<tds:GetDeviceInformation/>"
        case .getServices(let include):
            return "<tds:GetServices><tds:IncludeCapability>\(include)</tds:IncludeCapability></tds:GetServices>"
        case .getCapabilities: return "<tds:GetCapabilities><tds:Category>All</tds:Category></tds:GetCapabilities>"
        case .getProfiles: return "<trt:GetProfiles/>"
        case .getStreamUri(let token):
            return "<trt:GetStreamUri><trt:StreamSetup><tt:Stream>RTP-Unicast</tt:Stream><tt:Transport>"
                + "<tt:Protocol>RTSP</tt:Protocol></tt:Transport></trt:StreamSetup>"
                + "<trt:ProfileToken>\(xmlEscaped(token))</trt:ProfileToken></trt:GetStreamUri>"
        case .getProfiles2: return "<tr2:GetProfiles><tr2:Type>All</tr2:Type></tr2:GetProfiles>"
        case .getStreamUri2(let token):
            return "<tr2:GetStreamUri><tr2:Protocol>RTSP</tr2:Protocol>"
                + "<tr2:ProfileToken>\(xmlEscaped(token))</tr2:ProfileToken></tr2:GetStreamUri>"
        }
    }

    /// The request envelope, with a `wsse:Security` header when `token` is given.
    public func envelope(token: UsernameToken?) -> Data {
        let header = token.map { "<s:Header>\($0.securityHeaderXML)</s:Header>" } ?? ""
        let text = """
            <?xml version="1.0" encoding="UTF-8"?>\
            <s:Envelope xmlns:s="\(NS.soap12)" xmlns:tds="\(NS.device)" xmlns:trt="\(NS.media)" xmlns:tr2="\(NS.media2)" xmlns:tt="\(NS.schema)">\
            \(header)<s:Body>\(body)</s:Body></s:Envelope>
            """
        return Data(text.utf8)
    }
}
