import HallwatchCore
import Synchronization

/// Login throttling per client address and per account name, with exponential back-off (OWASP Authentication
/// Cheat Sheet, "Login throttling"). Unknown account names are counted exactly like known ones, so the
/// throttle tells nothing about which names exist.
///
/// After ``freeFailures`` failures a key is locked for `2^(failures − freeFailures)` seconds, at most
/// ``maxLock``, counted from its last failure. A success clears the account's count (not the address's: one
/// right password must not reset a guesser's address). Memory is bounded: at most ``maxKeys`` keys, the
/// stalest dropped first.
public final class LoginThrottle: Sendable {
    /// Failures per key before the first lock.
    public static let freeFailures = 3
    /// Longest lock.
    public static let maxLock: Duration = .seconds(15 * 60)
    /// Most addresses and names remembered at once.
    public static let maxKeys = 10_000
    struct Entry {
        var failures: Int
        var lastFailureMicros: Int64
    }
    let entries = Mutex<[String: Entry]>([:])
    let clocks: any Clocks

    public init(clocks: any Clocks) { self.clocks = clocks }

    /// The longest remaining lock of `address` and `account`, or `nil` when a login may be tried now.
    public func lockRemaining(address: String, account: String) -> Duration? {
        let now = clocks.utcNow().micros
        return entries.withLock { e in
            let remaining = [Self.key(address: address), Self.key(account: account)].compactMap { k -> Int64? in
                guard let entry = e[k], entry.failures >= Self.freeFailures else { return nil }
                let left = entry.lastFailureMicros + Self.lockMicros(failures: entry.failures) - now
                return left > 0 ? left : nil
            }.max()
            return remaining.map { .microseconds($0) }
        }
    }

    /// Counts a failed login.
    public func failed(address: String, account: String) {
        let now = clocks.utcNow().micros
        entries.withLock { e in
            if e.count >= Self.maxKeys,
                let stalest = e.min(by: { $0.value.lastFailureMicros < $1.value.lastFailureMicros })
            {
                e[stalest.key] = nil
            }
            for k in [Self.key(address: address), Self.key(account: account)] {
                e[k, default: Entry(failures: 0, lastFailureMicros: now)].failures += 1
                e[k]!.lastFailureMicros = now
            }
        }
    }

    /// Clears the account's count after a successful login.
    public func succeeded(account: String) {
        entries.withLock { _ = $0.removeValue(forKey: Self.key(account: account)) }
    }

    static func key(address: String) -> String { "a:" + address }
    static func key(account: String) -> String { "u:" + account }
    static func lockMicros(failures: Int) -> Int64 {
        let exponent = min(failures - freeFailures, 20)
        return min(Int64(1) << exponent, maxLock.components.seconds) * 1_000_000
    }
}
