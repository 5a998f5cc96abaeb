import HallwatchCore

/// The message the broker publishes on a client's behalf when the client's connection ends without a normal
/// DISCONNECT (MQTT 5.0 §3.1.2.5 Will Flag, §3.1.3.3 Will Topic, §3.1.3.4 Will Payload, §3.1.2.6 Will QoS,
/// §3.1.2.7 Will Retain).
///
/// The broker sends it when the connection is lost (process crash, socket closed, keep-alive expired) or when
/// the client disconnects with reason code 0x04 "Disconnect with Will Message" (§3.14.2.1); a normal disconnect
/// (reason 0x00) discards it (§3.1.2.5). Hallwatch processes set a retained `ProcessState` `down` message on
/// their `BusTopics.process(_:)` topic, see ``processDown(topics:process:)``.
public struct BusWill: Sendable, Equatable {
    /// Topic name, no wildcards.
    public var topic: String
    /// Payload bytes, exactly as delivered to subscribers.
    public var payload: [UInt8]
    /// Whether the broker stores the will as the topic's retained message.
    public var retain: Bool
    /// QoS 0, 1 or 2.
    public var qos: Int32

    /// A will on `topic` (retained, QoS 1 by default).
    public init(topic: String, payload: [UInt8], retain: Bool = true, qos: Int32 = 1) {
        self.topic = topic
        self.payload = payload
        self.retain = retain
        self.qos = qos
    }

    /// The standard Hallwatch last-will: a retained QoS 1 `ProcessState` with state `down`, pid 0, no time and
    /// reason `"connection lost"` on `topics.process(process)`.
    public static func processDown(topics: BusTopics, process: String) -> BusWill {
        let state = ProcessState(process: process, state: .down, pid: 0, at: nil, reason: "connection lost")
        // Encoding a struct of strings and integers cannot fail.
        let payload = (try? BusCoding.encode(state)) ?? []
        return BusWill(topic: topics.process(process), payload: payload, retain: true, qos: 1)
    }
}

/// One application message received from the broker (an MQTT PUBLISH, MQTT 5.0 §3.3).
public struct BusMessage: Sendable, Equatable {
    /// The topic name it was published to (never a filter).
    public var topic: String
    /// Payload bytes exactly as published; empty for a retained-message deletion (§3.3.1.3).
    public var payload: [UInt8]
    /// True when the broker sent it from its retained store because of a (re-)subscription (RETAIN flag,
    /// §3.3.1.3); false for a live publication, even of a retained topic.
    public var retained: Bool

    /// A message as delivered.
    public init(topic: String, payload: [UInt8], retained: Bool) {
        self.topic = topic
        self.payload = payload
        self.retained = retained
    }

    /// Decodes the payload with `BusCoding`. Throws `DecodingError` on a malformed payload.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try BusCoding.decode(type, from: payload)
    }
}

/// A change of the client's connection, see ``BusClient/connectionEvents()``.
public enum BusConnectionEvent: Sendable, Equatable {
    /// CONNACK with reason 0x00 received (MQTT 5.0 §3.2.2.2). `sessionPresent` is the CONNACK flag (§3.2.2.1.1);
    /// it is always false here because the client connects with Clean Start (§3.1.2.4). `count` is 1 for the
    /// first connection and increments with every reconnect.
    case connected(sessionPresent: Bool, count: Int)
    /// The connection ended or a connection attempt was refused; the client keeps retrying unless it was closed.
    case disconnected(BusError)
}

/// How libmosquitto's network thread retries a lost or failed connection (`mosquitto_reconnect_delay_set`).
///
/// libmosquitto counts the delay in whole seconds, so the shortest possible non-zero delay is 1 s.
/// With `exponential` false the delays grow linearly: `initialSeconds × n`, capped at `maxSeconds`;
/// with `exponential` true: `initialSeconds × n²`, capped at `maxSeconds`.
public struct BusReconnectPolicy: Sendable, Equatable {
    /// First delay, seconds (≥ 1).
    public var initialSeconds: UInt32
    /// Largest delay, seconds (≥ `initialSeconds`).
    public var maxSeconds: UInt32
    /// Quadratic rather than linear growth.
    public var exponential: Bool

    /// A policy; `initialSeconds` is at least 1, `maxSeconds` at least `initialSeconds`.
    public init(initialSeconds: UInt32 = 1, maxSeconds: UInt32 = 5, exponential: Bool = false) {
        self.initialSeconds = max(1, initialSeconds)
        self.maxSeconds = max(self.initialSeconds, maxSeconds)
        self.exponential = exponential
    }
}
