import HallwatchCore
import Yams

/// `discovery:` — the ONVIF discovery agent (`hallwatch-discovery`).
public struct DiscoveryConfig: Codable, Sendable, Equatable {
    /// Interfaces to probe and listen on: names (`eth1`) or this box's IPv4 addresses. Required, 1–16.
    /// Probes leave only by these (the outgoing interface is set explicitly, TTL 1). Not secret.
    public var interfaces: [String]
    /// Time between probe rounds. Default `60s`, range 5s–1h.
    public var period: Duration = .seconds(60)
    /// How long a round waits for answers. Default `2s`, range 500ms–10s.
    public var listen: Duration = .seconds(2)
    /// Rounds a device may miss before it is marked gone. Default 3, range 1–100.
    public var missedProbes: Int = 3
    /// Most devices tracked. Default 256, range 1–4096.
    public var maxDevices: Int = 256
    /// Timeout of each ONVIF HTTP request. Default `4s`, range 1s–30s.
    public var requestTimeout: Duration = .seconds(4)
    /// `manual` (default): `hallwatchctl camera adopt ID` adds a camera; `auto`: the agent adds every camera it
    /// describes with a recordable stream — except to a signed release (a provisioned box), where it only
    /// publishes the proposed entry for the next bundle.
    public var adopt: Adopt = .manual
    /// ONVIF user name for every camera. Default none. Not secret. Given with ``passwordFile`` or not at all.
    public var username: String?
    /// File whose first line is the ONVIF password (secret; never in the config, URIs, logs or the bus). It is
    /// also given to adopted cameras as their RTSP `passwordFile`. Default none.
    public var passwordFile: String?
    /// ONVIF devices whose events the agent subscribes to (door controllers, cameras with inputs; issue 16).
    /// Their events reach `hallwatch-web` as source `onvif:<id>`. Default none, at most 64.
    public var eventDevices: [EventDevice] = []

    /// `discovery.eventDevices[]` — one device subscribed for events (a real-time pull point, ONVIF Core §9.1).
    public struct EventDevice: Codable, Sendable, Equatable {
        /// Its id: events come from source `onvif:<id>`, and doors name it in `refs` (`source: onvif:<id>`,
        /// `ref:` its `DoorToken`). Required.
        public var id: String
        /// Its device service URL (`http://10.0.0.5/onvif/device_service`). Required.
        public var xaddr: String
        /// Its own ONVIF user name (a door controller rarely shares the cameras' account). Default: the
        /// discovery-wide `username` and `passwordFile`. Not secret. Given with ``passwordFile`` or not at all.
        public var username: String?
        /// File whose first line is its own ONVIF password (secret; an absolute path). Default: the
        /// discovery-wide one.
        public var passwordFile: String?
        /// A device from its parts; without `username` and `passwordFile` it uses the discovery-wide ones.
        public init(id: String, xaddr: String, username: String? = nil, passwordFile: String? = nil) {
            self.id = id
            self.xaddr = xaddr
            self.username = username
            self.passwordFile = passwordFile
        }
    }

    /// How discovered cameras become configured ones.
    public enum Adopt: String, Codable, Sendable, CaseIterable {
        /// Only by `hallwatchctl camera adopt`.
        case manual
        /// Every described camera with a recordable stream.
        case auto
    }
    /// A discovery section on `interfaces`, everything else at its default.
    public init(interfaces: [String]) { self.interfaces = interfaces }
}

extension HallwatchConfig {
    /// The ONVIF discovery agent (`discovery:`; see ``DiscoveryConfig``). Absent (`nil`): the agent does not run.
    public var discovery: DiscoveryConfig? {
        get { self[section: DiscoverySection.self] }
        set { self[section: DiscoverySection.self] = newValue }
    }
}

/// `discovery:` as a section of the document.
enum DiscoverySection: ConfigSection {
    static let key = "discovery"
    static var absent: DiscoveryConfig? { nil }
    static let keys: [ConfigKey<DiscoveryConfig>] = [
        .value("interfaces", \.interfaces, .sequence(.scalar(.text(maxBytes: 64)), maxCount: 16), required: true),
        .duration("period", \.period, min: .seconds(5), max: .seconds(3600)),
        .duration("listen", \.listen, min: .milliseconds(500), max: .seconds(10)),
        .scalar("missedProbes", \.missedProbes, .integer(1...100, multipleOf: 1)),
        .scalar("maxDevices", \.maxDevices, .integer(1...4096, multipleOf: 1)),
        .duration("requestTimeout", \.requestTimeout, min: .seconds(1), max: .seconds(30)),
        .scalar("adopt", \.adopt, .oneOf(DiscoveryConfig.Adopt.allCases.map(\.rawValue))),
        .scalar("username", \.username, .text(maxBytes: 128)),
        .scalar("passwordFile", \.passwordFile, .absolutePath),
        .value("eventDevices", \.eventDevices, .sequence(ConfigKey.mapping(eventDeviceKeys), maxCount: 64)),
    ]
    static let eventDeviceKeys: [ConfigKey<DiscoveryConfig.EventDevice>] = [
        .scalar("id", \.id, .identifier, required: true),
        .scalar("xaddr", \.xaddr, .text(maxBytes: 512), required: true),
        .scalar("username", \.username, .text(maxBytes: 128)),
        .scalar("passwordFile", \.passwordFile, .absolutePath),
    ]
    static let schema = ConfigKey.mapping(keys)

    static func decode(_ node: Node) throws -> DiscoveryConfig? {
        var discovery = DiscoveryConfig(interfaces: [])  // `interfaces` is required: always read
        try ConfigKey.read(keys, from: node, into: &discovery)
        return discovery
    }

    /// At least one interface; `username` and `passwordFile` together (discovery-wide and per event device).
    static func validate(_ config: HallwatchConfig, _ check: inout ConfigCheck) {
        guard let d = config.discovery else { return }
        check.need(
            !d.interfaces.isEmpty, ["discovery", "interfaces"], "expected at least one interface name or IPv4 address")
        check.need(
            (d.username == nil) == (d.passwordFile == nil),
            ["discovery", d.username == nil ? "passwordFile" : "username"],
            "username and passwordFile go together")
        var seen = Set<String>()
        for (i, e) in d.eventDevices.enumerated() {
            check.need(
                seen.insert(e.id).inserted, ["discovery", "eventDevices", "[\(i)]", "id"], "duplicate id '\(e.id)'")
            check.need(
                (e.username == nil) == (e.passwordFile == nil),
                ["discovery", "eventDevices", "[\(i)]", e.username == nil ? "passwordFile" : "username"],
                "username and passwordFile go together")
            let lower = e.xaddr.lowercased()
            check.need(
                (lower.hasPrefix("http://") || lower.hasPrefix("https://")) && !e.xaddr.contains(where: \.isWhitespace),
                ["discovery", "eventDevices", "[\(i)]", "xaddr"], "expected an http(s) URL of the device service")
        }
    }
}
