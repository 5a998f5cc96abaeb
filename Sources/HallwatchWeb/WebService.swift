import CMalloc
import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import HallwatchDataPlane
import HallwatchEvidence
import HallwatchProcess
import HallwatchStatus
import Hummingbird
import HummingbirdHTTP2
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

/// The `hallwatch-web` process: HTTPS (HTTP/2 through ALPN, HTTP/1.1 otherwise) on each listen address, the
/// optional redirect-only HTTP port, a sweep of expired sessions every minute, and the ``BusAuditor``.
///
/// Start-up steps (``prepare(config:settings:presence:logger:)``):
/// 1. Make the state directory (0700) if missing; open `web.sqlite` (sessions, audit log) and `events.sqlite`
///    (door and alarm events, ``EventService``).
/// 2. Load or make the TLS key and certificate (``TLSIdentity``); log the certificate's SHA-256 fingerprint.
/// 3. Load or make the Ed25519 identity key (``BoxIdentityKey``); log its fingerprint.
/// 4. Publish both fingerprints retained (`WebIdentity`).
/// 5. Subscribe to the bus's retained state (``StatusCollector``) and the error topic (``RecentAlarms``).
///
/// Running: the HTTPS servers, the redirect port, the ``BusAuditor``, the ``AuditCheckpointer`` (signs the
/// chain's head at start and hourly), the session sweep, ``EventRetention`` (every minute, bounded) and the
/// streams' state history (``CameraHistory``: the changes in the status snapshot, every second).
public struct WebService: Service {
    let environment: WebEnvironment
    let identity: TLSIdentity
    let web: WebConfig
    let auditor: BusAuditor
    let checkpointer: AuditCheckpointer
    let retention: EventRetention?
    /// How long the state history is kept: as long as the longest retention (the gaps it explains are gone then).
    let historyMaxAge: Duration
    let bus: BusClient
    let logger: Logger

    /// Builds the service from the box's configuration and the web file.
    /// - Throws: file and SQLite errors of steps 1–2 (the process exits 70 and systemd restarts it).
    public static func prepare(
        config: HallwatchConfig, settings: WebSettings, presence: Presence, clocks: any Clocks = SystemClocks(),
        configPath: String? = nil, logger: Logger
    ) throws -> WebService {
        let dir = settings.web.stateDirectory
        if !FileManager.default.fileExists(atPath: dir) {
            try FileManager.default.createDirectory(
                atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let database = try WebDatabase(path: dir + "/web.sqlite")
        let names = TLSIdentity.names(hostName: ProcessInfo.processInfo.hostName, extra: settings.web.certificateNames)
        let identity = try TLSIdentity.load(directory: dir, names: names, now: Date())
        logger.info(
            "TLS certificate",
            metadata: [
                "tls.sha256": "\(identity.fingerprintSHA256)", "tls.selfSigned": "\(identity.selfSigned)",
                "tls.names": "\(names.joined(separator: ","))",
            ])
        let key = try BoxIdentityKey.load(directory: dir)
        logger.info("identity key (Ed25519)", metadata: ["identity.sha256": "\(key.fingerprintSHA256)"])
        let topics = BusTopics(box: config.box)
        // Retained, so `hallwatchctl status` and the page show what to compare with the browser's warning.
        try? presence.bus.publish(
            WebIdentity(
                tlsSHA256: identity.fingerprintSHA256, selfSigned: identity.selfSigned, names: names,
                httpsPort: settings.web.httpsPort, at: clocks.utcNow(), identitySHA256: key.fingerprintSHA256),
            topic: topics.webIdentity, retain: true)
        let bus = presence.bus
        let checkpointer = AuditCheckpointer(
            database: database, key: key, box: config.box, clocks: clocks,
            publish: { try bus.publish($0, topic: topics.auditCheckpoint, retain: true) })
        let collector = StatusCollector(bus: presence.bus, topics: topics)
        let alarms = RecentAlarms(bus: presence.bus, topics: topics)
        if settings.users.isEmpty {
            logger.warning("no users in the web file: the page only says how to add one (hallwatchctl user hash)")
        }
        let configured = Set(config.cameras.map(\.id))
        for (group, cameras) in settings.cameraGroups.sorted(by: { $0.key < $1.key }) {
            let unknown = cameras.filter { !configured.contains($0) }
            guard !unknown.isEmpty else { continue }
            // A warning, not a refusal: an adopted camera joins the configuration later under the same id.
            logger.warning(
                "camera group names cameras the configuration does not have: nobody sees them until they are added",
                metadata: ["group": "\(group)", "cameras": "\(unknown.map(\.rawValue).joined(separator: ","))"])
        }
        let disks = config.recorder.disks.map { RecordingThumbnailSource.DiskLocation(name: $0.name, path: $0.path) }
        let audit = AuditLog(database: database, clocks: clocks, filePath: dir + "/audit.log")
        let throttle = LoginThrottle(clocks: clocks)
        for s in try audit.signIns() { throttle.remember(address: s.address, account: s.user, atMicros: s.atMicros) }
        var env = WebEnvironment(
            settings: settings,
            sessions: SessionStore(
                database: database, clocks: clocks, idle: settings.web.sessionIdleTimeout,
                lifetime: settings.web.sessionLifetime),
            throttle: throttle, audit: audit,
            status: BusStatusSource(collector: collector, alarms: alarms, configured: config.streams.map(\.id)),
            clocks: clocks, building: config.building, metricsToken: try settings.web.metricsToken(),
            facts: BoxFacts(
                box: config.box, building: config.building, identitySHA256: key.fingerprintSHA256,
                tlsSHA256: identity.fingerprintSHA256),
            time: BuildingTime(identifier: settings.web.timeZone) ?? .utc, checkpointer: checkpointer,
            thumbnails: ThumbnailCache(source: RecordingThumbnailSource(disks: disks, box: config.box), clocks: clocks),
            plots: PlotCache(source: RecordingUsageSource(disks: disks, box: config.box), clocks: clocks),
            chartJS: try? String(contentsOfFile: Assets.chartJSPath, encoding: .utf8),
            live: LiveHub(socketPath: LiveWire.socketPath(dataPlaneSocket: config.recorder.socket), logger: logger),
            map: MapStore(config: config, configPath: configPath, clocks: clocks), leaflet: LeafletFiles.load(),
            responders: ResponderLinks(database: database, clocks: clocks),
            dispatchToken: try settings.web.dispatchToken())
        env.events = try EventService.production(
            config: config, stateDirectory: dir, audit: env.audit, bus: presence.bus, clocks: clocks, map: env.map,
            logger: logger)
        env.hls = LiveHLS(disks: config.recorder.disks.map { ($0.name, $0.path) }, box: config.box)
        env.recordings = RecordingDisks(disks: disks, box: config.box)
        let history = CameraHistory(database: database)
        env.history = history
        env.exports = try ExportJobs(
            directory: dir + "/exports", recordings: RecordingDisks(disks: disks, box: config.box),
            signer: BundleSigner(publicKey: key.publicKey, sign: { key.sign($0) }), box: config.box, clocks: clocks,
            audit: env.audit,
            publish: { progress in try? bus.publish(progress, topic: topics.export(progress.id), retain: true) },
            requestHolds: EventService.holdRequester(bus: bus, topics: topics, clocks: clocks),
            gapCause: { try? history.cause(of: $0, from: $1, to: $2) }, logger: logger)
        let auditor = BusAuditor(audit: env.audit, database: database, topics: topics)
        let retention = env.events.map { events in
            EventRetention(
                store: events.store, policy: .init(maxAge: EventRetention.Policy.maxAge(config: config)),
                clocks: clocks,
                kept: EventRetention.productionKept(
                    recordings: env.recordings, exports: env.exports, clocks: clocks, logger: logger),
                alarm: { try? bus.publish($0, topic: topics.errors, retain: false) }, logger: logger)
        }
        return WebService(
            environment: env, identity: identity, web: settings.web, auditor: auditor, checkpointer: checkpointer,
            retention: retention, historyMaxAge: EventRetention.Policy.maxAge(config: config), bus: presence.bus,
            logger: logger)
    }

    public func run() async throws {
        let tls = try identity.serverConfiguration()
        let router = WebRoutes.router(environment: environment)
        // READY=1 once every listener is bound (a port already taken fails the start instead).
        let listeners = web.listen.count * (web.httpRedirectPort == nil ? 1 : 2)
        let readiness = ListenerReadiness(
            expected: listeners, status: "serving the web page on port \(web.httpsPort) (\(listeners) listeners)")
        var apps: [any Service] = []
        for address in web.listen {
            apps.append(
                Application(
                    router: router,
                    server: .httpsWithWebSocket(
                        tlsConfiguration: tls, configuration: Self.channel, webSocket: Self.webSocket,
                        webSocketRouter: router, limits: ConnectionLimits()),
                    configuration: .init(address: .hostname(address, port: web.httpsPort), serverName: nil),
                    onServerRunning: { _ in readiness.bound() }, logger: logger))
        }
        if let port = web.httpRedirectPort {
            for address in web.listen {
                apps.append(
                    Application(
                        router: Self.redirectRouter(httpsPort: web.httpsPort),
                        server: .http1(configuration: .init(idleTimeout: .seconds(10))),
                        configuration: .init(address: .hostname(address, port: port), serverName: nil),
                        onServerRunning: { _ in readiness.bound() }, logger: logger))
            }
        }
        let sessions = environment.sessions
        let logger = logger
        // WatchdogSec=: pinged while the cooperative pool turns (READY=1 comes from the listeners).
        let heartbeat = Task { await ServiceNotifier.shared.heartbeat() }
        defer { heartbeat.cancel() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for app in apps { group.addTask { try await app.run() } }
            let (auditor, bus) = (auditor, bus)
            group.addTask { await auditor.run(bus: bus, logger: logger) }
            if let events = environment.events { group.addTask { await events.runBusIngest(bus: bus, logger: logger) } }
            let checkpointer = checkpointer
            group.addTask { await checkpointer.run(logger: logger) }
            if let retention { group.addTask { await retention.run() } }
            if let history = environment.history {
                let (status, clocks, maxAge) = (environment.status, environment.clocks, historyMaxAge)
                group.addTask {
                    await history.watch(
                        status: status, clocks: clocks, maxAge: maxAge, bootTime: CameraHistory.bootTime(),
                        logger: logger)
                }
            }
            group.addTask {
                // Freed heap back to the system every 10 s (glibc's `malloc_trim`): the live view's bursts — a
                // keyframe's frames in flight to a hundred browsers at once — leave the heap's arenas several
                // times larger than what is in use, and glibc keeps that for good otherwise.
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(10))
                    malloc_trim(0)
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(60))
                    if let n = try? await sessions.purgeExpired(), n > 0 {
                        logger.debug("expired sessions removed", metadata: ["count": "\(n)"])
                    }
                }
            }
            // Any server ending ends the process (systemd restarts it); a graceful shutdown ends them all.
            try await group.next()
            group.cancelAll()
        }
    }

    /// Connection limits (bounded inputs, slow clients): at most 512 connections, each with 10 s for its TLS
    /// handshake and each HTTP/1.1 request head (``ConnectionLimits``, ``ConnectionGuardHandler``); an HTTP/2
    /// connection with no open stream closes after 2 min, an HTTP/1.1 connection with no request after 30 s; a header field is at most 8 KiB, all of them
    /// 32 KiB, at most 100 fields (larger requests are refused by the decoder before any handler runs).
    static let channel = HTTP2ChannelConfiguration(
        idleTimeout: .seconds(120), gracefulCloseTimeout: .seconds(5),
        streamConfiguration: .init(
            idleTimeout: .seconds(30),
            httpDecoderConfiguration: .init(
                maxHeaderFieldSize: 8 << 10, maxHeaderListSize: 32 << 10, maxHeaderFieldCount: 100)))

    /// WebSocket limits: frames of at most 256 KiB each way (longer media messages go as continuation frames;
    /// browsers send only control frames), a ping every 20 s finds
    /// a vanished browser.
    static let webSocket = WebSocketServerConfiguration(
        maxFrameSize: 256 << 10, autoPing: .enabled(timePeriod: .seconds(20)))

    /// The plain-HTTP router: every request gets `308 Permanent Redirect` to the same path over HTTPS.
    public static func redirectRouter(httpsPort: Int) -> Router<BasicRequestContext> {
        let router = Router()
        let handler: @Sendable (Request, BasicRequestContext) -> Response = { request, _ in
            let authority = request.head.authority ?? request.headers[.hostHeader] ?? ""
            var host = String(authority.prefix(255))
            // Drop a port; keep a bracketed IPv6 literal whole.
            if let close = host.lastIndex(of: "]") {
                host = String(host[...close])
            } else if let colon = host.lastIndex(of: ":") {
                host = String(host[..<colon])
            }
            guard !host.isEmpty, host.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-[]:".contains($0)) })
            else { return Response(status: .badRequest) }
            let port = httpsPort == 443 ? "" : ":\(httpsPort)"
            let path = String(request.uri.description.prefix(2048))
            return Response(
                status: .permanentRedirect,
                headers: [.location: "https://\(host)\(port)\(path.hasPrefix("/") ? path : "/")"])
        }
        router.get("/**", use: handler)
        router.get("/", use: handler)
        router.head("/**", use: handler)
        router.head("/", use: handler)
        return router
    }
}
