import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchDataPlane
import HallwatchProcess
import HallwatchStorage
import Logging
import ServiceLifecycle
import Testing

@testable import HallwatchRecorder

let quiet: Logger = {
    var l = Logger(label: "hallwatch.recorder.test")
    l.logLevel = .critical
    return l
}()

/// The recorder in this process on a real disk (formatted by the recorder itself), fed by the capture
/// worker's own data-plane sender; no bus is running (the recorder must not need one to record).
@Suite("Recorder service", .serialized, .timeLimit(.minutes(1)))
struct RecorderServiceTests {
    let lobby = CameraID("lobby")!
    let run: UInt64 = 1_764_000_000_000_000

    final class Box: Sendable {
        let dir: String
        let config: HallwatchConfig
        init() throws {
            dir =
                FileManager.default.temporaryDirectory.path + "/hw-rec-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            try FileManager.default.createDirectory(atPath: dir + "/disk0", withIntermediateDirectories: true)
            config = try ConfigLoader.parse(
                """
                box: test-box
                bus: {socket: \(dir)/no-bus.sock}
                recorder:
                  socket: \(dir)/rec.sock
                  slotCount: 8
                  slotSizeBytes: 1048576
                  fsyncCadence: 200ms
                  disks: [{name: disk0, path: \(dir)/disk0}]
                cameras:
                  - {id: lobby, source: "rtsp://127.0.0.1:8554/lobby"}

                """)
        }

        /// Runs a recorder until `body` returns, then stops it gracefully.
        func withRecorder(_ body: () async throws -> Void) async throws {
            let presence = Presence(name: "recorder", config: config, logger: quiet)
            let service = RecorderService(config: config, presence: presence, logger: quiet)
            let group = ServiceGroup(configuration: .init(services: [.init(service: service)], logger: quiet))
            let running = Task { try await group.run() }
            #expect(await waitFor(5) { FileManager.default.fileExists(atPath: self.config.recorder.socket) })
            do { try await body() } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await running.value
        }

        func fragments(_ camera: CameraID) -> Int {
            ((try? RecordingLibrary(config: config).runs(camera: camera)) ?? []).reduce(0) { $0 + $1.fragmentCount }
        }

        deinit { try? FileManager.default.removeItem(atPath: dir) }
    }

    func segment(_ n: UInt32) -> MediaSegment {
        n == 0
            ? MediaSegment(
                meta: FragmentMeta(
                    kind: .initSegment, keyframe: false, run: run, sequence: 0, start90k: .zero, duration90k: 0,
                    utc: UTCMicros(Int64(run))),
                payload: [1, 2, 3])
            : MediaSegment(
                meta: FragmentMeta(
                    kind: .fragment, keyframe: true, run: run, sequence: n,
                    start90k: MediaTime90k(Int64(n - 1) * 90_000),
                    duration90k: 90_000, utc: UTCMicros(Int64(run) + Int64(n - 1) * 1_000_000)),
                payload: Array(repeating: UInt8(n), count: 20_000))
    }

    @Test func segmentsAreRecordedAndAResendAfterARestartIsStoredOnce() async throws {
        let box = try Box()
        try await box.withRecorder {
            let sender = DataPlaneSender(path: box.config.recorder.socket, camera: lobby, logger: quiet)
            for n in 0...5 { sender.deliver(segment(UInt32(n))) }
            #expect(await waitFor(5) { box.fragments(lobby) == 5 })

            // A camera that is not configured is refused (P2) and nothing of it is stored.
            let stranger = DataPlaneSender(path: box.config.recorder.socket, camera: CameraID("attic")!, logger: quiet)
            for n in 0...2 { stranger.deliver(segment(UInt32(n))) }
            try await Task.sleep(for: .milliseconds(600))
            #expect((try? RecordingLibrary(config: box.config).cameras()) == [lobby])
        }
        #expect(box.fragments(lobby) == 5)

        // A new recorder (restarted): the worker sends its last frames again (P5) and then new ones.
        try await box.withRecorder {
            let sender = DataPlaneSender(path: box.config.recorder.socket, camera: lobby, logger: quiet)
            for n in [0, 4, 5, 6, 7] { sender.deliver(segment(UInt32(n))) }
            #expect(await waitFor(5) { box.fragments(lobby) >= 7 })
        }
        let runs = try RecordingLibrary(config: box.config).runs(camera: lobby)
        #expect(runs.map(\.fragmentCount) == [7])
        #expect(runs.first?.media90k.seconds == 7)
    }
}

func waitFor(_ seconds: Double, _ condition: @Sendable () -> Bool) async -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return condition()
}
