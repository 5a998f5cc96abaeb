import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchMedia
import Logging
import Synchronization
import Testing

/// Issue 12, case 7: `transport: auto` against a real RTSP server that refuses RTP over TCP (the simulated
/// camera with `--udp-only`: gst-rtsp-server answers the TCP SETUP `461 Unsupported transport`, as VLC's RTSP
/// output does) and against one that takes TCP. Before: only `tcp` or `udp`, and a TCP camera that refused
/// stayed offline with `rtsp.connect`.
@Suite("transport: auto", .serialized)
struct TransportAutoTests {
    final class Collector: FragmentSink, @unchecked Sendable {
        let frames = Mutex<[MediaSegment]>([])
        func deliver(_ frame: MediaSegment) { frames.withLock { $0.append(frame) } }
    }

    @Test(arguments: [true, false])
    func autoRecordsOverWhatTheCameraTakes(udpOnly: Bool) async throws {
        try E2E.ensureClips()
        let dir = "/tmp/hw-transport-\(getpid())-\(udpOnly)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir + "/logs", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = E2E.freePort()
        let simcam = try Child(
            "simcam", E2E.tool("hallwatch-simcam"),
            ["--port", "\(port)", "--mount", "cam=\(E2E.media)/fullhd.mp4"] + (udpOnly ? ["--udp-only"] : []),
            logDirectory: dir + "/logs")
        defer { simcam.stop() }
        #expect(E2E.waitFor(15) { simcam.log.contains("simcam ready") })

        let sink = Collector()
        let stop = StopFlag()
        let outcome = Mutex<(error: String?, status: CaptureStatus?, used: CameraConfig.Transport?)>((nil, nil, nil))
        let thread = Thread {
            let session = CaptureSession(
                camera: CameraID("cam")!,
                source: RTSPSourceOptions(
                    url: "rtsp://127.0.0.1:\(port)/cam", transport: .auto, ioTimeout: .seconds(5)),
                policy: FragmentPolicy(), clocks: SystemClocks(), logger: Logger(label: "transport-test"))
            do { try session.run(stop: stop, sink: sink) { s in outcome.withLock { $0.status = s } } } catch {
                outcome.withLock { $0.error = "\(error)" }
            }
            outcome.withLock { $0.used = session.usedTransport }
        }
        thread.start()
        try await Task.sleep(for: .seconds(5))
        stop.stop()
        #expect(E2E.waitFor(10) { thread.isFinished })

        let (error, status, used) = outcome.withLock { $0 }
        #expect(error == nil, "the session ended with \(error ?? "")")
        let expected: CameraConfig.Transport = udpOnly ? .udp : .tcp
        #expect(used == expected)
        #expect(status?.transport == expected.rawValue)
        let recorded =
            Double(
                sink.frames.withLock { $0.filter { $0.meta.kind == .fragment } }.reduce(0) { $0 + $1.meta.duration90k })
            / 90_000
        #expect(recorded >= 3.5, "\(recorded) s recorded in 5 s over \(expected)")
        print("transport auto, udp-only camera \(udpOnly): \(expected), \(String(format: "%.2f", recorded)) s in 5 s")
    }
}
