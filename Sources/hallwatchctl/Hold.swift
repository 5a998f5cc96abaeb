// hallwatchctl hold: evidence holds (input rules in HallwatchEvidence.HoldRequest, storage in HallwatchStorage.EvidenceHolds).
import ArgumentParser
import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchControl
import HallwatchCore
import HallwatchEvidence
import HallwatchProcess
import HallwatchStorage
import Logging

struct Hold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evidence holds: ranges of a camera's video that neither the pruner nor ring reuse may delete.",
        discussion: """
            A hold is stored in every recording disk's index (and holds.json beside it) and pins the slots holding
            the range, past maxAge if need be, until it is released or its --until passes. A range that reaches
            past what is recorded also pins the camera's open slot and each slot it takes next while the range
            lasts. TIME is ISO 8601 UTC (2026-11-29T20:52:00Z), `now`, or relative to now (-30s, -5m, -2h, +30d).
            """,
        subcommands: [HoldAdd.self, HoldList.self, HoldRelease.self])
}

/// Publishes the current hold list, retained, if the bus answers within 2 s (the pruner republishes
/// it after every pass anyway).
func publishHolds(_ cfg: HallwatchConfig, _ holds: [EvidenceHold], logger: Logger) async {
    let bus = BusClient(
        clientID: "hallwatchctl-hold-\(getpid())", socketPath: cfg.bus.socket, will: nil, logger: logger)
    do {
        try await bus.connect(timeout: .seconds(2))
        try bus.publish(
            EvidenceHoldList(holds: holds, at: SystemClocks().utcNow()), topic: BusTopics(box: cfg.box).holds,
            retain: true)
        await bus.close()
    } catch {
        FileHandle.standardError.write(
            Data(
                "note: the bus at \(cfg.bus.socket) did not answer; the pruner publishes the holds at its next pass\n"
                    .utf8))
    }
}

struct HoldAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Place a hold; prints its id. Refused when it would pin more than retention.maxHoldPercent of a disk."
    )
    @OptionGroup var options: ConfigOption
    @Option(help: "Camera id.") var camera: String
    @Option(parsing: .unconditional, help: "Start of the held range (TIME).") var from: String
    @Option(parsing: .unconditional, help: "End of the held range (TIME); may be in the future.") var to: String
    @Option(help: "Why (at most 500 bytes).") var reason: String
    @Option(name: .customLong("case"), help: "Case or incident id (at most 100 bytes).") var caseID: String
    @Option(parsing: .unconditional, help: "The hold lapses at this TIME (default: until released).") var until: String?

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .error)
        let logger = Logger(label: "hallwatchctl")
        let cfg = ProcessSetup.loadConfig(options.config, logger: logger)
        let now = SystemClocks().utcNow()
        let request: HoldRequest
        do {
            request = try HoldRequest(
                camera: camera, from: from, to: to, until: until, reason: reason, caseID: caseID, now: now)
        } catch {
            throw ValidationError(error.description)
        }
        let id = request.camera
        let disks = NamedDisk.all(of: cfg)
        guard
            cfg.camera(id) != nil
                || disks.contains(where: {
                    (try? RecordingReader(at: $0.path, box: cfg.box).cameras().contains(id)) == true
                })
        else {
            throw ValidationError("unknown camera '\(id)': not in the configuration and no video of it on the disks")
        }
        let hold = request.hold(createdAt: now)
        do {
            let placed = try EvidenceHolds.add(
                hold, disks: disks, box: cfg.box, maxHoldPercent: cfg.retention.maxHoldPercent, now: now, logger: logger
            )
            print(
                "hold \(hold.id) placed: \(id) \(hold.from.iso8601) – \(hold.to.iso8601), case \(hold.caseID)\(hold.until.map { ", until \($0.iso8601)" } ?? "")"
            )
            for d in placed.disks {
                print(
                    String(
                        format: "  %@: pins %d slots; %d of %d slots held in all (%.0f %%)", d.name,
                        d.impact.slotsOfHold,
                        d.impact.pinnedSlots, d.impact.slotCount, d.impact.percent))
            }
            await publishHolds(
                cfg, (try? EvidenceHolds.list(disks: disks, box: cfg.box, logger: logger)) ?? [hold], logger: logger)
        } catch {
            FileHandle.standardError.write(Data("hold add: \(error.message)\n".utf8))
            throw ExitCode(ExitStatus.failure)
        }
    }
}

struct HoldList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List holds (active, expired and released).")
    @OptionGroup var options: ConfigOption
    @Flag(help: "Print JSON for scripts.") var json = false

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .error)
        let logger = Logger(label: "hallwatchctl")
        let cfg = ProcessSetup.loadConfig(options.config, logger: logger)
        let holds: [EvidenceHold]
        do { holds = try EvidenceHolds.list(disks: NamedDisk.all(of: cfg), box: cfg.box, logger: logger) } catch {
            FileHandle.standardError.write(Data("hold list: \(error)\n".utf8))
            throw ExitCode(ExitStatus.failure)
        }
        let now = SystemClocks().utcNow()
        if json {
            let e = JSONEncoder()
            e.outputFormatting = [.sortedKeys, .prettyPrinted]
            print(String(decoding: try e.encode(holds), as: UTF8.self))
            return
        }
        if holds.isEmpty {
            print("no holds")
            return
        }
        for h in holds {
            // Holds may come from another tool or an older version: print them with control characters escaped.
            print(
                "\(h.id)  \(h.status(at: now))  \(h.camera)  \(h.from.iso8601) – \(h.to.iso8601)  case \(printable(h.caseID))"
                    + (h.until.map { "  until \($0.iso8601)" } ?? "")
                    + (h.releasedAt.map { "  released \($0.iso8601)" } ?? "")
                    + "  \(printable(h.reason))")
        }
    }
}

struct HoldRelease: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release", abstract: "Release a hold: its video is subject to the retention policy again.")
    @OptionGroup var options: ConfigOption
    @Argument(help: "Hold id (h-…).") var id: String

    func run() async throws {
        ProcessSetup.bootstrapLogging(default: .error)
        let logger = Logger(label: "hallwatchctl")
        let cfg = ProcessSetup.loadConfig(options.config, logger: logger)
        let disks = NamedDisk.all(of: cfg)
        do {
            guard
                try EvidenceHolds.release(id, disks: disks, box: cfg.box, now: SystemClocks().utcNow(), logger: logger)
            else {
                FileHandle.standardError.write(
                    Data("hold release: no hold \(id) on any disk (see hallwatchctl hold list)\n".utf8))
                throw ExitCode(ExitStatus.failure)
            }
        } catch let e as StorageError {
            FileHandle.standardError.write(Data("hold release: \(e.message)\n".utf8))
            throw ExitCode(ExitStatus.failure)
        }
        print("hold \(id) released; the pruner applies the retention policy to its video at its next pass")
        await publishHolds(
            cfg, (try? EvidenceHolds.list(disks: disks, box: cfg.box, logger: logger)) ?? [], logger: logger)
    }
}
