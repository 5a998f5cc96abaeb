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
///    we cannot store — publish `offline` with the typed reason, wait, and go to 1. The wait starts at
///    `capture.backoffInitial`, doubles per consecutive failure up to `capture.backoffMax`, and resets once
///    a session has stayed online for 30 s (``ReconnectBackoff``). The very first connect is retried the same
///    way, so a worker started while its camera boots simply waits for it. The wait is on the injected
///    clocks (``reconnecting(clocks:backoff:stop:session:)``), so tests run it in simulated time.
/// 4. On graceful shutdown the stop flag makes the blocking read return; the last fragment is flushed.
public struct CaptureWorker: Service {
    let camera: CameraConfig
    let config: HallwatchConfig
    let presence: Presence
    let clocks: any Clocks
    let logger: Logger

    /// A worker for `camera` (one of `config.cameras`), announcing on `presence`'s bus, reading time and waiting on `clocks`.
    public init(
        camera: CameraConfig, config: HallwatchConfig, presence: Presence, clocks: any Clocks = SystemClocks(),
        logger: Logger
    ) {
        self.camera = camera
        self.config = config
        self.presence = presence
        self.clocks = clocks
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
        s.reason = reason
        if let st = status {
            s.codec = st.codec
            s.width = st.width
            s.height = st.height
            s.fps = st.fps
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
        Self.reconnecting(clocks: clocks, backoff: backoff, stop: stop) {
            // While reconnecting, the last failure stays visible next to `connecting`.
            publish(.connecting, reason: lastReason)
            var reason: ErrorEvent
            do {
                let password = try readPassword()
                let url = try fresh?.uriForNextConnection(password: password) ?? camera.source
                let options = RTSPSourceOptions(
                    url: url, username: camera.username, password: password,
                    transport: camera.transport, ioTimeout: config.capture.ioTimeout, audio: camera.audio)
                let session = CaptureSession(
                    camera: camera.id, source: options, policy: policy, clocks: clocks, logger: logger)
                session.lastRunEnd = lastRunEnd
                defer { lastRunEnd = session.lastRunEnd }
                try session.run(stop: stop, sink: sink) { status in publish(.online, status: status) }
                reason = ErrorEvent(code: "rtsp.ended", message: "the camera ended the stream", camera: camera.id)
            } catch let e as MediaError {
                reason = e.event(camera: camera.id)
            } catch let e as ErrorEvent {
                reason = e
            } catch {
                reason = ErrorEvent(code: "capture.internal", message: "\(error)", camera: camera.id)
            }
            if stop.isStopped { return }
            logger.warning(
                "camera offline",
                metadata: ["camera.id": "\(camera.id)", "code": "\(reason.code)", "reason": "\(reason.message)"])
            reason.at = clocks.utcNow()
            lastReason = reason
            publish(.offline, reason: reason)
            presence.publishError(reason)
        }
    }

    /// Step 3 apart from what is waited for: runs `session` until `stop` is set and, after each session that
    /// ends while not stopped, blocks for the next ``ReconnectBackoff`` delay on `clocks` (waking early on
    /// `stop`). How long the session lasted is measured on `clocks` too.
    static func reconnecting(clocks: any Clocks, backoff: ReconnectBackoff, stop: StopFlag, session: () -> Void) {
        var backoff = backoff
        while !stop.isStopped {
            let started = clocks.monotonicNow()
            session()
            if stop.isStopped { break }
            clocks.sleepBlocking(
                for: backoff.delay(afterSessionOf: clocks.monotonicNow() - started), unless: { stop.isStopped })
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

/// The capture worker's reconnect policy (step 3): the first wait is `initial`, each consecutive failure
/// doubles it up to `max`, and a session that stayed up longer than ``resetAfter`` starts again at `initial`.
struct ReconnectBackoff: Sendable {
    /// A session longer than this was a success: the next wait is `initial` again.
    static let resetAfter: Duration = .seconds(30)
    /// First wait (`capture.backoffInitial`).
    let initial: Duration
    /// Longest wait (`capture.backoffMax`).
    let max: Duration
    /// The wait after the next failure of a short session.
    private(set) var next: Duration

    /// The policy between `initial` and `max`.
    init(initial: Duration, max: Duration) {
        self.initial = initial
        self.max = max
        next = initial
    }

    /// The wait after a session that lasted `lasted`, and the doubling for the one after.
    mutating func delay(afterSessionOf lasted: Duration) -> Duration {
        if lasted > Self.resetAfter { next = initial }
        defer { next = min(next * 2, max) }
        return next
    }
}

/// The capture session hands its segments straight to the data plane.
extension DataPlaneSender: FragmentSink {}
