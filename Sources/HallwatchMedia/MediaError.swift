import CFFmpeg
import HallwatchCore

/// The media library's error: a stable code, a message for people, and FFmpeg's error number if any.
///
/// Codes (stable; they appear in logs and in `CameraState.reason` on the bus):
/// - `rtsp.connect` — the camera did not answer, refused, or the RTSP handshake (RFC 7826 §13) failed.
/// - `rtsp.auth` — the camera refused our credentials (401).
/// - `rtsp.dropped` — the session played, then the connection was reset or failed (a camera dropping it
///   mid-stream; it was reachable).
/// - `rtsp.transport` — the camera refused the RTP transport we asked for (`461 Unsupported Transport`,
///   RFC 7826 §17.4.25): with `transport: auto` the worker then tries UDP.
/// - `rtsp.timeout` — no data for longer than the I/O timeout (a stalled stream).
/// - `rtsp.ended` — the camera closed the stream.
/// - `rtsp.garbage` — the reply or stream could not be parsed (malformed SDP, RTP, bitstream).
/// - `rtsp.stopped` — the session was stopped on purpose (the stop flag; not a camera failure).
/// - `rtsp.noFrames` — bytes arrive but no video frame can be rebuilt from them (wrong channel or payload
///   type, only RTCP, access units that never end).
/// - `media.noKeyframe` — frames arrive but no keyframe with parameter sets within 30 s.
/// - `media.unsupportedCodec` — a codec we cannot store without transcoding (we store H.264 and H.265).
/// - `media.noVideo` — the stream has no video track.
/// - `media.mux` — the fMP4 muxer refused a packet or parameters.
/// - `media.export` — an export could not be written.
/// - `export.noSpace` — an export's output file system is full (`ENOSPC`); nothing of it is left behind.
/// - `media.file` — a media file could not be opened or read (``VideoTrackFile``).
public struct MediaError: HallwatchError, Equatable {
    /// A stable code (listed in `ErrorCodes`); a string literal is one, so `MediaError("rtsp.connect", …)`
    /// and `error.code == "rtsp.timeout"` read as before, and control flow can switch on the constants.
    public struct Code: StableErrorCode, ExpressibleByStringLiteral {
        /// The code text, e.g. `rtsp.timeout`.
        public let rawValue: String
        /// Wraps a code text (prefer the constants below).
        public init(rawValue: String) { self.rawValue = rawValue }
        /// A code from its literal text.
        public init(stringLiteral value: String) { rawValue = value }

        /// The camera did not answer, refused, or the RTSP handshake failed.
        public static let connect = Code(rawValue: "rtsp.connect")
        /// The camera refused our credentials.
        public static let auth = Code(rawValue: "rtsp.auth")
        /// No data for longer than the I/O timeout.
        public static let timeout = Code(rawValue: "rtsp.timeout")
        /// The camera closed the stream.
        public static let ended = Code(rawValue: "rtsp.ended")
        /// The session was stopped on purpose (the stop flag).
        public static let stopped = Code(rawValue: "rtsp.stopped")
        /// The camera refused the transport asked for (461 Unsupported Transport, RFC 7826 §17.4.25).
        public static let transport = Code(rawValue: "rtsp.transport")
        /// A reply or stream that cannot be parsed.
        public static let garbage = Code(rawValue: "rtsp.garbage")
        /// A request URL or header value with spaces or control characters (from a camera's SDP or an
        /// operator): never written, since it would forge request lines or headers (RFC 7826 §4.2, §20).
        public static let badURL = Code(rawValue: "rtsp.badURL")
        /// An export's output file system is full (`ENOSPC`): what was written is removed.
        public static let noSpace = Code(rawValue: "export.noSpace")
    }

    /// What went wrong, stable across releases.
    public var code: Code
    /// One sentence for people; never contains credentials.
    public var message: String
    /// FFmpeg's `AVERROR` value, when the error came from FFmpeg.
    public var averror: Int32?
    /// How long the camera asked us to wait before trying again (`Retry-After` of a 503 reply, RFC 7826
    /// §18.44, delta-seconds, at most 300 s), if it said.
    public var retryAfter: Duration?

    /// An error with its code, message and FFmpeg's error number if any.
    public init(_ code: Code, _ message: String, averror: Int32? = nil) {
        self.code = code
        self.message = message
        self.averror = averror
    }

    /// ``code`` as text.
    public var stableCode: String { code.rawValue }

    /// Wraps an FFmpeg return value, mapping the usual RTSP failures to stable codes.
    static func ffmpeg(_ r: Int32, _ what: String) -> MediaError {
        let text = averrorText(r)
        let code: Code
        switch r {
        case hw_averror(ETIMEDOUT), hw_averror_exit(): code = .timeout
        // libavformat's answer when every transport it was allowed was refused with 461.
        case hw_averror(EPROTONOSUPPORT): code = .transport
        case hw_averror_eof(): code = .ended
        case hw_averror_invaliddata(): code = .garbage
        case hw_averror(ECONNREFUSED), hw_averror(EHOSTUNREACH), hw_averror(ENETUNREACH), hw_averror(ECONNRESET),
            hw_averror(EPIPE):
            code = .connect
        default:
            // FFmpeg reports RTSP status codes as AVERROR_HTTP_* / FFERRTAG values; 401 is its own tag.
            code = text.contains("401") || text.lowercased().contains("unauthorized") ? .auth : .connect
        }
        return MediaError(code, "\(what): \(text)", averror: r)
    }

    /// The error as it goes on the bus.
    public func event(camera: CameraID?) -> ErrorEvent {
        ErrorEvent(code: code.rawValue, message: message, camera: camera)
    }
    /// `[code] message`.
    public var description: String { "[\(code)] \(message)" }
}

/// FFmpeg's message for an `AVERROR` value.
func averrorText(_ r: Int32) -> String {
    var buf = [CChar](repeating: 0, count: 128)
    return buf.withUnsafeMutableBufferPointer { String(cString: hw_err2str(r, $0.baseAddress!, 128)) }
}
