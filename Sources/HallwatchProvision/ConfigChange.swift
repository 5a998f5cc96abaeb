import HallwatchConfig

/// What applying a bundle changes, for the receipt: cameras added, removed and changed (by id), disks added
/// and removed (by name).
public struct ConfigChange: Sendable, Equatable {
    /// Camera ids new in the bundle.
    public var camerasAdded: [String] = []
    /// Camera ids the bundle drops.
    public var camerasRemoved: [String] = []
    /// Camera ids whose settings differ (their capture restarts).
    public var camerasChanged: [String] = []
    /// Disk names new in the bundle.
    public var disksAdded: [String] = []
    /// Disk names the bundle drops.
    public var disksRemoved: [String] = []

    /// The change from `old` (nil: nothing applied before) to `new`.
    public init(from old: HallwatchConfig?, to new: HallwatchConfig) {
        let before = Dictionary((old?.cameras ?? []).map { ($0.id.rawValue, $0) }, uniquingKeysWith: { a, _ in a })
        let after = Dictionary(new.cameras.map { ($0.id.rawValue, $0) }, uniquingKeysWith: { a, _ in a })
        camerasAdded = after.keys.filter { before[$0] == nil }.sorted()
        camerasRemoved = before.keys.filter { after[$0] == nil }.sorted()
        camerasChanged = after.keys.filter { before[$0] != nil && before[$0] != after[$0] }.sorted()
        let disksBefore = Set((old?.recorder.disks ?? []).map(\.name))
        let disksAfter = Set(new.recorder.disks.map(\.name))
        disksAdded = disksAfter.subtracting(disksBefore).sorted()
        disksRemoved = disksBefore.subtracting(disksAfter).sorted()
    }

    /// One line: `cameras +a -b ~c; disks +d -e` (`none` when nothing changes).
    public var summary: String {
        func part(_ label: String, _ groups: [(String, [String])]) -> String? {
            let items = groups.flatMap { sign, ids in ids.map { sign + $0 } }
            return items.isEmpty ? nil : label + " " + items.joined(separator: " ")
        }
        let parts = [
            part("cameras", [("+", camerasAdded), ("-", camerasRemoved), ("~", camerasChanged)]),
            part("disks", [("+", disksAdded), ("-", disksRemoved)]),
        ].compactMap { $0 }
        return parts.isEmpty ? "none" : parts.joined(separator: "; ")
    }
}
