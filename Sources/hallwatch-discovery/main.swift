// hallwatch-discovery: finds ONVIF cameras on the configured interfaces and publishes them on the bus, and
// subscribes to the events of discovery.eventDevices (door controllers, cameras with inputs) and publishes those
// for the web to store (see DiscoveryService). Needs UDP 3702 and HTTP out only.
import ArgumentParser
import Foundation
import HallwatchCore
import HallwatchDiscovery
import HallwatchProcess
import Logging
import ServiceLifecycle

@main
struct DiscoveryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallwatch-discovery",
        abstract: "Find ONVIF cameras (WS-Discovery), describe them over HTTP and publish them on the bus.",
        discussion: """
            With --once it runs a single probe round on --interface without a configuration or bus and prints \
            the devices as JSON on stdout (for installers and the benchmark): {"seconds":…,"devices":[…]}.
            Exit codes: 0 stopped by SIGTERM/SIGINT (or --once done); 78 configuration refused or no \
            discovery interface; 64 bad arguments.
            """)

    @Option(help: "Configuration file.") var config = "/etc/hallwatch/hallwatch.yaml"
    @Flag(help: "One round on --interface, print JSON, exit (no configuration, no bus).") var once = false
    @Option(name: .customLong("interface"), help: "With --once: interface name or IPv4 address (repeatable).")
    var interfaces: [String] = []
    @Option(help: "With --once: ONVIF user name.") var username: String?
    @Option(help: "With --once: file whose first line is the ONVIF password.") var passwordFile: String?
    @Option(help: "With --once: how long to wait for ProbeMatches (e.g. 1s).") var listen = "2s"

    func validate() throws {
        if once {
            guard !interfaces.isEmpty else { throw ValidationError("--once needs --interface") }
            guard DurationText.parse(listen) != nil else {
                throw ValidationError("--listen: expected a duration such as 1s")
            }
            guard (username == nil) == (passwordFile == nil) else {
                throw ValidationError("--username and --password-file go together")
            }
        }
    }

    func run() async throws {
        if once { return try await runOnce() }
        ProcessSetup.bootstrapLogging()
        let logger = Logger(label: "hallwatch.discovery")
        let (cfg, configVersion) = ProcessSetup.loadVersionedConfig(config, logger: logger)
        let presence = Presence(name: "discovery", config: cfg, configVersion: configVersion, logger: logger)
        presence.announce()
        presence.followConfig(path: config, loaded: cfg, policy: .discovery, logger: logger)
        let service = DiscoveryService(config: cfg, configPath: config, presence: presence, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        // sd_notify(3): ready as the agent starts probing; its watchdog fed while the process runs.
        let notifier = ServiceNotifier.shared
        notifier.ready(status: "discovering ONVIF cameras")
        let heartbeat = Task { await notifier.heartbeat() }
        defer {
            heartbeat.cancel()
            notifier.stopping()
        }
        do { try await group.run() } catch let e as DiscoveryService.Misconfigured {
            logger.critical("\(e)")
            await presence.leave()
            throw ExitCode(ExitStatus.config)
        }
        await presence.leave()
    }

    func runOnce() async throws {
        ProcessSetup.bootstrapLogging(default: .warning)
        let logger = Logger(label: "hallwatch.discovery")
        let resolved = DiscoveryService.interfaces(interfaces)
        guard resolved.count == interfaces.count else {
            FileHandle.standardError.write(Data("no such interface among \(interfaces)\n".utf8))
            throw ExitCode(ExitStatus.config)
        }
        var credentials: ONVIFCredentials?
        if let u = username, let f = passwordFile {
            guard let pw = DiscoveryService.readPassword(f) else {
                throw ValidationError("cannot read a password from \(f)")
            }
            credentials = ONVIFCredentials(username: u, password: pw)
        }
        let http = BoundedHTTPClient()
        defer { http.shutdown() }
        let agent = DiscoveryAgent(
            settings: DiscoveryAgentSettings(
                interfaces: resolved, listen: DurationText.parse(listen) ?? .seconds(2),
                credentials: credentials, listenForAnnouncements: false),
            http: http, logger: logger, publish: { _ in }, reportError: { _ in })
        let clocks = SystemClocks()
        let t0 = clocks.monotonicNanos()
        let devices = await agent.runRound()
        let seconds = Double(clocks.monotonicNanos() - t0) / 1e9
        struct Out: Encodable {
            var seconds: Double
            var devices: [DiscoveredDevice]
        }
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        FileHandle.standardOutput.write(try e.encode(Out(seconds: seconds, devices: devices)) + Data("\n".utf8))
    }
}
