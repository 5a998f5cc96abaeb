import HallwatchCore
import Synchronization

/// Login throttling with bounded exponential back-off (OWASP Authentication Cheat Sheet, "Login throttling";
/// its "device cookie" idea, keyed here by address). Unknown account names are counted exactly like known ones,
/// so the throttle tells nothing about which names exist. Three counters, none of which lets an attacker
/// elsewhere lock the real user out:
///
/// 1. **(account, address)**: after ``freeFailures`` failures the pair is locked for
///    `2^(failures − freeFailures)` seconds, at most ``maxLock``, from its last failure. A school's NAT address
///    with one bad typist locks that typist's name only; an attacker guessing `admin` from elsewhere locks only
///    its own pair.
/// 2. **address, across names** (password spraying): an address that failed for ``sprayNames`` different names
///    is locked for the names it never signed in with, back-off bounded by ``maxSprayLock`` (a minute: the other
///    people behind a NAT wait at most that while someone sprays from it).
/// 3. **account, across addresses** (guessing one name from many addresses): after ``accountFailures``
///    failures the name is locked with back-off up to ``maxLock`` — but only for addresses that never signed in
///    with it. The real user's usual address stays open (memory of successes: ``maxKeys`` pairs, read back
///    from the audit log's `login.success` entries when the web starts: ``remember(address:account:atMicros:)``).
///
/// A success clears its pair (not the address's spray count, nor the account's count: one right password
/// must not reset a guesser's). Counts are forgotten ``forgetAfter`` after their last failure. Memory is
/// bounded: at most ``maxKeys`` entries per table, the stalest dropped first.
public final class LoginThrottle: Sendable {
    /// Failures of one (account, address) pair before its first lock.
    public static let freeFailures = 3
    /// Longest lock of a pair or an account.
    public static let maxLock: Duration = .seconds(15 * 60)
    /// Different names one address may fail with before it is locked for names it never signed in with.
    public static let sprayNames = 10
    /// Longest lock of a spraying address.
    public static let maxSprayLock: Duration = .seconds(60)
    /// Failures of one name, from addresses that never signed in with it, before it is locked for them.
    public static let accountFailures = 20
    /// A count is forgotten this long after its last failure.
    public static let forgetAfter: Duration = .seconds(3600)
    /// Most entries remembered per table.
    public static let maxKeys = 10_000

    struct Entry {
        var failures: Int
        var lastFailureMicros: Int64
    }
    struct Tables {
        /// By ``pairKey(address:account:)``.
        var pairs: [String: Entry] = [:]
        /// By account name: failures from addresses that never signed in with it.
        var accounts: [String: Entry] = [:]
        /// By address: the names it failed with, and when last.
        var addresses: [String: [String: Int64]] = [:]
        /// Pairs that signed in, and when last.
        var known: [String: Int64] = [:]
    }
    let tables = Mutex(Tables())
    let clocks: any Clocks

    public init(clocks: any Clocks) { self.clocks = clocks }

    /// The longest remaining lock that applies to a login of `account` from `address`, or `nil` when one may be
    /// tried now.
    public func lockRemaining(address: String, account: String) -> Duration? {
        let now = clocks.utcNow().micros
        let pair = Self.pairKey(address: address, account: account)
        return tables.withLock { t in
            var remaining: [Int64] = []
            if let e = t.pairs[pair], e.failures >= Self.freeFailures {
                remaining.append(
                    e.lastFailureMicros + Self.lockMicros(e.failures - Self.freeFailures, Self.maxLock) - now)
            }
            if t.known[pair] == nil {
                if let e = t.accounts[account], e.failures >= Self.accountFailures {
                    remaining.append(
                        e.lastFailureMicros + Self.lockMicros(e.failures - Self.accountFailures, Self.maxLock) - now)
                }
                if let names = t.addresses[address], names.count >= Self.sprayNames, let last = names.values.max() {
                    remaining.append(last + Self.lockMicros(names.count - Self.sprayNames, Self.maxSprayLock) - now)
                }
            }
            return remaining.max().flatMap { $0 > 0 ? .microseconds($0) : nil }
        }
    }

    /// Counts a failed login.
    public func failed(address: String, account: String) {
        let now = clocks.utcNow().micros
        let forget = Self.micros(Self.forgetAfter)
        let pair = Self.pairKey(address: address, account: account)
        tables.withLock { t in
            func count(_ e: Entry?) -> Entry {
                guard let e, now - e.lastFailureMicros < forget else {
                    return Entry(failures: 1, lastFailureMicros: now)
                }
                return Entry(failures: e.failures + 1, lastFailureMicros: now)
            }
            Self.makeRoom(&t.pairs, for: pair) { $0.lastFailureMicros }
            t.pairs[pair] = count(t.pairs[pair])
            if t.known[pair] == nil {
                Self.makeRoom(&t.accounts, for: account) { $0.lastFailureMicros }
                t.accounts[account] = count(t.accounts[account])
            }
            Self.makeRoom(&t.addresses, for: address) { $0.values.max() ?? 0 }
            var names = (t.addresses[address] ?? [:]).filter { now - $0.value < forget }
            if names[account] != nil || names.count < Self.maxNamesPerAddress { names[account] = now }
            t.addresses[address] = names
        }
    }

    /// Clears the pair's count after a successful login and remembers the pair as the account's own.
    public func succeeded(address: String, account: String) {
        let now = clocks.utcNow().micros
        let pair = Self.pairKey(address: address, account: account)
        tables.withLock { t in
            t.pairs[pair] = nil
            Self.makeRoom(&t.known, for: pair) { $0 }
            t.known[pair] = now
        }
    }

    /// Remembers that `account` signed in from `address` at `atMicros` (read back from the audit log at start,
    /// so a restart does not forget the addresses the per-name lock spares).
    public func remember(address: String, account: String, atMicros: Int64) {
        let pair = Self.pairKey(address: address, account: account)
        tables.withLock { t in
            Self.makeRoom(&t.known, for: pair) { $0 }
            t.known[pair] = max(t.known[pair] ?? atMicros, atMicros)
        }
    }

    /// Names remembered per address (more than ``sprayNames`` changes nothing but the back-off's length).
    static let maxNamesPerAddress = 64

    /// Drops the stalest entry of `table` when it is full and `key` is new.
    static func makeRoom<V>(_ table: inout [String: V], for key: String, age: (V) -> Int64) {
        guard table[key] == nil, table.count >= maxKeys,
            let stalest = table.min(by: { age($0.value) < age($1.value) })
        else { return }
        table[stalest.key] = nil
    }

    static func pairKey(address: String, account: String) -> String { account + "\u{0}" + address }
    static func micros(_ d: Duration) -> Int64 { d.components.seconds * 1_000_000 }
    /// `2^step` seconds, at most `max`, in µs.
    static func lockMicros(_ step: Int, _ max: Duration) -> Int64 {
        min(Int64(1) << Swift.max(0, min(step, 20)), max.components.seconds) * 1_000_000
    }
}
