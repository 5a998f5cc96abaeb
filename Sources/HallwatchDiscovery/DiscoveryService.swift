import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import HallwatchProcess
import Logging
import ServiceLifecycle

/// `hallwatch-discovery`: the ONVIF discovery agent as a service (issue 5).
///
/// 1. Resolve `discovery.interfaces` (names or addresses) to IPv4 interfaces; none resolvable is fatal
///    (exit 78: a configuration error, not worth restarting).
/// 2. Read the ONVIF password from `discovery.passwordFile` (first line). Unreadable: logged and published
///    as `discovery.credentials`; the agent carries on without credentials (devices show
///    `credentialsMissing`), never with a guess.
/// 3. Run ``DiscoveryAgent`` rounds every `discovery.period`; each changed device is published retained on
///    `…/discovered/<id>` with `adoptedAs` from the configuration file as it is now.
/// 4. With `discovery.adopt: auto`, a present device with a main stream URI that is not yet a camera is
///    adopted (``CameraAdoption``) and republished — unless the configuration is a signed release (a
///    provisioned box): then the agent writes nothing and publishes the proposed `cameras:` entry on the
///    device's message (`proposal`) for the district's next bundle.
/// 5. For each of `discovery.eventDevices`, a ``PullPointSubscriber`` — with the device's own `username` and
///    `passwordFile` where it has them (``eventCredentials(_:shared:)``), else step 2's — publishes its door, access and
///    input events (issue 16's contract documents) on `…/onvif-events/<id>` (not retained); `hallwatch-web`
///    checks and stores them as source `onvif:<id>`. The agent never writes the event store: it only speaks
///    ONVIF (HTTP out, with the credentials it already holds) and the bus.
/// 6. On graceful shutdown the rounds stop and every pull point is unsubscribed; the process state goes to
///    `stopping`.
public struct DiscoveryService: Service {
    let config: HallwatchConfig
    let configPath: String
    let presence: Presence
    let logger: Logger

    /// `configPath` is re-read for `adoptedAs` and written by automatic adoption.
    public init(config: HallwatchConfig, configPath: String, presence: Presence, logger: Logger) {
        self.config = config
        self.configPath = configPath
        self.presence = presence
        self.logger = logger
    }

    /// The error thrown when discovery is not configured or no interface resolves.
    public struct Misconfigured: Error, CustomStringConvertible { public var description: String }

    /// Resolves configured interface names or addresses (step 1).
    public static func interfaces(_ configured: [String]) -> [(configured: String, interface: IPv4Interfaces.Interface)]
    {
        configured.compactMap { c in IPv4Interfaces.resolve(c).map { (c, $0) } }
    }

    /// Reads the first line of a password file; `nil` when unreadable or empty.
    public static func readPassword(_ path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let line = text.split(separator: "\n", omittingEmptySubsequences: false).first, !line.isEmpty
        else { return nil }
        return String(line)
    }

    /// The credentials of event device `device`: its own `username` and `passwordFile` when it names them, else
    /// `shared` (the discovery-wide ones). `error` is set, and the credentials `nil`, when its own password file
    /// cannot be read: the subscriber then runs without credentials (the device refuses, the gap shows) rather
    /// than with the cameras' account.
    public static func eventCredentials(_ device: DiscoveryConfig.EventDevice, shared: ONVIFCredentials?) -> (
        credentials: ONVIFCredentials?, error: ErrorEvent?
    ) {
        guard let user = device.username, let file = device.passwordFile else { return (shared, nil) }
        guard let password = readPassword(file) else {
            return (
                nil,
                ErrorEvent(
                    code: "discovery.credentials",
                    message: "cannot read the ONVIF password file \(file) of event device \(device.id)")
            )
        }
        return (ONVIFCredentials(username: user, password: password), nil)
    }

    /// Steps 1–6 above. Throws ``Misconfigured`` (the executable exits 78).
    public func run() async throws {
        guard let d = config.discovery else {
            throw Misconfigured(description: "no discovery: section in \(configPath)")
        }
        let resolved = Self.interfaces(d.interfaces)
        for c in d.interfaces where !resolved.contains(where: { $0.configured == c }) {
            logger.error("interface not found or without IPv4", metadata: ["interface": "\(c)"])
            presence.publishError(
                ErrorEvent(code: "discovery.interface", message: "interface \(c) not found or without an IPv4 address"))
        }
        guard !resolved.isEmpty else {
            throw Misconfigured(description: "none of discovery.interfaces \(d.interfaces) exists")
        }
        var credentials: ONVIFCredentials?
        if let user = d.username, let file = d.passwordFile {
            if let pw = Self.readPassword(file) {
                credentials = ONVIFCredentials(username: user, password: pw)
            } else {
                logger.error("cannot read the ONVIF password file", metadata: ["file": "\(file)"])
                presence.publishError(
                    ErrorEvent(code: "discovery.credentials", message: "cannot read the ONVIF password file \(file)"))
            }
        }
        let settings = DiscoveryAgentSettings(
            interfaces: resolved, period: d.period, listen: d.listen, missedProbes: d.missedProbes,
            maxDevices: d.maxDevices, requestTimeout: d.requestTimeout, credentials: credentials)
        let http = BoundedHTTPClient()
        defer { http.shutdown() }
        let (bus, topics, presence, configPath, logger, auto) = (
            presence.bus, presence.topics, self.presence, configPath, logger, d.adopt == .auto
        )
        let agent = DiscoveryAgent(
            settings: settings, http: http, logger: logger,
            publish: { device in
                var device = device
                let cameras = (try? ConfigLoader.load(path: configPath))?.cameras ?? []
                device.adoptedAs = cameras.first { $0.onvifEndpoint == device.endpoint }?.id
                if auto, device.adoptedAs == nil, device.presence == .present, device.mainStream != nil,
                    let release = ConfigVersion.of(path: configPath)
                {
                    device.proposal = try? CameraAdoption.propose(device, configPath: configPath).yaml
                    logger.notice(
                        "camera proposed for the next bundle (this box runs a signed release; nothing written)",
                        metadata: ["device": "\(device.id)", "release": "\(release)"])
                } else if auto, device.adoptedAs == nil, device.presence == .present, device.mainStream != nil {
                    do {
                        let cam = try CameraAdoption.adopt(device, configPath: configPath)
                        device.adoptedAs = cam.id
                        logger.info("camera adopted", metadata: ["camera.id": "\(cam.id)", "device": "\(device.id)"])
                    } catch {
                        logger.error(
                            "automatic adoption failed", metadata: ["device": "\(device.id)", "error": "\(error)"])
                        presence.publishError(
                            ErrorEvent(
                                code: (error as? CameraAdoption.Failure)?.code ?? "adopt.config", message: "\(error)"))
                    }
                }
                logger.info(
                    "device",
                    metadata: [
                        "device": "\(device.id)", "presence": "\(device.presence.rawValue)", "auth": "\(device.auth)",
                        "model": "\(device.model ?? "?")", "streams": "\(device.streams.count)",
                    ])
                try? bus.publish(device, topic: topics.discovered(device.id), retain: true)
            }, reportError: { presence.publishError($0) })
        logger.info(
            "discovery started",
            metadata: ["interfaces": "\(resolved.map { "\($0.configured)=\($0.interface.address)" })"])
        let subscribers = d.eventDevices.compactMap { e -> PullPointSubscriber? in
            guard let url = URL(string: e.xaddr) else { return nil }
            let topic = topics.onvifEvents(e.id)
            let (own, error) = Self.eventCredentials(e, shared: credentials)
            if let error {
                logger.error("cannot read an event device's ONVIF password file", metadata: ["device": "\(e.id)"])
                presence.publishError(error)
            }
            return PullPointSubscriber(
                device: e.id, deviceXAddr: url, http: http, credentials: own, timeout: d.requestTimeout,
                logger: logger
            ) { event in
                logger.info(
                    "ONVIF event", metadata: ["device": "\(e.id)", "type": "\(event.type)", "id": "\(event.id)"])
                do { try bus.publish(topic: topic, payload: Array(event.json()), retain: false) } catch {
                    logger.error("cannot publish an ONVIF event", metadata: ["error": "\(error)"])
                }
            }
        }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await agent.run() }
                for s in subscribers { group.addTask { await s.run() } }
            }
        }
    }
}
