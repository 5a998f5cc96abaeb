import Foundation
import HallwatchBus
import HallwatchCore
import Logging
import Testing

@testable import HallwatchStatus

/// A collector whose bus never connects: messages are fed with `take`.
func offlineCollector(_ topics: BusTopics) -> StatusCollector {
    let bus = BusClient(
        clientID: "status-test-\(getpid())", socketPath: "/nonexistent/bus.sock", will: nil,
        logger: Logger(label: "test"))
    return StatusCollector(bus: bus, topics: topics)
}

@Test("retained messages make the snapshot: configured cameras first, then others seen; topics must match")
func snapshotFromMessages() throws {
    let topics = BusTopics(box: "box1")
    let collector = offlineCollector(topics)
    let now = UTCMicros(1_800_000_000_000_000)
    let lobby = CameraID("lobby")!
    let gym = CameraID("gym")!
    var state = CameraState(camera: gym, state: .offline, at: now)
    state.reason = ErrorEvent(code: "rtsp.auth", message: "401")
    collector.take(BusMessage(topic: topics.cameraState(gym), payload: try BusCoding.encode(state), retained: true))
    // A state published on another camera's topic is ignored.
    collector.take(
        BusMessage(topic: topics.cameraState(lobby), payload: try BusCoding.encode(state), retained: true))
    collector.take(
        BusMessage(
            topic: topics.process("recorder"),
            payload: try BusCoding.encode(ProcessState(process: "recorder", state: .up, pid: 7, at: now)),
            retained: true))
    let snapshot = collector.snapshot(configured: [lobby], now: now)
    #expect(snapshot.cameras.map(\.camera) == [lobby, gym])
    #expect(snapshot.cameras[0].state == nil)
    #expect(snapshot.cameras[1].state?.reason?.code == "rtsp.auth")
    let table = snapshot.render()
    #expect(table.contains("rtsp.auth: 401"))
    #expect(table.contains("processes: recorder up (pid 7)"))
}

@Test("recent alarms: newest first, at most the capacity")
func recentAlarms() {
    let alarms = RecentAlarms(bus: nil, topics: BusTopics(box: "box1"), capacity: 3)
    for i in 1...5 { alarms.add(ErrorEvent(code: "e.\(i)", message: "")) }
    #expect(alarms.recent().map(\.code) == ["e.5", "e.4", "e.3"])
}

@Test("recent alarms: a condition repeated every second keeps one line per camera; its cause stays on the list")
func recentAlarmsCollapseRepeats() {
    let alarms = RecentAlarms(bus: nil, topics: BusTopics(box: "box1"), capacity: 5)
    alarms.add(ErrorEvent(code: "storage.vanished", message: "disk0 vanished"))
    for second in 1...30 {
        for camera in ["lobby", "gym", "hall"] {
            alarms.add(
                ErrorEvent(code: "storage.noHealthyDisk", message: "\(second)", camera: CameraID(camera)!))
        }
    }
    #expect(
        alarms.recent().map(\.code)
            == ["storage.noHealthyDisk", "storage.noHealthyDisk", "storage.noHealthyDisk", "storage.vanished"])
    #expect(alarms.recent().first?.message == "30" && alarms.recent().first?.camera == CameraID("hall"))
}

@Test("the note says what an installer must act on: the recorder refusing an online camera, a wrong camera clock, UDP")
func cameraNotes() {
    let now = UTCMicros(1_800_000_000_000_000)
    let lobby = CameraID("lobby")!
    var state = CameraState(camera: lobby, state: .online, at: now)
    state.fps = 21
    state.timestampFPS = 25
    state.transport = "udp"
    var stats = RecordingStats(
        camera: lobby, recordedSeconds: 10, recordedBytes: 1, lastFragmentAt: now.adding(micros: -2_500_000), run: 1,
        at: now)
    var row = StatusCollector.CameraRow(camera: lobby, state: state, recording: stats)
    // Issue 12, case 9 (before: `online 25.0 fps` and nothing else) and case 7 (which transport auto took).
    #expect(
        row.note(at: now)
            == "last fragment 2.5 s ago; media.cameraClock: timestamps say 25.0 fps, 21.0 arrive; RTP over UDP"
    )
    // The recorder refused the camera's media (a full disk): before, the row still read `online` with nothing else.
    stats.refused = ErrorEvent(code: "storage.full", message: "no slot is free")
    row.recording = stats
    #expect(row.note(at: now) == "storage.full: NOT RECORDED: no slot is free")
    // The capture worker's own reason comes first.
    row.state?.state = .offline
    row.state?.reason = ErrorEvent(code: "rtsp.timeout", message: "no data")
    #expect(row.note(at: now) == "rtsp.timeout: no data")
}
