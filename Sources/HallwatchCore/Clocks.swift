import Foundation

/// The two clocks the box reads — UTC (which can step) and a monotonic clock (which cannot) — and waiting
/// on the monotonic one.
///
/// Injected everywhere time is read or waited for, so tests can skew, step and freeze time and run back-off
/// and cadence loops in simulated time (STYLE habit 3; ``SimulatedClocks``). Libraries never create a clock
/// of their own; a `clocks: any Clocks = SystemClocks()` default argument is the most they do.
public protocol Clocks: Sendable {
    /// Box UTC now (`CLOCK_REALTIME`).
    func utcNow() -> UTCMicros
    /// Monotonic nanoseconds since an arbitrary origin (`CLOCK_MONOTONIC`); never goes backwards.
    func monotonicNanos() -> UInt64
    /// Suspends the task for `duration` of this clock's monotonic time.
    /// - Throws: `CancellationError` when the task is cancelled first.
    func sleep(for duration: Duration) async throws
    /// Blocks the calling thread for `duration` of this clock's monotonic time, for loops that run on a
    /// thread of their own (FFmpeg's calls block). Returns early once `stop()` is true; `stop` is polled at
    /// least every 50 ms.
    /// - Returns: `true` when the whole duration passed, `false` when `stop` ended the wait.
    @discardableResult
    func sleepBlocking(for duration: Duration, unless stop: () -> Bool) -> Bool
}

extension Clocks {
    /// The monotonic clock now, as an instant.
    public func monotonicNow() -> MonotonicInstant { MonotonicInstant(nanos: monotonicNanos()) }

    /// Real time (`Task.sleep`). Clocks whose time is not real (``SimulatedClocks``) provide their own.
    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }

    /// Real time, polled on ``monotonicNanos()``. Clocks whose time is not real provide their own.
    @discardableResult
    public func sleepBlocking(for duration: Duration, unless stop: () -> Bool) -> Bool {
        let end = monotonicNow() + duration
        while !stop() {
            let now = monotonicNow()
            if now >= end { return true }
            usleep(useconds_t(min(end - now, .milliseconds(50)).nanoseconds / 1000))
        }
        return false
    }
}

/// A reading of a monotonic clock (``Clocks/monotonicNanos()``): nanoseconds since the clock's arbitrary
/// origin. Only differences between readings of the same clock mean anything.
public struct MonotonicInstant: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Nanoseconds since the clock's origin.
    public var nanos: UInt64
    /// The instant `nanos` nanoseconds after the origin.
    public init(nanos: UInt64) { self.nanos = nanos }

    /// Orders instants of the same clock.
    public static func < (a: MonotonicInstant, b: MonotonicInstant) -> Bool { a.nanos < b.nanos }
    /// The instant `d` later (earlier for a negative `d`, but never before the origin).
    public static func + (t: MonotonicInstant, d: Duration) -> MonotonicInstant {
        let delta = d.nanoseconds
        return MonotonicInstant(nanos: delta >= 0 ? t.nanos &+ UInt64(delta) : t.nanos - min(t.nanos, UInt64(-delta)))
    }
    /// The time from `b` to `a` (negative when `a` is earlier).
    public static func - (a: MonotonicInstant, b: MonotonicInstant) -> Duration {
        a >= b ? .nanoseconds(Int64(a.nanos - b.nanos)) : .zero - .nanoseconds(Int64(b.nanos - a.nanos))
    }
    /// `<nanos>ns`.
    public var description: String { "\(nanos)ns" }
}

extension Duration {
    /// The duration in whole nanoseconds (truncated toward zero).
    public var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}

/// The real clocks, from `clock_gettime(2)`. Only `main` (and default arguments) create them.
public struct SystemClocks: Clocks {
    /// The box's real clocks.
    public init() {}
    /// `CLOCK_REALTIME` in µs.
    public func utcNow() -> UTCMicros {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UTCMicros(Int64(ts.tv_sec) * 1_000_000 + Int64(ts.tv_nsec) / 1_000)
    }
    /// `CLOCK_MONOTONIC` in ns.
    public func monotonicNanos() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// ISO 8601 formatting and parsing of ``UTCMicros`` (`YYYY-MM-DDTHH:MM:SS[.fff]Z`).
///
/// Parsing is strict RFC 3339 §5.6 (`date-time`), the one parser for every time a request, a device or the
/// command line hands us: a day that does not exist in its month (`2026-02-30`) and an offset outside
/// `00:00`–`23:59` (`+99:00`) are refused, never normalised by `timegm`.
public enum ISO8601 {
    /// The longest text ``parse(_:)`` reads: 64 bytes (a date-time with nanoseconds and an offset is 35).
    public static let maxTextBytes = 64

    /// Why a text is not an RFC 3339 date-time.
    public struct ParseError: Error, Equatable, Sendable, CustomStringConvertible {
        /// What is wrong, for a typed answer (a missing offset is told apart: it is a naive local time).
        public enum Reason: String, Sendable {
            /// Not `YYYY-MM-DDTHH:MM:SS[.f…]` followed by `Z` or `±HH:MM`, or longer than ``maxTextBytes``.
            case syntax
            /// A well-formed date and time without `Z` or an offset (RFC 3339 §4.3: a local time, unknown offset).
            case noOffset
            /// A month, day, hour, minute or second that does not exist (`2026-02-30`, `24:00:00`).
            case noSuchTime
            /// An offset outside RFC 3339's `time-numoffset` (hours 00–23, minutes 00–59).
            case offsetOutOfRange
        }
        public let reason: Reason
        /// The refused text, cut to ``maxTextBytes``.
        public let text: String

        public init(reason: Reason, text: String) {
            self.reason = reason
            self.text = text
        }

        public var description: String {
            switch reason {
            case .syntax: "'\(text)' is not an RFC 3339 date and time (2026-12-07T08:00:00Z or +01:00)"
            case .noOffset: "'\(text)' has no UTC offset (add Z or ±HH:MM, RFC 3339 §5.6)"
            case .noSuchTime: "'\(text)' names a date or time that does not exist"
            case .offsetOutOfRange: "'\(text)' has an offset outside ±23:59 (RFC 3339 §5.6)"
            }
        }
    }

    /// Formats with millisecond precision in UTC.
    public static func format(_ t: UTCMicros) -> String {
        var secs = time_t(t.micros >= 0 ? t.micros / 1_000_000 : (t.micros - 999_999) / 1_000_000)
        let millis = Int((t.micros - Int64(secs) * 1_000_000) / 1_000)
        var parts = tm()
        gmtime_r(&secs, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
            Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.f…]` followed by `Z` or `±HH:MM`; returns `nil` for anything else
    /// (``parseStrict(_:)`` says why).
    public static func parse(_ text: String) -> UTCMicros? { try? parseStrict(text) }

    /// The number of days in `month` (1–12) of the proleptic Gregorian `year`.
    public static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Parses an RFC 3339 §5.6 `date-time`: `YYYY-MM-DDTHH:MM:SS[.f…]` then `Z` or `±HH:MM` (`t`/`z` and a
    /// space for `T` accepted, §5.6's note). Fractions beyond microseconds are cut. A leap second (`:60`) is
    /// read as the next second's start. At most ``maxTextBytes`` bytes.
    /// - Throws: ``ParseError`` with its ``ParseError/Reason``.
    public static func parseStrict(_ text: String) throws(ParseError) -> UTCMicros {
        let s = Array(text.utf8.prefix(maxTextBytes + 1))
        func fail(_ reason: ParseError.Reason) -> ParseError {
            ParseError(reason: reason, text: String(decoding: s.prefix(maxTextBytes), as: UTF8.self))
        }
        guard s.count <= maxTextBytes else { throw fail(.syntax) }
        func num(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= s.count else { return nil }
            var v = 0
            for b in s[from..<from + count] {
                guard b >= 48 && b <= 57 else { return nil }
                v = v * 10 + Int(b - 48)
            }
            return v
        }
        guard s.count >= 19, s[4] == 45, s[7] == 45, s[10] == 84 || s[10] == 116 || s[10] == 32, s[13] == 58,
            s[16] == 58,
            let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
            let se = num(17, 2)
        else { throw fail(.syntax) }
        var i = 19
        var frac: Int64 = 0
        if i < s.count, s[i] == 46 {
            i += 1
            var digits = 0
            while i < s.count, s[i] >= 48, s[i] <= 57 {
                if digits < 6 { frac = frac * 10 + Int64(s[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { throw fail(.syntax) }
            for _ in min(digits, 6)..<6 { frac *= 10 }
        }
        var offsetSeconds = 0
        guard i < s.count else { throw fail(.noOffset) }
        if s[i] == 90 || s[i] == 122 {
            i += 1
        } else if s[i] == 43 || s[i] == 45 {
            guard let oh = num(i + 1, 2), i + 3 < s.count, s[i + 3] == 58, let om = num(i + 4, 2) else {
                throw fail(.syntax)
            }
            guard oh <= 23, om <= 59 else { throw fail(.offsetOutOfRange) }
            offsetSeconds = (oh * 3600 + om * 60) * (s[i] == 43 ? 1 : -1)
            i += 6
        } else {
            throw fail(.syntax)
        }
        guard i == s.count else { throw fail(.syntax) }
        guard (1...12).contains(mo), (1...daysIn(month: mo, year: y)).contains(d), h <= 23, mi <= 59, se <= 60
        else { throw fail(.noSuchTime) }
        var parts = tm()
        parts.tm_year = Int32(y - 1900)
        parts.tm_mon = Int32(mo - 1)
        parts.tm_mday = Int32(d)
        parts.tm_hour = Int32(h)
        parts.tm_min = Int32(mi)
        parts.tm_sec = Int32(se)
        let epoch = Int64(timegm(&parts)) - Int64(offsetSeconds)
        return UTCMicros(epoch * 1_000_000 + frac)
    }
}

/// A point in time as a person types it on the command line: ISO 8601 UTC, `now`, or relative to now
/// (`-30s`, `-5m`, `-2h`, `-1d`, also with `+`).
public enum TimeExpression {
    /// Resolves `text` against `now`; returns `nil` when it is none of the accepted forms.
    public static func parse(_ text: String, now: UTCMicros) -> UTCMicros? { try? parseStrict(text, now: now) }

    /// Resolves `text` against `now`; an absolute time is read by ``ISO8601/parseStrict(_:)``.
    /// - Throws: ``ISO8601/ParseError`` (`syntax` for a relative form that cannot be read).
    public static func parseStrict(_ text: String, now: UTCMicros) throws(ISO8601.ParseError) -> UTCMicros {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "now" { return now }
        if let first = t.first, first == "-" || first == "+" {
            guard let d = DurationText.parse(String(t.dropFirst())) else {
                throw ISO8601.ParseError(reason: .syntax, text: String(t.prefix(ISO8601.maxTextBytes)))
            }
            let micros = Int64(d.components.seconds) * 1_000_000 + d.components.attoseconds / 1_000_000_000_000
            return now.adding(micros: first == "-" ? -micros : micros)
        }
        // (DurationText bounds durations to 100 years, so the arithmetic above cannot overflow.)
        return try ISO8601.parseStrict(t)
    }
}

/// Durations as written in the config and on the command line: a number and a unit
/// (`ms`, `s`, `m`, `h`, `d`), e.g. `500ms`, `1s`, `1.5s`, `30d`.
public enum DurationText {
    /// The longest duration accepted: 100 years (inputs are bounded; nothing in a recorder needs more).
    public static let maxSeconds: Double = 100 * 365.25 * 86_400

    /// Parses `text`; returns `nil` for a missing unit, a negative or non-numeric value, or more than
    /// ``maxSeconds``.
    public static func parse(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("d", 86_400)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            let number = text.dropLast(suffix.count)
            guard !number.isEmpty, number.count <= 24, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
                let v = Double(number), v >= 0, v.isFinite, v * scale <= maxSeconds
            else { continue }
            return .milliseconds(Int64((v * scale * 1000).rounded()))
        }
        return nil
    }

    /// Formats `d` the shortest exact way (`1s`, `500ms`).
    public static func format(_ d: Duration) -> String {
        let ms = d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

extension Duration {
    /// The duration in seconds as a `Double`.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
