import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchDataPlane
import HallwatchStorage
import Logging
import Testing

/// A camera with a sub stream, through real processes: the simcam serves `lobby` (1080p H.264) and `lobby-sub`
/// (640×360 H.264); the supervisor starts two capture workers (`capture-lobby`, `capture-lobby.sub`); the
/// recorder stores and indexes two streams, each with its own runs and slots; the bus carries
/// `camera/lobby/state` and `camera/lobby/sub/state`; the live tap serves each; and the retention planner, run
/// over the real index, deletes the sub stream's video after its own 3 days while the camera's 30 days keep
/// the main stream's.
@Suite("Sub streams end to end", .serialized)
struct SubStreamEndToEndTests {
    @Test("both streams of one camera are recorded and indexed separately, each with its own retention")
    func bothStreamsRecordedSeparately() async throws {
        // 1 MiB slots: the 4 Mbit/s main stream closes one every ~2 s, the 0.4 Mbit/s sub one every ~20 s.
        let box = try TestBox(
            "substream", cameras: [.init(id: "lobby", file: "fullhd.mp4", sub: "sub-360p.mp4")],
            slotSizeBytes: 1 << 20, slotCount: 96)
        defer { box.stop() }
        try box.start()
        #expect(E2E.waitFor(20) { FileManager.default.fileExists(atPath: box.dir + "/bus.sock") })
        let watcher = try await BusWatcher(socket: box.dir + "/bus.sock", box: box.name)
        let main = CameraID("lobby")!
        let sub = CameraID("lobby/sub")!

        // Two workers, named apart; each stream reports its own state on its own topic.
        #expect(E2E.waitFor(30) { box.pid("capture-lobby") != nil && box.pid("capture-lobby.sub") != nil })
        #expect(
            E2E.waitFor(30) {
                watcher.latest("lobby")?.state == .online && watcher.latest("lobby/sub")?.state == .online
            },
            "\(box.logTails())")
        let mainState = try #require(watcher.latest("lobby"))
        let subState = try #require(watcher.latest("lobby/sub"))
        print(
            "states: lobby \(mainState.codec ?? "-") \(mainState.width ?? 0)x\(mainState.height ?? 0), lobby/sub \(subState.codec ?? "-") \(subState.width ?? 0)x\(subState.height ?? 0)"
        )
        #expect(mainState.width == 1920 && mainState.height == 1080)
        #expect(subState.width == 640 && subState.height == 360 && subState.codec == "h264")

        // Recorded until the sub stream has closed a slot (the planner never deletes an open one).
        let config = try ConfigLoader.load(path: box.configPath)
        let disk = NamedDisk(name: "disk0", path: box.disks[0].path)
        func closedSlots(_ camera: CameraID) -> Int {
            let index = try? RetentionIndex(disk, box: box.name, logger: Logger(label: "e2e"))
            let use = try? index?.use()
            return use?.slots.filter { $0.camera == camera && !$0.isOpen && $0.from != nil }.count ?? 0
        }
        #expect(E2E.waitFor(120) { closedSlots(sub) >= 1 && closedSlots(main) >= 3 }, "\(box.logTails())")

        // Indexed separately: each stream its own runs, its own init segment (1080p against 360p).
        let library = box.library
        let reader = try #require(library.readers.first?.reader)
        let mainRuns = try reader.runs(camera: main)
        let subRuns = try reader.runs(camera: sub)
        #expect(!mainRuns.isEmpty && !subRuns.isEmpty)
        let now = SystemClocks().utcNow()
        let from = UTCMicros(now.micros - 300_000_000)
        let mainSeg = try #require(try library.segments(camera: main, from: from, to: now, startAtKeyframe: true).last)
        let subSeg = try #require(try library.segments(camera: sub, from: from, to: now, startAtKeyframe: true).last)
        let mainInfo = try #require(InitSegmentInfo(initSegment: mainSeg.initSegment))
        let subInfo = try #require(InitSegmentInfo(initSegment: subSeg.initSegment))
        print(
            "indexed: lobby \(mainRuns.count) run(s) \(mainInfo.codec) \(mainInfo.width)x\(mainInfo.height), \(closedSlots(main)) closed slots; lobby/sub \(subRuns.count) run(s) \(subInfo.codec) \(subInfo.width)x\(subInfo.height), \(closedSlots(sub)) closed slots"
        )
        #expect(mainInfo.width == 1920 && mainInfo.height == 1080)
        #expect(subInfo.width == 640 && subInfo.height == 360 && subInfo.codec.hasPrefix("avc1."))
        #expect(Set(try reader.cameras()) == [main, sub])

        // Own retention, over the real index: at now + 4 d only the sub stream's closed slots are past their
        // maxAge (3 d default); at now + 31 d the main stream's (30 d) too.
        let planner = RetentionPlanner(config: config)
        #expect(
            planner.policy(sub).maxAge == .seconds(3 * 86_400) && planner.policy(main).maxAge == .seconds(30 * 86_400))
        let index = try RetentionIndex(disk, box: box.name, logger: Logger(label: "e2e"))
        let use = try index.use()
        let in4d = planner.plan(disks: [use], holds: [], now: UTCMicros(now.micros + 4 * 86_400_000_000))
        let maxAge4d = in4d.deletions.filter { $0.rule == "maxAge" }
        print(
            "planned at +4 d: \(maxAge4d.count) maxAge deletions, cameras \(Set(maxAge4d.map(\.camera.rawValue)).sorted())"
        )
        #expect(!maxAge4d.isEmpty && maxAge4d.allSatisfy { $0.camera == sub })
        let in31d = planner.plan(disks: [use], holds: [], now: UTCMicros(now.micros + 31 * 86_400_000_000))
        #expect(Set(in31d.deletions.filter { $0.rule == "maxAge" }.map(\.camera)) == [main, sub])

        // Each stream has its own live subscription on the recorder's tap.
        let conn = try LiveTapEndToEndTests.subscribe(box.dir + "/recorder-live.sock", "lobby/sub")
        guard case .initSegment(let live)? = try conn.receiveLive() else {
            Issue.record("the sub stream's live tap sent no init segment first")
            return
        }
        #expect(InitSegmentInfo(initSegment: live.segment.payload)?.width == 640)

        // `hallwatchctl status` lists both; `check` finds both intact.
        let status = try E2E.run(E2E.tool("hallwatchctl"), ["status", "--config", box.configPath])
        #expect(status.stdout.contains("lobby/sub") && status.stdout.contains("640x360"), "\(status.stdout)")
        let check = try box.check()
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
    }
}
