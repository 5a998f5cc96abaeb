import CMosquitto
import Foundation
import Glibc
import HallwatchCore
import Logging
import Synchronization

/// `mosquitto_lib_init()`, run once per process on first use (a global `let` is initialised exactly once,
/// thread-safely). libmosquitto's own init is not thread-safe, hence the once.
private let mosquittoLibraryInit: Int32 = mosquitto_lib_init()

/// The engine behind ``BusClient``: owns the `struct mosquitto *`, the subscription table and the waiters.
///
/// Threading: every libmosquitto callback runs on libmosquitto's network thread (`mosquitto_loop_start`).
/// Callbacks take ``state``'s lock only briefly and never call into libmosquitto or resume continuations
/// while holding it; public methods follow the same rule, so the lock never nests with libmosquitto's mutexes.
///
/// Lifetime: the network thread reaches this object through an `Unmanaged` pointer retained in ``start()``
/// and released in ``stop()`` after the thread has been joined, so no callback can see a freed object. The
/// `struct mosquitto *` is destroyed in `deinit`, i.e. after the last holder (the client and any stream's
/// termination handler) let go, so no caller can use a destroyed handle.
final class BusCore: Sendable {
    /// libmosquitto's client. Its functions used here are thread-safe in threaded mode.
    nonisolated(unsafe) let handle: OpaquePointer
    let clientID: String
    let socketPath: String
    let keepAliveSeconds: Int32
    let logger: Logger
    /// Where timeouts are measured and waited for.
    let clocks: any Clocks
    /// Set when libmosquitto refused the client's parameters; ``start()`` throws it.
    let configError: BusError?
    let state = Mutex(State())

    enum Phase: Sendable { case idle, connecting, connected, closed }

    enum WaitKind: Sendable, Equatable {
        /// CONNACK with success received.
        case connected
        /// SUBACK received for this filter.
        case subscribed(String)
        /// After ``disconnect(reasonCode:)``: the DISCONNECT was written and the socket closed.
        case flushed
        /// Every PUBLISH and UNSUBSCRIBE sent on this connection has been acknowledged (or the client is not
        /// connected, so there is nothing to wait for).
        case drained
    }

    struct Waiter: Sendable {
        var kind: WaitKind
        var continuation: CheckedContinuation<Void, any Error>
    }

    struct Subscriber: Sendable {
        var filter: String
        var continuation: AsyncStream<BusMessage>.Continuation
    }

    struct Filter: Sendable {
        /// MQTT 5 Subscription Identifier (§3.8.2.1.2) sent with every SUBSCRIBE for this filter; the broker
        /// returns it in each PUBLISH the subscription matched (§3.3.2.3.8), which is how overlapping filters
        /// route exactly even when the broker sends one copy per matching subscription.
        var subscriptionID: UInt32
        var qos: Int32
        var subscribers: Set<UInt64> = []
        /// SUBACK received on the current connection.
        var acked = false
    }

    struct RetainedPublication: Sendable {
        var payload: [UInt8]
        var qos: Int32
    }

    struct State: Sendable {
        var phase = Phase.idle
        var loopStarted = false
        var flushed = false
        var connectCount = 0
        var nextID: UInt64 = 0
        var nextSubscriptionID: UInt32 = 0
        var waiters: [UInt64: Waiter] = [:]
        var cancelledWaiters: Set<UInt64> = []
        var filters: [String: Filter] = [:]
        var subscribers: [UInt64: Subscriber] = [:]
        /// SUBSCRIBE message id → filter, until its SUBACK.
        var pendingSubacks: [Int32: String] = [:]
        /// SUBACKs that arrived before the caller of `mosquitto_subscribe_v5` recorded the message id.
        var earlySubacks: [Int32: Int32] = [:]
        /// Message ids of publications not yet acknowledged (QoS 0: not yet written) → their QoS.
        var unackedPublishes: [Int32: Int32] = [:]
        /// Message ids of UNSUBSCRIBEs not yet acknowledged.
        var unackedUnsubscribes: Set<Int32> = []
        /// Acknowledgements that arrived before the caller recorded the message id (see ``BusCore/record``).
        var earlyAcks: Set<Int32> = []
        var earlyUnsubacks: Set<Int32> = []
        /// The latest retained publication per topic made through this client, re-asserted after reconnects.
        var retained: [String: RetainedPublication] = [:]
        var events: [UInt64: AsyncStream<BusConnectionEvent>.Continuation] = [:]
        var lastError: BusError?

        mutating func makeID() -> UInt64 {
            nextID += 1
            return nextID
        }

        /// Whether a waiter of `kind` can be answered at once: `.success`, a failure, or `nil` to wait.
        func outcome(for kind: WaitKind, closedError: BusError) -> Result<Void, any Error>? {
            switch kind {
            case .connected:
                if phase == .connected { return .success(()) }
                if phase == .closed { return .failure(closedError) }
                return nil
            case .subscribed(let filter):
                if phase == .closed { return .failure(closedError) }
                guard let entry = filters[filter] else {
                    return .failure(
                        BusError(
                            code: "bus.subscribe",
                            message: "subscription \(filter) ended before the broker acknowledged it"))
                }
                return entry.acked ? .success(()) : nil
            case .flushed:
                return flushed ? .success(()) : nil
            case .drained:
                return isDrained ? .success(()) : nil
            }
        }

        /// Nothing sent on this connection awaits an acknowledgement (or there is no connection).
        var isDrained: Bool { phase != .connected || (unackedPublishes.isEmpty && unackedUnsubscribes.isEmpty) }

        /// Removes and returns the waiters of `kind`.
        mutating func takeWaiters(_ matches: (WaitKind) -> Bool) -> [CheckedContinuation<Void, any Error>] {
            let ids = waiters.filter { matches($0.value.kind) }.map(\.key)
            return ids.compactMap { waiters.removeValue(forKey: $0)?.continuation }
        }
    }

    init(
        clientID: String, socketPath: String, will: BusWill?, keepAliveSeconds: Int32,
        reconnect: BusReconnectPolicy, clocks: any Clocks, logger: Logger
    ) {
        _ = mosquittoLibraryInit
        self.clocks = clocks
        var logger = logger
        logger[metadataKey: "bus.client"] = "\(clientID)"
        self.logger = logger
        self.clientID = clientID
        self.socketPath = socketPath
        self.keepAliveSeconds = keepAliveSeconds

        var configError: BusError?
        let handle: OpaquePointer
        // Clean Start (MQTT 5.0 §3.1.2.4): every connection starts a new session; ``didConnect`` re-subscribes.
        if let h = mosquitto_new(clientID, true, nil) {
            handle = h
        } else {
            configError = BusError(
                code: "bus.config", message: "libmosquitto rejected client id \"\(clientID)\"",
                mosquittoError: SystemError.text(errno))
            // A placeholder handle with a generated id keeps every other method well-defined; start() throws.
            guard let h = mosquitto_new(nil, true, nil) else { fatalError("mosquitto_new: out of memory") }
            handle = h
        }
        self.handle = handle
        _ = mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5)
        _ = mosquitto_reconnect_delay_set(handle, reconnect.initialSeconds, reconnect.maxSeconds, reconnect.exponential)
        if let will, configError == nil {
            let rc = will.payload.withUnsafeBytes { bytes in
                mosquitto_will_set_v5(
                    handle, will.topic, Int32(bytes.count), bytes.baseAddress, will.qos, will.retain, nil)
            }
            if rc != MosquittoRC.success {
                configError = .mosquitto("bus.config", "libmosquitto rejected the last-will on \(will.topic)", rc: rc)
            }
        }
        self.configError = configError
        Self.installCallbacks(handle)
    }

    deinit {
        mosquitto_destroy(handle)
    }

    private var closedError: BusError {
        BusError(code: "bus.closed", message: "bus client \(clientID) is disconnected for good")
    }

    // MARK: - Connection

    /// Starts connecting in the background (idempotent). Throws `bus.config` when libmosquitto rejects the
    /// parameters, `bus.closed` after ``disconnect(reasonCode:)``.
    func start() throws(BusError) {
        if let configError { throw configError }
        let phase: Phase = state.withLock { s in
            let before = s.phase
            if before == .idle {
                s.phase = .connecting
                s.loopStarted = true
            }
            return before
        }
        switch phase {
        case .closed: throw closedError
        case .connecting, .connected: return
        case .idle: break
        }
        let userdata = Unmanaged.passRetained(self).toOpaque()
        mosquitto_user_data_set(handle, userdata)
        // Port 0: `host` is the path of a Unix socket.
        let rc = mosquitto_connect_async(handle, socketPath, 0, keepAliveSeconds)
        if rc == MosquittoRC.invalid {
            let error = BusError.mosquitto(
                "bus.config", "libmosquitto rejected socket path \(socketPath) or keep-alive \(keepAliveSeconds) s",
                rc: rc)
            state.withLock { s in
                s.phase = .closed
                s.loopStarted = false
                s.lastError = error
            }
            Unmanaged<BusCore>.fromOpaque(userdata).release()
            throw error
        }
        if rc != MosquittoRC.success {
            // Typically ENOENT / ECONNREFUSED: the broker is not up yet. The network thread retries.
            let error = BusError.mosquitto(
                "bus.connect", "broker socket \(socketPath) not reachable yet; retrying", rc: rc)
            state.withLock { $0.lastError = error }
            logger.info(
                "bus broker not reachable yet, retrying in the background",
                metadata: ["socket": "\(socketPath)", "error": "\(error)"])
        }
        let loopRC = mosquitto_loop_start(handle)
        if loopRC != MosquittoRC.success {
            let error = BusError.mosquitto("bus.config", "libmosquitto could not start its network thread", rc: loopRC)
            state.withLock { s in
                s.phase = .closed
                s.loopStarted = false
                s.lastError = error
            }
            Unmanaged<BusCore>.fromOpaque(userdata).release()
            throw error
        }
    }

    var isConnected: Bool { state.withLock { $0.phase == .connected } }

    /// The error to throw when ``BusClient/connect(timeout:)`` gives up.
    func timeoutError(after timeout: Duration) -> BusError {
        let last = state.withLock { $0.lastError }
        var st = stat()
        let exists = stat(socketPath, &st) == 0
        let why = exists ? "socket exists but no CONNACK yet" : "socket does not exist"
        return BusError(
            code: "bus.timeout",
            message:
                "not connected to the broker at \(socketPath) after \(timeout) (\(why)); still retrying in the background",
            mosquittoError: last?.mosquittoError)
    }

    /// Sends DISCONNECT with `reasonCode` (MQTT 5.0 §3.14.2.1) and ends the client for good: waiters fail with
    /// `bus.closed`, every subscription stream and event stream finishes. Non-blocking.
    func disconnect(reasonCode: Int32) {
        let taken:
            (
                failed: [CheckedContinuation<Void, any Error>], done: [CheckedContinuation<Void, any Error>],
                subscribers: [AsyncStream<BusMessage>.Continuation],
                events: [AsyncStream<BusConnectionEvent>.Continuation]
            )? = state.withLock { s in
                guard s.phase != .closed else { return nil }
                let wasConnected = s.phase == .connected
                s.phase = .closed
                // Not connected: there is no DISCONNECT to write, so "flushed" holds at once.
                if !wasConnected { s.flushed = true }
                let failed = s.takeWaiters { $0 != .flushed }
                let done = wasConnected ? [] : s.takeWaiters { $0 == .flushed }
                let subscribers = s.subscribers.values.map(\.continuation)
                let events = Array(s.events.values)
                s.subscribers = [:]
                s.filters = [:]
                s.events = [:]
                return (failed, done, subscribers, events)
            }
        guard let taken else { return }
        let rc = mosquitto_disconnect_v5(handle, reasonCode, nil)
        logger.info(
            "bus disconnecting",
            metadata: [
                "reason": "\(Self.describe(reasonCode: reasonCode))",
                "sent": "\(rc == MosquittoRC.success)",
            ])
        for w in taken.failed { w.resume(throwing: closedError) }
        for w in taken.done { w.resume() }
        for c in taken.subscribers { c.finish() }
        for c in taken.events { c.finish() }
    }

    /// Disconnects (reason 0x00 if still open) and joins libmosquitto's network thread. Blocks for as long as
    /// the thread needs to write the DISCONNECT or wake from a reconnect delay.
    ///
    /// libmosquitto 2.0.11 (Debian 12) loses a disconnect made while its network thread is inside
    /// `mosquitto_reconnect` (which sets the state back to "new"; eclipse-mosquitto/mosquitto#2545): the thread
    /// then retries a broker that is not there forever, and `mosquitto_loop_stop(false)` never returns — a
    /// provisioner's health gate, whose bus never answered, hung 24 minutes so in a CI rehearsal. So the join
    /// runs on a thread of its own, and until it returns the disconnect is said again every 100 ms: the network
    /// thread's next state check, after its reconnect delay, sees it and ends.
    func stop() {
        let reason = Int32(MQTT_RC_NORMAL_DISCONNECTION.rawValue)
        disconnect(reasonCode: reason)
        let started = state.withLock { s in
            let started = s.loopStarted
            s.loopStarted = false
            return started
        }
        guard started else { return }
        let joined = DispatchSemaphore(value: 0)
        let joiner = Thread { [self] in
            _ = mosquitto_loop_stop(handle, false)
            joined.signal()
        }
        joiner.start()
        while joined.wait(timeout: .now() + .milliseconds(100)) == .timedOut {
            _ = mosquitto_disconnect_v5(handle, reason, nil)
        }
        Unmanaged.passUnretained(self).release()  // balances passRetained in start()
    }

    // MARK: - Waiting

    /// Suspends until `kind` happens, `timeout` passes (throws `onTimeout()`), the client closes (throws
    /// `bus.closed`) or the task is cancelled (throws `CancellationError`). Never blocks a thread.
    func wait(for kind: WaitKind, timeout: Duration, onTimeout: @escaping @Sendable () -> BusError) async throws {
        let id = state.withLock { $0.makeID() }
        let closedError = self.closedError
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await withTaskCancellationHandler {
                    try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                        let immediate: Result<Void, any Error>? = self.state.withLock { s in
                            if s.cancelledWaiters.remove(id) != nil { return .failure(CancellationError()) }
                            if let outcome = s.outcome(for: kind, closedError: closedError) { return outcome }
                            s.waiters[id] = Waiter(kind: kind, continuation: c)
                            return nil
                        }
                        if let immediate { c.resume(with: immediate) }
                    }
                } onCancel: {
                    let c: CheckedContinuation<Void, any Error>? = self.state.withLock { s in
                        if let w = s.waiters.removeValue(forKey: id) { return w.continuation }
                        s.cancelledWaiters.insert(id)
                        return nil
                    }
                    c?.resume(throwing: CancellationError())
                }
            }
            group.addTask {
                try await self.clocks.sleep(for: timeout)
                throw onTimeout()
            }
            defer { group.cancelAll() }
            try await group.next()
        }
        // A cancellation that raced with a normal completion leaves its id behind; drop it.
        state.withLock { _ = $0.cancelledWaiters.remove(id) }
    }

    // MARK: - Publishing

    func publish(topic: String, payload: [UInt8], retain: Bool, qos: Int32) throws(BusError) {
        if state.withLock({ $0.phase == .closed }) { throw closedError }
        var mid: Int32 = 0
        let rc = payload.withUnsafeBytes { bytes in
            mosquitto_publish_v5(
                handle, &mid, topic, Int32(truncatingIfNeeded: bytes.count), bytes.baseAddress, qos, retain, nil)
        }
        // QoS ≥ 1 while disconnected: libmosquitto has queued the message (in its outgoing list) and answers
        // MOSQ_ERR_NO_CONN; it sends the message after the next CONNACK. That is success for the caller.
        let queued = rc == MosquittoRC.success || (rc == MosquittoRC.noConnection && qos > 0)
        if queued { recordPublish(mid: mid, qos: qos) }
        // Remember retained state even when QoS 0 could not be sent now: it is re-asserted on reconnect.
        if retain && (queued || rc == MosquittoRC.noConnection) {
            state.withLock { s in
                if payload.isEmpty {
                    s.retained[topic] = nil  // an empty retained payload deletes the retained message (§3.3.1.3)
                } else {
                    s.retained[topic] = RetainedPublication(payload: payload, qos: qos)
                }
            }
        }
        guard queued else {
            throw BusError.mosquitto(
                "bus.publish", "could not publish \(payload.count) bytes on \(topic) (QoS \(qos))", rc: rc)
        }
    }

    /// Notes an outgoing PUBLISH until libmosquitto reports it done (`on_publish`: PUBACK for QoS 1, PUBCOMP
    /// for QoS 2, written for QoS 0). The acknowledgement may already have arrived on the network thread.
    private func recordPublish(mid: Int32, qos: Int32) {
        state.withLock { s in
            if s.earlyAcks.remove(mid) == nil { s.unackedPublishes[mid] = qos }
        }
    }

    private func recordUnsubscribe(mid: Int32) {
        state.withLock { s in
            if s.earlyUnsubacks.remove(mid) == nil { s.unackedUnsubscribes.insert(mid) }
        }
    }

    /// Sends UNSUBSCRIBE for `filter` and tracks its acknowledgement.
    private func sendUnsubscribe(_ filter: String) {
        var mid: Int32 = 0
        let rc = mosquitto_unsubscribe_v5(handle, &mid, filter, nil)
        if rc == MosquittoRC.success { recordUnsubscribe(mid: mid) }
    }

    /// A graceful goodbye without the will: waits (within `timeout`) until the broker has acknowledged every
    /// publication and has removed every subscription, so that it has no reason to write to this client,
    /// then sends DISCONNECT 0x00 and waits until it is written.
    ///
    /// Why: mosquitto 2.0 handles a failed write to a client (EPIPE, because the client already closed its
    /// socket after DISCONNECT) as a lost connection and publishes the will, even though the DISCONNECT is
    /// waiting unread in the socket (e.g. the PUBACK of a publication made just before disconnecting).
    func close(timeout: Duration) async {
        let deadline = clocks.monotonicNow() + timeout
        let filters: [String] = state.withLock { s in s.phase == .connected ? Array(s.filters.keys) : [] }
        for filter in filters { sendUnsubscribe(filter) }
        let wait = max(.zero, deadline - clocks.monotonicNow())
        do {
            try await self.wait(for: .drained, timeout: wait) {
                BusError(code: "bus.timeout", message: "acknowledgements still missing")
            }
        } catch {
            logger.warning("bus closing before every publication was acknowledged", metadata: ["error": "\(error)"])
        }
        disconnect(reasonCode: Int32(MQTT_RC_NORMAL_DISCONNECTION.rawValue))
        try? await self.wait(for: .flushed, timeout: max(.milliseconds(100), deadline - clocks.monotonicNow())) {
            BusError(code: "bus.timeout", message: "DISCONNECT not written")
        }
    }

    // MARK: - Subscribing

    /// Registers a subscriber stream for `filter` and sends SUBSCRIBE when connected. Returns the stream.
    func subscribe(_ filter: String, qos: Int32, bufferLimit: Int) -> AsyncStream<BusMessage> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: BusMessage.self, bufferingPolicy: .bufferingNewest(max(1, bufferLimit)))
        let check = mosquitto_sub_topic_check(filter)
        guard check == MosquittoRC.success, (0...2).contains(qos) else {
            logger.error(
                "bus subscription refused: invalid topic filter or QoS",
                metadata: [
                    "filter": "\(filter)", "qos": "\(qos)", "error": "\(BusError.describe(mosquittoError: check))",
                ])
            continuation.finish()
            return stream
        }
        let id = state.withLock { $0.makeID() }
        continuation.onTermination = { [self] _ in removeSubscriber(id) }
        enum Registration {
            case closed
            case registered(send: (subscriptionID: UInt32, qos: Int32)?)
        }
        let registration: Registration = state.withLock { s in
            guard s.phase != .closed else { return .closed }
            s.subscribers[id] = Subscriber(filter: filter, continuation: continuation)
            var entry =
                s.filters[filter]
                ?? {
                    s.nextSubscriptionID += 1
                    return Filter(subscriptionID: s.nextSubscriptionID, qos: qos)
                }()
            entry.qos = max(entry.qos, qos)
            entry.subscribers.insert(id)
            s.filters[filter] = entry
            return .registered(send: s.phase == .connected ? (entry.subscriptionID, entry.qos) : nil)
        }
        switch registration {
        case .closed:
            continuation.finish()
        case .registered(let send):
            logger.debug("bus subscribe", metadata: ["filter": "\(filter)", "qos": "\(qos)"])
            // While not connected, ``didConnect`` sends it.
            if let send { sendSubscribe(filter, subscriptionID: send.subscriptionID, qos: send.qos) }
        }
        return stream
    }

    /// Sends SUBSCRIBE for `filter` with its Subscription Identifier. Not connected is fine: ``didConnect``
    /// subscribes every filter again.
    private func sendSubscribe(_ filter: String, subscriptionID: UInt32, qos: Int32) {
        var props: OpaquePointer? = nil
        _ = mosquitto_property_add_varint(&props, Int32(MQTT_PROP_SUBSCRIPTION_IDENTIFIER.rawValue), subscriptionID)
        defer { mosquitto_property_free_all(&props) }
        var mid: Int32 = 0
        // Options 0: Retain Handling 0 "send retained messages at the time of the subscribe" (§3.8.3.1).
        let rc = mosquitto_subscribe_v5(handle, &mid, filter, qos, 0, props)
        guard rc == MosquittoRC.success else {
            if rc != MosquittoRC.noConnection {
                logger.error(
                    "bus SUBSCRIBE failed",
                    metadata: ["filter": "\(filter)", "error": "\(BusError.describe(mosquittoError: rc))"])
            }
            return
        }
        let early: Int32? = state.withLock { s in
            if let code = s.earlySubacks.removeValue(forKey: mid) { return code }
            s.pendingSubacks[mid] = filter
            return nil
        }
        if let early { didSubscribe(filter: filter, reasonCode: early) }
    }

    private func removeSubscriber(_ id: UInt64) {
        let unsubscribe: String? = state.withLock { s in
            guard let sub = s.subscribers.removeValue(forKey: id) else { return nil }
            guard var entry = s.filters[sub.filter] else { return nil }
            entry.subscribers.remove(id)
            if entry.subscribers.isEmpty {
                s.filters[sub.filter] = nil
                return s.phase == .connected ? sub.filter : nil
            }
            s.filters[sub.filter] = entry
            return nil
        }
        // The filter's ack waiters (if any) learn that the subscription ended.
        let orphans: [CheckedContinuation<Void, any Error>] = state.withLock { s in
            let live = Set(s.filters.keys)
            return s.takeWaiters { kind in
                if case .subscribed(let f) = kind { return !live.contains(f) }
                return false
            }
        }
        for c in orphans {
            c.resume(
                throwing: BusError(
                    code: "bus.subscribe", message: "subscription ended before the broker acknowledged it"))
        }
        if let unsubscribe {
            logger.debug("bus unsubscribe", metadata: ["filter": "\(unsubscribe)"])
            sendUnsubscribe(unsubscribe)
        }
    }

    // MARK: - Connection events

    func connectionEvents() -> AsyncStream<BusConnectionEvent> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: BusConnectionEvent.self, bufferingPolicy: .bufferingNewest(32))
        let id = state.withLock { $0.makeID() }
        continuation.onTermination = { [self] _ in _ = state.withLock { $0.events.removeValue(forKey: id) } }
        let closed = state.withLock { s in
            if s.phase == .closed { return true }
            s.events[id] = continuation
            return false
        }
        if closed { continuation.finish() }
        return stream
    }

    // MARK: - Callbacks (libmosquitto's network thread)

    private static func installCallbacks(_ handle: OpaquePointer) {
        mosquitto_connect_v5_callback_set(handle) { _, userdata, rc, flags, _ in
            guard let userdata else { return }
            Unmanaged<BusCore>.fromOpaque(userdata).takeUnretainedValue().didConnect(rc: rc, flags: flags)
        }
        mosquitto_disconnect_v5_callback_set(handle) { _, userdata, rc, _ in
            guard let userdata else { return }
            Unmanaged<BusCore>.fromOpaque(userdata).takeUnretainedValue().didDisconnect(rc: rc)
        }
        mosquitto_message_v5_callback_set(handle) { _, userdata, message, props in
            guard let userdata, let message else { return }
            Unmanaged<BusCore>.fromOpaque(userdata).takeUnretainedValue().didReceive(message, props: props)
        }
        mosquitto_subscribe_v5_callback_set(handle) { _, userdata, mid, count, granted, _ in
            guard let userdata else { return }
            // One filter per SUBSCRIBE, so one reason code (§3.9.3).
            let code = (count > 0 ? granted?[0] : nil) ?? 0x80
            Unmanaged<BusCore>.fromOpaque(userdata).takeUnretainedValue().didSuback(mid: mid, reasonCode: code)
        }
        mosquitto_publish_v5_callback_set(handle) { _, userdata, mid, reasonCode, _ in
            guard let userdata else { return }
            Unmanaged<BusCore>.fromOpaque(userdata).takeUnretainedValue().didPublish(mid: mid, reasonCode: reasonCode)
        }
        mosquitto_unsubscribe_v5_callback_set(handle) { _, userdata, mid, _ in
            guard let userdata else { return }
            Unmanaged<BusCore>.fromOpaque(userdata).takeUnretainedValue().didUnsubscribe(mid: mid)
        }
        mosquitto_log_callback_set(handle) { _, userdata, level, text in
            guard let userdata, let text else { return }
            Unmanaged<BusCore>.fromOpaque(userdata).takeUnretainedValue().didLog(
                level: level, text: String(cString: text))
        }
    }

    /// CONNACK received (MQTT 5.0 §3.2). `rc` is the CONNACK reason code, `flags` bit 0 is Session Present.
    private func didConnect(rc: Int32, flags: Int32) {
        guard rc == 0 else {
            let error = BusError(
                code: "bus.connect", message: "broker at \(socketPath) refused the connection; retrying",
                mosquittoError: Self.describe(reasonCode: rc))
            let (waiters, events) = state.withLock { s in
                s.lastError = error
                return (s.takeWaiters { $0 == .connected }, Array(s.events.values))
            }
            logger.error("bus connection refused", metadata: ["error": "\(error)"])
            for w in waiters { w.resume(throwing: error) }
            for e in events { e.yield(.disconnected(error)) }
            return
        }
        typealias Subscription = (filter: String, id: UInt32, qos: Int32)
        let snapshot:
            (
                subs: [Subscription], retained: [(String, RetainedPublication)], count: Int,
                events: [AsyncStream<BusConnectionEvent>.Continuation]
            )? = state.withLock { s in
                guard s.phase != .closed else { return nil }
                s.phase = .connected
                s.connectCount += 1
                s.lastError = nil
                s.pendingSubacks = [:]
                s.earlySubacks = [:]
                let subs = s.filters.map { (filter: $0.key, id: $0.value.subscriptionID, qos: $0.value.qos) }
                return (subs, s.retained.map { ($0.key, $0.value) }, s.connectCount, Array(s.events.values))
            }
        guard let snapshot else { return }
        let sessionPresent = flags & 1 != 0
        logger.info(
            "bus connected",
            metadata: [
                "socket": "\(socketPath)", "connection": "\(snapshot.count)",
                "subscriptions": "\(snapshot.subs.count)", "retainedReasserted": "\(snapshot.retained.count)",
            ])
        // Clean Start: the broker kept nothing, so subscribe everything again.
        for sub in snapshot.subs { sendSubscribe(sub.filter, subscriptionID: sub.id, qos: sub.qos) }
        // Re-assert this client's retained state: the broker may have restarted without persistence, or our
        // own last-will may have overwritten the process topic while we were away.
        for (topic, publication) in snapshot.retained {
            var mid: Int32 = 0
            let rc = publication.payload.withUnsafeBytes { bytes in
                mosquitto_publish_v5(
                    handle, &mid, topic, Int32(truncatingIfNeeded: bytes.count), bytes.baseAddress, publication.qos,
                    true, nil)
            }
            if rc == MosquittoRC.success {
                recordPublish(mid: mid, qos: publication.qos)
            } else {
                logger.warning(
                    "bus could not re-assert retained message",
                    metadata: ["topic": "\(topic)", "error": "\(BusError.describe(mosquittoError: rc))"])
            }
        }
        let waiters = state.withLock { $0.takeWaiters { $0 == .connected } }
        for w in waiters { w.resume() }
        for e in snapshot.events { e.yield(.connected(sessionPresent: sessionPresent, count: snapshot.count)) }
    }

    /// The connection ended. `rc` is 0 after our own DISCONNECT, a `MOSQ_ERR_*` value when the socket failed,
    /// or the reason code of a DISCONNECT sent by the broker (≥ 0x80, §3.14.2.1).
    private func didDisconnect(rc: Int32) {
        let text = rc >= 0x80 ? Self.describe(reasonCode: rc) : BusError.describe(mosquittoError: rc)
        let error = BusError(
            code: "bus.disconnected", message: "lost the connection to the broker at \(socketPath); reconnecting",
            mosquittoError: text)
        let outcome:
            (
                closed: Bool, flushed: [CheckedContinuation<Void, any Error>],
                events: [AsyncStream<BusConnectionEvent>.Continuation]
            ) = state.withLock { s in
                for key in s.filters.keys { s.filters[key]?.acked = false }
                s.pendingSubacks = [:]
                s.earlySubacks = [:]
                // QoS 0 packets not yet written are gone; QoS ≥ 1 stay queued in libmosquitto and are resent.
                s.unackedPublishes = s.unackedPublishes.filter { $0.value > 0 }
                s.unackedUnsubscribes = []
                s.earlyAcks = []
                s.earlyUnsubacks = []
                if s.phase == .closed {
                    s.flushed = true
                    return (true, s.takeWaiters { $0 == .flushed || $0 == .drained }, [])
                }
                s.phase = .connecting
                s.lastError = error
                return (false, s.takeWaiters { $0 == .drained }, Array(s.events.values))
            }
        if outcome.closed {
            logger.debug("bus disconnected", metadata: ["rc": "\(text)"])
        } else {
            logger.warning("bus connection lost", metadata: ["error": "\(error)"])
        }
        for w in outcome.flushed { w.resume() }
        for e in outcome.events { e.yield(.disconnected(error)) }
    }

    /// A publication is done: PUBACK/PUBCOMP received (QoS 1/2, reason code ≥ 0x80 = refused, §3.4.2.1) or
    /// written (QoS 0).
    private func didPublish(mid: Int32, reasonCode: Int32) {
        if reasonCode >= 0x80 {
            logger.warning(
                "bus broker refused a publication",
                metadata: ["mid": "\(mid)", "reason": "\(Self.describe(reasonCode: reasonCode))"])
        }
        let drained: [CheckedContinuation<Void, any Error>] = state.withLock { s in
            if s.unackedPublishes.removeValue(forKey: mid) == nil { s.earlyAcks.insert(mid) }
            return s.isDrained ? s.takeWaiters { $0 == .drained } : []
        }
        for w in drained { w.resume() }
    }

    private func didUnsubscribe(mid: Int32) {
        let drained: [CheckedContinuation<Void, any Error>] = state.withLock { s in
            if s.unackedUnsubscribes.remove(mid) == nil { s.earlyUnsubacks.insert(mid) }
            return s.isDrained ? s.takeWaiters { $0 == .drained } : []
        }
        for w in drained { w.resume() }
    }

    private func didSuback(mid: Int32, reasonCode: Int32) {
        let filter: String? = state.withLock { s in
            if let f = s.pendingSubacks.removeValue(forKey: mid) { return f }
            s.earlySubacks[mid] = reasonCode
            return nil
        }
        if let filter { didSubscribe(filter: filter, reasonCode: reasonCode) }
    }

    /// SUBACK for `filter`: reason codes 0–2 are the granted QoS, ≥ 0x80 a refusal (§3.9.3).
    private func didSubscribe(filter: String, reasonCode: Int32) {
        if reasonCode < 0x80 {
            let waiters: [CheckedContinuation<Void, any Error>] = state.withLock { s in
                guard s.filters[filter] != nil else { return [] }
                s.filters[filter]?.acked = true
                return s.takeWaiters { $0 == .subscribed(filter) }
            }
            logger.debug("bus subscribed", metadata: ["filter": "\(filter)", "grantedQoS": "\(reasonCode)"])
            for w in waiters { w.resume() }
        } else {
            let error = BusError(
                code: "bus.subscribe", message: "broker refused the subscription to \(filter)",
                mosquittoError: Self.describe(reasonCode: reasonCode))
            logger.error("bus subscription refused", metadata: ["error": "\(error)"])
            let (waiters, streams) = state.withLock { s in
                let streams = (s.filters[filter]?.subscribers ?? []).compactMap { s.subscribers[$0]?.continuation }
                return (s.takeWaiters { $0 == .subscribed(filter) }, streams)
            }
            for w in waiters { w.resume(throwing: error) }
            for c in streams { c.finish() }  // their termination handlers drop the filter
        }
    }

    /// A PUBLISH arrived (after its QoS flow completed). Routes it to every stream whose filter's Subscription
    /// Identifier the broker attached, or — when the broker attached none — whose filter matches the topic.
    private func didReceive(_ message: UnsafePointer<mosquitto_message>, props: OpaquePointer?) {
        let m = message.pointee
        guard let topicPointer = m.topic else { return }
        let topic = String(cString: topicPointer)
        let payload: [UInt8] =
            m.payloadlen > 0 && m.payload != nil
            ? Array(UnsafeRawBufferPointer(start: m.payload, count: Int(m.payloadlen))) : []
        var ids: [UInt32] = []
        var value: UInt32 = 0
        let identifier = Int32(MQTT_PROP_SUBSCRIPTION_IDENTIFIER.rawValue)
        var p = mosquitto_property_read_varint(props, identifier, &value, false)
        while p != nil {
            ids.append(value)
            p = mosquitto_property_read_varint(p, identifier, &value, true)
        }
        let targets: [AsyncStream<BusMessage>.Continuation] = state.withLock { s in
            var out: [AsyncStream<BusMessage>.Continuation] = []
            for (filter, entry) in s.filters {
                let hit = ids.isEmpty ? Self.matches(filter: filter, topic: topic) : ids.contains(entry.subscriptionID)
                guard hit else { continue }
                out += entry.subscribers.compactMap { s.subscribers[$0]?.continuation }
            }
            return out
        }
        let msg = BusMessage(topic: topic, payload: payload, retained: m.retain)
        for c in targets {
            if case .dropped = c.yield(msg) {
                logger.warning(
                    "bus subscriber too slow; dropped its oldest buffered message", metadata: ["topic": "\(topic)"])
            }
        }
    }

    private func didLog(level: Int32, text: String) {
        switch level {
        case MOSQ_LOG_ERR: logger.error("libmosquitto: \(text)")
        case MOSQ_LOG_WARNING: logger.warning("libmosquitto: \(text)")
        case MOSQ_LOG_NOTICE, MOSQ_LOG_INFO: logger.debug("libmosquitto: \(text)")
        default: logger.trace("libmosquitto: \(text)")
        }
    }

    // MARK: - Helpers

    /// `mosquitto_topic_matches_sub`: whether topic name `topic` matches filter `filter` (§4.7).
    static func matches(filter: String, topic: String) -> Bool {
        var result = false
        return mosquitto_topic_matches_sub(filter, topic, &result) == MosquittoRC.success && result
    }

    static func describe(reasonCode rc: Int32) -> String {
        "0x\(String(rc, radix: 16)) \(BusError.describe(reasonCode: rc))"
    }
}
