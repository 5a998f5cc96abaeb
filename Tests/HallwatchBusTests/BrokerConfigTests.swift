import Foundation
import HallwatchBus
import Testing

@Suite("BrokerConfig")
struct BrokerConfigTests {
    @Test("renders a Unix-socket-only, anonymous, non-persistent config")
    func renderDefaults() {
        let text = BrokerConfig(socketPath: "/run/hallwatch/bus.sock").render()
        let options = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
        #expect(
            options == [
                "per_listener_settings false",
                "allow_anonymous true",
                "listener 0 /run/hallwatch/bus.sock",
                "protocol mqtt",
                "persistence false",
                "max_packet_size 1048576",
                "max_keepalive 60",
                "log_dest stderr",
                "log_timestamp false",
                "log_type error",
                "log_type warning",
                "log_type notice",
                "log_type information",
                "connection_messages true",
            ])
        #expect(options.filter { $0.hasPrefix("listener") }.count == 1)
        #expect(!options.contains { $0.hasPrefix("port") || $0.hasPrefix("bind_address") })
        #expect(text.hasSuffix("\n"))
    }

    @Test("persistence directory and user")
    func renderPersistenceAndUser() {
        let text = BrokerConfig(
            socketPath: "/run/hw/bus.sock", persistenceDirectory: "/var/lib/hallwatch/bus",
            user: "root", logTypes: ["all"], maxPacketBytes: nil, maxKeepAliveSeconds: nil
        ).render()
        let options = text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
        #expect(options.contains("user root"))
        #expect(options.contains("persistence true"))
        #expect(options.contains("persistence_location /var/lib/hallwatch/bus/"))
        #expect(options.contains("autosave_interval 60"))
        #expect(options.contains("log_type all"))
        #expect(!options.contains { $0.hasPrefix("max_packet_size") || $0.hasPrefix("max_keepalive") })
    }

    @Test(
        "validate rejects what mosquitto would misread",
        arguments: [
            BrokerConfig(socketPath: "relative/bus.sock"),
            BrokerConfig(socketPath: "/tmp/" + String(repeating: "a", count: 103)),
            BrokerConfig(socketPath: "/tmp/with space/bus.sock"),
            BrokerConfig(socketPath: "/tmp/bus.sock\nlistener 1883"),
            BrokerConfig(socketPath: "/tmp/bus.sock", persistenceDirectory: "var/lib"),
            BrokerConfig(socketPath: "/tmp/bus.sock", user: "a b"),
            BrokerConfig(socketPath: "/tmp/bus.sock", logTypes: [""]),
        ])
    func validateRejects(config: BrokerConfig) {
        let error = #expect(throws: BusError.self) { try config.validate() }
        #expect(error?.code == "bus.config")
    }

    @Test("a 107-byte socket path is accepted")
    func longestPath() throws {
        let path = "/tmp/" + String(repeating: "a", count: 102)
        #expect(path.utf8.count == 107)
        try BrokerConfig(socketPath: path).validate()
    }

    @Test("write(to:) writes render() and validates first")
    func write() throws {
        let path = NSTemporaryDirectory() + "hallwatch-broker-\(getpid()).conf"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let config = BrokerConfig(socketPath: "/run/hallwatch/bus.sock")
        try config.write(to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == config.render())
        #expect(throws: BusError.self) { try BrokerConfig(socketPath: "x").write(to: path) }
    }

    @Test("Image/mosquitto.conf.template is BrokerConfig.appliance, rendered")
    func applianceTemplate() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let template = try String(
            contentsOf: repo.appendingPathComponent("Image/mosquitto.conf.template"), encoding: .utf8)
        #expect(
            template == BrokerConfig.appliance.render(),
            "regenerate: print BrokerConfig.appliance.render() into Image/mosquitto.conf.template")
    }
}
