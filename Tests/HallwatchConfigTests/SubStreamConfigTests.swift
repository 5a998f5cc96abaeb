import Foundation
import HallwatchCore
import Testing

@testable import HallwatchConfig

@Suite("Sub streams (cameras[].subStream)")
struct SubStreamConfigTests {
    static let base = """
        box: lincoln-es
        retention:
          maxAge: 30d
          minAge: 2h
        cameras:
          - id: lobby
            name: Front lobby
            source: rtsp://10.1.2.3/main
            transport: udp
            audio: true
            username: viewer
            passwordFile: /etc/hallwatch/secrets/lobby
            subStream:
              source: rtsp://10.1.2.3/sub
          - id: gym
            source: rtsp://10.1.2.4/main
            retention:
              maxAge: 1d
              minAge: 3h
            subStream:
              source: rtsp://10.1.2.4/sub
              retention:
                maxBytes: 1000000000
          - id: office
            source: rtsp://10.1.2.5/main
            subStream:
              source: rtsp://10.1.2.5/sub
              retention:
                maxAge: 12h
                minAge: 1h

        """

    static func diagnostics(_ text: String) -> [ConfigDiagnostic] {
        do {
            _ = try ConfigLoader.parse(text)
            return []
        } catch let e as ConfigError { return e.diagnostics } catch { return [] }
    }

    @Test func aSubStreamIsAStreamOfItsOwnWithItsCamerasSettings() throws {
        let c = try ConfigLoader.parse(Self.base)
        #expect(c.camera(CameraID("lobby")!)?.subStream == SubStreamConfig(source: "rtsp://10.1.2.3/sub"))
        let sub = try #require(c.camera(CameraID("lobby/sub")!))
        #expect(sub.id.rawValue == "lobby/sub" && sub.id.camera.rawValue == "lobby" && sub.id.isSubStream)
        #expect(sub.name == "Front lobby (sub)" && sub.source == "rtsp://10.1.2.3/sub")
        // The camera's transport, credentials and disk; never audio, no endpoint, no sub stream of its own.
        #expect(sub.transport == .udp && sub.username == "viewer" && sub.passwordFile == "/etc/hallwatch/secrets/lobby")
        #expect(!sub.audio && sub.onvifEndpoint == nil && sub.subStream == nil)
        // Every stream to record, each camera followed by its sub stream.
        #expect(
            c.streams.map(\.id.rawValue) == ["lobby", "lobby/sub", "gym", "gym/sub", "office", "office/sub"])
        // A camera without a sub stream has no `/sub` stream; an unknown camera has neither.
        let plain = try ConfigLoader.parse("box: b\ncameras:\n  - id: hall\n    source: rtsp://h/1\n")
        #expect(plain.camera(CameraID("hall/sub")!) == nil && plain.streams.map(\.id.rawValue) == ["hall"])
        #expect(c.camera(CameraID("nope/sub")!) == nil)
    }

    @Test func subStreamRetentionDefaultsToThreeDaysAndNeverOutlivesItsCamera() throws {
        let c = try ConfigLoader.parse(Self.base)
        // Default: 3 d, the building's minAge and maxBytes.
        #expect(
            c.retentionPolicy(CameraID("lobby/sub")!)
                == RetentionPolicy(maxAge: .seconds(3 * 86_400), minAge: .seconds(7200), maxBytes: nil))
        #expect(c.retentionPolicy(CameraID("lobby")!).maxAge == .seconds(30 * 86_400))
        // A camera kept 1 d: its sub stream is not kept longer (a privacy limit), minAge clamped to it.
        #expect(
            c.retentionPolicy(CameraID("gym/sub")!)
                == RetentionPolicy(maxAge: .seconds(86_400), minAge: .seconds(3 * 3600), maxBytes: 1_000_000_000))
        // Its own keys win.
        #expect(
            c.retentionPolicy(CameraID("office/sub")!)
                == RetentionPolicy(maxAge: .seconds(12 * 3600), minAge: .seconds(3600), maxBytes: nil))
    }

    @Test func streamIDs() {
        #expect(CameraID("lobby/sub") != nil && CameraID("lobby/main") == nil && CameraID("lobby/sub/sub") == nil)
        #expect(CameraID("/sub") == nil && CameraID("-x/sub") == nil && CameraID("a/b") == nil)
        // The configuration's alphabet stays plain: a camera id never carries the suffix.
        #expect(!CameraID.isValid("lobby/sub"))
        // 32 bytes in all, the record header's camera field.
        let long = String(repeating: "a", count: 28)
        #expect(CameraID(long)?.subStream?.rawValue == long + "/sub")
        #expect(CameraID(long + "b")?.subStream == nil)
        #expect(CameraID("lobby/sub")?.subStream == nil && CameraID("lobby/sub")?.camera == CameraID("lobby"))
        // Process names stay one topic level and one file name.
        #expect(CameraID("lobby/sub")?.captureProcessName == "capture-lobby.sub")
        #expect(CameraID("lobby")?.captureProcessName == "capture-lobby")
        #expect(CameraID.capturedBy(process: "capture-lobby.sub") == CameraID("lobby/sub"))
        #expect(CameraID.capturedBy(process: "capture-lobby") == CameraID("lobby"))
        #expect(CameraID.capturedBy(process: "recorder") == nil)
        #expect(BusTopics(box: "b").cameraState(CameraID("lobby/sub")!) == "hallwatch/v1/b/camera/lobby/sub/state")
    }

    @Test func badSubStreamsAreRefusedAtTheirLines() {
        // A camera id with a /sub suffix, a sub stream with a bad URL or no source, an unknown key.
        let schema = """
            box: b
            cameras:
              - id: lobby/sub
                source: rtsp://10.1.2.3/main
              - id: gym
                source: rtsp://10.1.2.4/main
                subStream:
                  source: http://10.1.2.4/sub
                  fps: 5
              - id: hall
                source: rtsp://10.1.2.5/main
                subStream:
                  retention:
                    maxAge: 1d

            """
        let d = Self.diagnostics(schema)
        let lines = Dictionary(d.map { ($0.line, $0.message) }, uniquingKeysWith: { a, b in a + "; " + b })
        #expect(lines[3]?.contains("cameras.[0].id") == true, "\(d)")
        #expect(lines[8]?.contains("rtsp://") == true, "\(d)")
        #expect(lines[9]?.contains("unknown key 'fps'") == true, "\(d)")
        #expect(d.contains { $0.message.contains("source") && $0.line >= 12 }, "\(d)")
        // Once the schema passes: an id too long for `/sub`, the main source again, a sub minAge above its maxAge.
        let long = String(repeating: "a", count: 29)
        let consistency = """
            box: b
            cameras:
              - id: \(long)
                source: rtsp://10.1.2.3/main
                subStream:
                  source: rtsp://10.1.2.3/sub
              - id: gym
                source: rtsp://10.1.2.4/main
                subStream:
                  source: rtsp://10.1.2.4/main
              - id: hall
                source: rtsp://10.1.2.5/main
                subStream:
                  source: rtsp://10.1.2.5/sub
                  retention:
                    maxAge: 1d
                    minAge: 2d

            """
        let c = Self.diagnostics(consistency)
        #expect(c.count == 3, "\(c)")
        #expect(c.contains { $0.line == 3 && $0.message.contains("at most 28 characters") }, "\(c)")
        #expect(c.contains { $0.line == 10 && $0.message.contains("other than the camera's source") }, "\(c)")
        #expect(c.contains { $0.message.contains("cameras.[2].subStream.retention.minAge") }, "\(c)")
    }
}
