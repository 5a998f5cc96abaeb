// hallwatchctl config: the USB config drop's installer and district-IT tools (issue 17). Logic lives in
// HallwatchProvision; this file parses arguments and prints.
import ArgumentParser
import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchProcess
import HallwatchProvision

struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "USB config bundles: verify a stick, validate a file, roll back.",
        subcommands: [
            ConfigKeygen.self, ConfigVerify.self, ConfigValidate.self, ConfigBundle.self, ConfigReceipts.self,
            ConfigRollback.self,
        ])
}

struct ConfigKeygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a minisign key pair (district signing key, or a box's receipt key) with libsodium.",
        discussion: """
            The equivalent of `minisign -G -W -p PUBLIC -s SECRET`: the secret key is written unencrypted (mode
            0600), so keep a district key offline; sign with `minisign -S -s SECRET -m FILE`. Existing files are
            never overwritten.
            """)
    @Option(help: "Where the public key goes.") var publicKey: String
    @Option(help: "Where the secret key goes (mode 0600).") var secretKey: String

    func run() throws {
        let key = try InstallerTools.writeKeyPair(publicPath: publicKey, secretPath: secretKey)
        print("key id \(key.keyIDText): public \(publicKey), secret \(secretKey)")
    }
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
        case .refused, .reverted: throw ExitCode(1)
        case .ignored: throw ExitCode(2)
        case .alreadyApplied: throw ExitCode(3)
        }
    }
}

struct ConfigValidate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate", abstract: "Validate a hallwatch.yaml: every problem at once, as file:line.",
        discussion: """
            The same checks every process and the provisioner run (HallwatchConfig's ConfigLoader), in one run.
            Exit codes: 0 valid; 78 (EX_CONFIG) refused, one `file:line: message` line per problem; 66
            (EX_NOINPUT) the file does not exist or cannot be read.
            """)
    @Argument(help: "The configuration file.") var file: String

    func run() throws {
        do {
            _ = try ConfigLoader.load(path: file)
            print("ok: \(file)")
        } catch let e as ConfigError {
            for d in e.diagnostics { print(d.description) }
            throw ExitCode(e.code == "config.unreadable" ? ExitStatus.noInput : ExitStatus.config)
        }
    }
}

struct ConfigRollback: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollback",
        abstract: "Swap the current configuration back to the previous one (audited; the version floor stays).")
    @Option(help: "The configuration store.") var store = "/var/lib/hallwatch/config"
    @Option(help: "Why, for the audit log.") var reason: String
    @Option(help: "The switch spool that wakes hallwatch-config.path (written only when it exists).")
    var switchSpool = CaptureUnitSync.defaultSpool

    func run() throws {
        let s = ConfigStore(root: store, switchSpool: switchSpool)
        try s.withLock { () throws(ProvisionError) in
            try s.recover()
            try s.rollback(reason: reason, nowUnix: Int64(Date().timeIntervalSince1970))
        }
        print("current: \(s.current() ?? "-") (previous: \(s.previous() ?? "-"))")
        // Every process reads its configuration again through `current` (the provisioner's announcement).
        if let release = s.current(),
            let cfg = try? ConfigLoader.load(path: "\(store)/releases/\(release)/hallwatch.yaml")
        {
            HealthGate().announce(
                ConfigAnnouncement(
                    version: release, bundleVersion: s.state().versionFloor, cause: "rollback",
                    at: UTCMicros(Int64(Date().timeIntervalSince1970) * 1_000_000)),
                busSocket: cfg.bus.socket, box: cfg.box)
        }
    }
}

struct ConfigBundle: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Write DIR/bundle.txt listing DIR/files/ (sizes, SHA-256); sign it yourself with minisign.",
        discussion: """
            DIR is HALLWATCH/<building> on the stick (its name is the building). Never touches a key: sign with
            `minisign -S -s KEY -m DIR/bundle.txt -x DIR/bundle.txt.minisig` (or signify-openbsd -S).
            """)
    @Argument(help: "The building's folder, HALLWATCH/<building>.") var directory: String
    @Option(help: "The district id.") var district: String
    @Option(help: "any, adopt, or serials joined by commas.") var boxes = "any"
    @Option(help: "The bundle version; above every version applied before.") var version: Int
    @Option(help: "Expiry, YYYY-MM-DDTHH:MM:SSZ.") var expires: String
    @Option(help: "Issue time, YYYY-MM-DDTHH:MM:SSZ (default: now).") var issued: String?
    @Option(help: "The keyring version the bundle needs.") var keyring = 1

    func run() throws {
        guard let expiresUnix = BundleManifest.rfc3339(expires) else {
            throw ValidationError("--expires: not UTC RFC 3339")
        }
        let issuedUnix =
            try issued.map { (t: String) throws -> Int64 in
                guard let v = BundleManifest.rfc3339(t) else { throw ValidationError("--issued: not UTC RFC 3339") }
                return v
            } ?? Int64(Date().timeIntervalSince1970)
        let b: BundleManifest.Boxes =
            boxes == "any" ? .any : boxes == "adopt" ? .adopt : .serials(boxes.split(separator: ",").map(String.init))
        let m = try InstallerTools.writeManifest(
            buildingDirectory: directory, district: district, boxes: b, version: version, issuedUnix: issuedUnix,
            expiresUnix: expiresUnix, keyringVersion: keyring)
        print("wrote \(directory)/bundle.txt: \(m.building) version \(m.version), \(m.files.count) files")
    }
}

struct ConfigReceipts: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receipts", abstract: "Print the district inventory from a stick's receipts, as CSV.")
    @Argument(help: "The stick's block device or an image file.") var stick: String
    @Flag(help: "Run the reader without its sandbox (no root needed).") var noSandbox = false
    @Option(help: "A directory of the boxes' public keys (*.pub): each receipt's signature is checked against them.")
    var boxKeys: String?

    func run() throws {
        let sandbox = noSandbox ? ReaderSandbox(prefix: [], deadline: .seconds(10)) : .default
        let volume = StickVolume.detect(path: stick)
        guard let source = volume.source(device: stick, sandbox: sandbox) else {
            throw ValidationError("not a FAT or exFAT stick (\(volume))")
        }
        var keys: [Minisign.PublicKey] = []
        if let boxKeys {
            for name in try FileManager.default.contentsOfDirectory(atPath: boxKeys).sorted()
            where name.hasSuffix(".pub") {
                keys.append(
                    try Minisign.PublicKey(text: try String(contentsOfFile: "\(boxKeys)/\(name)", encoding: .utf8)))
            }
        }
        print(try InstallerTools.inventoryCSV(stick: source, boxKeys: keys), terminator: "")
    }
}
