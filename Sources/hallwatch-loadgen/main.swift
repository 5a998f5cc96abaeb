// hallwatch-loadgen: a benchmark tool, not part of the appliance. It stands in for the processes around the
// one being measured — both ends of the recorder's data plane (HallwatchCore.DataPlane) and the cameras — so
// `make bench` can measure each side alone:
//   sink  — stands in for the recorder: accepts capture workers' connections, reads and discards their frames,
//           counts fragments and sequence gaps per camera, and can save one camera's frames as a fixture;
//   feed  — stands in for N capture workers: replays saved frames over N connections at each stream's real
//           rate and measures how late each fragment gets through (the recorder's backlog);
//   rtsp  — stands in for N cameras: serves one file, pre-packetised once into RTP, to any number of RTSP
//           clients from one thread, so the camera side costs little next to what it feeds;
//   live  — stands in for the web's live subscriptions: subscribes to N cameras on the recorder's live tap
//           (so their capture workers send per-frame chunks), reads and discards what comes, counts it.
import ArgumentParser
import Foundation
import HallwatchCore

struct LoadGen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hallwatch-loadgen",
        abstract:
            "Benchmark tool: a discarding data-plane sink, a feeder of N synthetic fragment streams, a cheap RTSP camera, and N live-tap subscribers.",
        subcommands: [Sink.self, Feed.self, RTSPCameras.self, Live.self])
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

LoadGen.main()
