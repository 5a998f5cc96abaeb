import ArgumentParser
import Foundation
import HallwatchCore
import HallwatchDataPlane
import Synchronization

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
        struct Camera {
            var fragments = 0
            var bytes = 0
            var gaps = 0
            var connections = 0
        }
        let cameras = Mutex<[String: Camera]>([:])
        let connected = ConnectedCameras()
        let saver = Mutex<(owner: String?, frames: [MediaSegment], done: Bool)>((nil, [], false))
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
                    for (id, c) in snapshot {
                        cams[id] = [
                            "fragments": c.fragments, "bytes": c.bytes, "gaps": c.gaps, "connections": c.connections,
                        ]
                    }
                    writeAtomically(
                        json([
                            "cameras": cams, "fragments": snapshot.values.reduce(0) { $0 + $1.fragments },
                            "bytes": snapshot.values.reduce(0) { $0 + $1.bytes },
                        ]), to: stats)
                    sleep(1)
                }
            }
            t.start()
        }
        FileHandle.standardOutput.write(Data("loadgen sink ready \(socket)\n".utf8))
        while let conn = try UnixSocket.accept(listener) {
            let save = self.save
            let saveFragments = self.saveFragments
            let t = Thread { Sink.serve(conn, counters, save: save, saveFragments: saveFragments) }
            t.start()
        }
    }

    static func serve(_ conn: FileHandleFD, _ counters: Counters, save: String?, saveFragments: Int) {
        // The recorder's own receiver (P2, P3): any camera id is welcome, one connection per camera.
        guard let receiver = try? DataPlaneReceiver(conn, isKnown: { _ in true }, cameras: counters.connected) else {
            return
        }
        let id = receiver.camera.rawValue
        counters.cameras.withLock { $0[id, default: .init()].connections += 1 }
        var last: (run: UInt64, sequence: UInt32)?
        while let frame = try? receiver.next() {
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
            let full: [MediaSegment]? = counters.saver.withLock { s in
                if s.done { return nil }
                if s.owner == nil, m.kind == .initSegment { s.owner = id }
                guard s.owner == id else { return nil }
                // A new run (reconnect, codec change) restarts the fixture: it must be one continuous run.
                if m.kind == .initSegment { s.frames = [frame] } else { s.frames.append(frame) }
                if s.frames.count > saveFragments {
                    s.done = true
                    return s.frames
                }
                return nil
            }
            if let full {
                _ = FileManager.default.createFile(atPath: save + ".tmp", contents: Data(SegmentFile.encode(full)))
                _ = rename(save + ".tmp", save)
            }
        }
    }
}
