import Dispatch
import Foundation
import HallwatchCore
import HallwatchEvidence
import HallwatchStorage
import Logging
import Synchronization

/// Evidence exports the web makes (`POST /api/v1/exports`, <doc:Exports>): a bounded queue of background jobs,
/// each writing one signed bundle with ``HallwatchEvidence/EvidenceBundle`` into the web's own state directory
/// (`<stateDirectory>/exports/<id>/`, never a recording disk) within a budget of bundles and bytes.
///
/// Steps of an export:
/// 1. ``submit(cameras:from:to:reason:caseNumber:by:)`` checks the range against the budget (the recorded bytes
///    of the range, ``HallwatchStorage/RecordingStream/length``, as the estimate of the bundle), records the job
///    as `queued` (`<id>.json` beside the bundles) and requests one evidence hold per camera over the range from
///    `hallwatch-pruner` on the bus (the web never writes a recording disk).
/// 2. At most ``Limits/running`` jobs run at once on Dispatch threads (the storage reads and remux block); the
///    others wait in order.
/// 3. A running job publishes its ``HallwatchCore/ExportProgress`` on the bus (retained,
///    ``HallwatchCore/BusTopics/export(_:)``) at most every half second and at each file.
/// 4. It ends `done` (the bundle's size recorded) or `failed` (the partial bundle deleted, the error kept); both
///    are audited (`export.done`, `export.failed`).
///
/// A job that was queued or running when the web stopped is `failed` with `export.interrupted` at the next
/// start, and its partial bundle is deleted.
public final class ExportJobs: Sendable {
    /// The bounds of the queue and of the space bundles may take.
    public struct Limits: Sendable {
        /// Exports running at once.
        public var running = 1
        /// Exports waiting.
        public var queued = 8
        /// Bundles kept (done), queued and running together.
        public var bundles = 50
        /// Bytes of the kept bundles plus the estimates of the unfinished ones.
        public var bytes: Int64 = 64 << 30
        /// Free space the export directory's file system keeps after every estimate, bytes.
        public var reserveBytes: Int64 = 1 << 30
        /// Longest range, µs (the pruner places holds of at most 24 h).
        public var maxRangeMicros: Int64 = 24 * 3_600_000_000
        /// Most cameras in one export.
        public var maxCameras = 16
        /// The defaults above.
        public init() {}
    }

    /// Why a request was refused: an HTTP status, a stable code (``HallwatchCore/ErrorCodes``) and a message.
    public struct Refusal: Error, Sendable, Equatable {
        /// 400, 404, 507.
        public var status: Int
        /// `export.input`, `export.empty`, `export.budget`, `export.busy`.
        public var code: String
        /// For people.
        public var message: String
    }

    /// The directory of the bundles (`<stateDirectory>/exports`, 0700).
    public let directory: String
    let limits: Limits
    let recordings: RecordingDisks
    let signer: BundleSigner
    let box: String
    let clocks: any Clocks
    let audit: AuditLog
    let publish: @Sendable (ExportProgress) -> Void
    let requestHolds:
        @Sendable (
            _ cameras: [CameraID], _ from: UTCMicros, _ to: UTCMicros, _ reason: String,
            _ caseID: String
        ) throws -> [String]
    /// Why a camera recorded nothing between two files, for the manifest's gaps (``CameraHistory``).
    let gapCause: @Sendable (CameraID, UTCMicros, UTCMicros) -> GapCause?
    let logger: Logger
    let state = Mutex<(jobs: [String: ExportProgress], waiting: [String], running: Int)>(([:], [], 0))

    /// Opens the export directory (made 0700 if missing) and loads its jobs (step "interrupted" above).
    /// - Parameters:
    ///   - publish: Puts a job's progress on the bus (retained).
    ///   - requestHolds: Asks the pruner for one hold per camera over the range with the reason and case; the
    ///     hold ids.
    ///   - gapCause: Why a camera recorded nothing between two files (the manifest's gaps); default: unknown.
    /// - Throws: file errors making the directory.
    public init(
        directory: String, limits: Limits = Limits(), recordings: RecordingDisks, signer: BundleSigner, box: String,
        clocks: any Clocks, audit: AuditLog, publish: @escaping @Sendable (ExportProgress) -> Void,
        requestHolds: @escaping @Sendable ([CameraID], UTCMicros, UTCMicros, String, String) throws -> [String],
        gapCause: @escaping @Sendable (CameraID, UTCMicros, UTCMicros) -> GapCause? = { _, _, _ in nil },
        logger: Logger
    ) throws {
        self.directory = directory
        self.limits = limits
        self.recordings = recordings
        self.signer = signer
        self.box = box
        self.clocks = clocks
        self.audit = audit
        self.publish = publish
        self.requestHolds = requestHolds
        self.gapCause = gapCause
        self.logger = logger
        let fm = FileManager.default
        try fm.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var jobs: [String: ExportProgress] = [:]
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] where name.hasSuffix(".json") {
            guard let data = fm.contents(atPath: directory + "/" + name),
                var job = try? JSONDecoder().decode(ExportProgress.self, from: data),
                EvidenceBundle.isExportID(job.id), name == job.id + ".json"
            else { continue }
            if job.state == .queued || job.state == .running {
                try? fm.removeItem(atPath: directory + "/" + job.id)
                job.state = .failed
                job.finishedAt = clocks.utcNow()
                job.error = ErrorEvent(
                    code: "export.interrupted", message: "the web stopped while the export ran; start it again")
                save(job)
            }
            jobs[job.id] = job
        }
        // A bundle directory without its job record is a leftover of a crash while it was made: not evidence.
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? []
        where EvidenceBundle.isExportID(name) && jobs[name] == nil {
            try? fm.removeItem(atPath: directory + "/" + name)
        }
        state.withLock { $0.jobs = jobs }
    }

    /// Every job, newest first.
    public func list() -> [ExportProgress] {
        state.withLock { Array($0.jobs.values) }.sorted { ($0.createdAt, $0.id) > ($1.createdAt, $1.id) }
    }

    /// One job.
    public func job(_ id: String) -> ExportProgress? { state.withLock { $0.jobs[id] } }

    /// The directory of a finished bundle (`<directory>/<id>`); `nil` unless the job is `done`.
    public func bundle(_ id: String) -> String? {
        job(id)?.state == .done ? directory + "/" + id : nil
    }

    /// Queues an export (steps 1–2). Blocks on the recording index: call it off the cooperative pool.
    /// - Parameters:
    ///   - cameras: 1…``Limits/maxCameras`` cameras, already checked against the user's groups.
    ///   - from: Start, box UTC µs (the bundle starts at the keyframe at or before it).
    ///   - to: End, box UTC µs (exclusive); at most ``Limits/maxRangeMicros`` after `from`, not in the future.
    ///   - reason: Why (checked as a hold's reason: ``HallwatchEvidence/HoldText``).
    ///   - caseNumber: The case or incident number (checked as a hold's case id).
    ///   - by: The user asking.
    /// - Returns: The queued job.
    /// - Throws: ``Refusal``: 400 `export.input`, 404 `export.empty` (nothing recorded in the range), 507
    ///   `export.busy` (the queue is full) or `export.budget` (count, bytes or free space).
    public func submit(
        cameras: [CameraID], from: UTCMicros, to: UTCMicros, reason: String, caseNumber: String, by: String
    ) throws(Refusal) -> ExportProgress {
        func input(_ message: String) -> Refusal { Refusal(status: 400, code: "export.input", message: message) }
        guard !cameras.isEmpty, cameras.count <= limits.maxCameras, Set(cameras).count == cameras.count else {
            throw input("Choose 1 to \(limits.maxCameras) different cameras.")
        }
        let now = clocks.utcNow()
        guard from < to, to.micros - from.micros <= limits.maxRangeMicros, to <= now.adding(micros: 60_000_000) else {
            throw input(
                "The range must be non-empty, at most \(limits.maxRangeMicros / 3_600_000_000) h long and not in the future."
            )
        }
        let why: HoldText
        let number: HoldText
        do {
            why = try HoldText(reason, field: "reason", maxBytes: HoldRequest.maxReasonBytes)
            number = try HoldText(caseNumber, field: "caseNumber", maxBytes: HoldRequest.maxCaseIDBytes)
        } catch { throw input("\(error.field): \(error.message)") }
        let estimate: Int64
        do {
            let library = recordings.library()
            estimate = try cameras.reduce(Int64(0)) { $0 + (try library.stream(camera: $1, from: from, to: to)).length }
        } catch {
            throw Refusal(status: 503, code: "playback.read", message: "The recordings could not be read.")
        }
        guard estimate > 0 else {
            throw Refusal(
                status: 404, code: "export.empty", message: "Nothing of these cameras is recorded in that range.")
        }
        let free = freeBytes()
        var job = ExportProgress(
            id: EvidenceBundle.newExportID(), cameras: cameras, from: from, to: to, reason: why.text,
            caseNumber: number.text, requestedBy: by, createdAt: now, recordedBytes: estimate)
        try state.withLock { (s) throws(Refusal) in
            let live = s.jobs.values.filter { $0.state != .failed }
            let unfinished = live.filter { $0.state != .done }
            let waiting = live.filter { $0.state == .queued }.count
            guard waiting < limits.queued else {
                throw Refusal(
                    status: 507, code: "export.busy", message: "\(waiting) exports are waiting; try later.")
            }
            guard live.count < limits.bundles else {
                throw Refusal(
                    status: 507, code: "export.budget",
                    message: "\(live.count) exports are kept (at most \(limits.bundles)); delete one first.")
            }
            let used = live.reduce(Int64(0)) { $0 + ($1.state == .done ? $1.bundleBytes : $1.recordedBytes) }
            let pending = unfinished.reduce(Int64(0)) { $0 + $1.recordedBytes }
            guard used + estimate <= limits.bytes, free - pending - estimate >= limits.reserveBytes else {
                throw Refusal(
                    status: 507, code: "export.budget",
                    message:
                        "The export needs about \(estimate >> 20) MiB; the export space has \(max(0, min(limits.bytes - used, free - pending - limits.reserveBytes)) >> 20) MiB left. Delete an export or choose a shorter range."
                )
            }
            s.jobs[job.id] = job
        }
        do {
            job.holds = try requestHolds(cameras, from, to, why.text, number.text)
        } catch {
            logger.error("export hold request failed", metadata: ["export": "\(job.id)", "error": "\(error)"])
        }
        let holds = job.holds
        job = update(job.id) { $0.holds = holds } ?? job
        save(job)
        publish(job)
        // Runnable only now: a worker that takes it publishes `running` after this `queued`.
        state.withLock { $0.waiting.append(job.id) }
        startNext()
        return job
    }

    /// Deletes a finished or failed export: its bundle, its record and its retained bus message.
    /// - Returns: `false` when there is no such job or it is still queued or running.
    public func delete(_ id: String) -> Bool {
        let removed: ExportProgress? = state.withLock { s in
            guard let j = s.jobs[id], j.state == .done || j.state == .failed else { return nil }
            s.jobs[id] = nil
            return j
        }
        guard removed != nil else { return false }
        try? FileManager.default.removeItem(atPath: directory + "/" + id)
        try? FileManager.default.removeItem(atPath: directory + "/" + id + ".json")
        return true
    }

    // MARK: - running

    /// Starts waiting jobs while fewer than ``Limits/running`` run.
    func startNext() {
        let next: String? = state.withLock { s in
            guard s.running < limits.running, !s.waiting.isEmpty else { return nil }
            s.running += 1
            return s.waiting.removeFirst()
        }
        guard let next else { return }
        DispatchQueue.global(qos: .utility).async { [self] in
            run(next)
            state.withLock { $0.running -= 1 }
            startNext()
        }
        startNext()
    }

    /// Writes one bundle (steps 3–4).
    func run(_ id: String) {
        guard let job = update(id, { $0.state = .running }) else { return }
        publish(job)
        let dir = directory + "/" + id
        let request = EvidenceBundle.Request(
            cameras: job.cameras, from: job.from, to: job.to, reason: job.reason, caseNumber: job.caseNumber,
            exportedBy: "\(job.requestedBy) (web)", box: box, holds: job.holds, exportID: id, gapCause: gapCause)
        let started = clocks.monotonicNow()
        var published = started
        do {
            let manifest = try EvidenceBundle.write(
                request, from: recordings.library(), to: dir, signer: signer, now: clocks.utcNow()
            ) { p in
                guard
                    let j = update(
                        id,
                        {
                            $0.fraction = p.fraction
                            $0.filesDone = p.done
                            $0.filesTotal = p.total
                        })
                else { return }
                let now = clocks.monotonicNow()
                if !p.path.isEmpty || (now - published).seconds >= 0.5 {
                    published = now
                    publish(j)
                }
            }
            let size = Self.bytes(under: dir)
            let done = update(id) {
                $0.state = .done
                $0.fraction = 1
                $0.bundleBytes = size
                $0.finishedAt = clocks.utcNow()
            }
            if let done { finish(done, action: "export.done", details: "\(manifest.exportID): \(size) bytes") }
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            let event =
                (error as? any HallwatchError).map { ErrorEvent(code: $0.stableCode, message: $0.message) }
                ?? ErrorEvent(code: "export.bundle", message: "\(error)")
            logger.error("export failed", metadata: ["export": "\(id)", "error": "\(event)"])
            let failed = update(id) {
                $0.state = .failed
                $0.error = event
                $0.finishedAt = clocks.utcNow()
            }
            if let failed { finish(failed, action: "export.failed", details: "\(id): \(event)") }
        }
    }

    /// Records, publishes and audits a job that ended.
    func finish(_ job: ExportProgress, action: String, details: String) {
        save(job)
        publish(job)
        let (audit, actor) = (audit, job.requestedBy)
        let object = job.cameras.map(\.rawValue).joined(separator: ",")
        Task {
            _ = try? await audit.record(actor: actor, address: "-", action: action, object: object, details: details)
        }
    }

    /// Changes a job in place; the job after the change, `nil` when it is gone.
    @discardableResult
    func update(_ id: String, _ change: (inout ExportProgress) -> Void) -> ExportProgress? {
        state.withLock { s in
            guard var j = s.jobs[id] else { return nil }
            change(&j)
            s.jobs[id] = j
            return j
        }
    }

    /// Writes `<id>.json` (atomically).
    func save(_ job: ExportProgress) {
        guard let data = try? BusCoding.encoder().encode(job) else { return }
        try? data.write(to: URL(fileURLWithPath: directory + "/" + job.id + ".json"), options: .atomic)
    }

    /// Free bytes of the export directory's file system.
    func freeBytes() -> Int64 {
        var s = statvfs()
        guard statvfs(directory, &s) == 0 else { return 0 }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }

    /// Bytes of the regular files under `dir`.
    static func bytes(under dir: String) -> Int64 {
        var total: Int64 = 0
        let e = FileManager.default.enumerator(atPath: dir)
        while let p = e?.nextObject() as? String {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: dir + "/" + p),
                attributes[.type] as? FileAttributeType == .typeRegular, let size = attributes[.size] as? NSNumber
            else { continue }
            total += size.int64Value
        }
        return total
    }
}
