// hallwatch-provision: the USB config drop (issue 17). Without --once: a scan at start, then a libudev monitor
// of USB block devices, each processed as plugged. With --once: one device or image file, then exit.
import ArgumentParser
import Foundation
import HallwatchProvision

struct Provision: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallwatch-provision",
        abstract: "Verify a USB config bundle and apply it atomically; write the receipt back to the stick.")

    @Flag(help: "Process one device and exit (0 applied or already applied, 1 refused or reverted, 2 ignored).")
    var once = false
    @Option(help: "With --once: the block device or image file.") var device: String?
    @Option(help: "The netlink group to monitor: udev (after udevd's rules) or kernel (raw uevents).")
    var group = "udev"
    @Option(help: "The keyring directory (version file and *.pub keys).") var keyring = "/etc/hallwatch/keyring"
    @Option(help: "The configuration store (releases, current, previous, state.json).")
    var store = "/var/lib/hallwatch/config"
    @Option(
        help:
            "The switch spool: a file is dropped there after each switch of current, when the directory exists (hallwatch-config.path)."
    )
    var switchSpool = "/var/lib/hallwatch/config-switched"
    @Option(help: "This box's serial number.") var serial: String
    @Option(help: "This box's building (omit on a fresh box: it takes one adopt bundle).") var building: String?
    @Option(help: "This box's district.") var district: String?
    @Option(help: "The image build time, seconds since the epoch (the clock never counts as earlier).")
    var buildTime: Int64 = 0
    @Flag(help: "Run the reader helper without its sandbox (no root).") var noSandbox = false
    @Option(help: "The box's age identity (secrets/*.age in bundles are decrypted with it).")
    var ageIdentity = "/etc/hallwatch/box.agekey"
    @Option(help: "The box's identity key (minisign -G -W), which signs receipts; absent: unsigned receipts.")
    var identityKey = "/etc/hallwatch/box.minisign.key"
    @Option(help: "An LED for the installer, colour=LED-class directory (green, red, amber, blue; repeat).")
    var led: [String] = []
    @Option(help: "An LED-class buzzer directory (a GPIO beeper).") var buzzer: String?

    /// The LEDs and buzzer from the options (none by default).
    func indicator() throws -> Indicator? {
        var leds: [String: String] = [:]
        for option in led {
            guard let (colour, dir) = Indicator.parseLED(option) else {
                throw ValidationError("--led \(option): expected green|red|amber|blue=/sys/class/leds/NAME")
            }
            leds[colour] = dir
        }
        return leds.isEmpty && buzzer == nil ? nil : Indicator(leds: leds, buzzer: buzzer)
    }

    @Option(help: "Seconds the health gate waits for the new configuration to be reported healthy (0: no activation).")
    var healthTimeout = 30.0
    @Option(help: "A process that must report the new configuration healthy (repeat; default recorder, web, pruner).")
    var healthProcess: [String] = []

    /// The health gate from the options, `nil` with `--health-timeout 0`.
    var gate: HealthGate? {
        guard healthTimeout > 0 else { return nil }
        var g = HealthGate(timeout: .milliseconds(Int64(min(healthTimeout, 600) * 1000)))
        if !healthProcess.isEmpty { g.required = healthProcess }
        return g
    }

    func run() throws {
        guard once else { return try monitor() }
        guard let device else { throw ValidationError("--once needs --device") }
        let store = ConfigStore(root: store, switchSpool: switchSpool)
        try store.withLock { () throws(ProvisionError) in try store.recover() }
        let ring = try Keyring.load(directory: keyring)
        let identity = BoxIdentity(
            serial: serial, district: district ?? store.state().district, building: building ?? store.state().building)
        var p = Provisioner(
            identity: identity, keyring: ring, store: store, nowUnix: Int64(Date().timeIntervalSince1970),
            buildTimeUnix: buildTime)
        p.keyringDirectory = keyring
        p.ageIdentity = FileManager.default.fileExists(atPath: ageIdentity) ? ageIdentity : nil
        p.receiptKey = try Self.receiptKey(identityKey)
        p.healthGate = gate
        p.indicator = try indicator()
        // Crash tests: HALLWATCH_PROVISION_CRASH_AFTER=<step> kills the process with SIGKILL after that apply
        // step (staged, previous, state, current) or revert step (V1–V4).
        let crashAfter = ProcessInfo.processInfo.environment["HALLWATCH_PROVISION_CRASH_AFTER"]
        p.afterRevertStep = { step in if step.rawValue == crashAfter { kill(getpid(), SIGKILL) } }
        let sandbox = try checkedSandbox()
        let outcome = p.process(device: device, apply: true, sandbox: sandbox) { step in
            if step.rawValue == crashAfter { kill(getpid(), SIGKILL) }
        }
        print("result: \(outcome.result.rawValue)")
        for r in outcome.reasons { print("reason: \(r.code.rawValue): \(r.message)") }
        switch outcome.result {
        case .applied, .alreadyApplied: return
        case .refused, .reverted: throw ExitCode(1)
        case .ignored: throw ExitCode(2)
        }
    }
}

extension Provision {
    /// The box's receipt-signing key at `path`, or `nil` when there is none.
    static func receiptKey(_ path: String) throws(ProvisionError) -> Minisign.SecretKey? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try Minisign.SecretKey(text: String(decoding: data, as: UTF8.self))
    }

    /// The reader helper's sandbox (none with `--no-sandbox`), tried once: one that cannot start ends the
    /// process with exit status 78 (EX_CONFIG) and a `provision.reader` line, instead of every stick reading as
    /// empty.
    func checkedSandbox() throws -> ReaderSandbox {
        let sandbox = noSandbox ? ReaderSandbox(prefix: [], deadline: .seconds(10)) : .default
        do { try sandbox.check() } catch {
            FileHandle.standardError.write(Data("\(error.stableCode): \(error.message)\n".utf8))
            throw ExitCode(78)
        }
        return sandbox
    }

    /// The long-running service: scan, then monitor; one line per outcome on stdout (journald).
    func monitor() throws {
        let storeRoot = store
        let spool = switchSpool
        let keyringDir = keyring
        let ageFile = ageIdentity
        let keyFile = identityKey
        let serial = serial
        let (building, district, buildTime, gate) = (building, district, buildTime, gate)
        let lights = try indicator()
        let recovering = ConfigStore(root: storeRoot, switchSpool: spool)
        try recovering.withLock { () throws(ProvisionError) in try recovering.recover() }
        let service = ProvisionService(sandbox: try checkedSandbox()) {
            () throws(ProvisionError) -> Provisioner in
            let store = ConfigStore(root: storeRoot, switchSpool: spool)
            var p = Provisioner(
                identity: BoxIdentity(
                    serial: serial, district: district ?? store.state().district,
                    building: building ?? store.state().building),
                keyring: try Keyring.load(directory: keyringDir), store: store,
                nowUnix: Int64(Date().timeIntervalSince1970), buildTimeUnix: buildTime)
            p.keyringDirectory = keyringDir
            p.ageIdentity = FileManager.default.fileExists(atPath: ageFile) ? ageFile : nil
            p.receiptKey = try Self.receiptKey(keyFile)
            p.healthGate = gate
            p.indicator = lights
            return p
        }
        guard let monitor = UdevMonitor(group: group) else {
            throw ValidationError("cannot open a libudev monitor on the \(group) group")
        }
        func report(_ e: BlockEvent) {
            guard let out = service.handle(e) else { return }
            // Written unbuffered, one outcome at a time: stdout is a pipe to the journal under systemd, which
            // `print` buffers in 4 KiB blocks (a stick's result showed only when the service stopped).
            var text = "\(e.devnode): \(out.result.rawValue)\n"
            for r in out.reasons { text += "\(e.devnode): reason: \(r.code.rawValue): \(r.message)\n" }
            FileHandle.standardOutput.write(Data(text.utf8))
        }
        for e in monitor.scan() { report(e) }
        while true {
            if let e = monitor.next(timeout: .seconds(1)) { report(e) }
        }
    }
}

Provision.main()
