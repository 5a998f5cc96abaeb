import HallwatchCore

/// How long the capture worker waits before reconnecting after a session ended (issue 12, case 1).
///
/// The policy, all of it:
/// 1. A session that delivered media (its first run started) resets the wait to `initial`: a camera that
///    resets the connection every few seconds but takes a reconnect at once loses `initial` per reset,
///    not a doubling series (before: holes of 0.5, 1, 2, 4, 8, 10 s — 34 s recorded of 60 s).
/// 2. For ``recentlyOnlineNanos`` after the last session that delivered media, the wait never exceeds
///    ``recentlyOnlineCap`` (1 s): a camera that is back is recorded within that (before: 2.5–3 s after a 5 s
///    outage).
/// 3. Otherwise — a camera still booting, gone, or refusing us — the wait doubles per failure from
///    `initial` up to `max` (`capture.backoffInitial`, `capture.backoffMax`).
/// 4. A camera that said when to come back (503 with `Retry-After`) is waited for at least that long.
///
/// Pure: the worker hands in the monotonic time (ns), so tests replay hours of flapping in microseconds.
public struct ReconnectBackoff: Sendable {
    /// After media stopped, reconnect attempts stay at most ``recentlyOnlineCap`` apart for this long: 30 s.
    public static let recentlyOnlineNanos: UInt64 = 30_000_000_000
    /// The longest wait while the camera was recently online: 1 s.
    public static let recentlyOnlineCap: Duration = .seconds(1)

    /// The first wait, and the wait after a session that delivered media (`capture.backoffInitial`).
    public let initial: Duration
    /// The longest wait (`capture.backoffMax`; raised to `initial` if smaller).
    public let max: Duration
    /// The wait the next failure without media will get (before the cap of step 2).
    private var next: Duration
    /// Monotonic ns at which the last session that delivered media ended.
    private var lastMediaEndNanos: UInt64?

    /// The policy between `initial` and `max`, before any session.
    public init(initial: Duration, max: Duration) {
        self.initial = initial
        self.max = Swift.max(initial, max)
        next = initial
    }

    /// A session ended at monotonic time `nowNanos`; returns how long to wait before the next connect.
    /// - Parameters:
    ///   - deliveredMedia: the session's first run started (at least one init segment went out).
    ///   - retryAfter: the camera's `Retry-After`, if it gave one (step 4).
    public mutating func wait(
        afterSessionThatDeliveredMedia deliveredMedia: Bool, nowNanos: UInt64, retryAfter: Duration? = nil
    ) -> Duration {
        if deliveredMedia {  // step 1
            next = initial
            lastMediaEndNanos = nowNanos
        }
        var wait = next
        next = Swift.min(next * 2, max)  // step 3
        if let end = lastMediaEndNanos, nowNanos &- end < Self.recentlyOnlineNanos {
            wait = Swift.min(wait, Swift.max(initial, Self.recentlyOnlineCap))  // step 2 (never below `initial`)
        }
        return Swift.max(wait, retryAfter ?? .zero)  // step 4
    }
}
