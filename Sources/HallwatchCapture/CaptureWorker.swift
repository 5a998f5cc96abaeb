import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import HallwatchDataPlane
import HallwatchMedia
import HallwatchProcess
import Logging
import ServiceLifecycle

/// `hallwatch-capture --camera ID`: records one camera until stopped.
///
/// Loop (one dedicated thread; FFmpeg's calls block and must not starve the Swift concurrency pool):
/// 1. Publish `connecting`; open the RTSP session (``CaptureSession``).
/// 2. On the first run, publish `online` with codec, size, fps, bitrate; refresh every ~5 s.
/// 3. When the session ends — the camera closed it, stalled past the I/O timeout, sent garbage or a codec
///    we cannot store — publish `offline` with the typed reason, wait, and go to 1. The wait
///    (``ReconnectBackoff``) starts at `capture.backoffInitial` and doubles per consecutive failure up to
///    `capture.backoffMax`; a session that delivered media resets it, and for 30 s after one it stays at
///    most 1 s. The very first connect is retried the same way, so a worker started while its camera
///    boots simply waits for it. The wait is on the injected clocks
///    (``reconnecting(clocks:backoff:stop:session:)``), so tests run it in simulated time.
/// 4. On graceful shutdown the stop flag makes the blocking read return; the last fragment is flushed.
public struct CaptureWorker: Service {
    let camera: CameraConfig
    let config: HallwatchConfig
    let presence: Presence
    let clocks: any Clocks
    let logger: Logger
    let standingAlarm: ErrorEvent?

    /// A worker for `camera` (one of `config.cameras`), announcing on `presence`'s bus, reading time and waiting
    /// on `clocks`. `standingAlarm` (the worker runs on its last good configuration: `config.invalid`) is the
    /// camera state's reason while nothing else is wrong, so the status says the camera records and why it
    /// needs attention.
    public init(
        camera: CameraConfig, config: HallwatchConfig, presence: Presence, clocks: any Clocks = SystemClocks(),
        standingAlarm: ErrorEvent? = nil, logger: Logger
    ) {
        self.camera = camera
        self.config = config
        self.presence = presence
        self.clocks = clocks
        self.standingAlarm = standingAlarm
        self.logger = logger
    }

    /// Records until graceful shutdown (steps 1–4), then publishes `offline` with `capture.stopped`. Never throws: a camera's failures are waited out, not fatal.
    public func run() async throws {
        let stop = StopFlag()
        try await withGracefulShutdownHandler {
            try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
                let thread = Thread { [self] in
                    loop(stop: stop)
                    done.resume()
                }
                thread.name = "capture-\(camera.id)"
                thread.start()
            }
        } onGracefulShutdown: {
            stop.stop()
        }
        publish(
            .offline,
            reason: ErrorEvent(code: "capture.stopped", message: "the capture worker was stopped", camera: camera.id))
    }

    func publish(_ state: CameraState.State, status: CaptureStatus? = nil, reason: ErrorEvent? = nil) {
        var s = CameraState(camera: camera.id, state: state, at: clocks.utcNow())
        s.reason = reason ?? standingAlarm
        if let st = status {
            s.codec = st.codec
            s.width = st.width
            s.height = st.height
            s.fps = st.fps
            s.timestampFPS = st.timestampFPS
            s.transport = st.transport.isEmpty ? nil : st.transport
            s.bitrateBps = st.bitrateBps
            s.audioCodec = st.audioCodec
        }
        try? presence.bus.publish(s, topic: presence.topics.cameraState(camera.id), retain: true)
    }

    func loop(stop: StopFlag) {
        let sink = DataPlaneSender(path: config.recorder.socket, camera: camera.id, logger: logger)
        let policy = FragmentPolicy(maxFragmentDuration: config.capture.maxFragmentDuration)
        let fresh = FreshStreamURI(camera: camera, bus: presence.bus, topics: presence.topics, logger: logger)
        var lastReason: ErrorEvent?
        // The newest run's end on the box's clock, carried from session to session (runs never overlap).
        var lastRunEnd: UTCMicros?
        let backoff = ReconnectBackoff(initial: config.capture.backoffInitial, max: config.capture.backoffMax)
        // `auto` turns into `udp` for the worker's life once the camera refused TCP (461).
        var transport = camera.transport
        var clockAlarm = CameraClockAlarm()
        ServiceNotifier.shared.ready(status: "capture \(camera.id): connecting")
        Self.reconnecting(clocks: clocks, backoff: backoff, stop: stop) {
            // While reconnecting, the last failure stays visible next to `connecting`.
            publish(.connecting, reason: lastReason)
            var reason: ErrorEvent
            var deliveredMedia = false
            var retryAfter: Duration?
            do {
                let password = try readPassword()
                let url = try fresh?.uriForNextConnection(password: password) ?? camera.source
                let options = RTSPSourceOptions(
                    url: url, username: camera.username, password: password,
                    transport: transport, ioTimeout: config.capture.ioTimeout, audio: camera.audio)
                let session = CaptureSession(
                    camera: camera.id, source: options, policy: policy, clocks: clocks, logger: logger)
                session.lastRunEnd = lastRunEnd
                defer {
                    lastRunEnd = session.lastRunEnd
                    if transport == .auto, session.usedTransport == .udp { transport = .udp }
                }
                clockAlarm.newSession()
                try session.run(stop: stop, sink: sink) { status in
                    deliveredMedia = true
                    ServiceNotifier.shared.watchdog()
                    ServiceNotifier.shared.status(
                        "capture \(camera.id): online, \(status.codec) \(status.width)x\(status.height), \(status.bitrateBps / 1000) kbit/s"
                    )
                    publish(.online, status: status)
                    if let alarm = clockAlarm.check(status, nowNanos: clocks.monotonicNanos()) {
                        logger.warning(
                            "\(alarm.message)", metadata: ["camera.id": "\(camera.id)", "code": "\(alarm.code)"])
                        var event = ErrorEvent(code: alarm.code, message: alarm.message, camera: camera.id)
                        event.at = clocks.utcNow()
                        presence.publishError(event)
                    }
                }
                reason = ErrorEvent(code: "rtsp.ended", message: "the camera ended the stream", camera: camera.id)
            } catch let e as MediaError {
                reason = e.event(camera: camera.id)
                retryAfter = e.retryAfter
            } catch let e as ErrorEvent {
                reason = e
            } catch {
                reason = ErrorEvent(code: "capture.internal", message: "\(error)", camera: camera.id)
            }
            if stop.isStopped { return (deliveredMedia, retryAfter) }
            logger.warning(
                "camera offline",
                metadata: ["camera.id": "\(camera.id)", "code": "\(reason.code)", "reason": "\(reason.message)"])
            reason.at = clocks.utcNow()
            lastReason = reason
            publish(.offline, reason: reason)
            presence.publishError(reason)
            return (deliveredMedia, retryAfter)
        }
    }

    /// Step 3 apart from what is waited for: runs `session` until `stop` is set and, after each session that
    /// ends while not stopped, blocks for the next ``ReconnectBackoff`` delay on `clocks` (waking early on
    /// `stop`). `session` says whether it delivered media and the camera's `Retry-After`, if any.
    static func reconnecting(
        clocks: any Clocks, backoff: ReconnectBackoff, stop: StopFlag,
        session: () -> (deliveredMedia: Bool, retryAfter: Duration?)
    ) {
        var backoff = backoff
        while !stop.isStopped {
            // Trying to connect and backing off are legitimate progress: each pings systemd's watchdog; media
            // arriving pings it from the status callback (Systemd/README.md: WatchdogSec= > ioTimeout steps + backoffMax).
            ServiceNotifier.shared.watchdog()
            let outcome = session()
            if stop.isStopped { break }
            ServiceNotifier.shared.watchdog()
            let wait = backoff.wait(
                afterSessionThatDeliveredMedia: outcome.deliveredMedia, nowNanos: clocks.monotonicNanos(),
                retryAfter: outcome.retryAfter)
            clocks.sleepBlocking(for: wait, unless: { stop.isStopped })
        }
    }

    /// The RTSP password from `passwordFile` (its first line), read at each connect so a fixed file is
    /// picked up without a restart.
    /// - Throws: ``ErrorEvent`` `capture.credentials` when the file cannot be read: connecting without the
    ///   password would only hide the problem behind an `rtsp.auth` error.
    func readPassword() throws -> String? {
        guard let file = camera.passwordFile else { return nil }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8),
            let line = text.split(separator: "\n").first
        else {
            throw ErrorEvent(
                code: "capture.credentials", message: "cannot read the password file \(file)", camera: camera.id)
        }
        return String(line)
    }
}

/// The capture session hands its segments straight to the data plane, and its per-frame live chunks while the
/// recorder says someone watches (HallwatchDataPlane's `Protocol.md`, P6 and P7).
extension DataPlaneSender: LiveChunkSink {}

/// Issue 12, case 9: the alarm that a camera's clock is wrong — its timestamps say one frame rate, frames
/// arrive at another, so its runs keep being re-anchored (``CaptureStatus/clockReanchors``). Raised as
/// `media.cameraClock` at the first re-anchor of a session and then at most every 10 minutes, so a camera
/// that stays wrong does not flood the bus.
struct CameraClockAlarm {
    /// Re-anchors of the current session already alarmed.
    private var alarmedReanchors = 0
    /// When the last alarm was raised (monotonic ns).
    private var lastAlarmNanos: UInt64?
    /// The shortest time between two alarms: 10 min.
    static let repeatNanos: UInt64 = 600_000_000_000

    /// A new session's status counts re-anchors from 0.
    mutating func newSession() { alarmedReanchors = 0 }

    /// The alarm to raise for `status`, if any: a code and one sentence naming both rates.
    mutating func check(_ status: CaptureStatus, nowNanos: UInt64) -> (code: String, message: String)? {
        guard status.clockReanchors > alarmedReanchors else { return nil }
        alarmedReanchors = status.clockReanchors
        if let last = lastAlarmNanos, nowNanos - last < Self.repeatNanos { return nil }
        lastAlarmNanos = nowNanos
        let said = String(format: "%.1f", status.timestampFPS)
        let seen = String(format: "%.1f", status.fps)
        return (
            "media.cameraClock",
            "the camera's clock is wrong: its timestamps say \(said) fps, frames arrive at \(seen) per second; "
                + "its recording was re-anchored to the box's clock (\(status.clockReanchors) time(s) this session)"
        )
    }
}
