import Foundation

/// A failed system call: the call's name, `errno` and the path or object involved.
///
/// Every errno in Hallwatch is turned into this one type here, so deciding which failures are
/// environmental (disk full, peer gone) and which are bugs happens in one place.
public struct SystemError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Name of the failed call, e.g. `open`, `fdatasync`.
    public var call: String
    /// The `errno` value.
    public var errno: Int32
    /// The path or object the call was about, if any.
    public var subject: String?

    /// A failure of `call` with `errno` (by default the current one: construct it right after the call).
    public init(_ call: String, errno: Int32 = Foundation.errno, subject: String? = nil) {
        self.call = call
        self.errno = errno
        self.subject = subject
    }

    /// Stable code for logs and the bus: `sys.enospc`, `sys.eio`, `sys.enoent`, … (`sys.errno<N>` otherwise).
    public var code: String {
        switch errno {
        case ENOSPC: return "sys.enospc"
        case EIO: return "sys.eio"
        case ENOENT: return "sys.enoent"
        case EACCES, EPERM: return "sys.eacces"
        case ECONNREFUSED: return "sys.econnrefused"
        case EPIPE, ECONNRESET: return "sys.peerGone"
        case EROFS: return "sys.erofs"
        case ENODEV, ENXIO, ESTALE: return "sys.vanished"
        default: return "sys.errno\(errno)"
        }
    }

    /// True when the disk behind the call is unusable (full, failing or gone) rather than the caller wrong.
    public var isDiskFailure: Bool { [ENOSPC, EIO, EROFS, ENODEV, ENXIO, ESTALE, EDQUOT].contains(errno) }

    /// `call(subject): text [code]`.
    public var description: String { "\(message) [\(code)]" }

    /// The system's text for an `errno` value (`strerror`): the one place Hallwatch turns errno into words.
    public static func text(_ errno: Int32) -> String { String(cString: strerror(errno)) }
}

/// Runs `body` until it does not fail with `EINTR`; returns its result.
@inline(__always)
public func retryingEINTR<T: BinaryInteger>(_ body: () -> T) -> T {
    while true {
        let r = body()
        if r == -1 && errno == EINTR { continue }
        return r
    }
}
