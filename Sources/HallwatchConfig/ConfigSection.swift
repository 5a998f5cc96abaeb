import HallwatchCore
import Yams

/// One top-level key of the configuration (`bus:`, `recorder:`, …) and everything about it.
///
/// A section's file holds, together: its public type (each key a property whose initial value is its
/// default and whose doc comment is its documentation), its ``schema`` (form and range of every key), its
/// ``Raw`` decodable (the keys as written, all optional), how the raw form becomes the public type with the
/// defaults applied (``resolve(_:)``), its consistency checks (``validate(_:_:)``), and a computed property
/// on ``HallwatchConfig`` that reads it. Registering it is one line in ``HallwatchConfig/sections``.
protocol ConfigSection {
    /// The section's value as code reads it, defaults applied.
    associatedtype Value: Sendable & Equatable
    /// The section as written in YAML; every optional key optional. Decoded only after the schema walk
    /// accepted the document, so it fails only in the rare ways the schema cannot see.
    associatedtype Raw: Decodable

    /// The top-level key, e.g. `bus`.
    static var key: String { get }
    /// What the schema allows under ``key``.
    static var schema: ConfigSchema { get }
    /// The value when the key is absent from the document.
    static var absent: Value { get }
    /// The value of a document that has the key, defaults applied to the keys it leaves out.
    static func resolve(_ raw: Raw) -> Value
    /// Consistency checks across keys or sections, run after every section is decoded; each failure is
    /// recorded with ``ConfigCheck/need(_:_:_:)`` at the path of the key to fix.
    static func validate(_ config: HallwatchConfig, _ check: inout ConfigCheck)
}

extension ConfigSection {
    static func validate(_ config: HallwatchConfig, _ check: inout ConfigCheck) {}

    /// Decodes this section from the document's `root` (or takes ``absent``) and stores it in `config`.
    /// - Throws: `DecodingError` with its coding path starting at the document's root.
    static func load(from root: Node, into config: inout HallwatchConfig) throws {
        guard let node = root.mapping?[key] else { config[section: Self.self] = absent; return }
        do {
            config[section: Self.self] = resolve(try YAMLDecoder().decode(Raw.self, from: node))
        } catch let e as DecodingError {
            throw e.under(SectionKey(stringValue: key))
        }
    }
}

/// A top-level key as a coding key (prefixed to the coding paths of a section's decoding errors).
struct SectionKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension DecodingError {
    /// The same error with `key` in front of its coding path: a section is decoded from its own node, but
    /// diagnostics name the path from the document's root.
    func under(_ key: any CodingKey) -> DecodingError {
        func moved(_ c: Context) -> Context { Context(codingPath: [key] + c.codingPath, debugDescription: c.debugDescription, underlyingError: c.underlyingError) }
        switch self {
        case .typeMismatch(let t, let c): return .typeMismatch(t, moved(c))
        case .valueNotFound(let t, let c): return .valueNotFound(t, moved(c))
        case .keyNotFound(let k, let c): return .keyNotFound(k, moved(c))
        case .dataCorrupted(let c): return .dataCorrupted(moved(c))
        @unknown default: return self
        }
    }
}
