// hallwatchctl: inspect and operate a Hallwatch box. Logic lives in HallwatchServices; this file parses
// arguments and prints.
import ArgumentParser
import Foundation
import HallwatchBus
import HallwatchCore
import HallwatchServices
import Logging

@main
struct HallwatchCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallwatchctl",
        abstract: "Inspect and operate a Hallwatch box.",
        subcommands: [Status.self, Recordings.self, Export.self, Check.self, Probe.self, Supervise.self, Demo.self])
}

struct ConfigOption: ParsableArguments {
    @Option(help: "Configuration file.") var config = "/etc/hallwatch/hallwatch.yaml"
}

/// The directory of this executable, where its sibling executables live.
func binDirectory() -> String {
    URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Each camera's state, bitrate and recorded seconds, from the bus.")
    @OptionGroup var options: ConfigOption
    @Flag(help: "Print JSON for scripts.") var json = false
    @Option(help: "Print again every N seconds until interrupted.") var watch: Double?

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .error)
        let logger = Logger(label: "hallwatchctl")
        let cfg = ProcessSetup.loadConfig(options.config, logger: logger)
        let bus = BusClient(clientID: "hallwatchctl-\(getpid())", socketPath: cfg.bus.socket, will: nil, logger: logger)
        do { try await bus.connect(timeout: .seconds(3)) } catch {
            FileHandle.standardError.write(Data("cannot reach the bus at \(cfg.bus.socket): \(error)\n".utf8))
            throw ExitCode(69)
        }
        let collector = StatusCollector(bus: bus, topics: BusTopics(box: cfg.box))
        try await Task.sleep(for: .milliseconds(400))   // retained messages arrive at once
        repeat {
            let snap = collector.snapshot(configured: cfg.cameras.map(\.id), now: SystemClocks().utcNow())
            if json {
                let e = JSONEncoder(); e.outputFormatting = [.sortedKeys, .prettyPrinted]
                print(String(decoding: try e.encode(snap), as: UTF8.self))
            } else {
                print(snap.render() + "\n")
            }
            if let w = watch { try await Task.sleep(for: .seconds(w)) }
        } while watch != nil
        await bus.close()
    }
}

struct Probe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record a camera for a few seconds without a recorder and report what it sends (for installers).")
    @Argument(help: "rtsp://host[:port]/path (no credentials; see --username).") var url: String
    @Option(help: "How long to record, seconds.") var seconds: Double = 10
    @Option(help: "RTSP user name.") var username: String?
    @Option(help: "File holding the RTSP password.") var passwordFile: String?
    @Option(help: "tcp or udp.") var transport: CameraConfig.Transport = .tcp
    @Flag(help: "Include audio.") var audio = false
    @Option(help: "Also write what was recorded to this MP4.") var out: String?

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .warning)
        let password = try passwordFile.map { try String(contentsOfFile: $0, encoding: .utf8).split(separator: "\n").first.map(String.init) ?? "" }
        let report = try await CameraProbe.run(url: url, username: username, password: password, transport: transport,
                                               audio: audio, seconds: seconds, exportTo: out, logger: Logger(label: "hallwatchctl"))
        print(report)
    }
}

extension CameraConfig.Transport: ExpressibleByArgument {}

struct Supervise: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Development supervisor: run mosquitto, the recorder and a capture worker per camera; restart what dies.",
        discussion: "Production uses the systemd units in Systemd/. Ctrl-C stops everything cleanly.")
    @OptionGroup var options: ConfigOption
    @Option(help: "Directory for pid files, logs and the broker config.") var runDirectory = ".run"
    @Option(help: "Print the status table every N seconds (0: never).") var statusEvery: Double = 5

    func run() async throws {
        ProcessSetup.bootstrapLogging()
        let logger = Logger(label: "hallwatchctl.supervise")
        let cfg = ProcessSetup.loadConfig(options.config, logger: logger)
        let plan = BoxPlan(config: cfg, configPath: options.config, runDirectory: runDirectory, binDirectory: binDirectory())
        try await superviseUntilInterrupted(plan: plan, statusEvery: statusEvery, logger: logger)
    }
}

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the box on four simulated cameras serving real clips (see `make demo`).")
    @Option(help: "Directory with the clips from Image/fetch-clips.sh.") var media = ".media"
    @Option(help: "Directory for the demo's config, recordings, logs and sockets.") var runDirectory = ".run/demo"
    @Option(help: "RTSP port of the simulated cameras (0: pick a free one).") var port = 0
    @Option(help: "Print the status table every N seconds.") var statusEvery: Double = 5

    func run() async throws {
        ProcessSetup.bootstrapLogging()
        let logger = Logger(label: "hallwatchctl.demo")
        let run = URL(fileURLWithPath: runDirectory).standardizedFileURL.path
        let mediaDir = URL(fileURLWithPath: media).standardizedFileURL.path
        for m in BoxPlan.demoMounts(mediaDirectory: mediaDir) {
            let file = String(m.split(separator: "=", maxSplits: 1)[1])
            guard FileManager.default.fileExists(atPath: file) else {
                logger.critical("missing clip \(file): run `make clips` first")
                throw ExitCode(66)
            }
        }
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        let simPort = port == 0 ? BoxPlan.freePort() : port
        let configPath = run + "/hallwatch.yaml"
        try BoxPlan.demoConfig(runDirectory: run, simcamPort: simPort).write(toFile: configPath, atomically: true, encoding: .utf8)
        let cfg = ProcessSetup.loadConfig(configPath, logger: logger)
        let plan = BoxPlan(config: cfg, configPath: configPath, runDirectory: run, binDirectory: binDirectory(),
                           simcam: (simPort, BoxPlan.demoMounts(mediaDirectory: mediaDir)))
        say("Hallwatch demo: 4 simulated cameras on rtsp://127.0.0.1:\(simPort)/{lobby,gym,hallway,entrance}")
        say("config \(configPath), recordings \(run)/disk0, logs \(run)/logs — Ctrl-C stops everything.")
        say("try: hallwatchctl export --config \(configPath) --camera lobby --from -30s --to now --out clip.mp4\n")
        try await superviseUntilInterrupted(plan: plan, statusEvery: statusEvery, logger: logger)
    }
}

/// Runs the plan's processes until SIGINT/SIGTERM, printing the status table every `statusEvery` seconds.
func superviseUntilInterrupted(plan: BoxPlan, statusEvery: Double, logger: Logger) async throws {
    let supervisor = Supervisor(processes: try plan.processes(), runDirectory: plan.runDirectory, logger: logger)
    try supervisor.start()
    let signals = SignalWaiter([SIGINT, SIGTERM])
    let bus = BusClient(clientID: "hallwatchctl-supervise-\(getpid())", socketPath: plan.config.bus.socket, will: nil, logger: logger)
    try? bus.start()
    let collector = StatusCollector(bus: bus, topics: BusTopics(box: plan.config.box))
    let printer = Task {
        guard statusEvery > 0 else { return }
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(statusEvery))
            if Task.isCancelled { break }
            say(collector.snapshot(configured: plan.config.cameras.map(\.id), now: SystemClocks().utcNow()).render() + "\n")
        }
    }
    await signals.wait()
    printer.cancel()
    say("stopping…")
    await bus.close()
    supervisor.stop()
    say("stopped.")
}

/// Writes a line to stdout at once (print is block-buffered when stdout is a file or pipe).
func say(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }

/// Waits for one of the given signals (delivered through a DispatchSource, not a C handler).
final class SignalWaiter: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let stream: AsyncStream<Int32>
    private let continuation: AsyncStream<Int32>.Continuation
    init(_ signals: [Int32]) {
        (stream, continuation) = AsyncStream<Int32>.makeStream()
        for s in signals {
            signal(s, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: s, queue: .global())
            let c = continuation
            src.setEventHandler { c.yield(s) }
            src.resume()
            sources.append(src)
        }
    }
    func wait() async { for await _ in stream { return } }
}

struct Recordings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List a camera's recorded runs and the gaps between them.")
    @OptionGroup var options: ConfigOption
    @Option(help: "Camera id.") var camera: String
    @Flag(help: "Print JSON for scripts.") var json = false
    @Flag(help: "Also measure the largest hole between fragments inside each run (reads the recording).") var fragmentGaps = false

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .error)
        let cfg = ProcessSetup.loadConfig(options.config, logger: Logger(label: "hallwatchctl"))
        guard let id = CameraID(camera) else { throw ValidationError("'\(camera)' is not a camera id") }
        let report = try RecordingQueries.recordings(config: cfg, camera: id, fragmentGaps: fragmentGaps || json)
        if json {
            let e = JSONEncoder(); e.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try e.encode(report), as: UTF8.self))
        } else {
            print(report.render())
        }
    }
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a camera's recording between two times as a playable MP4.",
        discussion: "TIME is ISO 8601 UTC (2026-11-29T20:52:00Z), `now`, or relative to now (-30s, -5m, -2h).")
    @OptionGroup var options: ConfigOption
    @Option(help: "Camera id.") var camera: String
    @Option(parsing: .unconditional, help: "Start (TIME).") var from: String
    @Option(parsing: .unconditional, help: "End (TIME).") var to: String = "now"
    @Option(help: "Output file (.mp4).") var out: String

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .error)
        let cfg = ProcessSetup.loadConfig(options.config, logger: Logger(label: "hallwatchctl"))
        guard let id = CameraID(camera) else { throw ValidationError("'\(camera)' is not a camera id") }
        let now = SystemClocks().utcNow()
        guard let start = TimeExpression.parse(from, now: now) else { throw ValidationError("--from \(from): expected ISO 8601 UTC, now, or -30s/-5m/-2h") }
        guard let end = TimeExpression.parse(to, now: now) else { throw ValidationError("--to \(to): expected ISO 8601 UTC, now, or -30s/-5m/-2h") }
        guard start < end else { throw ValidationError("--from must be before --to") }
        do {
            let s = try RecordingQueries.export(config: cfg, camera: id, from: start, to: end, out: out)
            print("wrote \(s.files.joined(separator: ", ")): \(String(format: "%.1f", s.mediaSeconds)) s, \(s.videoFrames) frames, \(s.bytes) bytes")
        } catch {
            FileHandle.standardError.write(Data("export failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that every index row points at whole records whose CRC-32C matches; exit 1 on any inconsistency.")
    @OptionGroup var options: ConfigOption
    @Option(help: "How deep to check; `crc` reads every indexed byte (the only level so far).") var level = "crc"

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .error)
        guard level == "crc" else { throw ValidationError("--level \(level): only `crc` is implemented") }
        let cfg = ProcessSetup.loadConfig(options.config, logger: Logger(label: "hallwatchctl"))
        let problems = try RecordingQueries.check(config: cfg)
        for p in problems { print(p) }
        print(problems.isEmpty ? "ok: index and slots agree (\(cfg.recorder.directory))" : "\(problems.count) inconsistencies")
        if !problems.isEmpty { throw ExitCode(1) }
    }
}
