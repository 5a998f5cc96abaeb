import Foundation
import HallwatchCore
import Testing

/// The benchmark's RTSP camera (`hallwatch-loadgen rtsp`) against a real client: ffmpeg records across a
/// loop boundary and the result must be the source, frame for frame; the protocol's refusals are checked
/// over a raw socket. Everything on 127.0.0.1; the server is stopped by PID.
@Suite("loadgen rtsp")
struct LoadGenRTSPTests {
    /// Starts the server on port 0 with a fresh directory for its log and stats; returns it with its base
    /// URL (`rtsp://127.0.0.1:PORT`) and the directory.
    func startServer(_ clip: String, streams: Int, name: String) throws -> (Child, String, String) {
        try E2E.ensureClips()
        let dir = "/tmp/hw-\(name)-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let server = try Child(
            "loadgen-rtsp", E2E.tool("hallwatch-loadgen"),
            [
                "rtsp", "--media", "\(E2E.media)/\(clip)", "--port", "0", "--streams", "\(streams)", "--stats",
                dir + "/stats.json",
            ],
            logDirectory: dir)
        var url: String?
        _ = E2E.waitFor(15) {
            url = server.log.split(separator: "\n").first { $0.hasPrefix("loadgen rtsp ready ") }.map {
                String($0.dropFirst(19).dropLast(5))
            }
            return url != nil
        }
        guard let url else { throw TestFailure("loadgen rtsp did not start: \(server.log)") }
        return (server, url, dir)
    }

    /// 8 s of the 5.28 s clip: one loop boundary. Every frame's slices must be the source's, in loop order
    /// (FU-A reassembles byte for byte), at 25 fps with no decode error and nothing sent late.
    @Test func ffmpegRecordsTheLoopingStream() throws {
        let (server, base, dir) = try startServer("h264-aac.mp4", streams: 2, name: "lg-rtsp")
        defer {
            server.stop()
            try? FileManager.default.removeItem(atPath: dir)
        }
        let out = dir + "/out.mp4"
        let r = try E2E.run(
            "/usr/bin/ffmpeg",
            [
                "-nostdin", "-v", "error", "-rtsp_transport", "tcp", "-i", base + "/cam1",
                "-c", "copy", "-t", "8", "-f", "mp4", "-y", out,
            ], timeout: 30)
        #expect(r.status == 0, "ffmpeg: \(r.stderr)")
        let info = try #require(try Inspect.probe(out, "v"))
        #expect(info.codec == "h264")
        #expect(abs(info.duration - 8) < 0.3, "duration \(info.duration)")
        #expect(abs(info.frames - 200) <= 3, "frames \(info.frames)")
        #expect(try Inspect.decodeErrors(out) == 0)
        let source = try Inspect.keyframeSlices("\(E2E.media)/h264-aac.mp4", hevc: false, allFrames: true)
        let got = try Inspect.keyframeSlices(out, hevc: false, allFrames: true)
        #expect(got.count == info.frames && got.count > source.count)
        let differing = got.indices.filter { got[$0] != source[$0 % source.count] }
        #expect(differing.isEmpty, "frames \(differing.prefix(5)) differ from the source's")
        let stats =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/stats.json")))
            as? [String: Any]
        #expect(stats?["packetsLate"] as? Int == 0)
    }

    /// Unknown path → 404; UDP transport → 461; an oversized request → 400 and the connection closed.
    @Test func refusesWhatItDoesNotServe() throws {
        let (server, base, dir) = try startServer("hevc.mp4", streams: 2, name: "lg-rtsp-refuse")
        defer {
            server.stop()
            try? FileManager.default.removeItem(atPath: dir)
        }
        let port = UInt16(base.split(separator: ":").last!)!
        #expect(try exchange(port, "DESCRIBE \(base)/cam2 RTSP/1.0\r\nCSeq: 1\r\n\r\n").hasPrefix("RTSP/1.0 404"))
        let describe = try exchange(port, "DESCRIBE \(base)/cam1 RTSP/1.0\r\nCSeq: 2\r\n\r\n")
        #expect(
            describe.hasPrefix("RTSP/1.0 200") && describe.contains("a=rtpmap:96 H265/90000")
                && describe.contains("sprop-sps="))
        let udp =
            "SETUP \(base)/cam0/trackID=0 RTSP/1.0\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n"
        #expect(try exchange(port, udp).hasPrefix("RTSP/1.0 461"))
        let huge = "OPTIONS * RTSP/1.0\r\nX-Pad: " + String(repeating: "a", count: 9000) + "\r\n\r\n"
        #expect(try exchange(port, huge).hasPrefix("RTSP/1.0 400"))
    }

    /// Sends `request` on a new connection and returns what the server wrote until it paused for 300 ms
    /// or closed.
    func exchange(_ port: UInt16, _ request: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let c = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard c == 0 else { throw TestFailure("connect to \(port) failed") }
        var timeout = timeval(tv_sec: 0, tv_usec: 300_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        _ = Array(request.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { break }
            reply += chunk[..<n]
        }
        return String(decoding: reply, as: UTF8.self)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
