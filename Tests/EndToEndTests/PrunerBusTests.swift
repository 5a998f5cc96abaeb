import Foundation
import HallwatchBus
import HallwatchCore
import HallwatchStorage
import Logging
import Synchronization
import Testing

/// The running `hallwatch-pruner` on a real mosquitto: its retained state and each deletion on the bus,
/// the hold list after `hallwatchctl hold add`, and a pass at once on the recorder's low-free-slots event
/// (the period is an hour, so only the event can explain a second pass).
@Suite("Pruner on the bus", .serialized)
struct PrunerBusTests {
    final class Inbox: @unchecked Sendable {
        let messages = Mutex<[BusMessage]>([])
        var task: Task<Void, Never>?
        init(_ stream: AsyncStream<BusMessage>) {
            task = Task { [weak self] in for await m in stream { self?.messages.withLock { $0.append(m) } } }
        }
        func decoded<T: Decodable>(_ t: T.Type, topic: String) -> [T] {
            messages.withLock { $0.filter { $0.topic == topic }.compactMap { try? $0.decode(T.self) } }
        }
    }

    @Test func stateDeletionsHoldsAndTheLowFreeSlotsEvent() async throws {
        let root =
            FileManager.default.temporaryDirectory.path + "/hallwatch-e2e-prunebus-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let (_, config) = try PrunerCrashTests.makeDisk(root, period: "1h")
        let socket = root + "/bus.sock"
        try BrokerConfig(socketPath: socket, user: "root").write(to: root + "/mosquitto.conf")
        let broker = try Child(
            "mosquitto", "/usr/sbin/mosquitto", ["-c", root + "/mosquitto.conf"], logDirectory: root)
        defer {
            kill(broker.pid, SIGKILL)
            broker.process.waitUntilExit()
        }
        #expect(E2E.waitFor(10) { FileManager.default.fileExists(atPath: socket) })
        let topics = BusTopics(box: PrunerCrashTests.box)
        let client = BusClient(clientID: "e2e-prune-watch", socketPath: socket, will: nil, logger: Logger(label: "e2e"))
        try await client.connect(timeout: .seconds(10))
        let inbox = Inbox(client.subscribe(topics.root + "/#"))

        let pruner = try Child("pruner", E2E.tool("hallwatch-pruner"), ["--config", config], logDirectory: root)
        defer { pruner.stop() }
        #expect(
            E2E.waitFor(20) { !inbox.decoded(PrunerState.self, topic: topics.prunerState).isEmpty }, "\(pruner.log)")
        let first = try #require(inbox.decoded(PrunerState.self, topic: topics.prunerState).first)
        #expect(first.slotsFreed == 3 && first.bytesFreed > 0 && !first.dryRun)
        #expect(first.cameras.map(\.camera.rawValue) == ["cam-k"])
        #expect(first.cameras.first?.oldestRecording != nil && (first.cameras.first?.daysRetained ?? 0) > 1.5)
        #expect(first.disks.first?.freeSlots == 11)
        #expect(E2E.waitFor(5) { inbox.decoded(DeletionRecord.self, topic: topics.deletions).count == 3 })
        #expect(
            inbox.decoded(DeletionRecord.self, topic: topics.deletions).allSatisfy {
                $0.rule == "maxAge" && $0.camera.rawValue == "cam-k"
            })

        // A hold placed with hallwatchctl appears, retained, on the holds topic.
        let add = try E2E.run(
            E2E.tool("hallwatchctl"),
            [
                "hold", "add", "--config", config, "--camera", "cam-k", "--from", "-3d", "--to", "-2d",
                "--reason", "fight in the hallway", "--case", "2026-17",
            ])
        #expect(add.status == 0, "\(add.stderr)")
        // A reason with a terminal escape sequence is refused before anything is stored.
        let hostile = try E2E.run(
            E2E.tool("hallwatchctl"),
            [
                "hold", "add", "--config", config, "--camera", "cam-k", "--from", "-3d", "--to", "-2d",
                "--reason", "ok\u{1B}[2J", "--case", "2026-18",
            ])
        #expect(hostile.status != 0 && hostile.stderr.contains("control characters"), "\(hostile.stderr)")
        #expect(E2E.waitFor(10) { inbox.decoded(EvidenceHoldList.self, topic: topics.holds).last?.holds.count == 1 })
        let list = try E2E.run(E2E.tool("hallwatchctl"), ["hold", "list", "--config", config])
        #expect(list.stdout.contains("active") && list.stdout.contains("2026-17"))

        // The recorder's event makes the pruner run at once (its period is an hour).
        try client.publish(
            LowFreeSlotsEvent(disk: "disk0", freeSlots: 0, reserveSlots: 3, at: SystemClocks().utcNow()),
            topic: topics.lowFreeSlots("disk0"), retain: false)
        #expect(
            E2E.waitFor(15) { inbox.decoded(PrunerState.self, topic: topics.prunerState).count >= 2 }, "\(pruner.log)")
        let second = try #require(inbox.decoded(PrunerState.self, topic: topics.prunerState).last)
        #expect(second.lastRunAt > first.lastRunAt && second.slotsFreed == 0)
        #expect(second.cameras.first?.heldSlots == 1)

        let release = try E2E.run(
            E2E.tool("hallwatchctl"),
            [
                "hold", "release", "--config", config,
                inbox.decoded(EvidenceHoldList.self, topic: topics.holds).last!.holds[0].id,
            ])
        #expect(release.status == 0, "\(release.stderr)")
        #expect(
            E2E.waitFor(10) {
                inbox.decoded(EvidenceHoldList.self, topic: topics.holds).last?.holds.first?.releasedAt != nil
            })
        await client.close()
    }
}
