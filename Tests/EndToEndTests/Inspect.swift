import CFFmpeg
import Foundation
import Testing

@testable import HallwatchMedia

/// Reading recorded and exported files back, independently of the code that wrote them where possible
/// (ffprobe), and with libavformat's demuxer where we need the raw samples.
enum Inspect {
    struct StreamInfo {
        var codec: String
        var width: Int
        var height: Int
        var frames: Int
        var duration: Double
        var fps: Double
    }

    /// ffprobe's view of the first stream of `type` (`v` or `a`); counts frames by reading packets.
    static func probe(_ path: String, _ type: String) throws -> StreamInfo? {
        let r = try E2E.run(
            "/usr/bin/ffprobe",
            [
                "-v", "error", "-select_streams", "\(type):0", "-count_packets",
                "-show_entries", "stream=codec_name,width,height,nb_read_packets,duration,avg_frame_rate",
                "-of", "default=noprint_wrappers=1", path,
            ])
        guard r.status == 0 else {
            Issue.record("ffprobe failed on \(path): \(r.stderr)")
            return nil
        }
        var kv: [String: String] = [:]
        for line in r.stdout.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { kv[parts[0]] = parts[1] }
        }
        guard let codec = kv["codec_name"] else { return nil }
        let rate = (kv["avg_frame_rate"] ?? "0/1").split(separator: "/").compactMap { Double($0) }
        return StreamInfo(
            codec: codec, width: Int(kv["width"] ?? "") ?? 0, height: Int(kv["height"] ?? "") ?? 0,
            frames: Int(kv["nb_read_packets"] ?? "") ?? 0, duration: Double(kv["duration"] ?? "") ?? 0,
            fps: rate.count == 2 && rate[1] > 0 ? rate[0] / rate[1] : 0)
    }

    /// Decodes the whole file with ffmpeg; returns the number of decode errors reported.
    static func decodeErrors(_ path: String) throws -> Int {
        let r = try E2E.run("/usr/bin/ffmpeg", ["-v", "error", "-i", path, "-f", "null", "-"], timeout: 300)
        return r.stderr.split(separator: "\n").count + (r.status == 0 ? 0 : 1)
    }

    /// The VCL NAL units (slices; parameter sets, SEI and AUDs aside) of every keyframe in an MP4, each
    /// keyframe as a list of NAL payloads without their length prefixes.
    static func keyframeSlices(_ path: String, hevc: Bool, allFrames: Bool = false) throws -> [[[UInt8]]] {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let reader = try MP4Demuxer(MemoryByteSource(bytes))
        var video = 0
        for i in 0..<reader.streamCount where reader.stream(i).pointee.codecpar.pointee.codec_type == AVMEDIA_TYPE_VIDEO
        {
            video = i
            break
        }
        var out: [[[UInt8]]] = []
        let p = Packet()
        while try reader.read(into: p) {
            guard p.streamIndex == video, p.isKey || allFrames else { continue }
            let d = Array(p.data)
            var i = 0
            var nals: [[UInt8]] = []
            while i + 4 <= d.count {
                let n = Int(d[i]) << 24 | Int(d[i + 1]) << 16 | Int(d[i + 2]) << 8 | Int(d[i + 3])
                i += 4
                guard n > 0, i + n <= d.count else {
                    Issue.record("bad NAL length in \(path)")
                    return out
                }
                // Compared exactly: the capture worker trims trailing_zero_8bits (H.265 over RTP arrives with
                // one), so a recorded NAL unit is the source's byte for byte.
                let nal = Array(d[i..<i + n])
                let type = hevc ? Int(nal[0] >> 1) & 0x3F : Int(nal[0]) & 0x1F
                let vcl = hevc ? type < 32 : (type >= 1 && type <= 5)
                if vcl { nals.append(nal) }
                i += n
            }
            out.append(nals)
        }
        return out
    }
}
