import Foundation
import HallwatchCore
import Logging
import Testing

@testable import HallwatchDataPlane

/// Clocks frozen at a settable instant (the sender's retry delays in simulated time).
final class ManualClocks: Clocks, @unchecked Sendable {
    private let lock = NSLock()
    private var nanos: UInt64 = 1_000_000_000
    func utcNow() -> UTCMicros {
        lock.lock()
        defer { lock.unlock() }
        return UTCMicros(1_764_000_000_000_000 + Int64(nanos / 1000))
    }
    func monotonicNanos() -> UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return nanos
    }
    func advance(seconds: Double) {
        lock.lock()
        nanos += UInt64(seconds * 1e9)
        lock.unlock()
    }
}

let quiet: Logger = {
    var l = Logger(label: "hallwatch.dataplane.test")
    l.logLevel = .critical
    return l
}()

/// Two connected Unix stream sockets: the capture worker's end and the recorder's.
func socketPair() -> (worker: FileHandleFD, recorder: FileHandleFD) {
    var fds: [Int32] = [-1, -1]
    precondition(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
    return (FileHandleFD(fds[0]), FileHandleFD(fds[1]))
}

let run: UInt64 = 1_764_000_000_000_000

func initSegment(run: UInt64 = run) -> MediaSegment {
    MediaSegment(
        meta: FragmentMeta(
            kind: .initSegment, keyframe: false, run: run, sequence: 0, start90k: .zero, duration90k: 0,
            utc: UTCMicros(Int64(run))),
        payload: Array(repeating: 0x11, count: 600))
}

/// Fragment `n` (1-based) of `run`: 1 s each, 1000 bytes whose first byte is `n`.
func fragment(_ n: UInt32, run: UInt64 = run) -> MediaSegment {
    MediaSegment(
        meta: FragmentMeta(
            kind: .fragment, keyframe: true, run: run, sequence: n, start90k: MediaTime90k(Int64(n - 1) * 90_000),
            duration90k: 90_000, utc: UTCMicros(Int64(run) + Int64(n - 1) * 1_000_000)),
        payload: [UInt8(truncatingIfNeeded: n)] + Array(repeating: 0x22, count: 999))
}

@Suite("Data plane framing (P1)")
struct FramingTests {
    @Test func headerGoldenBytes() throws {
        let meta = FragmentMeta(
            kind: .fragment, keyframe: true, run: 0x0102_0304_0506_0708, sequence: 7, start90k: MediaTime90k(90_000),
            duration90k: 45_000, utc: UTCMicros(1_795_985_543_125_000))
        let message = DataPlaneMessage.segment(MediaSegment(meta: meta, payload: [0xAA, 0xBB]))
        let hex = message.encodeHeader().map { String(format: "%02x", $0) }.joined()
        #expect(
            hex == "48574450" + "03" + "01" + "0200" + "0807060504030201" + "07000000" + "c8af0000"
                + "905f010000000000" + "08d8517870610600" + "02000000" + "00000000")
        let decoded = try DataPlaneMessage.decodeHeader(message.encodeHeader())
        #expect(decoded == DataPlaneMessage.Header(kind: .fragment, meta: meta, payloadBytes: 2))
    }

    @Test func helloGoldenBytes() throws {
        let hex = DataPlaneMessage.hello(CameraID("lobby")!).encodeHeader().map { String(format: "%02x", $0) }.joined()
        #expect(hex == "48574450" + "01" + "00" + "0200" + String(repeating: "0", count: 64) + "05000000" + "00000000")
    }

    @Test func hostileHeadersAreRefusedWithTheirCode() throws {
        let good = DataPlaneMessage.hello(CameraID("lobby")!).encodeHeader()
        func code(_ mutate: (inout [UInt8]) -> Void) -> DataPlaneError.Code? {
            var h = good
            mutate(&h)
            do {
                _ = try DataPlaneMessage.decodeHeader(h)
                return nil
            } catch { return error.code }
        }
        #expect(code { $0[0] = 0 } == .magic)
        #expect(code { $0[4] = 9 } == .kind)
        #expect(code { $0[6] = 1 } == .version)  // a version 1 peer
        #expect(
            code {
                $0[40] = 0xFF
                $0[41] = 0xFF
                $0[42] = 0xFF
                $0[43] = 0x7F
            } == .tooLarge)
        #expect(
            code {
                $0[20] = 0xFF
                $0[21] = 0xFF
                $0[22] = 0xFF
                $0[23] = 0xFF
            } == .duration)
        #expect(code { $0.removeLast() } == .short)
        #expect(throws: DataPlaneError(.protocol, "a hello must name a camera id")) {
            try DataPlaneMessage(
                DataPlaneMessage.Header(kind: .hello, meta: fragment(1).meta, payloadBytes: 3),
                payload: Array("../".utf8))
        }
    }

    @Test func framesCrossARealSocket() throws {
        let (worker, recorder) = socketPair()
        let payload = (0..<100_000).map { UInt8($0 & 0xFF) }
        let segment = MediaSegment(meta: initSegment().meta, payload: payload)
        let sender = Thread {
            try? worker.send(.segment(segment))
            worker.close()
        }
        sender.start()
        #expect(try recorder.receiveMessage() == .segment(segment))
        #expect(try recorder.receiveMessage() == nil)
    }

    @Test("a frame sent as header and payload in one sendmsg arrives whole through a 4 KiB send buffer")
    func shortSendsDeliverEveryByte() throws {
        let (worker, recorder) = socketPair()
        var small: Int32 = 4096
        setsockopt(worker.fd, SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        // A 1 MB payload leaves in many short sends, some ending inside the header's iovec's neighbour.
        let payload = (0..<1_000_003).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let segments = [MediaSegment(meta: fragment(1).meta, payload: payload), fragment(2), initSegment()]
        let sender = Thread {
            for s in segments { try? worker.send(.segment(s)) }
            worker.close()
        }
        sender.start()
        for s in segments { #expect(try recorder.receiveMessage() == .segment(s)) }
        #expect(try recorder.receiveMessage() == nil)
    }

    @Test func aStreamEndingInsideAPayloadIsShort() throws {
        let (worker, recorder) = socketPair()
        let header = DataPlaneMessage.segment(fragment(1)).encodeHeader()
        try (header + [1, 2, 3]).withUnsafeBytes { try worker.writeAll($0) }
        worker.close()
        #expect(throws: SystemError.self) { try recorder.receiveMessage() }
    }

    @Test func segmentFileRoundTrips() throws {
        let segments = [initSegment()] + (1...5).map { fragment($0) }
        let bytes = SegmentFile.encode(segments)
        #expect(bytes.count == 6 * DataPlane.headerBytes + 600 + 5 * 1000)
        #expect(try SegmentFile.decode(bytes) == segments)
        #expect(throws: DataPlaneError.self) { try SegmentFile.decode(Array(bytes.dropLast())) }
        #expect(throws: DataPlaneError.self) {
            try SegmentFile.decode(DataPlaneMessage.hello(CameraID("x")!).encodeHeader() + Array("x".utf8))
        }
    }
}

@Suite("Data plane conversation (P2–P5)")
struct ConversationTests {
    let camera = CameraID("lobby")!

    @Test func helloThenSegmentsInOrder() throws {
        let (worker, recorder) = socketPair()
        let sender = DataPlaneSender(camera: camera, logger: quiet, clocks: ManualClocks()) { worker }
        let sent = [initSegment()] + (1...10).map { fragment($0) }
        for s in sent { sender.deliver(s) }
        #expect(sender.isConnected)
        let receiver = try DataPlaneReceiver(recorder, isKnown: { $0 == camera }, cameras: ConnectedCameras())
        #expect(receiver.camera == camera)
        var got: [MediaSegment] = []
        for _ in sent { got.append(try #require(try receiver.next())) }
        #expect(got == sent)
    }

    @Test func theRecorderRefusesUnknownDuplicateAndOutOfOrderPeers() throws {
        let cameras = ConnectedCameras()
        func code(_ frames: [DataPlaneMessage], known: Bool = true) -> DataPlaneError.Code? {
            let (worker, recorder) = socketPair()
            for f in frames { try? worker.send(f) }
            worker.close()
            do {
                let r = try DataPlaneReceiver(recorder, isKnown: { _ in known }, cameras: cameras)
                while try r.next() != nil {}
                return nil
            } catch let e as DataPlaneError { return e.code } catch { return nil }
        }
        #expect(code([.segment(initSegment())]) == .protocol)
        #expect(code([]) == .protocol)
        #expect(code([.hello(camera)], known: false) == .unknownCamera)
        #expect(code([.hello(camera), .segment(initSegment()), .hello(camera)]) == .protocol)

        // One connection per camera: a second worker is refused while the first is connected, not after.
        let (w1, r1) = socketPair()
        try w1.send(.hello(camera))
        var first: DataPlaneReceiver? = try DataPlaneReceiver(r1, isKnown: { _ in true }, cameras: cameras)
        #expect(code([.hello(camera)]) == .duplicateCamera)
        #expect(first?.camera == camera)
        first = nil
        #expect(code([.hello(camera)]) == nil)
    }

    /// P4 + P5: the recorder dies (kill -9) having read only part of what the kernel had taken from the worker.
    /// After the reconnect the worker sends its resend window again, the run's init segment first; the recorder's
    /// filter skips what it had stored; together every fragment is stored exactly once, in order.
    @Test func aRecorderKilledMidStreamLosesNothingAndStoresNothingTwice() throws {
        let clocks = ManualClocks()
        var pairs = [socketPair(), socketPair()]
        let ends = pairs.map(\.recorder)
        let sender = DataPlaneSender(camera: camera, logger: quiet, clocks: clocks) {
            guard !pairs.isEmpty else { throw SystemError("connect", errno: ECONNREFUSED, subject: "test") }
            return pairs.removeFirst().worker
        }
        for s in [initSegment()] + (1...20).map({ fragment($0) }) { sender.deliver(s) }

        // The first recorder stores the init segment and fragments 1–7, then dies; 8–20 were in its socket, unread.
        var stored: [MediaSegment] = []
        do {
            let receiver = try DataPlaneReceiver(ends[0], isKnown: { _ in true }, cameras: ConnectedCameras())
            for _ in 0..<8 { stored.append(try #require(try receiver.next())) }
            ends[0].close()
        }
        sender.deliver(fragment(21))  // the send fails: the window goes back to the head of the backlog
        #expect(!sender.isConnected)
        #expect(sender.backlogCount == 22)
        clocks.advance(seconds: 0.9)
        sender.deliver(fragment(22))  // closed within 1 s of connecting: the retry delay doubled to 1 s
        #expect(!sender.isConnected)
        clocks.advance(seconds: 0.2)
        sender.deliver(fragment(23))
        #expect(sender.isConnected)

        let receiver = try DataPlaneReceiver(ends[1], isKnown: { _ in true }, cameras: ConnectedCameras())
        var filter = ResendFilter { _ in
            stored.last.map { (run: $0.meta.run, end90k: $0.meta.end90k.ticks) }
        }
        var again: [MediaSegment] = []
        for _ in 0..<24 {  // the init segment, then fragments 1–23
            let s = try #require(try receiver.next())
            if filter.admit(s, of: camera) { again.append(s) }
        }
        #expect(filter.takeSkipped() == 7)
        #expect(again.first?.meta.kind == .initSegment)
        let fragments = (stored + again).filter { $0.meta.kind == .fragment }.map(\.meta.sequence)
        #expect(fragments == Array(UInt32(1)...23))
        #expect(sender.droppedFragments == 0)
    }

    /// P3: while the recorder is away the backlog is bounded; the oldest fragments go first, init segments stay,
    /// and fragments whose run's init segment is gone are dropped at the reconnect, never sent without one.
    @Test func theBacklogIsBoundedAndEveryRunKeepsItsInitSegment() throws {
        let clocks = ManualClocks()
        var available: FileHandleFD?
        let sender = DataPlaneSender(camera: camera, logger: quiet, clocks: clocks, maxBacklogBytes: 10_000) {
            guard let w = available else { throw SystemError("connect", errno: ENOENT, subject: "test") }
            available = nil
            return w
        }
        sender.deliver(initSegment())
        for n: UInt32 in 1...30 { sender.deliver(fragment(n)) }
        #expect(sender.droppedFragments == 21)  // 600 + 9 × 1000 bytes fit in 10 000
        #expect(sender.backlogCount == 10)

        let (worker, recorder) = socketPair()
        available = worker
        clocks.advance(seconds: 1)
        sender.deliver(fragment(31))
        let receiver = try DataPlaneReceiver(recorder, isKnown: { _ in true }, cameras: ConnectedCameras())
        var got: [MediaSegment] = []
        for _ in 0..<10 { got.append(try #require(try receiver.next())) }
        #expect(got.first?.meta.kind == .initSegment)
        #expect(got.dropFirst().map(\.meta.sequence) == Array(UInt32(23)...31))
    }

    @Test func retryDelayIsHalfASecondAfterAWorkingConnectionAndDoublesWhenRefused() throws {
        let clocks = ManualClocks()
        var attempts: [UInt64] = []
        var pairs: [(worker: FileHandleFD, recorder: FileHandleFD)] = []
        let sender = DataPlaneSender(camera: camera, logger: quiet, clocks: clocks) {
            attempts.append(clocks.monotonicNanos())
            let p = socketPair()
            pairs.append(p)
            return p.worker
        }
        sender.deliver(initSegment())
        clocks.advance(seconds: 5)
        pairs.last!.recorder.close()  // a recorder that worked for 5 s, then crashed
        sender.deliver(fragment(1))
        for _ in 0..<10 {
            clocks.advance(seconds: 0.1)
            sender.deliver(fragment(2))
        }
        #expect(attempts.count == 2)
        #expect(attempts[1] - attempts[0] == 5_500_000_000)  // picked up 0.5 s after the failure
    }
}
