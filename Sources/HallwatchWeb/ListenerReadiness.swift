import HallwatchProcess
import Synchronization

/// Counts the web's listening sockets as they are bound and tells systemd `READY=1` only once every one of
/// them listens (sd_notify(3), `Type=notify`): the HTTPS port on each `web.listen` address and, when
/// configured, the redirect-only HTTP port on each. Before that a client would be refused, so "ready" would lie.
final class ListenerReadiness: Sendable {
    private let remaining: Mutex<Int>
    private let status: String
    private let notifier: ServiceNotifier

    /// - Parameters:
    ///   - expected: how many listeners must be bound (at least one).
    ///   - status: the `STATUS=` line sent with `READY=1`.
    init(expected: Int, status: String, notifier: ServiceNotifier = .shared) {
        remaining = Mutex(max(1, expected))
        self.status = status
        self.notifier = notifier
    }

    /// One listener is bound (Hummingbird's `onServerRunning`); the last one sends `READY=1`. Returns whether
    /// this call was the last.
    @discardableResult
    func bound() -> Bool {
        let last = remaining.withLock { count -> Bool in
            guard count > 0 else { return false }
            count -= 1
            return count == 0
        }
        if last { notifier.ready(status: status) }
        return last
    }
}
