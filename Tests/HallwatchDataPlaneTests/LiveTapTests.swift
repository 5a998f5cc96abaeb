import Foundation
import HallwatchCore
import Synchronization
import Testing

@testable import HallwatchDataPlane

/// A fragment of `bytes` bytes, keyframe or not, sequence `n` of `run`.
func liveFragment(_ n: UInt32, keyframe: Bool, bytes: Int = 1000, run: UInt64 = run) -> LiveUnit {
    LiveUnit(
        MediaSegment(
            meta: FragmentMeta(
                kind: .fragment, keyframe: keyframe, run: run, sequence: n,
                start90k: MediaTime90k(Int64(n - 1) * 9000), duration90k: 9000,
                utc: UTCMicros(Int64(run) + Int64(n - 1) * 100_000)),
            payload: Array(repeating: UInt8(truncatingIfNeeded: n), count: bytes)),
        receivedMicros: Int64(run) + Int64(n) * 100_000 + 40_000)
}

func sequences(_ events: [LiveEvent]) -> [String] {
    events.map {
        switch $0 {
        case .initSegment: "init"
        case .media(let u): "\(u.segment.meta.sequence)\(u.isKeyframe ? "k" : "")"
        case .drop(let n): "drop\(n)"
        }
    }
}

func drain(_ q: LiveQueue) -> [LiveEvent] {
    var out: [LiveEvent] = []
    while case .some(let e?) = q.next(timeout: .milliseconds(1)) { out.append(e) }
    return out
}

@Suite("Live tap: ring, queues, frames (Protocol.md L1–L5)")
struct LiveTapTests {
    let initUnit = LiveUnit(initSegment(), receivedMicros: Int64(run) + 5000)

    @Test("L3: a new viewer starts with the init segment and the media since the most recent keyframe")
    func ringStartsAtTheLastKeyframe() {
        let fanout = LiveFanout()
        fanout.publish(initUnit)
        for n in UInt32(1)...7 { fanout.publish(liveFragment(n, keyframe: n == 1 || n == 5)) }
        let q = fanout.subscribe()
        #expect(sequences(drain(q)) == ["init", "5k", "6", "7"])
        fanout.publish(liveFragment(8, keyframe: false))
        #expect(sequences(drain(q)) == ["8"])
    }

    @Test("L6: every viewer of a unit shares the one form a subscriber made of it")
    func memoizedOnce() {
        let unit = liveFragment(1, keyframe: true, bytes: 150_000)
        let made = Mutex(0)
        let forms = (0..<100).map { _ in
            unit.memoized { () -> [UInt8] in
                made.withLock { $0 += 1 }
                return [0x02] + unit.segment.payload
            }
        }
        #expect(made.withLock { $0 } == 1)
        #expect(forms.allSatisfy { $0.count == 150_001 && $0.first == 0x02 })
        // One array storage for all of them (no copy per viewer).
        let base = forms[0].withUnsafeBufferPointer { $0.baseAddress }
        #expect(forms.allSatisfy { f in f.withUnsafeBufferPointer { $0.baseAddress } == base })
    }

    @Test("L3: no keyframe kept yet means the viewer waits for one; a new init segment clears the ring")
    func ringWithoutKeyframe() {
        var ring = LiveRing()
        ring.append(liveFragment(1, keyframe: false))
        #expect(ring.startEvents.isEmpty)
        ring.append(initUnit)
        ring.append(liveFragment(2, keyframe: false))
        #expect(sequences(ring.startEvents) == ["init"])
        ring.append(liveFragment(3, keyframe: true))
        ring.append(initUnit)
        #expect(sequences(ring.startEvents) == ["init"])
    }

    @Test("L5: a viewer that falls behind loses its queue, gets a drop, and resumes at the next keyframe")
    func slowViewerIsSkippedToAKeyframe() {
        let q = LiveQueue(maxBytes: 3000)
        q.offer(.initSegment(initUnit))  // 600 bytes
        q.offer(.media(liveFragment(1, keyframe: true)))
        q.offer(.media(liveFragment(2, keyframe: false)))
        q.offer(.media(liveFragment(3, keyframe: false)))  // 3600 > 3000: 1–3 dropped, the init kept
        q.offer(.media(liveFragment(4, keyframe: false)))  // still skipping
        q.offer(.media(liveFragment(5, keyframe: true)))
        q.offer(.media(liveFragment(6, keyframe: false)))
        #expect(sequences(drain(q)) == ["drop3", "init", "5k", "6"])
        #expect(q.drops == 1)
    }

    @Test("L5: with a time bound, media queued longer than it behind the newest is skipped, however few bytes")
    func laggingViewerIsSkippedToAKeyframe() {
        // Fragments arrive 100 ms apart: 1 to 3 span 200 ms (kept), 1 to 4 span 300 ms (> 250 ms: behind).
        let q = LiveQueue(maxBytes: 1 << 20, maxLagMicros: 250_000)
        q.offer(.initSegment(initUnit))
        for n in UInt32(1)...7 { q.offer(.media(liveFragment(n, keyframe: n == 1 || n == 6))) }
        #expect(sequences(drain(q)) == ["drop4", "init", "6k", "7"])
        #expect(q.drops == 1)
        // A viewer that keeps up is never skipped; without the bound, bytes alone decide.
        let keepsUp = LiveQueue(maxBytes: 1 << 20, maxLagMicros: 250_000)
        let unbounded = LiveQueue(maxBytes: 1 << 20)
        var seen: [LiveEvent] = []
        for n in UInt32(1)...7 {
            keepsUp.offer(.media(liveFragment(n, keyframe: n == 1)))
            unbounded.offer(.media(liveFragment(n, keyframe: n == 1)))
            seen += drain(keepsUp)
        }
        #expect(sequences(seen) == ["1k", "2", "3", "4", "5", "6", "7"] && keepsUp.drops == 0)
        #expect(sequences(drain(unbounded)).count == 7 && unbounded.drops == 0)
        // A new viewer's long GOP takes a while to go out: media queued meanwhile counts from when it went.
        let fanout = LiveFanout(queueBytes: 1 << 20, queueLagMicros: 250_000)
        fanout.publish(initUnit)
        for n in UInt32(1)...3 { fanout.publish(liveFragment(n, keyframe: n == 1)) }
        let late = fanout.subscribe()
        for n in UInt32(4)...7 { fanout.publish(liveFragment(n, keyframe: false)) }  // 1 to 7: 600 ms
        #expect(sequences(drain(late)) == ["init", "1k", "2", "3", "4", "5", "6", "7"] && late.drops == 0)
        for n in UInt32(8)...10 { fanout.publish(liveFragment(n, keyframe: false)) }
        // 8 to 10 (200 ms) is within the bound; then 11 is 300 ms after 8: behind.
        fanout.publish(liveFragment(11, keyframe: false))
        #expect(sequences(drain(late)) == ["drop4"] && late.drops == 1)
    }

    @Test("L4–L5: a new viewer's start (a long GOP) may exceed the bound; falling behind after it may not")
    func startDoesNotCountAsBehind() {
        let fanout = LiveFanout(queueBytes: 1500)
        fanout.publish(initUnit)
        for n in UInt32(1)...3 { fanout.publish(liveFragment(n, keyframe: n == 1)) }
        let q = fanout.subscribe()
        fanout.publish(liveFragment(4, keyframe: false))
        #expect(sequences(drain(q)) == ["init", "1k", "2", "3", "4"])
        fanout.publish(liveFragment(5, keyframe: false))
        fanout.publish(liveFragment(6, keyframe: false))
        #expect(sequences(drain(q)) == ["drop2"])
    }

    @Test("L5: an init segment is never skipped: it ends the skipping")
    func initEndsSkipping() {
        let q = LiveQueue(maxBytes: 1800)
        q.offer(.media(liveFragment(1, keyframe: true)))
        q.offer(.media(liveFragment(2, keyframe: false)))
        q.offer(.initSegment(initUnit))
        q.offer(.media(liveFragment(1, keyframe: false, run: run + 1)))
        #expect(sequences(drain(q)) == ["drop2", "init", "1"])
    }

    @Test("a task waiting on the queue is woken by an offer and by close")
    func asyncNext() async {
        let q = LiveQueue()
        async let first = q.next()
        try? await Task.sleep(for: .milliseconds(50))
        q.offer(.media(liveFragment(1, keyframe: true)))
        #expect(await first.map { sequences([$0]) } == ["1k"])
        async let second = q.next()
        try? await Task.sleep(for: .milliseconds(50))
        q.close()
        #expect(await second.map { sequences([$0]) } == nil)
    }

    @Test("L4: frames carry the receive time (ms after the anchor) and drops; the data plane refuses a drop")
    func framesRoundTrip() throws {
        let (a, b) = socketPair()
        let unit = liveFragment(3, keyframe: true)
        try a.sendLive(.media(unit))
        try a.sendLive(.drop(skipped: 7))
        a.close()
        guard case .media(let got)? = try b.receiveLive() else {
            Issue.record("no media")
            return
        }
        #expect(got.segment == unit.segment)
        #expect(got.receivedMicros == unit.receivedMicros)
        guard case .drop(let n)? = try b.receiveLive() else {
            Issue.record("no drop")
            return
        }
        #expect(n == 7)
        #expect(try b.receiveLive().map { sequences([$0]) } == nil)

        let (c, d) = socketPair()
        try c.sendLive(.drop(skipped: 1))
        #expect(throws: DataPlaneError.self) { try d.receiveMessage() }
    }

    @Test("L1: the live socket's path sits beside the data-plane socket")
    func socketPath() {
        #expect(
            LiveWire.socketPath(dataPlaneSocket: "/run/hallwatch/recorder.sock") == "/run/hallwatch/recorder-live.sock")
        #expect(LiveWire.socketPath(dataPlaneSocket: "/tmp/x") == "/tmp/x-live.sock")
    }

    @Test("L2–L4 over a socket: hello, then init and keyframe-first media; an unknown camera is closed")
    func tapServesASubscriber() throws {
        let tap = LiveTap(logger: quiet)
        let lobby = CameraID("lobby")!
        tap.publish(initSegment(), of: lobby, receivedMicros: Int64(run))
        for n in UInt32(1)...3 { tap.publish(liveFragment(n, keyframe: n == 2).segment, of: lobby, receivedMicros: 1) }
        let (client, server) = socketPair()
        let t = Thread { tap.serve(server, isKnown: { $0 == lobby }) }
        t.start()
        try client.send(.hello(lobby))
        var got: [LiveEvent] = []
        for _ in 0..<3 { if let e = try client.receiveLive() { got.append(e) } }
        #expect(sequences(got) == ["init", "2k", "3"])
        tap.publish(liveFragment(4, keyframe: false).segment, of: lobby, receivedMicros: 1)
        #expect(try client.receiveLive().map { sequences([$0]) } == ["4"])
        #expect(tap.fanout(for: lobby).viewerCount == 1)
        client.close()
        #expect(waitUntil { tap.fanout(for: lobby).viewerCount == 0 }, "the subscriber that went was not noticed")

        let (c2, s2) = socketPair()
        Thread { tap.serve(s2, isKnown: { $0 == lobby }) }.start()
        try c2.send(.hello(CameraID("gym")!))
        #expect(try c2.receiveLive().map { sequences([$0]) } == nil)
    }
}

func waitUntil(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

/// ISO/IEC 14496-12 boxes, built by hand.
func box(_ type: String, _ body: [UInt8]) -> [UInt8] {
    let size = UInt32(8 + body.count)
    return [UInt8(size >> 24), UInt8(size >> 16 & 0xff), UInt8(size >> 8 & 0xff), UInt8(size & 0xff)]
        + Array(type.utf8) + body
}

/// `ftyp` + `moov/trak/mdia/minf/stbl/stsd/<entry>` with a 78-byte visual sample entry of `width`×`height`.
func syntheticInit(entry: String, config: [UInt8], width: UInt16, height: UInt16) -> [UInt8] {
    var visual = [UInt8](repeating: 0, count: 78)
    visual[7] = 1
    visual[24] = UInt8(width >> 8)
    visual[25] = UInt8(width & 0xff)
    visual[26] = UInt8(height >> 8)
    visual[27] = UInt8(height & 0xff)
    let sample = box(entry, visual + config)
    let stsd = box("stsd", [0, 0, 0, 0, 0, 0, 0, 1] + sample)
    let moov = box("moov", box("trak", box("mdia", box("minf", box("stbl", stsd)))))
    return box("ftyp", Array("isom".utf8) + [0, 0, 2, 0]) + moov
}

@Suite("Codec strings from the init segment (RFC 6381, ISO/IEC 14496-15)")
struct InitSegmentInfoTests {
    @Test func h264() {
        let avcC = box("avcC", [1, 0x64, 0x00, 0x1F, 0xFF, 0xE0])
        let info = InitSegmentInfo(initSegment: syntheticInit(entry: "avc1", config: avcC, width: 1280, height: 720))
        #expect(info == InitSegmentInfo(codec: "avc1.64001F", width: 1280, height: 720))
    }

    @Test("H.265: profile, bit-reversed compatibility flags, tier and level, constraint bytes without trailing zeros")
    func h265() {
        let hvcC = box("hvcC", [1, 0x01, 0x60, 0, 0, 0, 0xB0, 0, 0, 0, 0, 0, 93] + [UInt8](repeating: 0, count: 10))
        let info = InitSegmentInfo(initSegment: syntheticInit(entry: "hvc1", config: hvcC, width: 640, height: 272))
        #expect(info == InitSegmentInfo(codec: "hvc1.1.6.L93.B0", width: 640, height: 272))
        let main10 = box("hvcC", [1, 0x22, 0x20, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 120] + [UInt8](repeating: 0, count: 10))
        #expect(
            InitSegmentInfo(initSegment: syntheticInit(entry: "hev1", config: main10, width: 8, height: 8))?.codec
                == "hev1.2.4.H120.90")
    }

    @Test func garbageIsNil() {
        #expect(InitSegmentInfo(initSegment: [1, 2, 3]) == nil)
        #expect(InitSegmentInfo(initSegment: box("moov", box("trak", []))) == nil)
        #expect(InitSegmentInfo(initSegment: [0, 0, 0, 200] + Array("moov".utf8)) == nil)
    }
}

@Suite("Per-frame chunks (Protocol.md P6)")
struct ChunkTests {
    let camera = CameraID("lobby")!

    @Test("chunks cross the data plane as their own kind; next() (storage) never sees them; unsent ones are dropped")
    func chunksOnTheDataPlane() throws {
        let (worker, recorder) = socketPair()
        let sender = DataPlaneSender(camera: camera, logger: quiet, clocks: ManualClocks()) { worker }
        sender.deliverChunk(liveFragment(1, keyframe: true).segment)  // not connected yet: dropped
        sender.deliver(initSegment())
        sender.deliverChunk(liveFragment(1, keyframe: true, bytes: 100).segment)
        sender.deliver(fragment(1))
        sender.deliverChunk(liveFragment(2, keyframe: false, bytes: 100).segment)
        sender.deliver(fragment(2))
        let receiver = try DataPlaneReceiver(recorder, isKnown: { $0 == camera }, cameras: ConnectedCameras())
        var kinds: [String] = []
        for _ in 0..<5 {
            switch try #require(try receiver.nextUnit()) {
            case .segment(let s): kinds.append(s.meta.kind == .initSegment ? "init" : "fragment\(s.meta.sequence)")
            case .chunk(let c): kinds.append("chunk\(c.meta.sequence)\(c.meta.keyframe ? "k" : "")")
            }
        }
        #expect(kinds == ["init", "chunk1k", "fragment1", "chunk2", "fragment2"])
        // A chunk can never be mistaken for a stored fragment.
        let (w2, r2) = socketPair()
        try w2.send(.hello(camera))
        try w2.send(.chunk(liveFragment(3, keyframe: true).segment))
        try w2.send(.segment(fragment(3)))
        let receiver2 = try DataPlaneReceiver(r2, isKnown: { $0 == camera }, cameras: ConnectedCameras())
        #expect(try receiver2.next()?.meta.sequence == 3)
        #expect(
            throws: DataPlaneError.self,
            performing: {
                try SegmentFile.decode(DataPlaneMessage.chunk(fragment(1)).encodeHeader() + fragment(1).payload)
            })
    }

    @Test("the tap switches to chunks at a keyframe chunk, skips the run's fragments, and back after 2 s without")
    func tapSwitchesBetweenFragmentsAndChunks() {
        let tap = LiveTap(logger: quiet)
        let t0 = Int64(run)
        tap.publish(initSegment(), of: camera, receivedMicros: t0)
        tap.publish(liveFragment(1, keyframe: true).segment, of: camera, receivedMicros: t0)
        // A first chunk that is no keyframe is ignored; the keyframe chunk switches; the run's fragment is skipped.
        tap.publishChunk(liveFragment(2, keyframe: false, bytes: 10).segment, of: camera, receivedMicros: t0)
        tap.publishChunk(liveFragment(3, keyframe: true, bytes: 10).segment, of: camera, receivedMicros: t0 + 100_000)
        tap.publish(liveFragment(2, keyframe: false).segment, of: camera, receivedMicros: t0 + 200_000)
        tap.publishChunk(liveFragment(4, keyframe: false, bytes: 10).segment, of: camera, receivedMicros: t0 + 300_000)
        #expect(sequences(drain(tap.fanout(for: camera).subscribe())) == ["init", "3k", "4"])
        // No chunk for 2 s: fragments again.
        tap.publish(liveFragment(5, keyframe: true).segment, of: camera, receivedMicros: t0 + 2_400_000)
        #expect(sequences(drain(tap.fanout(for: camera).subscribe())) == ["init", "5k"])
    }
}

@Suite("Watch frames (Protocol.md P7)", .serialized)
struct WatchTests {
    let camera = CameraID("lobby")!

    static func waitFor(_ seconds: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(20_000)
        }
        return condition()
    }

    @Test("the worker is told when its camera's first subscriber arrives and when the last one leaves")
    func workerLearnsWhetherAnyoneWatches() throws {
        let dir = FileManager.default.temporaryDirectory.path + "/hw-watch-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tap = LiveTap(logger: quiet)
        let listener = try UnixSocket.listen(path: dir + "/recorder-live.sock")
        Thread { tap.acceptLoop(listener, isKnown: { _ in true }) }.start()
        defer { tap.stop(listener) }

        let (worker, recorder) = socketPair()
        let sender = DataPlaneSender(camera: camera, logger: quiet, clocks: ManualClocks()) { worker }
        sender.deliver(initSegment())  // connects: hello, init segment
        let receiver = try DataPlaneReceiver(recorder, isKnown: { _ in true }, cameras: ConnectedCameras())
        #expect(try receiver.next()?.meta.kind == .initSegment)
        tap.attachWorker(camera, recorder)
        #expect(!sender.wantsLiveChunks)

        let first = try UnixSocket.connect(path: dir + "/recorder-live.sock")
        try first.send(.hello(camera))
        #expect(Self.waitFor(3) { sender.wantsLiveChunks }, "not told of the first subscriber")
        let second = try UnixSocket.connect(path: dir + "/recorder-live.sock")
        try second.send(.hello(camera))
        first.close()
        usleep(1_500_000)  // the tap notices a quiet subscriber's end within 1 s
        #expect(sender.wantsLiveChunks, "told nobody watches while one subscriber still does")
        second.close()
        #expect(Self.waitFor(3) { !sender.wantsLiveChunks }, "not told the last subscriber left")

        // A worker connecting while someone watches is told at once; another camera's subscribers do not count.
        let third = try UnixSocket.connect(path: dir + "/recorder-live.sock")
        try third.send(.hello(CameraID("gym")!))
        let (w2, r2) = socketPair()
        let sender2 = DataPlaneSender(camera: camera, logger: quiet, clocks: ManualClocks()) { w2 }
        sender2.deliver(initSegment())
        tap.detachWorker(camera, recorder)
        tap.attachWorker(camera, r2)
        usleep(300_000)
        #expect(!sender2.wantsLiveChunks)
        let fourth = try UnixSocket.connect(path: dir + "/recorder-live.sock")
        try fourth.send(.hello(camera))
        #expect(Self.waitFor(3) { sender2.wantsLiveChunks })
        third.close()
        fourth.close()
        // A watch frame is the recorder's alone: from a capture worker it breaks the protocol.
        #expect(throws: DataPlaneError.self) {
            try DataPlaneMessage(DataPlaneMessage.decodeHeader(DataPlane.watchFrame(true)), payload: [])
        }
    }
}
