import Foundation
import HallwatchCore
import HallwatchDiscovery
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// Settings of the simulated ONVIF devices of one simcam process.
public struct ONVIFSimConfiguration: Sendable {
    /// The IPv4 address the HTTP server listens on, that XAddrs and stream URIs name, and whose interface
    /// joins the WS-Discovery group.
    public var address: String
    /// HTTP port of the device and media services; 0 picks a free one (``ONVIFSimulator/httpPort``).
    public var httpPort: Int
    /// The RTSP port that stream URIs name.
    public var rtspPort: Int
    /// The devices served, each on its own path.
    public var devices: [SimulatedDevice]
    /// `nil`: no authentication at all.
    public var credentials: ONVIFCredentials?
    /// Which authentication the services accept (WS-UsernameToken, HTTP Digest or both).
    public var authMode: SimAuthMode
    /// The simulated camera's clock minus the real one, seconds (issue 5: a 1 h offset must still authenticate).
    public var clockOffsetSeconds: Int64
    /// Ways to misbehave like real cameras do.
    public var quirks: Set<SimQuirk>
    /// Answer Probes and send Hello/Bye on 239.255.255.250:3702.
    public var discovery: Bool
    /// Largest `Created` skew accepted in a UsernameToken, seconds.
    public var maxSkewSeconds: Int64 = 10
    /// The host that service XAddrs and stream URIs name, when not ``address`` (a camera behind NAT, or one
    /// naming its other interface). Default `nil`: ``address``.
    public var advertisedHost: String? = nil
    /// When set, each device's door takes one step of a cycle this often (the demo's door): opened, closed,
    /// an access granted, forced, closed. Default `nil`: only what ``ONVIFSimulator/emit(_:device:)`` sends.
    public var eventEvery: Duration? = nil

    /// A configuration from its parts (authentication both ways, no clock offset, no quirks, discovery on).
    public init(
        address: String, httpPort: Int, rtspPort: Int, devices: [SimulatedDevice], credentials: ONVIFCredentials?,
        authMode: SimAuthMode = .both, clockOffsetSeconds: Int64 = 0, quirks: Set<SimQuirk> = [], discovery: Bool = true
    ) {
        self.address = address
        self.httpPort = httpPort
        self.rtspPort = rtspPort
        self.devices = devices
        self.credentials = credentials
        self.authMode = authMode
        self.clockOffsetSeconds = clockOffsetSeconds
        self.quirks = quirks
        self.discovery = discovery
    }
}

/// The simulated camera as ONVIF devices: a WS-Discovery target (Hello at start, Bye at stop, ProbeMatches
/// unicast to the prober after a random 0–500 ms, WS-Discovery §5.2 `APP_MAX_DELAY`) and the device and media
/// services over HTTP SOAP 1.2 (Hummingbird) for each device, with WS-UsernameToken and HTTP Digest
/// authentication checked against the simulated clock.
///
/// Paths: `POST /onvif/INDEX/device_service` and `/onvif/INDEX/media_service` (and `/onvif/device_service`,
/// `/onvif/media_service` for device 0). Operations: GetSystemDateAndTime,
/// GetDeviceInformation, GetServices, GetCapabilities, GetProfiles, GetStreamUri; others get a
/// `ter:ActionNotSupported` fault. Request bodies are capped at 256 KiB and parsed with the bounded reader.
public final class ONVIFSimulator: Sendable {
    /// What this simulator serves.
    public let configuration: ONVIFSimConfiguration
    let logger: Logger
    let clocks: any Clocks
    /// The Digest nonce of this run (RFC 7616 §3.3: opaque to the client; one per process is enough here).
    let digestNonce = UsernameToken.randomNonce().map { String(format: "%02x", $0) }.joined()
    let realm = "hallwatch-simcam"
    let state = Mutex<
        (port: Int, group: ServiceGroup?, socket: WSDiscoverySocket?, stopping: Bool, messageNumber: UInt64)
    >((0, nil, nil, false, 0))
    /// WS-Discovery's AppSequence InstanceId: the start time in seconds, so it grows from start to start.
    let instanceID: UInt64
    let responderDone = DispatchSemaphore(value: 0)
    /// The event service (pull points, door properties, faults).
    let events: SimEventService

    /// Nothing listens until ``start()``; `clocks` gives the real time that the offset shifts.
    public init(configuration: ONVIFSimConfiguration, clocks: any Clocks = SystemClocks(), logger: Logger) {
        self.configuration = configuration
        self.clocks = clocks
        self.logger = logger
        instanceID = UInt64(max(0, clocks.utcNow().micros / 1_000_000))
        events = SimEventService(clocks: clocks)
    }

    /// The HTTP port listened on (after ``start()``).
    public var httpPort: Int { state.withLock { $0.port } }

    /// The device service URL of device `index`, with `host` (default: the configured address).
    public func deviceXAddr(_ index: Int, host: String? = nil) -> String {
        "http://\(host ?? configuration.address):\(httpPort)/onvif/\(index)/device_service"
    }

    /// Starts the HTTP server and the discovery responder; returns once listening. Throws when the port or
    /// the discovery socket cannot be opened.
    public func start() async throws {
        let router = Router()
        for service in ["device_service", "media_service"] {
            router.post("/onvif/{index}/\(service)") { [self] request, context -> Response in
                let index = context.parameters.get("index", as: Int.self) ?? -1
                let body = try await request.body.collect(upTo: 256 << 10)
                return handle(
                    index: index, service: service, headers: request.headers, body: Data(body.readableBytesView))
            }
            // The conventional paths (`/onvif/device_service`) reach device 0, as clients that do not read
            // XAddrs expect.
            router.post("/onvif/\(service)") { [self] request, _ -> Response in
                let body = try await request.body.collect(upTo: 256 << 10)
                return handle(index: 0, service: service, headers: request.headers, body: Data(body.readableBytesView))
            }
        }
        router.post("/onvif/{index}/event_service") { [self] request, context -> Response in
            let index = context.parameters.get("index", as: Int.self) ?? -1
            let body = try await request.body.collect(upTo: 256 << 10)
            return handle(
                index: index, service: "event_service", headers: request.headers, body: Data(body.readableBytesView))
        }
        // A pull point: PullMessages waits (polling its queue every 50 ms) until a message comes or its Timeout.
        router.post("/onvif/{index}/subscription/{id}") { [self] request, context -> Response in
            let index = context.parameters.get("index", as: Int.self) ?? -1
            let id = context.parameters.get("id", as: Int.self) ?? -1
            let body = Data(try await request.body.collect(upTo: 256 << 10).readableBytesView)
            let start = clocks.monotonicNow()
            // Credentials are checked once, when the request arrives, as a device does: asked again while the
            // request waits, a UsernameToken's Created grew older than the device's window by the end of a
            // 10 s pull, and the demo's door subscription was refused every other pull.
            var authenticated = false
            while true {
                let (response, wait) = handle(
                    index: index, service: "subscription", subscription: id, headers: request.headers, body: body,
                    final: false, authenticated: authenticated)
                guard let wait else { return response }
                authenticated = true
                if clocks.monotonicNow() - start >= wait {
                    return handle(
                        index: index, service: "subscription", subscription: id, headers: request.headers, body: body,
                        final: true, authenticated: true
                    ).0
                }
                try await clocks.sleep(for: .milliseconds(50))
            }
        }
        let (running, runningContinuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router,
            configuration: .init(
                address: .hostname(configuration.address, port: configuration.httpPort), serverName: nil),
            onServerRunning: { channel in
                runningContinuation.yield(channel.localAddress?.port ?? 0)
                runningContinuation.finish()
            }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        state.withLock { $0.group = group }
        Task {
            do { try await group.run() } catch { logger.error("ONVIF HTTP server stopped: \(error)") }
            runningContinuation.finish()
        }
        var port = 0
        for await p in running { port = p }
        guard port > 0 else {
            throw SimONVIFError(
                "the ONVIF HTTP server could not listen on \(configuration.address):\(configuration.httpPort)")
        }
        state.withLock { $0.port = port }
        if configuration.discovery {
            let socket = try WSDiscoverySocket(interfaceAddresses: [configuration.address])
            state.withLock { $0.socket = socket }
            let t = Thread { [self] in respond(socket) }
            t.name = "ws-discovery"
            t.start()
            for d in configuration.devices {
                try? socket.send(WSDiscoveryTarget.hello(describe(d), sequence: nextSequence()))
            }
        }
        if let every = configuration.eventEvery {
            Task { [self] in await cycleDoors(every: every) }
        }
        logger.info(
            "ONVIF devices ready",
            metadata: ["devices": "\(configuration.devices.count)", "http": "\(configuration.address):\(port)"])
    }

    /// Sends Bye for every device and stops the server.
    public func stop() async {
        let (socket, group) = state.withLock { s -> (WSDiscoverySocket?, ServiceGroup?) in
            s.stopping = true
            return (s.socket, s.group)
        }
        if let socket {
            for d in configuration.devices {
                try? socket.send(WSDiscoveryTarget.bye(describe(d), sequence: nextSequence()))
            }
            responderDone.wait()
        }
        await group?.triggerGracefulShutdown()
    }

    // MARK: - WS-Discovery

    func nextSequence() -> WSDiscoveryTarget.Sequence {
        WSDiscoveryTarget.Sequence(
            instanceID: instanceID,
            messageNumber: state.withLock {
                $0.messageNumber += 1
                return $0.messageNumber
            })
    }

    func describe(_ d: SimulatedDevice) -> WSDiscoveryTarget.Description {
        var xAddrs = [deviceXAddr(d.index)]
        if configuration.quirks.contains(.linkLocalXAddrFirst) {
            xAddrs.insert(deviceXAddr(d.index, host: linkLocalHost(d)), at: 0)
        }
        let scopes = [
            "onvif://www.onvif.org/type/video_encoder", "onvif://www.onvif.org/Profile/Streaming",
            "onvif://www.onvif.org/name/\(d.mount)", "onvif://www.onvif.org/hardware/SimCam",
            "onvif://www.onvif.org/location/hallwatch-simcam", "onvif://www.onvif.org/MAC/\(d.mac)",
        ]
        return WSDiscoveryTarget.Description(
            address: d.endpointAddress,
            scopes: configuration.quirks.contains(.noScopes) ? nil : scopes, xAddrs: xAddrs)
    }

    func linkLocalHost(_ d: SimulatedDevice) -> String { "169.254.\(10 + d.index / 250).\(1 + d.index % 250)" }

    /// The responder loop (its own thread): answers each Probe for our types after a random delay.
    func respond(_ socket: WSDiscoverySocket) {
        defer { responderDone.signal() }
        while !state.withLock({ $0.stopping }) {
            guard let dg = try? socket.receive(timeoutMs: 200), !dg.oversize else { continue }
            guard case .probe(let header, let types)? = try? DiscoveryMessage.parse(dg.bytes), let id = header.messageID
            else { continue }
            let matching = configuration.devices.map(describe).filter {
                WSDiscoveryTarget.matches(probeTypes: types, target: $0)
            }
            guard !matching.isEmpty else { continue }
            let relatesTo = configuration.quirks.contains(.badRelatesTo) ? WSDiscoveryProbe.newMessageID() : id
            let delayMs = Int.random(in: 0...500)
            let (from, port) = (dg.from, dg.fromPort)
            Task { [self] in
                try? await clocks.sleep(for: .milliseconds(delayMs))
                // One ProbeMatches per device, as separate targets would send them; each fits a datagram.
                for m in matching {
                    try? socket.send(
                        WSDiscoveryTarget.probeMatches([m], relatesTo: relatesTo, sequence: nextSequence()), to: from,
                        port: port)
                }
            }
        }
    }

    // MARK: - SOAP over HTTP

    struct Reply {
        var status: HTTPResponse.Status
        var xml: String
        var challenge = false
        /// A PullMessages with no message yet: ask again until this much time has passed.
        var pullWait: Duration? = nil
    }

    func handle(index: Int, service: String, headers: HTTPFields, body: Data) -> Response {
        handle(index: index, service: service, subscription: 0, headers: headers, body: body, final: true).0
    }

    /// The reply, and for a PullMessages that found no message yet (and not `final`), how long it may wait.
    /// `authenticated`: the request's credentials were already checked when it arrived (a waiting PullMessages).
    func handle(
        index: Int, service: String, subscription: Int, headers: HTTPFields, body: Data, final: Bool,
        authenticated: Bool = false
    ) -> (Response, Duration?) {
        let now = deviceNow()
        let reply: Reply
        if let d = configuration.devices.first(where: { $0.index == index }) {
            reply = answer(
                d, service: service, subscription: subscription, headers: headers, body: body, deviceNow: now,
                final: final, authenticated: authenticated)
        } else {
            reply = Reply(
                status: .notFound,
                xml: SimSOAP.fault(code: "Sender", subcode: "ter:InvalidArgVal", reason: "no such device"))
        }
        var h = HTTPFields()
        h[.contentType] = "application/soap+xml; charset=utf-8"
        // The simulated clock, also when a strict device refuses GetSystemDateAndTime (RFC 9110 §6.6.1).
        h[.date] = Self.httpDate(now)
        if reply.challenge {
            h.append(
                .init(
                    name: .wwwAuthenticate,
                    value: "Digest realm=\"\(realm)\", qop=\"auth\", algorithm=SHA-256, nonce=\"\(digestNonce)\""))
            h.append(
                .init(
                    name: .wwwAuthenticate,
                    value: "Digest realm=\"\(realm)\", qop=\"auth\", algorithm=MD5, nonce=\"\(digestNonce)\""))
        }
        return (
            Response(status: reply.status, headers: h, body: .init(byteBuffer: ByteBuffer(string: reply.xml))),
            reply.pullWait
        )
    }

    /// The simulated device's clock.
    func deviceNow() -> UTCMicros { clocks.utcNow().adding(micros: configuration.clockOffsetSeconds * 1_000_000) }

    func answer(
        _ d: SimulatedDevice, service: String, subscription: Int = 0, headers: HTTPFields, body: Data,
        deviceNow: UTCMicros, final: Bool = true, authenticated: Bool = false
    ) -> Reply {
        let envelope: SOAPEnvelope
        do { envelope = try SOAPEnvelope.parse(body) } catch {
            return Reply(
                status: .badRequest,
                xml: SimSOAP.fault(code: "Sender", subcode: "ter:WellFormed", reason: "not a SOAP envelope"))
        }
        guard let op = envelope.body.children.first else {
            return Reply(
                status: .badRequest,
                xml: SimSOAP.fault(code: "Sender", subcode: "ter:InvalidArgVal", reason: "empty body"))
        }
        let isClock = op.name.local == "GetSystemDateAndTime"
        let open = isClock && !configuration.quirks.contains(.strictAuth)
        // A strict device still answers the clock to valid credentials whatever their Created (else no client
        // could ever learn its time).
        if !open, !authenticated,
            let refusal = authenticate(
                headers: headers, header: envelope.header, deviceNow: deviceNow, timeCheck: !isClock)
        {
            return refusal
        }
        let host =
            configuration.quirks.contains(.linkLocalXAddrFirst)
            ? linkLocalHost(d) : configuration.advertisedHost ?? configuration.address
        let base = "http://\(host):\(httpPort)/onvif/\(d.index)"
        switch (service, op.name.namespace, op.name.local) {
        case (_, NS.device, "GetSystemDateAndTime"): return Reply(status: .ok, xml: SimSOAP.dateTime(deviceNow))
        case ("device_service", NS.device, "GetDeviceInformation"):
            return Reply(status: .ok, xml: SimSOAP.deviceInformation(d))
        case ("device_service", NS.device, "GetServices"):
            return Reply(
                status: .ok,
                xml: SimSOAP.services(
                    device: base + "/device_service", media: base + "/media_service", events: base + "/event_service"))
        case ("device_service", NS.device, "GetCapabilities"):
            return Reply(
                status: .ok,
                xml: SimSOAP.capabilities(
                    device: base + "/device_service", media: base + "/media_service", events: base + "/event_service"))
        case ("media_service", NS.media, "GetProfiles"): return Reply(status: .ok, xml: SimSOAP.profiles(d))
        case ("media_service", NS.media, "GetStreamUri"):
            // The sub profile (token `sub`) streams from its own mount; every other token from the main one.
            let token = op.childText(NS.media, "ProfileToken")
            let mount = token == "sub" ? d.sub?.mount ?? d.mount : d.mount
            let uri = "rtsp://\(host):\(configuration.rtspPort)/\(mount)"
            guard configuration.quirks.contains(.invalidAfterConnect) else {
                return Reply(status: .ok, xml: SimSOAP.streamURI(uri))
            }
            let n = state.withLock {
                $0.messageNumber += 1
                return $0.messageNumber
            }
            return Reply(status: .ok, xml: SimSOAP.streamURI(uri + "?onetime=\(n)", invalidAfterConnect: true))
        case ("event_service", NS.events, "CreatePullPointSubscription"):
            let termination = Self.termination(op.childText(NS.events, "InitialTerminationTime"), deviceNow: deviceNow)
            let (id, end) = events.create(device: d.index, termination: termination, deviceNow: deviceNow)
            return Reply(
                status: .ok,
                xml: SimSOAP.createPullPoint(address: base + "/subscription/\(id)", now: deviceNow, end: end))
        case ("subscription", NS.events, "PullMessages"):
            let timeout = min(Self.xsDuration(op.childText(NS.events, "Timeout")) ?? .seconds(10), .seconds(60))
            let limit = op.childText(NS.events, "MessageLimit").flatMap { Int($0) } ?? 100
            switch events.pull(
                id: subscription, device: d.index, limit: limit, extend: .seconds(60), deviceNow: deviceNow,
                final: final)
            {
            case .unknown: return unknownSubscription()
            case .empty: return Reply(status: .ok, xml: "", pullWait: timeout)
            case .messages(let messages, let end):
                return Reply(status: .ok, xml: SimSOAP.pullMessages(now: deviceNow, end: end, messages: messages))
            }
        case ("subscription", NS.wsnt, "Renew"):
            let termination = Self.termination(op.childText(NS.wsnt, "TerminationTime"), deviceNow: deviceNow)
            guard
                let end = events.renew(
                    id: subscription, device: d.index, termination: termination, deviceNow: deviceNow)
            else { return unknownSubscription() }
            return Reply(status: .ok, xml: SimSOAP.renew(now: deviceNow, end: end))
        case ("subscription", NS.wsnt, "Unsubscribe"):
            guard events.unsubscribe(id: subscription, device: d.index) else { return unknownSubscription() }
            return Reply(status: .ok, xml: SimSOAP.unsubscribe())
        default:
            return Reply(
                status: .internalServerError,
                xml: SimSOAP.fault(
                    code: "Receiver", subcode: "ter:ActionNotSupported", reason: "not supported by the simulated device"
                ))
        }
    }

    /// The fault for a pull point the device does not know (expired, unsubscribed, or lost in a reboot).
    func unknownSubscription() -> Reply {
        Reply(
            status: .badRequest,
            xml: SimSOAP.fault(code: "Sender", subcode: "ter:InvalidArgVal", reason: "unknown subscription"))
    }

    /// A requested termination (WS-BaseNotification §4.2: an xs:duration, or an xs:dateTime in the device's clock)
    /// as a duration from now: 1 s to 1 h, default 60 s.
    static func termination(_ text: String?, deviceNow: UTCMicros) -> Duration {
        var d = xsDuration(text)
        if d == nil, let t = text.flatMap(ISO8601.parse) { d = .microseconds(t.micros - deviceNow.micros) }
        return min(max(d ?? .seconds(60), .seconds(1)), .seconds(3600))
    }

    /// Seconds of an xs:duration of the forms `PT10S`, `PT1M`, `PT1H` (and their sums); `nil` otherwise.
    static func xsDuration(_ text: String?) -> Duration? {
        guard var t = text?.uppercased(), t.hasPrefix("PT") else { return nil }
        t.removeFirst(2)
        var seconds = 0.0
        var number = ""
        for ch in t {
            if ch.isNumber || ch == "." {
                number.append(ch)
                continue
            }
            guard let n = Double(number) else { return nil }
            switch ch {
            case "H": seconds += n * 3600
            case "M": seconds += n * 60
            case "S": seconds += n
            default: return nil
            }
            number = ""
        }
        return number.isEmpty && seconds > 0 ? .milliseconds(Int64(seconds * 1000)) : nil
    }

    // MARK: - events: what happens at the door, and fault injection (issue 16)

    /// `event` happens at device `device`'s door: its notifications go to every live pull point of the device.
    public func emit(_ event: SimDoorEvent, device: Int) {
        events.emit(event, device: device, deviceNow: deviceNow())
    }

    /// Fault: device `device` forgets every pull point (as after a reboot); their next request gets a fault.
    public func dropEventSubscriptions(device: Int) { events.drop(device: device) }

    /// Fault: `rounds` × `Initialized` of every property queued on each pull point of `device`, each round with
    /// a new time (what some devices send after a configuration change).
    public func initializedStorm(device: Int, rounds: Int) {
        events.initializedStorm(device: device, rounds: rounds, deviceNow: deviceNow())
    }

    /// Faults from now on: notifications stamped in 1970 (seconds since the simulator started: a device that
    /// lost its clock), and a device that does not extend a pull point on PullMessages (it needs `Renew`).
    public func setEventFaults(times1970: Bool, needsRenew: Bool) {
        events.state.withLock {
            $0.times1970 = times1970
            $0.needsRenew = needsRenew
        }
    }

    /// What the event service of device `device` did.
    public func eventStats(device: Int) -> SimEventStats { events.stats(device: device) }

    /// The demo's doors (``ONVIFSimConfiguration/eventEvery``), until the simulator stops.
    func cycleDoors(every: Duration) async {
        let script: [[SimDoorEvent]] = [[.opened], [.closed], [.granted], [.forced], [.closed]]
        var step = 0
        while !state.withLock({ $0.stopping }) {
            try? await clocks.sleep(for: every)
            for d in configuration.devices {
                for e in script[step % script.count] { emit(e, device: d.index) }
            }
            step += 1
        }
    }

    /// `nil` when the request may proceed; otherwise the refusal (ONVIF Core §5.12; HTTP 400 + `ter:NotAuthorized`
    /// for a bad token, 401 + Digest challenge when Digest is acceptable and no valid credentials came).
    func authenticate(headers: HTTPFields, header: ParsedXMLElement?, deviceNow: UTCMicros, timeCheck: Bool) -> Reply? {
        guard let cr = configuration.credentials else { return nil }
        let mode = configuration.authMode
        var tokenFailure: ServerAuth.Failure? = .missing
        if mode != .digest {
            tokenFailure = ServerAuth.checkUsernameToken(
                header: header, username: cr.username, password: cr.password,
                deviceNow: deviceNow, maxSkewSeconds: timeCheck ? configuration.maxSkewSeconds : 1 << 40)
            if tokenFailure == nil { return nil }
        }
        if mode != .usernameToken {
            if ServerAuth.checkDigest(
                authorization: headers[.authorization], method: "POST", realm: realm, nonce: digestNonce,
                username: cr.username, password: cr.password) == nil
            {
                return nil
            }
        }
        let refused = SimSOAP.fault(code: "Sender", subcode: "ter:NotAuthorized", reason: "Sender not Authorized")
        if mode == .usernameToken || (mode == .both && tokenFailure != .missing) {
            logger.debug("UsernameToken refused", metadata: ["why": "\(tokenFailure?.rawValue ?? "?")"])
            return Reply(status: .badRequest, xml: refused)
        }
        return Reply(status: .unauthorized, xml: refused, challenge: true)
    }

    static func httpDate(_ t: UTCMicros) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return f.string(from: Date(timeIntervalSince1970: t.seconds))
    }
}

/// The simulated ONVIF device could not start.
public struct SimONVIFError: HallwatchError {
    /// One sentence for the person running the simcam.
    public var description: String
    /// An error saying `d`.
    public init(_ d: String) { description = d }
    /// Always `simcam.onvifListen`.
    public var stableCode: String { "simcam.onvifListen" }
    /// ``description``.
    public var message: String { description }
}
