import Foundation
import Testing

@testable import HallwatchProvision

@Suite("Floor-plan images by their headers")
struct ImageCheckTests {
    /// Images made by Debian's ffmpeg: their real headers are read right.
    @Test func realImagesFromFFmpeg() throws {
        let dir = Fx.tempDir("img")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, size) in [("a.png", "640x480"), ("b.jpg", "640x480"), ("wide.png", "8200x16"), ("w.jpg", "8194x8")] {
            let r = try Fx.run([
                "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "color=c=blue:size=\(size)", "-frames:v", "1", "-y",
                "\(dir)/\(name)",
            ])
            try #require(r.status == 0, "\(r.out)")
        }
        #expect(ImageCheck.problem(name: "a.png", bytes: Fx.read("\(dir)/a.png")) == nil)
        #expect(ImageCheck.problem(name: "b.jpg", bytes: Fx.read("\(dir)/b.jpg")) == nil)
        #expect(ImageCheck.problem(name: "wide.png", bytes: Fx.read("\(dir)/wide.png"))?.contains("8200×16") == true)
        #expect(ImageCheck.problem(name: "w.jpg", bytes: Fx.read("\(dir)/w.jpg"))?.contains("8194×8") == true)
        #expect(ImageCheck.problem(name: "b.png", bytes: Fx.read("\(dir)/b.jpg"))?.contains("not a PNG") == true)
        #expect(ImageCheck.problem(name: "x.jpeg", bytes: [0xFF, 0xD8, 0xFF, 0xDA, 0, 2]) != nil)
        #expect(ImageCheck.problem(name: "notes.txt", bytes: [0]) == nil)
    }
}
