import ArgumentParser
import Foundation
import HallwatchCore
import HallwatchDataPlane
import Synchronization

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

    func loadFrames() throws -> (MediaSegment, [MediaSegment]) {
        guard let data = FileManager.default.contents(atPath: frames) else {
            throw ValidationError("cannot read \(frames)")
        }
        let out: [MediaSegment]
        do { out = try SegmentFile.decode([UInt8](data)) } catch {
            throw ValidationError("\(frames): \(error) (made by an older loadgen? delete it to record it again)")
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
        let socket = self.socket
        let streams = self.streams
        let prefix = cameraPrefix
        for i in 0..<streams {
            group.enter()
            let t = Thread {
                defer { group.leave() }
                let id = "\(prefix)-" + String(repeating: "0", count: max(0, 4 - String(i + 1).count)) + String(i + 1)
                let offsetNanos = UInt64(i) * 1_000_000_000 / UInt64(streams)
                Feed.stream(
                    id: id, run: baseRun + UInt64(i), socket: socket, initFrame: initFrame, fragments: fragments,
                    t0: startNanos + offsetNanos, runStart: startNanos, end: endNanos, totals: totals)
            }
            t.stackSize = 256 << 10
            t.start()
        }
        if let stats {
            let t = Thread {
                while monotonicNanos() < endNanos + 2_000_000_000 {
                    writeAtomically(
                        json([
                            "fragments": totals.fragments.load(ordering: .relaxed),
                            "bytes": totals.bytes.load(ordering: .relaxed),
                            "maxLagMs": Double(totals.maxLagNanos.load(ordering: .relaxed)) / 1e6,
                        ]), to: stats)
                    usleep(100_000)
                }
            }
            t.start()
        }
        group.wait()
        let samples = totals.samples.withLock { $0 }.sorted { $0.0 < $1.0 }
        func pct(_ xs: [UInt64], _ p: Double) -> Double {
            guard !xs.isEmpty else { return 0 }
            let s = xs.sorted()
            return Double(s[min(s.count - 1, Int(Double(s.count - 1) * p))]) / 1e6
        }
        let lags = samples.map(\.1)
        let sends = samples.map(\.2)
        let third = seconds / 3
        let firstThird = samples.filter { $0.0 < third }.map(\.1)
        let lastThird = samples.filter { $0.0 >= 2 * third }.map(\.1)
        let errors = totals.errors.withLock { $0 }
        let fragmentsSent = totals.fragments.load(ordering: .relaxed)
        let bytesSent = totals.bytes.load(ordering: .relaxed)
        print(
            json(
                [
                    "streams": streams, "seconds": seconds, "fragments": fragmentsSent, "bytes": bytesSent,
                    "fragmentsPerSecond": Double(fragmentsSent) / seconds,
                    "megabytesPerSecond": Double(bytesSent) / seconds / 1e6,
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

    static func stream(
        id: String, run: UInt64, socket: String, initFrame: MediaSegment, fragments: [MediaSegment],
        t0: UInt64, runStart: UInt64, end: UInt64, totals: Totals
    ) {
        var local: [(Double, UInt64, UInt64)] = []
        defer { totals.samples.withLock { $0 += local } }
        do {
            guard let cam = CameraID(id) else { throw ValidationError("bad camera id \(id)") }
            sleepUntil(t0 - 150_000_000)
            let conn = try UnixSocket.connect(path: socket)
            let anchor = SystemClocks().utcNow().micros
            try conn.send(.hello(cam))
            var initMeta = initFrame.meta
            initMeta.run = run
            initMeta.sequence = 0
            initMeta.start90k = .zero
            initMeta.utc = UTCMicros(anchor)
            try conn.send(.segment(MediaSegment(meta: initMeta, payload: initFrame.payload)))
            var start90k: Int64 = 0
            var sequence: UInt32 = 1
            var k = 0
            while true {
                let f = fragments[k % fragments.count]
                k += 1
                let end90k = start90k + Int64(f.meta.duration90k)
                // A camera's fragment is complete (and sent) once its last frame's time has passed.
                let due = t0 + UInt64(end90k) * 100_000 / 9
                if due > end { break }
                sleepUntil(due)
                var meta = f.meta
                meta.run = run
                meta.sequence = sequence
                meta.start90k = MediaTime90k(start90k)
                meta.utc = UTCMicros(anchor + start90k * 100 / 9)
                let before = monotonicNanos()
                try conn.send(.segment(MediaSegment(meta: meta, payload: f.payload)))
                let after = monotonicNanos()
                let lag = after - due
                local.append((Double(due - runStart) / 1e9, lag, after - before))
                totals.fragments.add(1, ordering: .relaxed)
                totals.bytes.add(f.payload.count + DataPlane.headerBytes, ordering: .relaxed)
                var seen = totals.maxLagNanos.load(ordering: .relaxed)
                while lag > seen {
                    let (exchanged, original) = totals.maxLagNanos.compareExchange(
                        expected: seen, desired: lag, ordering: .relaxed)
                    if exchanged { break }
                    seen = original
                }
                start90k = end90k
                sequence += 1
            }
        } catch {
            totals.errors.withLock { $0.append("\(id): \(error)") }
        }
    }
}
