import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import Logging
import Synchronization

/// A process's presence on the bus: a client whose last-will marks the process `down`, and which
/// publishes `up` (retained) on connect and `stopping` on a clean exit (DESIGN.md § Two planes).
public final class Presence: Sendable {
    /// The bus client, for the process's other publications.
    public let bus: BusClient
    /// The box's topics.
    public let topics: BusTopics
    /// Process instance name, e.g. `recorder`, `capture-lobby`.
    public let name: String
    let clocks: any Clocks
    let version: Mutex<String?>

    /// The configuration release the process runs with (see ``ConfigVersion``), carried by every state it
    /// publishes; `nil` for a configuration file outside a provisioned store.
    public var configVersion: String? { version.withLock { $0 } }

    /// Creates the client (not yet connected); the will is `ProcessState.down` with reason `connection lost`.
    /// - Parameter configVersion: the release the configuration was loaded from (``ConfigVersion/of(path:)``,
    ///   read before loading), carried by every published state.
    public init(
        name: String, config: HallwatchConfig, configVersion: String? = nil, clocks: any Clocks = SystemClocks(),
        logger: Logger
    ) {
        self.name = name
        self.clocks = clocks
        version = Mutex(configVersion)
        topics = BusTopics(box: config.box)
        let will =
            (try? BusCoding.encode(
                ProcessState(process: name, state: .down, pid: 0, at: nil, reason: "connection lost"))) ?? []
        // The pid keeps two instances (a duplicated unit, a second demo) from taking each other's MQTT session
        // over in a loop; the retained process topic still names the instance.
        bus = BusClient(
            clientID: "\(name)-\(getpid())", socketPath: config.bus.socket,
            will: BusWill(topic: topics.process(name), payload: will, retain: true), logger: logger)
    }

    /// Starts connecting in the background (the broker may come up later) and queues the `up` state.
    public func announce() {
        try? bus.start()
        publishState(.up)
    }

    /// Publishes the process's state, retained.
    public func publishState(_ state: ProcessState.State, reason: String? = nil) {
        try? bus.publish(
            ProcessState(
                process: name, state: state, pid: getpid(), at: clocks.utcNow(), reason: reason,
                configVersion: configVersion),
            topic: topics.process(name), retain: true)
    }

    /// Publishes a typed error (not retained) on the box's error topic.
    public func publishError(_ event: ErrorEvent) {
        var e = event
        e.process = e.process ?? name
        e.at = e.at ?? clocks.utcNow()
        try? bus.publish(e, topic: topics.errors, retain: false)
    }

    /// Says goodbye: `stopping`, then a clean disconnect (no will).
    public func leave() async {
        publishState(.stopping)
        await bus.close(withWill: false, timeout: .seconds(2))
    }
}
