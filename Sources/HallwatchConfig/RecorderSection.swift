import Foundation
import HallwatchCore

/// `recorder:` — where and how video is written.
public struct RecorderConfig: Codable, Sendable, Equatable {
    /// Path of the recorder's data-plane Unix socket that capture workers connect to.
    /// Default `/run/hallwatch/recorder.sock`.
    public var socket: String = "/run/hallwatch/recorder.sock"
    /// The recording disks, each a directory on its own filesystem. Default one disk, `disk0` at
    /// `/var/lib/hallwatch/disk0`. 1–16 disks; names are unique, paths are unique.
    public var disks: [DiskConfig] = [DiskConfig(name: "disk0", path: "/var/lib/hallwatch/disk0")]
    /// How often written records are `fdatasync`ed and then indexed: the recovery point objective.
    /// Default `1s`, range 100ms–10s.
    public var fsyncCadence: Duration = .seconds(1)
    /// Size of each slot file in bytes. Default 64 MiB, range 1 MiB–4 GiB, a multiple of 4096.
    public var slotSizeBytes: Int64 = 64 << 20
    /// Number of slot files created when the directory is initialised. Default 64, range 2–100 000.
    public var slotCount: Int = 64
    /// The defaults listed above.
    public init() {}

    /// Looks a disk up by name; `nil` when no disk has that name.
    public func disk(named name: String) -> DiskConfig? { disks.first { $0.name == name } }
}

/// `recorder.disks[]` — one recording disk.
public struct DiskConfig: Codable, Sendable, Equatable {
    /// Disk name used in bus topics (`…/storage/<name>`) and in `cameras[].disk`; same alphabet as a camera id,
    /// at most ``maxNameBytes`` bytes. Required.
    public var name: String
    /// The longest disk name, in bytes: on the appliance `hallwatch-generator` mounts a disk by its ext4 label
    /// `hallwatch-<name>`, and an ext4 label holds at most 16 bytes.
    public static let maxNameBytes = 6
    /// The form of a disk name (``name``, `cameras[].disk`).
    static let nameForm: ConfigSchema.Scalar = .shortIdentifier(
        maxBytes: maxNameBytes, why: "the disk's ext4 label is hallwatch-<name>, at most 16 bytes")
    /// The disk's directory (its mount point, or a directory on it). Initialised on first start when empty;
    /// a directory holding anything else is never formatted. Required.
    public var path: String
    /// A disk from its name and directory.
    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }
}

extension HallwatchConfig {
    /// The ring-buffer writer (`recorder:`; see ``RecorderConfig``).
    public var recorder: RecorderConfig {
        get { self[section: RecorderSection.self] }
        set { self[section: RecorderSection.self] = newValue }
    }
}

/// `recorder:` as a section of the document.
enum RecorderSection: KeyedConfigSection {
    static let key = "recorder"
    static var absent: RecorderConfig { RecorderConfig() }
    /// `recorder.disks[]`: both keys required.
    static let disk: ConfigSchema = .mapping(
        ["name": .scalar(DiskConfig.nameForm), "path": .scalar(.path)], required: ["name", "path"])
    static let keys: [ConfigKey<RecorderConfig>] = [
        .scalar("socket", \.socket, .path),
        .value("disks", \.disks, .sequence(disk, maxCount: 16)),
        .duration("fsyncCadence", \.fsyncCadence, min: .milliseconds(100), max: .seconds(10)),
        .scalar("slotSizeBytes", \.slotSizeBytes, .integer(1 << 20...4 << 30, multipleOf: 4096)),
        .scalar("slotCount", \.slotCount, .integer(2...100_000, multipleOf: 1)),
    ]

    /// At least one disk; names and paths unique; paths absolute (a relative path would follow the working
    /// directory of whichever process reads it) and none inside another (two rings on one filesystem would
    /// both count its free space, and a disk failing would take both); every camera's pinned `disk` names one.
    static func validate(_ config: HallwatchConfig, _ check: inout ConfigCheck) {
        let recorder = config.recorder
        check.need(!recorder.disks.isEmpty, ["recorder", "disks"], "expected at least one disk")
        var names = Set<String>()
        var paths: [String] = []
        for (i, d) in recorder.disks.enumerated() {
            check.need(
                names.insert(d.name).inserted, ["recorder", "disks", "[\(i)]", "name"],
                "duplicate disk name '\(d.name)'")
            let at: [String] = ["recorder", "disks", "[\(i)]", "path"]
            guard d.path.hasPrefix("/") else {
                check.need(false, at, "disk path '\(d.path)' must be absolute (start with /)")
                continue
            }
            let canonical = URL(fileURLWithPath: d.path).standardizedFileURL.path
            if paths.contains(canonical) {
                check.need(false, at, "disk path '\(d.path)' is listed twice")
            } else if let outer = paths.first(where: { Self.isInside(canonical, $0) || Self.isInside($0, canonical) }) {
                check.need(
                    false, at, "disk path '\(d.path)' is nested with '\(outer)': each disk needs its own directory tree"
                )
            }
            paths.append(canonical)
        }
        for (i, cam) in config.cameras.enumerated() {
            guard let d = cam.disk else { continue }
            check.need(
                names.contains(d), ["cameras", "[\(i)]", "disk"],
                "no disk named '\(d)' in recorder.disks (have: \(recorder.disks.map(\.name).joined(separator: ", ")))")
        }
    }

    /// Whether the canonical path `inner` lies under the canonical directory `outer`.
    static func isInside(_ inner: String, _ outer: String) -> Bool {
        outer == "/" ? inner != "/" : inner.hasPrefix(outer + "/")
    }
}
