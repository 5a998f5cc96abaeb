// hallwatch-pruner: the retention pruner (see PrunerService and Pruner in the libraries).
import ArgumentParser
import Foundation
import HallwatchCore
import HallwatchProcess
import HallwatchPruner
import HallwatchStorage
import Logging
import ServiceLifecycle

@main
struct PrunerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallwatch-pruner",
        abstract:
            "Delete recorded video by the retention policy (maxAge, maxBytes, free-slot reserve); never held or open slots.",
        discussion: """
            Runs a pass at start, then every retention.period and whenever the recorder reports few free slots.
            --dry-run prints what a pass would delete now and why, and exits without changing anything.
            Test hook: HALLWATCH_PRUNER_STOP_AFTER=D1|D2|D3|D4 stops the process (it waits to be killed) after
            that step of the first deletion (WriteProtocol § Delete).
            """)

    @Option(help: "Configuration file.") var config = "/etc/hallwatch/hallwatch.yaml"
    @Flag(help: "Print what a pass would delete and why; delete nothing; exit.") var dryRun = false
    @Flag(help: "Run one pass, print what was deleted, exit.") var once = false

    func run() async throws {
        ProcessSetup.bootstrapLogging()
        let logger = Logger(label: "hallwatch.pruner")
        let (cfg, configVersion) = ProcessSetup.loadVersionedConfig(config, logger: logger)
        let stopAfter = ProcessInfo.processInfo.environment["HALLWATCH_PRUNER_STOP_AFTER"].flatMap(
            DeleteStep.init(rawValue:))
        var hook: DeleteStepHook?
        if let stop = stopAfter {
            hook = { @Sendable (step: DeleteStep, slot: Int) -> Void in
                guard step == stop else { return }
                FileHandle.standardOutput.write(Data("stopped after \(step.rawValue) (slot \(slot))\n".utf8))
                while true { pause() }  // until SIGKILL
            }
        }
        if dryRun || once {
            let service = PrunerService(
                config: cfg, source: .file(config), presence: nil, logger: logger, afterStep: hook)
            let report = service.runPass(dryRun: dryRun)
            let verb = dryRun ? "would delete" : "deleted"
            for p in (dryRun ? report.plan.deletions : []) { print("\(verb): \(p.summary)") }
            for d in report.deleted {
                print(
                    "\(verb): \(d.disk) slot \(d.slot) \(d.camera) \(d.from.iso8601) – \(d.to.iso8601) \(d.bytes) bytes: \(d.rule) (\(d.detail))"
                )
            }
            for s in report.skipped { print("skipped: \(s)") }
            for a in report.alarms { print("alarm: [\(a.code)] \(a.message)") }
            let count = dryRun ? report.plan.deletions.count : report.deleted.count
            let bytes = dryRun ? report.plan.deletions.reduce(0) { $0 + $1.bytes } : report.bytesFreed
            print(
                "\(count) slots, \(bytes) bytes \(verb) in \(String(format: "%.1f", Double(report.elapsedNanos) / 1e6)) ms"
            )
            return
        }
        let presence = Presence(name: "pruner", config: cfg, configVersion: configVersion, logger: logger)
        presence.announce()
        presence.followConfig(path: config, loaded: cfg, policy: .anyChange, logger: logger)
        let pruner = PrunerService(
            config: cfg, source: .file(config), presence: presence, logger: logger, afterStep: hook)
        do {
            try await ProcessSetup.runUntilSignalled(
                pruner, presence: presence, logger: logger, ready: "pruning every \(cfg.retention.period)")
        } catch {
            throw ExitCode(ExitStatus.software)
        }
    }
}
