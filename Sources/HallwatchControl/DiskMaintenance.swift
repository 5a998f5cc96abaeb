import Foundation
import HallwatchCore
import HallwatchEvidence
import HallwatchMedia
import HallwatchStorage

/// `hallwatchctl disk init` and `hallwatchctl check`: formatting a recording disk safely and checking
/// its index against its slots. The byte work is HallwatchStorage's (``RecordingDisk``,
/// ``RecordingReader/verify(level:)``); this type decides what an operator's command may touch and how
/// each outcome is reported.
public enum DiskMaintenance {
    // MARK: - disk init

    /// What `disk init` found in the target directory before formatting it.
    public enum Preflight: Sendable, Equatable {
        /// Missing, empty, or holding only `lost+found` (a freshly made file system): format it.
        case empty
        /// `meta.initializing` (and maybe `slots/`) without `meta`: an initialisation that was cut short.
        /// It was never recorded to; redoing it (with `--force`) overwrites only its own slot files.
        case interrupted(box: String?)
        /// Already a recording disk of `box` (nothing is done; a script may treat this as success).
        case initialized(box: String, slotCount: Int, slotSizeBytes: Int64)
        /// Holds other files: never formatted, not even with `--force`.
        case foreign(entries: [String])
    }

    /// Why `disk init` did nothing, with its exit code (documented in `hallwatchctl disk init --help`).
    public struct InitRefusal: Error, CustomStringConvertible, Sendable {
        /// 1 other files / interrupted without `--force`; 2 already this box's disk; 3 another box's disk;
        /// 74 an I/O error while formatting.
        public var exitCode: Int32
        /// Why, for the operator.
        public var message: String
        /// ``message``.
        public var description: String { message }
    }

    /// Looks at `path` without changing anything.
    public static func preflight(_ path: String) -> Preflight {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0 != "lost+found" }
            .sorted()
        if names.isEmpty { return .empty }
        struct MetaBox: Decodable {
            var box: String
            var slotCount: Int?
            var slotSizeBytes: Int64?
        }
        func readMeta(_ file: String) -> MetaBox? {
            FileManager.default.contents(atPath: path + "/" + file).flatMap {
                try? JSONDecoder().decode(MetaBox.self, from: $0)
            }
        }
        if names.contains("meta") {
            // A `meta` we cannot read is still a disk's: treat it as foreign rather than format over it.
            guard let m = readMeta("meta") else { return .foreign(entries: names) }
            return .initialized(box: m.box, slotCount: m.slotCount ?? 0, slotSizeBytes: m.slotSizeBytes ?? 0)
        }
        if names.contains("meta.initializing"), Set(names).isSubset(of: ["meta.initializing", "slots"]) {
            return .interrupted(box: readMeta("meta.initializing")?.box)
        }
        return .foreign(entries: names)
    }

    /// Formats `path` as a recording disk for `box` (``RecordingDisk/initialize(at:box:slotCount:slotSizeBytes:clocks:progress:)``,
    /// steps I1–I5), after deciding that it may:
    ///
    /// - missing, empty or only `lost+found`: formatted;
    /// - an interrupted initialisation (`meta.initializing`, `slots/`, no `meta`): formatted again only
    ///   with `force` (it overwrites nothing but its own `slots/NNNNNN.slot` files);
    /// - a recording disk (`meta` present), of this box or another: refused, even with `force`;
    /// - anything else: refused, even with `force`, naming what is there. Nothing is ever deleted.
    ///
    /// - Throws: ``InitRefusal``.
    public static func initialize(
        path: String, box: String, slotCount: Int, slotSizeBytes: Int64, force: Bool,
        progress: (_ slotsDone: Int, _ slotCount: Int) -> Void
    ) throws(InitRefusal) -> RecordingDisk {
        try authorize(path: path, box: box, force: force)
        try checkRoom(path: path, bytes: Int64(slotCount) * slotSizeBytes)
        do {
            return try RecordingDisk.initialize(
                at: path, box: box, slotCount: slotCount, slotSizeBytes: slotSizeBytes, progress: progress)
        } catch {
            switch error.code {
            case .invalidArgument: throw InitRefusal(exitCode: 64, message: error.message)
            // Appeared meanwhile.
            case .alreadyInitialized, .foreignDisk: throw InitRefusal(exitCode: 1, message: error.message)
            default:
                throw InitRefusal(
                    exitCode: 74,
                    message:
                        "\(error); \(path) is left as an interrupted initialisation: fix the cause and run again with --force"
                )
            }
        }
    }

    /// Refuses (exit 1) slots that do not fit in the free space of the file system that will hold `path` (its
    /// nearest existing ancestor, `statvfs(3)`), before anything is written: a `--size` larger than the disk
    /// would otherwise fill it — the root file system too, when the path is a typo. Slot files already there (an
    /// interrupted initialisation redone) are counted as free.
    /// - Throws: ``InitRefusal``.
    public static func checkRoom(path: String, bytes: Int64) throws(InitRefusal) {
        var dir = URL(fileURLWithPath: path).standardizedFileURL
        while !FileManager.default.fileExists(atPath: dir.path) && dir.path != "/" { dir.deleteLastPathComponent() }
        var fs = statvfs()
        guard statvfs(dir.path, &fs) == 0 else { return }
        let existing =
            (try? FileManager.default.contentsOfDirectory(atPath: path + "/slots"))?.reduce(Int64(0)) {
                sum, name in
                sum
                    + ((try? FileManager.default.attributesOfItem(atPath: path + "/slots/" + name)[.size] as? Int64)
                        ?? 0)
            } ?? 0
        let free = Int64(fs.f_bavail) * Int64(fs.f_frsize) + existing
        guard bytes <= free else {
            throw InitRefusal(
                exitCode: 1,
                message:
                    "\(bytes) bytes of slots do not fit in the \(free) bytes free on the file system holding \(dir.path); "
                    + "nothing was written (give a smaller --size, or the right mount point)")
        }
    }

    /// The decision of ``initialize(path:box:slotCount:slotSizeBytes:force:progress:)`` alone: returns
    /// when `path` may be formatted for `box`, changes nothing.
    /// - Throws: ``InitRefusal``.
    public static func authorize(path: String, box: String, force: Bool) throws(InitRefusal) {
        switch preflight(path) {
        case .empty:
            break
        case .interrupted(let other):
            guard force else {
                throw InitRefusal(
                    exitCode: 1,
                    message:
                        "\(path) holds an interrupted initialisation\(other.map { " (box \"\($0)\")" } ?? "") that was never recorded to; run again with --force to redo it"
                )
            }
        case .initialized(let owner, let count, let size) where owner == box:
            throw InitRefusal(
                exitCode: 2,
                message:
                    "\(path) already is a recording disk of box \"\(box)\" (\(count) slots of \(size) bytes); nothing done"
            )
        case .initialized(let owner, _, _):
            throw InitRefusal(
                exitCode: 3,
                message:
                    "\(path) is a recording disk of another box, \"\(owner)\"; it is never formatted here (its recordings may be evidence)"
            )
        case .foreign(let entries):
            let shown =
                entries.prefix(8).joined(separator: ", ") + (entries.count > 8 ? ", … (\(entries.count) entries)" : "")
            throw InitRefusal(
                exitCode: 1,
                message:
                    "\(path) is not empty and is not a recording disk: it holds \(shown). Refusing to format it\(force ? " even with --force (it only redoes an interrupted initialisation)" : ""); use an empty directory"
            )
        }
    }

    /// Slots a disk may have: at least one open and one to reuse per camera (two), at most what the recorder's
    /// own `recorder.slotCount` allows (100 000).
    public static let slotCountRange = 2...100_000

    /// Slot count and size from `--slots N` or `--size BYTES` (total; whole slots only) and `--slot-size`.
    /// - Throws: a message for the operator.
    public static func geometry(slots: Int?, totalBytes: Int64?, slotSizeBytes: Int64) throws(InitRefusal) -> (
        slotCount: Int, slotSizeBytes: Int64
    ) {
        switch (slots, totalBytes) {
        case (let n?, nil):
            guard slotCountRange.contains(n) else {
                throw InitRefusal(
                    exitCode: 64,
                    message:
                        "--slots \(n) is outside \(slotCountRange.lowerBound)-\(slotCountRange.upperBound) (as recorder.slotCount)"
                )
            }
            return (n, slotSizeBytes)
        case (nil, let total?):
            let n = total / slotSizeBytes
            guard n >= Int64(slotCountRange.lowerBound) else {
                throw InitRefusal(
                    exitCode: 64,
                    message:
                        "--size \(total) holds \(n) slot(s) of \(slotSizeBytes) bytes; a disk needs at least \(slotCountRange.lowerBound)"
                )
            }
            guard n <= Int64(slotCountRange.upperBound) else {
                throw InitRefusal(
                    exitCode: 64,
                    message:
                        "--size \(total) makes \(n) slots, more than \(slotCountRange.upperBound); use a larger --slot-size"
                )
            }
            return (Int(n), slotSizeBytes)
        default: throw InitRefusal(exitCode: 64, message: "give exactly one of --slots N and --size BYTES")
        }
    }

    /// Parses a byte count: digits with an optional binary suffix `K`, `M`, `G`, `T` (`64M` = 64 MiB).
    public static func parseBytes(_ text: String) -> Int64? {
        let t = text.trimmingCharacters(in: .whitespaces).uppercased().replacingOccurrences(of: "IB", with: "")
            .replacingOccurrences(of: "B", with: "")
        let shifts: [Character: Int64] = ["K": 10, "M": 20, "G": 30, "T": 40]
        if let last = t.last, let shift = shifts[last] {
            guard let n = Int64(t.dropLast()), n >= 0, n <= (Int64.max >> shift) else { return nil }
            return n << shift
        }
        return Int64(t).flatMap { $0 >= 0 ? $0 : nil }
    }

    // MARK: - check

    /// One disk's result of `hallwatchctl check`.
    public struct CheckResult: Sendable {
        /// What the check found.
        public enum Outcome: Sendable {
            /// Index and slots agree at the level checked.
            case consistent
            /// No `index.sqlite` yet (a disk just initialised): nothing is indexed, so nothing can be
            /// inconsistent; the recorder builds the index from the slots when it opens the disk.
            case noIndex
            /// These index rows do not match the disk.
            case inconsistent([Inconsistency])
            /// The disk is damaged before any row can be read (a slot file missing or of the wrong size,
            /// an undecodable `meta`): an inconsistency too.
            case damaged(String)
            /// Index and slots agree, but stored runs hold samples a player would stumble on (level `media`):
            /// one line per problem, naming camera, run and sample.
            case badMedia([String])
            /// Nothing to check or not allowed to: no `meta`, no index yet, another box's disk, an I/O error.
            case unchecked(String)
        }
        /// The disk's directory as given.
        public var disk: String
        /// What the check found there.
        public var outcome: Outcome
        /// How long the check took, seconds.
        public var seconds: Double
    }

    /// Checks each disk at `level` (``RecordingReader/verify(level:)``); `box` (when given) must own it.
    /// Each check's time is measured on `clocks`.
    public static func check(disks: [String], box: String?, level: CheckLevel, clocks: any Clocks = SystemClocks())
        -> [CheckResult]
    {
        disks.map { path in
            let started = clocks.monotonicNow()
            let outcome: CheckResult.Outcome
            do throws(StorageError) {
                let reader = try RecordingReader(at: path, box: box)
                let problems = try reader.verify(level: level)
                if !problems.isEmpty {
                    outcome = .inconsistent(problems)
                } else if level == .media {
                    let media = checkMedia(reader)
                    outcome = media.isEmpty ? .consistent : .badMedia(media)
                } else {
                    outcome = .consistent
                }
            } catch {
                switch error.code {
                case .noIndex: outcome = .noIndex
                case .corrupt: outcome = .damaged(error.description)
                default: outcome = .unchecked(error.description)
                }
            }
            return CheckResult(disk: path, outcome: outcome, seconds: (clocks.monotonicNow() - started).seconds)
        }
    }

    /// Level `media`: every run of every camera on the disk through ``HallwatchMedia/MediaCheck``, one line per
    /// problem found (and one for a run that cannot be read).
    static func checkMedia(_ reader: RecordingReader) -> [String] {
        var lines: [String] = []
        do {
            for camera in try reader.cameras() {
                let all = try reader.stream(
                    camera: camera, from: UTCMicros(0), to: UTCMicros(Int64.max / 2), startAtKeyframe: false)
                for run in all.runs {
                    let id = run.runIDs.first ?? 0
                    do {
                        let report = try MediaCheck.check(run: RecordingByteSource(run))
                        lines += report.problems.map { "camera \(camera) run \(id): \($0)" }
                        if report.problemCount > report.problems.count {
                            lines.append(
                                "camera \(camera) run \(id): \(report.problemCount - report.problems.count) more problems"
                            )
                        }
                    } catch {
                        lines.append("camera \(camera) run \(id): cannot be read as MP4: \(error)")
                    }
                }
            }
        } catch {
            lines.append("cannot read the index: \(error)")
        }
        return lines
    }
}
