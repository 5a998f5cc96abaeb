import Foundation
import Testing

/// The real-world ONVIF replies in `<repo>/../shared/testdata/onvif` (read-only; the CI checkout has
/// `../shared/` beside the repository).
enum Fixtures {
    static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared/testdata/onvif")

    static var available: Bool { FileManager.default.fileExists(atPath: directory.path) }
    static let skipMessage: Comment =
        "ONVIF fixtures not found at ../shared/testdata/onvif beside the repository; skipped"

    /// Every fixture file name in the directory.
    static func names() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".xml") }.sorted()
    }

    /// The fixture's bytes with its leading `<!-- SAMPLE-META … -->` comment removed.
    static func data(_ name: String, replacing substitutions: [String: String] = [:]) throws -> Data {
        var text = try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8)
        if let start = text.range(of: "<!-- SAMPLE-META"),
            let end = text.range(of: "-->", range: start.upperBound..<text.endIndex)
        {
            text.removeSubrange(start.lowerBound..<end.upperBound)
        }
        for (k, v) in substitutions { text = text.replacingOccurrences(of: k, with: v) }
        return Data(text.utf8)
    }
}
