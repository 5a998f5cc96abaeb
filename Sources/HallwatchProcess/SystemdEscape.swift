/// Escaping of unit-name components as `systemd-escape(1)` does (without `--path`), for the instance of a
/// template unit such as `hallwatch-capture@.service` (systemd.unit(5) § String Escaping for Inclusion in
/// Unit Names): `/` becomes `-`; bytes other than ASCII letters, digits, `:`, `_` and `.` (and a leading
/// `.`) become `\xNN`. The unit's `%I` gives the original text back.
public enum SystemdEscape {
    /// `text` escaped for use as a unit name's instance (what `systemd-escape TEXT` prints).
    public static func instance(_ text: String) -> String {
        var out = ""
        for (i, b) in text.utf8.enumerated() {
            switch b {
            case UInt8(ascii: "/"): out.append("-")
            case UInt8(ascii: "."):
                out.append(i == 0 ? "\\x2e" : ".")
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: ":"), UInt8(ascii: "_"):
                out.append(Character(Unicode.Scalar(b)))
            default:
                let hex = Array("0123456789abcdef")
                out.append("\\x")
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0xF)])
            }
        }
        return out
    }

    /// `path` escaped as a unit name the way `systemd-escape --path PATH` prints it: the path without its leading
    /// `/` escaped as ``instance(_:)`` does (`/` alone is `-`). Returns `nil` for a path systemd does not accept
    /// as a mount point: relative, with `.` or `..` components, empty components (`//`) or a trailing `/`
    /// (systemd.mount(5) § Description: the unit is named after its normalized mount point).
    public static func path(_ path: String) -> String? {
        guard path.hasPrefix("/") else { return nil }
        if path == "/" { return "-" }
        let parts = path.dropFirst().split(separator: "/", omittingEmptySubsequences: false)
        guard parts.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else { return nil }
        return instance(String(path.dropFirst()))
    }

    /// The capture worker's unit for camera (stream) `id`: `hallwatch-capture@<escaped id>.service`.
    public static func captureUnit(_ id: String) -> String {
        "hallwatch-capture@\(instance(id)).service"
    }
}
