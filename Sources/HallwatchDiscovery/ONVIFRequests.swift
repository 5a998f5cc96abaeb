import Foundation

/// The SOAP 1.2 requests the discovery agent sends to a device: the description in the order issue 5 §2 gives
/// (ONVIF Core §8, Media Service Spec §5), and the pull-point event subscription (ONVIF Core §9.1, issue 16).
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
    /// `tev:CreatePullPointSubscription` (ONVIF Core §9.1.1) with a ConcreteSet topic expression (`topics`, e.g.
    /// `tns1:Door//.|tns1:AccessControl//.`) and an initial termination time (`PT60S`).
    case createPullPointSubscription(topics: String, initialTermination: String)
    /// `tev:PullMessages` on the subscription at `to` (ONVIF Core §9.1.2): wait at most `timeout` (`PT10S`) for
    /// up to `limit` messages.
    case pullMessages(to: String, timeout: String, limit: Int)
    /// `wsnt:Renew` of the subscription at `to` (WS-BaseNotification §6.1, ONVIF Core §9.1.3).
    case renew(to: String, termination: String)
    /// `wsnt:Unsubscribe` of the subscription at `to` (WS-BaseNotification §6.2).
    case unsubscribe(to: String)

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
        case .createPullPointSubscription: return NS.events + "/EventPortType/CreatePullPointSubscriptionRequest"
        case .pullMessages: return NS.events + "/PullPointSubscription/PullMessagesRequest"
        case .renew: return NS.wsnt + "/SubscriptionManager/RenewRequest"
        case .unsubscribe: return NS.wsnt + "/SubscriptionManager/UnsubscribeRequest"
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
        case .createPullPointSubscription(let topics, let termination):
            return "<tev:CreatePullPointSubscription><tev:Filter><wsnt:TopicExpression "
                + "Dialect=\"http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet\">\(xmlEscaped(topics))"
                + "</wsnt:TopicExpression></tev:Filter><tev:InitialTerminationTime>\(xmlEscaped(termination))"
                + "</tev:InitialTerminationTime></tev:CreatePullPointSubscription>"
        case .pullMessages(_, let timeout, let limit):
            return "<tev:PullMessages><tev:Timeout>\(xmlEscaped(timeout))</tev:Timeout>"
                + "<tev:MessageLimit>\(limit)</tev:MessageLimit></tev:PullMessages>"
        case .renew(_, let termination):
            return "<wsnt:Renew><wsnt:TerminationTime>\(xmlEscaped(termination))</wsnt:TerminationTime></wsnt:Renew>"
        case .unsubscribe: return "<wsnt:Unsubscribe/>"
        }
    }

    /// The subscription address a request goes to, sent as `wsa:To` (WS-Addressing 1.0 SOAP Binding §2.1):
    /// devices that serve every pull point on one URL tell them apart by it.
    var addressedTo: String? {
        switch self {
        case .pullMessages(let to, _, _), .renew(let to, _), .unsubscribe(let to): return to
        default: return nil
        }
    }

    /// The request envelope, with a `wsse:Security` header when `token` is given.
    /// For the subscription requests, WS-Addressing `wsa:Action` and `wsa:To` headers too.
    public func envelope(token: UsernameToken?) -> Data {
        var blocks = token.map(\.securityHeaderXML) ?? ""
        if let to = addressedTo {
            blocks += "<wsa:Action>\(xmlEscaped(action))</wsa:Action><wsa:To>\(xmlEscaped(to))</wsa:To>"
        }
        let header = blocks.isEmpty ? "" : "<s:Header>\(blocks)</s:Header>"
        let text = """
            <?xml version="1.0" encoding="UTF-8"?>\
            <s:Envelope xmlns:s="\(NS.soap12)" xmlns:tds="\(NS.device)" xmlns:trt="\(NS.media)" xmlns:tr2="\(NS.media2)" xmlns:tt="\(NS.schema)" \
            xmlns:tev="\(NS.events)" xmlns:wsnt="\(NS.wsnt)" xmlns:wsa="\(NS.wsa10)">\
            \(header)<s:Body>\(body)</s:Body></s:Envelope>
            """
        return Data(text.utf8)
    }
}
