import Foundation
import HallwatchConfig
import HallwatchProcess

/// The units that mount the configured recording disks on the appliance, by filesystem label: disk `NAME` is the
/// ext4 filesystem labelled `hallwatch-NAME` (at most 16 bytes, so a name of at most 6), mounted on its `path`
/// (`Hardware/udev/` gives the bays' devices stable names; `hallwatchctl disk init` and `mkfs.ext4 -L` set labels).
///
/// For each disk, in the generator's normal directory:
/// - `<escaped path>.mount` (systemd.mount(5)): `What=/dev/disk/by-label/hallwatch-NAME`, ext4,
///   `rw,noatime,nodev,nosuid,noexec`;
/// - `dev-disk-by\x2dlabel-hallwatch\x2dNAME.device.d/50-hallwatch-timeout.conf`: how long boot waits for the
///   device (`JobRunningTimeoutSec=`, as fstab's `x-systemd.device-timeout=` does): 90 s for the first disk (a box
///   always has one; a slow or loaded udev must not lose it), 10 s for the others (a one-bay box has none);
/// and one recorder drop-in `hallwatch-recorder.service.d/50-hallwatch-disks.conf`: `Wants=` and `After=` the
/// mounts — wanted, not required, so a missing disk never stops the recorder, which marks it failed and records on
/// the others, and never starts before a mount was tried (it would initialise an empty mount point on the data
/// partition) — `ExecStartPre=` that hands each mounted disk's root to the recorder's user, and `ReadWritePaths=`
/// for the disks (the unit's `ProtectSystem=strict` allows `/var/lib/hallwatch` only).
struct DiskMounts {
    /// A unit file's name and text.
    struct Unit: Equatable {
        var path: String
        var text: String
    }

    /// The label a disk's filesystem carries (`hallwatch-NAME`).
    static func label(_ disk: DiskConfig) -> String { "hallwatch-" + disk.name }

    /// The files for `disks`, paths relative to the generator's normal directory, and one message per disk that
    /// cannot be mounted by label (its path is not a normalized absolute path, or its label would be longer than
    /// ext4's 16 bytes): such a disk gets no mount, and the recorder reports it missing.
    static func units(for disks: [DiskConfig], configPath: String) -> (units: [Unit], problems: [String]) {
        var units: [Unit] = []
        var problems: [String] = []
        var mounts: [(disk: DiskConfig, unit: String)] = []
        for disk in disks {
            guard let escaped = SystemdEscape.path(disk.path) else {
                problems.append("disk \(disk.name): \(disk.path) is not a normalized absolute path; not mounted")
                continue
            }
            guard label(disk).utf8.count <= 16 else {
                problems.append(
                    "disk \(disk.name): the label \(label(disk)) is longer than ext4's 16 bytes (a disk name has at most 6); not mounted"
                )
                continue
            }
            mounts.append((disk, escaped + ".mount"))
        }
        for (i, m) in mounts.enumerated() {
            units.append(
                Unit(
                    path: m.unit,
                    text: """
                        # Made by hallwatch-generator from \(configPath): recording disk \(m.disk.name).
                        [Unit]
                        Description=Hallwatch recording disk \(m.disk.name)
                        Before=hallwatch-recorder.service

                        [Mount]
                        What=/dev/disk/by-label/\(label(m.disk))
                        Where=\(m.disk.path.replacingOccurrences(of: "%", with: "%%"))
                        Type=ext4
                        Options=rw,noatime,nodev,nosuid,noexec

                        """))
            let device = SystemdEscape.path("/dev/disk/by-label/" + label(m.disk))! + ".device"
            units.append(
                Unit(
                    path: device + ".d/50-hallwatch-timeout.conf",
                    text: """
                        # Made by hallwatch-generator: how long boot waits for recording disk \(m.disk.name).
                        [Unit]
                        JobRunningTimeoutSec=\(i == 0 ? 90 : 10)s

                        """))
        }
        guard !mounts.isEmpty else { return (units, problems) }
        let names = mounts.map(\.unit).joined(separator: " ")
        let chown = mounts.map { quoted($0.disk.path) }.joined(separator: " ")
        units.append(
            Unit(
                path: "hallwatch-recorder.service.d/50-hallwatch-disks.conf",
                text: """
                    # Made by hallwatch-generator from \(configPath): the recording disks' mounts.
                    [Unit]
                    Wants=\(names)
                    After=\(names)

                    [Service]
                    # A new filesystem's root belongs to root: hand the mounted disks to the recorder (a disk that is
                    # missing is skipped: the leading - ignores the failure).
                    ExecStartPre=-+/bin/chown hallwatch-rec:hallwatch \(chown)
                    ExecStartPre=-+/bin/chmod 0770 \(chown)
                    # The unit allows writes under /var/lib/hallwatch only: a disk mounted elsewhere is added.
                    ReadWritePaths=\(mounts.map { quoted("-" + $0.disk.path) }.joined(separator: " "))

                    """))
        return (units, problems)
    }

    /// `text` as one word of a unit's command line (systemd.service(5) § Command Lines): double-quoted, with `\`
    /// and `"` escaped and `%` doubled (no specifier expansion).
    static func quoted(_ text: String) -> String {
        var out = "\""
        for c in text {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "%": out += "%%"
            default: out.append(c)
            }
        }
        return out + "\""
    }
}
