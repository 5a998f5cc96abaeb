import Foundation
import HallwatchCore

/// Times as the building reads them: in its IANA time zone (`web.timeZone`, e.g. `America/New_York`), with
/// the zone's abbreviation so that the hour that repeats when daylight-saving time ends is shown twice,
/// distinguishably (`01:30:00 EDT`, then `01:30:00 EST`). Pages put the UTC instant in a `title` beside it;
/// everything stored and exported stays UTC.
///
/// Offsets come from Foundation's `TimeZone` (ICU's rules). Abbreviations come from the system's compiled
/// tz database (`/usr/share/zoneinfo`, Debian's `tzdata`, TZif format of RFC 8536): for each UTC offset and
/// daylight-saving flag, the abbreviation of the zone's latest transition to it (`EDT`, not the 1945 `EPT`).
/// Without the file the abbreviation is Foundation's (`GMT-4`), which still tells the two hours apart.
public struct BuildingTime: Sendable, Equatable {
    /// The IANA name.
    public let identifier: String
    let zone: TimeZone
    /// `"<utoff>/<isdst>"` → abbreviation, from the TZif file.
    let abbreviations: [String: String]

    /// UTC.
    public static let utc = BuildingTime(validated: "UTC", zone: TimeZone(identifier: "UTC")!, abbreviations: [:])

    init(validated identifier: String, zone: TimeZone, abbreviations: [String: String]) {
        self.identifier = identifier
        self.zone = zone
        self.abbreviations = abbreviations
    }

    /// The zone named `identifier`, or `nil` when it is not an IANA zone name this box knows.
    /// - Parameter zoneinfo: the compiled tz database's directory.
    public init?(identifier: String, zoneinfo: String = "/usr/share/zoneinfo") {
        guard Self.isWellFormed(identifier), let zone = TimeZone(identifier: identifier) else { return nil }
        self.identifier = identifier
        self.zone = zone
        let data = FileManager.default.contents(atPath: zoneinfo + "/" + identifier)
        abbreviations = data.map(Self.tzifAbbreviations) ?? [:]
    }

    /// `Area/Location` names: letters, digits, `_ + -`, components joined by `/`, none `.` or `..`; at most 64
    /// characters (no path can leave the zoneinfo directory).
    public static func isWellFormed(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 64, !name.hasPrefix("/"), !name.hasSuffix("/") else { return false }
        return name.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { part in
            !part.isEmpty && part != "." && part != ".."
                && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_+-".contains($0)) }
        }
    }

    /// The UTC offset at `t`, in seconds (east positive).
    public func offsetSeconds(at t: UTCMicros) -> Int {
        zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(t.micros) / 1e6))
    }

    /// The zone's abbreviation at `t` (`EST`, `EDT`, `CET`, `UTC`).
    public func abbreviation(at t: UTCMicros) -> String {
        let date = Date(timeIntervalSince1970: Double(t.micros) / 1e6)
        let offset = zone.secondsFromGMT(for: date)
        let dst = zone.isDaylightSavingTime(for: date)
        if let a = abbreviations["\(offset)/\(dst ? 1 : 0)"] { return a }
        if offset == 0 && identifier == "UTC" { return "UTC" }
        return zone.abbreviation(for: date) ?? Self.numericOffset(offset)
    }

    /// `2026-11-01 01:30:00 EDT`: the building's wall clock at `t` and its abbreviation.
    public func format(_ t: UTCMicros) -> String {
        let offset = offsetSeconds(at: t)
        let seconds = Int64(floor(Double(t.micros) / 1e6)) + Int64(offset)
        var secs = time_t(seconds)
        var parts = tm()
        gmtime_r(&secs, &parts)
        return String(
            format: "%04d-%02d-%02d %02d:%02d:%02d ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec)) + abbreviation(at: t)
    }

    /// The building's local wall-clock time `text` (`YYYY-MM-DDTHH:MM`, as an HTML `datetime-local` input sends
    /// it) as UTC. In the repeated hour the earlier instant (daylight-saving time) is taken; a time in the
    /// skipped spring hour is taken with the offset before the change.
    public func parseLocal(_ text: String) -> UTCMicros? {
        var t = text
        if t.count == 16 { t += ":00" }
        guard t.count == 19, let asUTC = ISO8601.parse(t + "Z") else { return nil }
        // Try the offsets in effect a day either side; keep the candidates that read back as the same wall clock.
        let candidates = [-86400, 86400].map { offsetSeconds(at: asUTC.adding(micros: Int64($0) * 1_000_000)) }
        var best: UTCMicros?
        for offset in Set(candidates).sorted(by: >) {
            let u = asUTC.adding(micros: -Int64(offset) * 1_000_000)
            if offsetSeconds(at: u) == offset, best == nil || u.micros < best!.micros { best = u }
        }
        return best ?? asUTC.adding(micros: -Int64(candidates[0]) * 1_000_000)
    }

    static func numericOffset(_ seconds: Int) -> String {
        let a = abs(seconds)
        return String(format: "UTC%@%02d:%02d", seconds < 0 ? "-" : "+", a / 3600, a % 3600 / 60)
    }

    /// `"<utoff>/<isdst>"` → abbreviation of the latest transition to that type, from a TZif file's version-1
    /// block (RFC 8536 §3: header, transition times, type indices, local time types, designations).
    static func tzifAbbreviations(_ data: Data) -> [String: String] {
        let b = [UInt8](data)
        guard b.count >= 44, b[0] == 0x54, b[1] == 0x5A, b[2] == 0x69, b[3] == 0x66 else { return [:] }
        func u32(_ i: Int) -> Int { Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
        let (timecnt, typecnt, charcnt) = (u32(32), u32(36), u32(40))
        let indices = 44 + timecnt * 4
        let types = indices + timecnt
        let chars = types + typecnt * 6
        guard typecnt > 0, chars + charcnt <= b.count else { return [:] }
        func type(_ n: Int) -> (key: String, name: String)? {
            guard n < typecnt else { return nil }
            let p = types + n * 6
            let offset = Int(Int32(bitPattern: UInt32(u32(p))))
            let dst = b[p + 4]
            let start = chars + Int(b[p + 5])
            guard start < chars + charcnt else { return nil }
            var end = start
            while end < chars + charcnt, b[end] != 0 { end += 1 }
            return ("\(offset)/\(dst)", String(decoding: b[start..<end], as: UTF8.self))
        }
        var out: [String: String] = [:]
        if timecnt == 0, let t = type(0) { out[t.key] = t.name }
        for i in 0..<timecnt {
            if let t = type(Int(b[indices + i])) { out[t.key] = t.name }
        }
        return out
    }
}
