import CMosquitto
import HallwatchCore
import Logging

/// A connection to the Hallwatch bus: an MQTT 5 client (libmosquitto) on the broker's Unix socket.
///
/// - The network loop runs on libmosquitto's own thread (`mosquitto_loop_start`); no method blocks the Swift
///   concurrency pool except `deinit`, which joins that thread (see below).
/// - The client reconnects by itself after the connection is lost, and also when the broker is not up yet at
///   the first attempt (see ``BusReconnectPolicy``). After every (re)connect it subscribes all live
///   subscriptions again (the client uses Clean Start, MQTT 5.0 §3.1.2.4, so the broker keeps no session) and
///   re-publishes the latest retained message it published on each topic (so a broker restarted without
///   persistence, or this client's own last-will, does not leave stale state behind).
/// - It is `Sendable`: all mutable state sits behind one lock, and libmosquitto's functions are thread-safe
///   in threaded mode.
///
/// ```swift
/// let topics = BusTopics(box: "box")
/// let bus = BusClient(clientID: "recorder", socketPath: "/run/hallwatch/bus.sock",
///                     will: .processDown(topics: topics, process: "recorder"), logger: logger)
/// try await bus.connect(timeout: .seconds(10))
/// try bus.publish(ProcessState(process: "recorder", state: .up, pid: getpid(), at: clocks.utcNow()),
///                 topic: topics.process("recorder"), retain: true)
/// for await message in bus.subscribe(topics.allCameraStates) { … }
/// ```
///
/// `deinit` disconnects normally (reason 0x00, the will is discarded) if ``disconnect(withWill:)`` was not
/// called, then joins libmosquitto's thread; this takes at most the time to write the DISCONNECT or to finish
/// the current reconnect delay. Every subscription stream finishes.
public final class BusClient: Sendable {
    let core: BusCore

    /// Creates a client; it does not connect until ``connect(timeout:)`` or ``start()``.
    ///
    /// - Parameters:
    ///   - clientID: MQTT Client Identifier (§3.1.3.1), unique per broker: a second connection with the same id
    ///     takes the session over and the broker closes the first (§3.1.4, reason 0x8E). Hallwatch uses the
    ///     process instance name (`recorder`, `capture-lobby`).
    ///   - socketPath: the broker's Unix socket (at most 107 bytes), e.g. `/run/hallwatch/bus.sock`.
    ///   - will: the last-will (§3.1.2.5), or `nil`.
    ///   - logger: receives connection changes and libmosquitto's log (packet-level lines at `trace`).
    ///     Payloads are never logged.
    ///   - keepAliveSeconds: MQTT Keep Alive (§3.1.2.10), seconds, ≥ 5; the broker drops a silent client after
    ///     1.5 × this and publishes its will.
    ///   - reconnect: reconnect delays (whole seconds, libmosquitto's granularity).
    ///   - clocks: where the client's own timeouts (``connect(timeout:)``, the goodbye's flush) are measured.
    ///
    /// Parameters libmosquitto rejects (e.g. an invalid will topic) do not trap here; ``start()`` and
    /// ``connect(timeout:)`` then throw `bus.config`.
    public init(
        clientID: String, socketPath: String, will: BusWill?, logger: Logger,
        keepAliveSeconds: Int32 = 15, reconnect: BusReconnectPolicy = BusReconnectPolicy(),
        clocks: any Clocks = SystemClocks()
    ) {
        core = BusCore(
            clientID: clientID, socketPath: socketPath, will: will, keepAliveSeconds: keepAliveSeconds,
            reconnect: reconnect, clocks: clocks, logger: logger)
    }

    deinit {
        core.stop()
    }

    /// The MQTT Client Identifier.
    public var clientID: String { core.clientID }
    /// The broker's Unix socket path.
    public var socketPath: String { core.socketPath }
    /// Whether a CONNACK with success was received and the connection has not been lost since.
    public var isConnected: Bool { core.isConnected }

    /// Starts connecting in the background and returns at once; idempotent. Afterwards the client keeps
    /// (re)connecting until ``disconnect(withWill:)``.
    ///
    /// - Throws: ``BusError`` `bus.config` when libmosquitto rejects the socket path, keep-alive, client id or
    ///   will; `bus.closed` after ``disconnect(withWill:)``. An absent broker is not an error here.
    public func start() throws(BusError) {
        try core.start()
    }

    /// Starts connecting (``start()``) and waits until the broker has accepted the connection.
    ///
    /// Returns at once when already connected. On timeout the client keeps retrying in the background, so a
    /// caller may log the error and carry on, or call `connect` again.
    ///
    /// - Parameter timeout: how long to wait for the CONNACK (MQTT 5.0 §3.2).
    /// - Throws: ``BusError`` `bus.timeout` (message says whether the socket exists; `mosquittoError` holds the
    ///   last connect failure), `bus.connect` when the broker refused the connection (CONNACK reason ≥ 0x80,
    ///   §3.2.2.2), `bus.config`, `bus.closed`; `CancellationError` when the task is cancelled.
    public func connect(timeout: Duration) async throws {
        try core.start()
        let core = self.core
        try await core.wait(for: .connected, timeout: timeout) { core.timeoutError(after: timeout) }
    }

    /// Publishes `payload` on `topic` (an MQTT PUBLISH, §3.3).
    ///
    /// Returns once libmosquitto has queued the message; delivery is asynchronous. While disconnected
    /// (broker not up yet, or reconnecting), libmosquitto keeps QoS 1 and 2 messages in memory and sends them
    /// after the next CONNACK (unbounded queue, lost if the process ends first); this is not an error. A QoS 0
    /// message cannot be queued and throws. Retained publications (§3.3.1.3) are also remembered per
    /// topic and re-published after every reconnect; an empty retained payload deletes the topic's retained
    /// message and is forgotten.
    ///
    /// - Parameters:
    ///   - topic: a topic name (no `+`/`#`), e.g. `BusTopics.cameraState(_:)`.
    ///   - payload: the bytes, delivered exactly; at most 268 435 455 bytes (§2.1.4).
    ///   - retain: RETAIN flag (§3.3.1.3): the broker keeps the message as the topic's current state.
    ///   - qos: 0, 1 (default, at least once) or 2 (§4.3).
    /// - Throws: ``BusError`` `bus.publish` (invalid topic or QoS, payload too large, QoS 0 while disconnected),
    ///   `bus.closed`.
    public func publish(topic: String, payload: [UInt8], retain: Bool, qos: Int32 = 1) throws(BusError) {
        try core.publish(topic: topic, payload: payload, retain: retain, qos: qos)
    }

    /// Publishes `value` encoded as JSON with `BusCoding` (sorted keys), as ``publish(topic:payload:retain:qos:)``.
    ///
    /// - Throws: ``BusError`` `bus.encode` when encoding fails, otherwise as ``publish(topic:payload:retain:qos:)``.
    public func publish<T: Encodable>(_ value: T, topic: String, retain: Bool, qos: Int32 = 1) throws(BusError) {
        let payload: [UInt8]
        do {
            payload = try BusCoding.encode(value)
        } catch {
            throw BusError(code: "bus.encode", message: "could not encode \(T.self) for \(topic): \(error)")
        }
        try core.publish(topic: topic, payload: payload, retain: retain, qos: qos)
    }

    /// Publishes `event` on `BusTopics.errors`, not retained, QoS 1.
    ///
    /// - Throws: as ``publish(_:topic:retain:qos:)``.
    public func publish(error event: ErrorEvent, topics: BusTopics) throws(BusError) {
        try publish(event, topic: topics.errors, retain: false, qos: 1)
    }

    /// Subscribes to `filter` and returns the stream of matching messages.
    ///
    /// - Parameters:
    ///   - filter: an MQTT topic filter (§4.7): `+` matches one level, a final `#` any number, e.g.
    ///     `hallwatch/v1/box/camera/+/state`. Several streams may use the same or overlapping filters; each
    ///     receives every message its filter matches exactly once. Routing uses MQTT 5 Subscription
    ///     Identifiers (§3.8.2.1.2) and `mosquitto_topic_matches_sub`.
    ///   - qos: maximum QoS (§3.8.3.1) for the subscription; with several streams on one filter the highest wins.
    ///   - bufferLimit: messages buffered for a consumer that falls behind; beyond it the oldest are dropped and
    ///     a warning is logged.
    /// - Returns: a stream that starts with the broker's retained messages for the filter (``BusMessage/retained``
    ///   true), then live messages. It is subscribed at the broker as soon as (and every time) the client is
    ///   connected; after a reconnect the retained messages arrive again. Subscribing a second stream to an
    ///   existing filter makes the broker resend its retained messages, which the first stream then also
    ///   sees: consumers of retained state must be idempotent (retained = current state, so they are).
    ///   Cancelling the consuming task or dropping the stream unsubscribes (UNSUBSCRIBE once no stream uses the
    ///   filter). The stream finishes after ``disconnect(withWill:)``, when the broker refuses the
    ///   subscription, or at once for an invalid filter or QoS (logged as an error).
    public func subscribe(_ filter: String, qos: Int32 = 1, bufferLimit: Int = 10_000) -> AsyncStream<BusMessage> {
        core.subscribe(filter, qos: qos, bufferLimit: bufferLimit)
    }

    /// Subscribes as ``subscribe(_:qos:bufferLimit:)`` and waits until the broker has acknowledged the
    /// subscription (SUBACK, §3.9), so that anything published afterwards is delivered to the stream.
    /// Starts connecting (``start()``) if needed.
    ///
    /// - Parameters:
    ///   - filter: an MQTT topic filter (§4.7), as in ``subscribe(_:qos:bufferLimit:)``.
    ///   - qos: maximum QoS (§3.8.3.1).
    ///   - bufferLimit: messages buffered for a slow consumer before the oldest are dropped.
    ///   - timeout: how long to wait for the SUBACK; it arrives only while connected.
    /// - Throws: ``BusError`` `bus.timeout`, `bus.subscribe` (refused by the broker, reason ≥ 0x80, or invalid
    ///   filter), `bus.closed`, `bus.config`; `CancellationError`. On error the subscription is cancelled.
    public func subscribe(
        _ filter: String, qos: Int32 = 1, bufferLimit: Int = 10_000,
        timeout: Duration
    ) async throws -> AsyncStream<BusMessage> {
        try core.start()
        let stream = core.subscribe(filter, qos: qos, bufferLimit: bufferLimit)
        try await core.wait(for: .subscribed(filter), timeout: timeout) {
            BusError(code: "bus.timeout", message: "no SUBACK for \(filter) after \(timeout)")
        }
        return stream
    }

    /// Changes of the connection from now on: ``BusConnectionEvent/connected(sessionPresent:count:)`` after
    /// every successful (re)connect, ``BusConnectionEvent/disconnected(_:)`` after every loss or refusal.
    /// A process that keeps non-retained state elsewhere can re-announce it on `connected`. Buffers the newest
    /// 32 events; finishes after ``disconnect(withWill:)``.
    public func connectionEvents() -> AsyncStream<BusConnectionEvent> {
        core.connectionEvents()
    }

    /// Disconnects for good: sends DISCONNECT (MQTT 5.0 §3.14) and stops reconnecting. Non-blocking; the
    /// network thread writes the packet (already queued QoS ≥ 1 publications go first).
    ///
    /// - Parameter withWill: `false` sends reason code 0x00 "Normal disconnection", and the broker discards the
    ///   will; `true` sends 0x04 "Disconnect with Will Message", and the broker publishes it (§3.14.2.1).
    ///
    /// Afterwards every subscription and event stream finishes, pending ``connect(timeout:)`` calls throw
    /// `bus.closed`, and so do publishes. Idempotent. A process about to exit should use
    /// ``close(withWill:timeout:)``: it makes sure the DISCONNECT is written before the process ends, and
    /// avoids a mosquitto 2.0 race in which a normal disconnect right after a publication still fires the will.
    public func disconnect(withWill: Bool = false) {
        core.disconnect(
            reasonCode: withWill
                ? Int32(MQTT_RC_DISCONNECT_WITH_WILL_MSG.rawValue) : Int32(MQTT_RC_NORMAL_DISCONNECTION.rawValue))
    }

    /// Disconnects for good, gracefully, and waits (at most `timeout`) until the DISCONNECT has been written.
    /// Use this when a process stops.
    ///
    /// Without the will it first waits until the broker has acknowledged every publication made so far and
    /// has removed every subscription (UNSUBSCRIBE, §3.10), and only then sends DISCONNECT 0x00. The reason:
    /// mosquitto 2.0 treats a failed write to a client — e.g. the PUBACK of a publication made just before the
    /// DISCONNECT, after libmosquitto has already closed the socket — as a lost connection and publishes the
    /// will, so an immediate ``disconnect(withWill:)`` can make a clean stop look like a crash. With the will
    /// (reason 0x04) it disconnects at once. When `timeout` passes it disconnects anyway; while not connected
    /// there is nothing to wait for, and queued QoS ≥ 1 publications are dropped.
    public func close(withWill: Bool = false, timeout: Duration = .seconds(2)) async {
        if withWill {
            disconnect(withWill: true)
            try? await core.wait(for: .flushed, timeout: timeout) {
                BusError(code: "bus.timeout", message: "DISCONNECT not written after \(timeout)")
            }
        } else {
            await core.close(timeout: timeout)
        }
    }
}
