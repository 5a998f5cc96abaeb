import Foundation
import HallwatchCore
import Yams

/// What the schema allows where: mappings with known (and required) keys, sequences, and typed scalars.
///
/// The schema walk checks every key and every scalar's form and range before anything is decoded, each
/// problem at its line, and hands back the part of the document that fits (``check(_:path:file:into:)``):
/// decoding that part cannot fail on types, and the consistency checks run on it in the same pass, so a file's
/// problems are all reported at once. Each section declares its own part (``ConfigSection/schema``); ``root``
/// puts them together.
indirect enum ConfigSchema: Sendable {
    case mapping([String: ConfigSchema], required: Set<String> = [])
    case sequence(ConfigSchema, maxCount: Int)
    case scalar(Scalar)

    /// The form of one value.
    enum Scalar: Sendable {
        case text(maxBytes: Int)
        case bool
        case integer(ClosedRange<Int64>, multipleOf: Int64)
        case duration(min: Duration, max: Duration)
        case oneOf([String])
        case identifier
        /// An identifier of at most `maxBytes` bytes, `why` said in the diagnostic (a disk name: its filesystem
        /// label is `hallwatch-<name>`).
        case shortIdentifier(maxBytes: Int, why: String)
        case rtspURL
        case path
        /// A path starting with `/`: a file read by a process whose working directory is not the file's.
        case absolutePath
    }

    /// The tags a node may carry: what YAML's core schema resolves plain values to.
    static let allowedTags: Set<String> = Set(
        ([.str, .seq, .map, .bool, .float, .null, .int, .timestamp, .implicit, .nonSpecific] as [Tag.Name]).map(
            \.rawValue))

    /// Appends to `problems` every place where `node` (at `path`, in `file`) does not fit this schema, and
    /// returns the part of `node` that fits, `nil` when none does.
    ///
    /// What fits is what decoding and the consistency checks may see when the walk found problems, so they
    /// can still report theirs in the same run: unknown keys are left out, an ill-formed value of an optional
    /// key is left out (its default applies), and a mapping whose required key is missing or ill-formed is left
    /// out whole (a list entry without a usable `id` cannot be checked). Ill-formed text and RTSP URLs are kept
    /// as written, since they decode as strings: a camera whose `source` is wrong is still a camera that other
    /// sections may name.
    @discardableResult
    func check(_ node: Node, path: [String], file: String, into problems: inout [ConfigDiagnostic]) -> Node? {
        let line = node.mark?.line ?? 0
        let here = path.isEmpty ? "document" : path.joined(separator: ".")
        func problem(_ message: String, at l: Int? = nil) {
            problems.append(.init(file: file, line: l ?? line, message: message))
        }
        // Explicit tags beyond YAML's core schema (`!custom`, `!!binary`, `!!set`, `!!merge`, …) are refused: the
        // document is data, and a USB drop could carry anything.
        // The tag as written: `Node.tag` would resolve (and so change) a plain scalar's tag in place.
        let written: String
        switch node {
        case .scalar(let s): written = s.tag.rawValue
        case .mapping(let m): written = m.tag.rawValue
        case .sequence(let q): written = q.tag.rawValue
        case .alias(let a): written = a.tag.rawValue
        }
        guard Self.allowedTags.contains(written) else {
            problem("\(here): the tag \(written) is not allowed")
            return nil
        }
        switch (self, node) {
        case (.mapping(let keys, let required), .mapping(let map)):
            var seen = Set<String>()
            var kept: [(Node, Node)] = []
            var lostRequired = false
            for (k, v) in map {
                guard let name = k.string else { continue }
                seen.insert(name)
                if let sub = keys[name] {
                    if let fits = sub.check(v, path: path + [name], file: file, into: &problems) {
                        kept.append((k, fits))
                    } else if required.contains(name) {
                        lostRequired = true
                    }
                } else {
                    problem(
                        "unknown key '\(name)' in \(here); expected one of: \(keys.keys.sorted().joined(separator: ", "))",
                        at: k.mark?.line)
                }
            }
            for key in required.subtracting(seen).sorted() {
                problem("\((path + [key]).joined(separator: ".")): required key is missing")
                lostRequired = true
            }
            // The document itself is kept: its one required key (`box`) names nothing another key refers to.
            guard !lostRequired || path.isEmpty else { return nil }
            return .mapping(Node.Mapping(kept, map.tag, map.style, map.mark))
        case (.sequence(let element, let maxCount), .sequence(let seq)):
            if seq.count > maxCount { problem("\(here): at most \(maxCount) entries, found \(seq.count)") }
            let kept = seq.prefix(maxCount).enumerated().compactMap { i, v in
                element.check(v, path: path + ["[\(i)]"], file: file, into: &problems)
            }
            return .sequence(Node.Sequence(kept, seq.tag, seq.style, seq.mark))
        case (.scalar(let kind), .scalar(let scalar)):
            guard let message = kind.problem(with: scalar.string) else { return node }
            problem("\(here): \(message)")
            return kind.decodesAnyText ? node : nil
        case (.mapping, _):
            problem("\(here): expected a mapping of keys")
            return nil
        case (.sequence, _):
            problem("\(here): expected a list")
            return nil
        case (.scalar, _):
            problem("\(here): expected a single value, not a list or mapping")
            return nil
        }
    }
}

extension ConfigSchema.Scalar {
    /// Whether any text decodes as this form's property (a `String`), so an ill-formed value can stay in the
    /// part of the document the consistency checks see.
    var decodesAnyText: Bool {
        switch self {
        case .text, .rtspURL: return true
        default: return false
        }
    }

    /// What is wrong with `text` for this form, or `nil` when it fits.
    func problem(with text: String) -> String? {
        switch self {
        case .text(let maxBytes):
            guard text.utf8.count <= maxBytes else { return "expected at most \(maxBytes) bytes of text" }
            // Text goes into logs, pages and protocol headers (a camera's user name into RTSP's Authorization):
            // a line break or other control character would forge lines there.
            return text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
                ? "expected one line of text without control characters" : nil
        case .bool:
            return ["true", "false"].contains(text.lowercased()) ? nil : "expected true or false, got \"\(text)\""
        case .integer(let range, let multiple):
            guard let v = Int64(text) else { return "expected an integer, got \"\(text)\"" }
            guard range.contains(v) else { return "expected \(range.lowerBound) to \(range.upperBound), got \(v)" }
            return v % multiple == 0 ? nil : "expected a multiple of \(multiple), got \(v)"
        case .duration(let min, let max):
            guard let d = DurationText.parse(text) else {
                return "expected a duration such as 500ms, 1s, 5m, 2h or 30d, got \"\(text)\""
            }
            return d >= min && d <= max
                ? nil : "expected \(DurationText.format(min)) to \(DurationText.format(max)), got \(text)"
        case .oneOf(let choices):
            return choices.contains(text) ? nil : "expected one of \(choices.joined(separator: ", ")), got \"\(text)\""
        case .identifier:
            return CameraID.isValid(text)
                ? nil : "expected 1-32 characters a-z, 0-9, '-' or '_' (not starting with '-' or '_'), got \"\(text)\""
        case .shortIdentifier(let maxBytes, let why):
            return CameraID.isValid(text) && text.utf8.count <= maxBytes
                ? nil
                : "expected 1-\(maxBytes) characters a-z, 0-9, '-' or '_' (not starting with '-' or '_'; \(why)), got \"\(text)\""
        case .rtspURL:
            guard let url = URLComponents(string: text), url.scheme?.lowercased() == "rtsp", !(url.host ?? "").isEmpty
            else {
                return "expected an rtsp://host[:port]/path URL, got \"\(text)\""
            }
            guard url.user == nil && url.password == nil else {
                return "credentials do not belong in the URL (they would appear in logs); use username and passwordFile"
            }
            guard !text.contains(where: { $0.isWhitespace || $0.isNewline }) else {
                return "expected a URL without spaces or line breaks, got \"\(text)\""
            }
            if let port = url.port, !(1...65_535).contains(port) { return "port \(port) is outside 1-65535" }
            // Some cameras take credentials in the query (`?user=…&password=…`): just as secret.
            let secretKeys: Set<String> = ["password", "passwd", "pass", "pwd"]
            if (url.queryItems ?? []).contains(where: { secretKeys.contains($0.name.lowercased()) }) {
                return
                    "a password does not belong in the URL's query (it would appear in logs); use username and passwordFile"
            }
            return nil
        case .path:
            guard !text.isEmpty, text.utf8.count <= 4096, !text.contains("\0") else { return "expected a file path" }
            return nil
        case .absolutePath:
            if let problem = ConfigSchema.Scalar.path.problem(with: text) { return problem }
            return text.hasPrefix("/")
                ? nil
                : "expected an absolute path (starting with /), got \"\(text)\": a relative one would be read from whichever directory a process runs in"
        }
    }
}
