import HallwatchCore
import Yams

/// The box's whole configuration: one YAML document, `/etc/hallwatch/hallwatch.yaml` in production.
///
/// The top level holds ``box`` and ``building``; every other key is a section with a file of its own
/// (`BusSection.swift`, `RecorderSection.swift`, …) that declares its type, schema, defaults and
/// documentation together and adds a property here (``bus``, ``recorder``, ``capture``, ``cameras``,
/// ``retention``, ``discovery``). The commented example at `Image/hallwatch.example.yaml` is the reference of
/// every key. Unknown keys and bad values are refused by ``ConfigLoader`` with `file:line` and the expected
/// form, all problems at once.
public struct HallwatchConfig: Sendable, Equatable {
    /// Box identifier used in bus topics (`hallwatch/v1/<box>/…`); same alphabet as a camera id. Required.
    public var box: String
    /// Building name shown to people. Default: the box id. At most 200 bytes.
    public var building: String

    /// Every section, one line each. The loader decodes them and then runs their consistency checks in this
    /// order, which is therefore also the order of the checks' diagnostics (the order operators have always
    /// seen; append new sections at the end).
    static let sections: [any ConfigSection.Type] = [
        BusSection.self,
        CaptureSection.self,
        RecorderSection.self,
        DiscoverySection.self,
        CamerasSection.self,
        RetentionSection.self,
        MapSection.self,
        DoorsSection.self,
    ]

    /// The top-level keys that are not sections.
    static let topKeys: [ConfigKey<HallwatchConfig>] = [
        .scalar("box", \.box, .identifier, required: true),
        .scalar("building", \.building, .text(maxBytes: 200)),
    ]

    /// The top-level schema: ``topKeys`` and each section's key.
    static var schema: ConfigSchema {
        var keys = Dictionary(uniqueKeysWithValues: topKeys.map { ($0.name, $0.schema) })
        for section in sections { keys[section.key] = section.schema }
        return .mapping(keys, required: Set(topKeys.filter(\.required).map(\.name)))
    }

    /// The sections' values by section type; a section not stored here has its ``ConfigSection/absent`` value.
    private var values: [ObjectIdentifier: any Sendable] = [:]

    /// A configuration with every section at its default (as if the document held only `box`, and
    /// `building` when given).
    public init(box: String, building: String? = nil) {
        self.box = box
        self.building = building ?? box
    }

    /// The value of one section (what the section files' public properties read and write).
    subscript<S: ConfigSection>(section section: S.Type) -> S.Value {
        get { values[ObjectIdentifier(section)] as? S.Value ?? S.absent }
        set { values[ObjectIdentifier(section)] = newValue }
    }

    /// Two configurations are equal when their top-level keys and every section are.
    public static func == (a: HallwatchConfig, b: HallwatchConfig) -> Bool {
        func same<S: ConfigSection>(_ s: S.Type) -> Bool { a[section: s] == b[section: s] }
        return a.box == b.box && a.building == b.building && sections.allSatisfy { same($0) }
    }

    /// Decodes a schema-checked document: the top-level keys, then every section with its defaults.
    /// - Throws: `DecodingError` (with the path from the root) for what the schema walk cannot see.
    static func decode(_ root: Node) throws -> HallwatchConfig {
        var config = HallwatchConfig(box: "")  // `box` is required: always read
        try ConfigKey.read(topKeys, from: root, into: &config)
        if !ConfigKey<HallwatchConfig>.gives(root, "building") { config.building = config.box }
        func load<S: ConfigSection>(_ s: S.Type) throws { try s.load(from: root, into: &config) }
        for section in sections { try load(section) }
        return config
    }
}

extension ConfigSchema {
    /// The whole document's schema (see ``HallwatchConfig/sections``).
    static let root: ConfigSchema = HallwatchConfig.schema
}
