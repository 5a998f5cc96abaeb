import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import HallwatchProcess
import HallwatchStatus
import Logging

/// Runs the plan's processes until SIGINT/SIGTERM, printing the status table every `statusEvery` seconds.
///
/// The configuration file is watched (every second, by modification time and size): each camera added to it
/// (`hallwatchctl camera adopt`, or the discovery agent with `adopt: auto`) gets its capture worker at once.
/// A camera removed from it has its worker stopped (not restarted); the workers of unchanged cameras keep
/// running (a provisioned configuration switched under `current` changes the file the same way, issue 17
/// step 7). A file that no longer loads is logged and ignored until fixed.
public enum DevelopmentBox {
    /// - Parameters:
    ///   - statusEvery: Seconds between status tables (0: never).
    ///   - maxRestartDelay: Cap of the restart back-off of a process that keeps dying.
    ///   - say: Where a line for the operator goes (stdout in `hallwatchctl`).
    ///   - clocks: The status table's time and every wait (the config watcher's, the status period, the
    ///     supervisor's).
    /// - Throws: ``SupervisorError`` when a process cannot be started.
    public static func run(
        plan: BoxPlan, statusEvery: Double, maxRestartDelay: Duration = .seconds(10),
        say: @escaping @Sendable (String) -> Void, clocks: any Clocks = SystemClocks(), logger: Logger
    ) async throws {
        let supervisor = Supervisor(
            processes: try plan.processes(), runDirectory: plan.runDirectory, maxRestartDelay: maxRestartDelay,
            clocks: clocks, logger: logger)
        try supervisor.start()
        let cameras = CameraList(plan.config.streams.map(\.id))
        let watcher = Task {
            var last = fileStamp(plan.configPath)
            while !Task.isCancelled {
                try? await clocks.sleep(for: .seconds(1))
                let now = fileStamp(plan.configPath)
                guard now != last else { continue }
                last = now
                do {
                    let cfg = try ConfigLoader.load(path: plan.configPath)
                    for cam in cfg.streams where !cameras.contains(cam.id) {
                        try supervisor.add(plan.captureProcess(cam))
                        cameras.append(cam.id)
                        say("camera '\(cam.id)' added to the configuration: capture worker started")
                    }
                    for id in cameras.ids where cfg.camera(id) == nil {
                        supervisor.remove(id.captureProcessName)
                        cameras.remove(id)
                        say("camera '\(id)' removed from the configuration: capture worker stopped")
                    }
                } catch {
                    logger.error(
                        "the changed configuration does not load; keeping the running one",
                        metadata: ["error": "\(error)"])
                }
            }
        }
        let signals = SignalWaiter([SIGINT, SIGTERM])
        let bus = BusClient(
            clientID: "hallwatchctl-supervise-\(getpid())", socketPath: plan.config.bus.socket, will: nil,
            logger: logger)
        try? bus.start()
        let collector = StatusCollector(bus: bus, topics: BusTopics(box: plan.config.box))
        let printer = Task {
            guard statusEvery > 0 else { return }
            while !Task.isCancelled {
                try? await clocks.sleep(for: .milliseconds(Int64(statusEvery * 1000)))
                if Task.isCancelled { break }
                say(collector.snapshot(configured: cameras.ids, now: clocks.utcNow()).render() + "\n")
            }
        }
        await signals.wait()
        printer.cancel()
        watcher.cancel()
        say("stopping…")
        await bus.close()
        supervisor.stop()
        say("stopped.")
    }

    /// Modification time (ns) and size of a file, to notice changes.
    static func fileStamp(_ path: String) -> [Int64] {
        var st = stat()
        guard stat(path, &st) == 0 else { return [] }
        return [Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec), Int64(st.st_size)]
    }
}

/// The cameras being supervised, shared by the watcher and the status printer.
final class CameraList: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [CameraID]
    init(_ ids: [CameraID]) { list = ids }
    var ids: [CameraID] {
        lock.lock()
        defer { lock.unlock() }
        return list
    }
    func contains(_ id: CameraID) -> Bool { ids.contains(id) }
    func remove(_ id: CameraID) {
        lock.lock()
        list.removeAll { $0 == id }
        lock.unlock()
    }
    func append(_ id: CameraID) {
        lock.lock()
        list.append(id)
        lock.unlock()
    }
}
