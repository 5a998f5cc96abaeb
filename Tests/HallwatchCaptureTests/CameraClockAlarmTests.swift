import Testing

@testable import HallwatchCapture
@testable import HallwatchMedia

/// Issue 12, case 9: the alarm that a camera's clock is wrong (its runs re-anchored), raised once per session
/// and then at most every 10 minutes. Before: no alarm; the status said `online 25.0 fps`.
@Suite("The camera-clock alarm")
struct CameraClockAlarmTests {
    static func status(reanchors: Int) -> CaptureStatus {
        var s = CaptureStatus(
            codec: "h264", width: 1280, height: 720, fps: 21, bitrateBps: 2_000_000, audioCodec: nil,
            outliersRestamped: 0, missingStamped: 0, joinedUnits: 0)
        s.timestampFPS = 25
        s.clockReanchors = reanchors
        return s
    }

    @Test func raisedAtTheFirstReanchorThenAtMostEveryTenMinutes() {
        var alarm = CameraClockAlarm()
        alarm.newSession()
        #expect(alarm.check(Self.status(reanchors: 0), nowNanos: 0) == nil)
        let first = alarm.check(Self.status(reanchors: 1), nowNanos: 1_000_000_000)
        #expect(first?.code == "media.cameraClock")
        #expect(first?.message.contains("timestamps say 25.0 fps, frames arrive at 21.0 per second") == true)
        // Re-anchored again 6 s later (1 s behind at 16 % slow): no second alarm yet.
        #expect(alarm.check(Self.status(reanchors: 2), nowNanos: 7_000_000_000) == nil)
        // A new session counts from 0 again; still within 10 minutes.
        alarm.newSession()
        #expect(alarm.check(Self.status(reanchors: 1), nowNanos: 60_000_000_000) == nil)
        // Ten minutes after the first alarm, the next re-anchor raises it again.
        #expect(alarm.check(Self.status(reanchors: 2), nowNanos: 602_000_000_000)?.code == "media.cameraClock")
        // The same count is never alarmed twice.
        #expect(alarm.check(Self.status(reanchors: 2), nowNanos: 1_300_000_000_000) == nil)
    }
}
