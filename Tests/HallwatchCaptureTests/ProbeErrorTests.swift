import Foundation
import HallwatchCapture
import HallwatchCore
import HallwatchMedia
import Logging
import Testing

/// Issue 12, case 4: `hallwatchctl probe` against a camera that resets the TCP connection mid-stream
/// (the simulated camera behind a relay that sends RST after 4 s). Before: exit 1 and no file, though
/// ffmpeg keeps what it got. Skipped without the clips in `.media`.
@Suite("Probe: an error at the end of a session", .serialized)
struct ProbeErrorTests {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let binDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        .deletingLastPathComponent().path

    /// Relays one TCP connection from `listenPort` to `targetPort` on 127.0.0.1 and, `seconds` after it was
    /// accepted, resets it (`SO_LINGER` 0, then close: an RST, as a camera rebooting its stream does).
    static func resettingRelay(listenPort: Int, targetPort: Int, seconds: Double) throws -> Thread {
        @Sendable func address(_ port: Int) -> sockaddr_in {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = in_port_t(UInt16(port).bigEndian)
            a.sin_addr.s_addr = inet_addr("127.0.0.1")
            return a
        }
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var on: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var here = address(listenPort)
        let bound = withUnsafePointer(to: &here) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, Glibc.listen(listener, 1) == 0 else {
            throw MediaError("rtsp.connect", "relay cannot listen on \(listenPort)")
        }
        let relay = Thread {
            defer { close(listener) }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { return }
            let camera = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var there = address(targetPort)
            _ = withUnsafePointer(to: &there) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(camera, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            let end = Date().addingTimeInterval(seconds)
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            pump: while Date() < end {
                var fds = [
                    pollfd(fd: client, events: Int16(POLLIN), revents: 0),
                    pollfd(fd: camera, events: Int16(POLLIN), revents: 0),
                ]
                guard poll(&fds, 2, 50) >= 0 else { break }
                for (from, to) in [(0, camera), (1, client)] where fds[from].revents != 0 {
                    let n = read(fds[from].fd, &buffer, buffer.count)
                    guard n > 0, send(to, buffer, n, Int32(MSG_NOSIGNAL)) == n else { break pump }
                }
            }
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(client, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            close(client)
            close(camera)
        }
        relay.start()
        return relay
    }

    @Test func whatWasRecordedIsWrittenThenTheErrorReported() async throws {
        let clip = Self.repoRoot + "/.media/h264-bframes.mp4"
        try #require(FileManager.default.fileExists(atPath: clip), "no clips: bash Image/fetch-clips.sh .media")
        let cameraPort = LoopbackPort.pickFree()
        let relayPort = LoopbackPort.pickFree()
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("hw-probe-reset-\(getpid()).mp4").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        let simcam = Process()
        simcam.executableURL = URL(fileURLWithPath: Self.binDirectory + "/hallwatch-simcam")
        simcam.arguments = ["--port", "\(cameraPort)", "--mount", "cam=\(clip)", "--log-level", "error"]
        let ready = Pipe()
        simcam.standardOutput = ready
        try simcam.run()
        defer {
            kill(simcam.processIdentifier, SIGTERM)
            simcam.waitUntilExit()
        }
        let line = String(decoding: ready.fileHandleForReading.availableData, as: UTF8.self)
        #expect(line.contains("simcam ready"))
        _ = try Self.resettingRelay(listenPort: relayPort, targetPort: cameraPort, seconds: 4)

        let failure = await #expect(throws: CameraProbe.Failure.self) {
            try await CameraProbe.run(
                url: "rtsp://127.0.0.1:\(relayPort)/cam", username: nil, password: nil, transport: .tcp, audio: false,
                seconds: 8, exportTo: out, logger: Logger(label: "probe-test"))
        }
        let report = try #require(failure?.report)
        #expect(failure?.cause is MediaError, "\(String(describing: failure?.cause))")
        // The report says what was recorded and written, and ends with the error.
        let recordedLine = try #require(report.split(separator: "\n").first { $0.hasPrefix("recorded: ") })
        let seconds = Double(recordedLine.dropFirst("recorded: ".count).split(separator: " ").first ?? "") ?? 0
        #expect(seconds >= 2.5 && seconds <= 4.5, "\(recordedLine)")
        #expect(report.contains("wrote: \(out)"))
        #expect(report.split(separator: "\n").last?.hasPrefix("error: [") == true, "\(report)")
        // The file holds those seconds (25 fps).
        let written = try VideoTrackFile.read(path: out)
        #expect(
            abs(Double(written.samples.count) - seconds * 25) <= 2, "\(written.samples.count) frames for \(seconds) s")
        print("probe after a reset at 4 s:\n\(report)")
    }
}
