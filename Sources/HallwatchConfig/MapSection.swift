import Foundation
import HallwatchCore
import Yams

/// `map:` — the building's floor plans and where the cameras and doors are on them (the web's `/map` page).
///
/// Coordinates are pixels of the floor's image: `x` from the left edge, `y` from the top edge, as an image
/// editor shows them. A camera's `direction` is where it looks, in degrees clockwise from the top of the
/// image (0 up, 90 right); `angle` is its horizontal field of view. The page never writes this section: a
/// building admin's placement mode offers the changed section as YAML to download, and it arrives on the box
/// like the rest of the configuration.
public struct MapConfig: Codable, Sendable, Equatable {
    /// The floors, in the order the floor switcher lists them. 1–32; ids unique.
    public var floors: [MapFloor] = []
    /// Camera pins: at most one per configured camera. Default none.
    public var cameras: [MapCameraPin] = []
    /// Door pins (ids are the door ids of the events configuration). Default none. Ids unique.
    public var doors: [MapDoorPin] = []
    /// An empty map (no floors).
    public init() {}

    /// Looks a floor up by id.
    public func floor(_ id: String) -> MapFloor? { floors.first { $0.id == id } }
}

/// `map.floors[]` — one floor plan.
public struct MapFloor: Codable, Sendable, Equatable {
    /// Floor id used by pins (`ground`, `level-1`); same alphabet as a camera id. Required.
    public var id: String
    /// Name shown in the floor switcher. Default: the id. At most 100 bytes.
    public var name: String
    /// Storey number, for ordering (0 the ground floor, -1 a basement). Default 0, range -10–200.
    public var level: Int = 0
    /// Absolute path of the floor's image: PNG, JPEG or SVG (recognised by its first bytes, not its name),
    /// at most ``FloorImage/maxBytes`` bytes and ``FloorImage/maxSide`` pixels a side. Required.
    public var image: String
    /// A floor with its required keys; `name` is the id.
    public init(id: String, image: String) {
        self.id = id
        self.name = id
        self.image = image
    }
}

/// `map.cameras[]` — where a camera is and where it looks.
public struct MapCameraPin: Codable, Sendable, Equatable {
    /// The camera (an id of `cameras:`). Required.
    public var camera: CameraID
    /// The floor's id. Required.
    public var floor: String
    /// Pixels from the image's left edge. Required, 0–the image's width.
    public var x: Int
    /// Pixels from the image's top edge. Required, 0–the image's height.
    public var y: Int
    /// Viewing direction in degrees clockwise from the top of the image. Default 0, range 0–359.
    public var direction: Int = 0
    /// Horizontal field of view in degrees, drawn as a cone. Default 90, range 1–360.
    public var angle: Int = 90
    /// A pin with its required keys.
    public init(camera: CameraID, floor: String, x: Int, y: Int) {
        self.camera = camera
        self.floor = floor
        self.x = x
        self.y = y
    }
}

/// `map.doors[]` — where a door is.
public struct MapDoorPin: Codable, Sendable, Equatable {
    /// The door's id (as the events configuration names it); same alphabet as a camera id. Required.
    public var id: String
    /// The floor's id. Required.
    public var floor: String
    /// Pixels from the image's left edge. Required.
    public var x: Int
    /// Pixels from the image's top edge. Required.
    public var y: Int
    /// A door pin.
    public init(id: String, floor: String, x: Int, y: Int) {
        self.id = id
        self.floor = floor
        self.x = x
        self.y = y
    }
}

extension HallwatchConfig {
    /// The floor-plan map (`map:`; see ``MapConfig``). Absent (`nil`): the web's `/map` says there is none.
    public var map: MapConfig? {
        get { self[section: MapSection.self] }
        set { self[section: MapSection.self] = newValue }
    }
}

/// `map:` as a section of the document.
enum MapSection: ConfigSection {
    static let key = "map"
    static var absent: MapConfig? { nil }
    static let floorKeys: [ConfigKey<MapFloor>] = [
        .scalar("id", \.id, .identifier, required: true),
        .scalar("name", \.name, .text(maxBytes: 100)),
        .scalar("level", \.level, .integer(-10...200, multipleOf: 1)),
        .scalar("image", \.image, .path, required: true),
    ]
    static let pixel: ConfigSchema.Scalar = .integer(0...Int64(FloorImage.maxSide), multipleOf: 1)
    static let cameraKeys: [ConfigKey<MapCameraPin>] = [
        .scalar("camera", \.camera, .identifier, required: true),
        .scalar("floor", \.floor, .identifier, required: true),
        .scalar("x", \.x, pixel, required: true),
        .scalar("y", \.y, pixel, required: true),
        .scalar("direction", \.direction, .integer(0...359, multipleOf: 1)),
        .scalar("angle", \.angle, .integer(1...360, multipleOf: 1)),
    ]
    static let doorKeys: [ConfigKey<MapDoorPin>] = [
        .scalar("id", \.id, .identifier, required: true),
        .scalar("floor", \.floor, .identifier, required: true),
        .scalar("x", \.x, pixel, required: true),
        .scalar("y", \.y, pixel, required: true),
    ]
    static let schema: ConfigSchema = .mapping(
        [
            "floors": .sequence(ConfigKey.mapping(floorKeys), maxCount: 32),
            "cameras": .sequence(ConfigKey.mapping(cameraKeys), maxCount: 1000),
            "doors": .sequence(ConfigKey.mapping(doorKeys), maxCount: 1000),
        ], required: ["floors"])

    static func decode(_ node: Node) throws -> MapConfig? {
        var map = MapConfig()
        map.floors = try list(node, "floors", floorKeys) { MapFloor(id: "unset", image: "") }
        for (i, element) in (node.mapping?["floors"]?.sequence.map(Array.init) ?? []).enumerated()
        where !ConfigKey<MapFloor>.gives(element, "name") && i < map.floors.count {
            map.floors[i].name = map.floors[i].id
        }
        map.cameras = try list(node, "cameras", cameraKeys) {
            MapCameraPin(camera: CameraID("unset")!, floor: "", x: 0, y: 0)
        }
        map.doors = try list(node, "doors", doorKeys) { MapDoorPin(id: "", floor: "", x: 0, y: 0) }
        return map
    }

    /// The list under `key` of `node`, each element read over the placeholder `blank()` (whose required keys
    /// the schema walk saw, so no placeholder value survives).
    static func list<T>(_ node: Node, _ key: String, _ keys: [ConfigKey<T>], blank: () -> T) throws -> [T] {
        try (node.mapping?[key]?.sequence.map(Array.init) ?? []).enumerated().map { i, element in
            var value = blank()
            do { try ConfigKey.read(keys, from: element, into: &value) } catch let e as DecodingError {
                throw e.under(PathKey(index: i)).under(PathKey(key))
            }
            return value
        }
    }

    /// At least one floor; floor ids unique; each image a readable PNG, JPEG or SVG of bounded size; each
    /// pin on a configured floor and inside its image; each camera pin names a configured camera, once; door
    /// ids unique.
    static func validate(_ config: HallwatchConfig, _ check: inout ConfigCheck) {
        guard let map = config.map else { return }
        check.need(!map.floors.isEmpty, ["map", "floors"], "expected at least one floor")
        var sizes: [String: (width: Int, height: Int)] = [:]
        for (i, floor) in map.floors.enumerated() {
            let path = ["map", "floors", "[\(i)]"]
            check.need(sizes[floor.id] == nil, path + ["id"], "duplicate floor id '\(floor.id)'")
            do {
                let image = try FloorImage.read(path: floor.image)
                sizes[floor.id] = (image.width, image.height)
            } catch let e as FloorImage.Problem {
                check.need(false, path + ["image"], e.message)
            } catch {
                check.need(false, path + ["image"], "\(error)")
            }
        }
        var pinned = Set<CameraID>()
        for (i, pin) in map.cameras.enumerated() {
            let path = ["map", "cameras", "[\(i)]"]
            check.need(
                config.camera(pin.camera) != nil, path + ["camera"], "no camera '\(pin.camera)' in cameras")
            check.need(pinned.insert(pin.camera).inserted, path + ["camera"], "camera '\(pin.camera)' is pinned twice")
            place(pin.floor, pin.x, pin.y, path, map, sizes, &check)
        }
        var doors = Set<String>()
        for (i, door) in map.doors.enumerated() {
            let path = ["map", "doors", "[\(i)]"]
            check.need(doors.insert(door.id).inserted, path + ["id"], "duplicate door id '\(door.id)'")
            place(door.floor, door.x, door.y, path, map, sizes, &check)
        }
    }

    /// A pin's floor exists and its point lies inside the floor's image.
    static func place(
        _ floor: String, _ x: Int, _ y: Int, _ path: [String], _ map: MapConfig,
        _ sizes: [String: (width: Int, height: Int)], _ check: inout ConfigCheck
    ) {
        guard map.floor(floor) != nil else {
            check.need(
                false, path + ["floor"],
                "no floor '\(floor)' in map.floors (have: \(map.floors.map(\.id).joined(separator: ", ")))")
            return
        }
        guard let size = sizes[floor] else { return }  // the image's own problem is reported
        check.need(x <= size.width, path + ["x"], "x \(x) is outside the floor's image (width \(size.width))")
        check.need(y <= size.height, path + ["y"], "y \(y) is outside the floor's image (height \(size.height))")
    }
}
