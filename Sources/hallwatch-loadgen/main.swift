// hallwatch-loadgen: a benchmark tool, not part of the appliance. It speaks the recorder's data plane
// (HallwatchCore.DataPlane) from both ends so `make bench` can measure each side alone:
//   sink  — stands in for the recorder: accepts capture workers' connections, reads and discards their frames,
//           counts fragments and sequence gaps per camera, and can save one camera's frames as a fixture;
//   feed  — stands in for N capture workers: replays saved frames over N connections at each stream's real
//           rate and measures how late each fragment gets through (the recorder's backlog).
import ArgumentParser
import Foundation
import HallwatchCore
import Synchronization

@main
struct LoadGen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallwatch-loadgen",
        abstract: "Benchmark tool: a discarding data-plane sink, and a feeder of N synthetic fragment streams.",
        subcommands: [Sink.self, Feed.self])
}

func monotonicNanos() -> UInt64 { SystemClocks().monotonicNanos() }

/// Writes `text` to `path` through a temporary file and a rename, so a reader never sees half of it.
func writeAtomically(_ text: String, to path: String) {
    let tmp = path + ".tmp"
    _ = FileManager.default.createFile(atPath: tmp, contents: Data(text.utf8))
    _ = rename(tmp, path)
}

func json(_ object: Any) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
    return String(decoding: data, as: UTF8.self)
}

// MARK: - sink

struct Sink: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accept data-plane connections, discard the frames, count them per camera.",
        discussion: """
            Every second, writes {"cameras": {ID: {"fragments", "bytes", "gaps", "connections"}}, "fragments", "bytes"} \
            to --stats. A gap is a fragment whose sequence number is not the previous one's + 1 within a run \
            (the sender dropped something). With --save, the first camera's hello-less frames (its init segment \
            and the next --save-fragments fragments) are written to FILE as data-plane frames: a replayable fixture.
            """)

    @Option(help: "Unix socket to listen on.") var socket: String
    @Option(help: "Statistics file, rewritten every second.") var stats: String?
    @Option(help: "Save the first camera's init segment and fragments here.") var save: String?
    @Option(help: "How many fragments to save.") var saveFragments = 30

    final class Counters: @unchecked Sendable {
        struct Camera { var fragments = 0; var bytes = 0; var gaps = 0; var connections = 0 }
        let cameras = Mutex<[String: Camera]>([:])
        let saver = Mutex<(owner: String?, frames: [DataPlaneFrame], done: Bool)>((nil, [], false))
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let listener = try UnixSocket.listen(path: socket, mode: 0o666)
        let counters = Counters()
        if let stats {
            let t = Thread {
                while true {
                    let snapshot = counters.cameras.withLock { $0 }
                    var cams: [String: Any] = [:]
                    for (id, c) in snapshot { cams[id] = ["fragments": c.fragments, "bytes": c.bytes, "gaps": c.gaps, "connections": c.connections] }
                    writeAtomically(json(["cameras": cams, "fragments": snapshot.values.reduce(0) { $0 + $1.fragments },
                                          "bytes": snapshot.values.reduce(0) { $0 + $1.bytes }]), to: stats)
                    sleep(1)
                }
            }
            t.start()
        }
        FileHandle.standardOutput.write(Data("loadgen sink ready \(socket)\n".utf8))
        while let conn = try UnixSocket.accept(listener) {
            let save = self.save, saveFragments = self.saveFragments
            let t = Thread { Sink.serve(conn, counters, save: save, saveFragments: saveFragments) }
            t.start()
        }
    }

    static func serve(_ conn: FileHandleFD, _ counters: Counters, save: String?, saveFragments: Int) {
        guard let hello = try? conn.receiveFrame(), hello.meta.kind == .hello else { return }
        let id = String(decoding: hello.payload, as: UTF8.self)
        counters.cameras.withLock { $0[id, default: .init()].connections += 1 }
        var last: (run: UInt64, sequence: UInt32)?
        while let frame = try? conn.receiveFrame() {
            let m = frame.meta
            if m.kind == .fragment {
                let gap = last.map { $0.run == m.run && m.sequence != $0.sequence + 1 } ?? false
                last = (m.run, m.sequence)
                counters.cameras.withLock { c in
                    c[id, default: .init()].fragments += 1
                    c[id, default: .init()].bytes += frame.payload.count
                    if gap { c[id, default: .init()].gaps += 1 }
                }
            }
            guard let save else { continue }
            let full: [DataPlaneFrame]? = counters.saver.withLock { s in
                if s.done { return nil }
                if s.owner == nil, m.kind == .initSegment { s.owner = id }
                guard s.owner == id else { return nil }
                // A new run (reconnect, codec change) restarts the fixture: it must be one continuous run.
                if m.kind == .initSegment { s.frames = [frame] } else { s.frames.append(frame) }
                if s.frames.count > saveFragments { s.done = true; return s.frames }
                return nil
            }
            if let full {
                var bytes: [UInt8] = []
                for f in full { bytes += f.encodeHeader(); bytes += f.payload }
                _ = FileManager.default.createFile(atPath: save + ".tmp", contents: Data(bytes))
                _ = rename(save + ".tmp", save)
            }
        }
    }
}

// MARK: - feed

struct Feed: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay saved frames to a recorder over N connections, each at the stream's real rate.",
        discussion: """
            Stream i connects, says hello as PREFIX-NNNN (1-based, 4 digits), sends the init segment of a run of \
            its own, then the saved fragments in a loop, restamped (sequence, start, UTC anchor) so the run is \
            continuous. Each fragment is sent when its media time has elapsed since the stream's start; the \
            streams' starts are spread evenly over the first second, as unsynchronised cameras are. The lag of a \
            fragment is the time from that moment until its last byte was accepted by the socket: a recorder \
            that keeps up holds it near zero; one that does not lets it grow. Prints a JSON summary on stdout.
            """)

    @Option(help: "The recorder's data-plane socket.") var socket: String
    @Option(help: "Saved frames (from `sink --save`).") var frames: String
    @Option(help: "Number of streams.") var streams = 1
    @Option(help: "How long to feed, seconds.") var seconds = 10.0
    @Option(help: "Camera id prefix.") var cameraPrefix = "feed"
    @Option(help: "Progress file, rewritten every 100 ms: {\"fragments\", \"bytes\", \"maxLagMs\"}.") var stats: String?

    func loadFrames() throws -> (DataPlaneFrame, [DataPlaneFrame]) {
        guard let data = FileManager.default.contents(atPath: frames) else { throw ValidationError("cannot read \(frames)") }
        let bytes = [UInt8](data)
        var offset = 0, out: [DataPlaneFrame] = []
        while offset + DataPlane.headerBytes <= bytes.count {
            let (meta, length) = try DataPlaneFrame.decodeHeader(Array(bytes[offset..<offset + DataPlane.headerBytes]))
            offset += DataPlane.headerBytes
            guard offset + length <= bytes.count else { throw ValidationError("\(frames) ends inside a frame") }
            out.append(DataPlaneFrame(meta: meta, payload: Array(bytes[offset..<offset + length])))
            offset += length
        }
        guard let first = out.first, first.meta.kind == .initSegment, out.count > 1,
              out.dropFirst().allSatisfy({ $0.meta.kind == .fragment && $0.meta.duration90k > 0 })
        else { throw ValidationError("\(frames) must hold one init segment then fragments") }
        return (first, Array(out.dropFirst()))
    }

    final class Totals: @unchecked Sendable {
        let fragments = Atomic<Int>(0)
        let bytes = Atomic<Int>(0)
        let maxLagNanos = Atomic<UInt64>(0)
        let errors = Mutex<[String]>([])
        /// (seconds since start, lag ns, send ns) per fragment, merged at the end.
        let samples = Mutex<[(Double, UInt64, UInt64)]>([])
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let (initFrame, fragments) = try loadFrames()
        let totals = Totals()
        let startNanos = monotonicNanos() + 200_000_000
        let endNanos = startNanos + UInt64(seconds * 1e9)
        let baseRun = UInt64(SystemClocks().utcNow().micros)
        let group = DispatchGroup()
        let socket = self.socket, streams = self.streams, prefix = cameraPrefix
        for i in 0..<streams {
            group.enter()
            let t = Thread {
                defer { group.leave() }
                let id = "\(prefix)-" + String(repeating: "0", count: max(0, 4 - String(i + 1).count)) + String(i + 1)
                let offsetNanos = UInt64(i) * 1_000_000_000 / UInt64(streams)
                Feed.stream(id: id, run: baseRun + UInt64(i), socket: socket, initFrame: initFrame, fragments: fragments,
                            t0: startNanos + offsetNanos, runStart: startNanos, end: endNanos, totals: totals)
            }
            t.stackSize = 256 << 10
            t.start()
        }
        if let stats {
            let t = Thread {
                while monotonicNanos() < endNanos + 2_000_000_000 {
                    writeAtomically(json(["fragments": totals.fragments.load(ordering: .relaxed), "bytes": totals.bytes.load(ordering: .relaxed),
                                          "maxLagMs": Double(totals.maxLagNanos.load(ordering: .relaxed)) / 1e6]), to: stats)
                    usleep(100_000)
                }
            }
            t.start()
        }
        group.wait()
        let samples = totals.samples.withLock { $0 }.sorted { $0.0 < $1.0 }
        func pct(_ xs: [UInt64], _ p: Double) -> Double {
            guard !xs.isEmpty else { return 0 }
            let s = xs.sorted(); return Double(s[min(s.count - 1, Int(Double(s.count - 1) * p))]) / 1e6
        }
        let lags = samples.map(\.1), sends = samples.map(\.2)
        let third = seconds / 3
        let firstThird = samples.filter { $0.0 < third }.map(\.1), lastThird = samples.filter { $0.0 >= 2 * third }.map(\.1)
        let errors = totals.errors.withLock { $0 }
        let fragmentsSent = totals.fragments.load(ordering: .relaxed), bytesSent = totals.bytes.load(ordering: .relaxed)
        print(json([
            "streams": streams, "seconds": seconds, "fragments": fragmentsSent, "bytes": bytesSent,
            "fragmentsPerSecond": Double(fragmentsSent) / seconds, "megabytesPerSecond": Double(bytesSent) / seconds / 1e6,
            "lagMs": ["p50": pct(lags, 0.5), "p99": pct(lags, 0.99), "max": pct(lags, 1)],
            "lagMedianFirstThirdMs": pct(firstThird, 0.5), "lagMedianLastThirdMs": pct(lastThird, 0.5),
            "lagMaxLastThirdMs": pct(lastThird, 1),
            "sendMs": ["p50": pct(sends, 0.5), "p99": pct(sends, 0.99), "max": pct(sends, 1)],
            "errors": errors.count, "firstErrors": Array(errors.prefix(3)),
        ] as [String: Any]))
    }

    static func sleepUntil(_ nanos: UInt64) {
        var ts = timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
    }

    static func stream(id: String, run: UInt64, socket: String, initFrame: DataPlaneFrame, fragments: [DataPlaneFrame],
                       t0: UInt64, runStart: UInt64, end: UInt64, totals: Totals) {
        var local: [(Double, UInt64, UInt64)] = []
        defer { totals.samples.withLock { $0 += local } }
        do {
            guard let cam = CameraID(id) else { throw ValidationError("bad camera id \(id)") }
            sleepUntil(t0 - 150_000_000)
            let conn = try UnixSocket.connect(path: socket)
            let anchor = SystemClocks().utcNow().micros
            try conn.send(.hello(cam))
            var initMeta = initFrame.meta
            initMeta.run = run; initMeta.sequence = 0; initMeta.start90k = .zero; initMeta.utc = UTCMicros(anchor)
            try conn.send(DataPlaneFrame(meta: initMeta, payload: initFrame.payload))
            var start90k: Int64 = 0
            var sequence: UInt32 = 1
            var k = 0
            while true {
                let f = fragments[k % fragments.count]; k += 1
                let end90k = start90k + Int64(f.meta.duration90k)
                // A camera's fragment is complete (and sent) once its last frame's time has passed.
                let due = t0 + UInt64(end90k) * 100_000 / 9
                if due > end { break }
                sleepUntil(due)
                var meta = f.meta
                meta.run = run; meta.sequence = sequence; meta.start90k = MediaTime90k(start90k)
                meta.utc = UTCMicros(anchor + start90k * 100 / 9)
                let before = monotonicNanos()
                try conn.send(DataPlaneFrame(meta: meta, payload: f.payload))
                let after = monotonicNanos()
                let lag = after - due
                local.append((Double(due - runStart) / 1e9, lag, after - before))
                totals.fragments.add(1, ordering: .relaxed)
                totals.bytes.add(f.payload.count + DataPlane.headerBytes, ordering: .relaxed)
                var seen = totals.maxLagNanos.load(ordering: .relaxed)
                while lag > seen {
                    let (exchanged, original) = totals.maxLagNanos.compareExchange(expected: seen, desired: lag, ordering: .relaxed)
                    if exchanged { break }
                    seen = original
                }
                start90k = end90k; sequence += 1
            }
        } catch {
            totals.errors.withLock { $0.append("\(id): \(error)") }
        }
    }
}
