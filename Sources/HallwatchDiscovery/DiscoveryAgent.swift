import Crypto
import Foundation
import HallwatchCore
import Logging

/// Settings of the discovery agent (from the `discovery:` configuration section).
public struct DiscoveryAgentSettings: Sendable {
    /// The interfaces to probe and listen on (resolved names or addresses).
    public var interfaces: [(configured: String, interface: IPv4Interfaces.Interface)]
    /// Time between probe rounds.
    public var period: Duration
    /// How long each round listens for ProbeMatches (WS-Discovery `APP_MAX_DELAY` is 500 ms; cameras are late).
    public var listen: Duration
    /// Probe rounds a present device may miss before it is marked gone.
    public var missedProbes: Int
    /// Most devices tracked; further ones are ignored (and logged) until some are forgotten.
    public var maxDevices: Int
    /// Devices described at once.
    public var describeConcurrency: Int
    /// Deadline of each ONVIF HTTP request.
    public var requestTimeout: Duration
    /// ONVIF credentials for every device; `nil` for none.
    public var credentials: ONVIFCredentials?
    /// Listen for Hello and Bye on port 3702 (off in tests that share a namespace with a device).
    public var listenForAnnouncements: Bool

    /// Defaults as in the `discovery:` configuration section (period 60 s, listen 2 s, 3 missed rounds, 256
    /// devices, 8 descriptions at once, 4 s per request).
    public init(
        interfaces: [(configured: String, interface: IPv4Interfaces.Interface)], period: Duration = .seconds(60),
        listen: Duration = .seconds(2), missedProbes: Int = 3, maxDevices: Int = 256, describeConcurrency: Int = 8,
        requestTimeout: Duration = .seconds(4), credentials: ONVIFCredentials?, listenForAnnouncements: Bool = true
    ) {
        self.interfaces = interfaces
        self.period = period
        self.listen = listen
        self.missedProbes = missedProbes
        self.maxDevices = maxDevices
        self.describeConcurrency = describeConcurrency
        self.requestTimeout = requestTimeout
        self.credentials = credentials
        self.listenForAnnouncements = listenForAnnouncements
    }
}

/// The discovery agent's state machine: WS-Discovery rounds, Hello/Bye, de-duplication, description over
/// HTTP, presence. Results go to `publish` as ``DiscoveredDevice`` values (the service puts them on the bus).
///
/// Steps of a round (``runRound()``), issue 5 §1 and §4:
/// 1. On every interface, on its own thread, a ``WSDiscoveryProber`` sends a Probe for
///    `dn:NetworkVideoTransmitter` and one for `tds:Device` (each repeated once, SOAP-over-UDP 1.1 App. I) and
///    listens for `listen`.
/// 2. Each camera answer is keyed by its endpoint reference (``DiscoveredEndpoint/endpointKey``); its XAddrs
///    are ordered: on the interface's subnet, other routable, link-local last.
/// 3. A device not heard this round has missed one; at `missedProbes` it is marked gone. A Bye marks it gone
///    at once; a Hello counts as heard.
/// 4. New devices, devices whose XAddrs or metadata version changed, and devices whose last description
///    failed are described (``DeviceDescriber``), `describeConcurrency` at a time.
/// 5. A described device whose serial number (with manufacturer) or MAC equals an earlier device's is a
///    duplicate (a second NIC, a second endpoint reference): it is folded into the first, whose addresses
///    grow, and is not published on its own.
/// 6. Every device whose published form changed is passed to `publish`.
public actor DiscoveryAgent {
    struct Entry {
        var endpoint: DiscoveredEndpoint
        var from: String
        var interface: String
        var missed = 0
        var present = true
        var goneReason: String?
        var firstSeen: UTCMicros
        var lastSeen: UTCMicros
        var description: DeviceDescription?
        var describedAt: UTCMicros?
        var describedFor: [String] = []
        var needsDescription = true
        var duplicateOf: String?
        var lastPublished: DiscoveredDevice?
    }

    let settings: DiscoveryAgentSettings
    let describer: DeviceDescriber
    let clocks: any Clocks
    let logger: Logger
    let publish: @Sendable (DiscoveredDevice) -> Void
    let reportError: @Sendable (ErrorEvent) -> Void
    var entries: [String: Entry] = [:]
    var order: [String] = []
    /// Statistics of the last round (for logs and the benchmark).
    public private(set) var lastRound = (replies: 0, malformed: 0, unrelated: 0, notCameras: 0, mismatched: 0)

    /// `publish` gets every device whose published form changed (called on the actor: keep it short);
    /// `reportError` every typed failure (probe socket, description), for the bus.
    public init(
        settings: DiscoveryAgentSettings, http: BoundedHTTPClient, clocks: any Clocks = SystemClocks(), logger: Logger,
        publish: @escaping @Sendable (DiscoveredDevice) -> Void, reportError: @escaping @Sendable (ErrorEvent) -> Void
    ) {
        self.settings = settings
        self.clocks = clocks
        self.logger = logger
        self.publish = publish
        self.reportError = reportError
        describer = DeviceDescriber(
            http: http, credentials: settings.credentials, timeout: settings.requestTimeout, clocks: clocks,
            logger: logger)
    }

    /// The stable published id of an endpoint key.
    public static func deviceID(endpointKey: String) -> String {
        "dev-" + SHA256.hash(data: Array(endpointKey.utf8)).prefix(4).map { String(format: "%02x", $0) }.joined()
    }

    /// Runs rounds every `period` until the task is cancelled, with the Hello/Bye listener beside them.
    public func run() async {
        let listener = settings.listenForAnnouncements ? startListener() : nil
        defer { listener?.stop() }
        while !Task.isCancelled {
            let started = clocks.monotonicNanos()
            await runRound()
            let spent = Duration.nanoseconds(Int64(clocks.monotonicNanos() &- started))
            try? await clocks.sleep(for: max(.milliseconds(100), settings.period - spent))
        }
    }

    /// One probe round (steps 1–6). Returns the published devices that are present after it.
    @discardableResult
    public func runRound() async -> [DiscoveredDevice] {
        let listen = settings.listen
        let results = await withTaskGroup(of: (String, ProbeOutcome?).self) { group in
            for (configured, iface) in settings.interfaces {
                let logger = self.logger
                group.addTask {
                    do {
                        let outcome = try await onOwnThread {
                            let prober = try WSDiscoveryProber(interfaceAddress: iface.address, logger: logger)
                            return try prober.probe(
                                typeSets: [[WSDiscoveryProbe.networkVideoTransmitter], [WSDiscoveryProbe.onvifDevice]],
                                listenFor: listen)
                        }
                        return (configured, outcome)
                    } catch {
                        logger.error("probe failed", metadata: ["interface": "\(configured)", "error": "\(error)"])
                        return (configured, nil)
                    }
                }
            }
            var all: [(String, ProbeOutcome?)] = []
            for await r in group { all.append(r) }
            return all
        }
        var heard = Set<String>()
        lastRound = (0, 0, 0, 0, 0)
        for (configured, outcome) in results {
            guard let outcome else {
                reportError(ErrorEvent(code: "discovery.probe", message: "probing on \(configured) failed"))
                continue
            }
            lastRound.replies += outcome.replies.count
            lastRound.malformed += outcome.malformed
            lastRound.unrelated += outcome.unrelated
            lastRound.notCameras += outcome.notCameras
            lastRound.mismatched += outcome.mismatched.count
            for r in outcome.replies + outcome.mismatched {
                heard.insert(r.endpoint.endpointKey)
                observe(r.endpoint, from: r.from, interface: configured)
            }
        }
        if lastRound.malformed > 0 {
            logger.info("malformed discovery datagrams skipped", metadata: ["count": "\(lastRound.malformed)"])
        }
        // 3. Missed rounds.
        for key in order where !heard.contains(key) {
            guard var e = entries[key], e.present else { continue }
            e.missed += 1
            if e.missed >= settings.missedProbes {
                e.present = false
                e.goneReason = "missedProbes"
            }
            entries[key] = e
        }
        await describePending()
        publishChanges()
        return order.compactMap { entries[$0]?.lastPublished }.filter { $0.presence == .present }
    }

    /// Handles one datagram heard on port 3702 (Hello, Bye; Probes and the rest are ignored).
    func announcement(_ message: DiscoveryMessage, from: String) async {
        switch message {
        case .hello(_, let endpoint) where endpoint.isCamera:
            let iface =
                settings.interfaces.first { IPv4Interfaces.contains($0.interface, host: from) }?.configured
                ?? settings.interfaces.first?.configured ?? ""
            observe(endpoint, from: from, interface: iface)
            await describePending()
            publishChanges()
        case .bye(_, let endpoint):
            guard var e = entries[endpoint.endpointKey], e.present else { return }
            e.present = false
            e.goneReason = "bye"
            entries[endpoint.endpointKey] = e
            logger.info("device said Bye", metadata: ["endpoint": "\(endpoint.endpointKey)"])
            publishChanges()
        default:
            return
        }
    }

    func observe(_ endpoint: DiscoveredEndpoint, from: String, interface: String) {
        let key = endpoint.endpointKey
        let now = clocks.utcNow()
        let iface = settings.interfaces.first { $0.configured == interface }?.interface
        var ep = endpoint
        ep.xAddrs = Self.ordered(endpoint.xAddrs, interface: iface)
        if var e = entries[key] {
            // A Bye-only endpoint (no XAddrs) or a Hello without XAddrs keeps what we knew.
            if ep.xAddrs.isEmpty { ep.xAddrs = e.endpoint.xAddrs }
            if ep.xAddrs != e.describedFor || ep.metadataVersion != e.endpoint.metadataVersion {
                e.needsDescription = true
            }
            if !e.present { e.needsDescription = true }
            e.endpoint = ep
            e.from = from
            e.interface = interface
            e.missed = 0
            e.present = true
            e.goneReason = nil
            e.lastSeen = now
            entries[key] = e
            return
        }
        guard entries.count < settings.maxDevices else {
            logger.warning("device limit reached; ignoring a new device", metadata: ["limit": "\(settings.maxDevices)"])
            return
        }
        entries[key] = Entry(endpoint: ep, from: from, interface: interface, firstSeen: now, lastSeen: now)
        order.append(key)
        logger.info("device found", metadata: ["endpoint": "\(key)", "from": "\(from)", "interface": "\(interface)"])
    }

    /// XAddrs on the interface's subnet first, then other routable ones, link-local last (issue 5 §1).
    static func ordered(_ xAddrs: [String], interface: IPv4Interfaces.Interface?) -> [String] {
        func rank(_ x: String) -> Int {
            if DiscoveredEndpoint.isLinkLocal(urlString: x) { return 2 }
            if let i = interface, let host = URLComponents(string: x)?.host, IPv4Interfaces.contains(i, host: host) {
                return 0
            }
            return 1
        }
        return xAddrs.enumerated().sorted { (rank($0.element), $0.offset) < (rank($1.element), $1.offset) }.map(
            \.element)
    }

    /// Step 4, bounded concurrency.
    func describePending() async {
        let keys = order.filter { k in
            entries[k].map { $0.present && $0.needsDescription && $0.duplicateOf == nil } ?? false
        }
        guard !keys.isEmpty else { return }
        let describer = self.describer
        let jobs = keys.compactMap { k in entries[k].map { (k, $0.endpoint.xAddrs, $0.from) } }
        let limit = max(1, settings.describeConcurrency)
        await withTaskGroup(of: (String, [String], DeviceDescription).self) { group in
            var next = 0
            func add() {
                guard next < jobs.count else { return }
                let (k, x, from) = jobs[next]
                next += 1
                group.addTask { (k, x, await describer.describe(xAddrs: x, fallbackHost: from)) }
            }
            for _ in 0..<min(limit, jobs.count) { add() }
            for await (k, x, d) in group {
                record(k, xAddrs: x, description: d)
                add()
            }
        }
    }

    func record(_ key: String, xAddrs: [String], description d: DeviceDescription) {
        guard var e = entries[key] else { return }
        let previousError = e.description?.error?.code
        e.description = d
        e.describedAt = clocks.utcNow()
        e.describedFor = xAddrs
        // Retry failed descriptions next round; a refused password too (it may have been fixed).
        e.needsDescription = d.error != nil
        if let err = d.error, err.code != previousError {  // a device failing every round is reported once
            logger.warning(
                "device description incomplete",
                metadata: ["endpoint": "\(key)", "error.code": "\(err.code.rawValue)", "auth": "\(d.auth.rawValue)"])
            reportError(err.event(process: "discovery"))
        }
        // Step 5: duplicates by serial (+ manufacturer), then MAC.
        let serial = d.information?.serialNumber.map { "\(d.information?.manufacturer ?? "")|\($0)" }
        let mac = e.endpoint.onvifScopes.mac?.lowercased()
        e.duplicateOf = order.first { other in
            guard other != key, let o = entries[other], o.duplicateOf == nil,
                order.firstIndex(of: other)! < order.firstIndex(of: key)!
            else { return false }
            if let serial,
                let os = o.description?.information?.serialNumber.map({
                    "\(o.description?.information?.manufacturer ?? "")|\($0)"
                }), os == serial
            {
                return true
            }
            if let mac, mac == o.endpoint.onvifScopes.mac?.lowercased() { return true }
            return false
        }
        if let first = e.duplicateOf {
            logger.info("duplicate device folded", metadata: ["endpoint": "\(key)", "into": "\(first)"])
        }
        entries[key] = e
    }

    func publishChanges() {
        for key in order {
            guard var e = entries[key], e.duplicateOf == nil else { continue }
            let dups = order.filter { entries[$0]?.duplicateOf == key }.compactMap { entries[$0] }
            var device = Self.published(key: key, e, duplicates: dups)
            // Times alone do not make a change worth a message.
            var cmp = device
            cmp.lastSeen = e.lastPublished?.lastSeen ?? cmp.lastSeen
            // The offset is measured to about a second each time: jitter is no change either.
            if let a = cmp.clockOffsetMs, let b = e.lastPublished?.clockOffsetMs, abs(a - b) < 1_500 {
                cmp.clockOffsetMs = b
            }
            if let last = e.lastPublished, last == cmp { continue }
            device.lastSeen = e.lastSeen
            e.lastPublished = device
            entries[key] = e
            publish(device)
        }
    }

    static func published(key: String, _ e: Entry, duplicates: [Entry]) -> DiscoveredDevice {
        let d = e.description
        var dev = DiscoveredDevice(
            id: deviceID(endpointKey: key), endpoint: key, presence: e.present ? .present : .gone,
            addresses: Array(Set([e.from] + duplicates.map(\.from))).sorted(), xAddrs: e.endpoint.xAddrs,
            auth: d?.auth.rawValue ?? "unknown", firstSeen: e.firstSeen, lastSeen: e.lastSeen)
        dev.goneReason = e.goneReason
        dev.interface = e.interface
        let scopes = e.endpoint.onvifScopes
        dev.name = scopes.name
        dev.location = scopes.location
        dev.mac = scopes.mac
        dev.deviceXAddr = d.flatMap { $0.reachedHost.isEmpty ? nil : $0.deviceXAddr }
        dev.mediaXAddr = d?.mediaXAddr
        dev.media2 = d.map(\.usedMedia2)
        dev.manufacturer = d?.information?.manufacturer
        dev.model = d?.information?.model ?? scopes.hardware
        dev.firmware = d?.information?.firmwareVersion
        dev.serial = d?.information?.serialNumber
        dev.hardwareID = d?.information?.hardwareID
        dev.clockOffsetMs = d.map { $0.clockOffset.micros / 1000 }
        dev.profiles = (d?.profiles ?? []).map { p in
            var q = DiscoveredDevice.Profile(token: p.token)
            q.name = p.name
            q.encoding = p.videoEncoder?.encoding.map(Self.encodingName)
            q.width = p.videoEncoder?.resolution?.width
            q.height = p.videoEncoder?.resolution?.height
            q.frameRateLimit = p.videoEncoder?.frameRateLimit
            q.bitrateLimitKbps = p.videoEncoder?.bitrateLimitKbps
            q.videoSourceToken = p.videoSourceToken
            return q
        }
        dev.streams = (d?.streams ?? []).map {
            DiscoveredDevice.Stream(
                role: $0.role, profileToken: $0.profile.token, videoSourceToken: $0.videoSourceToken,
                uri: $0.uri?.uri, invalidAfterConnect: $0.uri?.invalidAfterConnect ?? false)
        }
        dev.error = d?.error?.event(process: "discovery")
        dev.describedAt = nil  // kept out of the comparison; set by the service if it wants it
        return dev
    }

    static func encodingName(_ e: VideoEncoding) -> String {
        switch e {
        case .h264: return "H264"
        case .h265: return "H265"
        case .jpeg: return "JPEG"
        case .mpeg4: return "MPEG4"
        case .other(let s): return s
        }
    }

    // MARK: - Hello/Bye listener

    /// A thread reading port 3702; stopped by ``stop()``.
    final class Listener: @unchecked Sendable {
        let socket: WSDiscoverySocket
        private let stopped = NSLock()
        private var stopping = false
        init(socket: WSDiscoverySocket) { self.socket = socket }
        var isStopping: Bool {
            stopped.lock()
            defer { stopped.unlock() }
            return stopping
        }
        func stop() {
            stopped.lock()
            stopping = true
            stopped.unlock()
        }
    }

    func startListener() -> Listener? {
        let socket: WSDiscoverySocket
        do { socket = try WSDiscoverySocket(interfaceAddresses: settings.interfaces.map(\.interface.address)) } catch {
            logger.error("cannot listen for Hello/Bye on port 3702", metadata: ["error": "\(error)"])
            reportError(
                ErrorEvent(code: "discovery.listen", message: "cannot listen for Hello/Bye on port 3702: \(error)"))
            return nil
        }
        let listener = Listener(socket: socket)
        let logger = self.logger
        let thread = Thread { [weak self] in
            var malformed = 0
            while !listener.isStopping {
                guard let dg = try? socket.receive(timeoutMs: 250) else { continue }
                guard !dg.oversize, let message = try? DiscoveryMessage.parse(dg.bytes) else {
                    malformed += 1
                    if malformed % 100 == 1 {
                        logger.debug("malformed datagram on 3702 skipped", metadata: ["from": "\(dg.from)"])
                    }
                    continue
                }
                guard let self else { return }
                Task { await self.announcement(message, from: dg.from) }
            }
        }
        thread.name = "ws-discovery-listen"
        thread.start()
        return listener
    }
}

/// Runs blocking `body` on a thread of its own (probing blocks for the listen window; the cooperative pool
/// must not).
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        Thread { c.resume(with: Result { try body() }) }.start()
    }
}
