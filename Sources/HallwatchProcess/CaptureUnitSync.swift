import Foundation
import HallwatchConfig
import HallwatchCore

/// Makes systemd's capture workers follow a switch of the configuration (issue 17 step 7: "capture instances
/// are started and stopped to match the cameras") on the appliance, where `hallwatch-generator` decides which
/// `hallwatch-capture@<id>` instances `hallwatch.target` wants but runs only at boot and `daemon-reload`.
///
/// The protocol (Systemd/README.md, HallwatchProvision's DocC page "Apply"):
///
/// - **S1.** Whoever switches the store's `current` link (the provisioner after U4 or V2, `hallwatchctl config
///   rollback`) drops one small file into the switch spool, `/var/lib/hallwatch/config-switched/`.
/// - **S2.** `hallwatch-config.path` (`DirectoryNotEmpty=` on the spool) starts `hallwatch-config.service`,
///   which runs `hallwatch-generator --sync`: ``run(configPath:spool:systemctl:)``.
/// - **S3.** The sync empties the spool first, so a switch made while it runs leaves a file that triggers the
///   next run (systemd re-checks `DirectoryNotEmpty=` when the service ends).
/// - **S4.** `systemctl daemon-reload`: the generator writes the wants of the configuration now current.
/// - **S5.** `systemctl start --no-block hallwatch.target`: a new camera's instance is started (a running one is
///   left alone; `--no-block`, so a camera slow to answer never holds the sync).
/// - **S6.** Every loaded `hallwatch-capture@` instance the configuration no longer names is stopped
///   (`systemctl stop`, waiting: each worker stops within its `TimeoutStopSec=`), then its failed state is
///   reset (a worker that saw the switch first may have restarted into "not configured", exit 3, or failed on
///   the way). When the configuration does not load, nothing is stopped: a broken file must never stop
///   recording.
public enum CaptureUnitSync {
    /// The switch spool on the appliance (created by `hallwatch-config.path`, `MakeDirectory=yes`).
    public static let defaultSpool = "/var/lib/hallwatch/config-switched"
    /// The most spool entries one run removes (a runaway writer cannot make the sync walk forever).
    public static let maxSpoolEntries = 4096

    /// The capture units `config` wants: one `hallwatch-capture@<escaped id>.service` per camera stream (a
    /// camera, and `<id>/sub` for one with a sub stream), the names the generator links.
    public static func wanted(_ config: HallwatchConfig) -> Set<String> {
        Set(config.streams.map { SystemdEscape.captureUnit($0.id.rawValue) })
    }

    /// The capture instances in the output of `systemctl list-units --all --plain --no-legend --full
    /// 'hallwatch-capture@*.service'`: the first word of each line that names one (a leading status glyph,
    /// which some versions print for failed units, is skipped).
    public static func loaded(listUnitsOutput: String) -> [String] {
        listUnitsOutput.split(separator: "\n").compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("hallwatch-capture@") && $0.hasSuffix(".service") }
                .map(String.init)
        }
    }

    /// S6: the loaded instances `wanted` does not name, sorted.
    public static func stale(loaded: [String], wanted: Set<String>) -> [String] {
        Set(loaded).subtracting(wanted).sorted()
    }

    /// What one run did, for the journal and for tests.
    public struct Report: Sendable, Equatable {
        /// Spool entries removed (S3).
        public var spoolEntries = 0
        /// The capture units the configuration wants (S5).
        public var wanted: [String] = []
        /// The instances stopped (S6).
        public var stopped: [String] = []
        /// Commands that failed, `systemctl ARGS: status N`.
        public var failures: [String] = []
    }

    /// S3–S6 with `systemctl` at `systemctl` (an absolute path; tests pass a recording fake).
    /// - Returns: the report, and ``ExitStatus/config`` as `exitStatus` when the configuration did not load
    ///   (S4 and S5 still ran, nothing was stopped), ``ExitStatus/software`` when a command failed, else 0.
    public static func run(configPath: String, spool: String, systemctl: String) -> (report: Report, exitStatus: Int32)
    {
        var report = Report()
        // S3: empty the spool first.
        let fm = FileManager.default
        if let entries = try? fm.contentsOfDirectory(atPath: spool) {
            for name in entries.prefix(maxSpoolEntries) where unlink(spool + "/" + name) == 0 {
                report.spoolEntries += 1
            }
        }
        func systemctlRun(_ args: [String], required: Bool = true) -> String? {
            let (status, output) = spawn([systemctl] + args)
            guard status == 0 else {
                if required { report.failures.append("systemctl \(args.joined(separator: " ")): status \(status)") }
                return nil
            }
            return output
        }
        // S4, S5.
        _ = systemctlRun(["daemon-reload"])
        _ = systemctlRun(["start", "--no-block", "hallwatch.target"])
        // S6, only with a configuration that loads.
        guard let config = try? ConfigLoader.load(path: configPath) else { return (report, ExitStatus.config) }
        let want = wanted(config)
        report.wanted = want.sorted()
        if let listed = systemctlRun([
            "list-units", "--all", "--plain", "--no-legend", "--full", "--no-pager", "hallwatch-capture@*.service",
        ]) {
            report.stopped = stale(loaded: loaded(listUnitsOutput: listed), wanted: want)
            if !report.stopped.isEmpty {
                // Waiting: a reset queued behind a stop that has not finished would leave the unit failed.
                _ = systemctlRun(["stop"] + report.stopped)
                _ = systemctlRun(["reset-failed"] + report.stopped, required: false)
            }
        }
        return (report, report.failures.isEmpty ? 0 : ExitStatus.software)
    }

    /// Runs `argv` (an absolute path first) through ``ChildProcess`` (not Foundation's `Process`, which hangs
    /// under the unit's `RestrictAddressFamilies=AF_UNIX`) and returns its exit status (−1 when it cannot start,
    /// 128 + the signal when killed) and what it printed on stdout (at most 1 MiB); stderr goes to the journal.
    static func spawn(_ argv: [String]) -> (status: Int32, output: String) {
        guard let r = try? ChildProcess.run(argv) else { return (-1, "") }
        return (r.status, r.text)
    }
}
