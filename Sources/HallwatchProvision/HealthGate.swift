import Foundation
import HallwatchBus
import HallwatchCore
import Logging
import Synchronization

/// Activation and the health gate (issue 17 steps 7–8; the DocC page "Apply", G1–G4).
///
/// After the store switched `current`, the gate announces the new release on the bus (retained
/// ``ConfigAnnouncement`` on `hallwatch/v1/<box>/config`); every process reads its configuration again
/// through `current` and adopts it or restarts (HallwatchProcess's `ReloadPolicy`). The gate then watches the
/// processes' retained states: the bus is healthy when the announcement came back to the gate's own
/// subscription; each ``required`` process is healthy when it is `up` with the new `configVersion` and stays
/// up, with the same pid, for ``settle`` (a process that crashes on the new configuration does so in that
/// time). All healthy within ``timeout``: applied. Otherwise the provisioner reverts.
public struct HealthGate: Sendable {
    /// The processes that must report the new version healthy (default: recorder, web, pruner).
    public var required: [String]
    /// The longest wait, from the announcement (issue 17: ≤ 30 s).
    public var timeout: Duration
    /// How long a process must stay up with the new version to count as healthy.
    public var settle: Duration
    /// Where connection trouble is logged (never a payload).
    public var logger: Logger

    /// A gate.
    public init(
        required: [String] = ["recorder", "web", "pruner"], timeout: Duration = .seconds(30),
        settle: Duration = .seconds(3), logger: Logger = Logger(label: "hallwatch.provision.gate")
    ) {
        self.required = required
        self.timeout = timeout
        self.settle = settle
        self.logger = logger
    }

    /// One process's health as the gate saw it last.
    public struct ServiceHealth: Sendable, Equatable {
        /// `bus`, `recorder`, `web`, `pruner`, or a capture worker `capture-<camera>`.
        public var name: String
        /// Up with the new version for the settle time (the bus: the announcement came back).
        public var healthy: Bool
        /// One line for the receipt: state, version and pid, or why not healthy.
        public var detail: String
    }

    /// What happened to one capture worker while the gate watched.
    public struct CameraActivity: Sendable, Equatable {
        /// The camera id.
        public var camera: String
        /// `restarted`, `started` (a new camera), `stopped` (a removed camera) or `restarting` (down, not back
        /// up with the new version when the gate ended).
        public var event: String
        /// For `restarted`: seconds from its `stopping`/`down` to its `up` with the new version.
        public var downSeconds: Double?
    }

    /// The gate's verdict and what it saw.
    public struct Report: Sendable, Equatable {
        /// The bus and each required process.
        public var services: [ServiceHealth]
        /// Capture workers that restarted, started or stopped.
        public var cameras: [CameraActivity]
        /// Seconds from the announcement to the verdict.
        public var elapsedSeconds: Double
        /// Every required service is healthy.
        public var healthy: Bool { services.allSatisfy(\.healthy) }
        /// One sentence per unhealthy service (the receipt's `provision.health` reasons).
        public var failures: [String] { services.filter { !$0.healthy }.map { "\($0.name): \($0.detail)" } }
    }

    /// G1–G3: announces `announcement` on the bus at `busSocket` under box `box` and waits for the verdict.
    /// Blocks the calling thread (the provisioner is synchronous); never call it from a Swift concurrency task.
    public func activate(_ announcement: ConfigAnnouncement, busSocket: String, box: String) -> Report {
        Self.blocking { [self] in await run(announcement, busSocket: busSocket, box: box, waitForHealth: true) }
    }

    /// G4 after a revert: announces the old release again so processes that restarted into the refused one
    /// come back through `current`; waits only until the announcement is on the bus (at most 5 s).
    public func announce(_ announcement: ConfigAnnouncement, busSocket: String, box: String) {
        var quick = self
        quick.timeout = .seconds(5)
        let gate = quick
        _ = Self.blocking { await gate.run(announcement, busSocket: busSocket, box: box, waitForHealth: false) }
    }

    /// What the gate tracks per process while it waits.
    struct Tracked {
        var state: ProcessState?
        /// When it was first seen up with the new version under its current pid (monotonic seconds).
        var healthySince: Double?
        var downAt: Double?
        var activity: CameraActivity?
    }

    final class Watch: Sendable {
        let processes = Mutex<[String: Tracked]>([:])
        let busEcho = Mutex<Double?>(nil)
    }

    func run(_ announcement: ConfigAnnouncement, busSocket: String, box: String, waitForHealth: Bool) async -> Report {
        let start = ContinuousClock.now
        let elapsed: @Sendable () -> Double = { (ContinuousClock.now - start).seconds }
        let topics = BusTopics(box: box)
        let client = BusClient(
            clientID: "provision-gate-\(getpid())", socketPath: busSocket, will: nil, logger: logger)
        let watch = Watch()
        var tasks: [Task<Void, Never>] = []
        defer { for t in tasks { t.cancel() } }
        do {
            try await client.connect(timeout: timeout)
            let configStream = try await client.subscribe(topics.config, timeout: .seconds(5))
            let processStream = try await client.subscribe(topics.allProcesses, timeout: .seconds(5))
            tasks.append(
                Task {
                    for await m in configStream
                    where (try? m.decode(ConfigAnnouncement.self)) == announcement && !m.retained {
                        watch.busEcho.withLock { $0 = $0 ?? elapsed() }
                    }
                })
            tasks.append(
                Task {
                    for await m in processStream {
                        guard let s = try? m.decode(ProcessState.self) else { continue }
                        Self.note(s, retained: m.retained, version: announcement.version, at: elapsed(), in: watch)
                    }
                })
            try client.publish(announcement, topic: topics.config, retain: true)
        } catch {
            await client.close()
            let why = "the bus at \(busSocket) did not answer: \(error)"
            return Report(
                services: [ServiceHealth(name: "bus", healthy: false, detail: why)]
                    + required.map { ServiceHealth(name: $0, healthy: false, detail: "not seen: the bus is down") },
                cameras: [], elapsedSeconds: elapsed())
        }
        let deadline = timeout.seconds
        while elapsed() < deadline {
            let echoed = watch.busEcho.withLock { $0 } != nil
            if !waitForHealth && echoed { break }
            let now = elapsed()
            let settled = watch.processes.withLock { p in
                required.allSatisfy { name in p[name]?.healthySince.map { now - $0 >= settle.seconds } ?? false }
            }
            if waitForHealth && echoed && settled { break }
            try? await Task.sleep(for: .milliseconds(100))
        }
        let now = elapsed()
        let report = watch.processes.withLock { p in
            Report(
                services: [
                    ServiceHealth(
                        name: "bus", healthy: watch.busEcho.withLock { $0 } != nil,
                        detail: watch.busEcho.withLock { $0 }.map {
                            "announcement of \(announcement.version) delivered in \(Int($0 * 1000)) ms"
                        } ?? "the announcement did not come back within \(Int(deadline)) s")
                ]
                    + required.map { name in
                        Self.health(name, p[name], version: announcement.version, now: now, settle: settle.seconds)
                    },
                cameras: p.keys.sorted().compactMap { name in
                    guard name.hasPrefix("capture-"), var a = p[name]?.activity else { return nil }
                    if a.event == "restarted" && a.downSeconds == nil { a.event = "restarting" }
                    return a
                }, elapsedSeconds: now)
        }
        await client.close()
        return report
    }

    /// Folds one process state into what the gate tracks.
    static func note(_ s: ProcessState, retained: Bool, version: String, at now: Double, in watch: Watch) {
        watch.processes.withLock { p in
            var t = p[s.process] ?? Tracked()
            let previousPID = t.state?.pid
            let camera = s.process.hasPrefix("capture-") ? String(s.process.dropFirst(8)) : nil
            if s.state == .up && s.configVersion == version {
                if t.healthySince == nil || previousPID != s.pid { t.healthySince = now }
                if let camera, !retained {
                    if let down = t.downAt {
                        t.activity = CameraActivity(camera: camera, event: "restarted", downSeconds: now - down)
                    } else if t.state == nil || t.state?.state != .up {
                        t.activity = CameraActivity(camera: camera, event: "started", downSeconds: nil)
                    }
                }
            } else {
                t.healthySince = nil
                if s.state != .up, !retained, t.downAt == nil {
                    t.downAt = now
                    if let camera { t.activity = CameraActivity(camera: camera, event: "stopped", downSeconds: nil) }
                }
            }
            t.state = s
            p[s.process] = t
        }
    }

    /// A process is healthy only once it has stayed up with `version` for `settle` seconds: one that came up
    /// just before the deadline may be crash-looping on the new configuration.
    static func health(_ name: String, _ t: Tracked?, version: String, now: Double, settle: Double) -> ServiceHealth {
        guard let t, let s = t.state else {
            return ServiceHealth(name: name, healthy: false, detail: "never reported on the bus")
        }
        let running = "\(s.state.rawValue) with \(s.configVersion ?? "no version") (pid \(s.pid))"
        if let since = t.healthySince, now - since < settle {
            return ServiceHealth(
                name: name, healthy: false,
                detail: "up with \(version) (pid \(s.pid)) for only \(String(format: "%.1f", now - since)) s of the "
                    + "\(String(format: "%.0f", settle)) s it must stay up (restarting on the new configuration?)")
        }
        if let since = t.healthySince {
            return ServiceHealth(
                name: name, healthy: true,
                detail: "up with \(version) (pid \(s.pid)) for \(String(format: "%.1f", now - since)) s")
        }
        let why = s.state == .up ? "did not report \(version)" : "not up with \(version)"
        return ServiceHealth(
            name: name, healthy: false,
            detail: "\(why) — last seen \(running)\(s.reason.map { ": \($0)" } ?? "")")
    }

    /// Runs `body` on the concurrency pool and waits for it on this (non-pool) thread.
    static func blocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let result = Shared<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            let value = await body()
            result.state.withLock { $0 = value }
            done.signal()
        }
        done.wait()
        return result.state.withLock { $0! }
    }
}

/// A value several tasks share, behind a lock (a class, so closures can capture it).
final class Shared<Value: Sendable>: Sendable {
    let state: Mutex<Value>
    init(_ value: Value) { state = Mutex(value) }
}
