import CMosquitto
import Glibc
import HallwatchCore

/// A failed bus operation: a stable code, a sentence for people, and libmosquitto's own words.
///
/// Codes (stable; logs and dashboards key on them):
/// - `bus.config`: an argument libmosquitto refuses (socket path too long, client id empty, …); not retried.
/// - `bus.connect`: the broker could not be reached or refused the connection (CONNACK reason code ≥ 0x80,
///   MQTT 5.0 §3.2.2.2). The client keeps retrying in the background.
/// - `bus.timeout`: ``BusClient/connect(timeout:)`` gave up waiting; the client keeps retrying in the background.
/// - `bus.publish`: libmosquitto refused a PUBLISH (invalid topic, payload over 268 435 455 bytes, QoS 0 while
///   disconnected, …).
/// - `bus.encode`: a value could not be encoded with `BusCoding`.
/// - `bus.closed`: the client was disconnected with ``BusClient/disconnect(withWill:)`` or is being destroyed.
/// - `bus.disconnected`: the connection was lost (used in ``BusConnectionEvent/disconnected(_:)``).
public struct BusError: HallwatchError, Equatable {
    /// Stable dotted code, see the type's documentation.
    public var code: String
    /// One sentence for people; never contains credentials.
    public var message: String
    /// libmosquitto's text for the underlying failure (`mosquitto_strerror`, `mosquitto_connack_string` or
    /// `mosquitto_reason_string`), when there is one.
    public var mosquittoError: String?

    /// ``code``.
    public var stableCode: String { code }

    /// An error with its code, message and libmosquitto's text.
    public init(code: String, message: String, mosquittoError: String? = nil) {
        self.code = code
        self.message = message
        self.mosquittoError = mosquittoError
    }

    /// `[code] message`, then libmosquitto's text in parentheses when there is one.
    public var description: String {
        "[\(code)] \(message)\(mosquittoError.map { " (mosquitto: \($0))" } ?? "")"
    }

    /// The error as a bus `ErrorEvent` (code and message; libmosquitto's text is appended to the message).
    public func event(process: String? = nil, at: UTCMicros? = nil) -> ErrorEvent {
        ErrorEvent(
            code: code, message: mosquittoError.map { "\(message) (\($0))" } ?? message, process: process, at: at)
    }

    /// libmosquitto's text for a `MOSQ_ERR_*` return value (`mosquitto_strerror`). For `MOSQ_ERR_ERRNO` the
    /// current `errno` is described instead, which is what libmosquitto's own tools do.
    static func describe(mosquittoError rc: Int32) -> String {
        if rc == MosquittoRC.errno {
            let e = errno
            return "\(SystemError.text(e)) (errno \(e))"
        }
        return String(cString: mosquitto_strerror(rc))
    }

    /// libmosquitto's text for an MQTT 5 reason code (`mosquitto_reason_string`, MQTT 5.0 §2.4).
    static func describe(reasonCode rc: Int32) -> String {
        String(cString: mosquitto_reason_string(rc))
    }

    /// An error for a failed libmosquitto call returning `rc` (a `MOSQ_ERR_*` value).
    static func mosquitto(_ code: String, _ message: String, rc: Int32) -> BusError {
        BusError(code: code, message: message, mosquittoError: describe(mosquittoError: rc))
    }
}

/// libmosquitto's `MOSQ_ERR_*` values as the `Int32` its functions return.
enum MosquittoRC {
    static let success = Int32(truncatingIfNeeded: MOSQ_ERR_SUCCESS.rawValue)
    static let invalid = Int32(truncatingIfNeeded: MOSQ_ERR_INVAL.rawValue)
    static let noConnection = Int32(truncatingIfNeeded: MOSQ_ERR_NO_CONN.rawValue)
    static let errno = Int32(truncatingIfNeeded: MOSQ_ERR_ERRNO.rawValue)
}
