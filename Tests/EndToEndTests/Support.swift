import Foundation
import HallwatchBus
import HallwatchCore
import HallwatchStorage
import Logging
import Synchronization
import Testing

/// Paths and helpers shared by the end-to-end tests. Everything runs on 127.0.0.1 and in a temporary
/// directory; every process started is stopped by its PID.
enum E2E {
    static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()
    /// Directory of the built executables (the test bundle sits beside them).
    static let binDirectory: String = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        .deletingLastPathComponent().path
    static let media = repoRoot + "/.media"

    /// Fetches the clips when a developer runs `swift test` without `make clips`.
    static func ensureClips() throws {
        if ["h264-aac.mp4", "h264-bframes.mp4", "hevc.mp4", "fullhd.mp4", "sub-360p.mp4", "sub-bikes.mp4"].allSatisfy({
            FileManager.default.fileExists(atPath: media + "/" + $0)
        }) {
            return
        }
        let r = try run("/bin/bash", [repoRoot + "/Image/fetch-clips.sh", media], timeout: 600)
        #expect(r.status == 0, "fetch-clips failed: \(r.stderr)")
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a command to completion (bounded by `timeout` seconds) and returns its output.
    static func run(_ exe: String, _ args: [String], timeout: Double = 120) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Drain both pipes on their own threads (a full pipe would block the child), and wait for both
        // readers to reach end of file before using what they read.
        let outData = Mutex(Data())
        let errData = Mutex(Data())
        let drained = DispatchSemaphore(value: 0)
        Thread {
            outData.withLock { $0 = out.fileHandleForReading.readDataToEndOfFile() }
            drained.signal()
        }.start()
        Thread {
            errData.withLock { $0 = err.fileHandleForReading.readDataToEndOfFile() }
            drained.signal()
        }.start()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        _ = drained.wait(timeout: .now() + 5)
        _ = drained.wait(timeout: .now() + 5)
        return Output(
            status: p.terminationStatus, stdout: String(decoding: outData.withLock { $0 }, as: UTF8.self),
            stderr: String(decoding: errData.withLock { $0 }, as: UTF8.self))
    }

    static func tool(_ name: String) -> String { binDirectory + "/" + name }

    static func freePort() -> Int { LoopbackPort.pickFree() }

    /// Waits until `condition` holds, polling every 100 ms; returns whether it did within `seconds`.
    static func waitFor(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(100_000)
        }
        return try condition()
    }
}

/// A child process the test owns; killed (by PID) when released.
final class Child: @unchecked Sendable {
    let process = Process()
    let name: String
    let logPath: String
    init(_ name: String, _ exe: String, _ args: [String], logDirectory: String, environment: [String: String] = [:])
        throws
    {
        self.name = name
        logPath = "\(logDirectory)/\(name).log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: exe)
        process.arguments = args
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        try process.run()
    }
    var pid: Int32 { process.processIdentifier }
    /// SIGTERM, then SIGKILL after 5 s.
    func stop() {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
    }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    deinit { stop() }
}

/// Watches the bus and remembers every camera state it saw, in order.
final class BusWatcher: @unchecked Sendable {
    let client: BusClient
    let states = Mutex<[CameraState]>([])
    let task: Mutex<Task<Void, Never>?> = Mutex(nil)
    init(socket: String, box: String) async throws {
        client = BusClient(
            clientID: "e2e-watch-\(UUID().uuidString.prefix(8))", socketPath: socket, will: nil,
            logger: Logger(label: "e2e"))
        try await client.connect(timeout: .seconds(10))
        let topics = BusTopics(box: box)
        let streams = [client.subscribe(topics.allCameraStates), client.subscribe(topics.allSubStreamStates)]
        let t = Task { [weak self] in
            await withTaskGroup(of: Void.self) { group in
                for stream in streams {
                    group.addTask {
                        for await m in stream {
                            if let s = try? m.decode(CameraState.self) { self?.states.withLock { $0.append(s) } }
                        }
                    }
                }
            }
        }
        task.withLock { $0 = t }
    }
    func history(_ camera: String) -> [CameraState] { states.withLock { $0.filter { $0.camera.rawValue == camera } } }
    func latest(_ camera: String) -> CameraState? { history(camera).last }
    deinit { task.withLock { $0?.cancel() } }
}

/// Remembers every message published on some topics (retained ones included), for assertions on what
/// the processes said on the bus.
final class BusLog: @unchecked Sendable {
    let client: BusClient
    let messages = Mutex<[(topic: String, payload: [UInt8], at: Date)]>([])
    let tasks = Mutex<[Task<Void, Never>]>([])
    init(socket: String, topics: [String]) async throws {
        client = BusClient(
            clientID: "e2e-log-\(UUID().uuidString.prefix(8))", socketPath: socket, will: nil,
            logger: Logger(label: "e2e"))
        try await client.connect(timeout: .seconds(10))
        for topic in topics {
            let stream = client.subscribe(topic)
            let t = Task { [weak self] in
                for await m in stream { self?.messages.withLock { $0.append((m.topic, m.payload, Date())) } }
            }
            tasks.withLock { $0.append(t) }
        }
    }
    /// Every message on `topic` decoded as `T`, in arrival order.
    func all<T: Decodable>(_ type: T.Type, topic: String) -> [T] {
        messages.withLock {
            $0.filter { $0.topic == topic }.compactMap { try? BusCoding.decode(T.self, from: $0.payload) }
        }
    }
    deinit { tasks.withLock { for t in $0 { t.cancel() } } }
}

/// A whole box under test: the simulated cameras, a configuration with its disks, and the supervisor
/// running mosquitto, the recorder and a capture worker per camera. Everything lives under
/// `/tmp/hw-<name>-<pid>` and every process is stopped by PID.
final class TestBox: @unchecked Sendable {
    struct Camera {
        var id: String
        var file: String
        var audio = false
        var disk: String? = nil
        /// The clip of the camera's sub stream (served at mount `<id>-sub`, configured as `subStream`), if any.
        var sub: String? = nil
    }
    let name: String
    let dir: String
    let cameras: [Camera]
    let disks: [(name: String, path: String)]
    let configPath: String
    let port = E2E.freePort()
    private(set) var simcam: Child?
    private(set) var supervisor: Child?

    /// - Parameters:
    ///   - disks: name and path of each recording disk; a path is created when missing.
    ///   - slotSizeBytes, slotCount: of disks the recorder initialises itself.
    init(
        _ name: String, cameras: [Camera], disks: [(name: String, path: String)]? = nil, slotSizeBytes: Int = 8 << 20,
        slotCount: Int = 32
    ) throws {
        try E2E.ensureClips()
        self.name = name
        self.cameras = cameras
        dir = "/tmp/hw-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        self.disks = disks ?? [("disk0", dir + "/disk0")]
        for d in self.disks {
            try FileManager.default.createDirectory(atPath: d.path, withIntermediateDirectories: true)
        }
        configPath = dir + "/hallwatch.yaml"
        var yaml = """
            box: \(name)
            bus:
              socket: \(dir)/bus.sock
            recorder:
              socket: \(dir)/recorder.sock
              fsyncCadence: 1s
              slotSizeBytes: \(slotSizeBytes)
              slotCount: \(slotCount)
              disks:

            """
        for d in self.disks { yaml += "    - name: \(d.name)\n      path: \(d.path)\n" }
        yaml += """
            capture:
              maxFragmentDuration: 1s
              ioTimeout: 3s
              backoffInitial: 250ms
              backoffMax: 2s
            cameras:

            """
        for c in cameras {
            yaml += "  - id: \(c.id)\n    source: rtsp://127.0.0.1:\(port)/\(c.id)\n    audio: \(c.audio)\n"
            if let d = c.disk { yaml += "    disk: \(d)\n" }
            if c.sub != nil { yaml += "    subStream:\n      source: rtsp://127.0.0.1:\(port)/\(c.id)-sub\n" }
        }
        try yaml.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// Starts the simcam, then the supervisor (with `environment` added to what its children inherit).
    func start(environment: [String: String] = [:]) throws {
        let cam = try Child(
            "simcam", E2E.tool("hallwatch-simcam"),
            ["--port", "\(port)"]
                + cameras.flatMap { c in
                    ["--mount", "\(c.id)=\(E2E.media)/\(c.file)"]
                        + (c.sub.map { ["--mount", "\(c.id)-sub=\(E2E.media)/\($0)"] } ?? [])
                },
            logDirectory: dir + "/logs")
        simcam = cam
        #expect(E2E.waitFor(15) { cam.log.contains("simcam ready") }, "simcam did not start: \(cam.log)")
        supervisor = try Child(
            "supervise", E2E.tool("hallwatchctl"),
            [
                "supervise", "--config", configPath, "--run-directory", dir + "/run", "--status-every", "0",
                "--max-restart-delay", "300ms",
            ],
            logDirectory: dir + "/logs", environment: environment)
    }

    /// The PID the supervisor recorded for one of its processes (`recorder`, `capture-lobby`, …).
    func pid(_ process: String) -> Int32? {
        (try? String(contentsOfFile: "\(dir)/run/pids/\(process).pid", encoding: .utf8)).flatMap {
            Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// Every disk, read as one.
    var library: RecordingLibrary { RecordingLibrary(disks: disks, box: name) }

    /// End (box UTC) of the camera's newest indexed fragment on `disk` (any disk when `nil`).
    func recordedEnd(_ camera: String, disk: String? = nil) -> UTCMicros? {
        guard let id = CameraID(camera) else { return nil }
        let readers = library.readers.filter { disk == nil || $0.name == disk }
        return readers.compactMap { try? $0.reader.runs(camera: id).map(\.endUTC).max() }.compactMap { $0 }.max()
    }

    /// Largest hole, seconds, between consecutive fragments of the camera's runs that overlap
    /// `[from, to)`, all disks merged.
    func largestHole(_ camera: String, from: UTCMicros, to: UTCMicros) throws -> Double {
        let id = try #require(CameraID(camera))
        var worst = 0.0
        for run in try library.segments(camera: id, from: from, to: to, startAtKeyframe: false) {
            for (a, b) in zip(run.fragments, run.fragments.dropFirst()) {
                worst = max(worst, Double(b.meta.start90k.ticks - a.meta.end90k.ticks) / 90_000)
            }
        }
        return worst
    }

    /// The last `lines` lines of every log under the box's directory (the simcam's, the supervisor's and its
    /// children's), for a failed expectation to print: the directory is removed when the box is released.
    /// Every log's first `head` and last `lines` lines: how each process started (a disk that failed to open
    /// says why there) and what it did last.
    func logTails(lines: Int = 25, head: Int = 15) -> String {
        let logs = (FileManager.default.subpaths(atPath: dir) ?? []).filter { $0.hasSuffix(".log") }.sorted()
        return logs.map { name in
            let text = (try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)) ?? ""
            let all = text.split(separator: "\n")
            let shown =
                all.count <= head + lines
                ? all : all.prefix(head) + ["  … \(all.count - head - lines) lines …"] + all.suffix(lines)
            return "== \(name)\n" + shown.joined(separator: "\n")
        }.joined(separator: "\n")
    }

    /// `hallwatchctl check --level crc` over every disk.
    func check() throws -> E2E.Output {
        try E2E.run(E2E.tool("hallwatchctl"), ["check", "--config", configPath, "--level", "crc"])
    }

    func stop() {
        supervisor?.stop()
        for file in (try? FileManager.default.contentsOfDirectory(atPath: dir + "/run/pids")) ?? [] {
            if let p = pid(file.replacingOccurrences(of: ".pid", with: "")), p > 1 { kill(p, SIGKILL) }
        }
        simcam?.stop()
    }

    deinit {
        stop()
        if ProcessInfo.processInfo.environment["HALLWATCH_KEEP_E2E"] == nil {
            try? FileManager.default.removeItem(atPath: dir)
        }
    }
}
