import Foundation
import HallwatchBus
import HallwatchCore
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
        if ["h264-aac.mp4", "h264-bframes.mp4", "hevc.mp4", "fullhd.mp4"].allSatisfy({ FileManager.default.fileExists(atPath: media + "/" + $0) }) { return }
        let r = try run("/bin/bash", [repoRoot + "/Image/fetch-clips.sh", media], timeout: 600)
        #expect(r.status == 0, "fetch-clips failed: \(r.stderr)")
    }

    struct Output { var status: Int32; var stdout: String; var stderr: String }

    /// Runs a command to completion (bounded by `timeout` seconds) and returns its output.
    static func run(_ exe: String, _ args: [String], timeout: Double = 120) throws -> Output {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err; p.standardInput = FileHandle.nullDevice
        try p.run()
        // Drain both pipes on their own threads (a full pipe would block the child), and wait for both
        // readers to reach end of file before using what they read.
        let outData = Mutex(Data()), errData = Mutex(Data())
        let drained = DispatchSemaphore(value: 0)
        Thread { outData.withLock { $0 = out.fileHandleForReading.readDataToEndOfFile() }; drained.signal() }.start()
        Thread { errData.withLock { $0 = err.fileHandleForReading.readDataToEndOfFile() }; drained.signal() }.start()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        _ = drained.wait(timeout: .now() + 5)
        _ = drained.wait(timeout: .now() + 5)
        return Output(status: p.terminationStatus, stdout: String(decoding: outData.withLock { $0 }, as: UTF8.self),
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
    init(_ name: String, _ exe: String, _ args: [String], logDirectory: String) throws {
        self.name = name
        logPath = "\(logDirectory)/\(name).log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: exe)
        process.arguments = args
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }
    var pid: Int32 { process.processIdentifier }
    /// SIGTERM, then SIGKILL after 5 s.
    func stop() {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(pid, SIGKILL); process.waitUntilExit() }
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
        client = BusClient(clientID: "e2e-watch-\(UUID().uuidString.prefix(8))", socketPath: socket, will: nil, logger: Logger(label: "e2e"))
        try await client.connect(timeout: .seconds(10))
        let stream = client.subscribe(BusTopics(box: box).allCameraStates)
        let t = Task { [weak self] in
            for await m in stream { if let s = try? m.decode(CameraState.self) { self?.states.withLock { $0.append(s) } } }
        }
        task.withLock { $0 = t }
    }
    func history(_ camera: String) -> [CameraState] { states.withLock { $0.filter { $0.camera.rawValue == camera } } }
    func latest(_ camera: String) -> CameraState? { history(camera).last }
    deinit { task.withLock { $0?.cancel() } }
}
