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
        let (cfg, configVersion) = ProcessSetup.loadVersionedConfig(config, logger: logger)
        let presence = Presence(name: "recorder", config: cfg, configVersion: configVersion, logger: logger)
        presence.announce()
        presence.followConfig(path: config, loaded: cfg, policy: .recorder, logger: logger)
        // Tests and benchmarks shrink the live subscribers' queue bound to make a slow one drop quickly.
        let liveQueueBytes =
            ProcessInfo.processInfo.environment["HALLWATCH_LIVE_QUEUE_BYTES"].flatMap(Int.init) ?? 8 << 20
        let recorder = RecorderService(
            config: cfg, configPath: config, presence: presence, liveQueueBytes: liveQueueBytes, logger: logger)
        do { try await ProcessSetup.runUntilSignalled(recorder, presence: presence, logger: logger) } catch {
            throw ExitCode(ExitStatus.software)
        }
    }
}
