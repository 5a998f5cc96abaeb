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
enum BusSection: KeyedConfigSection {
    static let key = "bus"
    static var absent: BusConfig { BusConfig() }
    static let keys: [ConfigKey<BusConfig>] = [
        .scalar("socket", \.socket, .path)
    ]
}
