import Foundation
import HallwatchCore
import HallwatchDataPlane
import Synchronization
import Testing

/// The recorder's live tap with real processes (simcam → capture worker → recorder): HallwatchDataPlane's
/// `Protocol.md`, L1–L5.
@Suite("Live tap end to end", .serialized)
struct LiveTapEndToEndTests {
    static func subscribe(_ path: String, _ camera: String) throws -> FileHandleFD {
        let conn = try UnixSocket.connect(path: path)
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(conn.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        try conn.send(.hello(CameraID(camera)!))
        return conn
    }

    @Test("init segment, then media from a keyframe, at once; a slow subscriber is dropped to a keyframe, others not")
    func liveSocket() async throws {
        let box = try TestBox("live", cameras: [.init(id: "entrance", file: "fullhd.mp4")])
        defer { box.stop() }
        try box.start(environment: ["HALLWATCH_LIVE_QUEUE_BYTES": "\(256 << 10)"])
        let path = box.dir + "/recorder-live.sock"
        #expect(E2E.waitFor(20) { box.recordedEnd("entrance") != nil }, "nothing recorded")
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & 0o777 == 0o660, "the live socket is not mode 0660")

        // L2–L3: the first subscriber gets the init segment, then media that starts with a keyframe, at once.
        let opened = Date()
        let fast = try Self.subscribe(path, "entrance")
        guard case .initSegment(let initUnit)? = try fast.receiveLive() else {
            Issue.record("the first event is not the init segment")
            return
        }
        guard case .media(let first)? = try fast.receiveLive() else {
            Issue.record("no media after the init segment")
            return
        }
        let firstMs = Date().timeIntervalSince(opened) * 1000
        print("live tap: init + first keyframe fragment \(String(format: "%.1f", firstMs)) ms after the hello")
        #expect(first.isKeyframe, "media does not start at a keyframe")
        #expect(firstMs < 500)
        #expect(InitSegmentInfo(initSegment: initUnit.segment.payload)?.codec.hasPrefix("avc1.") == true)

        // The fast subscriber reads on its own thread and must see no drop.
        let fastLog = Tally()
        let reader = Thread {
            while let e = try? fast.receiveLive() {
                let now = SystemClocks().utcNow().micros
                fastLog.value.withLock { l in
                    switch e {
                    case .media(let u):
                        l.media += 1
                        l.lagMs.append(Double(now - u.receivedMicros) / 1000)
                    case .drop: l.drops += 1
                    case .initSegment: break
                    }
                }
            }
        }
        reader.start()

        // L5: a subscriber that does not read for 8 s (4 Mbit/s against a 256 KiB queue) is dropped.
        let slow = try Self.subscribe(path, "entrance")
        try await Task.sleep(for: .seconds(8))
        var events: [LiveEvent] = []
        while events.count < 400, let e = try slow.receiveLive() {
            events.append(e)
            if case .drop = e, events.count > 1 { break }
        }
        let dropAt = events.firstIndex { if case .drop = $0 { true } else { false } }
        #expect(dropAt != nil, "the slow subscriber was never dropped (\(events.count) events)")
        if dropAt != nil {
            var resumed: LiveUnit?
            while resumed == nil, let e = try slow.receiveLive() {
                if case .media(let u) = e { resumed = u }
            }
            #expect(resumed?.isKeyframe == true, "after the drop, media does not resume at a keyframe")
        }
        slow.close()
        let log = fastLog.value.withLock { $0 }
        let lags = log.lagMs.sorted()
        let p50 = lags.isEmpty ? -1 : lags[lags.count / 2]
        let worst = lags.last ?? -1
        print(
            "live tap: fast subscriber \(log.media) fragments, \(log.drops) drops, recorder→subscriber p50 \(p50) ms, max \(worst) ms"
        )
        #expect(log.drops == 0)
        #expect(log.media >= 5)
        #expect(p50 >= 0 && p50 < 100)
        Glibc.shutdown(fast.fd, Int32(SHUT_RDWR))
        let check = try box.check()
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
    }
}

extension LiveTapEndToEndTests {
    @Test(
        "while someone watches, media leaves the capture worker in per-frame chunks: its age at a subscriber is a few frames, not a fragment"
    )
    func perFrameChunks() async throws {
        let box = try TestBox("chunks", cameras: [.init(id: "entrance", file: "fullhd.mp4")])
        defer { box.stop() }
        try box.start()
        let path = box.dir + "/recorder-live.sock"
        #expect(E2E.waitFor(20) { box.recordedEnd("entrance") != nil }, "nothing recorded")
        let conn = try Self.subscribe(path, "entrance")
        // P7: the recorder tells the worker; it starts chunks at its next keyframe (fullhd.mp4: every 2 s).
        var units: [(unit: LiveUnit, at: Int64)] = []
        let until = Date().addingTimeInterval(8)
        while Date() < until, let e = try conn.receiveLive() {
            if case .media(let u) = e { units.append((u, SystemClocks().utcNow().micros)) }
        }
        conn.close()
        let frame: Int32 = 3600  // 25 fps, 90 kHz ticks
        let firstChunk = try #require(units.firstIndex { $0.unit.isChunk }, "no chunk in 8 s")
        let chunks = units[firstChunk...]
        #expect(chunks.first?.unit.isKeyframe == true, "chunks do not start at a keyframe")
        #expect(chunks.allSatisfy { $0.unit.isChunk }, "fragments after the chunks began")
        // Each hand-over holds the frames of ~100 ms (FragmentPolicy.liveChunkDuration): 3 at 25 fps, fewer
        // before a keyframe.
        #expect(
            chunks.allSatisfy { $0.unit.segment.meta.duration90k <= 3 * frame }, "a hand-over of more than 3 frames")
        // Age at the subscriber: from the frame's place on the box's clock (its arrival at the capture worker,
        // at most) to its receipt here; and from the recorder's receipt.
        func percentiles(_ xs: [Double]) -> (p50: Double, p95: Double) {
            let s = xs.sorted()
            return (s[s.count / 2], s[min(s.count - 1, s.count * 95 / 100)])
        }
        let age = percentiles(chunks.map { Double($0.at - $0.unit.segment.meta.utc.micros) / 1000 })
        let hop = percentiles(chunks.map { Double($0.at - $0.unit.receivedMicros) / 1000 })
        let before = units[..<firstChunk].map { Double($0.at - $0.unit.segment.meta.utc.micros) / 1000 }
        print(
            "live chunks end to end: \(chunks.count) chunks after \(firstChunk) fragments; capture arrival → subscriber p50 \(age.p50) ms, p95 \(age.p95) ms (fragments before: \(before.map { Int($0) }) ms); recorder → subscriber p50 \(hop.p50) ms"
        )
        #expect(chunks.count >= 30)
        // One hand-over (3 frames, 0.12 s) plus the capture timeline's look-ahead (5 frames, 0.2 s at 25 fps:
        // VideoTimeline), not a fragment (up to 1 s more).
        #expect(age.p50 < 450 && age.p95 < 600, "a frame's age is not a few frames")
        #expect(before.allSatisfy { $0 >= 300 }, "the fragments before the chunks were not fragment-old")
        let check = try box.check()
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
    }
}

/// What the fast subscriber saw.
final class Tally: Sendable {
    let value = Mutex<(media: Int, drops: Int, lagMs: [Double])>((0, 0, []))
}
