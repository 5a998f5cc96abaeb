import Foundation
import HallwatchCore
import Testing

@testable import HallwatchConfig

@Suite("Retention configuration")
struct RetentionConfigTests {
    static let base = """
        box: lincoln-es
        cameras:
          - id: lobby
            source: rtsp://10.1.2.3/stream
            retention:
              maxAge: 7d
              maxBytes: 1000000000
          - id: gym
            source: rtsp://10.1.2.4/stream

        """

    @Test func defaultsWhenAbsent() throws {
        let c = try ConfigLoader.parse("box: b\n")
        #expect(c.retention == RetentionConfig())
        #expect(
            c.retention.maxAge == .seconds(30 * 86_400) && c.retention.period == .seconds(60)
                && c.retention.maxBytes == nil)
    }

    @Test func buildingDefaultsAndPerCameraOverridesWin() throws {
        let c = try ConfigLoader.parse(
            Self.base + """
                retention:
                  maxAge: 30d
                  minAge: 2h
                  maxBytes: 5000000000
                  reserve: 15m
                  reserveSlots: 3
                  period: 30s
                  maxHoldPercent: 40

                """)
        #expect(
            c.retention.reserve == .seconds(900) && c.retention.reserveSlots == 3 && c.retention.period == .seconds(30)
                && c.retention.maxHoldPercent == 40)
        let lobby = c.retentionPolicy(CameraID("lobby")!)
        #expect(lobby == RetentionPolicy(maxAge: .seconds(7 * 86_400), minAge: .seconds(7200), maxBytes: 1_000_000_000))
        let gym = c.retentionPolicy(CameraID("gym")!)
        #expect(gym == RetentionPolicy(maxAge: .seconds(30 * 86_400), minAge: .seconds(7200), maxBytes: 5_000_000_000))
        // A camera not (yet) in the configuration gets the building's defaults.
        #expect(c.retentionPolicy(CameraID("later")!) == gym)
    }

    @Test func everyProblemWithItsLine() throws {
        let text =
            Self.base + """
                retention:
                  maxAge: 2h
                  minAge: 3h
                  maxBytes: 10
                  reserve: forever
                  maxHoldPercent: 100
                  colour: red

                """
        var diagnostics: [ConfigDiagnostic] = []
        do { _ = try ConfigLoader.parse(text) } catch let e as ConfigError { diagnostics = e.diagnostics }
        let lines = Dictionary(diagnostics.map { ($0.line, $0.message) }, uniquingKeysWith: { a, b in a + "; " + b })
        #expect(lines[13]?.contains("retention.maxBytes") == true)
        #expect(lines[14]?.contains("retention.reserve") == true)
        #expect(lines[15]?.contains("retention.maxHoldPercent") == true)
        #expect(lines[16]?.contains("unknown key 'colour'") == true)
        // In the same run: minAge above maxAge.
        #expect(lines[12]?.contains("retention.minAge: expected at most maxAge (2h)") == true)
        #expect(diagnostics.count == 5, "\(diagnostics)")
        // Alone, minAge above maxAge is refused at its line (building and per camera).
        let ordering = Self.base + "retention:\n  maxAge: 2h\n  minAge: 3h\n"
        do {
            _ = try ConfigLoader.parse(ordering)
            Issue.record("accepted minAge > maxAge")
        } catch let e as ConfigError {
            #expect(e.diagnostics.map(\.line) == [12] && e.diagnostics[0].message.contains("retention.minAge"))
        }
        let camera = Self.base.replacingOccurrences(of: "maxAge: 7d", with: "maxAge: 7d\n      minAge: 8d")
        do {
            _ = try ConfigLoader.parse(camera)
            Issue.record("accepted a camera's minAge > maxAge")
        } catch let e as ConfigError {
            #expect(e.diagnostics.first?.message.contains("cameras.[0].retention.minAge") == true)
        }
    }

    @Test func durationsAreWrittenInTheirLargestUnit() {
        #expect(
            [
                RetentionPolicy.text(.seconds(7 * 86_400)), RetentionPolicy.text(.seconds(36 * 3600)),
                RetentionPolicy.text(.seconds(90)),
            ] == ["7d", "36h", "90s"])
    }
}
