import HallwatchCore
import Yams

/// One top-level key of the configuration (`bus:`, `recorder:`, …) and everything about it.
///
/// A section's file holds, together: its public type (each key a property whose initial value is its
/// default and whose doc comment is its documentation), the list of its keys (``ConfigKey``: name, form and
/// range, and the property it sets — the schema and the decoding both come from this list), its consistency
/// checks (``validate(_:_:)``), and a computed property on ``HallwatchConfig`` that reads it. Registering it
/// is one line in ``HallwatchConfig/sections``.
protocol ConfigSection: SendableMetatype {
    /// The section's value as code reads it, defaults applied.
    associatedtype Value: Sendable & Equatable

    /// The top-level key, e.g. `bus`.
    static var key: String { get }
    /// What the schema allows under ``key``.
    static var schema: ConfigSchema { get }
    /// The value when the key is absent from the document.
    static var absent: Value { get }
    /// The value of a document that has the key (its node, already schema-checked), defaults applied to the
    /// keys it leaves out.
    /// - Throws: `DecodingError`, with a coding path relative to the section, for what the schema walk
    ///   cannot see.
    static func decode(_ node: Node) throws -> Value
    /// Consistency checks across keys or sections, run after every section is decoded; each failure is
    /// recorded with ``ConfigCheck/need(_:_:_:)`` at the path of the key to fix.
    static func validate(_ config: HallwatchConfig, _ check: inout ConfigCheck)
}

extension ConfigSection {
    static func validate(_ config: HallwatchConfig, _ check: inout ConfigCheck) {}

    /// Decodes this section from the document's `root` (or takes ``absent``) and stores it in `config`.
    /// - Throws: `DecodingError` with its coding path starting at the document's root.
    static func load(from root: Node, into config: inout HallwatchConfig) throws {
        guard let node = root.mapping?[key] else {
            config[section: Self.self] = absent
            return
        }
        do {
            config[section: Self.self] = try decode(node)
        } catch let e as DecodingError {
            throw e.under(PathKey(key))
        }
    }
}

/// A section that is one mapping onto one struct: its schema and its decoding come from ``keys``.
protocol KeyedConfigSection: ConfigSection {
    /// Every key of the section, in the order they are decoded.
    static var keys: [ConfigKey<Value>] { get }
}

extension KeyedConfigSection {
    static var schema: ConfigSchema { ConfigKey.mapping(keys) }
    static func decode(_ node: Node) throws -> Value {
        var value = absent
        try ConfigKey.read(keys, from: node, into: &value)
        return value
    }
}

/// One key of a mapping: its name, the form and range of its value, whether it is required, and how the
/// value is stored in the mapping's type.
///
/// The value is decoded by Yams as the property's type (through ``ConfigDuration`` for durations), as a
/// `Decodable` document of optional keys would be: an optional key written as null (`~`, `null` or nothing)
/// leaves the default in place.
struct ConfigKey<Value>: Sendable {
    /// The key as written.
    let name: String
    /// What its value may be.
    let schema: ConfigSchema
    /// Whether the schema walk reports it missing.
    let required: Bool
    /// Stores the key's (schema-checked) value in `value`. Throws `DecodingError` with a path relative to
    /// the key's value.
    let read: @Sendable (inout Value, Node) throws -> Void

    /// A key whose value Yams decodes as the property's type `T` (a scalar, a list or a mapping).
    static func value<T: Decodable & SendableMetatype>(
        _ name: String, _ property: WritableKeyPath<Value, T> & Sendable, _ schema: ConfigSchema, required: Bool = false
    ) -> Self {
        ConfigKey(name: name, schema: schema, required: required) { v, node in
            v[keyPath: property] = try YAMLDecoder().decode(T.self, from: node)
        }
    }
    /// A key whose value Yams decodes as `T?` (an optional property; the value is never null here).
    static func value<T: Decodable & SendableMetatype>(
        _ name: String, _ property: WritableKeyPath<Value, T?> & Sendable, _ schema: ConfigSchema
    ) -> Self {
        ConfigKey(name: name, schema: schema, required: false) { v, node in
            v[keyPath: property] = try YAMLDecoder().decode(T.self, from: node)
        }
    }
    /// A scalar key, see ``value(_:_:_:required:)``.
    static func scalar<T: Decodable & SendableMetatype>(
        _ name: String, _ property: WritableKeyPath<Value, T> & Sendable, _ form: ConfigSchema.Scalar,
        required: Bool = false
    ) -> Self {
        value(name, property, .scalar(form), required: required)
    }
    /// An optional scalar key.
    static func scalar<T: Decodable & SendableMetatype>(
        _ name: String, _ property: WritableKeyPath<Value, T?> & Sendable, _ form: ConfigSchema.Scalar
    ) -> Self {
        value(name, property, .scalar(form))
    }
    /// A duration (`500ms`, `1s`, `30d`) between `min` and `max`.
    static func duration(
        _ name: String, _ property: WritableKeyPath<Value, Duration> & Sendable, min: Duration, max: Duration
    ) -> Self {
        ConfigKey(name: name, schema: .scalar(.duration(min: min, max: max)), required: false) { v, node in
            v[keyPath: property] = try YAMLDecoder().decode(ConfigDuration.self, from: node).value
        }
    }
    /// An optional duration between `min` and `max`.
    static func duration(
        _ name: String, _ property: WritableKeyPath<Value, Duration?> & Sendable, min: Duration, max: Duration
    ) -> Self {
        ConfigKey(name: name, schema: .scalar(.duration(min: min, max: max)), required: false) { v, node in
            v[keyPath: property] = try YAMLDecoder().decode(ConfigDuration.self, from: node).value
        }
    }

    /// The schema of a mapping with `keys`.
    static func mapping(_ keys: [ConfigKey]) -> ConfigSchema {
        .mapping(
            Dictionary(uniqueKeysWithValues: keys.map { ($0.name, $0.schema) }),
            required: Set(keys.filter(\.required).map(\.name)))
    }

    /// Stores every key of `keys` that `node` (a schema-checked mapping) has into `value`, in the order of
    /// `keys`; a null value of an optional key is skipped.
    /// - Throws: the first `DecodingError`, its path starting at the key.
    static func read(_ keys: [ConfigKey], from node: Node, into value: inout Value) throws {
        guard let map = node.mapping else { return }
        for key in keys {
            guard let child = map[key.name], key.required || child.null == nil else { continue }
            do { try key.read(&value, child) } catch let e as DecodingError { throw e.under(PathKey(key.name)) }
        }
    }

    /// Whether `node` (a mapping) gives `name` a value that is not null.
    static func gives(_ node: Node, _ name: String) -> Bool {
        guard let child = node.mapping?[name] else { return false }
        return child.null == nil
    }
}

/// A key or list index as a coding key, to put in front of the coding paths of decoding errors.
struct PathKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(_ name: String) { stringValue = name }
    init(index: Int) {
        stringValue = "Index \(index)"
        intValue = index
    }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { self.init(index: intValue) }
}

extension DecodingError {
    /// The same error with `key` in front of its coding path: a key's value is decoded from its own node,
    /// but diagnostics name the path from the document's root.
    func under(_ key: any CodingKey) -> DecodingError {
        func moved(_ c: Context) -> Context {
            Context(
                codingPath: [key] + c.codingPath, debugDescription: c.debugDescription,
                underlyingError: c.underlyingError)
        }
        switch self {
        case .typeMismatch(let t, let c): return .typeMismatch(t, moved(c))
        case .valueNotFound(let t, let c): return .valueNotFound(t, moved(c))
        case .keyNotFound(let k, let c): return .keyNotFound(k, moved(c))
        case .dataCorrupted(let c): return .dataCorrupted(moved(c))
        @unknown default: return self
        }
    }
}
