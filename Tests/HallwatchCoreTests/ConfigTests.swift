// The configuration suites moved to Tests/HallwatchConfigTests; these stay with HallwatchCore.
import Foundation
import Testing

@testable import HallwatchCore

@Suite("Time and units")
struct TimeTests {
    @Test func iso8601RoundTrip() throws {
        let t = try #require(ISO8601.parse("2026-11-29T20:52:23.125Z"))
        #expect(t.micros == 1_795_985_543_125_000)
        #expect(t.iso8601 == "2026-11-29T20:52:23.125Z")
        #expect(ISO8601.parse("2026-11-29T21:52:23.125+01:00") == t)
        #expect(ISO8601.parse("2026-13-29T20:52:23Z") == nil)
        #expect(ISO8601.parse("yesterday") == nil)
    }

    @Test func relativeTimes() throws {
        let now = UTCMicros(1_000_000_000_000)
        #expect(TimeExpression.parse("now", now: now) == now)
        #expect(TimeExpression.parse("-30s", now: now) == UTCMicros(1_000_000_000_000 - 30_000_000))
        #expect(TimeExpression.parse("-5m", now: now) == UTCMicros(1_000_000_000_000 - 300_000_000))
        #expect(TimeExpression.parse("-1.5s", now: now) == UTCMicros(1_000_000_000_000 - 1_500_000))
        #expect(TimeExpression.parse("-5x", now: now) == nil)
        // Hostile input is refused, not a crash (found by a first user: -99999999999d overflowed).
        #expect(TimeExpression.parse("-99999999999d", now: now) == nil)
        #expect(TimeExpression.parse("+1e300s", now: now) == nil)
        #expect(TimeExpression.parse("-36500d", now: now) == UTCMicros(1_000_000_000_000 - 36_500 * 86_400_000_000))
    }

    @Test func mediaTimeUnits() {
        #expect(MediaTime90k(seconds: 1.5).ticks == 135_000)
        #expect(MediaTime90k(3003).milliseconds == 33)
        #expect(UTCMicros(0).adding(MediaTime90k(90_000)) == UTCMicros(1_000_000))
        #expect(UTCMicros(0).adding(MediaTime90k(3003)) == UTCMicros(33_367))
    }

    @Test func cameraIDs() {
        #expect(CameraID("lobby-2") != nil)
        #expect(CameraID("") == nil)
        #expect(CameraID("-x") == nil)
        #expect(CameraID(String(repeating: "a", count: 33)) == nil)
        #expect(CameraID("Lobby") == nil)
    }
}

@Suite("Data plane frames")
struct DataPlaneTests {
    @Test func headerGoldenBytes() throws {
        let meta = FragmentMeta(
            kind: .fragment, keyframe: true, run: 0x0102_0304_0506_0708, sequence: 7, start90k: MediaTime90k(90_000),
            duration90k: 45_000, utc: UTCMicros(1_795_985_543_125_000))
        let frame = DataPlaneFrame(meta: meta, payload: [0xAA, 0xBB])
        let hex = frame.encodeHeader().map { String(format: "%02x", $0) }.joined()
        #expect(
            hex == "48574450" + "03" + "01" + "0100" + "0807060504030201" + "07000000" + "c8af0000"
                + "905f010000000000" + "08d8517870610600" + "02000000" + "00000000")
        let (decoded, length) = try DataPlaneFrame.decodeHeader(frame.encodeHeader())
        #expect(decoded == meta)
        #expect(length == 2)
    }

    @Test func hostileHeadersAreRefused() throws {
        var h = DataPlaneFrame.hello(CameraID("lobby")!).encodeHeader()
        h[0] = 0
        #expect(throws: DataPlaneError.self) { try DataPlaneFrame.decodeHeader(h) }
        var big = DataPlaneFrame.hello(CameraID("lobby")!).encodeHeader()
        big[40] = 0xFF
        big[41] = 0xFF
        big[42] = 0xFF
        big[43] = 0x7F
        let e = try #require(throws: DataPlaneError.self) { try DataPlaneFrame.decodeHeader(big) }
        #expect(e.code == "dataplane.tooLarge")
    }

    @Test func framesCrossARealSocket() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hw-dp-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("s.sock").path
        let listener = try UnixSocket.listen(path: path)
        let client = try UnixSocket.connect(path: path)
        let server = try #require(try UnixSocket.accept(listener))
        let payload = (0..<100_000).map { UInt8($0 & 0xFF) }
        let frame = DataPlaneFrame(
            meta: FragmentMeta(
                kind: .initSegment, keyframe: false, run: 9, sequence: 0, start90k: .zero, duration90k: 0,
                utc: UTCMicros(5)), payload: payload)
        let sender = Thread {
            try? client.send(frame)
            client.close()
        }
        sender.start()
        let got = try #require(try server.receiveFrame())
        #expect(got == frame)
        #expect(try server.receiveFrame() == nil)
    }
}
