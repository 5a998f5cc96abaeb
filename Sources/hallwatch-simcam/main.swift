// hallwatch-simcam: a simulated IP camera for tests and demos — an RTSP server that serves MP4 clips in an
// endless, timestamp-continuous loop. All logic lives in HallwatchSimCam; this file only parses arguments.
import ArgumentParser
import Foundation
import HallwatchCore
import HallwatchDiscovery
import HallwatchSimCam
import HallwatchSimONVIF
import Logging

struct SimCam: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallwatch-simcam",
        abstract: "Serve MP4 clips over RTSP in an endless loop, like an IP camera.",
        discussion: """
            Each --mount NAME=FILE.mp4 is served at rtsp://ADDRESS:PORT/NAME (H.264, H.265 and AAC streams, \
            no transcoding). Prints "simcam ready URL..." on stdout once listening; logs go to stderr. \
            SIGINT or SIGTERM stops it with exit code 0; bad arguments exit with 64.

            With --onvif it is also an ONVIF camera: one device per mount (or --onvif-devices N, cycling \
            through the mounts; a mount NAME-sub beside NAME is NAME's sub-stream profile, not a device), WS-Discovery on ADDRESS's interface (Hello, Bye, ProbeMatches) and the device \
            and media services over HTTP; a second line "simcam onvif http://ADDRESS:PORT N" follows the ready \
            line. Credentials: --onvif-user and --onvif-password-file (never a password on the command line).
            """)

    @Option(help: "Address to listen on. Keep the default unless a test network namespace needs another.")
    var address = "127.0.0.1"

    @Option(help: "RTSP TCP port; 0 picks a free one (see the ready line).")
    var port = 8554

    @Option(name: .customLong("mount"), help: ArgumentHelp("A clip to serve.", valueName: "NAME=FILE.mp4"))
    var mounts: [String] = []

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Flag(help: "Also act as ONVIF devices (WS-Discovery + device/media services).")
    var onvif = false

    @Option(help: "Number of ONVIF devices (default: one per mount; mounts are reused in turn).")
    var onvifDevices: Int?

    @Option(help: "HTTP port of the ONVIF services; 0 picks a free one.")
    var onvifPort = 0

    @Option(help: "ONVIF user name (requires --onvif-password-file; without both, no authentication).")
    var onvifUser: String?

    @Option(help: "File whose first line is the ONVIF password.")
    var onvifPasswordFile: String?

    @Option(help: "Accepted authentication: usernametoken, digest or both.")
    var onvifAuth = "both"

    @Option(help: "The simulated camera clock minus the real one, in seconds (e.g. 3600).")
    var clockOffset: Int64 = 0

    @Option(
        name: .customLong("quirk"),
        help:
            "Misbehave like a real camera: no-scopes, link-local-xaddr-first, bad-relates-to, strict-auth, invalid-after-connect."
    )
    var quirks: [String] = []

    @Flag(help: "Offer RTP over UDP only: a SETUP for TCP gets 461 Unsupported Transport (like VLC's RTSP output).")
    var udpOnly = false

    @Flag(help: "Do not answer WS-Discovery (HTTP services only).")
    var noDiscovery = false

    @Option(
        help: ArgumentHelp(
            "With --onvif: every device's door cycles through an event this often (opened, closed, access granted, forced, closed), sent on its ONVIF event service's pull points.",
            valueName: "DURATION"))
    var onvifEventsEvery: String?

    func validate() throws {
        guard !mounts.isEmpty else { throw ValidationError("at least one --mount NAME=FILE.mp4 is needed") }
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port) is outside 0-65535") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard SimAuthMode(rawValue: onvifAuth) != nil else {
            throw ValidationError("--onvif-auth: expected usernametoken, digest or both")
        }
        for q in quirks where SimQuirk(rawValue: q) == nil {
            throw ValidationError(
                "unknown --quirk \(q); expected one of \(SimQuirk.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard (onvifUser == nil) == (onvifPasswordFile == nil) else {
            throw ValidationError("--onvif-user and --onvif-password-file go together")
        }
        if let e = onvifEventsEvery {
            guard let d = DurationText.parse(e), d >= .milliseconds(100) else {
                throw ValidationError("--onvif-events-every: expected a duration of at least 100ms, such as 2m")
            }
        }
        if let n = onvifDevices {
            guard (1...1000).contains(n) else { throw ValidationError("--onvif-devices: 1-1000") }
        }
        guard (0...65535).contains(onvifPort) else {
            throw ValidationError("--onvif-port \(onvifPort) is outside 0-65535")
        }
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
                configuration: SimCamConfiguration(address: address, port: port, mounts: specs, udpOnly: udpOnly),
                logger: logger)
            server.stopOnSignals()
            try server.start()
        } catch {
            FileHandle.standardError.write(Data("hallwatch-simcam: error: \(error.description)\n".utf8))
            throw ExitCode(error.isUsageError ? 64 : 1)
        }
        var onvifLine: String?
        var simulator: ONVIFSimulator?
        if onvif {
            do {
                let sim = try makeSimulator(server: server, logger: logger)
                let started = DispatchSemaphore(value: 0)
                let failure = FailureBox()
                Task {
                    do { try await sim.start() } catch { failure.set("\(error)") }
                    started.signal()
                }
                started.wait()
                if let why = failure.get() { throw ValidationError(why) }
                simulator = sim
                onvifLine = "simcam onvif http://\(address):\(sim.httpPort) \(sim.configuration.devices.count)\n"
            } catch {
                FileHandle.standardError.write(Data("hallwatch-simcam: error: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }
        // One line, written straight to fd 1 (no stdio buffering), for the process that started us.
        FileHandle.standardOutput.write(Data("simcam ready \(server.urls.joined(separator: " "))\n".utf8))
        if let onvifLine { FileHandle.standardOutput.write(Data(onvifLine.utf8)) }
        server.waitUntilStopped()
        if let simulator {
            // Bye for every device before exiting (WS-Discovery §4.2).
            let done = DispatchSemaphore(value: 0)
            Task {
                await simulator.stop()
                done.signal()
            }
            done.wait()
        }
        logger.info("stopped")
    }
}

extension SimCam {
    /// The ONVIF devices for the running RTSP server: one per mount, or `--onvif-devices` cycling through them.
    /// A mount named `<name>-sub` beside a mount `<name>` is no device of its own: it is `<name>`'s sub-stream
    /// profile (token `sub`).
    func makeSimulator(server: SimCamServer, logger: Logger) throws -> ONVIFSimulator {
        var credentials: ONVIFCredentials?
        if let user = onvifUser, let file = onvifPasswordFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8),
                let password = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init),
                !password.isEmpty
            else { throw ValidationError("cannot read a password from \(file)") }
            credentials = ONVIFCredentials(username: user, password: password)
        }
        let names = server.configuration.mounts.map(\.name)
        let primaries = names.indices.filter { k in
            !(names[k].hasSuffix("-sub") && names.contains(String(names[k].dropLast("-sub".count))))
        }
        let count = onvifDevices ?? primaries.count
        let devices = (0..<count).map { i -> SimulatedDevice in
            let k = primaries[i % primaries.count]
            let video = server.media[k].primary
            var device = SimulatedDevice(
                index: i, seed: "\(address):\(server.port)", mount: names[k],
                encoding: video.codec == .h265 ? "H265" : "H264",
                width: video.width ?? 0, height: video.height ?? 0, fps: 25)
            if let s = names.firstIndex(of: names[k] + "-sub") {
                let sub = server.media[s].primary
                device.sub = .init(
                    mount: names[s], encoding: sub.codec == .h265 ? "H265" : "H264", width: sub.width ?? 0,
                    height: sub.height ?? 0)
            }
            return device
        }
        var configuration = ONVIFSimConfiguration(
            address: address, httpPort: onvifPort, rtspPort: server.port, devices: devices,
            credentials: credentials,
            authMode: SimAuthMode(rawValue: onvifAuth) ?? .both, clockOffsetSeconds: clockOffset,
            quirks: Set(quirks.compactMap(SimQuirk.init(rawValue:))), discovery: !noDiscovery)
        configuration.eventEvery = onvifEventsEvery.flatMap(DurationText.parse)
        return ONVIFSimulator(configuration: configuration, logger: logger)
    }
}

/// A message handed from the start task to the main thread.
final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var message: String?
    func set(_ m: String) {
        lock.lock()
        message = m
        lock.unlock()
    }
    func get() -> String? {
        lock.lock()
        defer { lock.unlock() }
        return message
    }
}

SimCam.main()
