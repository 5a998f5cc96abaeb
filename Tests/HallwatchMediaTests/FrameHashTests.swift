import Foundation
import Testing

@testable import HallwatchMedia

/// The test clips (`make clips`).
private let frameHashClips =
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path + "/.media"

/// ``FrameHash`` equals stock `ffmpeg -f framehash -hash sha256` on the test clips in `.media`, along both of
/// its paths: a one-stream file's packet lines printed with swift-crypto's SHA-256 (from a path and from a
/// ``SeekableByteSource``), and a file of video and audio through libavformat's `framehash` muxer itself.
@Suite(
    "Framehash equals stock ffmpeg's",
    .enabled(
        if: ["h264-bframes.mp4", "hevc.mp4", "h264-aac.mp4"].allSatisfy {
            FileManager.default.fileExists(atPath: frameHashClips + "/" + $0)
        }, "no clips in .media (make clips)"))
struct FrameHashTests {
    static let media = frameHashClips

    /// What `/usr/bin/ffmpeg` prints for every stream of `path`.
    static func stock(_ path: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        p.arguments = [
            "-v", "error", "-i", path, "-map", "0", "-c", "copy", "-fflags", "+bitexact", "-f", "framehash", "-hash",
            "sha256", "-",
        ]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        return String(decoding: data, as: UTF8.self)
    }

    @Test func oneStreamFilesArePrintedAsTheMuxerPrintsThem() throws {
        for name in ["h264-bframes.mp4", "hevc.mp4"] {
            // The clip's video alone (h264-bframes.mp4 carries no audio; this also makes sure of it).
            let copy = FileManager.default.temporaryDirectory.path + "/framehash-\(UUID().uuidString.prefix(8)).mp4"
            defer { try? FileManager.default.removeItem(atPath: copy) }
            let cut = Process()
            cut.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
            cut.arguments = ["-v", "error", "-i", Self.media + "/" + name, "-map", "0:v", "-c", "copy", copy]
            try cut.run()
            cut.waitUntilExit()
            #expect(cut.terminationStatus == 0)
            let expected = try Self.stock(copy)
            let lines = expected.split(separator: "\n").filter { !$0.hasPrefix("#") }
            #expect(lines.count > 50, "\(name): \(lines.count) packets")
            let fromPath = try FrameHash.compute(path: copy)
            #expect(fromPath.text == expected, "\(name)")
            #expect(fromPath.videoFrames == lines.count)
            let bytes = try #require(FileManager.default.contents(atPath: copy))
            let fromSource = try FrameHash.compute(source: MemoryByteSource([UInt8](bytes)))
            #expect(fromSource == fromPath, "\(name)")
        }
    }

    @Test func videoAndAudioGoThroughTheMuxer() throws {
        let path = Self.media + "/h264-aac.mp4"
        let expected = try Self.stock(path)
        #expect(expected.contains("#media_type 1: audio"))
        let ours = try FrameHash.compute(path: path)
        #expect(ours.text == expected)
        // Written to a file instead of kept: the same text.
        let out = FileManager.default.temporaryDirectory.path + "/framehash-\(UUID().uuidString.prefix(8)).txt"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let bytes = try #require(FileManager.default.contents(atPath: path))
        let toFile = try FrameHash.compute(source: MemoryByteSource([UInt8](bytes)), textPath: out)
        #expect(toFile.text.isEmpty && toFile.videoFrames == ours.videoFrames)
        #expect(try String(contentsOfFile: out, encoding: .utf8) == expected)
    }
}
