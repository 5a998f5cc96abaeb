import Foundation
import HallwatchCore
import Synchronization
import Testing

@testable import HallwatchWeb

/// Retention of `events.sqlite` on a real SQLite file (fresh-user finding: one leaked token could fill the data
/// partition): age, kept ranges (holds, exports), the per-source row budget, bounded passes and the alarms.
@Suite("hallwatch-web: event retention")
struct EventRetentionTests {
    static let day: Int64 = 86_400_000_000
    static let hour: Int64 = 3_600_000_000

    /// Stores `ids` of `source` at `times` (each through the contract's checks, one batch).
    func ingest(_ e: EventHarness, token: String, source: String = "onguard", _ events: [(String, UTCMicros)])
        async throws
    {
        let grant = try #require(try e.h.env.events!.store.grant(token: token))
        let docs = try events.map { id, t in
            // axis's token may send only door.opened and door.closed.
            let type = source == "axis" ? "door.opened" : "access.denied"
            let doc = e.event(id: id, source: source, type: type, time: t.iso8601)
            return try JSONDecoder().decode(JSONValue.self, from: Data(doc.utf8))
        }
        let answers = try await e.h.env.events!.ingest(docs, grant: grant, address: "127.0.0.1")
        #expect(answers.allSatisfy { $0.status == 201 }, "\(answers.map(\.status))")
    }

    func ids(_ store: EventStore) throws -> Set<String> {
        Set(
            try store.events(.init(from: UTCMicros(Int64.min / 2), to: UTCMicros(Int64.max / 2), limit: 1000)).map(\.id)
        )
    }

    @Test(
        "older than the longest camera retention is deleted, except inside a hold's or an export's range; the file keeps it"
    )
    func ageAndKeptRanges() async throws {
        let e = try EventHarness()
        let now = e.h.clocks.utcNow()
        let held = now.adding(micros: -40 * Self.day + Self.hour)
        let exported = now.adding(micros: -35 * Self.day)
        try await ingest(
            e, token: e.onguard,
            [
                ("old", now.adding(micros: -40 * Self.day)), ("held", held), ("exported", exported),
                ("edge", now.adding(micros: -30 * Self.day + 60_000_000)), ("recent", now.adding(micros: -Self.day)),
            ])
        let alarms = Mutex<[ErrorEvent]>([])
        let kept: [Range<Int64>] = [
            held.micros - 5_000_000..<held.micros + 20_000_000, exported.micros..<exported.micros + Self.hour,
        ]
        let retention = EventRetention(
            store: e.h.env.events!.store, policy: .init(maxAge: .seconds(30 * 86_400)), clocks: e.h.clocks,
            kept: { kept }, alarm: { a in alarms.withLock { $0.append(a) } }, logger: .init(label: "test"))
        let counts = try await retention.pass()
        #expect(counts.aged == 1 && counts.total == 1 && !counts.more)
        #expect(try ids(e.h.env.events!.store) == ["held", "exported", "edge", "recent"])
        // A day on, the edge event is older than 30 d too; the kept ones stay.
        e.h.clocks.advance(seconds: 86_400)
        #expect(try await retention.pass().aged == 1)
        // Reopened from the file: the deletions were committed.
        let reopened = try EventStore(path: e.path)
        #expect(try ids(reopened) == ["held", "exported", "recent"])
        #expect(alarms.withLock { $0.isEmpty })
    }

    @Test("a source over its row budget loses its oldest events, at most rowsPerPass a pass, with events.budget")
    func rowBudget() async throws {
        let e = try EventHarness()
        let now = e.h.clocks.utcNow()
        try await ingest(
            e, token: e.onguard, (0..<20).map { ("f\($0)", now.adding(micros: Int64($0 - 30) * 1_000_000)) })
        try await ingest(e, token: e.axis, source: "axis", [("a0", now.adding(micros: -Self.hour))])
        var policy = EventRetention.Policy(maxAge: .seconds(30 * 86_400))
        policy.rowBudget = 12
        policy.rowsPerPass = 5
        let alarms = Mutex<[ErrorEvent]>([])
        let retention = EventRetention(
            store: e.h.env.events!.store, policy: policy, clocks: e.h.clocks, kept: { [] },
            alarm: { a in alarms.withLock { $0.append(a) } }, logger: .init(label: "test"))
        let first = try await retention.pass()
        #expect(first.overBudget == ["onguard": 5] && first.sourceRows == ["onguard": 20] && first.more)
        let second = try await retention.pass()
        #expect(second.overBudget == ["onguard": 3] && second.sourceRows == ["onguard": 15])
        #expect(try await retention.pass().total == 0)
        // The newest 12 of onguard are left, and axis (within its budget) is untouched.
        let left = try ids(e.h.env.events!.store)
        #expect(left == Set((8..<20).map { "f\($0)" } + ["a0"]))
        let raised = alarms.withLock { $0 }
        #expect(raised.map(\.code) == ["events.budget"])  // once while over, not on each pass
        #expect(raised[0].message.contains("onguard held 20 events, over its budget of 12: its oldest 5 deleted"))
    }

    @Test("the loop catches up at once when a pass leaves more (a pass every 10 ms here, not every hour)")
    func catchUp() async throws {
        let e = try EventHarness()
        let now = e.h.clocks.utcNow()
        try await ingest(
            e, token: e.onguard, (0..<40).map { ("c\($0)", now.adding(micros: Int64($0 - 60) * 1_000_000)) })
        var policy = EventRetention.Policy(maxAge: .seconds(30 * 86_400))
        policy.rowBudget = 10
        policy.rowsPerPass = 4
        policy.period = .seconds(3600)
        policy.catchUpPause = .milliseconds(10)
        let retention = EventRetention(
            store: e.h.env.events!.store, policy: policy, clocks: e.h.clocks, kept: { [] }, alarm: { _ in },
            logger: .init(label: "test"))
        let loop = Task { await retention.run() }
        defer { loop.cancel() }
        let started = ContinuousClock.now
        while try ids(e.h.env.events!.store).count > 10, ContinuousClock.now - started < .seconds(30) {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try ids(e.h.env.events!.store) == Set((30..<40).map { "c\($0)" }))
    }

    @Test("a source faster than its budget keeps for the retention, for a whole hour, raises events.sourceRate once")
    func sustainedRate() async throws {
        let e = try EventHarness()
        var policy = EventRetention.Policy(maxAge: .seconds(10 * 3600))
        policy.rowBudget = 100  // 10 events/h sustainable
        #expect(policy.sustainableRatePerHour == 10)
        let alarms = Mutex<[ErrorEvent]>([])
        let retention = EventRetention(
            store: e.h.env.events!.store, policy: policy, clocks: e.h.clocks, kept: { [] },
            alarm: { a in alarms.withLock { $0.append(a) } }, logger: .init(label: "test"))
        try await retention.pass()
        // 30 min in: 20 events from onguard (40/h), 2 from axis; not a whole hour yet, so no alarm.
        e.h.clocks.advance(seconds: 1800)
        try await ingest(e, token: e.onguard, (0..<20).map { ("r\($0)", e.h.clocks.utcNow()) })
        try await ingest(e, token: e.axis, source: "axis", [("x0", e.h.clocks.utcNow()), ("x1", e.h.clocks.utcNow())])
        try await retention.pass()
        #expect(alarms.withLock { $0.isEmpty })
        e.h.clocks.advance(seconds: 1800)
        try await retention.pass()
        e.h.clocks.advance(seconds: 60)
        try await retention.pass()
        let raised = alarms.withLock { $0 }
        #expect(raised.map(\.code) == ["events.sourceRate"], "\(raised.map(\.message))")
        #expect(raised.first?.message.contains("event source onguard sent 20 events/h for 60 min") == true)
    }

    @Test("kept ranges are merged where they touch, and across the smallest gaps beyond the limit")
    func keptRangesMerge() {
        #expect(EventStore.merged([5..<9, 0..<3, 3..<4, 8..<12, 7..<7], max: 10) == [0..<4, 5..<12])
        #expect(EventStore.merged([0..<1, 10..<11, 12..<13, 40..<41], max: 2) == [0..<13, 40..<41])
    }
}
