import Foundation
import HallwatchCore
import Testing

@testable import HallwatchConfig

/// The `map:` section: floors with real image files (the demo's SVGs, PNG and JPEG written here), pins that
/// must name configured cameras and floors and lie inside the image.
@Suite("Map configuration")
struct MapConfigTests {
    /// The repository's `Image/demo` directory (the demo school's floor plans).
    static var demo: String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Image/demo").path
    }

    static func document(_ map: String) -> String {
        """
        box: b
        cameras:
          - { id: lobby, name: Main lobby, source: rtsp://h/1 }
          - { id: gym, source: rtsp://h/2 }
        map:
        \(map)
        """
    }

    static func problems(_ text: String) -> [String] {
        do {
            _ = try ConfigLoader.parse(text, file: "m.yaml")
            return []
        } catch let e as ConfigError {
            return e.diagnostics.map(\.description)
        } catch { return ["\(error)"] }
    }

    /// A temporary directory holding `files` (name → bytes).
    static func directory(_ files: [String: [UInt8]]) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mapcfg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, bytes) in files {
            #expect(FileManager.default.createFile(atPath: dir + "/" + name, contents: Data(bytes)))
        }
        return dir
    }

    @Test func absentByDefault() throws {
        #expect(try ConfigLoader.parse("box: b\n").map == nil)
    }

    @Test func theDemoMapLoadsWithDefaults() throws {
        let c = try ConfigLoader.parse(
            Self.document(
                """
                  floors:
                    - { id: ground, image: \(Self.demo)/school-ground.svg }
                    - { id: upper, name: Upper floor, level: 1, image: \(Self.demo)/school-upper.svg }
                  cameras:
                    - { camera: lobby, floor: ground, x: 505, y: 465, direction: 225, angle: 70 }
                    - { camera: gym, floor: ground, x: 1200, y: 800 }
                  doors:
                    - { id: main-entrance, floor: ground, x: 425, y: 676 }
                """))
        let map = try #require(c.map)
        #expect(map.floors.map(\.id) == ["ground", "upper"])
        #expect(map.floors[0].name == "ground" && map.floors[0].level == 0)
        #expect(map.floors[1].name == "Upper floor" && map.floors[1].level == 1)
        #expect(
            map.cameras[0]
                == {
                    var p = MapCameraPin(camera: CameraID("lobby")!, floor: "ground", x: 505, y: 465)
                    p.direction = 225
                    p.angle = 70
                    return p
                }())
        #expect(map.cameras[1].direction == 0 && map.cameras[1].angle == 90)
        #expect(map.doors == [MapDoorPin(id: "main-entrance", floor: "ground", x: 425, y: 676)])
        let image = try FloorImage.read(path: Self.demo + "/school-ground.svg")
        #expect(image.kind == .svg && image.width == 1200 && image.height == 800)
    }

    @Test func everyBadReferenceIsReportedAtItsLine() throws {
        let p = Self.problems(
            Self.document(
                """
                  floors:
                    - { id: ground, image: \(Self.demo)/school-ground.svg }
                    - { id: ground, image: \(Self.demo)/school-upper.svg }
                    - { id: attic, image: \(Self.demo)/missing.svg }
                    - { id: cellar, image: relative/plan.png }
                  cameras:
                    - { camera: nowhere, floor: ground, x: 1, y: 1 }
                    - { camera: lobby, floor: roof, x: 1, y: 1 }
                    - { camera: gym, floor: ground, x: 1201, y: 801 }
                    - { camera: gym, floor: ground, x: 5, y: 5 }
                  doors:
                    - { id: d1, floor: ground, x: 1, y: 1 }
                    - { id: d1, floor: basement, x: 1, y: 1 }
                """))
        #expect(
            p == [
                "m.yaml:8: map.floors.[1].id: duplicate floor id 'ground'",
                "m.yaml:9: map.floors.[2].image: no image file at \(Self.demo)/missing.svg",
                "m.yaml:10: map.floors.[3].image: expected an absolute path to the floor's image, got \"relative/plan.png\"",
                "m.yaml:12: map.cameras.[0].camera: no camera 'nowhere' in cameras",
                "m.yaml:13: map.cameras.[1].floor: no floor 'roof' in map.floors (have: ground, ground, attic, cellar)",
                "m.yaml:14: map.cameras.[2].x: x 1201 is outside the floor's image (width 1200)",
                "m.yaml:14: map.cameras.[2].y: y 801 is outside the floor's image (height 800)",
                "m.yaml:15: map.cameras.[3].camera: camera 'gym' is pinned twice",
                "m.yaml:18: map.doors.[1].id: duplicate door id 'd1'",
                "m.yaml:18: map.doors.[1].floor: no floor 'basement' in map.floors (have: ground, ground, attic, cellar)",
            ], "\(p)")
    }

    @Test func schemaRefusesOutOfRangeValuesAndMissingKeys() throws {
        let p = Self.problems(
            Self.document(
                """
                  floors:
                    - { id: Ground!, level: 300 }
                  cameras:
                    - { camera: lobby, floor: ground, x: -1, y: 20001, direction: 360, angle: 0, tilt: 3 }
                """))
        #expect(
            p.contains(
                "m.yaml:7: map.floors.[0].id: expected 1-32 characters a-z, 0-9, '-' or '_' (not starting with '-' or '_'), got \"Ground!\""
            ))
        #expect(p.contains("m.yaml:7: map.floors.[0].level: expected -10 to 200, got 300"))
        #expect(p.contains("m.yaml:7: map.floors.[0].image: required key is missing"))
        #expect(p.contains("m.yaml:9: map.cameras.[0].x: expected 0 to 20000, got -1"))
        #expect(p.contains("m.yaml:9: map.cameras.[0].direction: expected 0 to 359, got 360"))
        #expect(p.contains("m.yaml:9: map.cameras.[0].angle: expected 1 to 360, got 0"))
        #expect(p.contains { $0.hasPrefix("m.yaml:9: unknown key 'tilt' in map.cameras.[0]") })
        #expect(Self.problems("box: b\nmap: {}\n") == ["m.yaml:2: map.floors: required key is missing"])
        #expect(Self.problems("box: b\nmap:\n  floors: []\n") == ["m.yaml:3: map.floors: expected at least one floor"])
    }

    @Test func imagesAreRecognisedByTheirBytesAndMeasured() throws {
        // PNG: signature, IHDR of 640×480.
        let png: [UInt8] =
            [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
            + [0, 0, 2, 0x80, 0, 0, 1, 0xE0, 8, 2, 0, 0, 0]
        // JPEG: SOI, an APP0 segment, SOF0 with height 300 and width 400.
        let jpeg: [UInt8] =
            [
                0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC0, 0, 11, 8, 0x01, 0x2C, 0x01, 0x90, 1, 1, 0x11, 0, 0xFF,
                0xD9,
            ]
        let dir = try Self.directory([
            "plan.png": png, "plan.jpg": jpeg, "named.png": Array("not a picture".utf8),
            "view.svg": Array("<?xml version=\"1.0\"?>\n<!-- c -->\n<svg viewBox=\"0 0 800.4 600\"></svg>".utf8),
            "script.svg": Array("<svg width=\"10\" height=\"10\"><script>alert(1)</script></svg>".utf8),
            "handler.svg": Array("<svg width=\"10\" height=\"10\" onload = \"x()\"></svg>".utf8),
            "huge.svg": Array("<svg width=\"30000px\" height=\"10\"></svg>".utf8),
            "external.svg": Array(
                "<svg width=\"10\" height=\"10\"><image xlink:href = 'https://tracker.example/p.png'/></svg>".utf8),
            "css.svg": Array("<svg width=\"10\" height=\"10\"><rect style=\"fill: url( http://x/y )\"/></svg>".utf8),
            "entity.svg": Array("<?xml version=\"1.0\"?><!DOCTYPE svg [<!ENTITY a \"aaaa\">]><svg width=\"1\"/>".utf8),
            "inside.svg": Array(
                "<svg width=\"10\" height=\"10\"><use href=\"#room\"/><rect fill=\"url(#g)\"/><image href=\"data:image/png;base64,AA\"/></svg>"
                    .utf8),
        ])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = try FloorImage.read(path: dir + "/plan.png")
        #expect(p.kind == .png && p.width == 640 && p.height == 480 && p.kind.mediaType == "image/png")
        let j = try FloorImage.read(path: dir + "/plan.jpg")
        #expect(j.kind == .jpeg && j.width == 400 && j.height == 300)
        let s = try FloorImage.read(path: dir + "/view.svg")
        #expect(s.kind == .svg && s.width == 800 && s.height == 600)
        func problem(_ name: String) -> String {
            do {
                _ = try FloorImage.read(path: dir + "/" + name)
                return "accepted"
            } catch let e as FloorImage.Problem {
                #expect(e.stableCode == "map.image")
                return e.message
            } catch { return "\(error)" }
        }
        #expect(problem("named.png") == "\(dir)/named.png is not a PNG, JPEG or SVG image")
        #expect(problem("script.svg") == "\(dir)/script.svg: an SVG floor plan may not hold <script…")
        #expect(problem("handler.svg") == "\(dir)/handler.svg: an SVG floor plan may not hold on…")
        #expect(problem("huge.svg") == "\(dir)/huge.svg: cannot read the picture's size")
        #expect(problem("external.svg") == "\(dir)/external.svg: an SVG floor plan may not hold an external href…")
        #expect(problem("css.svg") == "\(dir)/css.svg: an SVG floor plan may not hold an external url(…")
        #expect(problem("entity.svg") == "\(dir)/entity.svg: an SVG floor plan may not hold <!entity…")
        // References inside the file (fragments, data: URLs) are a floor plan's own business.
        #expect(try FloorImage.read(path: dir + "/inside.svg").width == 10)
        #expect(problem("nothing.png") == "no image file at \(dir)/nothing.png")
    }

    /// The example's `map:` block (commented out there, as its images live on a box) loads once uncommented with
    /// the demo's floor plans in place of `/etc/hallwatch/map`.
    @Test func theExampleMapLoads() throws {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        let text = try String(
            contentsOfFile: url.appendingPathComponent("Image/hallwatch.example.yaml").path, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let start = try #require(lines.firstIndex(of: "#map:"))
        let uncommented = lines[start...].map { $0.hasPrefix("#") ? String($0.dropFirst()) : String($0) }
        let document = (lines[..<start].map(String.init) + uncommented).joined(separator: "\n")
            .replacingOccurrences(of: "/etc/hallwatch/map", with: Self.demo)
        let c = try ConfigLoader.parse(document)
        let map = try #require(c.map)
        #expect(map.floors.count == 2 && map.cameras.map(\.camera.rawValue) == ["lobby", "gym-east"])
        #expect(map.doors.map(\.id) == ["main-entrance"])
    }
}
