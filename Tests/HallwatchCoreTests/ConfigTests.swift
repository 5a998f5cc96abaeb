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

    @Test("RFC 3339 §5.6 strictly: no such day, an offset beyond ±23:59 and a missing offset are refused by reason")
    func iso8601IsStrict() throws {
        func reason(_ text: String) -> ISO8601.ParseError.Reason? {
            do {
                _ = try ISO8601.parseStrict(text)
                return nil
            } catch { return error.reason }
        }
        #expect(reason("2026-02-30T00:00:00Z") == .noSuchTime)
        #expect(reason("2026-02-29T00:00:00Z") == .noSuchTime)
        #expect(reason("2026-04-31T00:00:00Z") == .noSuchTime)
        #expect(reason("2026-12-07T24:00:00Z") == .noSuchTime)
        #expect(reason("2026-12-07T08:60:00Z") == .noSuchTime)
        #expect(reason("2026-12-07T08:00:00+99:00") == .offsetOutOfRange)
        #expect(reason("2026-12-07T08:00:00+05:60") == .offsetOutOfRange)
        #expect(reason("2026-12-07T08:00:00") == .noOffset)
        #expect(reason("2026-12-07T08:00:00.5") == .noOffset)
        #expect(reason("2026-12-07T08:00:00+0100") == .syntax)
        #expect(reason("2026-12-07T08:00:00." + String(repeating: "1", count: 60) + "Z") == .syntax)
        // Leap years by the Gregorian rule; the extreme offsets; a leap second is the next second's start.
        #expect(ISO8601.parse("2028-02-29T00:00:00Z")?.iso8601 == "2028-02-29T00:00:00.000Z")
        #expect(ISO8601.parse("2000-02-29T12:00:00Z") != nil && ISO8601.parse("2100-02-29T12:00:00Z") == nil)
        #expect(ISO8601.parse("2026-12-07T23:59:00+23:59")?.iso8601 == "2026-12-07T00:00:00.000Z")
        #expect(ISO8601.parse("2026-12-07T00:00:00-23:59")?.iso8601 == "2026-12-07T23:59:00.000Z")
        #expect(ISO8601.parse("2016-12-31T23:59:60Z")?.iso8601 == "2017-01-01T00:00:00.000Z")
        #expect(ISO8601.parse("2026-12-07T08:00:00.123456789Z")?.micros == 1_796_630_400_123_456)
        let error = try #require(throws: ISO8601.ParseError.self) { try ISO8601.parseStrict("2026-02-30T00:00:00Z") }
        #expect(error.description == "'2026-02-30T00:00:00Z' names a date or time that does not exist")
        #expect(TimeExpression.parse("2026-02-30T00:00:00Z", now: UTCMicros(0)) == nil)
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
