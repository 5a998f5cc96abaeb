import Foundation
import HallwatchCore
import Logging
import Synchronization

/// The ONVIF event subscriber of one device (issue 16): door controllers and cameras with inputs, through a
/// real-time pull point (ONVIF Core §9.1). It runs in the discovery agent, which already speaks to devices
/// and holds their credentials; it hands each event to ``emit`` (the agent publishes it on the bus for the
/// web to check and store).
///
/// Steps:
/// 1. GetSystemDateAndTime (the device's clock: every `wsu:Created` is in it, as ``DeviceDescriber`` does);
///    GetServices for the event service (GetCapabilities when GetServices is not supported).
/// 2. `CreatePullPointSubscription` with ``ONVIFEventMapping/topicFilter`` and ``Settings/initialTermination``.
/// 3. `PullMessages` back to back (each waits up to ``Settings/pullTimeout`` on the device).
/// 4. Renew only where the device needs it: when a reply's `TerminationTime − CurrentTime` is under
///    ``Settings/renewBelow`` (a device that extends the subscription on each pull is never renewed).
/// 5. Each notification: a repeat of a content hash seen lately is dropped; a property event's `Initialized`
///    (sent for every property on each new subscription) only sets the known state — unless it differs from
///    the state known before a subscription gap: the property changed while nobody listened, and that change
///    is emitted with the gap's bounds (`gapFrom`, `gapTo`: it happened somewhere in them) and the time the new
///    subscription reported it; a `Changed` to the state already known is dropped; the rest is mapped
///    (``ONVIFEventMapping/type(of:)``) and emitted.
/// 6. Any failure (a fault such as an unknown subscription, no reply, an expired subscription) ends the
///    subscription: after ``Settings/retryDelay`` a new one is made (step 1), and once it is, a
///    `x.onvif.subscription-gap` event covers [last good pull, new subscription].
/// 7. On cancellation: `Unsubscribe` (WS-BaseNotification §6.2), best effort.
public final class PullPointSubscriber: Sendable {
    /// Timing of the subscription.
    public struct Settings: Sendable {
        /// PullMessages' `Timeout` (the device answers at once when it has messages). Default 10 s.
        public var pullTimeout: Duration = .seconds(10)
        /// PullMessages' `MessageLimit`.
        public var messageLimit = 64
        /// CreatePullPointSubscription's `InitialTerminationTime`, and each Renew's. Default 60 s.
        public var initialTermination: Duration = .seconds(60)
        /// Renew when the subscription has less than this left. Default 2 × ``pullTimeout`` + 5 s.
        public var renewBelow: Duration? = nil
        /// Wait before subscribing again after a failure. Default 2 s.
        public var retryDelay: Duration = .seconds(2)
        /// Content hashes remembered for deduplication.
        public var rememberedHashes = 4096
        public init() {}
    }

    /// Counters, for tests and the log.
    public struct Counters: Sendable, Equatable {
        /// Pull points made (CreatePullPointSubscription answered).
        public var subscriptions = 0
        /// PullMessages answered.
        public var pulls = 0
        /// Renews answered.
        public var renewals = 0
        /// Events handed to `emit` (gaps not counted).
        public var emitted = 0
        /// Notifications dropped as repeats of a content hash seen lately.
        public var duplicates = 0
        /// `Initialized` notifications taken as state.
        public var initialized = 0
        /// Subscription gaps marked.
        public var gaps = 0
        /// Unsubscribes answered (at most one, on stop).
        public var unsubscribed = 0
    }

    /// The device's id (its events' source is `onvif:<id>`).
    public let device: String
    /// Its device service URL.
    public let deviceXAddr: URL
    let settings: Settings
    let control: DeviceDescriber
    let puller: DeviceDescriber
    let clocks: any Clocks
    let logger: Logger
    let emit: @Sendable (ContractEvent) async -> Void
    let counters = Mutex(Counters())

    /// - Parameters:
    ///   - device: the id events name (`onvif:<device>`; letters, digits, `.`, `_`, `-`).
    ///   - deviceXAddr: the device service URL.
    ///   - http: the bounded client (shared with discovery).
    ///   - credentials: ONVIF credentials, or `nil`.
    ///   - timeout: deadline of each request other than PullMessages (which gets `pullTimeout` + this).
    ///   - emit: called once per new event, in order.
    public init(
        device: String, deviceXAddr: URL, http: BoundedHTTPClient, credentials: ONVIFCredentials?,
        settings: Settings = Settings(), timeout: Duration = .seconds(4), clocks: any Clocks = SystemClocks(),
        logger: Logger, emit: @escaping @Sendable (ContractEvent) async -> Void
    ) {
        self.device = device
        self.deviceXAddr = deviceXAddr
        self.settings = settings
        self.control = DeviceDescriber(
            http: http, credentials: credentials, timeout: timeout, clocks: clocks, logger: logger)
        self.puller = DeviceDescriber(
            http: http, credentials: credentials, timeout: settings.pullTimeout + timeout, clocks: clocks,
            logger: logger)
        self.clocks = clocks
        self.logger = logger
        self.emit = emit
    }

    /// The counters so far.
    public var stats: Counters { counters.withLock { $0 } }

    /// State of one run: the conversation (clock offset, auth), known property states and recent hashes.
    final class RunState: @unchecked Sendable {  // used by the run's task only
        let conversation = DeviceDescriber.Conversation()
        var states: [String: [String: String]] = [:]
        var seen: Set<String> = []
        var seenOrder: [String] = []
        var subscription: URL?
        /// Box time of the last good pull; the start of a gap if the subscription is lost.
        var lastGood: UTCMicros?
        var lostBecause: String?
        /// The last gap marked (box UTC): a property whose `Initialized` state differs from the one known before
        /// it changed within it.
        var lastGap: (from: UTCMicros, to: UTCMicros)?
    }

    /// Subscribes and pulls until the task is cancelled, then unsubscribes. Never throws.
    public func run() async {
        let s = RunState()
        while !Task.isCancelled {
            do {
                try await subscribe(s)
                let now = clocks.utcNow()
                if let from = s.lastGood, let why = s.lostBecause {
                    counters.withLock { $0.gaps += 1 }
                    logger.warning(
                        "event subscription gap", metadata: ["device": "\(device)", "from": "\(from.iso8601)"])
                    await emit(ONVIFEventMapping.gap(device: device, from: from, to: now, reason: why))
                    s.lastGap = (from, now)
                }
                s.lostBecause = nil
                s.lastGood = now
                try await pull(s)
            } catch {
                if Task.isCancelled { break }
                let why = (error as? ONVIFError)?.description ?? "\(error)"
                logger.info("event subscription lost", metadata: ["device": "\(device)", "error": "\(why)"])
                if s.lostBecause == nil { s.lostBecause = why }
                s.subscription = nil
                try? await clocks.sleep(for: settings.retryDelay)
            }
        }
        if let sub = s.subscription {
            // A task of its own: this one is cancelled, and a cancelled task's requests end at once.
            let control = control
            let ok = await Task {
                (try? await control.call(.unsubscribe(to: sub.absoluteString), sub, s.conversation)) != nil
            }.value
            if ok { counters.withLock { $0.unsubscribed += 1 } }
        }
    }

    /// Steps 1–2.
    func subscribe(_ s: RunState) async throws {
        let c = s.conversation
        c.reachedHost = deviceXAddr.host ?? ""
        c.deviceURL = deviceXAddr
        try await control.readClock(deviceXAddr, c)
        var events: URL?
        do {
            let services = try Services.parse(
                try await control.call(.getServices(includeCapability: false), deviceXAddr, c))
            events = services.xAddr(NS.events).flatMap { URL(string: $0) }
        } catch let e as ONVIFError where e.code != .notAuthorized {
            let caps = try Capabilities.parse(try await control.call(.getCapabilities, deviceXAddr, c))
            events = caps.eventsXAddr.flatMap { URL(string: $0) }
        }
        guard let events, let fixed = await control.fix(events.absoluteString, c) else {
            throw ONVIFError(.missingField, "the device names no event service")
        }
        let reply = try await control.call(
            .createPullPointSubscription(
                topics: ONVIFEventMapping.topicFilter, initialTermination: Self.xsDuration(settings.initialTermination)),
            fixed, c)
        let ref = try PullPointReference.parse(reply)
        guard let address = await control.fix(ref.address, c) else {
            throw ONVIFError(.missingField, "SubscriptionReference is not a URL")
        }
        s.subscription = address
        counters.withLock { $0.subscriptions += 1 }
        logger.info("event subscription made", metadata: ["device": "\(device)"])
    }

    /// Steps 3–5, until a failure (thrown) or cancellation.
    func pull(_ s: RunState) async throws {
        guard let sub = s.subscription else { return }
        let renewBelow = settings.renewBelow ?? (settings.pullTimeout * 2 + .seconds(5))
        while !Task.isCancelled {
            let body = try await puller.call(
                .pullMessages(
                    to: sub.absoluteString, timeout: Self.xsDuration(settings.pullTimeout),
                    limit: settings.messageLimit), sub, s.conversation)
            let reply = try PullMessagesReply.parse(body)
            let received = clocks.utcNow()
            s.lastGood = received
            counters.withLock { $0.pulls += 1 }
            for n in reply.notifications { await handle(n, s, received: received) }
            if let now = reply.currentTime, let end = reply.terminationTime,
                end.micros - now.micros < renewBelow.nanoseconds / 1000
            {
                let renewed = try await control.call(
                    .renew(to: sub.absoluteString, termination: Self.xsDuration(settings.initialTermination)), sub,
                    s.conversation)
                _ = try PullMessagesReply.parseRenew(renewed)
                counters.withLock { $0.renewals += 1 }
            }
        }
    }

    /// Step 5 for one notification.
    func handle(_ n: ONVIFNotification, _ s: RunState, received: UTCMicros) async {
        let hash = n.contentHash
        guard s.seen.insert(hash).inserted else {
            counters.withLock { $0.duplicates += 1 }
            return
        }
        s.seenOrder.append(hash)
        if s.seenOrder.count > settings.rememberedHashes { s.seen.remove(s.seenOrder.removeFirst()) }
        let key = n.propertyKey
        switch n.operation {
        case .initialized?:
            let before = s.states[key]
            s.states[key] = n.data
            counters.withLock { $0.initialized += 1 }
            guard let before, before != n.data, let gap = s.lastGap, let type = ONVIFEventMapping.type(of: n) else {
                return
            }
            var event = ONVIFEventMapping.event(n, type: type, device: device, received: received)
            event.data.gapFrom = gap.from.iso8601
            event.data.gapTo = gap.to.iso8601
            event.data.reason = "changed while the subscription was lost; reported by the new subscription"
            counters.withLock { $0.emitted += 1 }
            await emit(event)
            return
        case .deleted?:
            s.states[key] = nil
            return
        case .changed?:
            if s.states[key] == n.data { return }
            s.states[key] = n.data
        case nil: break
        }
        guard let type = ONVIFEventMapping.type(of: n) else { return }
        counters.withLock { $0.emitted += 1 }
        await emit(ONVIFEventMapping.event(n, type: type, device: device, received: received))
    }

    /// An xs:duration of whole seconds (`PT10S`).
    static func xsDuration(_ d: Duration) -> String { "PT\(max(1, d.components.seconds))S" }
}
