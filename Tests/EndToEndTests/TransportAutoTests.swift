import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchMedia
import Testing

/// Issue 12, case 7: `transport: auto` against a real RTSP server that refuses RTP over TCP (the simulated
/// camera with `--udp-only`: gst-rtsp-server answers the TCP SETUP `461 Unsupported transport`, as VLC's RTSP
/// output does) and against one that takes TCP. Before: only `tcp` or `udp`, and a TCP camera that refused
/// stayed offline with `rtsp.connect`.
@Suite("transport: auto", .serialized)
struct TransportAutoTests {
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

        let run = try await CaptureRun.record(url: "rtsp://127.0.0.1:\(port)/cam", transport: .auto, seconds: 5)
        #expect(run.error == nil, "the session ended with \(run.error ?? "")")
        let expected: CameraConfig.Transport = udpOnly ? .udp : .tcp
        #expect(run.usedTransport == expected)
        #expect(run.status?.transport == expected.rawValue)
        let recorded = run.recordedSeconds
        #expect(recorded >= 3.5, "\(recorded) s recorded in 5 s over \(expected)")
        print("transport auto, udp-only camera \(udpOnly): \(expected), \(String(format: "%.2f", recorded)) s in 5 s")
    }
}
