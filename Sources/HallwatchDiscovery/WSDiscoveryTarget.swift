import Foundation

/// The messages a WS-Discovery *target service* (a camera) sends, WS-Discovery April 2005 as ONVIF Core §7
/// requires: Hello (§4.1), Bye (§4.2) and ProbeMatches (§5.3). The simulated camera uses them; tests use them
/// as a fake peer.
public enum WSDiscoveryTarget {
    /// What a target says about itself.
    public struct Description: Sendable, Equatable {
        /// `wsa:EndpointReference/wsa:Address`, e.g. `urn:uuid:…`: stable across restarts.
        public var address: String
        /// `d:Types` as `prefix:local` with the prefixes this builder declares (`dn:`, `tds:`).
        public var types: String
        /// `d:Scopes`; `nil` leaves the element out (a camera quirk).
        public var scopes: [String]?
        /// `d:XAddrs`, in the order sent.
        public var xAddrs: [String]
        /// `d:MetadataVersion`.
        public var metadataVersion: UInt64
        /// An endpoint to announce; the types default to an ONVIF network video transmitter.
        public init(
            address: String, types: String = "dn:NetworkVideoTransmitter tds:Device", scopes: [String]?,
            xAddrs: [String], metadataVersion: UInt64 = 1
        ) {
            self.address = address
            self.types = types
            self.scopes = scopes
            self.xAddrs = xAddrs
            self.metadataVersion = metadataVersion
        }
    }

    /// `d:AppSequence` values (WS-Discovery §7): an instance id that grows per start, a message number that
    /// grows per message.
    public struct Sequence: Sendable, Equatable {
        /// `InstanceId`.
        public var instanceID: UInt64
        /// `MessageNumber`.
        public var messageNumber: UInt64
        /// A sequence from its parts.
        public init(instanceID: UInt64, messageNumber: UInt64) {
            self.instanceID = instanceID
            self.messageNumber = messageNumber
        }
    }

    /// A Hello announcing `d` (sent to the group when the target joins).
    public static func hello(_ d: Description, sequence: Sequence) -> Data {
        envelope(
            action: "Hello", relatesTo: nil, to: "urn:schemas-xmlsoap-org:ws:2005:04:discovery", sequence: sequence,
            body: "<d:Hello>\(endpoint(d, withDetails: true))</d:Hello>")
    }

    /// A Bye for `d` (sent to the group when the target leaves): only the endpoint reference.
    public static func bye(_ d: Description, sequence: Sequence) -> Data {
        envelope(
            action: "Bye", relatesTo: nil, to: "urn:schemas-xmlsoap-org:ws:2005:04:discovery", sequence: sequence,
            body: "<d:Bye>\(endpoint(d, withDetails: false))</d:Bye>")
    }

    /// A ProbeMatches answering the Probe with MessageID `relatesTo` (sent unicast to the prober).
    public static func probeMatches(_ matches: [Description], relatesTo: String, sequence: Sequence) -> Data {
        let body = matches.map { "<d:ProbeMatch>\(endpoint($0, withDetails: true))</d:ProbeMatch>" }.joined()
        return envelope(
            action: "ProbeMatches", relatesTo: relatesTo, to: NS.wsa2004 + "/role/anonymous", sequence: sequence,
            body: "<d:ProbeMatches>\(body)</d:ProbeMatches>")
    }

    /// Whether a Probe asking for `types` matches a target of `d.types` (WS-Discovery §5.1: every requested
    /// type must be among the target's; an empty request matches everything). Scopes are not filtered.
    public static func matches(probeTypes: [XMLName], target d: Description) -> Bool {
        let mine: Set<XMLName> = Set(
            d.types.split(separator: " ").compactMap { t -> XMLName? in
                switch t {
                case "dn:NetworkVideoTransmitter": return WSDiscoveryProbe.networkVideoTransmitter
                case "tds:Device": return WSDiscoveryProbe.onvifDevice
                default: return nil
                }
            })
        return probeTypes.allSatisfy { mine.contains($0) }
    }

    static func endpoint(_ d: Description, withDetails: Bool) -> String {
        var s = "<a:EndpointReference><a:Address>\(xmlEscaped(d.address))</a:Address></a:EndpointReference>"
        guard withDetails else { return s }
        s += "<d:Types>\(xmlEscaped(d.types))</d:Types>"
        if let scopes = d.scopes { s += "<d:Scopes>\(xmlEscaped(scopes.joined(separator: " ")))</d:Scopes>" }
        s += "<d:XAddrs>\(xmlEscaped(d.xAddrs.joined(separator: " ")))</d:XAddrs>"
        s += "<d:MetadataVersion>\(d.metadataVersion)</d:MetadataVersion>"
        return s
    }

    static func envelope(action: String, relatesTo: String?, to: String, sequence: Sequence, body: String) -> Data {
        let relates = relatesTo.map { "<a:RelatesTo>\(xmlEscaped($0))</a:RelatesTo>" } ?? ""
        let text = """
            <?xml version="1.0" encoding="UTF-8"?>\
            <s:Envelope xmlns:s="\(NS.soap12)" xmlns:a="\(NS.wsa2004)" xmlns:d="\(NS.wsd2005)" \
            xmlns:dn="\(NS.onvifNetwork)" xmlns:tds="\(NS.device)"><s:Header>\
            <a:MessageID>\(WSDiscoveryProbe.newMessageID())</a:MessageID>\(relates)\
            <a:To>\(to)</a:To><a:Action>\(NS.wsd2005)/\(action)</a:Action>\
            <d:AppSequence InstanceId="\(sequence.instanceID)" MessageNumber="\(sequence.messageNumber)"/>\
            </s:Header><s:Body>\(body)</s:Body></s:Envelope>
            """
        return Data(text.utf8)
    }
}
