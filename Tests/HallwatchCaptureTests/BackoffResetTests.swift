import HallwatchCapture
import Testing

/// Issue 12, case 1: the reconnect policy against flapping cameras, replayed on simulated time.
@Suite("Reconnect back-off after sessions that delivered media")
struct BackoffResetTests {
    /// A camera seen by the worker's loop: `up(t)` says whether it accepts a session at time `t` (s), and
    /// `sessionEnd(t)` when a session opened at `t` is cut. Connecting costs nothing; a refused connect
    /// ends at once. Returns the holes in the recording (s) and the seconds recorded over `seconds`.
    /// `wait` is the policy under test (``ReconnectBackoff`` by default): (delivered media, now in s, session length in s) → wait.
    static func replay(
        seconds: Double, up: (Double) -> Bool, sessionEnd: (Double) -> Double,
        wait: ((Bool, Double, Double) -> Duration)? = nil
    ) -> (holes: [Double], recorded: Double, lateAfterBack: [Double]) {
        var policy = ReconnectBackoff(initial: .milliseconds(500), max: .seconds(10))
        var sessionLength = 0.0
        var t = 0.0
        var recorded = 0.0
        var lastEnd: Double?
        var holes: [Double] = []
        var late: [Double] = []
        var backSince: Double?
        while t < seconds {
            let delivered = up(t)
            sessionLength = 0
            if delivered {
                if let e = lastEnd { holes.append(t - e) }
                if let b = backSince { late.append(t - b) }
                backSince = nil
                let end = min(sessionEnd(t), seconds)
                recorded += end - t
                sessionLength = end - t
                t = end
                lastEnd = end
            } else if backSince == nil {
                // When does the camera come back? Scan forward (10 ms steps) for the report.
                var b = t
                while !up(b) && b < seconds { b += 0.01 }
                backSince = b
            }
            let wait =
                wait?(delivered, t, sessionLength)
                ?? policy.wait(afterSessionThatDeliveredMedia: delivered, nowNanos: UInt64(t * 1e9))
            t += Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18
        }
        return (holes, recorded, late)
    }

    /// The policy before issue 12: doubled after every session end, reset only after 30 s online.
    static func oldPolicy() -> (Bool, Double, Double) -> Duration {
        var backoff = Duration.milliseconds(500)
        return { _, _, length in
            if length > 30 { backoff = .milliseconds(500) }
            defer { backoff = min(backoff * 2, .seconds(10)) }
            return backoff
        }
    }

    @Test func theOldPolicyReproducesTheIssuesFigures() {
        let flapping = Self.replay(seconds: 60, up: { _ in true }, sessionEnd: { $0 + 5 }, wait: Self.oldPolicy())
        #expect(flapping.holes.prefix(6).map { ($0 * 10).rounded() / 10 } == [0.5, 1, 2, 4, 8, 10])
        #expect(flapping.recorded >= 34 && flapping.recorded < 35, "\(flapping.recorded)")
        let outages = Self.replay(
            seconds: 120, up: { $0.truncatingRemainder(dividingBy: 10) < 5 - 1e-9 },
            sessionEnd: { ($0 / 10).rounded(.down) * 10 + 5 }, wait: Self.oldPolicy())
        #expect(outages.lateAfterBack.allSatisfy { $0 > 1 }, "\(outages.lateAfterBack)")
        #expect(outages.holes.allSatisfy { $0 >= 7.5 - 1e-6 }, "\(outages.holes)")
        print(
            "old policy: flapping \(flapping.recorded) s of 60 s, holes \(flapping.holes); 5 s outages: holes \(outages.holes), late \(outages.lateAfterBack)"
        )
    }

    @Test func aCameraResettingEveryFiveSecondsLosesOnlyTheInitialWait() {
        // Resets the TCP connection after 5 s of streaming, accepts a reconnect at once.
        // Before: holes of 0.5, 1, 2, 4, 8, 10 s and 34 s recorded of 60 s.
        let r = Self.replay(seconds: 60, up: { _ in true }, sessionEnd: { $0 + 5 })
        #expect(r.holes.allSatisfy { abs($0 - 0.5) < 1e-6 }, "\(r.holes)")
        #expect(r.recorded >= 55 - 1e-6, "\(r.recorded) s recorded of 60 s")
        print("flapping: \(r.recorded) s recorded of 60 s, holes \(r.holes)")
    }

    @Test func aCameraBackAfterAFiveSecondOutageIsRecordedWithinOneSecond() {
        // 5 s streaming, 5 s gone (connects refused), again and again.
        // Before: holes of 7.5–8 s, the camera recorded 2.5–3 s after it was back.
        let r = Self.replay(
            seconds: 120, up: { $0.truncatingRemainder(dividingBy: 10) < 5 - 1e-9 },
            sessionEnd: { ($0 / 10).rounded(.down) * 10 + 5 })
        #expect(r.lateAfterBack.count >= 10)
        #expect(r.lateAfterBack.allSatisfy { $0 <= 1.0 + 1e-6 }, "\(r.lateAfterBack)")
        #expect(r.holes.allSatisfy { $0 <= 6.0 + 1e-6 }, "\(r.holes)")
        print("5 s outages: holes \(r.holes), recorded after back \(r.lateAfterBack)")
    }

    @Test func aCameraThatNeverDeliveredBacksOffToTheMaximum() {
        var policy = ReconnectBackoff(initial: .milliseconds(500), max: .seconds(10))
        let waits = (0..<8).map { i in
            policy.wait(afterSessionThatDeliveredMedia: false, nowNanos: UInt64(i) * 1_000_000_000)
        }
        #expect(
            waits == [
                .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(10), .seconds(10),
                .seconds(10),
            ])
        // Gone for longer than 30 s after media: the doubling resumes (from where it was).
        var p = ReconnectBackoff(initial: .milliseconds(500), max: .seconds(10))
        _ = p.wait(afterSessionThatDeliveredMedia: true, nowNanos: 0)
        let early = (1...6).map { p.wait(afterSessionThatDeliveredMedia: false, nowNanos: UInt64($0) * 1_000_000_000) }
        #expect(early.allSatisfy { $0 <= .seconds(1) })
        #expect(p.wait(afterSessionThatDeliveredMedia: false, nowNanos: 31_000_000_000) == .seconds(10))
        // A camera answering 503 with Retry-After: 7 is left alone that long, even right after media.
        var q = ReconnectBackoff(initial: .milliseconds(500), max: .seconds(10))
        #expect(q.wait(afterSessionThatDeliveredMedia: true, nowNanos: 0, retryAfter: .seconds(7)) == .seconds(7))
    }
}
