import ArgumentParser
import Foundation
import HallwatchCore
import HallwatchDataPlane
import Synchronization

/// `hallwatch-loadgen live`: a stand-in for the web process's live subscriptions (HallwatchWeb's `LiveHub`),
/// so the bench can turn the live path on for N cameras without N browsers. Per camera it opens one connection
/// to the recorder's live socket (HallwatchDataPlane's `Protocol.md`, L1), sends the hello naming the camera
/// (L2), then reads the live events (L4: init segment, media, `drop`) with the same client calls as `LiveHub`
/// (``HallwatchDataPlane/LiveWire``, `FileHandleFD.receiveLive()`) and discards them, counting them. Its
/// subscription is what makes the recorder tell the camera's capture worker that someone watches (P7), so
/// the worker sends per-frame chunks (P6).
///
/// Media units are told apart by their frame kind (L4): a ``WireKind/chunk`` frame is a hand-over of per-frame
/// chunks, a ``WireKind/fragment`` frame a stored fragment the tap forwarded (before the chunks began, or while
/// they are off). One thread per camera; a connection the recorder ends is opened again after 0.5 s.
struct Live: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "live",
        abstract: "Subscribe to N cameras on a recorder's live socket, read and discard the media, count it.",
        discussion: """
            Cameras are --camera ID (repeatable) and/or --cameras N, which adds PREFIX0001 … PREFIX<N> \
            (4 digits, from 1, as the bench's configurations name them). Prints "loadgen live ready N cameras" \
            once every camera's first connection is up and its hello sent. --stats is rewritten every second: \
            {"cameras": {ID: {"units", "chunks", "fragments", "initSegments", "bytes", "drops", "skipped", \
            "connections", "errors", "lastError"}}, and the same counters summed, with "camerasWithMedia" and \
            "camerasWithChunks"}. Units are media events (chunks + fragments); bytes count headers (48 bytes) \
            and payloads of every event; drops are the recorder's drop frames (L5) and skipped the units they \
            say were skipped. A unit sent as a chunk frame (P6) is counted as a chunk.
            """)

    @Option(help: "The recorder's live socket (recorder-live.sock beside its data-plane socket).") var socket: String
    @Option(help: "Subscribe to this many cameras named PREFIX0001 … PREFIX<N>.") var cameras = 0
    @Option(help: "Prefix of the --cameras names.") var prefix = "cam-"
    @Option(name: .customLong("camera"), help: "A camera to subscribe to (repeatable).") var camera: [String] = []
    @Option(help: "Statistics file, rewritten every second.") var stats: String?

    /// How long a camera's subscriber waits for the next frame before it reconnects, seconds (as `LiveHub`).
    static let receiveTimeoutSeconds = 10

    /// What one camera's subscriber has read so far.
    struct Counts {
        var units = 0
        var chunks = 0
        var fragments = 0
        var initSegments = 0
        var bytes = 0
        var drops = 0
        var skipped = 0
        var connections = 0
        var errors = 0
        var lastError = ""

        var dictionary: [String: Any] {
            [
                "units": units, "chunks": chunks, "fragments": fragments, "initSegments": initSegments,
                "bytes": bytes, "drops": drops, "skipped": skipped, "connections": connections, "errors": errors,
                "lastError": lastError,
            ]
        }
    }

    final class Counters: Sendable {
        let cameras: Mutex<[Counts]>
        init(count: Int) { cameras = Mutex([Counts](repeating: Counts(), count: count)) }
    }

    func cameraIDs() throws -> [CameraID] {
        let named = camera + (0..<max(0, cameras)).map { prefix + String(format: "%04d", $0 + 1) }
        guard !named.isEmpty else { throw ValidationError("name cameras with --cameras N or --camera ID") }
        return try named.map { id in
            guard let c = CameraID(id) else { throw ValidationError("bad camera id \(id)") }
            return c
        }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let ids = try cameraIDs()
        let counters = Counters(count: ids.count)
        let socket = self.socket
        for (i, id) in ids.enumerated() {
            let t = Thread { Live.subscribe(id, index: i, socket: socket, counters: counters) }
            t.name = "live-\(id)"
            t.stackSize = 256 << 10
            t.start()
        }
        var ready = false
        while true {
            let snapshot = counters.cameras.withLock { $0 }
            if !ready, snapshot.allSatisfy({ $0.connections > 0 }) {
                ready = true
                FileHandle.standardOutput.write(Data("loadgen live ready \(ids.count) cameras\n".utf8))
            }
            if let stats { writeAtomically(Live.report(ids, snapshot), to: stats) }
            usleep(ready ? 1_000_000 : 100_000)
        }
    }

    /// The --stats JSON of `snapshot`, the counts of `ids` in the same order.
    static func report(_ ids: [CameraID], _ snapshot: [Counts]) -> String {
        var cams: [String: Any] = [:]
        for (id, c) in zip(ids, snapshot) { cams[id.rawValue] = c.dictionary }
        func sum(_ key: KeyPath<Counts, Int>) -> Int { snapshot.reduce(0) { $0 + $1[keyPath: key] } }
        return json([
            "cameras": cams, "units": sum(\.units), "chunks": sum(\.chunks), "fragments": sum(\.fragments),
            "initSegments": sum(\.initSegments), "bytes": sum(\.bytes), "drops": sum(\.drops),
            "skipped": sum(\.skipped), "connections": sum(\.connections), "errors": sum(\.errors),
            "camerasWithMedia": snapshot.filter { $0.units > 0 }.count,
            "camerasWithChunks": snapshot.filter { $0.chunks > 0 }.count,
        ])
    }

    /// One camera's subscriber: connect, hello (L2), read events (L4) until the recorder ends the connection
    /// or nothing came for ``receiveTimeoutSeconds``; then again after 0.5 s. Never returns.
    static func subscribe(_ id: CameraID, index: Int, socket: String, counters: Counters) {
        func count(_ update: (inout Counts) -> Void) { counters.cameras.withLock { update(&$0[index]) } }
        while true {
            do {
                let conn = try UnixSocket.connect(path: socket)
                defer { conn.close() }
                try conn.send(.hello(id))
                var tv = timeval(tv_sec: receiveTimeoutSeconds, tv_usec: 0)
                setsockopt(conn.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                count { $0.connections += 1 }
                while let event = try conn.receiveLive() {
                    switch event {
                    case .initSegment(let u):
                        count {
                            $0.initSegments += 1
                            $0.bytes += DataPlane.headerBytes + u.segment.payload.count
                        }
                    case .media(let u):
                        let chunk = u.isChunk
                        count {
                            $0.units += 1
                            if chunk { $0.chunks += 1 } else { $0.fragments += 1 }
                            $0.bytes += DataPlane.headerBytes + u.segment.payload.count
                        }
                    case .drop(let skipped):
                        count {
                            $0.drops += 1
                            $0.skipped += skipped
                            $0.bytes += DataPlane.headerBytes
                        }
                    }
                }
                count { $0.lastError = "closed by the recorder" }
            } catch {
                count {
                    $0.errors += 1
                    $0.lastError = "\(error)"
                }
            }
            usleep(500_000)
        }
    }
}
