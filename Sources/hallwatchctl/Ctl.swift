// hallwatchctl: inspect and operate a Hallwatch box. Logic lives in HallwatchControl and the libraries it names;
// this file parses arguments and prints.
import ArgumentParser
import Foundation
import HallwatchBus
import HallwatchCapture
import HallwatchConfig
import HallwatchControl
import HallwatchCore
import HallwatchDiscovery
import HallwatchEvidence
import HallwatchProcess
import HallwatchStatus
import HallwatchStorage
import HallwatchWeb
import Logging

@main
struct HallwatchCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallwatchctl",
        abstract: "Inspect and operate a Hallwatch box.",
        subcommands: [
            Status.self, Recordings.self, Export.self, Check.self, Disk.self, Hold.self, Camera.self, Probe.self,
            Supervise.self, Demo.self, BenchFill.self, User.self, Audit.self, Web.self, ConfigCommand.self,
            EventSource.self, Events.self,
        ])
}

struct ConfigOption: ParsableArguments {
    @Option(help: "Configuration file.") var config = "/etc/hallwatch/hallwatch.yaml"
}

/// The directory of this executable, where its sibling executables live.
func binDirectory() -> String {
    URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Each camera's state, bitrate and recorded seconds, each disk's health, from the bus.")
    @OptionGroup var options: ConfigOption
    @Flag(help: "Print JSON for scripts.") var json = false
    @Option(help: "Print again every N seconds (0.5-3600) until interrupted.") var watch: Double?

    func validate() throws {
        if let watch, !(watch.isFinite && watch >= 0.5 && watch <= 3600) {
            throw ValidationError("--watch \(watch): expected seconds between 0.5 and 3600")
        }
    }

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .error)
        let logger = Logger(label: "hallwatchctl")
        // A refused file still names the bus and the cameras: a typo must not hide the box's state.
        let cfg: HallwatchConfig
        do {
            let (fits, refused) = try ConfigLoader.loadWhatFits(path: options.config)
            if let refused {
                FileHandle.standardError.write(
                    Data(
                        ("warning: \(options.config) is refused (\(refused.diagnostics.count) problem"
                            + (refused.diagnostics.count == 1 ? "" : "s") + "; "
                            + "`hallwatchctl config validate \(options.config)` lists them); the status uses what of it loads\n")
                            .utf8))
            }
            cfg = fits
        } catch {
            cfg = ProcessSetup.loadConfig(options.config, logger: logger)  // prints every diagnostic, exits 78
        }
        let bus = BusClient(clientID: "hallwatchctl-\(getpid())", socketPath: cfg.bus.socket, will: nil, logger: logger)
        do { try await bus.connect(timeout: .seconds(3)) } catch {
            FileHandle.standardError.write(Data("cannot reach the bus at \(cfg.bus.socket): \(error)\n".utf8))
            throw ExitCode(ExitStatus.unavailable)
        }
        let collector = StatusCollector(bus: bus, topics: BusTopics(box: cfg.box))
        try await Task.sleep(for: .milliseconds(400))  // retained messages arrive at once
        repeat {
            let snap = collector.snapshot(configured: cfg.streams.map(\.id), now: realClocks.utcNow())
            if json {
                let e = JSONEncoder()
                e.outputFormatting = [.sortedKeys, .prettyPrinted]
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
    @Option(help: "How long to record, seconds (0-3600).") var seconds: Double = 10
    @Option(help: "RTSP user name.") var username: String?
    @Option(help: "File holding the RTSP password.") var passwordFile: String?
    @Option(help: "auto (TCP, then UDP if the camera refuses TCP with 461), tcp or udp.")
    var transport: CameraConfig.Transport = .auto
    @Flag(help: "Include audio.") var audio = false
    @Option(help: "Also write what was recorded to this MP4.") var out: String?

    func validate() throws {
        guard seconds >= 0.1 && seconds <= 3600 else {
            throw ValidationError("--seconds must be at least 0.1 and at most 3600")
        }
        guard
            !url.contains(where: {
                $0.isWhitespace || $0.isNewline || ($0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? false)
            })
        else {
            throw ValidationError(
                "expected a URL without spaces, line breaks or control characters, got \(printable(url, limit: 200))")
        }
        if let out, FileManager.default.fileExists(atPath: out) {
            throw ValidationError(
                "\(printable(out, limit: 200)) exists; probe never overwrites a file (move it or name another)")
        }
        if passwordFile != nil && username == nil {
            throw ValidationError("--password-file needs --username")
        }
        guard let u = URLComponents(string: url), u.scheme?.lowercased() == "rtsp", !(u.host ?? "").isEmpty else {
            throw ValidationError("expected rtsp://host[:port]/path, got \(url)")
        }
        guard u.user == nil && u.password == nil else {
            throw ValidationError(
                "no credentials in the URL (they end up in logs and shell history); use --username and --password-file")
        }
        if let p = u.port {
            guard (1...65535).contains(p) else { throw ValidationError("port \(p) is outside 1-65535") }
        }
    }

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .warning)
        var password: String?
        if let file = passwordFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ValidationError("cannot read the password file \(file)")
            }
            password = text.split(separator: "\n").first.map(String.init) ?? ""
        }
        let report: String
        do {
            report = try await CameraProbe.run(
                url: url, username: username, password: password, transport: transport,
                audio: audio, seconds: seconds, exportTo: out, logger: Logger(label: "hallwatchctl"))
        } catch let failure as CameraProbe.Failure {
            // What was recorded first (and written to --out), then the error and exit status 1.
            print(failure.report)
            throw failure.cause
        }
        print(report)
    }
}

extension CameraConfig.Transport: ExpressibleByArgument {}

struct Supervise: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Development supervisor: run mosquitto, the recorder and a capture worker per camera; restart what dies.",
        discussion: "Production uses the systemd units in Systemd/. Ctrl-C stops everything cleanly.")
    @OptionGroup var options: ConfigOption
    @Option(help: "Directory for pid files, logs and the broker config.") var runDirectory = ".run"
    @Option(help: "Print the status table every N seconds (0: never).") var statusEvery: Double = 5
    @Option(help: "Cap of the restart back-off for a process that keeps dying (e.g. 500ms, 10s).") var maxRestartDelay =
        "10s"
    @Option(help: "Also run hallwatch-web with this web file (web, users).") var webConfig: String?

    func run() async throws {
        ProcessSetup.bootstrapLogging()
        let logger = Logger(label: "hallwatchctl.supervise")
        guard let cap = DurationText.parse(maxRestartDelay), cap <= .seconds(300) else {
            throw ValidationError(
                "--max-restart-delay \(maxRestartDelay): expected a duration such as 500ms or 10s, at most 300s")
        }
        let cfg = ProcessSetup.loadConfig(options.config, logger: logger)
        try claim(runDirectory)
        var plan = BoxPlan(
            config: cfg, configPath: options.config, runDirectory: runDirectory, binDirectory: binDirectory())
        plan.webConfigPath = webConfig
        try await superviseUntilInterrupted(plan: plan, statusEvery: statusEvery, maxRestartDelay: cap, logger: logger)
    }
}

struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the box on four simulated cameras serving real clips (see `make demo`).")
    @Option(help: "Directory with the clips from Image/fetch-clips.sh.") var media = ".media"
    @Option(help: "Directory for the demo's config, recordings, logs and sockets.") var runDirectory = ".run/demo"
    @Option(help: "RTSP port of the simulated cameras (0: pick a free one).") var port = 0
    @Option(help: "Print the status table every N seconds.") var statusEvery: Double = 5
    @Option(help: "HTTPS port of the web page on 127.0.0.1 (0: pick a free one).") var webPort = 8443
    @Option(help: "Directory with the demo school's floor plans (the map).") var floorPlans = "Image/demo"

    func run() async throws {
        ProcessSetup.bootstrapLogging()
        let logger = Logger(label: "hallwatchctl.demo")
        let run = URL(fileURLWithPath: runDirectory).standardizedFileURL.path
        let mediaDir = URL(fileURLWithPath: media).standardizedFileURL.path
        for m in BoxPlan.demoMounts(mediaDirectory: mediaDir) {
            let file = String(m.split(separator: "=", maxSplits: 1)[1])
            guard FileManager.default.fileExists(atPath: file) else {
                logger.critical("missing clip \(file): run `make clips` first")
                throw ExitCode(ExitStatus.noInput)
            }
        }
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        try claim(run)
        let simPort = port == 0 ? BoxPlan.freePort() : port
        let configPath = run + "/hallwatch.yaml"
        let onvifPort = BoxPlan.freePort()
        try BoxPlan.demoConfig(runDirectory: run, simcamPort: simPort, onvifPort: onvifPort).write(
            toFile: configPath, atomically: true, encoding: .utf8)
        let cfg = ProcessSetup.loadConfig(configPath, logger: logger)
        let passwordFile = try BoxPlan.writeDemoPassword(runDirectory: run)
        var plan = BoxPlan(
            config: cfg, configPath: configPath, runDirectory: run, binDirectory: binDirectory(),
            simcam: (simPort, BoxPlan.demoMounts(mediaDirectory: mediaDir)),
            simcamArguments: [
                "--onvif", "--onvif-user", "hallwatch", "--onvif-password-file", passwordFile, "--onvif-port",
                "\(onvifPort)", "--onvif-events-every", BoxPlan.demoDoorEvery,
            ])
        let web = try DemoWebFile.write(runDirectory: run, httpsPort: webPort == 0 ? BoxPlan.freePort() : webPort)
        plan.webConfigPath = web.webConfigPath
        say(
            "Hallwatch demo: a simulated ONVIF camera with 4 streams on 127.0.0.1, adopted through discovery (loopback only)"
        )
        say("config \(configPath), recordings \(run)/disk0, logs \(run)/logs — Ctrl-C stops everything.")
        say(
            "web page \(web.url) (self-signed certificate; fingerprint in \(run)/logs/web.log) — user admin, password in \(web.passwordPath)"
        )
        say("try: hallwatchctl export --config \(configPath) --camera lobby --from -30s --to now --out clip.mp4\n")
        let plans = URL(fileURLWithPath: floorPlans).standardizedFileURL.path
        let map = Task { await DemoMap.addWhenAdopted(configPath: configPath, floorPlans: plans, logger: logger) }
        defer { map.cancel() }
        try await superviseUntilInterrupted(plan: plan, statusEvery: statusEvery, logger: logger)
    }
}

/// Claims the run directory for this supervisor or exits 75 (EX_TEMPFAIL) naming the one already there.
func claim(_ runDirectory: String) throws {
    do { try Supervisor.claim(runDirectory: runDirectory) } catch {
        FileHandle.standardError.write(Data("\(error)\n".utf8))
        throw ExitCode(ExitStatus.tempFail)
    }
}

func superviseUntilInterrupted(
    plan: BoxPlan, statusEvery: Double, maxRestartDelay: Duration = .seconds(10), logger: Logger
) async throws {
    try await DevelopmentBox.run(
        plan: plan, statusEvery: statusEvery, maxRestartDelay: maxRestartDelay, say: say, logger: logger)
}

/// Writes a line to stdout at once (print is block-buffered when stdout is a file or pipe).
func say(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }

struct Recordings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List a camera's recorded runs, the gaps between them and the stretches deleted from their middles.")
    @OptionGroup var options: ConfigOption
    @Option(help: "Camera id.") var camera: String
    @Flag(help: "Print JSON for scripts.") var json = false
    @Flag(help: "Also measure the largest hole between fragments inside each run (reads the recording).")
    var fragmentGaps = false

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .error)
        let cfg = ProcessSetup.loadConfig(options.config, logger: Logger(label: "hallwatchctl"))
        guard let id = CameraID(camera) else { throw ValidationError("'\(camera)' is not a camera id") }
        let report: RecordingsReport
        do {
            report = try RecordingQueries.recordings(
                config: cfg, camera: id, fragmentGaps: fragmentGaps || json, warn: warnOperator)
        } catch {
            FileHandle.standardError.write(Data("recordings failed: \(error)\n".utf8))
            throw ExitCode(ExitStatus.failure)
        }
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try e.encode(report), as: UTF8.self))
        } else {
            print(report.render())
        }
    }
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Write cameras' recordings between two times as a playable MP4 (--out) or a signed evidence bundle (--bundle).",
        discussion: """
            TIME is ISO 8601 UTC (2026-11-29T20:52:00Z), `now`, or relative to now (-30s, -5m, -2h).
            --bundle DIR writes video/<camera>/<start>_<end>.mp4 (one per recorded run), manifest.json,
            frames/<camera>.framehash, SHA256SUMS signed with the box's Ed25519 identity key (SHA256SUMS.sig,
            keys/box-ed25519.pem) and README.txt, and places an evidence hold over the range (--no-hold: none).
            Check a bundle with `hallwatchctl export verify DIR`.
            Every export is put into the box's audit log first (export.file or export.bundle: the Unix user, the
            cameras, the range, the output path), by hallwatch-web over the bus; with the bus unreachable nothing is
            exported (exit 69) unless --no-audit (a disk read away from its box).
            """,
        subcommands: [ExportVerify.self])
    @OptionGroup var options: ConfigOption
    @Option(help: "Camera id (repeatable with --bundle).") var camera: [String] = []
    // Optional for the parser (the `verify` subcommand parses these options too); required in run().
    @Option(parsing: .unconditional, help: "Start (TIME; required).") var from: String?
    @Option(parsing: .unconditional, help: "End (TIME).") var to: String = "now"
    @Option(help: "Output file (.mp4).") var out: String?
    @Option(help: "Write an evidence bundle to this directory (made if missing; must be empty).") var bundle: String?
    @Option(help: "Why (bundle; at most 500 bytes).") var reason: String?
    @Option(name: .customLong("case"), help: "Case or incident number (bundle; at most 100 bytes).") var caseID: String?
    @Option(help: "The box's identity key (default: identity.key in --state-directory).") var signingKey: String?
    @Option(help: "The web's state directory (web.stateDirectory).") var stateDirectory = "/var/lib/hallwatch-web"
    @Flag(help: "Do not place an evidence hold over the bundle's range.") var noHold = false
    @Flag(help: "Replace the output file if it exists.") var force = false
    @Flag(help: "Do not put the export into the box's audit log (only for a disk read away from its box).")
    var noAudit = false

    func checkArguments() throws {
        guard from != nil else { throw ValidationError("--from is required") }
        guard (out == nil) != (bundle == nil) else { throw ValidationError("give exactly one of --out and --bundle") }
        guard !camera.isEmpty else { throw ValidationError("--camera is required") }
        if out != nil && camera.count != 1 {
            throw ValidationError("--out takes one --camera; use --bundle for several")
        }
        if bundle != nil && (reason == nil || caseID == nil) {
            throw ValidationError("--bundle needs --reason and --case")
        }
    }

    func run() async throws {
        try checkArguments()
        let from = self.from ?? ""
        ProcessSetup.bootstrapLogging(default: .error)
        let logger = Logger(label: "hallwatchctl")
        let cfg = ProcessSetup.loadConfig(options.config, logger: logger)
        var ids: [CameraID] = []
        for c in camera {
            guard let id = CameraID(c) else { throw ValidationError("'\(c)' is not a camera id") }
            ids.append(id)
        }
        let now = realClocks.utcNow()
        guard let start = TimeExpression.parse(from, now: now) else {
            throw ValidationError("--from \(from): expected ISO 8601 UTC, now, or -30s/-5m/-2h")
        }
        guard let end = TimeExpression.parse(to, now: now) else {
            throw ValidationError("--to \(to): expected ISO 8601 UTC, now, or -30s/-5m/-2h")
        }
        guard start < end else { throw ValidationError("--from must be before --to") }
        if let out, bundle == nil, !force, FileManager.default.fileExists(atPath: out) {
            throw ValidationError("\(out) exists; use --force to replace it")
        }
        // Audited before any video is written, like the web's exports (deny by default: no bus, no export).
        try await audit(cfg, ids, start, end, now: now, logger: logger)
        if let bundle {
            try await exportBundle(cfg, ids, start, end, now, to: bundle, logger: logger)
            return
        }
        guard let out else { return }
        do {
            let s = try EvidenceExport.export(
                config: cfg, camera: ids[0], from: start, to: end, out: out, warn: warnOperator)
            print(
                "wrote \(s.files.joined(separator: ", ")): \(String(format: "%.1f", s.mediaSeconds)) s, \(s.videoFrames) frames, \(s.bytes) bytes"
            )
        } catch {
            FileHandle.standardError.write(Data("export failed: \(error)\n".utf8))
            throw ExitCode(ExitStatus.failure)
        }
    }

    func exportBundle(
        _ cfg: HallwatchConfig, _ ids: [CameraID], _ start: UTCMicros, _ end: UTCMicros, _ now: UTCMicros,
        to dir: String, logger: Logger
    ) async throws {
        func failed(_ error: any Error) -> ExitCode {
            FileHandle.standardError.write(Data("export failed: \(error)\n".utf8))
            return ExitCode(ExitStatus.failure)
        }
        let keyPath = signingKey ?? stateDirectory + "/" + BoxIdentityKey.privateFile
        let key: BoxIdentityKey
        do { key = try BoxIdentityKey.readPrivateKey(path: keyPath) } catch {
            throw failed(
                EvidenceBundleError(
                    .signingKey, "cannot read the signing key \(printable(keyPath, limit: 200)): \(error)"))
        }
        let holdRequests: [HoldRequest]
        do {
            let range = try HoldRange(from: start, to: end, now: now)
            holdRequests = try ids.map { try HoldRequest(camera: $0, range: range, reason: reason!, caseID: caseID!) }
        } catch {
            throw ValidationError("\(error)")
        }
        do {
            for id in ids { try EvidenceExport.requireKnown(id, cfg) }
            try EvidenceExport.checkOutput(dir, config: cfg, allowDirectory: true)
            let library = try EvidenceExport.readable(cfg, warn: warnOperator)
            var holdIDs: [String] = []
            if !noHold {
                // Held first, so the pruner cannot delete the range while it is being exported.
                let disks = NamedDisk.all(of: cfg)
                for r in holdRequests {
                    let hold = r.hold(createdAt: now)
                    _ = try EvidenceHolds.add(
                        hold, disks: disks, box: cfg.box, maxHoldPercent: cfg.retention.maxHoldPercent, now: now,
                        logger: logger)
                    holdIDs.append(hold.id)
                    FileHandle.standardError.write(Data("hold \(hold.id) placed over \(r.camera)\n".utf8))
                }
                await publishHolds(
                    cfg, (try? EvidenceHolds.list(disks: disks, box: cfg.box, logger: logger)) ?? [], logger: logger)
            }
            let request = EvidenceBundle.Request(
                cameras: ids, from: start, to: end, reason: holdRequests[0].reason.text,
                caseNumber: holdRequests[0].caseID.text, exportedBy: unixUser(), box: cfg.box, holds: holdIDs)
            let t0 = Date()
            var bytes: Int64 = 0
            let manifest = try EvidenceBundle.write(
                request, from: library, to: dir,
                signer: BundleSigner(publicKey: key.publicKey, sign: { key.sign($0) }), now: now
            ) { p in
                // A bar by recorded bytes, redrawn in place on a terminal; one line per file written.
                let tty = isatty(STDERR_FILENO) == 1
                let width = 30
                let filled = min(width, Int(p.fraction * Double(width)))
                let bar = String(
                    format: "[%@%@] %3d%% %d/%d files", String(repeating: "#", count: filled),
                    String(repeating: ".", count: width - filled), Int(p.fraction * 100), p.done, p.total)
                guard !p.path.isEmpty else {
                    if tty { FileHandle.standardError.write(Data("\r\(bar)".utf8)) }
                    return
                }
                bytes += p.bytes
                FileHandle.standardError.write(
                    Data(
                        ((tty ? "\r" : "") + bar
                            + String(format: " %@ %.1f MB in %.2f s\n", p.path, Double(p.bytes) / 1e6, p.seconds))
                            .utf8))
            }
            let seconds = Date().timeIntervalSince(t0)
            print(
                String(
                    format: "bundle %@ (%@) written to %@: %d files, %.1f MB in %.1f s (%.0f MB/s)",
                    manifest.exportID, manifest.caseNumber, dir, manifest.cameras.reduce(0) { $0 + $1.files.count },
                    Double(bytes) / 1e6, seconds, Double(bytes) / 1e6 / max(seconds, 1e-6)))
        } catch {
            throw failed(error)
        }
    }
}

/// The Unix user running this process (`$SUDO_USER` when run through sudo, then the uid's name).
func unixUser() -> String {
    if let sudo = ProcessInfo.processInfo.environment["SUDO_USER"], !sudo.isEmpty { return "\(sudo) (via sudo)" }
    if let pw = getpwuid(getuid()), let name = pw.pointee.pw_name { return String(cString: name) }
    return "uid \(getuid())"
}

struct ExportVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an evidence bundle: SHA256SUMS, its signature, every file, the framehash of the video.",
        discussion: """
            Exit 0 only when everything verifies; otherwise 1, naming the first file that fails. A bundle anyone \
            re-signed with a key of their own verifies too: the signer's key fingerprint is printed, and \
            --fingerprint makes the check fail unless it is the box's (from its status page, not from the bundle).
            """)
    @Argument(help: "The bundle directory.") var directory: String
    @Option(help: "The box's identity-key fingerprint (SHA-256, hex pairs; colons optional): the signer must be it.")
    var fingerprint: String?

    func run() async throws {
        let verdict = EvidenceBundle.verify(directory: directory, expectedFingerprint: fingerprint)
        print(verdict.description)
        if !verdict.ok { throw ExitCode(ExitStatus.failure) }
    }
}

// MARK: - camera list-discovered, adopt
struct Camera: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cameras found by ONVIF discovery.",
        subcommands: [ListDiscovered.self, Adopt.self])
}

/// The discovered devices from the bus, or exit 69 naming the bus.
func discoveredDevices(_ cfg: HallwatchConfig, logger: Logger) async throws -> [DiscoveredDevice] {
    do { return try await DiscoveredDevices.read(config: cfg, logger: logger) } catch {
        FileHandle.standardError.write(Data("cannot reach the bus at \(cfg.bus.socket): \(error)\n".utf8))
        throw ExitCode(ExitStatus.unavailable)
    }
}

struct ListDiscovered: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list-discovered", abstract: "The devices the discovery agent published (from the bus).")
    @OptionGroup var options: ConfigOption
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .error)
        let logger = Logger(label: "hallwatchctl")
        let cfg = ProcessSetup.loadConfig(options.config, logger: logger)
        let devices = try await discoveredDevices(cfg, logger: logger)
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try e.encode(devices), as: UTF8.self))
            return
        }
        func pad(_ s: String, _ n: Int) -> String {
            s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
        }
        print(
            pad("ID", 13) + pad("STATE", 8) + pad("NAME", 12) + pad("MODEL", 22) + pad("ADDRESS", 16) + pad("AUTH", 14)
                + pad("MAIN STREAM", 44) + "ADOPTED")
        for d in devices {
            let main = d.mainStream
            let prof = main.flatMap { m in d.profiles.first { $0.token == m.profileToken } }
            let video = prof.map { "\($0.encoding ?? "?") \($0.width ?? 0)x\($0.height ?? 0) " } ?? ""
            // Names, models and URIs come from the cameras: control characters are shown escaped.
            print(
                printable(
                    pad(d.id, 13) + pad(d.presence.rawValue, 8) + pad(d.name ?? "-", 12)
                        + pad([d.manufacturer, d.model].compactMap { $0 }.joined(separator: " "), 22)
                        + pad(d.addresses.first ?? "-", 16)
                        + pad(d.auth, 14) + pad(video + (main?.uri ?? d.error?.code ?? "-"), 44)
                        + (d.adoptedAs?.rawValue ?? "-")))
        }
        if devices.isEmpty {
            print("(nothing discovered yet: is hallwatch-discovery running with a discovery: section?)")
        }
        // discovery.adopt: auto on a provisioned box: the entries for the district's next bundle.
        let proposed = devices.filter { $0.proposal != nil && $0.adoptedAs == nil }
        if !proposed.isEmpty {
            print("\nProposed for the next bundle's cameras: (this box runs a signed release; nothing was written):")
            for d in proposed {
                for line in (d.proposal ?? "").split(separator: "\n") { print(printable(String(line), limit: 600)) }
            }
        }
    }
}

struct Adopt: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Add a discovered device to the configuration as a camera, so that a capture worker starts for it.",
        discussion:
            "Exit codes: 0 adopted; 1 refused (no stream yet, already adopted, id in use); 66 no such device; 69 bus unreachable."
    )
    @OptionGroup var options: ConfigOption
    @Argument(help: "The device's id from list-discovered (dev-…).") var id: String
    @Option(name: .customLong("as"), help: "Camera id to give it (default: its ONVIF name, else its device id).")
    var cameraID: String?

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .error)
        let logger = Logger(label: "hallwatchctl")
        let cfg = ProcessSetup.loadConfig(options.config, logger: logger)
        var requested: CameraID?
        if let c = cameraID {
            guard let v = CameraID(c) else { throw ValidationError("'\(c)' is not a camera id (1-32 of a-z 0-9 - _)") }
            requested = v
        }
        guard let device = try await discoveredDevices(cfg, logger: logger).first(where: { $0.id == id }) else {
            FileHandle.standardError.write(
                Data("no discovered device \(id) (see: hallwatchctl camera list-discovered)\n".utf8))
            throw ExitCode(ExitStatus.noInput)
        }
        do {
            let cam = try CameraAdoption.adopt(device, configPath: options.config, as: requested)
            say("adopted \(device.id) as camera '\(cam.id)' (\(cam.source)) in \(options.config)")
        } catch {
            FileHandle.standardError.write(Data("adopt: \(error)\n".utf8))
            throw ExitCode(ExitStatus.failure)
        }
    }
}

// MARK: - disk init, check
struct Disk: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Recording disks.", subcommands: [DiskInit.self])
}

struct DiskInit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Format a directory as a recording disk: meta and zero-filled slot files (protocol steps I1–I5).",
        discussion: """
            Writes every slot file in full (zeros, then the slot header), so it takes as long as writing the
            whole size once; a progress bar shows it. The directory must be missing, empty or hold only
            lost+found. It never deletes or overwrites anything it did not create: a recording disk (of this or
            another box) and any other content are refused even with --force; --force only redoes an
            interrupted initialisation (meta.initializing without meta, never recorded to).

            BYTES: digits with an optional binary suffix K, M, G, T (64M = 67108864).

            Exit codes: 0 formatted; 1 refused (not empty, or an interrupted initialisation without --force);
            2 already a recording disk of this box (nothing done); 3 a recording disk of another box (nothing
            done); 64 bad arguments; 74 I/O error while formatting (rerun with --force once fixed).
            """)
    @Argument(help: "The disk's directory (created if missing; its parent must exist).") var path: String
    @Option(help: "Number of slots.") var slots: Int?
    @Option(help: "Total size (BYTES); as many whole slots as fit.") var size: String?
    @Option(
        help:
            "Size of each slot (BYTES), a multiple of 4096 between 64K and 64G. Default: the config's recorder.slotSizeBytes, else 64M."
    ) var slotSize: String?
    @Option(help: "The owning box's name (stored in meta).") var box: String?
    @Option(help: "Take the box name (and default slot size) from this configuration file.") var config: String?
    @Flag(help: "Redo an interrupted initialisation. Never formats anything else.") var force = false

    func validate() throws {
        guard (slots == nil) != (size == nil) else {
            throw ValidationError("give exactly one of --slots N and --size BYTES")
        }
        guard (box == nil) != (config == nil) else {
            throw ValidationError("give exactly one of --box NAME and --config FILE")
        }
        if let size, DiskMaintenance.parseBytes(size) == nil {
            throw ValidationError("--size \(printable(size, limit: 100)): expected BYTES, e.g. 512G")
        }
        // The name is stored in the disk's meta and must match `box:` of a configuration: the same alphabet.
        if let box, !CameraID.isValid(box) {
            throw ValidationError(
                "--box \(printable(box, limit: 100)): expected 1-32 characters a-z, 0-9, '-' or '_' (not starting with '-' or '_'), as box: in the configuration"
            )
        }
        if let slotSize, DiskMaintenance.parseBytes(slotSize) == nil {
            throw ValidationError("--slot-size \(slotSize): expected BYTES, e.g. 64M")
        }
    }

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .error)
        let cfg = config.map { ProcessSetup.loadConfig($0, logger: Logger(label: "hallwatchctl")) }
        let owner = box ?? cfg!.box
        let slotSizeBytes =
            slotSize.flatMap(DiskMaintenance.parseBytes) ?? cfg?.recorder.slotSizeBytes
            ?? RecorderConfig().slotSizeBytes
        let disk: RecordingDisk
        do {
            let g = try DiskMaintenance.geometry(
                slots: slots, totalBytes: size.flatMap(DiskMaintenance.parseBytes), slotSizeBytes: slotSizeBytes)
            try DiskMaintenance.authorize(path: path, box: owner, force: force)
            try DiskMaintenance.checkRoom(path: path, bytes: Int64(g.slotCount) * g.slotSizeBytes)
            say(
                "formatting \(path) for box \"\(owner)\": \(g.slotCount) slots of \(g.slotSizeBytes) bytes (\(formatBytes(Int64(g.slotCount) * g.slotSizeBytes)))"
            )
            let bar = ProgressBar(total: g.slotCount, unit: "slots")
            disk = try DiskMaintenance.initialize(
                path: path, box: owner, slotCount: g.slotCount, slotSizeBytes: g.slotSizeBytes,
                force: force
            ) { done, count in bar.update(done) }
            bar.finish()
        } catch {
            FileHandle.standardError.write(Data("disk init: \(error.message)\n".utf8))
            throw ExitCode(error.exitCode)
        }
        say("ok: \(path) is recording disk \(disk.meta.diskUUID) of box \"\(disk.meta.box)\"")
    }
}

struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check recording disks' index against their slots; print each inconsistency; exit 1 on any.",
        discussion: """
            Levels, each including the one before: presence — every used slot and every indexed chunk's slot
            file has a header of the indexed generation and camera (one read per slot); size — every indexed
            record's header is in place with the indexed kind, run, length, duration and start, and chained
            to the one before (headers only); crc — every record's payload matches its CRC-32C (reads every
            indexed byte); media — every stored run is demuxed and its samples checked without decoding: DTS \
            increase, PTS are unique and never before their DTS, keyframe flags sit on IDR/IRAP pictures, no \
            sample starts mid-picture. Safe beside a running recorder.

            DISK defaults to every disk in the configuration's recorder.disks. With --config (or no DISK), each disk
            must belong to the configuration's box.

            Exit codes: 0 every disk consistent; 1 inconsistencies (or a damaged disk: missing or wrongly
            sized slot file, undecodable meta); 2 a disk could not be checked (no meta, another box's, I/O
            error) and none was inconsistent (a disk with no index yet counts as consistent); 64 bad arguments; 78 bad configuration.
            """)
    @Option(help: "presence, size, crc or media.") var level: CheckLevel = .crc
    @Argument(help: "Disk directories (default: every disk in the configuration's recorder.disks).") var disks:
        [String] = []
    @Option(help: "Configuration file (default /etc/hallwatch/hallwatch.yaml when no DISK is given).") var config:
        String?

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .error)
        var box: String?
        var paths = disks
        if config != nil || disks.isEmpty {
            let cfg = ProcessSetup.loadConfig(
                config ?? "/etc/hallwatch/hallwatch.yaml", logger: Logger(label: "hallwatchctl"))
            box = cfg.box
            if paths.isEmpty { paths = cfg.recorder.disks.map(\.path) }
        }
        var inconsistent = false
        var unchecked = false
        for r in DiskMaintenance.check(disks: paths, box: box, level: level) {
            let took = String(format: "%.1f s", r.seconds)
            switch r.outcome {
            case .consistent:
                say("ok: \(r.disk): index and slots agree (level \(level.rawValue), \(took))")
            case .noIndex:
                say("ok: \(r.disk): no index yet, nothing indexed (the recorder builds it from the slots)")
            case .inconsistent(let problems):
                inconsistent = true
                for p in problems { say("\(r.disk): \(p)") }
                say("FAIL: \(r.disk): \(problems.count) inconsistencies (level \(level.rawValue))")
            case .damaged(let message):
                inconsistent = true
                say("FAIL: \(r.disk): \(message)")
            case .badMedia(let problems):
                inconsistent = true
                for p in problems { say("\(r.disk): \(p)") }
                say("FAIL: \(r.disk): index and slots agree, but \(problems.count) media problems (level media)")
            case .unchecked(let message):
                unchecked = true
                say("NOT CHECKED: \(r.disk): \(message)")
            }
        }
        if inconsistent { throw ExitCode(ExitStatus.failure) }
        if unchecked { throw ExitCode(ExitStatus.unchecked) }
    }
}

extension CheckLevel: ExpressibleByArgument {}

/// "12.5 GiB"
func formatBytes(_ n: Int64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var i = 0
    while v >= 1024 && i < units.count - 1 {
        v /= 1024
        i += 1
    }
    return i == 0 ? "\(n) bytes" : String(format: "%.1f %@", v, units[i])
}

/// The box's real clocks: hallwatchctl's one clock, created here (its `main`) and handed to the libraries.
let realClocks: any Clocks = SystemClocks()

/// A one-line progress bar redrawn in place on a terminal; on a pipe or file, a plain line every 10 %.
final class ProgressBar {
    let total: Int
    let unit: String
    let tty = isatty(STDOUT_FILENO) == 1
    var lastTenth = -1
    let started = realClocks.monotonicNow()
    init(total: Int, unit: String) {
        self.total = max(1, total)
        self.unit = unit
    }

    func update(_ done: Int) {
        let fraction = Double(done) / Double(total)
        if tty {
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            FileHandle.standardOutput.write(
                Data("\r[\(bar)] \(done)/\(total) \(unit) \(Int(fraction * 100))% \(eta(fraction))   ".utf8))
        } else {
            let tenth = Int(fraction * 10)
            if tenth > lastTenth || done == total {
                lastTenth = tenth
                say("\(done)/\(total) \(unit) (\(Int(fraction * 100))%)")
            }
        }
    }

    func finish() { if tty { FileHandle.standardOutput.write(Data("\n".utf8)) } }

    private func eta(_ fraction: Double) -> String {
        let elapsed = (realClocks.monotonicNow() - started).seconds
        guard fraction > 0, fraction < 1, elapsed > 1 else { return "" }
        return String(format: "%.0f s left", elapsed / fraction - elapsed)
    }
}

/// A warning for the person at the terminal, on standard error (standard output may be a report or JSON).
func warnOperator(_ message: String) {
    FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
}
