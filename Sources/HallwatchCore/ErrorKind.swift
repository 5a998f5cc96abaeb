/// What kind of failure an error is, whatever its domain: the one thing control flow switches on and the web
/// maps to an HTTP status.
///
/// Each stable code (``ErrorCodes``) has exactly one kind. The set is small on purpose: a kind earns its
/// place when a caller does something different for it (retry later, ask for credentials, quarantine,
/// report a bug), not when it merely describes the failure better — the code and message do that.
public enum ErrorKind: String, Sendable, Hashable, CaseIterable, Codable {
    /// The caller's input is wrong (an argument, a request, a configuration value, a malformed frame from a
    /// client); the same input fails again. HTTP 400.
    case invalidInput
    /// Credentials are missing or were refused (by us, or by a camera we log in to). HTTP 401.
    case unauthorized
    /// The identity is known but not allowed to do this (a role, file permissions). HTTP 403.
    case forbidden
    /// The named thing does not exist: camera, disk, file, index, recorded video. HTTP 404.
    case notFound
    /// The current state forbids it: already done, taken, locked, owned by another box. Retrying as is
    /// fails until the state changes. HTTP 409.
    case conflict
    /// A bounded resource is used up: disk space, free slots, a quota, a reserve. HTTP 507.
    case exhausted
    /// Something we depend on is down, failed or gone (a camera, the broker, a disk); retry later. HTTP 503.
    case unavailable
    /// Something we depend on did not answer in time. HTTP 504.
    case timeout
    /// A peer (camera, ONVIF device) answered with something we cannot use: malformed, unexpected or
    /// unsupported. HTTP 502.
    case badReply
    /// Stored bytes failed validation (CRC, magic, generation): the data, not the caller, is damaged. HTTP 500.
    case corrupt
    /// A bug or an unexpected failure; also the kind of any code missing from ``ErrorCodes``. HTTP 500.
    case `internal`

    /// The HTTP status the web answers with for an error of this kind.
    public var httpStatus: Int {
        switch self {
        case .invalidInput: 400
        case .unauthorized: 401
        case .forbidden: 403
        case .notFound: 404
        case .conflict: 409
        case .exhausted: 507
        case .unavailable: 503
        case .timeout: 504
        case .badReply: 502
        case .corrupt, .internal: 500
        }
    }
}

/// Every Hallwatch error: a stable dotted code for operators, its ``ErrorKind`` for code, and one sentence
/// for people.
///
/// Domain error types (`StorageError`, `MediaError`, `BusError`, `ONVIFError`, ``SystemError``,
/// `DataPlaneError`, ``ErrorEvent``, …) adopt it. Types with a typed code keep it as their own `code`
/// property; ``stableCode`` is the same code as text.
public protocol HallwatchError: Error, Sendable, CustomStringConvertible {
    /// The stable dotted code (`storage.io`, `rtsp.timeout`), as it appears in logs and on the bus; listed
    /// in ``ErrorCodes``.
    var stableCode: String { get }
    /// What kind of failure this is. Default: the code's kind in ``ErrorCodes``.
    var kind: ErrorKind { get }
    /// One sentence for people; never contains credentials.
    var message: String { get }
}

extension HallwatchError {
    /// The code's kind in ``ErrorCodes`` (``ErrorKind/internal`` for a code not listed there).
    public var kind: ErrorKind { ErrorCodes.kind(of: stableCode) }
}

/// A domain's typed code (`StorageError.Code`, `MediaError.Code`, `ONVIFError.Code`): its text is the stable
/// code, its kind comes from ``ErrorCodes``.
public protocol StableErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible
where RawValue == String {}

extension StableErrorCode {
    /// The code text.
    public var description: String { rawValue }
    /// Its kind in ``ErrorCodes``.
    public var kind: ErrorKind { ErrorCodes.kind(of: rawValue) }
}

extension ErrorKind {
    /// The kind of any error: its own for a ``HallwatchError``, ``internal`` for anything else.
    public init(of error: any Error) {
        self = (error as? any HallwatchError)?.kind ?? .internal
    }
}

extension ErrorEvent: HallwatchError {
    /// ``code``.
    public var stableCode: String { code }
}

extension SystemError: HallwatchError {
    /// ``code``.
    public var stableCode: String { code }
    /// The call, its subject and the system's text for `errno`.
    public var message: String { "\(call)\(subject.map { "(\($0))" } ?? ""): \(Self.text(errno))" }
}
