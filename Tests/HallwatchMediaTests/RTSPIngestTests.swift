import Foundation
import HallwatchCore
import Logging
import Synchronization
import Testing

@testable import HallwatchMedia

/// RTP packets built the way cameras build them (RFC 3550 header, RFC 6184 / RFC 7798 payloads).
enum RTPBuilder {
    static func packet(
        pt: UInt8 = 96, seq: UInt16, ts: UInt32, marker: Bool = false, payload: [UInt8],
        csrc: Int = 0, padding: Int = 0, extensionWords: Int = 0
    ) -> [UInt8] {
        var b: [UInt8] = [
            0x80 | UInt8(csrc) | (padding > 0 ? 0x20 : 0) | (extensionWords > 0 ? 0x10 : 0),
            (marker ? 0x80 : 0) | pt, UInt8(seq >> 8), UInt8(seq & 0xFF),
            UInt8(ts >> 24), UInt8(ts >> 16 & 0xFF), UInt8(ts >> 8 & 0xFF), UInt8(ts & 0xFF),
            0xDE, 0xAD, 0xBE, 0xEF,
        ]
        b += [UInt8](repeating: 7, count: csrc * 4)
        if extensionWords > 0 {
            b += [0xBE, 0xDE, 0, UInt8(extensionWords)] + [UInt8](repeating: 9, count: extensionWords * 4)
        }
        b += payload
        if padding > 0 { b += [UInt8](repeating: 0, count: padding - 1) + [UInt8(padding)] }
        return b
    }

    /// H.264 payloads for one NAL unit: a single NAL unit packet, or FU-A pieces of at most `mtu` bytes.
    static func h264(_ nal: [UInt8], mtu: Int = 1200) -> [[UInt8]] {
        guard nal.count > mtu else { return [nal] }
        var out: [[UInt8]] = []
        var i = 1
        while i < nal.count {
            let end = min(nal.count, i + mtu)
            let fu: UInt8 = (i == 1 ? 0x80 : 0) | (end == nal.count ? 0x40 : 0) | (nal[0] & 0x1F)
            out.append([nal[0] & 0xE0 | 28, fu] + nal[i..<end])
            i = end
        }
        return out
    }

    /// One access unit (its NAL units) as interleaved RTP on channel 0 (RFC 2326 §10.12): each NAL unit a
    /// single packet or FU-A pieces, the marker on the last packet, sequence numbers from `seq` (advanced).
    static func interleavedUnit(_ unit: [[UInt8]], seq: inout UInt16, ts: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        for (j, nal) in unit.enumerated() {
            let pieces = h264(nal)
            for (k, piece) in pieces.enumerated() {
                out += interleaved(
                    0, packet(seq: seq, ts: ts, marker: j == unit.count - 1 && k == pieces.count - 1, payload: piece))
                seq &+= 1
            }
        }
        return out
    }

    /// Interleaved frame (RFC 2326 §10.12).
    static func interleaved(_ channel: UInt8, _ payload: [UInt8]) -> [UInt8] {
        [0x24, channel, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)] + payload
    }
}

func annexB(_ nals: [[UInt8]]) -> [UInt8] { nals.flatMap { [0, 0, 0, 1] + $0 } }

@Suite("RTSP ingest: SDP and RTP depacketizing")
struct RTPDepacketizerTests {
    let sps: [UInt8] = [0x67, 0x42, 0xC0, 0x1E, 0xD9]
    let pps: [UInt8] = [0x68, 0xCE, 0x3C, 0x80]
    var idr: [UInt8] { [0x65] + (0..<3000).map { UInt8($0 % 251 + 1) } }

    func run(_ d: inout RTPDepacketizer, _ packets: [[UInt8]]) -> [RTPDepacketizer.AccessUnit] {
        var out: [RTPDepacketizer.AccessUnit] = []
        for p in packets { p.withUnsafeBytes { d.push($0) { out.append($0) } } }
        return out
    }

    @Test func fuAAndStapAMakeOneKeyframeAccessUnit() {
        var d = RTPDepacketizer(codec: .h264, payloadType: 96)
        let stap: [UInt8] = [24, 0, UInt8(sps.count)] + sps + [0, UInt8(pps.count)] + pps
        let pieces = RTPBuilder.h264(idr)
        #expect(pieces.count == 3)
        var packets = [RTPBuilder.packet(seq: 10, ts: 9000, payload: stap)]
        for (i, p) in pieces.enumerated() {
            packets.append(
                RTPBuilder.packet(
                    seq: UInt16(11 + i), ts: 9000, marker: i == pieces.count - 1, payload: p,
                    csrc: i == 0 ? 2 : 0, padding: i == 1 ? 4 : 0, extensionWords: i == 2 ? 1 : 0))
        }
        let units = run(&d, packets)
        #expect(units.count == 1)
        #expect(units.first?.bytes == annexB([sps, pps, idr]))
        #expect(units.first?.keyframe == true)
        #expect(units.first?.timestamp == 0)
        #expect(d.packetsLost == 0 && d.packetsDropped == 0)
    }

    @Test func timestampChangeEndsAUnitWhenTheMarkerIsMissing() {
        var d = RTPDepacketizer(codec: .h264, payloadType: 96)
        let p1: [UInt8] = [0x41, 1, 2, 3]
        let p2: [UInt8] = [0x41, 4, 5, 6]
        let units = run(
            &d,
            [
                RTPBuilder.packet(seq: 1, ts: 1000, payload: p1), RTPBuilder.packet(seq: 2, ts: 1000, payload: p2),
                RTPBuilder.packet(seq: 3, ts: 4000, payload: p1),
            ])
        #expect(units.count == 1)
        #expect(units.first?.bytes == annexB([p1, p2]))
        #expect(units.first?.keyframe == false)
    }

    @Test func timestampWrapsForwardAcross32Bits() {
        var d = RTPDepacketizer(codec: .h264, payloadType: 96)
        let p: [UInt8] = [0x41, 1]
        let units = run(
            &d,
            [
                RTPBuilder.packet(seq: 1, ts: 0xFFFF_FF00, marker: true, payload: p),
                RTPBuilder.packet(seq: 2, ts: 0x0000_0100, marker: true, payload: p),
            ])
        #expect(units.map(\.timestamp) == [0, 512])
    }

    @Test func lostFragmentDropsThatNALUnitOnly() {
        var d = RTPDepacketizer(codec: .h264, payloadType: 96)
        let pieces = RTPBuilder.h264(idr)
        let slice: [UInt8] = [0x41, 7, 7]
        // The middle FU-A piece is lost; the slice after it (same access unit) is kept.
        let units = run(
            &d,
            [
                RTPBuilder.packet(seq: 1, ts: 3000, payload: pieces[0]),
                RTPBuilder.packet(seq: 3, ts: 3000, payload: pieces[2]),
                RTPBuilder.packet(seq: 4, ts: 3000, marker: true, payload: slice),
            ])
        #expect(d.packetsLost == 1)
        #expect(units.count == 1)
        #expect(units.first?.bytes == annexB([slice]))
        #expect(units.first?.keyframe == false)
    }

    @Test func anAccessUnitThatNeverEndsIsDroppedNotGrown() {
        var d = RTPDepacketizer(codec: .h264, payloadType: 96)
        let chunk: [UInt8] = [0x41] + [UInt8](repeating: 1, count: 1399)
        var packets = (0..<13_000).map { RTPBuilder.packet(seq: UInt16(truncatingIfNeeded: $0), ts: 7, payload: chunk) }
        packets.append(RTPBuilder.packet(seq: 13_000, ts: 3007, marker: true, payload: [0x41, 2]))
        let units = run(&d, packets)  // 13 000 × 1.4 kB = 18 MB under one timestamp
        #expect(units.count == 1 && units.first?.bytes == annexB([[0x41, 2]]))
        #expect(d.unitsDropped == 1)
    }

    @Test func foreignPayloadTypeAndBadVersionAreDropped() {
        var d = RTPDepacketizer(codec: .h264, payloadType: 96)
        var bad = RTPBuilder.packet(seq: 1, ts: 0, marker: true, payload: [0x41, 1])
        bad[0] = 0x40
        let units = run(
            &d, [RTPBuilder.packet(pt: 97, seq: 1, ts: 0, marker: true, payload: [0x41, 1]), bad, [0x80, 96]])
        #expect(units.isEmpty)
        #expect(d.packetsDropped == 3)
    }

    @Test func h265FragmentationAndAggregation() {
        var d = RTPDepacketizer(codec: .hevc, payloadType: 96)
        let vps: [UInt8] = [0x40, 0x01, 0x0C]
        let sps: [UInt8] = [0x42, 0x01, 0x01]
        let pps: [UInt8] = [0x44, 0x01, 0xC1]
        let idr: [UInt8] = [0x26, 0x01] + (0..<2000).map { UInt8($0 % 200 + 1) }  // type 19, IDR_W_RADL
        let ap: [UInt8] = [48 << 1, 1] + [0, 3] + vps + [0, 3] + sps + [0, 3] + pps
        let fu1: [UInt8] = [49 << 1, 1, 0x80 | 19] + idr[2..<1000]
        let fu2: [UInt8] = [49 << 1, 1, 0x40 | 19] + idr[1000...]
        let units = run(
            &d,
            [
                RTPBuilder.packet(seq: 5, ts: 90_000, payload: ap), RTPBuilder.packet(seq: 6, ts: 90_000, payload: fu1),
                RTPBuilder.packet(seq: 7, ts: 90_000, marker: true, payload: fu2),
            ])
        #expect(units.count == 1)
        #expect(units.first?.bytes == annexB([vps, sps, pps, idr]))
        #expect(units.first?.keyframe == true)
    }

    @Test func sdpOfAnH264CameraWithParameterSets() throws {
        let sdp = """
            v=0\r\no=- 1 1 IN IP4 10.0.0.5\r\ns=Session streamed by "AXIS"\r\nt=0 0\r\na=control:*\r\n\
            m=audio 0 RTP/AVP 0\r\na=control:trackID=2\r\n\
            m=video 0 RTP/AVP 96\r\nb=AS:50000\r\na=rtpmap:96 H264/90000\r\n\
            a=fmtp:96 packetization-mode=1; profile-level-id=42c01e; sprop-parameter-sets=Z0LAHtk,aM48gA\r\n\
            a=control:trackID=1\r\n
            """
        let m = try VideoMediaDescription.parse(sdp)
        #expect(m.codec == .h264 && m.payloadType == 96 && m.clockRate == 90_000)
        #expect(m.parameterSets == [sps, pps])
        #expect(
            m.setupURL(base: "rtsp://10.0.0.5/axis-media/media.amp") == "rtsp://10.0.0.5/axis-media/media.amp/trackID=1"
        )
        #expect(m.setupURL(base: "rtsp://10.0.0.5/live/") == "rtsp://10.0.0.5/live/trackID=1")
        #expect(m.sessionControl == "*")
        #expect(m.playURL(base: "rtsp://10.0.0.5/axis-media/media.amp") == "rtsp://10.0.0.5/axis-media/media.amp")
        var relative = m
        relative.sessionControl = "live"
        #expect(relative.playURL(base: "rtsp://10.0.0.5/") == "rtsp://10.0.0.5/live")
    }

    @Test func sdpOfAnH265CameraWithoutParameterSetsAndAbsoluteControl() throws {
        let sdp =
            "v=0\r\ns=x\r\nm=video 0 RTP/AVP 98\r\na=rtpmap:98 H265/90000\r\na=control:rtsp://10.0.0.9:554/ch1/main/track1\r\n"
        let m = try VideoMediaDescription.parse(sdp)
        #expect(m.codec == .hevc && m.parameterSets.isEmpty)
        #expect(m.setupURL(base: "rtsp://10.0.0.9/ch1/main") == "rtsp://10.0.0.9:554/ch1/main/track1")
    }

    @Test func sdpRefusals() throws {
        #expect(throws: MediaError.self) { try VideoMediaDescription.parse("HTTP/1.1 200 OK\r\n") }
        let noVideo = #expect(throws: MediaError.self) {
            try VideoMediaDescription.parse("v=0\r\nm=audio 0 RTP/AVP 0\r\n")
        }
        #expect(noVideo?.code == "media.noVideo")
        let garbage = #expect(throws: MediaError.self) {
            try VideoMediaDescription.parse("v=0\r\nm=video x RTP/AVP 96\r\n")
        }
        #expect(garbage?.code == "rtsp.garbage")
        let huge = #expect(throws: MediaError.self) {
            try VideoMediaDescription.parse("v=0\r\n" + String(repeating: "a=x\r\n", count: 20_000))
        }
        #expect(huge?.code == "rtsp.garbage")
        #expect(try VideoMediaDescription.parse("v=0\r\nm=video 0 RTP/AVP 26\r\n").encodingDisplayName == "mjpeg")
    }
}

/// Collects what a capture session delivers.
final class CollectingSink: FragmentSink {
    var frames: [MediaSegment] = []
    func deliver(_ frame: MediaSegment) { frames.append(frame) }
}

@Suite("RTSP ingest: Hallwatch's client against a scripted camera", .serialized)
struct RTSPClientTests {
    /// 2 s of 320×240 H.264 at 10 fps, one IDR per second, as access units of NAL units (libx264 via ffmpeg).
    static func encodedClip(size: String = "320x240") throws -> [[[UInt8]]] {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "hw-rtsp-\(getpid())-\(UUID().uuidString).h264"
        ).path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        p.arguments = [
            "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=\(size):rate=10", "-t", "2",
            "-c:v", "libx264", "-g", "10", "-bf", "0", "-f", "h264", "-y", path,
        ]
        try p.run()
        p.waitUntilExit()
        let nals = ParameterSets.nalUnits(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        // Access units: a new one starts at each slice (types 1, 5) after the first, SPS/PPS/SEI go with the next slice.
        var units: [[[UInt8]]] = []
        var current: [[UInt8]] = []
        for n in nals {
            current.append(n)
            if [1, 5].contains(n[0] & 0x1F) {
                units.append(current)
                current = []
            }
        }
        return units
    }

    @Test func digestAuthNoSpropEarlyRTPAndInterleavedNoise() throws {
        let units = try Self.encodedClip()
        #expect(units.count == 20)
        // The stream: RTCP on channel 1 and a stray byte between frames; the first frames arrive before the
        // PLAY reply; SPS/PPS only in-band (the SDP has no sprop-parameter-sets).
        var frames: [[UInt8]] = []
        var seq: UInt16 = 100
        for (i, unit) in units.enumerated() {
            for (j, nal) in unit.enumerated() {
                let pieces = RTPBuilder.h264(nal)
                for (k, piece) in pieces.enumerated() {
                    let last = j == unit.count - 1 && k == pieces.count - 1
                    frames.append(
                        RTPBuilder.interleaved(
                            0,
                            RTPBuilder.packet(seq: seq, ts: 5_000_000 + UInt32(i) * 9000, marker: last, payload: piece))
                    )
                    seq &+= 1
                }
            }
            if i == 3 {
                frames.append(RTPBuilder.interleaved(1, [0x80, 200, 0, 6] + [UInt8](repeating: 0, count: 24)) + [0x0A])
            }
        }
        let early = frames.prefix(4).flatMap { $0 }
        let rest = frames.dropFirst(4).flatMap { $0 }
        let sdp =
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\na=control:track1\r\n"
        let describes = Atomic<Int>(0)
        let server = try FakeRTSPServer(raw: { method, cseq, request in
            func ok(_ extra: String, body: String = "") -> [UInt8] {
                Array(
                    ("RTSP/1.0 200 OK\r\nCSeq: \(cseq)\r\n\(extra)"
                        + (body.isEmpty ? "\r\n" : "Content-Length: \(body.utf8.count)\r\n\r\n\(body)")).utf8)
            }
            switch method {
            case "DESCRIBE":
                if describes.add(1, ordering: .relaxed).newValue == 1 || !request.contains("Authorization: Digest") {
                    return Array(
                        "RTSP/1.0 401 Unauthorized\r\nCSeq: \(cseq)\r\nWWW-Authenticate: Digest realm=\"cam\", nonce=\"abc123\"\r\n\r\n"
                            .utf8)
                }
                return ok("Content-Base: rtsp://127.0.0.1/stream/\r\nContent-Type: application/sdp\r\n", body: sdp)
            case "SETUP": return ok("Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 4242;timeout=30\r\n")
            case "PLAY": return early + ok("Session: 4242\r\nRTP-Info: url=track1;seq=100;rtptime=0\r\n") + rest
            case "OPTIONS": return ok("Public: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN\r\n")
            default: return nil
            }
        })
        let session = CaptureSession(
            camera: CameraID("scripted")!,
            source: RTSPSourceOptions(url: server.url, username: "admin", password: "s3cret", ioTimeout: .seconds(2)),
            policy: FragmentPolicy(), clocks: SystemClocks(), logger: Logger(label: "test"))
        let sink = CollectingSink()
        // The camera keeps the connection open after the clip: the session ends at the I/O timeout.
        let ended = #expect(throws: MediaError.self) { try session.run(stop: StopFlag(), sink: sink) { _ in } }
        #expect(ended?.code == "rtsp.timeout", "\(String(describing: ended))")
        server.stop()

        let requests = server.requests.withLock { $0 }
        let authorized = try #require(requests.first { $0.hasPrefix("DESCRIBE") && $0.contains("Authorization:") })
        // RFC 2617 without qop: response = MD5(MD5(user:realm:pass):nonce:MD5(method:uri)).
        func md5(_ s: String) throws -> String {
            let p = Process()
            let out = Pipe()
            let input = Pipe()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/md5sum")
            p.standardInput = input
            p.standardOutput = out
            try p.run()
            input.fileHandleForWriting.write(Data(s.utf8))
            try input.fileHandleForWriting.close()
            p.waitUntilExit()
            return String(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(32))
        }
        let expected = try md5("\(md5("admin:cam:s3cret")):abc123:\(md5("DESCRIBE:\(server.url)"))")
        #expect(authorized.contains("response=\"\(expected)\""), "\(authorized)")
        #expect(!requests.joined().contains("s3cret"))
        let setup = try #require(requests.first { $0.hasPrefix("SETUP") })
        #expect(setup.hasPrefix("SETUP rtsp://127.0.0.1/stream/track1 RTSP/1.0"))
        #expect(setup.contains("Transport: RTP/AVP/TCP;unicast;interleaved=0-1"))

        // Every access unit is recorded: one init segment, then 2 fragments of 1 s (10 frames of 9000 ticks) —
        // the last fragment is cut when the session ends.
        let fragments = sink.frames.filter { $0.meta.kind == .fragment }
        #expect(sink.frames.first?.meta.kind == .initSegment)
        #expect(fragments.map(\.meta.duration90k) == [90_000, 90_000])
        #expect(fragments.map(\.meta.start90k.ticks) == [0, 90_000])
        #expect(fragments.allSatisfy { $0.meta.keyframe })
        let mediaBytes = units.flatMap { $0.filter { [1, 5].contains($0[0] & 0x1F) } }.reduce(0) { $0 + $1.count }
        #expect(fragments.reduce(0) { $0 + $1.payload.count } > mediaBytes)
    }
}

/// What a hostile or broken camera does to the client: every case ends in a typed error, within bounds.
extension RTSPClientTests {
    /// The picture width and height of an init segment's `avc1` sample entry (ISO/IEC 14496-15 §5.4.2:
    /// 6 reserved + 2 data-reference-index + 16 pre-defined bytes precede them).
    static func avc1Size(_ initSegment: [UInt8]) -> (Int, Int)? {
        let tag = Array("avc1".utf8)
        guard let i = (0..<(initSegment.count - 40)).first(where: { Array(initSegment[$0..<($0 + 4)]) == tag }) else {
            return nil
        }
        let at = i + 4 + 24
        return (
            Int(initSegment[at]) << 8 | Int(initSegment[at + 1]),
            Int(initSegment[at + 2]) << 8 | Int(initSegment[at + 3])
        )
    }

    @Test func resolutionChangeMidStreamStartsANewRunWithItsOwnInitSegment() throws {
        // 2 s at 320×240, then the camera switches to 640×360 (new in-band SPS/PPS), timestamps continuing.
        let units = try Self.encodedClip(size: "320x240") + Self.encodedClip(size: "640x360")
        var stream: [UInt8] = []
        var seq: UInt16 = 1
        for (i, unit) in units.enumerated() {
            stream += RTPBuilder.interleavedUnit(unit, seq: &seq, ts: UInt32(i) * 9000)
        }
        let sdp = "v=0\r\ns=cam\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:track1\r\n"
        let rtp = stream
        let server = try FakeRTSPServer(raw: { method, cseq, _ in
            switch method {
            case "DESCRIBE":
                return Array("RTSP/1.0 200 OK\r\nCSeq: \(cseq)\r\nContent-Length: \(sdp.utf8.count)\r\n\r\n\(sdp)".utf8)
            case "SETUP":
                return Array(
                    "RTSP/1.0 200 OK\r\nCSeq: \(cseq)\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 9\r\n\r\n"
                        .utf8)
            case "PLAY": return Array("RTSP/1.0 200 OK\r\nCSeq: \(cseq)\r\nSession: 9\r\n\r\n".utf8) + rtp
            default: return Array("RTSP/1.0 200 OK\r\nCSeq: \(cseq)\r\n\r\n".utf8)
            }
        })
        let session = CaptureSession(
            camera: CameraID("resize")!, source: RTSPSourceOptions(url: server.url, ioTimeout: .seconds(2)),
            policy: FragmentPolicy(), clocks: SystemClocks(), logger: Logger(label: "test"))
        let sink = CollectingSink()
        _ = try? session.run(stop: StopFlag(), sink: sink) { _ in }
        server.stop()

        let inits = sink.frames.filter { $0.meta.kind == .initSegment }
        #expect(inits.count == 2)
        #expect(inits.compactMap { Self.avc1Size($0.payload) }.map { [$0.0, $0.1] } == [[320, 240], [640, 360]])
        let runs = Dictionary(grouping: sink.frames.filter { $0.meta.kind == .fragment }, by: \.meta.run)
        #expect(runs.count == 2)
        // Nothing lost at the switch: each run holds its 2 s (20 frames of 9000 ticks) in two keyframe fragments.
        for (_, fragments) in runs {
            #expect(fragments.map(\.meta.duration90k) == [90_000, 90_000])
        }
    }
}

@Suite("RTSP ingest: hostile cameras against Hallwatch's client", .serialized)
struct RTSPHostileCameraTests {
    static let sdp = "v=0\r\ns=cam\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:track1\r\n"

    /// A camera that answers like `reply` says for PLAY and SETUP, and normally otherwise.
    static func camera(
        sdp: String = sdp, setup: String = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 7\r\n",
        play: @escaping @Sendable (String) -> [UInt8]? = { cseq in
            Array("RTSP/1.0 200 OK\r\nCSeq: \(cseq)\r\nSession: 7\r\n\r\n".utf8)
        }
    ) throws -> FakeRTSPServer {
        try FakeRTSPServer(raw: { method, cseq, _ in
            switch method {
            case "DESCRIBE":
                return Array("RTSP/1.0 200 OK\r\nCSeq: \(cseq)\r\nContent-Length: \(sdp.utf8.count)\r\n\r\n\(sdp)".utf8)
            case "SETUP": return Array("RTSP/1.0 200 OK\r\nCSeq: \(cseq)\r\n\(setup)\r\n".utf8)
            case "PLAY": return play(cseq)
            default:
                return Array(
                    "RTSP/1.0 200 OK\r\nCSeq: \(cseq)\r\nPublic: OPTIONS, DESCRIBE, SETUP, PLAY, GET_PARAMETER, TEARDOWN\r\n\r\n"
                        .utf8)
            }
        })
    }

    /// Writes `packet(i)` as interleaved frames on channel 0 every `interval` for `seconds`.
    static func stream(
        _ fd: Int32, seconds: Double, interval: Double = 0.1, channel: UInt8 = 0, packet: (Int) -> [UInt8]
    ) {
        let start = Date()
        var i = 0
        while Date().timeIntervalSince(start) < seconds {
            let frame = RTPBuilder.interleaved(channel, packet(i))
            guard frame.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) > 0 else {
                return
            }
            i += 1
            usleep(UInt32(interval * 1e6))
        }
    }

    @Test func absurdSessionTimeoutDoesNotCrash() throws {
        let server = try Self.camera(
            setup: "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 7;timeout=99999999999\r\n")
        let (e, _, _) = captureError(server.url, timeout: .seconds(1))
        #expect(e?.code == "rtsp.timeout", "got \(String(describing: e))")
    }

    @Test func malformedMediaAndRtpmapLinesAreGarbageNotACrash() {
        for bad in ["v=0\r\nm=video / RTP/AVP 96\r\n", "v=0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 /\r\n"] {
            do {
                let m = try VideoMediaDescription.parse(bad)
                #expect(m.codec == nil, "\(bad) parsed as \(m)")
            } catch let e as MediaError {
                #expect(e.code == "rtsp.garbage")
            } catch { Issue.record("untyped \(error)") }
        }
    }

    @Test func theFirstStorableVideoSectionIsTaken() throws {
        let m = try VideoMediaDescription.parse(
            "v=0\r\nm=video 0 RTP/AVP 26\r\na=control:mjpeg\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=control:h264\r\n"
        )
        #expect(m.codec == .h264 && m.control == "h264" && m.payloadType == 96)
    }

    @Test func rtpWithoutAPlayReplyIsBoundedInTimeAndMemory() throws {
        // The camera streams big frames and never answers PLAY.
        let server = try Self.camera(play: { _ in nil })
        server.afterPlay = { fd in
            Self.stream(fd, seconds: 4, interval: 0.001) { i in
                RTPBuilder.packet(
                    seq: UInt16(truncatingIfNeeded: i), ts: UInt32(i / 40) * 3000, marker: i % 40 == 39,
                    payload: [0x41] + [UInt8](repeating: 3, count: 60_000))
            }
        }
        let (e, seconds, frames) = captureError(server.url, timeout: .seconds(2))
        #expect(e?.code == "rtsp.timeout", "got \(String(describing: e))")
        #expect(e?.message.contains("PLAY") == true)
        #expect(seconds < 4.5 && frames == 0)
    }

    @Test func rtpOfAnotherPayloadTypeIsNoFrames() throws {
        let server = try Self.camera()
        server.afterPlay = { fd in
            Self.stream(fd, seconds: 13) { i in
                RTPBuilder.packet(pt: 97, seq: UInt16(i), ts: UInt32(i) * 9000, marker: true, payload: [0x65, 1, 2])
            }
        }
        let (e, seconds, _) = captureError(server.url, timeout: .seconds(2))
        #expect(e?.code == "rtsp.noFrames", "got \(String(describing: e))")
        #expect(e?.message.contains("payload type 96") == true)
        #expect(seconds >= 9.5 && seconds < 13)
    }

    @Test func keepAlivesGoOutOnTimeAtALowFrameRate() throws {
        // timeout=2: a keep-alive each second, whatever the frame rate (here 2 frames/s for 5 s).
        let server = try Self.camera(
            setup: "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 7;timeout=2\r\n")
        server.afterPlay = { fd in
            Self.stream(fd, seconds: 5, interval: 0.5) { i in
                RTPBuilder.packet(seq: UInt16(i), ts: UInt32(i) * 45_000, marker: true, payload: [0x41, 9, 9])
            }
        }
        _ = captureError(server.url, timeout: .seconds(2))
        let keepAlives = server.requests.withLock { $0.filter { $0.hasPrefix("GET_PARAMETER") }.count }
        #expect(keepAlives >= 4, "\(keepAlives) keep-alives in 5 s")
    }
}
