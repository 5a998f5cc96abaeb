import Foundation
import Testing

/// Every protocol step a source comment cites (`// C3.`, `(F3)`, `steps F1–F6`, `/// P2.`) names a step that
/// exists in a DocC page (`**C3. …**` in `Sources/<Module>/<Module>.docc/*.md`): renumbering a page without its
/// code, or citing a step that was never written down, fails here.
@Suite("Protocol step citations")
struct ProtocolCitationTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources")

    static func files(withExtension ext: String) -> [URL] {
        let walker = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)
        return (walker?.allObjects as? [URL] ?? []).filter { $0.pathExtension == ext }
    }

    static func matches(_ pattern: String, in text: String) -> [String] {
        let regex = try! NSRegularExpression(pattern: pattern)
        return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { m in
            Range(m.range(at: 1), in: text).map { String(text[$0]) }
        }
    }

    @Test func everyCitedStepExists() throws {
        var defined = Set<String>()
        for page in Self.files(withExtension: "md") {
            defined.formUnion(Self.matches(#"\*\*([A-Z][0-9]+)\."#, in: try String(contentsOf: page, encoding: .utf8)))
        }
        let families = Set(defined.map { $0.prefix(1) })
        #expect(defined.count > 40)  // the storage and data-plane pages were found
        var cited: [String: Set<String>] = [:]
        for file in Self.files(withExtension: "swift") {
            for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n") {
                guard let comment = line.range(of: "//").map({ String(line[$0.lowerBound...]) }) else { continue }
                for step in Self.matches(#"\b([A-Z][0-9]{1,2})\b"#, in: comment) where families.contains(step.prefix(1))
                {
                    cited[step, default: []].insert(file.lastPathComponent)
                }
            }
        }
        #expect(cited.count > 30)
        let missing = cited.filter { !defined.contains($0.key) }.map {
            "\($0.key) (cited in \($0.value.sorted().joined(separator: ", ")))"
        }
        #expect(missing.sorted() == [])
    }
}
