// hallwatch-simcam: a simulated IP camera for tests and demos — an RTSP server that serves MP4 clips in an
// endless, timestamp-continuous loop. All logic lives in HallwatchSimCam; this file only parses arguments.
import ArgumentParser
import Foundation
import HallwatchSimCam
import Logging

struct SimCam: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallwatch-simcam",
        abstract: "Serve MP4 clips over RTSP in an endless loop, like an IP camera.",
        discussion: """
            Each --mount NAME=FILE.mp4 is served at rtsp://ADDRESS:PORT/NAME (H.264, H.265 and AAC streams, \
            no transcoding). Prints "simcam ready URL..." on stdout once listening; logs go to stderr. \
            SIGINT or SIGTERM stops it with exit code 0; bad arguments exit with 64.
            """)

    @Option(help: "Address to listen on. Keep the default unless a test network namespace needs another.")
    var address = "127.0.0.1"

    @Option(help: "RTSP TCP port; 0 picks a free one (see the ready line).")
    var port = 8554

    @Option(name: .customLong("mount"), help: ArgumentHelp("A clip to serve.", valueName: "NAME=FILE.mp4"))
    var mounts: [String] = []

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard !mounts.isEmpty else { throw ValidationError("at least one --mount NAME=FILE.mp4 is needed") }
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port) is outside 0-65535") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        var names = Set<String>()
        for raw in mounts {
            let spec: MountSpec
            do { spec = try MountSpec(parsing: raw) } catch { throw ValidationError(error.description) }
            guard names.insert(spec.name).inserted else {
                throw ValidationError("mount name \"\(spec.name)\" is used twice")
            }
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: spec.absolutePath, isDirectory: &isDir), !isDir.boolValue
            else { throw ValidationError("missing file: \(spec.file) (mount \(spec.name))") }
        }
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "hallwatch.simcam")
        signal(SIGPIPE, SIG_IGN)

        let server: SimCamServer
        do {
            let specs = try mounts.map { raw throws(SimCamError) in try MountSpec(parsing: raw) }
            server = try SimCamServer(
                configuration: SimCamConfiguration(address: address, port: port, mounts: specs), logger: logger)
            server.stopOnSignals()
            try server.start()
        } catch {
            FileHandle.standardError.write(Data("hallwatch-simcam: error: \(error.description)\n".utf8))
            throw ExitCode(error.isUsageError ? 64 : 1)
        }
        // One line, written straight to fd 1 (no stdio buffering), for the process that started us.
        FileHandle.standardOutput.write(Data("simcam ready \(server.urls.joined(separator: " "))\n".utf8))
        server.waitUntilStopped()
        logger.info("stopped")
    }
}

SimCam.main()
