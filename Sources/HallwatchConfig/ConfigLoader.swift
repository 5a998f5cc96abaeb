import Foundation
import HallwatchCore
import Yams

/// One problem found in a configuration file, with its place.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    /// File path as given to the loader.
    public var file: String
    /// 1-based line (0 when the place is unknown).
    public var line: Int
    /// What is wrong and what was expected.
    public var message: String
    /// `file:line: message`, as compilers print it, so editors can jump to it.
    public var description: String { "\(file):\(line): \(message)" }
}

/// A configuration that was refused; carries every problem found, not just the first.
public struct ConfigError: HallwatchError {
    /// Stable error code for logs and the bus: `config.invalid` or `config.unreadable`.
    public var code: String
    /// Every problem, in the order the loader found them (schema walk in document order, then decoding, then
    /// the sections' consistency checks in ``HallwatchConfig/sections`` order).
    public var diagnostics: [ConfigDiagnostic]
    /// One `file:line: message` line per diagnostic.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
    /// ``code``.
    public var stableCode: String { code }
    /// Every diagnostic, one per line (as ``description``).
    public var message: String { description }
}

/// Reads and schema-checks ``HallwatchConfig`` documents.
///
/// Three passes in one run, each reporting every problem it finds:
/// 1. YAML syntax (libyaml, through Yams): the first syntax error, with its line (nothing else can be read).
/// 2. The schema walk (``ConfigSchema``): every unknown or missing key, every scalar of the wrong form or out
///    of range, each at its line.
/// 3. The part of the document that fits the schema (unknown keys, ill-formed optional values and entries
///    without a usable required key set aside) is decoded with its defaults, then each section's consistency
///    checks run on it (duplicate names, cross-references, minimum ≤ maximum, absolute paths).
///
/// This is the one validation of a configuration: every process (``load(path:)`` through `ProcessSetup`),
/// `hallwatchctl config validate` and the provisioner (a bundle's `hallwatch.yaml`) call it.
public enum ConfigLoader {
    /// Reads the file at `path`.
    /// - Throws: ``ConfigError`` with code `config.unreadable` if it cannot be read, `config.invalid` with a
    ///   diagnostic per problem (unknown key, missing key, wrong type, out-of-range value) otherwise.
    public static func load(path: String) throws -> HallwatchConfig {
        try parse(readText(path: path), file: path)
    }

    /// The text of the file at `path`, checked to be a bounded UTF-8 text file (what ``load(path:)`` parses;
    /// a caller that keeps the text it validated reads it once with this, then calls ``parse(_:file:)``).
    /// - Throws: ``ConfigError`` `config.unreadable` (missing, no permission) or `config.invalid` (larger than
    ///   ``maxBytes``, not UTF-8, a NUL byte).
    public static func readText(path: String) throws -> String {
        func unreadable(_ why: String) -> ConfigError {
            ConfigError(code: "config.unreadable", diagnostics: [.init(file: path, line: 0, message: why)])
        }
        guard FileManager.default.fileExists(atPath: path) else { throw unreadable("no such file") }
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber,
            size.intValue > maxBytes
        {
            throw ConfigError(
                code: "config.invalid",
                diagnostics: [.init(file: path, line: 0, message: "the file is larger than \(maxBytes) bytes")])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw unreadable("cannot read the file (permissions?)")
        }
        guard let text = String(data: data, encoding: .utf8), !text.contains("\0") else {
            throw ConfigError(
                code: "config.invalid",
                diagnostics: [.init(file: path, line: 0, message: "not a text file (expected UTF-8 YAML)")])
        }
        return text
    }

    /// The largest document accepted, in bytes (inputs are bounded: a USB drop could hold anything).
    public static let maxBytes = 1 << 20

    /// Parses `text` (named `file` in diagnostics). Same errors as ``load(path:)``.
    public static func parse(_ text: String, file: String = "hallwatch.yaml") throws -> HallwatchConfig {
        let (config, refused) = try parseWhatFits(text, file: file)
        if let refused { throw refused }
        return config
    }

    /// The file at `path` as far as it fits: what a read-only tool (`hallwatchctl status`) may still use when the
    /// file is refused, so that a typo in one section does not hide the box's state. Never for a process that acts
    /// on its configuration: those use ``load(path:)``.
    /// - Returns: the configuration decoded from the part of the document that fits the schema (pass 3's input),
    ///   and the refusal with every diagnostic when there is one.
    /// - Throws: ``ConfigError`` when nothing can be decoded (unreadable, a YAML syntax error, no usable document).
    public static func loadWhatFits(path: String) throws -> (config: HallwatchConfig, refused: ConfigError?) {
        try parseWhatFits(readText(path: path), file: path)
    }

    /// ``parse(_:file:)``'s passes, returning what fits with the refusal instead of throwing it.
    static func parseWhatFits(_ text: String, file: String) throws -> (config: HallwatchConfig, refused: ConfigError?) {
        func fail(_ line: Int, _ message: String) -> ConfigError {
            ConfigError(code: "config.invalid", diagnostics: [.init(file: file, line: line, message: message)])
        }
        guard text.utf8.count <= maxBytes else { throw fail(0, "the file is larger than \(maxBytes) bytes") }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw fail(1, "the document is empty; expected a mapping with box, recorder and cameras")
            }
            root = node
        } catch let e as ConfigError { throw e } catch let e as YamlError {
            throw fail(yamlErrorLine(e), "not valid YAML: \(yamlErrorText(e))")
        } catch { throw fail(0, "not valid YAML: \(error)") }

        // One run reports every problem: the consistency checks run on the part of the document that fits the
        // schema even when the walk found problems elsewhere (see `ConfigSchema.check`).
        var problems: [ConfigDiagnostic] = []
        if let fits = ConfigSchema.root.check(root, path: [], file: file, into: &problems) {
            do {
                let config = try HallwatchConfig.decode(fits)
                var check = ConfigCheck(file: file, root: fits, original: root)
                for section in HallwatchConfig.sections { validate(section, config, &check) }
                problems += check.problems
                return (config, problems.isEmpty ? nil : ConfigError(code: "config.invalid", diagnostics: problems))
            } catch let e as DecodingError {
                // After problems in the walk, a failure to decode what fits is one of their consequences.
                if problems.isEmpty {
                    let (path, message) = describe(e)
                    problems.append(.init(file: file, line: line(of: path, in: root), message: message))
                }
            }
        }
        throw ConfigError(code: "config.invalid", diagnostics: problems)
    }

    private static func validate<S: ConfigSection>(
        _ section: S.Type, _ config: HallwatchConfig, _ check: inout ConfigCheck
    ) {
        S.validate(config, &check)
    }

    static func yamlErrorLine(_ e: YamlError) -> Int {
        switch e {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return 0
        }
    }

    /// libyaml's problem in one line, without the echo of the document Yams adds.
    static func yamlErrorText(_ e: YamlError) -> String {
        switch e {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _),
            .composer(let context, let problem, _, _):
            return [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ": ")
        default: return "\(e)".split(separator: "\n").first.map(String.init) ?? "syntax error"
        }
    }

    static func describe(_ e: DecodingError) -> ([any CodingKey], String) {
        let place: ([any CodingKey]) -> String = { path in
            path.isEmpty
                ? "document" : path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch e {
        case .typeMismatch(let type, let ctx):
            return (ctx.codingPath, "\(place(ctx.codingPath)): expected \(typeName(type))")
        case .valueNotFound(let type, let ctx):
            return (ctx.codingPath, "\(place(ctx.codingPath)): expected \(typeName(type)), found nothing")
        case .keyNotFound(let key, let ctx):
            return (ctx.codingPath, "\(place(ctx.codingPath + [key])): required key is missing")
        case .dataCorrupted(let ctx): return (ctx.codingPath, "\(place(ctx.codingPath)): \(ctx.debugDescription)")
        @unknown default: return ([], "\(e)")
        }
    }

    static func typeName(_ t: Any.Type) -> String {
        switch t {
        case is Bool.Type: return "true or false"
        case is Int.Type, is Int64.Type: return "an integer"
        case is Double.Type: return "a number"
        case is String.Type: return "a string"
        default: return "\(t)"
        }
    }

    /// The 1-based line of the node at `path`, or of its nearest existing parent.
    static func line(of path: [any CodingKey], in root: Node) -> Int {
        var node = root
        for key in path {
            if let i = key.intValue, let seq = node.sequence, i < seq.count {
                node = seq[i]
                continue
            }
            if let map = node.mapping, let next = map[key.stringValue] {
                node = next
                continue
            }
            break
        }
        return node.mark?.line ?? 0
    }
}

/// The consistency checks' notebook: each failed check becomes a diagnostic at the line of its key.
///
/// The checks run on the part of the document that fits the schema (`root`), whose lists may lack entries the
/// walk set aside; a diagnostic names the entry by its index in the file as written (`original`).
struct ConfigCheck {
    let file: String
    let root: Node
    let original: Node
    private(set) var problems: [ConfigDiagnostic] = []

    init(file: String, root: Node, original: Node? = nil) {
        self.file = file
        self.root = root
        self.original = original ?? root
    }

    /// Records `message` at `path` (keys and `[index]` elements, e.g. `["cameras", "[2]", "disk"]`) unless `ok`.
    mutating func need(_ ok: Bool, _ path: [String], _ message: String) {
        if !ok {
            let (line, written) = locate(path)
            problems.append(.init(file: file, line: line, message: "\(written.joined(separator: ".")): \(message)"))
        }
    }

    /// The line of the node at `path`, or of its nearest existing parent.
    func line(of path: [String]) -> Int { locate(path).line }

    /// The line of the node at `path` (or of its nearest existing parent), and `path` with each list index
    /// turned into the entry's index in the file as written (entries are told apart by their place in the
    /// file).
    private func locate(_ path: [String]) -> (line: Int, path: [String]) {
        var node = root
        var written: Node? = original
        var named: [String] = []
        for k in path {
            if k.hasPrefix("["), let i = Int(k.dropFirst().dropLast()), let s = node.sequence, i < s.count {
                node = s[i]
                let index = written?.sequence?.firstIndex {
                    $0.mark?.line == node.mark?.line && $0.mark?.column == node.mark?.column
                }
                written = index.flatMap { written?.sequence?[$0] }
                named.append("[\(index ?? i)]")
            } else if let m = node.mapping, let n = m[k] {
                node = n
                written = written?.mapping?[k]
                named.append(k)
            } else {
                named.append(k)
                break
            }
        }
        return (node.mark?.line ?? 0, named + path.dropFirst(named.count))
    }
}

/// A duration as written in YAML (`500ms`, `1s`, `30d`); see `DurationText`.
struct ConfigDuration: Decodable {
    var value: Duration
    init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let d = DurationText.parse(text) else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "expected a duration such as 500ms, 1s, 5m, 2h or 30d, got \"\(text)\""))
        }
        value = d
    }
}
