import Foundation
import HallwatchCore
import HallwatchStatus
import Logging
import Synchronization
import Testing

@testable import HallwatchWeb

/// The streams' state history in a real `web.sqlite` file: what it records from the status snapshots, what it
/// says a gap was caused by, what it keeps.
@Suite struct CameraHistoryTests {
    let dir = FileManager.default.temporaryDirectory.path + "/hw-history-\(UUID().uuidString.prefix(8))"
    let t0 = UTCMicros(1_800_000_000_000_000)

    func open() throws -> CameraHistory {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return CameraHistory(database: try WebDatabase(path: dir + "/web.sqlite"))
    }

    func at(_ seconds: Double) -> UTCMicros { t0.adding(micros: Int64(seconds * 1e6)) }

    func snapshot(_ seconds: Double, lobby: CameraState.State?, code: String? = nil, recorder: ProcessState.State = .up)
        -> StatusCollector.Snapshot
    {
        let lobbyID = CameraID("lobby")!
        var rows = [StatusCollector.CameraRow(camera: lobbyID)]
        if let lobby {
            var s = CameraState(camera: lobbyID, state: lobby, at: at(seconds))
            if let code { s.reason = ErrorEvent(code: code, message: "said \(code)", camera: lobbyID) }
            rows[0].state = s
        }
        return StatusCollector.Snapshot(
            box: "box1", at: at(seconds), cameras: rows,
            processes: [ProcessState(process: "recorder", state: recorder, pid: 7, at: at(seconds))])
    }

    @Test("only changes are written, once each, and a reopened history picks up where it was")
    func changesOnly() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let history = try open()
        var known: [String: CameraHistory.Change] = [:]
        var written: [CameraHistory.Change] = []
        for s in [
            snapshot(0, lobby: nil), snapshot(1, lobby: .connecting), snapshot(2, lobby: .online),
            snapshot(3, lobby: .online), snapshot(10, lobby: .offline, code: "rtsp.timeout"),
            snapshot(11, lobby: .offline, code: "rtsp.timeout"), snapshot(12, lobby: .offline, code: "rtsp.connect"),
            snapshot(20, lobby: .online, recorder: .down), snapshot(21, lobby: .online, recorder: .down),
        ] {
            let changes = CameraHistory.changes(in: s, known: &known)
            try history.record(changes)
            written += changes
        }
        #expect(
            written.map { "\($0.subject) \($0.state) \($0.code ?? "-")" } == [
                "recorder up -", "lobby online -", "lobby offline rtsp.timeout", "lobby offline rtsp.connect",
                "lobby online -", "recorder down -",
            ])
        // A new process (the web restarted) starts from what the file holds: nothing is written twice.
        let reopened = CameraHistory(database: try WebDatabase(path: dir + "/web.sqlite"))
        var again = try reopened.latest()
        #expect(again["lobby"]?.state == "online" && again["recorder"]?.state == "down")
        #expect(CameraHistory.changes(in: snapshot(30, lobby: .online, recorder: .down), known: &again).isEmpty)
    }

    @Test("a gap's cause: the camera first, then the recorder, then the box's boot; nil when nothing was seen")
    func causes() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let history = try open()
        let lobby = CameraID("lobby")!
        try history.record([
            .init(subject: "lobby", at: at(0), state: "online"),
            // 100–200 s: the camera refused; 300–400 s: the recorder was down; 500–600 s: the box booted at 550 s.
            .init(subject: "lobby", at: at(101), state: "offline", code: "rtsp.connect", message: "connection refused"),
            .init(subject: "lobby", at: at(200), state: "online"),
            .init(subject: "recorder", at: at(299), state: "down", message: "connection lost"),
            .init(subject: "recorder", at: at(400), state: "up"),
            .init(subject: "box", at: at(550), state: "boot"),
        ])
        let camera = try #require(try history.cause(of: lobby, from: at(100), to: at(200)))
        #expect(camera.cause == "camera.offline")
        #expect(camera.detail == "rtsp.connect: connection refused (from \(at(101).iso8601))")
        // A change up to 2 s before the gap's start still explains it (the fragment and the state crossed).
        #expect(try history.cause(of: lobby, from: at(300), to: at(400))?.cause == "recorder.down")
        #expect(try history.cause(of: lobby, from: at(500), to: at(600))?.cause == "box.restart")
        #expect(try history.cause(of: lobby, from: at(700), to: at(800)) == nil)
        // Another camera: the recorder's and the box's causes are everybody's; lobby's are not.
        let gym = CameraID("gym")!
        #expect(try history.cause(of: gym, from: at(100), to: at(200)) == nil)
        #expect(try history.cause(of: gym, from: at(300), to: at(400))?.cause == "recorder.down")
        // Already offline before the gap began (a camera that never came back before a restart of its worker).
        try history.record([.init(subject: "gym", at: at(650), state: "offline", code: "capture.down")])
        #expect(try history.cause(of: gym, from: at(700), to: at(800))?.detail?.hasPrefix("capture.down") == true)
    }

    @Test("pruning: older than the retention, then the oldest beyond the row bound")
    func pruning() throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let history = try open()
        try history.record(
            (0..<10).map { .init(subject: "lobby", at: at(Double($0)), state: $0 % 2 == 0 ? "online" : "offline") })
        #expect(try history.prune(before: at(3), maxRows: 100) == 3)
        #expect(try history.prune(before: at(0), maxRows: 4) == 3)
        #expect(try history.latest()["lobby"]?.at == at(9))
        // Kept: 6–9 s (7 s: offline). Pruned: 0–5 s.
        #expect(try history.cause(of: CameraID("lobby")!, from: at(7), to: at(8))?.cause == "camera.offline")
        #expect(try history.cause(of: CameraID("lobby")!, from: at(3), to: at(4)) == nil)
    }

    @Test("the watcher writes the box's boot once and the changes of the status it polls")
    func watcher() async throws {
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let history = try open()
        let status = SteppedStatus()
        status.next.withLock { $0 = snapshot(1, lobby: .online) }
        let task = Task {
            await history.watch(
                status: status, clocks: TestClocks(), maxAge: .seconds(86_400), bootTime: at(-60),
                every: .milliseconds(10), logger: Logger(label: "test"))
        }
        try await Task.sleep(for: .milliseconds(200))
        status.next.withLock { $0 = snapshot(5, lobby: .offline, code: "rtsp.timeout") }
        var latest: [String: CameraHistory.Change] = [:]
        for _ in 0..<200 {
            latest = try history.latest()
            if latest["lobby"]?.state == "offline" { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        task.cancel()
        _ = await task.value
        #expect(latest["box"] == .init(subject: "box", at: at(-60), state: "boot"))
        #expect(latest["lobby"]?.code == "rtsp.timeout" && latest["lobby"]?.at == at(5))
        #expect(latest["recorder"]?.state == "up")
        #expect(CameraHistory.bootTime().map { $0.micros > 1_500_000_000_000_000 } == true)
    }
}

/// A status source whose snapshot a test sets.
final class SteppedStatus: StatusSource {
    let next = Mutex<StatusCollector.Snapshot?>(nil)
    func snapshot(now: UTCMicros) -> StatusCollector.Snapshot {
        next.withLock { $0 } ?? StatusCollector.Snapshot(box: "box1", at: now, cameras: [])
    }
    func recentAlarms() -> [ErrorEvent] { [] }
}
