import Foundation

/// WS-Addressing headers of a discovery message (WS-Discovery 1.1 §3, WS-Addressing §3).
public struct DiscoveryHeader: Sendable, Equatable {
    /// `wsa:MessageID`, trimmed.
    public var messageID: String?
    /// `wsa:RelatesTo`, trimmed: in a ProbeMatches, the MessageID of the Probe answered.
    public var relatesTo: String?
    /// `wsa:Action`, trimmed.
    public var action: String?
    /// `wsa:To`, trimmed.
    public var to: String?
    /// `d:AppSequence` (WS-Discovery 1.1 §7): lets a receiver order Hello/Bye of one device.
    public var appSequence: AppSequence?
    /// A header from its parts.
    public init(
        messageID: String? = nil, relatesTo: String? = nil, action: String? = nil, to: String? = nil,
        appSequence: AppSequence? = nil
    ) {
        self.messageID = messageID
        self.relatesTo = relatesTo
        self.action = action
        self.to = to
        self.appSequence = appSequence
    }
}

/// `d:AppSequence` attributes.
public struct AppSequence: Sendable, Equatable {
    /// `InstanceId`: grows each time the device restarts.
    public var instanceID: UInt64?
    /// `SequenceId`, when the device has several sequences.
    public var sequenceID: String?
    /// `MessageNumber`: grows per message within an instance.
    public var messageNumber: UInt64?
    /// Attributes from their parts.
    public init(instanceID: UInt64?, sequenceID: String?, messageNumber: UInt64?) {
        self.instanceID = instanceID
        self.sequenceID = sequenceID
        self.messageNumber = messageNumber
    }
}

/// One endpoint as a ProbeMatch, Hello or Bye describes it (WS-Discovery 1.1 §4.1, §5.3, §4.2).
public struct DiscoveredEndpoint: Sendable, Equatable {
    /// `wsa:EndpointReference/wsa:Address` as sent, trimmed: the device's stable identity.
    public var address: String
    /// `d:Types`, resolved to namespace + local name. Unresolvable entries are left out.
    public var types: [XMLName]
    /// `d:Scopes`, split on any whitespace (replies pad them with spaces and newlines).
    public var scopes: [String]
    /// `d:XAddrs` that are absolute `http`/`https` URLs with a host, in the order sent.
    public var xAddrs: [String]
    /// `d:MetadataVersion`.
    public var metadataVersion: UInt64?

    /// An endpoint from its parts.
    public init(
        address: String, types: [XMLName] = [], scopes: [String] = [], xAddrs: [String] = [],
        metadataVersion: UInt64? = nil
    ) {
        self.address = address
        self.types = types
        self.scopes = scopes
        self.xAddrs = xAddrs
        self.metadataVersion = metadataVersion
    }

    /// The address in one canonical form for de-duplication: lower case, and a bare `uuid:` (sent by some
    /// TP-Link cameras) written as `urn:uuid:`.
    public var endpointKey: String {
        let a = address.lowercased()
        return a.hasPrefix("uuid:") ? "urn:" + a : a
    }

    /// `dn:NetworkVideoTransmitter` is among the types (ONVIF Core §7.3.2.2).
    public var isNetworkVideoTransmitter: Bool { types.contains(XMLName(NS.onvifNetwork, "NetworkVideoTransmitter")) }
    /// `tds:Device` is among the types.
    public var isONVIFDevice: Bool { types.contains(XMLName(NS.device, "Device")) }

    /// Whether this looks like a camera: an ONVIF type, or — when `Types` is missing altogether, as some
    /// cameras send it — at least one `onvif://www.onvif.org/` scope and one XAddr. A Windows PC's
    /// `wsdp:Device pub:Computer` Hello is not a camera.
    public var isCamera: Bool {
        if isNetworkVideoTransmitter || isONVIFDevice { return true }
        return types.isEmpty && !xAddrs.isEmpty && !onvifScopes.all.isEmpty
    }

    /// The ONVIF scopes decoded (ONVIF Core §7.3.2.2).
    public var onvifScopes: ONVIFScopes { ONVIFScopes(scopes) }

    /// ``xAddrs`` with routable addresses first and link-local ones (169.254/16, fe80::/10) last, each group
    /// in the order sent. (Preferring the interface's own subnet is the prober's job: it knows the interface.)
    public var preferredXAddrs: [String] {
        let tagged = xAddrs.map { ($0, Self.isLinkLocal(urlString: $0)) }
        return tagged.filter { !$0.1 }.map(\.0) + tagged.filter(\.1).map(\.0)
    }

    static func isLinkLocal(urlString: String) -> Bool {
        guard let host = URLComponents(string: urlString)?.host?.lowercased() else { return false }
        let h = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        return h.hasPrefix("169.254.") || h.hasPrefix("fe80:")
    }
}

/// The `onvif://www.onvif.org/<category>/<value>` scopes, decoded. Categories are matched without regard to
/// case (cameras send `Name/`, `name/`, `Model/`); values are percent-decoded. Other scopes (`http:123`) are
/// ignored here but kept in ``DiscoveredEndpoint/scopes``.
public struct ONVIFScopes: Sendable, Equatable {
    /// Every ONVIF scope as (lower-cased category, decoded value).
    public var all: [(category: String, value: String)]
    /// Parses ONVIF scope URIs (`onvif://www.onvif.org/<category>/<value>`); other scopes are ignored.
    public init(_ scopes: [String]) {
        let prefix = "onvif://www.onvif.org/"
        all = scopes.compactMap { s in
            guard s.lowercased().hasPrefix(prefix) else { return nil }
            let rest = s.dropFirst(prefix.count)
            guard let slash = rest.firstIndex(of: "/") else { return (String(rest).lowercased(), "") }
            let value = String(rest[rest.index(after: slash)...])
            return (String(rest[..<slash]).lowercased(), value.removingPercentEncoding ?? value)
        }
    }
    func first(_ category: String) -> String? {
        all.first { $0.category == category && !$0.value.isEmpty }?.value
    }
    /// `name/…`
    public var name: String? { first("name") }
    /// `hardware/…` (or `model/…`, as some cameras write it).
    public var hardware: String? { first("hardware") ?? first("model") }
    /// `location/…` (may contain further slashes).
    public var location: String? { first("location") }
    /// `MAC/…`, when the camera publishes one.
    public var mac: String? { first("mac") }
    /// `Profile/…` values (`Streaming`, `G`, `T`, …).
    public var profiles: [String] { all.filter { $0.category == "profile" }.map(\.value) }

    /// Equal when the same scopes appear in the same order.
    public static func == (a: ONVIFScopes, b: ONVIFScopes) -> Bool {
        a.all.map(\.category) == b.all.map(\.category) && a.all.map(\.value) == b.all.map(\.value)
    }
}

/// A WS-Discovery message received over SOAP-over-UDP.
public enum DiscoveryMessage: Sendable, Equatable {
    /// A Probe (someone's, or our own looped back): the types it asks for.
    case probe(DiscoveryHeader, types: [XMLName])
    /// Answers to a Probe (WS-Discovery 1.1 §5.3). `skipped` counts ProbeMatch elements without an endpoint
    /// reference, which cannot be identified and are dropped.
    case probeMatches(DiscoveryHeader, matches: [DiscoveredEndpoint], skipped: Int)
    /// A device joining the network (WS-Discovery 1.1 §4.1).
    case hello(DiscoveryHeader, DiscoveredEndpoint)
    /// A device leaving (WS-Discovery 1.1 §4.2).
    case bye(DiscoveryHeader, DiscoveredEndpoint)

    /// The message's WS-Addressing header.
    public var header: DiscoveryHeader {
        switch self {
        case .probe(let h, _), .probeMatches(let h, _, _), .hello(let h, _), .bye(let h, _): return h
        }
    }

    /// Parses one datagram (bounded by ``XMLLimits/datagram``). Throws ``ONVIFError``; a fault in reply
    /// to a Probe is thrown as `onvif.fault`.
    public static func parse(_ data: Data, limits: XMLLimits = .datagram) throws -> DiscoveryMessage {
        let env = try SOAPEnvelope.parse(data, limits: limits)
        if let fault = env.fault { throw fault.error }
        let header = Self.header(env.header)
        guard let body = env.body.children.first(where: { NS.wsd.contains($0.name.namespace) }) else {
            throw ONVIFError(.unexpectedReply, "no WS-Discovery element in the body")
        }
        let d = body.name.namespace
        switch body.name.local {
        case "Probe":
            return .probe(header, types: qnames(body.child(d, "Types")))
        case "ProbeMatches":
            var matches: [DiscoveredEndpoint] = []
            var skipped = 0
            for m in body.children(d, "ProbeMatch") {
                if let e = endpoint(m, discovery: d) { matches.append(e) } else { skipped += 1 }
            }
            return .probeMatches(header, matches: matches, skipped: skipped)
        case "Hello", "Bye":
            guard let e = endpoint(body, discovery: d) else {
                throw ONVIFError(.missingField, "\(body.name.local) without an EndpointReference address")
            }
            return body.name.local == "Hello" ? .hello(header, e) : .bye(header, e)
        default:
            throw ONVIFError(.unexpectedReply, "unexpected WS-Discovery message \(body.name.local)")
        }
    }

    static func header(_ h: ParsedXMLElement?) -> DiscoveryHeader {
        guard let h else { return DiscoveryHeader() }
        func text(_ local: String) -> String? {
            guard let t = h.child(NS.wsa, local)?.trimmedText, !t.isEmpty else { return nil }
            return t
        }
        let seq = h.child(NS.wsd, "AppSequence").map {
            AppSequence(
                instanceID: $0.attributes["InstanceId"].flatMap { UInt64($0) },
                sequenceID: $0.attributes["SequenceId"],
                messageNumber: $0.attributes["MessageNumber"].flatMap { UInt64($0) })
        }
        return DiscoveryHeader(
            messageID: text("MessageID"), relatesTo: text("RelatesTo"), action: text("Action"),
            to: text("To"), appSequence: seq)
    }

    static func qnames(_ e: ParsedXMLElement?) -> [XMLName] {
        guard let e else { return [] }
        return e.text.split(whereSeparator: { $0.isWhitespace }).compactMap { e.resolveQName(String($0)) }
    }

    static func endpoint(_ e: ParsedXMLElement, discovery d: String) -> DiscoveredEndpoint? {
        guard let address = e.child(NS.wsa, "EndpointReference")?.child(NS.wsa, "Address")?.trimmedText,
            !address.isEmpty
        else { return nil }
        let scopes = (e.child(d, "Scopes")?.text ?? "").split(whereSeparator: { $0.isWhitespace }).map(String.init)
        let xAddrs = (e.child(d, "XAddrs")?.text ?? "").split(whereSeparator: { $0.isWhitespace }).map(String.init)
            .filter(isHTTPURL)
        return DiscoveredEndpoint(
            address: address, types: qnames(e.child(d, "Types")), scopes: scopes, xAddrs: xAddrs,
            metadataVersion: e.child(d, "MetadataVersion").flatMap { UInt64($0.trimmedText) })
    }
}

/// An absolute `http`/`https` URL with a host.
func isHTTPURL(_ s: String) -> Bool {
    guard let c = URLComponents(string: s), let scheme = c.scheme?.lowercased(), scheme == "http" || scheme == "https",
        let host = c.host, !host.isEmpty
    else { return false }
    return true
}
