// hallwatchctl config: the USB config drop's installer and district-IT tools (issue 17). Logic lives in
// HallwatchProvision; this file parses arguments and prints.
import ArgumentParser
import Foundation
import HallwatchConfig
import HallwatchProvision

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "USB config bundles: verify a stick, validate a file, roll back.",
        subcommands: [ConfigVerify.self, ConfigValidate.self, ConfigRollback.self])
}

struct ConfigVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a stick or image through the provisioner's reader and checks; apply nothing.",
        discussion: """
            Prints what would be applied, or every reason it would be refused. Exit codes: 0 it would be
            applied; 1 refused; 2 not a FAT or exFAT stick (ignored); 3 already applied.
            """)
    @Argument(help: "The stick's block device or an image file.") var stick: String
    @Option(help: "The keyring directory (version file and *.pub keys).") var keyring: String
    @Option(help: "The box's serial.") var box = "any-box"
    @Option(help: "The box's building (omit for a fresh box: only an adopt bundle).") var building: String?
    @Option(help: "The box's district.") var district: String?
    @Option(help: "A configuration store whose floors apply (default: a fresh box's).") var store: String?
    @Flag(help: "Run the reader without its sandbox (no root needed).") var noSandbox = false

    func run() throws {
        let ring = try Keyring.load(directory: keyring)
        let p = Provisioner(
            identity: BoxIdentity(serial: box, district: district, building: building), keyring: ring,
            store: ConfigStore(root: store ?? "/nonexistent/hallwatch-verify"),
            nowUnix: Int64(Date().timeIntervalSince1970), buildTimeUnix: 0)
        let sandbox = noSandbox ? ReaderSandbox(prefix: [], deadline: .seconds(10)) : .default
        let out = p.process(device: stick, apply: false, sandbox: sandbox)
        print("result: \(out.result == .applied ? "would apply" : out.result.rawValue)")
        if let m = out.manifest {
            print("bundle: \(m.district)/\(m.building) version \(m.version), signed by \(out.signerKeyID ?? "-")")
            for f in m.files { print("  \(f.sizeBytes)\t\(f.name)") }
        }
        for r in out.reasons { print("reason: \(r.code.rawValue): \(r.message)") }
        switch out.result {
        case .applied: return
        case .refused: throw ExitCode(1)
        case .ignored: throw ExitCode(2)
        case .alreadyApplied: throw ExitCode(3)
        }
    }
}

struct ConfigValidate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate", abstract: "Validate a hallwatch.yaml: every problem at once, as file:line.")
    @Argument(help: "The configuration file.") var file: String

    func run() throws {
        do {
            _ = try ConfigLoader.load(path: file)
            print("ok: \(file)")
        } catch let e as ConfigError {
            for d in e.diagnostics { print(d.description) }
            throw ExitCode(1)
        }
    }
}

struct ConfigRollback: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Swap the current configuration back to the previous one (audited; the version floor stays).")
    @Option(help: "The configuration store.") var store = "/var/lib/hallwatch/config"
    @Option(help: "Why, for the audit log.") var reason: String

    func run() throws {
        let s = ConfigStore(root: store)
        try s.recover()
        try s.rollback(reason: reason, nowUnix: Int64(Date().timeIntervalSince1970))
        print("current: \(s.current() ?? "-") (previous: \(s.previous() ?? "-"))")
    }
}
