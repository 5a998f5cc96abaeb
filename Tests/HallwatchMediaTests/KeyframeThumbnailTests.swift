import Foundation
import HallwatchMedia
import Testing

@Suite("Keyframe thumbnails (libavcodec decode, MJPEG encode)")
struct KeyframeThumbnailTests {
    /// Runs `ffmpeg` with `arguments`; returns its standard output.
    static func ffmpeg(_ arguments: [String]) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/ffmpeg")
        p.arguments = ["-hide_banner", "-loglevel", "error", "-y"] + arguments
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "ffmpeg \(arguments)")
        return data
    }

    /// A fragmented MP4 as the recorder stores runs: `size` test pattern, 25 fps, a keyframe every second.
    static func clip(size: String, codec: String, dir: String) throws -> [UInt8] {
        let path = dir + "/clip-\(codec)-\(size).mp4"
        _ = try ffmpeg([
            "-f", "lavfi", "-i", "testsrc2=size=\(size):rate=25", "-t", "2", "-c:v", codec, "-g", "25", "-bf", "2",
            "-pix_fmt", "yuv420p", "-x265-params", "log-level=error", "-movflags",
            "+frag_keyframe+empty_moov+default_base_moof", path,
        ])
        return [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    @Test(
        "a 1080p H.264 / 720p H.265 / 640x272 keyframe becomes a JPEG at most 320 px wide, a real picture",
        arguments: [
            ("1920x1080", "libx264", 320, 180), ("1280x720", "libx265", 320, 180), ("640x272", "libx264", 320, 136),
        ])
    func thumbnail(size: String, codec: String, width: Int, height: Int) throws {
        let dir = FileManager.default.temporaryDirectory.path + "/hw-thumb-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let thumb = try KeyframeThumbnail.make(
            from: MemoryByteSource(try Self.clip(size: size, codec: codec, dir: dir)))
        #expect(thumb.width == width && thumb.height == height)
        #expect(Array(thumb.jpeg.prefix(2)) == [0xFF, 0xD8] && Array(thumb.jpeg.suffix(2)) == [0xFF, 0xD9])
        #expect(thumb.jpeg.count > 2000 && thumb.jpeg.count < 100_000)
        // ffmpeg reads it back: the size we said, and a picture (testsrc2's colour bars), not a flat field.
        let file = dir + "/thumb.jpg"
        try Data(thumb.jpeg).write(to: URL(fileURLWithPath: file))
        let gray = [UInt8](try Self.ffmpeg(["-i", file, "-f", "rawvideo", "-pix_fmt", "gray", "-"]))
        #expect(gray.count == width * height)
        let mean = Double(gray.reduce(0) { $0 + Int($1) }) / Double(gray.count)
        let variance = gray.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(gray.count)
        #expect(variance.squareRoot() > 30, "a flat picture (σ \(variance.squareRoot()))")
        #expect(gray.min()! < 40 && gray.max()! > 200, "full range: black and white reach the ends")
    }

    @Test("bytes that are no MP4, or an MP4 without video, are refused with a typed error")
    func refusals() throws {
        #expect(throws: MediaError.self) {
            try KeyframeThumbnail.make(from: MemoryByteSource([UInt8](repeating: 7, count: 4096)))
        }
        let dir = FileManager.default.temporaryDirectory.path + "/hw-thumb-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try Self.ffmpeg([
            "-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", "-movflags",
            "+frag_keyframe+empty_moov", dir + "/audio.mp4",
        ])
        let audio = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/audio.mp4")))
        do {
            _ = try KeyframeThumbnail.make(from: MemoryByteSource(audio))
            Issue.record("made a picture of audio")
        } catch let e as MediaError {
            #expect(e.code == "media.thumbnail")
        }
    }
}
