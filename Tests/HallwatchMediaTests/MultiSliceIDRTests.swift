import Foundation
import HallwatchCore
import Logging
import Testing

@testable import HallwatchMedia

/// Issue 12, case 6: an IDR of 6 slices with SPS/PPS repeated before each (GStreamer `rtph264pay
/// config-interval=-1` over a multi-slice encoder), as libavformat's UDP path hands it over: one packet per
/// slice, the later ones with generated timestamps that collide with the next pictures'. Driven through the
/// remuxer the way RTSPSource feeds it. Before: 383 frames instead of 378 and 18 "keyframes" instead of 12
/// on the independent camera; duplicate PTS.
@Suite("A multi-slice IDR split by libavformat")
struct MultiSliceIDRTests {
    @Test func eachPictureIsOneSample() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hw-slices-\(getpid()).h264").path
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("hw-slices-\(getpid()).mp4").path
        defer {
            try? FileManager.default.removeItem(atPath: path)
            try? FileManager.default.removeItem(atPath: out)
        }
        let encode = Process()
        encode.executableURL = URL(fileURLWithPath: "/bin/sh")
        encode.arguments = [
            "-c",
            "ffmpeg -nostdin -v error -f lavfi -i testsrc=size=320x240:rate=10 -t 2 -c:v libx264 -g 10 -bf 0 -x264-params slices=6 -f h264 -y \(path)",
        ]
        try encode.run()
        encode.waitUntilExit()
        let nals = ParameterSets.nalUnits(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
        let sps = try #require(nals.first { $0[0] & 0x1F == 7 })
        let pps = try #require(nals.first { $0[0] & 0x1F == 8 })
        // Pictures: a slice with first_mb_in_slice = 0 (top bit of its first header byte) starts one.
        var pictures: [[[UInt8]]] = []
        for n in nals where [1, 5].contains(n[0] & 0x1F) {
            if n[1] & 0x80 != 0 || pictures.isEmpty {
                pictures.append([n])
            } else {
                pictures[pictures.count - 1].append(n)
            }
        }
        #expect(pictures.count == 20 && pictures[0].count == 6)

        let sink = CollectingSink()
        let remuxer = try Remuxer(
            source: MuxerRefusalTests.DescribedSource(), camera: CameraID("slices")!, policy: FragmentPolicy(),
            sink: sink, logger: Logger(label: "test"))
        var packets = 0
        for (k, picture) in pictures.enumerated() {
            let idr = picture[0][0] & 0x1F == 5
            let pieces: [[[UInt8]]] = idr ? picture.map { [sps, pps, $0] } : [picture]
            for (i, piece) in pieces.enumerated() {
                let p = MuxerRefusalTests.packet(piece, key: idr)
                p.p.pointee.pts = Int64(k + i) * 9000  // genpts: the later slices look like the next pictures
                try remuxer.video(p, arrival: UTCMicros(1_800_000_000_000_000 + Int64(k) * 100_000))
                packets += 1
            }
        }
        remuxer.finish()
        #expect(packets == 30)  // 2 IDRs of 6 packets, 18 P pictures
        let fragments = sink.frames.filter { $0.meta.kind == .fragment }
        #expect(fragments.map(\.meta.duration90k) == [90_000, 90_000])
        #expect(fragments.filter(\.meta.keyframe).count == 2)
        _ = try Exporter.write([MemoryByteSource(sink.frames.flatMap(\.payload))], to: out)
        let track = try VideoTrackFile.read(path: out)
        let pts = track.samples.map(\.pts90k)
        print(
            "multi-slice IDR: \(packets) packets → \(track.samples.count) samples, \(track.samples.filter(\.isKey).count) keyframes, \(pts.count - Set(pts).count) duplicate PTS"
        )
        #expect(track.samples.count == 20 && track.samples.filter(\.isKey).count == 2 && Set(pts).count == pts.count)
    }
}
