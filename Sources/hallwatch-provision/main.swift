// hallwatch-provision: processes one USB stick (or image file) as if it had been plugged (issue 17).
// The libudev monitor (the long-running service) is to come; `--once` is what tests and installers use.
import ArgumentParser
import Foundation
import HallwatchProvision

struct Provision: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallwatch-provision",
        abstract: "Verify a USB config bundle and apply it atomically; write the receipt back to the stick.")

    @Flag(help: "Process one device and exit (0 applied or already applied, 1 refused, 2 ignored).")
    var once = false
    @Option(help: "The block device or image file.") var device: String
    @Option(help: "The keyring directory (version file and *.pub keys).") var keyring = "/etc/hallwatch/keyring"
    @Option(help: "The configuration store (releases, current, previous, state.json).")
    var store = "/var/lib/hallwatch/config"
    @Option(help: "This box's serial number.") var serial: String
    @Option(help: "This box's building (omit on a fresh box: it takes one adopt bundle).") var building: String?
    @Option(help: "This box's district.") var district: String?
    @Option(help: "The image build time, seconds since the epoch (the clock never counts as earlier).")
    var buildTime: Int64 = 0
    @Flag(help: "Run the reader helper without its sandbox (no root).") var noSandbox = false

    func run() throws {
        guard once else { throw ValidationError("only --once is implemented; the udev monitor is to come") }
        let store = ConfigStore(root: store)
        try store.recover()
        let ring = try Keyring.load(directory: keyring)
        let identity = BoxIdentity(
            serial: serial, district: district ?? store.state().district, building: building ?? store.state().building)
        var p = Provisioner(
            identity: identity, keyring: ring, store: store, nowUnix: Int64(Date().timeIntervalSince1970),
            buildTimeUnix: buildTime)
        p.keyringDirectory = keyring
        // Crash tests: HALLWATCH_PROVISION_CRASH_AFTER=<step> kills the process with SIGKILL after that step.
        let crashAfter = ProcessInfo.processInfo.environment["HALLWATCH_PROVISION_CRASH_AFTER"]
        let sandbox = noSandbox ? ReaderSandbox(prefix: [], deadline: .seconds(10)) : .default
        let outcome = p.process(device: device, apply: true, sandbox: sandbox) { step in
            if step.rawValue == crashAfter { kill(getpid(), SIGKILL) }
        }
        print("result: \(outcome.result.rawValue)")
        for r in outcome.reasons { print("reason: \(r.code.rawValue): \(r.message)") }
        switch outcome.result {
        case .applied, .alreadyApplied: return
        case .refused: throw ExitCode(1)
        case .ignored: throw ExitCode(2)
        }
    }
}

Provision.main()
