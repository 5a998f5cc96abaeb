import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import Logging

/// What the discovery agent published, read from the bus for `hallwatchctl camera list-discovered` and `adopt`.
public enum DiscoveredDevices {
    /// Every retained `…/discovered/<id>` message (they arrive at once on subscription; read for 600 ms),
    /// present devices first, then by name.
    /// - Throws: ``HallwatchBus/BusError`` when the bus cannot be reached within 3 s.
    public static func read(config: HallwatchConfig, logger: Logger) async throws -> [DiscoveredDevice] {
        let bus = BusClient(
            clientID: "hallwatchctl-\(getpid())", socketPath: config.bus.socket, will: nil, logger: logger)
        try await bus.connect(timeout: .seconds(3))
        let stream = bus.subscribe(BusTopics(box: config.box).allDiscovered)
        let reader = Task {
            var devices: [String: DiscoveredDevice] = [:]
            for await m in stream {
                if let d = try? BusCoding.decode(DiscoveredDevice.self, from: m.payload) { devices[d.id] = d }
            }
            return devices
        }
        try await Task.sleep(for: .milliseconds(600))
        reader.cancel()
        await bus.close()
        let found = await reader.value
        return found.values.sorted {
            ($0.presence.rawValue, $0.name ?? $0.id) < ($1.presence.rawValue, $1.name ?? $1.id)
        }
    }
}
