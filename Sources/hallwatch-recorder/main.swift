// hallwatch-recorder: the ring-buffer writer (see RecorderService).
import ArgumentParser
import Foundation
import HallwatchProcess
import HallwatchRecorder
import Logging
import ServiceLifecycle

@main
struct RecorderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallwatch-recorder",
        abstract: "Write capture workers' fragments to the recording disk, fsync on a cadence, index them.")

    @Option(help: "Configuration file.") var config = "/etc/hallwatch/hallwatch.yaml"

    func run() async throws {
        ProcessSetup.bootstrapLogging()
        signal(SIGPIPE, SIG_IGN)
        let logger = Logger(label: "hallwatch.recorder")
        let cfg = ProcessSetup.loadConfig(config, logger: logger)
        let presence = Presence(name: "recorder", config: cfg, logger: logger)
        presence.announce()
        let recorder = RecorderService(config: cfg, configPath: config, presence: presence, logger: logger)
        do { try await ProcessSetup.runUntilSignalled(recorder, presence: presence, logger: logger) } catch {
            throw ExitCode(ExitStatus.software)
        }
    }
}
