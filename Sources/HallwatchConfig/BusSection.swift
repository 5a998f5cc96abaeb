import HallwatchCore

/// `bus:` — the MQTT broker (mosquitto) on a Unix socket.
public struct BusConfig: Codable, Sendable, Equatable {
    /// Path of the broker's Unix socket. Default `/run/hallwatch/bus.sock`. Not secret.
    public var socket: String = "/run/hallwatch/bus.sock"
    /// A bus section with the given socket path (the default when omitted).
    public init(socket: String = "/run/hallwatch/bus.sock") { self.socket = socket }
}

extension HallwatchConfig {
    /// The message bus (`bus:`; see ``BusConfig``).
    public var bus: BusConfig {
        get { self[section: BusSection.self] }
        set { self[section: BusSection.self] = newValue }
    }
}

/// `bus:` as a section of the document.
enum BusSection: ConfigSection {
    static let key = "bus"
    static let schema: ConfigSchema = .mapping(["socket": .scalar(.path)])
    static var absent: BusConfig { BusConfig() }

    struct Raw: Decodable { var socket: String? }

    static func resolve(_ raw: Raw) -> BusConfig { BusConfig(socket: raw.socket ?? BusConfig().socket) }
}
