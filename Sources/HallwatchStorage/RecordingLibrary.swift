import HallwatchConfig
import HallwatchCore

/// Every recording disk of a box read as one: a camera's runs and records may be spread over several
/// disks (the recorder balances cameras over its disks and moves them when one fails, step F of the
/// write protocol), and playback, export and listings must not care which disk holds what.
///
/// Disks that cannot be read (missing, another box's, no index yet) are left out and named in
/// ``unreadable``; the rest are read as ``RecordingReader`` reads one disk.
public struct RecordingLibrary: Sendable {
    /// The disks that could be opened, by name, in configuration order.
    public let readers: [(name: String, reader: RecordingReader)]
    /// The disks left out and why.
    public let unreadable: [(name: String, error: StorageError)]

    /// Opens every disk in `disks` for reading.
    /// - Parameters:
    ///   - disks: Name and directory of each disk (`recorder.disks` of the configuration).
    ///   - box: Expected owner; `nil` reads any box's disks.
    /// - Throws: never for one bad disk (see ``unreadable``).
    public init(disks: [(name: String, path: String)], box: String?) {
        var readers: [(String, RecordingReader)] = []
        var bad: [(String, StorageError)] = []
        for d in disks {
            do throws(StorageError) { readers.append((d.name, try RecordingReader(at: d.path, box: box))) } catch {
                bad.append((d.name, error))
            }
        }
        self.readers = readers
        self.unreadable = bad
    }

    /// Every disk of the configuration's `recorder.disks`, expecting the configuration's box.
    public init(config: HallwatchConfig) {
        self.init(disks: config.recorder.disks.map { ($0.name, $0.path) }, box: config.box)
    }

    /// Cameras with at least one indexed fragment on any disk, sorted.
    /// - Throws: ``StorageError/Code/index`` when an index cannot be read.
    public func cameras() throws(StorageError) -> [CameraID] {
        var all = Set<CameraID>()
        for r in readers { all.formUnion(try r.reader.cameras()) }
        return all.sorted { $0.rawValue < $1.rawValue }
    }

    /// The camera's runs in time order, a run written to several disks (moved after a disk failure)
    /// summarised once: earliest start, latest end, durations, bytes and counts added.
    /// - Throws: ``StorageError/Code/index``.
    public func runs(camera: CameraID) throws(StorageError) -> [RunSummary] {
        var byRun: [UInt64: RunSummary] = [:]
        for r in readers {
            for s in try r.reader.runs(camera: camera) {
                guard var m = byRun[s.run] else {
                    byRun[s.run] = s
                    continue
                }
                m.startUTC = min(m.startUTC, s.startUTC)
                m.endUTC = max(m.endUTC, s.endUTC)
                m.media90k = MediaTime90k(m.media90k.ticks + s.media90k.ticks)
                m.payloadBytes += s.payloadBytes
                m.fragmentCount += s.fragmentCount
                m.slotCount += s.slotCount
                byRun[s.run] = m
            }
        }
        return byRun.values.sorted { ($0.startUTC, $0.run) < ($1.startUTC, $1.run) }
    }

    /// ``RecordingReader/lastFragment(camera:)`` over every disk: the newest by start time.
    /// - Throws: ``StorageError/Code/index``.
    public func lastFragment(camera: CameraID) throws(StorageError) -> (
        run: UInt64, end90k: Int64, startUTC: UTCMicros
    )? {
        var best: (run: UInt64, end90k: Int64, startUTC: UTCMicros)?
        for r in readers {
            if let f = try r.reader.lastFragment(camera: camera), best == nil || f.startUTC > best!.startUTC {
                best = f
            }
        }
        return best
    }

    /// The records of `camera` overlapping `[from, to)` from every disk, grouped by run in time order,
    /// as ``RecordingReader/segments(camera:from:to:startAtKeyframe:)`` returns them for one disk. A run
    /// found on several disks is merged in media-time order; a fragment written to two disks (the
    /// recorder rewrites the not-yet-indexed tail to the new disk when one fails, step F3) is kept once.
    /// - Throws: as ``RecordingReader/segments(camera:from:to:startAtKeyframe:)``.
    public func segments(camera: CameraID, from: UTCMicros, to: UTCMicros, startAtKeyframe: Bool = true)
        throws(StorageError) -> [ExportRun]
    {
        var byRun: [UInt64: ExportRun] = [:]
        for r in readers {
            for run in try r.reader.segments(camera: camera, from: from, to: to, startAtKeyframe: startAtKeyframe) {
                if var m = byRun[run.run] {
                    m.fragments += run.fragments
                    byRun[run.run] = m
                } else {
                    byRun[run.run] = run
                }
            }
        }
        var out: [ExportRun] = []
        for var run in byRun.values {
            run.fragments.sort { $0.meta.start90k.ticks < $1.meta.start90k.ticks }
            var seen = Set<Int64>()
            run.fragments = run.fragments.filter { seen.insert($0.meta.start90k.ticks).inserted }
            out.append(run)
        }
        return out.sorted {
            ($0.fragments.first?.meta.utc.micros ?? 0, $0.run) < ($1.fragments.first?.meta.utc.micros ?? 0, $1.run)
        }
    }
}
