import Foundation
import HallwatchConfig
import HallwatchCore
import Synchronization

/// The floor-plan map as the web serves it: the configuration's `map:` section, the cameras' names, the floor
/// images (read and measured once, by ``HallwatchConfig/FloorImage``), and the `doors:` section (the events
/// service reads its doors here, so doors that arrive with the map need no restart either).
///
/// The configuration file is read again when its modification time changes (checked at most every 2 s, on
/// a request), so a map that arrives with a new configuration — or the cameras the discovery agent adopts —
/// shows without a restart. A file that no longer loads leaves the last good map in place (the other
/// processes refuse that file too, and say why).
public final class MapStore: Sendable {
    /// What one load of the configuration gives the map.
    public struct Snapshot: Sendable {
        /// The `map:` section; `nil` when the configuration has none.
        public var map: MapConfig?
        /// Camera id → the name the configuration gives it.
        public var names: [CameraID: String]
        /// Floor id → its image, measured.
        public var images: [String: FloorImage]
        /// The configuration's doors (issue 16).
        public var doors: [DoorConfig] = []
    }

    let configPath: String?
    let clocks: any Clocks
    struct State {
        var snapshot: Snapshot
        var modified: Date?
        var checked: MonotonicInstant?
    }
    let state: Mutex<State>
    /// How often the file's modification time is looked at, at most.
    static let recheck: Duration = .seconds(2)

    /// A map over `config` (as loaded at start), re-read from `configPath` when that file changes; without a
    /// path (tests) it never changes.
    public init(config: HallwatchConfig, configPath: String?, clocks: any Clocks) {
        self.configPath = configPath
        self.clocks = clocks
        let modified = configPath.flatMap { Self.modificationDate($0) }
        state = Mutex(State(snapshot: Self.snapshot(config), modified: modified, checked: nil))
    }

    /// The map now (re-reading the file first when it changed).
    public func current() -> Snapshot {
        let now = clocks.monotonicNow()
        let due = state.withLock { s -> Bool in
            guard configPath != nil, s.checked.map({ now - $0 >= Self.recheck }) ?? true else { return false }
            s.checked = now
            return true
        }
        if due, let path = configPath, let modified = Self.modificationDate(path),
            modified != state.withLock({ $0.modified }),
            let config = try? ConfigLoader.load(path: path)
        {
            let snapshot = Self.snapshot(config)
            state.withLock {
                $0.snapshot = snapshot
                $0.modified = modified
            }
        }
        return state.withLock { $0.snapshot }
    }

    static func snapshot(_ config: HallwatchConfig) -> Snapshot {
        var images: [String: FloorImage] = [:]
        for floor in config.map?.floors ?? [] { images[floor.id] = try? FloorImage.read(path: floor.image) }
        return Snapshot(
            map: config.map,
            names: Dictionary(config.cameras.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a }),
            images: images, doors: config.doors)
    }

    static func modificationDate(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }
}
