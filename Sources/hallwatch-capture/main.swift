// hallwatch-capture --camera ID: records one camera (see CaptureWorker).
import ArgumentParser
import Foundation
import HallwatchCapture
import HallwatchCore
import HallwatchProcess
import Logging
import ServiceLifecycle

@main
struct CaptureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallwatch-capture",
        abstract: "Pull one camera's RTSP stream, remux it to fMP4 fragments and send them to the recorder.")

    @Option(help: "Camera id from the configuration, or its sub stream (`lobby/sub`).") var camera: String
    @Option(help: "Configuration file.") var config = "/etc/hallwatch/hallwatch.yaml"

    func run() async throws {
        ProcessSetup.bootstrapLogging()
        let logger = Logger(label: "hallwatch.capture")
        guard let id = CameraID(camera) else {
            logger.critical("'\(camera)' is not a camera id")
            throw ExitCode(ExitStatus.usage)
        }
        // A refused file starts the worker on its last good configuration, raising `config.invalid`.
        let (cfg, configVersion, fallback) = ProcessSetup.loadConfigKeepingLastGood(
            config, process: id.captureProcessName, logger: logger)
        guard let cam = cfg.camera(id) else {
            // A removed camera's instance restarts once into this and must end stopped, not failed: its unit
            // counts exit 3 as success, and READY=1 first, as a Type=notify service that exits before it is
            // a protocol failure to systemd.
            logger.notice("no camera stream '\(camera)' in \(config): nothing to record")
            ServiceNotifier.shared.ready(status: "camera stream \(camera) is not configured: nothing to record")
            throw ExitCode(ExitStatus.notConfigured)
        }
        let presence = Presence(name: id.captureProcessName, config: cfg, configVersion: configVersion, logger: logger)
        presence.announce()
        presence.followConfig(path: config, loaded: cfg, policy: .capture(id), logger: logger)
        let alarm = fallback?.alarm(camera: id)
        if let alarm { presence.raiseWhileRefused(alarm, path: config, logger: logger) }
        let worker = CaptureWorker(camera: cam, config: cfg, presence: presence, standingAlarm: alarm, logger: logger)
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await presence.leave()
    }
}
