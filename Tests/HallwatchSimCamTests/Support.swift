import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Paths of the repository this test file lives in.
enum Repo {
    /// The repository root (`Tests/HallwatchSimCamTests/Support.swift` → three levels up).
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    /// Where `make clips` puts the clips.
    static let media = root.appendingPathComponent(".media")

    static func clip(_ name: String) -> String { media.appendingPathComponent(name).path }

    /// The clips the tests use.
    static let clipNames = ["h264-aac.mp4", "h264-bframes.mp4", "hevc.mp4", "fullhd.mp4"]

    /// Fetches the clips once per test process (`bash Image/fetch-clips.sh <repo>/.media`), if any is missing.
    static func ensureClips() async throws {
        try await onThread { try clipsFetched.get() }
    }

    private static let clipsFetched: Result<Void, TestFailure> = {
        if clipNames.allSatisfy({ FileManager.default.fileExists(atPath: clip($0)) }) { return .success(()) }
        do {
            let r = try run(
                "/bin/bash", [root.appendingPathComponent("Image/fetch-clips.sh").path, media.path], timeout: 300)
            guard r.status == 0 else {
                return .failure(TestFailure("fetch-clips.sh failed (\(r.status)): \(r.output)"))
            }
            return .success(())
        } catch let e as TestFailure { return .failure(e) } catch { return .failure(TestFailure("\(error)")) }
    }()

    /// The built `hallwatch-simcam`, next to the test bundle (`swift build --show-bin-path`).
    static func simcamExecutable() throws -> String {
        var dirs: [URL] = []
        if let exe = Bundle.main.executableURL { dirs.append(exe.deletingLastPathComponent()) }
        dirs.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        dirs.append(root.appendingPathComponent(".build/debug"))
        for d in dirs {
            let p = d.appendingPathComponent("hallwatch-simcam").path
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        throw TestFailure("hallwatch-simcam not built (looked in \(dirs.map(\.path))); run swift build first")
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// Runs blocking work on a fresh thread so the Swift concurrency pool (2 threads on a 2-core box) stays free.
func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        let t = Thread { c.resume(with: Result { try body() }) }
        t.start()
    }
}

/// Result of a finished child process: exit status (or 128+signal), stdout, combined with stderr when asked.
struct RunResult: Sendable {
    var status: Int32
    var output: String
    var error: String
    /// Wall-clock duration in seconds.
    var seconds: Double
}

/// Runs a program to completion (blocking), killing it (by its PID) after `timeout` seconds.
/// Output goes through temporary files, so a chatty child never blocks on a full pipe.
func run(_ program: String, _ arguments: [String], timeout: Double) throws -> RunResult {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("simcam-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("out")
    let err = dir.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: out.path, contents: nil)
    _ = FileManager.default.createFile(atPath: err.path, contents: nil)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: program)
    p.arguments = arguments
    p.standardInput = FileHandle.nullDevice
    p.standardOutput = try FileHandle(forWritingTo: out)
    p.standardError = try FileHandle(forWritingTo: err)
    let started = Date()
    try p.run()
    let pid = p.processIdentifier
    let killer = DispatchWorkItem { kill(pid, SIGKILL) }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    p.waitUntilExit()
    killer.cancel()
    let seconds = Date().timeIntervalSince(started)
    let status = p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus
    return RunResult(
        status: status, output: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
        error: (try? String(contentsOf: err, encoding: .utf8)) ?? "", seconds: seconds)
}

/// A running `hallwatch-simcam` child: started on port 0, ready once it printed its URLs; stopped by PID.
final class SimCamProcess: @unchecked Sendable {
    let process = Process()
    let urls: [String: String]  // mount name → rtsp URL
    let logFile: URL
    private let stdout: FileHandle

    /// Starts the simcam with `mounts` (name → clip path) and waits (≤ 20 s) for its ready line.
    init(mounts: [(String, String)], extra: [String] = []) throws {
        let exe = try Repo.simcamExecutable()
        logFile = FileManager.default.temporaryDirectory.appendingPathComponent("simcam-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        let pipe = Pipe()
        process.executableURL = URL(fileURLWithPath: exe)
        process.arguments = ["--port", "0"] + mounts.flatMap { ["--mount", "\($0.0)=\($0.1)"] } + extra
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = pipe
        process.standardError = try FileHandle(forWritingTo: logFile)
        try process.run()
        stdout = pipe.fileHandleForReading
        guard let line = Self.readLine(stdout.fileDescriptor, timeout: 20) else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            throw TestFailure(
                "simcam printed no ready line; log:\n\((try? String(contentsOf: logFile, encoding: .utf8)) ?? "")")
        }
        let words = line.split(separator: " ").map(String.init)
        guard words.count >= 3, words[0] == "simcam", words[1] == "ready" else {
            throw TestFailure("unexpected first line \(line)")
        }
        var urls: [String: String] = [:]
        for u in words.dropFirst(2) {
            urls[String(u.split(separator: "/").last ?? "")] = u
        }
        self.urls = urls
    }

    var pid: Int32 { process.processIdentifier }

    /// The server's stderr so far (swift-log lines).
    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    /// Sends `signal` to the child's PID and waits (≤ `timeout` s) for it to exit; returns its exit status
    /// (128 + signal number if a signal killed it), or nil if it had to be killed.
    func stop(signal: Int32 = SIGTERM, timeout: Double = 10) -> Int32? {
        guard process.isRunning else { return process.terminationStatus }
        kill(pid, signal)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(20_000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return process.terminationReason == .uncaughtSignal
            ? 128 + process.terminationStatus : process.terminationStatus
    }

    deinit {
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: logFile)
    }

    /// Reads one line from `fd` with a deadline (poll(2) + read(2), byte by byte: it is one short line).
    private static func readLine(_ fd: Int32, timeout: Double) -> String? {
        var bytes: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = Int32(max(1, deadline.timeIntervalSinceNow * 1000))
            guard poll(&pfd, 1, left) > 0 else { continue }
            var b: UInt8 = 0
            guard read(fd, &b, 1) == 1 else { return nil }
            if b == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(b)
        }
        return nil
    }
}

/// ffprobe's JSON, the parts the tests read.
struct Probe: Decodable, Sendable {
    struct Stream: Decodable, Sendable {
        var index: Int
        var codec_name: String?
        var codec_type: String?
        var width: Int?
        var height: Int?
        var channels: Int?
        var sample_rate: String?
    }
    struct Packet: Decodable, Sendable {
        var stream_index: Int
        var pts_time: String?
        var flags: String?
        var pts: Double? { pts_time.flatMap(Double.init) }
        var isKey: Bool { flags?.contains("K") ?? false }
    }
    var streams: [Stream]?
    var packets: [Packet]?
}

/// Runs `ffprobe -of json` with `arguments` before the input, off the concurrency pool.
func ffprobe(_ input: String, _ arguments: [String], timeout: Double = 40) async throws -> (Probe, RunResult) {
    try await onThread {
        let r = try run(
            "/usr/bin/ffprobe", ["-v", "error", "-of", "json"] + arguments + [input], timeout: timeout)
        guard r.status == 0 else { throw TestFailure("ffprobe \(input) exited \(r.status): \(r.error)") }
        do {
            return (try JSONDecoder().decode(Probe.self, from: Data(r.output.utf8)), r)
        } catch {
            throw TestFailure("ffprobe JSON: \(error); stderr: \(r.error)")
        }
    }
}
