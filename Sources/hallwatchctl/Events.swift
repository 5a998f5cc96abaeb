// hallwatchctl event-source / events: door and alarm event sources and the event store (HallwatchWeb's EventStore).
import ArgumentParser
import Foundation
import HallwatchCore
import HallwatchProcess
import HallwatchWeb

/// The state directory option shared by the event commands.
struct EventStateOption: ParsableArguments {
    @Option(help: "The web's state directory (web.stateDirectory).") var stateDirectory = "/var/lib/hallwatch-web"

    /// The event store in the state directory; fails when the web never ran there.
    func store() throws -> EventStore {
        guard FileManager.default.fileExists(atPath: stateDirectory + "/web.sqlite") else {
            FileHandle.standardError.write(
                Data("no web database in \(stateDirectory): start hallwatch-web once\n".utf8))
            throw ExitCode(ExitStatus.failure)
        }
        return try EventStore(path: EventService.storePath(stateDirectory: stateDirectory))
    }

    /// Records `action` in the web's audit log as done by this command's user.
    func audit(_ action: String, object: String, details: String = "") async throws {
        let database = try WebDatabase(path: stateDirectory + "/web.sqlite")
        let log = AuditLog(database: database, clocks: SystemClocks(), filePath: stateDirectory + "/audit.log")
        let user = ProcessInfo.processInfo.environment["SUDO_USER"] ?? ProcessInfo.processInfo.userName
        try await log.record(
            actor: "hallwatchctl:\(user)", address: "-", action: action, object: object, details: details)
    }
}

struct EventSource: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "event-source",
        abstract: "Sources of door and alarm events (access-control adapters) and their bearer tokens.",
        discussion: """
            Each source POSTs CloudEvents to https://<box>/api/v1/events with its own bearer token; its events'
            `source` must be its NAME. A token is random, printed once, and stored only as its SHA-256. `add` on a
            live source rotates: the new token and the previous one both work until the next `add` or `revoke`.
            Every change is written to the web's audit log.
            """,
        subcommands: [EventSourceAdd.self, EventSourceRevoke.self, EventSourceList.self])
}

struct EventSourceAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Make a source (or rotate its token); prints the new token once.")
    @OptionGroup var state: EventStateOption
    @Argument(help: "The source's name (its events' CloudEvents source): letters, digits, . _ : / -.") var name: String
    @Option(help: "Event types its token may send, comma-separated (default: any).") var types: String?
    @Option(help: "Door ids its events may name, comma-separated (default: any).") var doors: String?
    @Option(help: "Client IP addresses its token may send from, comma-separated (default: any).") var addresses: String?

    func run() async throws {
        let input: EventSourceInput
        do { input = try EventSourceInput(name: name, types: types, doors: doors, addresses: addresses) } catch {
            throw ValidationError(error.message)
        }
        let token = try state.store().addSource(
            input.name, types: input.types, doors: input.doors, addresses: input.addresses,
            now: SystemClocks().utcNow())
        try await state.audit("eventsource.token", object: input.name, details: input.summary)
        print(token)
        FileHandle.standardError.write(
            Data("token for \(input.name) printed once; the box keeps only its hash\n".utf8))
    }
}

struct EventSourceRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Revoke a source and every token of it.")
    @OptionGroup var state: EventStateOption
    @Argument(help: "The source's name.") var name: String

    func run() async throws {
        guard try state.store().revokeSource(name, now: SystemClocks().utcNow()) else {
            FileHandle.standardError.write(Data("event-source revoke: no live source '\(printable(name))'\n".utf8))
            throw ExitCode(ExitStatus.failure)
        }
        try await state.audit("eventsource.revoke", object: name)
        print("source \(name) revoked")
    }
}

struct EventSourceList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List sources.")
    @OptionGroup var state: EventStateOption

    func run() async throws {
        let sources = try state.store().sources()
        if sources.isEmpty { print("no event sources") }
        for s in sources {
            let live = s.revokedMicros.map { "revoked \(UTCMicros($0).iso8601)" } ?? "\(s.liveTokens) live token(s)"
            print(
                "\(s.name)  \(live)  types \(s.types.isEmpty ? "any" : s.types.joined(separator: ","))"
                    + "  doors \(s.doors.isEmpty ? "any" : s.doors.joined(separator: ","))"
                    + "  addresses \(s.addresses.isEmpty ? "any" : s.addresses.joined(separator: ","))")
        }
    }
}

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The stored door and alarm events.", subcommands: [EventsList.self])
}

struct EventsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Events whose own time is in [--from, --to), newest first.")
    @OptionGroup var state: EventStateOption
    @Option(parsing: .unconditional, help: "Start (TIME: ISO 8601 UTC, now, -2h…).") var from = "-24h"
    @Option(parsing: .unconditional, help: "End (TIME).") var to = "+1h"
    @Option(help: "Only this door.") var door: String?
    @Option(help: "Only this type.") var type: String?
    @Option(help: "Only events concerning this camera.") var camera: String?
    @Option(help: "Most events (1–100000).") var limit = 1000
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        let now = SystemClocks().utcNow()
        guard let start = TimeExpression.parse(from, now: now) else { throw ValidationError("--from: not a TIME") }
        guard let end = TimeExpression.parse(to, now: now) else { throw ValidationError("--to: not a TIME") }
        guard start < end else { throw ValidationError("--from must be before --to") }
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit: 1–100000") }
        let events = try state.store().events(
            .init(from: start, to: end, camera: camera, door: door, type: type, limit: limit))
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try e.encode(events), as: UTF8.self))
            return
        }
        if events.isEmpty { print("no events") }
        for e in events {
            print(
                "\(e.time)  \(e.type)  door \(e.door ?? "-")  \(printable(e.source))/\(printable(e.id))"
                    + "  received \(e.receivedAt)\(e.late ? " (late)" : "")"
                    + (e.cameras.isEmpty ? "" : "  cameras \(e.cameras.joined(separator: ","))")
                    + (e.holds.isEmpty ? "" : "  holds \(e.holds.joined(separator: ","))"))
        }
    }
}
