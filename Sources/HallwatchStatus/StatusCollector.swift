import Foundation
import HallwatchBus
import HallwatchCore
import Synchronization

/// The box's current state as the bus tells it: every camera's ingest state, what the recorder stored,
/// every recording disk's health, and every process's liveness. Fed by retained messages, so a fresh collector knows everything at once.
public final class StatusCollector: Sendable {
    /// One snapshot of the box.
    public struct Snapshot: Codable, Sendable, Equatable {
        /// The box id.
        public var box: String
        /// When the snapshot was taken (box UTC).
        public var at: UTCMicros
        /// One row per configured or reported camera.
        public var cameras: [CameraRow]
        /// Every recording disk the recorder reported, by name.
        public var disks: [DiskState]
        /// Every process's liveness as last published.
        public var processes: [ProcessState]
        /// The web page's certificate, when `hallwatch-web` has published it.
        public var web: WebIdentity?

        public init(
            box: String, at: UTCMicros, cameras: [CameraRow], disks: [DiskState] = [], processes: [ProcessState] = [],
            web: WebIdentity? = nil
        ) {
            self.box = box
            self.at = at
            self.cameras = cameras
            self.disks = disks
            self.processes = processes
            self.web = web
        }
    }

    /// One camera's line of `hallwatchctl status`.
    public struct CameraRow: Codable, Sendable, Equatable {
        /// The camera.
        public var camera: CameraID
        /// Its capture worker's last published state, if any.
        public var state: CameraState?
        /// What the recorder last published for it, if anything.
        public var recording: RecordingStats?

        public init(camera: CameraID, state: CameraState? = nil, recording: RecordingStats? = nil) {
            self.camera = camera
            self.state = state
            self.recording = recording
        }
    }

    let topics: BusTopics
    let bus: BusClient
    struct Seen {
        var states: [CameraID: CameraState] = [:]
        var recordings: [CameraID: RecordingStats] = [:]
        var disks: [String: DiskState] = [:]
        var processes: [String: ProcessState] = [:]
        var web: WebIdentity?
    }
    let data = Mutex(Seen())
    let tasks = Mutex<[Task<Void, Never>]>([])

    /// Subscribes on `bus` (which the caller connects) to the camera, recording, disk and process topics.
    public init(bus: BusClient, topics: BusTopics) {
        self.bus = bus
        self.topics = topics
        let streams = [
            bus.subscribe(topics.allCameraStates), bus.subscribe(topics.allRecordings),
            bus.subscribe(topics.allSubStreamStates), bus.subscribe(topics.allSubStreamRecordings),
            bus.subscribe(topics.allDisks),
            bus.subscribe(topics.allProcesses), bus.subscribe(topics.webIdentity),
        ]
        let t = streams.map { stream in
            Task { [weak self] in
                for await message in stream { self?.take(message) }
            }
        }
        tasks.withLock { $0 = t }
    }

    deinit { tasks.withLock { for t in $0 { t.cancel() } } }

    /// Feeds one bus message (what the subscriptions do; tests call it directly).
    public func take(_ m: BusMessage) {
        guard !m.payload.isEmpty else { return }
        if let s = try? m.decode(CameraState.self), m.topic == topics.cameraState(s.camera) {
            data.withLock { $0.states[s.camera] = s }
        } else if let r = try? m.decode(RecordingStats.self), m.topic == topics.recording(r.camera) {
            data.withLock { $0.recordings[r.camera] = r }
        } else if let d = try? m.decode(DiskState.self), m.topic == topics.disk(d.disk) {
            data.withLock { $0.disks[d.disk] = d }
        } else if m.topic == topics.webIdentity, let w = try? m.decode(WebIdentity.self) {
            data.withLock { $0.web = w }
        } else if let p = try? m.decode(ProcessState.self) {
            data.withLock { $0.processes[p.process] = p }
        }
    }

    /// The current state; `cameras` lists the configured ones first (in config order), then any other
    /// camera seen on the bus, each with the state people must read (``Snapshot/state(of:)``: `offline`,
    /// `capture.down` when its capture worker is not up).
    public func snapshot(configured: [CameraID], now: UTCMicros) -> Snapshot {
        data.withLock { d in
            var ids = configured
            for id in Set(d.states.keys).union(d.recordings.keys).sorted() where !ids.contains(id) { ids.append(id) }
            var snapshot = Snapshot(
                box: topics.box, at: now,
                cameras: ids.map { CameraRow(camera: $0, state: d.states[$0], recording: d.recordings[$0]) },
                disks: d.disks.values.sorted { $0.disk < $1.disk },
                processes: d.processes.values.sorted { $0.process < $1.process }, web: d.web)
            // A camera whose capture worker is down is shown so, in the table and in `--json` alike.
            for i in snapshot.cameras.indices { snapshot.cameras[i].state = snapshot.state(of: snapshot.cameras[i]) }
            return snapshot
        }
    }
}

extension StatusCollector.Snapshot {
    /// A camera row's state as people must read it: its capture worker's last published state, except that a
    /// camera whose worker is not `up` — killed outright (only its last-will speaks), exiting in a loop on a
    /// refused configuration, stopped — is `offline` with `capture.down`, whatever its last state said: nothing
    /// records it now. `nil` when neither the worker nor its process was ever seen.
    public func state(of row: StatusCollector.CameraRow) -> CameraState? {
        guard let p = processes.first(where: { $0.process == row.camera.captureProcessName }), p.state != .up,
            row.state?.state != .offline
        else { return row.state }
        var state = row.state ?? CameraState(camera: row.camera, state: .offline, at: p.at ?? at)
        state.state = .offline
        state.reason = ErrorEvent(
            code: "capture.down",
            message: "its capture worker is \(p.state.rawValue)\(p.reason.map { " (\($0))" } ?? "")",
            camera: row.camera)
        return state
    }

    /// The human table printed by `hallwatchctl status` and the demo.
    public func render() -> String {
        var lines = ["Hallwatch box \(box) — \(at.iso8601)"]
        func pad(_ s: String, _ n: Int) -> String {
            s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count)
        }
        lines.append(
            pad("CAMERA", 14) + pad("STATE", 11) + pad("CODEC", 6) + pad("SIZE", 10) + pad("FPS", 6)
                + pad("BITRATE", 12) + pad("RECORDED", 10) + "NOTE")
        for var row in cameras {
            row.state = state(of: row)
            let s = row.state
            let size = s.flatMap { st in st.width.map { "\($0)x\(st.height ?? 0)" } } ?? "-"
            let fps = s?.fps.map { String(format: "%.1f", $0) } ?? "-"
            let rate = s?.bitrateBps.map { String(format: "%.2f Mb/s", Double($0) / 1e6) } ?? "-"
            let recorded = row.recording.map { String(format: "%.1f s", $0.recordedSeconds) } ?? "-"
            lines.append(
                pad(row.camera.rawValue, 14) + pad(s?.state.rawValue ?? "unknown", 11) + pad(s?.codec ?? "-", 6)
                    + pad(size, 10) + pad(fps, 6) + pad(rate, 12) + pad(recorded, 10) + row.note(at: at))
        }
        // A disk that is not healthy is said in capitals with its reason: it is what an installer must act on.
        let diskNotes = disks.map { d -> String in
            d.health == .healthy
                ? "\(d.disk) healthy (\(d.freeSlots)/\(d.slotCount) slots free, \(d.cameras.count) cameras"
                    + "\(d.slowestCommitMillis.map { String(format: ", commits up to %.0f ms", $0) } ?? ""))"
                : "\(d.disk) \(d.health.rawValue.uppercased())\(d.reason.map { " \($0.code): \($0.message)" } ?? "")"
        }
        if !diskNotes.isEmpty { lines.append("disks: " + diskNotes.joined(separator: "; ")) }
        let procs = processes.map { "\($0.process) \($0.state.rawValue)\($0.pid > 0 ? " (pid \($0.pid))" : "")" }
        lines.append("processes: " + (procs.isEmpty ? "none seen on the bus" : procs.joined(separator: ", ")))
        if let w = web {
            lines.append(
                "web: https port \(w.httpsPort), \(w.selfSigned ? "self-signed " : "")certificate for "
                    + "\(w.names.joined(separator: ", ")), SHA-256 \(w.tlsSHA256)")
            if let id = w.identitySHA256 { lines.append("identity key (Ed25519), SHA-256 \(id)") }
        }
        return lines.joined(separator: "\n")
    }
}

extension StatusCollector.CameraRow {
    /// What is wrong with a camera whose capture worker gives no reason: the recorder refusing its media (a full
    /// disk; the worker may still say `online`, but nothing is written), else a camera clock far from its
    /// frames' arrivals (timestamps and arrivals disagree by more than 10 %: `media.cameraClock`). `nil` when
    /// neither.
    public var warning: ErrorEvent? {
        if let r = recording?.refused {
            return ErrorEvent(code: r.code, message: "NOT RECORDED: \(r.message)", camera: camera)
        }
        if let f = state?.fps, let t = state?.timestampFPS, f > 0, t > 0, abs(f - t) > 0.1 * t {
            return ErrorEvent(
                code: "media.cameraClock", message: String(format: "timestamps say %.1f fps, %.1f arrive", t, f),
                camera: camera)
        }
        return nil
    }

    /// The NOTE column, most urgent first: the capture worker's reason, else the age of the last fragment with
    /// the ``warning`` and `RTP over UDP` when `auto` fell back to it (a refused camera shows its warning only).
    public func note(at now: UTCMicros) -> String {
        if let r = state?.reason { return "\(r.code): \(r.message)" }
        if let w = warning, recording?.refused != nil { return "\(w.code): \(w.message)" }
        var parts: [String] = []
        if let last = recording?.lastFragmentAt {
            parts.append(String(format: "last fragment %.1f s ago", Double(now.micros - last.micros) / 1e6))
        }
        if let w = warning { parts.append("\(w.code): \(w.message)") }
        if state?.transport == "udp" { parts.append("RTP over UDP") }
        return parts.joined(separator: "; ")
    }
}
