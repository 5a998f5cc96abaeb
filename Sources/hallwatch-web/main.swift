// hallwatch-web: the box's own web page (see HallwatchWeb's DocC).
import ArgumentParser
import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchProcess
import HallwatchWeb
import Logging

@main
struct WebCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallwatch-web",
        abstract: "Serve the box's web page over HTTPS: status, accounts, audit log.")

    @Option(help: "Configuration file.") var config = "/etc/hallwatch/hallwatch.yaml"
    @Option(help: "Web file: web, users, cameraGroups (missing: no users).") var webConfig = "/etc/hallwatch/web.yaml"

    func run() async throws {
        ProcessSetup.bootstrapLogging()
        signal(SIGPIPE, SIG_IGN)
        let logger = Logger(label: "hallwatch.web")
        let (cfg, configVersion) = ProcessSetup.loadVersionedConfig(config, logger: logger)
        let settings: WebSettings
        do { settings = try WebConfigLoader.load(path: webConfig) } catch let e as WebConfigError {
            FileHandle.standardError.write(
                Data(("\(e.code): the web file was refused\n" + e.diagnostics.map { "\($0)\n" }.joined()).utf8))
            throw ExitCode(ExitStatus.config)
        }
        let presence = Presence(name: "web", config: cfg, configVersion: configVersion, logger: logger)
        presence.announce()
        presence.followConfig(path: config, loaded: cfg, policy: .anyChange, logger: logger)
        do {
            let service = try WebService.prepare(
                config: cfg, settings: settings, presence: presence, configPath: config, logger: logger)
            // No `ready:` here: WebService sends READY=1 once its listeners are bound.
            try await ProcessSetup.runUntilSignalled(service, presence: presence, logger: logger)
        } catch {
            logger.critical("hallwatch-web stopped: \(error)")
            throw ExitCode(ExitStatus.software)
        }
    }
}
