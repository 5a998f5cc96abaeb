/// A media timestamp or duration in 90 kHz ticks, the RTP video clock (RFC 6184 §5.1, RFC 7798 §4.1).
///
/// Every timestamp the capture worker and recorder exchange is expressed in this unit; audio tracks keep
/// their own timescale inside the fMP4 payload, but fragment boundaries and durations are given here.
public struct MediaTime90k: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// Ticks of 1/90 000 s.
    public var ticks: Int64

    /// Ticks per second.
    public static let ticksPerSecond: Int64 = 90_000

    /// `ticks` ticks of 1/90 000 s.
    public init(_ ticks: Int64) { self.ticks = ticks }
    /// Rounds `seconds` to the nearest tick.
    public init(seconds: Double) { self.ticks = Int64((seconds * 90_000).rounded()) }

    /// The value in seconds.
    public var seconds: Double { Double(ticks) / 90_000 }
    /// The value in whole milliseconds, rounded toward zero.
    public var milliseconds: Int64 { ticks / 90 }

    /// Zero ticks.
    public static let zero = MediaTime90k(0)
    /// Orders by ticks.
    public static func < (a: Self, b: Self) -> Bool { a.ticks < b.ticks }
    /// The sum of two times, in ticks.
    public static func + (a: Self, b: Self) -> Self { Self(a.ticks + b.ticks) }
    /// The difference of two times, in ticks.
    public static func - (a: Self, b: Self) -> Self { Self(a.ticks - b.ticks) }
    /// Adds `b`'s ticks to `a`.
    public static func += (a: inout Self, b: Self) { a.ticks += b.ticks }
    /// `<ticks>@90k`.
    public var description: String { "\(ticks)@90k" }

    /// Decodes from a JSON integer of ticks.
    public init(from decoder: any Decoder) throws { ticks = try decoder.singleValueContainer().decode(Int64.self) }
    /// Encodes as a JSON integer of ticks.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(ticks)
    }
}

/// A point on the box's UTC clock, in microseconds since 1970-01-01T00:00:00Z.
///
/// Wall time is read once per fragment at arrival (see `Clocks`) and never deep inside logic.
public struct UTCMicros: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    /// Microseconds since the Unix epoch (UTC, leap seconds not counted).
    public var micros: Int64

    /// `micros` µs since the Unix epoch.
    public init(_ micros: Int64) { self.micros = micros }
    /// Seconds since the Unix epoch.
    public init(seconds: Double) { self.micros = Int64((seconds * 1_000_000).rounded()) }

    /// Seconds since the Unix epoch.
    public var seconds: Double { Double(micros) / 1_000_000 }
    /// Orders by time.
    public static func < (a: Self, b: Self) -> Bool { a.micros < b.micros }

    /// This instant moved by a media duration (90 kHz ticks, rounded to the microsecond).
    public func adding(_ d: MediaTime90k) -> UTCMicros { UTCMicros(micros + (d.ticks * 100 + 4) / 9) }
    /// The instant moved by `micros` microseconds.
    public func adding(micros delta: Int64) -> UTCMicros { UTCMicros(micros + delta) }

    /// ISO 8601 text with millisecond precision, e.g. `2026-11-29T20:52:23.125Z`.
    public var iso8601: String { ISO8601.format(self) }
    /// ``iso8601``.
    public var description: String { iso8601 }

    /// Decodes from a JSON integer of µs.
    public init(from decoder: any Decoder) throws { micros = try decoder.singleValueContainer().decode(Int64.self) }
    /// Encodes as a JSON integer of µs.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(micros)
    }
}
