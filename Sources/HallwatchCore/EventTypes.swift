/// The door and alarm event types of the event contract (issue 16): the normalised ones and the vendor
/// pass-through form `x.<vendor>.<name>`. Shared by the configuration (`doors[].holdOn`) and the web's ingest.
public enum EventTypes {
    /// Every normalised type.
    public static let normalised: Set<String> = [
        "access.granted", "access.denied", "access.duress", "door.forced", "door.held", "door.opened", "door.closed",
        "door.tamper", "input.alarm", "intercom.call", "panic",
    ]

    /// Whether `type` is normalised or `x.<vendor>.<name>` (vendor and name: lower-case letters, digits, `-`,
    /// `_`; each 1–64 characters).
    public static func isValid(_ type: String) -> Bool {
        if normalised.contains(type) { return true }
        let parts = type.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "x" else { return false }
        return parts[1...].allSatisfy { p in
            (1...64).contains(p.count)
                && p.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || "-_".contains($0)) }
        }
    }

    /// The door state a type tells, if any: `open`, `closed`, `forced` or `held`.
    public static func doorState(_ type: String) -> String? {
        switch type {
        case "door.opened": "open"
        case "door.closed": "closed"
        case "door.forced": "forced"
        case "door.held": "held"
        default: nil
        }
    }
}
