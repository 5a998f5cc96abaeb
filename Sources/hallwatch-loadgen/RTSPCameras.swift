import ArgumentParser
import Foundation
import HallwatchMedia

/// `hallwatch-loadgen rtsp`: N cheap simulated cameras for the benchmark (README § Benchmarks, "The load
/// generators"). Reads and packetises the file (``RTPTrack``), then runs ``RTSPServer`` until killed.
struct RTSPCameras: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rtsp",
        abstract:
            "Serve one video file as N looping RTSP cameras (RTP over TCP), pre-packetised once, from one thread.",
        discussion: """
            A benchmark tool with no authentication: listen on 127.0.0.1 only. At start the file's first H.264 or \
            H.265 track is read once and cut into RTP packets (RFC 6184 / RFC 7798: single NAL unit packets and \
            fragmentation units, parameter sets in the SDP and before each keyframe) inside RTSP interleaved \
            frames, all in one buffer. Every client of rtsp://LISTEN:PORT/cam<k> (k < --streams; other paths get \
            404) gets the same payload bytes with its own sequence numbers, timestamps and SSRC patched into a \
            16-byte header copy, paced from its PLAY at the file's own rate, looping forever (each loop's \
            timestamps one loop later, sequence numbers continuing). Only RTP/AVP/TCP interleaved transport \
            (SETUP with UDP gets 461). Prints "loadgen rtsp ready rtsp://LISTEN:PORT/cam0" once listening. \
            --stats is rewritten every second: {"clients", "playing", "accepted", "clientsDropped", "bytesSent", \
            "packetsSent", "packetsLate" (written > 50 ms after due), "lateThresholdMs", "maxLateMs"}.
            """)

    @Option(help: "The MP4 (or other container) to serve.") var media: String
    @Option(help: "TCP port; 0 picks a free one (printed on the ready line).") var port = 0
    @Option(help: "Number of camera paths: /cam0 … /cam<N-1>.") var streams = 1
    @Option(help: "Address to listen on (IPv4).") var listen = "127.0.0.1"
    @Option(help: "Largest RTP packet, header included, bytes.") var mtu = 1400
    @Option(
        help:
            "How due packets reach the kernel: writev (header + shared payload iovecs) or copy (one buffer, one write)."
    )
    var send = "writev"
    @Option(help: "Send tick, milliseconds: every tick each client's due packets go out together.") var tickMs = 10
    @Option(name: .customLong("max-backlog-mib"), help: "Drop a client whose unsent due bytes exceed this many MiB.")
    var maxBacklogMiB = 4
    @Option(help: "Statistics file, rewritten every second.") var stats: String?

    func validate() throws {
        guard streams >= 1, (100...9000).contains(mtu), (1...1000).contains(tickMs), maxBacklogMiB >= 1 else {
            throw ValidationError("need --streams ≥ 1, --mtu 100…9000, --tick-ms 1…1000, --max-backlog-mib ≥ 1")
        }
        guard SendMode(rawValue: send) != nil else { throw ValidationError("--send is writev or copy") }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let track = try RTPTrack(VideoTrackFile.read(path: media), maxPacketBytes: mtu)
        var options = RTSPServer.Options()
        options.listen = listen
        options.port = port
        options.streams = streams
        options.sendMode = SendMode(rawValue: send)!
        options.tickNanos = UInt64(tickMs) * 1_000_000
        options.maxBacklogBytes = maxBacklogMiB << 20
        options.statsPath = stats
        let server = try RTSPServer(track: track, options: options)
        FileHandle.standardError.write(
            Data(
                ("loadgen rtsp: \(track.encodingName), \(track.accessUnits) access units in \(track.entries.count) "
                    + "RTP packets, \(track.bytes.count) bytes, loop \(Double(track.loopDuration90k) / 90_000) s, send \(send)\n")
                    .utf8))
        FileHandle.standardOutput.write(Data("loadgen rtsp ready rtsp://\(listen):\(server.port)/cam0\n".utf8))
        server.run()
    }
}
