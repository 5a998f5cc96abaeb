import Foundation
import HallwatchCore
import Testing

/// A fresh user's finding: a typo in the configuration plus a capture worker crash stopped that camera's
/// recording (the worker exited 78 in a loop) while `hallwatchctl status` still said `online`. Now a worker
/// restarted while the file is refused records on its last good configuration (`LastGoodConfig`), raises
/// `config.invalid` naming the file and line, the status says both, and it restarts on the file by itself once the
/// file is repaired; a worker that cannot start at all shows `offline` with `capture.down`. Real processes: simcam, mosquitto, recorder, workers under the supervisor,
/// SIGKILL.
@Suite("A refused configuration and a worker crash", .serialized)
struct RefusedConfigTests {
    static let cameras = [TestBox.Camera(id: "lobby", file: "h264-bframes.mp4"), .init(id: "gym", file: "hevc.mp4")]

    func recordingSince(_ box: TestBox, _ camera: String, _ instant: UTCMicros, seconds: Double = 5) -> Bool {
        (box.recordedEnd(camera)?.micros ?? 0) > instant.micros + Int64(seconds * 1e6)
    }

    /// `hallwatchctl status --json` read through the refused file itself (it uses what of it loads and warns),
    /// the camera's row.
    func statusRow(_ box: TestBox, _ camera: String) throws -> [String: Any]? {
        let out = try E2E.run(E2E.tool("hallwatchctl"), ["status", "--config", box.configPath, "--json"])
        #expect(out.status == 0, "\(out.stderr)")
        #expect(
            out.stderr.contains("warning: \(box.configPath) is refused (1 problem; `hallwatchctl config validate"),
            "\(out.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [String: Any]
        let rows = json?["cameras"] as? [[String: Any]] ?? []
        return rows.first { $0["camera"] as? String == camera }
    }

    @Test func aWorkerKilledWhileTheFileIsRefusedKeepsRecordingOnItsLastGoodConfiguration() async throws {
        let box = try TestBox("refused", cameras: Self.cameras)
        try box.start()
        defer { box.stop() }
        let started = SystemClocks().utcNow()
        #expect(
            E2E.waitFor(45) { Self.cameras.allSatisfy { recordingSince(box, $0.id, started, seconds: 1) } },
            "not recording: \(box.logTails())")
        let topics = BusTopics(box: box.name)
        let log = try await BusLog(socket: box.dir + "/bus.sock", topics: [topics.errors])
        let good = try String(contentsOfFile: box.configPath, encoding: .utf8)
        let lastGood = box.dir + "/run/capture-lobby.last-good.json"
        #expect(FileManager.default.fileExists(atPath: lastGood), "the worker kept no last good configuration")

        // The typo, then the crash.
        let bad = good.replacingOccurrences(of: "  maxFragmentDuration: 1s", with: "  maxFragmentDuraton: 1s")
        let typoLine = try #require(bad.split(separator: "\n").firstIndex { $0.contains("maxFragmentDuraton") }) + 1
        try bad.write(toFile: box.configPath, atomically: true, encoding: .utf8)
        let killed = try #require(box.pid("capture-lobby"))
        let gymPid = box.pid("capture-gym")
        kill(killed, SIGKILL)
        let killedAt = SystemClocks().utcNow()

        // It restarts on its last good configuration and records; the alarm names the file and the line.
        #expect(E2E.waitFor(20) { (box.pid("capture-lobby") ?? killed) != killed }, "not restarted")
        let restarted = box.pid("capture-lobby")
        #expect(
            E2E.waitFor(30) { recordingSince(box, "lobby", killedAt) }, "lobby stopped recording: \(box.logTails())")
        let alarms = log.all(ErrorEvent.self, topic: topics.errors).filter { $0.code == "config.invalid" }
        let alarm = try #require(alarms.first, "no config.invalid on the bus")
        #expect(alarm.camera == CameraID("lobby") && alarm.process == "capture-lobby")
        #expect(
            alarm.message.hasPrefix(
                "the configuration is refused: \(box.configPath):\(typoLine): unknown key 'maxFragmentDuraton' in capture"
            ),
            "\(alarm.message)")
        #expect(alarm.message.contains("running on the last good one"), "\(alarm.message)")
        // Not a loop: the same worker keeps running; the other camera's worker never noticed.
        try await Task.sleep(for: .seconds(3))
        #expect(box.pid("capture-lobby") == restarted && box.pid("capture-gym") == gymPid)
        // The gap between the run the SIGKILL ended and the one the restarted worker records.
        let runs = try box.library.runs(camera: try #require(CameraID("lobby"))).sorted { $0.startUTC < $1.startUTC }
        let before = try #require(runs.last { $0.startUTC < killedAt })
        let after = try #require(runs.first { $0.startUTC > killedAt })
        let gap = Double(after.startUTC.micros - before.endUTC.micros) / 1e6
        print(
            "refused configuration: lobby unrecorded for \(String(format: "%.2f", gap)) s across the SIGKILL and restart"
        )
        #expect(gap < 10, "lobby's recording has a gap of \(gap) s")
        // The status: online (it records), the alarm as the reason.
        let row = try #require(try statusRow(box, "lobby"))
        let state = row["state"] as? [String: Any]
        #expect(state?["state"] as? String == "online", "\(row)")
        #expect((state?["reason"] as? [String: Any])?["code"] as? String == "config.invalid", "\(row)")

        // The file repaired: the worker notices at its next check (every 30 s) and restarts on it by itself.
        try good.write(toFile: box.configPath, atomically: true, encoding: .utf8)
        let fallbackPid = try #require(box.pid("capture-lobby"))
        #expect(
            E2E.waitFor(60) { (box.pid("capture-lobby") ?? fallbackPid) != fallbackPid },
            "the worker on its last good configuration did not restart on the repaired file: \(box.logTails())")
        let workerLog = try String(contentsOfFile: box.dir + "/run/logs/capture-lobby.log", encoding: .utf8)
        #expect(workerLog.contains("the configuration loads again: restarting on it"))
        let repairedAt = SystemClocks().utcNow()
        #expect(E2E.waitFor(30) { recordingSince(box, "lobby", repairedAt, seconds: 2) }, "\(box.logTails())")

        // Without a last good configuration the worker cannot start: the status says offline, capture.down.
        try bad.write(toFile: box.configPath, atomically: true, encoding: .utf8)
        try FileManager.default.removeItem(atPath: lastGood)
        kill(try #require(box.pid("capture-lobby")), SIGKILL)
        #expect(
            E2E.waitFor(20) {
                (try? String(contentsOfFile: box.dir + "/run/logs/capture-lobby.log", encoding: .utf8))?
                    .contains("no last good configuration at \(lastGood)") == true
            })
        let down = try #require(try statusRow(box, "lobby"))
        let downState = down["state"] as? [String: Any]
        #expect(downState?["state"] as? String == "offline", "\(down)")
        #expect((downState?["reason"] as? [String: Any])?["code"] as? String == "capture.down", "\(down)")

        // The file repaired again: the supervisor's next start takes it and recording resumes.
        try good.write(toFile: box.configPath, atomically: true, encoding: .utf8)
        let fixedAt = SystemClocks().utcNow()
        #expect(E2E.waitFor(30) { recordingSince(box, "lobby", fixedAt, seconds: 2) }, "\(box.logTails())")
        #expect(E2E.waitFor(10) { FileManager.default.fileExists(atPath: lastGood) })
        #expect(recordingSince(box, "gym", fixedAt, seconds: 0))
    }
}
