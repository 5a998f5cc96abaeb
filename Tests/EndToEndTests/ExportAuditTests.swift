import Foundation
import HallwatchCore
import Testing

/// A fresh user's finding: `hallwatchctl export --out/--bundle` wrote video that no audit log recorded. Now every
/// CLI export is first put into the box's audit log: an ``AuditRequest`` retained on the bus, which
/// `hallwatch-web` (the log's owner) appends and clears (its side: `cliExportsAreAuditedOnce` in the web's tests).
/// Real processes: simcam, mosquitto, recorder and a worker under the supervisor, the built `hallwatchctl`.
@Suite("CLI exports are audited", .serialized)
struct ExportAuditTests {
    @Test func anExportIsAuditedBeforeItsVideoIsWrittenAndRefusedWithoutTheBus() async throws {
        let box = try TestBox("audit", cameras: [.init(id: "lobby", file: "h264-bframes.mp4")])
        try box.start()
        defer { box.stop() }
        #expect(E2E.waitFor(45) { box.recordedEnd("lobby") != nil }, "not recording: \(box.logTails())")
        let topics = BusTopics(box: box.name)
        let log = try await BusLog(socket: box.dir + "/bus.sock", topics: [topics.allAuditRequests])
        let ctl = E2E.tool("hallwatchctl")
        let out = box.dir + "/clip.mp4"
        let ex = try E2E.run(
            ctl,
            ["export", "--config", box.configPath, "--camera", "lobby", "--from", "-1m", "--to", "now", "--out", out])
        #expect(ex.status == 0, "\(ex.stderr)")
        #expect(FileManager.default.fileExists(atPath: out))
        // No web in this box: the request waits on the broker, retained, for the web to log it.
        #expect(ex.stderr.contains("waits on the bus for hallwatch-web"), "\(ex.stderr)")
        #expect(E2E.waitFor(30) { !requests(log, topics).isEmpty })
        let request = try #require(requests(log, topics).first)
        let user = String(cString: getpwuid(getuid())!.pointee.pw_name)
        #expect(request.user == user && request.action == "export.file" && request.object == "lobby")
        #expect(AuditRequest.isValidID(request.id))
        #expect(request.details.hasSuffix(" to \(out)") && request.details.contains("–"), "\(request.details)")
        // A late subscriber (the web, started later) still gets it: it is retained.
        let late = try await BusLog(socket: box.dir + "/bus.sock", topics: [topics.auditRequest(request.id)])
        #expect(E2E.waitFor(30) { !late.all(AuditRequest.self, topic: topics.auditRequest(request.id)).isEmpty })

        // Without the bus nothing is exported (deny by default), unless --no-audit (a disk away from its box).
        let noBus = box.dir + "/nobus.yaml"
        try String(contentsOfFile: box.configPath, encoding: .utf8)
            .replacingOccurrences(of: "socket: \(box.dir)/bus.sock", with: "socket: \(box.dir)/nothing.sock")
            .write(toFile: noBus, atomically: true, encoding: .utf8)
        let refusedOut = box.dir + "/refused.mp4"
        let refused = try E2E.run(
            ctl,
            ["export", "--config", noBus, "--camera", "lobby", "--from", "-1m", "--to", "now", "--out", refusedOut])
        #expect(refused.status == 69, "\(refused.stderr)")
        #expect(refused.stderr.contains("audit.unavailable") && refused.stderr.contains("nothing was exported"))
        #expect(!FileManager.default.fileExists(atPath: refusedOut))
        let unaudited = try E2E.run(
            ctl,
            [
                "export", "--config", noBus, "--camera", "lobby", "--from", "-1m", "--to", "now", "--out", refusedOut,
                "--no-audit",
            ])
        #expect(unaudited.status == 0 && unaudited.stderr.contains("not audited (--no-audit): export.file"))
        #expect(requests(log, topics).count == 1, "only the audited export asked")
    }

    func requests(_ log: BusLog, _ topics: BusTopics) -> [AuditRequest] {
        log.messages.withLock { m in
            m.filter { $0.topic.hasPrefix(topics.auditRequest("")) && !$0.payload.isEmpty }
                .compactMap { try? BusCoding.decode(AuditRequest.self, from: $0.payload) }
        }
    }
}
