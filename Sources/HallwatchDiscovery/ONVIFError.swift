import HallwatchCore

/// Every failure to read an ONVIF or WS-Discovery reply: a stable code, one sentence, and the SOAP fault
/// when the camera sent one.
///
/// A camera's reply is hostile input (issue 5, "Hostile replies"): each way it can be wrong maps to one code
/// here, and none of them is fatal to the agent — the reply is logged and skipped.
public struct ONVIFError: HallwatchError, Equatable {
    /// Stable codes for logs and the bus.
    public enum Code: String, StableErrorCode, CaseIterable {
        /// Not well-formed XML: truncated, bad syntax, undefined entity, text after the root element.
        case malformed = "onvif.malformed"
        /// Larger than ``XMLLimits/maxBytes`` or more elements than ``XMLLimits/maxElements``.
        case tooLarge = "onvif.tooLarge"
        /// Elements nested deeper than ``XMLLimits/maxDepth``.
        case tooDeep = "onvif.tooDeep"
        /// A document type declaration or entity declaration: never accepted (billion laughs, XXE).
        case dtdRefused = "onvif.dtdRefused"
        /// Well-formed XML, but not the SOAP message expected (wrong root, wrong namespace, wrong response).
        case unexpectedReply = "onvif.unexpectedReply"
        /// The expected response without a field that this reader cannot do without.
        case missingField = "onvif.missingField"
        /// A SOAP fault other than an authentication failure; see ``ONVIFError/fault``.
        case fault = "onvif.fault"
        /// A SOAP fault whose code or subcode says the request was not authorised (`ter:NotAuthorized`,
        /// `wsse:FailedAuthentication`, …) — decided from the fault's qualified names, never from its text.
        case notAuthorized = "onvif.notAuthorized"
        /// No HTTP reply: connection refused, no route, reset, or the request's deadline passed.
        case unreachable = "onvif.unreachable"
        /// An HTTP status that is neither success, nor an authentication failure, nor a SOAP fault.
        case httpStatus = "onvif.httpStatus"
    }

    /// What went wrong, stable across releases.
    public var code: Code
    /// One sentence for people. Never contains credentials; text quoted from a camera is cut to 200 characters.
    public var message: String
    /// The SOAP fault, for ``Code/fault`` and ``Code/notAuthorized``.
    public var fault: SOAPFault?

    /// ``code`` as text.
    public var stableCode: String { code.rawValue }

    /// An error with its code, message and the camera's SOAP fault if any.
    public init(_ code: Code, _ message: String, fault: SOAPFault? = nil) {
        self.code = code
        self.message = message
        self.fault = fault
    }

    /// `[code] message`.
    public var description: String { "[\(code.rawValue)] \(message)" }

    /// The error as it travels on the bus.
    public func event(camera: CameraID? = nil, process: String? = nil, at: UTCMicros? = nil) -> ErrorEvent {
        ErrorEvent(code: code.rawValue, message: message, camera: camera, process: process, at: at)
    }
}

/// Cuts camera-provided text for messages: printable characters only, at most `limit` characters.
func quoted(_ text: String, limit: Int = 200) -> String {
    let cleaned = String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
    return cleaned.count > limit ? String(cleaned.prefix(limit)) + "…" : cleaned
}
