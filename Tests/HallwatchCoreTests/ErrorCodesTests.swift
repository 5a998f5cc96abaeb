import Foundation
import Testing

@testable import HallwatchCore

@Suite("Error codes and kinds")
struct ErrorCodesTests {
    /// String literals that look like codes (a registered domain, a dot, a word) but are not error codes.
    static let notCodes: Set<String> = [
        "bus.client",  // a logger metadata key (HallwatchBus)
        // audit actions of the web's evidence exports (HallwatchWeb's ExportRoutes and ExportJobs)
        "export.create", "export.delete", "export.done", "export.download", "export.failed",
        // audit actions of hallwatchctl's exports (HallwatchCore's AuditRequest)
        "export.file",  // and "export.bundle", which is also an error code
        "recorder.down",  // a gap's cause (HallwatchEvidence's GapCause.recorderDown)
    ]

    /// Every `"domain.word"` literal in `Sources/` (but the registry itself) whose domain is one of the registry's.
    static func codeLiteralsInSources() throws -> [String: [String]] {
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { root.deleteLastPathComponent() }
        let sources = root.appendingPathComponent("Sources")
        let domains = Set(ErrorCodes.all.map { String($0.code.split(separator: ".")[0]) })
        let pattern = try NSRegularExpression(
            pattern: "\"(\(domains.sorted().joined(separator: "|")))\\.[A-Za-z][A-Za-z0-9]*\"")
        var found: [String: [String]] = [:]
        let files = try #require(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil))
        for case let url as URL in files
        where url.pathExtension == "swift" && url.lastPathComponent != "ErrorCodes.swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            for m in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let literal = String(text[Range(m.range, in: text)!].dropFirst().dropLast())
                if !notCodes.contains(literal) { found[literal, default: []].append(url.lastPathComponent) }
            }
        }
        return found
    }

    @Test("every code literal in Sources is registered, and every registered code is used")
    func registryMatchesSources() throws {
        let found = try Self.codeLiteralsInSources()
        #expect(found.count > 50, "the grep found too little; did Sources move?")
        for (code, files) in found.sorted(by: { $0.key < $1.key }) {
            #expect(
                ErrorCodes.entry(code) != nil,
                "\(code) (in \(Set(files).sorted().joined(separator: ", "))) is not in ErrorCodes")
        }
        for entry in ErrorCodes.all {
            #expect(found[entry.code] != nil, "\(entry.code) is registered but no longer used in Sources")
        }
    }

    @Test func registryIsWellFormed() {
        #expect(Set(ErrorCodes.all.map(\.code)).count == ErrorCodes.all.count, "a code is listed twice")
        for e in ErrorCodes.all {
            #expect(e.code.split(separator: ".").count == 2 && !e.meaning.isEmpty, "\(e.code)")
        }
        #expect(ErrorKind.allCases.allSatisfy { (400...599).contains($0.httpStatus) })
    }

    @Test func kindsFollowTheRegistry() {
        #expect(SystemError("write", errno: ENOSPC).kind == .exhausted)
        #expect(SystemError("open", errno: ENOENT).kind == .notFound)
        #expect(SystemError("open", errno: EINVAL).kind == .internal)  // sys.errno22: not registered
        #expect(ErrorEvent(code: "rtsp.timeout", message: "m").kind == .timeout)
        #expect(ErrorKind(of: ErrorEvent(code: "dataplane.tooLarge", message: "m")) == .invalidInput)
        #expect(ErrorKind(of: CancellationError()) == .internal)
        #expect(
            SystemError("open", errno: ENOENT, subject: "/x").description.hasSuffix(
                "(/x): \(SystemError.text(ENOENT)) [sys.enoent]"))
    }
}
