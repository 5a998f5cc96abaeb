// hallwatchctl user / audit: the web's accounts and audit log (HallwatchWeb).
import ArgumentParser
import Foundation
import HallwatchCore
import HallwatchProcess
import HallwatchWeb

struct User: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Web page users (the users: list of /etc/hallwatch/web.yaml).", subcommands: [UserHash.self])
}

struct UserHash: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash",
        abstract:
            "Read a password from the terminal (asked twice, not echoed) or one line of standard input; print its bcrypt hash.",
        discussion: """
            The password is never an argument (arguments are visible to every user in ps and /proc). Paste the
            printed hash as the user's passwordHash. Passwords are 10 characters to 72 bytes (bcrypt reads no more).
            """)

    func run() async throws {
        let password: String
        if isatty(STDIN_FILENO) == 1 {
            guard let first = readSecret(prompt: "New password: "), let second = readSecret(prompt: "Again: ") else {
                throw ExitCode(ExitStatus.failure)
            }
            guard first == second else {
                FileHandle.standardError.write(Data("the two passwords differ\n".utf8))
                throw ExitCode(ExitStatus.failure)
            }
            password = first
        } else {
            // The first line, on bytes: in a Swift String "\r\n" is one Character, so a file saved with Windows
            // line endings kept its "\r\n" in the hash (a fresh user's report).
            var bytes = [UInt8](FileHandle.standardInput.readData(ofLength: 4096))
            if let newline = bytes.firstIndex(of: 0x0A) { bytes = Array(bytes[..<newline]) }
            if bytes.last == 0x0D { bytes.removeLast() }
            password = String(decoding: bytes, as: UTF8.self)
        }
        do {
            print(try PasswordHashing.hash(password))
        } catch {
            FileHandle.standardError.write(Data("refused: \(error)\n".utf8))
            throw ExitCode(ExitStatus.failure)
        }
    }

    /// Reads one line from the terminal with echo off (termios), restoring the terminal after.
    func readSecret(prompt: String) -> String? {
        FileHandle.standardError.write(Data(prompt.utf8))
        var saved = termios()
        tcgetattr(STDIN_FILENO, &saved)
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
        defer {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        return readLine(strippingNewline: true)
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The web's tamper-evident audit log.", subcommands: [AuditVerify.self, AuditExport.self])
}

struct AuditVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract:
            "Check the audit log's hash chain (database and append-only file) and its signed checkpoints; name the first bad entry or checkpoint.",
        discussion: """
            Checkpoints are checked with the box's Ed25519 public key (identity.pub in the state directory, or
            --public-key: the copy a district recorded) against the database's chain: a forged checkpoint, or a
            past rewritten with every hash redone, is named. --checkpoints adds copies kept elsewhere (JSON
            lines as the bus carries them, e.g. from a district broker). Exit 0 when all is intact, 1 when
            anything is broken, 66 when nothing can be read.
            """)

    @Option(help: "The web's state directory (web.stateDirectory).") var stateDirectory = "/var/lib/hallwatch-web"
    @Option(help: "The box's identity public key file (default: identity.pub in the state directory).")
    var publicKey: String?
    @Option(help: "More signed checkpoints, one JSON object per line.") var checkpoints: String?

    func run() async throws {
        var broken = false
        var read = 0
        do {
            let key = try publicKey.map { try BoxIdentityKey.readPublicKey(path: $0) }
            let extra = try checkpoints.map { try AuditVerification.checkpoints(filePath: $0) } ?? []
            let v = try AuditVerification.verify(
                stateDirectory: stateDirectory, publicKey: key, extraCheckpoints: extra)
            read += 1
            print("database: \(v.database)")
            print("checkpoints: \(v.checkpoints)")
            if !v.intact { broken = true }
        } catch {
            print("database: cannot be read: \(error)")
        }
        do {
            let verdict = try AuditLog.verify(filePath: stateDirectory + "/audit.log")
            read += 1
            print("file: \(verdict)")
            if case .broken = verdict { broken = true }
        } catch {
            print("file: cannot be read: \(error)")
        }
        if read == 0 { throw ExitCode(ExitStatus.noInput) }
        if broken { throw ExitCode(ExitStatus.failure) }
    }
}

struct Web: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The web page's TLS identity.", subcommands: [WebCSR.self])
}

struct WebCSR: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "csr",
        abstract: "Print a certificate signing request (PEM) for the box's TLS key, for the district's CA.",
        discussion: """
            The names are those of the certificate in use (host name and web.certificateNames) unless --name is
            given. Reads the key in the state directory (root or hallwatch-web); the key never leaves it.
            """)

    @Option(help: "The web's state directory (web.stateDirectory).") var stateDirectory = "/var/lib/hallwatch-web"
    @Option(help: "A name for the certificate (DNS name or IP literal); repeatable.") var name: [String] = []

    func run() async throws {
        guard FileManager.default.fileExists(atPath: stateDirectory + "/tls.key") else {
            FileHandle.standardError.write(Data("no TLS key in \(stateDirectory): start hallwatch-web once\n".utf8))
            throw ExitCode(ExitStatus.noInput)
        }
        let identity = try TLSIdentity.read(directory: stateDirectory)
        print(try identity.signingRequestPEM(names: name.isEmpty ? identity.certificateNames : name), terminator: "")
    }
}

struct AuditExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write the audit entries of a time range as CSV to standard output.",
        discussion: "TIME is ISO 8601 UTC (2026-11-29T20:52:00Z), `now`, or relative to now (-30s, -5m, -2h, -30d).")

    @Option(help: "The web's state directory (web.stateDirectory).") var stateDirectory = "/var/lib/hallwatch-web"
    @Option(parsing: .unconditional, help: "Start (inclusive, TIME).") var from = "-30d"
    @Option(parsing: .unconditional, help: "End (exclusive, TIME).") var to = "now"

    func run() async throws {
        let now = SystemClocks().utcNow()
        guard let start = TimeExpression.parse(from, now: now), let end = TimeExpression.parse(to, now: now) else {
            FileHandle.standardError.write(Data("--from and --to: ISO 8601 UTC, now, or -30s/-5m/-2h/-30d\n".utf8))
            throw ExitCode(ExitStatus.usage)
        }
        let entries = try AuditLog.entries(databasePath: stateDirectory + "/web.sqlite", from: start, to: end)
        FileHandle.standardOutput.write(Data(AuditLog.csv(entries).utf8))
    }
}
