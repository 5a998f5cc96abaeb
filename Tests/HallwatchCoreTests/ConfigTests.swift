// The configuration suites moved to Tests/HallwatchConfigTests; these stay with HallwatchCore.
import Foundation
import Testing

@testable import HallwatchCore

@Suite("Time and units")
struct TimeTests {
    @Test func iso8601RoundTrip() throws {
        let t = try #require(ISO8601.parse("2026-11-29T20:52:23.125Z"))
        #expect(t.micros == 1_795_985_543_125_000)
        #expect(t.iso8601 == "2026-11-29T20:52:23.125Z")
        #expect(ISO8601.parse("2026-11-29T21:52:23.125+01:00") == t)
        #expect(ISO8601.parse("2026-13-29T20:52:23Z") == nil)
        #expect(ISO8601.parse("yesterday") == nil)
    }

    @Test func relativeTimes() throws {
        let now = UTCMicros(1_000_000_000_000)
        #expect(TimeExpression.parse("now", now: now) == now)
        #expect(TimeExpression.parse("-30s", now: now) == UTCMicros(1_000_000_000_000 - 30_000_000))
        #expect(TimeExpression.parse("-5m", now: now) == UTCMicros(1_000_000_000_000 - 300_000_000))
        #expect(TimeExpression.parse("-1.5s", now: now) == UTCMicros(1_000_000_000_000 - 1_500_000))
        #expect(TimeExpression.parse("-5x", now: now) == nil)
        // Hostile input is refused, not a crash (found by a first user: -99999999999d overflowed).
        #expect(TimeExpression.parse("-99999999999d", now: now) == nil)
        #expect(TimeExpression.parse("+1e300s", now: now) == nil)
        #expect(TimeExpression.parse("-36500d", now: now) == UTCMicros(1_000_000_000_000 - 36_500 * 86_400_000_000))
    }

    @Test func mediaTimeUnits() {
        #expect(MediaTime90k(seconds: 1.5).ticks == 135_000)
        #expect(MediaTime90k(3003).milliseconds == 33)
        #expect(UTCMicros(0).adding(MediaTime90k(90_000)) == UTCMicros(1_000_000))
        #expect(UTCMicros(0).adding(MediaTime90k(3003)) == UTCMicros(33_367))
    }

    @Test func cameraIDs() {
        #expect(CameraID("lobby-2") != nil)
        #expect(CameraID("") == nil)
        #expect(CameraID("-x") == nil)
        #expect(CameraID(String(repeating: "a", count: 33)) == nil)
        #expect(CameraID("Lobby") == nil)
    }
}
