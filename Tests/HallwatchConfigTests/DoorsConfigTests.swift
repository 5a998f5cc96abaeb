import HallwatchConfig
import HallwatchCore
import Testing

/// `doors:` (issue 16): each key read with its default, and each mistake refused at its line.
@Suite("Configuration: doors")
struct DoorsConfigTests {
    static let base = """
        box: b
        cameras:
          - {id: lobby, source: "rtsp://h/1"}
          - {id: hall, source: "rtsp://h/2"}

        """

    @Test func doorsAreReadWithTheirDefaults() throws {
        let c = try ConfigLoader.parse(
            Self.base + """
                doors:
                  - id: east
                    name: East entrance
                    refs:
                      - {source: onguard, ref: "panel1/reader3"}
                    direct: [lobby]
                    indirect: [hall]
                    preRoll: 15s
                    postRoll: 1m
                    holdOn: [door.forced, access.duress, x.lenel.tailgate]
                  - id: gym-door
                """)
        #expect(c.doors.count == 2)
        let east = try #require(c.door("east"))
        #expect(
            east.name == "East entrance" && east.direct == [CameraID("lobby")!] && east.indirect == [CameraID("hall")!])
        #expect(east.preRoll == .seconds(15) && east.postRoll == .seconds(60))
        #expect(east.holdOn == ["door.forced", "access.duress", "x.lenel.tailgate"])
        #expect(
            east.matches(source: "onguard", ref: "panel1/reader3")
                && !east.matches(source: "axis", ref: "panel1/reader3"))
        let gym = try #require(c.door("gym-door"))
        #expect(gym.name == "gym-door" && gym.direct.isEmpty && gym.refs.isEmpty && gym.holdOn.isEmpty)
        #expect(gym.preRoll == .seconds(10) && gym.postRoll == .seconds(30))
        #expect(try ConfigLoader.parse(Self.base).doors.isEmpty)
    }

    @Test func mistakesAreRefusedAtTheirLines() throws {
        let text =
            Self.base + """
                doors:
                  - id: east
                    direct: [lobby, nowhere]
                    holdOn: [door.exploded]
                  - id: east
                    preRoll: 11m
                """
        let e = try #require(throws: ConfigError.self) { try ConfigLoader.parse(text, file: "h.yaml") }
        let messages = e.diagnostics.map(\.description).joined(separator: "\n")
        #expect(messages.contains("h.yaml:10: doors.[1].preRoll"), "\(messages)")
        let schemaOnly = text.replacingOccurrences(of: "preRoll: 11m", with: "preRoll: 1m")
        let v = try #require(throws: ConfigError.self) { try ConfigLoader.parse(schemaOnly, file: "h.yaml") }
        let checks = v.diagnostics.map(\.description).joined(separator: "\n")
        #expect(checks.contains("camera 'nowhere' is not in cameras:"), "\(checks)")
        #expect(checks.contains("'door.exploded' is not an event type"), "\(checks)")
        #expect(checks.contains("duplicate door id 'east'"), "\(checks)")
    }
}
