import HallwatchCore
import Yams

/// `doors[]` — one door of the building for door and alarm events (issue 16): which cameras see it, how much
/// video around an event matters, and which event types pin that video with an evidence hold.
public struct DoorConfig: Codable, Sendable, Equatable {
    /// Unique door id: what an event's `subject` names (see `CameraID` for the form). Required.
    public var id: String
    /// Name shown to people. Default: the id. At most 200 bytes.
    public var name: String
    /// Each event source's own reference for this door (an OnGuard panel/reader pair, a Genetec door GUID, an
    /// ONVIF `DoorToken`): an event carrying it as `doorref` concerns this door. Default none.
    public var refs: [DoorReference] = []
    /// Cameras that see the door itself: held on a `holdOn` event and played from the pre-roll on the events
    /// page. Default none.
    public var direct: [CameraID] = []
    /// Cameras that see its surroundings (a corridor leading to it): marked on their timelines. Default none.
    public var indirect: [CameraID] = []
    /// Video before the event that matters. Default `10s`, range 0s–10m.
    public var preRoll: Duration = .seconds(10)
    /// Video after the event that matters. Default `30s`, range 0s–1h.
    public var postRoll: Duration = .seconds(30)
    /// Event types that place an evidence hold over [time − preRoll, time + postRoll] on the direct cameras
    /// (for example `door.forced`, `access.duress`). Default none.
    public var holdOn: [String] = []

    /// A door with its id; everything else at its default (`name` is the id).
    public init(id: String) {
        self.id = id
        self.name = id
    }

    /// The door `source` refers to as `ref`, if any.
    public func matches(source: String, ref: String) -> Bool {
        refs.contains { $0.source == source && $0.ref == ref }
    }
}

/// `doors[].refs[]` — one source's name for a door.
public struct DoorReference: Codable, Sendable, Equatable {
    /// The event source's name (`hallwatchctl event-source add NAME`).
    public var source: String
    /// Its native reference, verbatim. At most 128 bytes.
    public var ref: String
    /// A reference from its parts.
    public init(source: String, ref: String) {
        self.source = source
        self.ref = ref
    }
}

extension HallwatchConfig {
    /// The building's doors (`doors:`; see ``DoorConfig``). Ids are unique. Default none.
    public var doors: [DoorConfig] {
        get { self[section: DoorsSection.self] }
        set { self[section: DoorsSection.self] = newValue }
    }

    /// Looks a door up by id; `nil` when it is not configured.
    public func door(_ id: String) -> DoorConfig? { doors.first { $0.id == id } }
}

/// `doors:` as a section of the document.
enum DoorsSection: ConfigSection {
    static let key = "doors"
    static var absent: [DoorConfig] { [] }
    static let refKeys: [ConfigKey<DoorReference>] = [
        .scalar("source", \.source, .text(maxBytes: 128), required: true),
        .scalar("ref", \.ref, .text(maxBytes: 128), required: true),
    ]
    static let doorKeys: [ConfigKey<DoorConfig>] = [
        .scalar("id", \.id, .identifier, required: true),
        .scalar("name", \.name, .text(maxBytes: 200)),
        .value("refs", \.refs, .sequence(ConfigKey.mapping(refKeys), maxCount: 16)),
        .value("direct", \.direct, .sequence(.scalar(.identifier), maxCount: 32)),
        .value("indirect", \.indirect, .sequence(.scalar(.identifier), maxCount: 64)),
        .duration("preRoll", \.preRoll, min: .zero, max: .seconds(600)),
        .duration("postRoll", \.postRoll, min: .zero, max: .seconds(3600)),
        .value("holdOn", \.holdOn, .sequence(.scalar(.text(maxBytes: 140)), maxCount: 32)),
    ]
    static let schema: ConfigSchema = .sequence(ConfigKey.mapping(doorKeys), maxCount: 1000)

    static func decode(_ node: Node) throws -> [DoorConfig] {
        try (node.sequence.map(Array.init) ?? []).enumerated().map { i, element in
            var door = DoorConfig(id: "unset")  // `id` is required (the schema walk saw it)
            do { try ConfigKey.read(doorKeys, from: element, into: &door) } catch let e as DecodingError {
                throw e.under(PathKey(index: i))
            }
            if !ConfigKey<DoorConfig>.gives(element, "name") { door.name = door.id }
            return door
        }
    }

    /// Door ids are unique; their cameras are configured ones; `holdOn` types are event types.
    static func validate(_ config: HallwatchConfig, _ check: inout ConfigCheck) {
        var seen = Set<String>()
        let cameras = Set(config.cameras.map(\.id))
        for (i, door) in config.doors.enumerated() {
            check.need(seen.insert(door.id).inserted, ["doors", "[\(i)]", "id"], "duplicate door id '\(door.id)'")
            for (key, list) in [("direct", door.direct), ("indirect", door.indirect)] {
                for cam in list where !cameras.contains(cam) {
                    check.need(false, ["doors", "[\(i)]", key], "camera '\(cam)' is not in cameras:")
                }
            }
            for type in door.holdOn where !EventTypes.isValid(type) {
                check.need(
                    false, ["doors", "[\(i)]", "holdOn"],
                    "'\(type)' is not an event type (a normalised one or x.<vendor>.<name>)")
            }
        }
    }
}
