import CSystemd
import Foundation
import Synchronization

/// A process's reports to its service manager through libsystemd's `sd_notify(3)`: `READY=1` once it
/// really serves, `WATCHDOG=1` from its progress path, `STATUS=` one line for `systemctl status`, and
/// `STOPPING=1` on a clean stop (systemd.service(5), `Type=notify`, `WatchdogSec=`).
///
/// Without `NOTIFY_SOCKET` (a test, `hallwatchctl supervise`, a shell) every call does nothing. The
/// environment is read once, so `sd_notify`'s `unset_environment` is never used: children started by the
/// process do not notify on its behalf.
public final class ServiceNotifier: Sendable {
    /// The process's notifier, from its environment (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`).
    public static let shared = ServiceNotifier()

    /// Whether a service manager listens (`NOTIFY_SOCKET` was set when the notifier was made).
    public let isEnabled: Bool
    /// The watchdog interval systemd expects pings within (`WatchdogSec=`), from `sd_watchdog_enabled(3)`;
    /// `nil` when the unit has no watchdog.
    public let watchdogInterval: Duration?
    /// Pings closer together than this are dropped (a quarter of the interval; a progress path may call
    /// ``watchdog()`` per fragment or per fsync without a syscall each time).
    let minimumGapNanos: UInt64
    private let lastPing = Mutex<UInt64>(0)
    private let lastStatus = Mutex<String>("")

    /// Reads `NOTIFY_SOCKET` and the watchdog settings from `environment` (the process's when omitted;
    /// `sd_watchdog_enabled(3)` itself reads the process's).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        isEnabled = !(environment["NOTIFY_SOCKET"] ?? "").isEmpty
        var usec: UInt64 = 0
        if isEnabled, sd_watchdog_enabled(0, &usec) > 0, usec > 0 {
            watchdogInterval = .microseconds(Int64(usec))
            minimumGapNanos = usec * 1000 / 4
        } else {
            watchdogInterval = nil
            minimumGapNanos = 0
        }
    }

    /// Sends `state` (newline-separated `KEY=value` assignments) as it is; returns whether it was sent.
    @discardableResult
    public func send(_ state: String) -> Bool {
        guard isEnabled else { return false }
        return sd_notify(0, state) > 0
    }

    /// `READY=1` with a status line: the process serves (its socket listens, its loop turns). systemd
    /// starts the units ordered after it only then.
    public func ready(status: String) {
        send("READY=1\nSTATUS=\(Self.oneLine(status))")
    }

    /// `STATUS=` one line (newlines become spaces); unchanged text is not sent again.
    public func status(_ text: String) {
        guard isEnabled else { return }
        let line = Self.oneLine(text)
        let changed = lastStatus.withLock { last in
            if last == line { return false }
            last = line
            return true
        }
        if changed { send("STATUS=\(line)") }
    }

    /// `WATCHDOG=1`, at most once per quarter of `WatchdogSec=`: call it from the path that shows progress
    /// (media arriving, an fsync done, a pass finished), never from a timer of its own, so a hung process
    /// is killed (systemd.service(5) `WatchdogSec=`).
    public func watchdog() {
        guard watchdogInterval != nil else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        let due = lastPing.withLock { last in
            if last != 0, now &- last < minimumGapNanos { return false }
            last = now
            return true
        }
        if due { send("WATCHDOG=1") }
    }

    /// `STOPPING=1` with a status line: a clean stop has begun.
    public func stopping(status: String = "stopping") {
        send("STOPPING=1\nSTATUS=\(Self.oneLine(status))")
    }

    static func oneLine(_ text: String) -> String {
        String(text.map { $0 == "\n" || $0 == "\r" ? " " : $0 }.prefix(200))
    }
}

extension ServiceNotifier {
    /// Pings the watchdog every third of `WatchdogSec=` while `isProgressing()` says the service's loop
    /// still turns, until the task is cancelled; returns at once without a watchdog. For the services whose
    /// work is asynchronous (pruner, discovery, web): a wedged cooperative thread pool stops the pings too.
    public func heartbeat(isProgressing: @Sendable () -> Bool = { true }) async {
        guard let interval = watchdogInterval else { return }
        while !Task.isCancelled {
            if isProgressing() { watchdog() }
            try? await Task.sleep(for: interval / 3)
        }
    }
}
