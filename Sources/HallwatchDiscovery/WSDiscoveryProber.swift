import Foundation
import HallwatchCore
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The WS-Discovery Probe message (WS-Discovery April 2005 §5.2, as ONVIF Core §7.3 uses it), SOAP 1.2.
public enum WSDiscoveryProbe {
    /// The IPv4 multicast group (WS-Discovery §2.4, SOAP-over-UDP).
    public static let multicastGroup = "239.255.255.250"
    /// The discovery port.
    public static let port: UInt16 = 3702
    /// `dn:NetworkVideoTransmitter`, what ONVIF cameras answer to.
    public static let networkVideoTransmitter = XMLName(NS.onvifNetwork, "NetworkVideoTransmitter")
    /// `tds:Device`, the second Probe issue 5 §1 sends.
    public static let onvifDevice = XMLName(NS.device, "Device")

    /// A fresh `urn:uuid:` message id.
    public static func newMessageID() -> String { "urn:uuid:" + UUID().uuidString.lowercased() }

    /// The Probe datagram asking for `types` (each type's namespace gets its own prefix).
    public static func message(messageID: String, types: [XMLName]) -> Data {
        var decls = ""
        var names: [String] = []
        for (i, t) in types.enumerated() {
            decls += " xmlns:t\(i)=\"\(xmlEscaped(t.namespace))\""
            names.append("t\(i):\(t.local)")
        }
        let text = """
            <?xml version="1.0" encoding="UTF-8"?>\
            <s:Envelope xmlns:s="\(NS.soap12)" xmlns:a="\(NS.wsa2004)" xmlns:d="\(NS.wsd2005)"\(decls)>\
            <s:Header><a:Action s:mustUnderstand="1">\(NS.wsd2005)/Probe</a:Action>\
            <a:MessageID>\(xmlEscaped(messageID))</a:MessageID>\
            <a:ReplyTo><a:Address>\(NS.wsa2004)/role/anonymous</a:Address></a:ReplyTo>\
            <a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header>\
            <s:Body><d:Probe><d:Types>\(names.joined(separator: " "))</d:Types></d:Probe></s:Body></s:Envelope>
            """
        return Data(text.utf8)
    }
}

/// One device's answer to a Probe, with the address it came from.
public struct ProbeReply: Sendable, Equatable {
    /// The endpoint as the device described itself.
    public var endpoint: DiscoveredEndpoint
    /// The IPv4 source address of the datagram: the address the device was actually reached at.
    public var from: String
    /// A reply from its endpoint and source address.
    public init(endpoint: DiscoveredEndpoint, from: String) {
        self.endpoint = endpoint
        self.from = from
    }
}

/// What one probe round collected.
public struct ProbeOutcome: Sendable, Equatable {
    /// Cameras that answered, de-duplicated by ``DiscoveredEndpoint/endpointKey`` (first answer kept), in
    /// arrival order. Non-camera endpoints are left out.
    public var replies: [ProbeReply] = []
    /// Datagrams that were not a readable discovery message (malformed, too large, DTD, …).
    public var malformed = 0
    /// Well-formed messages that were not a ProbeMatches for this probe (wrong RelatesTo, Hello, faults…).
    public var unrelated = 0
    /// ProbeMatches entries from devices that are not cameras.
    public var notCameras = 0
    /// Camera ProbeMatches whose `RelatesTo` is missing or not this round's MessageID, yet which arrived on
    /// this round's own ephemeral port — an address only a receiver of one of our Probes can know (a
    /// camera quirk: a fixed or stale RelatesTo). Not in ``replies``; the agent counts them as seen.
    public var mismatched: [ProbeReply] = []
}

/// Sends a WS-Discovery Probe on one IPv4 interface and collects the ProbeMatches (SOAP-over-UDP 1.1).
///
/// Protocol steps, as coded below:
/// 1. Open a UDP socket bound to the interface's address on an ephemeral port; set `IP_MULTICAST_IF` to
///    that address (never rely on the default route: a camera VLAN usually has none) and TTL 1.
/// 2. Send the Probe to 239.255.255.250:3702, then repeat it once after a random 50–250 ms
///    (SOAP-over-UDP 1.1 Appendix I: `MULTICAST_UDP_REPEAT` = 1, `UDP_MIN_DELAY`, `UDP_MAX_DELAY`).
/// 3. Until `listenFor` has passed, read datagrams of at most 64 KiB (a longer one is dropped, not cut),
///    keep ProbeMatches whose `RelatesTo` is this Probe's MessageID, and skip everything else, logging it.
///
/// The socket is created in ``init(interfaceAddress:logger:)`` (so a test can create it inside a network
/// namespace); ``probe(types:listenFor:clocks:)`` blocks the calling thread — call it from a dedicated
/// thread, not the cooperative pool.
public final class WSDiscoveryProber {
    private let fd: Int32
    /// The IPv4 address of the interface probes leave by.
    public let interfaceAddress: String
    private let logger: Logger
    /// Most distinct endpoints kept per round (bounds memory under a flood).
    public static let maxEndpoints = 4096

    /// Opens the socket on `interfaceAddress` (dotted IPv4). Throws ``SystemError`` or, for a bad
    /// address, `SystemError("inet_pton", errno: EINVAL)`.
    public init(interfaceAddress: String, logger: Logger) throws {
        var addr = in_addr()
        guard inet_pton(AF_INET, interfaceAddress, &addr) == 1 else {
            throw SystemError("inet_pton", errno: EINVAL, subject: interfaceAddress)
        }
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw SystemError("socket") }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr = addr
        local.sin_port = 0
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var ttl: UInt8 = 1
        guard bound == 0,
            setsockopt(s, Int32(IPPROTO_IP), IP_MULTICAST_IF, &addr, socklen_t(MemoryLayout<in_addr>.size)) == 0,
            setsockopt(s, Int32(IPPROTO_IP), IP_MULTICAST_TTL, &ttl, 1) == 0
        else {
            let e = SystemError(bound != 0 ? "bind" : "setsockopt", subject: interfaceAddress)
            close(s)
            throw e
        }
        fd = s
        self.interfaceAddress = interfaceAddress
        self.logger = logger
    }

    deinit { close(fd) }

    /// Runs one probe round for `types` and returns what answered within `listenFor`.
    public func probe(
        types: [XMLName] = [WSDiscoveryProbe.networkVideoTransmitter], listenFor: Duration = .seconds(3),
        clocks: any Clocks = SystemClocks()
    ) throws -> ProbeOutcome {
        try probe(typeSets: [types], listenFor: listenFor, clocks: clocks)
    }

    /// Runs one probe round sending one Probe per entry of `typeSets` (issue 5 §1: `dn:NetworkVideoTransmitter`,
    /// then `tds:Device`), each with its own MessageID and its repeat, and collects answers to any of them
    /// within `listenFor` (WS-Discovery 1.1 §5.2: targets answer within `APP_MAX_DELAY`, 500 ms).
    public func probe(typeSets: [[XMLName]], listenFor: Duration, clocks: any Clocks = SystemClocks()) throws
        -> ProbeOutcome
    {
        let ids = typeSets.map { _ in WSDiscoveryProbe.newMessageID() }
        let datagrams = zip(ids, typeSets).map { WSDiscoveryProbe.message(messageID: $0, types: $1) }
        let ownIDs = Set(ids)
        let startNanos = clocks.monotonicNanos()
        let listenNanos = UInt64(max(0, listenFor.seconds) * 1e9)
        // Each Probe is sent at once and repeated after a random 50–250 ms; later type sets follow 20 ms apart.
        var sends: [(at: UInt64, index: Int)] = datagrams.indices.flatMap { i -> [(at: UInt64, index: Int)] in
            let base = UInt64(i) * 20_000_000
            return [(base, i), (base + UInt64.random(in: 50_000_000...250_000_000), i)]
        }.sorted { $0.at < $1.at }
        var mismatchedSeen = Set<String>()
        var outcome = ProbeOutcome()
        var seen = Set<String>()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let elapsed = clocks.monotonicNanos() &- startNanos
            if let next = sends.first, next.at <= elapsed {
                sends.removeFirst()
                try send(datagrams[next.index])
                continue
            }
            guard elapsed < listenNanos else { break }
            let until = min(listenNanos, sends.first?.at ?? listenNanos)
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let waitMs = Int32(min(1_000, (until - elapsed) / 1_000_000 + 1))
            let ready = retryingEINTR { poll(&p, 1, waitMs) }
            guard ready > 0 else {
                if ready < 0 { throw SystemError("poll") }
                continue
            }
            guard let dg = try UDP.receive(fd, into: &buffer) else { continue }
            let source = dg.from
            guard !dg.oversize else {
                outcome.malformed += 1
                logger.debug("discovery datagram over 64 KiB skipped", metadata: ["from": "\(source)"])
                continue
            }
            let message: DiscoveryMessage
            do {
                message = try DiscoveryMessage.parse(dg.bytes)
            } catch let e as ONVIFError {
                outcome.malformed += 1
                logger.debug(
                    "discovery datagram skipped", metadata: ["from": "\(source)", "error.code": "\(e.code.rawValue)"])
                continue
            }
            guard case .probeMatches(let header, let matches, _) = message else {
                outcome.unrelated += 1
                continue
            }
            guard let relatesTo = header.relatesTo, ownIDs.contains(relatesTo) else {
                outcome.unrelated += 1
                for m in matches where m.isCamera && mismatchedSeen.count < Self.maxEndpoints {
                    if mismatchedSeen.insert(m.endpointKey).inserted {
                        outcome.mismatched.append(ProbeReply(endpoint: m, from: source))
                    }
                }
                continue
            }
            for m in matches {
                guard m.isCamera else {
                    outcome.notCameras += 1
                    continue
                }
                guard seen.count < Self.maxEndpoints, seen.insert(m.endpointKey).inserted else { continue }
                outcome.replies.append(ProbeReply(endpoint: m, from: source))
            }
        }
        return outcome
    }

    private func send(_ datagram: Data) throws {
        try UDP.send(fd, datagram, to: WSDiscoveryProbe.multicastGroup, port: WSDiscoveryProbe.port)
    }

    static func text(_ a: in_addr) -> String {
        var a = a
        var buf = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count))
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
