import Foundation

/// One RTSP mount: the path `NAME` under which the clip `FILE` is served, as given by `--mount NAME=FILE`.
///
/// The stream is then reachable at `rtsp://ADDRESS:PORT/NAME` (RFC 7826 §18 "rtsp" URI scheme, absolute
/// path of one segment).
public struct MountSpec: Sendable, Hashable, CustomStringConvertible {
    /// Path segment of the URL: 1–64 characters from `A–Z a–z 0–9 - _ .`, not `.` or `..`.
    public let name: String
    /// The MP4 file to serve (as given; relative paths are resolved against the working directory when opened).
    public let file: String

    /// Creates a mount after validating `name` (see ``name``).
    /// - Throws: ``SimCamError/badMountSpec(_:)``.
    public init(name: String, file: String) throws(SimCamError) {
        guard Self.isValidName(name) else {
            throw .badMountSpec(
                "mount name \"\(name)\" must be 1-64 characters of A-Z a-z 0-9 - _ . (it becomes the URL path)")
        }
        guard !file.isEmpty else { throw .badMountSpec("mount \"\(name)\" has an empty file path") }
        self.name = name
        self.file = file
    }

    /// Parses `NAME=FILE` (the first `=` separates; the file path may contain more).
    /// - Throws: ``SimCamError/badMountSpec(_:)`` when there is no `=` or either side is invalid.
    public init(parsing spec: String) throws(SimCamError) {
        guard let eq = spec.firstIndex(of: "=") else {
            throw .badMountSpec("\"\(spec)\" is not NAME=FILE.mp4")
        }
        try self.init(name: String(spec[..<eq]), file: String(spec[spec.index(after: eq)...]))
    }

    /// Whether `name` is usable as the single URL path segment of a mount.
    public static func isValidName(_ name: String) -> Bool {
        guard (1...64).contains(name.utf8.count), name != ".", name != ".." else { return false }
        return name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                || c == 0x2D || c == 0x5F || c == 0x2E
        }
    }

    /// Absolute path of ``file``.
    public var absolutePath: String {
        URL(fileURLWithPath: file).standardizedFileURL.path
    }

    /// `NAME=FILE`, the form it was parsed from.
    public var description: String { "\(name)=\(file)" }
}
