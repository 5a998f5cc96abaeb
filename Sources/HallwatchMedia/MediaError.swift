import CFFmpeg
import HallwatchCore

/// The media library's error: a stable code, a message for people, and FFmpeg's error number if any.
///
/// Codes (stable; they appear in logs and in `CameraState.reason` on the bus):
/// - `rtsp.connect` — the camera did not answer, refused, or the RTSP handshake (RFC 7826 §13) failed.
/// - `rtsp.auth` — the camera refused our credentials (401).
/// - `rtsp.dropped` — the session played, then the connection was reset or failed (a camera dropping it
///   mid-stream; it was reachable).
/// - `rtsp.timeout` — no data for longer than the I/O timeout (a stalled stream).
/// - `rtsp.ended` — the camera closed the stream.
/// - `rtsp.garbage` — the reply or stream could not be parsed (malformed SDP, RTP, bitstream).
/// - `rtsp.noFrames` — bytes arrive but no video frame can be rebuilt from them (wrong channel or payload
///   type, only RTCP, access units that never end).
/// - `media.noKeyframe` — frames arrive but no keyframe with parameter sets within 30 s.
/// - `media.unsupportedCodec` — a codec we cannot store without transcoding (we store H.264 and H.265).
/// - `media.noVideo` — the stream has no video track.
/// - `media.mux` — the fMP4 muxer refused a packet or parameters.
/// - `media.export` — an export could not be written.
/// - `media.file` — a media file could not be opened or read (``VideoTrackFile``).
public struct MediaError: Error, Sendable, CustomStringConvertible, Equatable {
    public var code: String
    public var message: String
    /// FFmpeg's `AVERROR` value, when the error came from FFmpeg.
    public var averror: Int32?
    /// How long the camera asked us to wait before trying again (`Retry-After` of a 503 reply, RFC 7826
    /// §18.44, delta-seconds, at most 300 s), if it said.
    public var retryAfter: Duration?

    public init(_ code: String, _ message: String, averror: Int32? = nil) {
        self.code = code
        self.message = message
        self.averror = averror
    }

    /// Wraps an FFmpeg return value, mapping the usual RTSP failures to stable codes.
    static func ffmpeg(_ r: Int32, _ what: String) -> MediaError {
        let text = averrorText(r)
        let code: String
        switch r {
        case hw_averror(ETIMEDOUT), hw_averror_exit(): code = "rtsp.timeout"
        case hw_averror_eof(): code = "rtsp.ended"
        case hw_averror_invaliddata(): code = "rtsp.garbage"
        case hw_averror(ECONNREFUSED), hw_averror(EHOSTUNREACH), hw_averror(ENETUNREACH), hw_averror(ECONNRESET),
            hw_averror(EPIPE):
            code = "rtsp.connect"
        default:
            // FFmpeg reports RTSP status codes as AVERROR_HTTP_* / FFERRTAG values; 401 is its own tag.
            code = text.contains("401") || text.lowercased().contains("unauthorized") ? "rtsp.auth" : "rtsp.connect"
        }
        return MediaError(code, "\(what): \(text)", averror: r)
    }

    /// The error as it goes on the bus.
    public func event(camera: CameraID?) -> ErrorEvent { ErrorEvent(code: code, message: message, camera: camera) }
    public var description: String { "[\(code)] \(message)" }
}

/// FFmpeg's message for an `AVERROR` value.
func averrorText(_ r: Int32) -> String {
    var buf = [CChar](repeating: 0, count: 128)
    return buf.withUnsafeMutableBufferPointer { String(cString: hw_err2str(r, $0.baseAddress!, 128)) }
}
