import Foundation

/// Clocks whose time moves only when told: for tests and simulations of back-off and cadence loops.
///
/// UTC and monotonic time move together (``advance(by:)``); ``stepUTC(by:)`` moves UTC alone, as an NTP step
/// would. Every sleep is recorded in ``sleeps`` (in the order asked). With `autoAdvance` (the default) a
/// sleep moves time forward by its duration at once and returns, so a loop runs to its end in no real time;
/// without it a sleeper waits until ``advance(by:)`` reaches its deadline (a task is woken, a blocked thread
/// notices within a millisecond).
public final class SimulatedClocks: Clocks, @unchecked Sendable {
    // Everything below is guarded by `lock`.
    private let lock = NSLock()
    private var utc: Int64
    private var mono: UInt64
    private var recorded: [Duration] = []
    private var waiters: [Int: (deadline: UInt64, resume: CheckedContinuation<Void, any Error>)] = [:]
    private var nextWaiter = 0
    /// Whether a sleep moves time forward by itself.
    public let autoAdvance: Bool

    /// Clocks at `utc` (µs since the epoch) and monotonic `monotonicNanos`.
    public init(
        utc: UTCMicros = UTCMicros(1_764_000_000_000_000), monotonicNanos: UInt64 = 1_000_000_000,
        autoAdvance: Bool = true
    ) {
        self.utc = utc.micros
        self.mono = monotonicNanos
        self.autoAdvance = autoAdvance
    }

    /// Simulated UTC.
    public func utcNow() -> UTCMicros { lock.withLock { UTCMicros(utc) } }
    /// Simulated monotonic time.
    public func monotonicNanos() -> UInt64 { lock.withLock { mono } }
    /// Every duration slept so far, in the order the sleeps began.
    public var sleeps: [Duration] { lock.withLock { recorded } }

    /// Moves UTC and monotonic time forward by `d` (≥ 0) and wakes the sleepers whose deadline passed.
    public func advance(by d: Duration) {
        let woken: [CheckedContinuation<Void, any Error>] = lock.withLock {
            mono &+= UInt64(max(0, d.nanoseconds))
            utc += max(0, d.nanoseconds) / 1000
            let due = waiters.filter { $0.value.deadline <= mono }
            for key in due.keys { waiters[key] = nil }
            return due.values.map(\.resume)
        }
        for c in woken { c.resume() }
    }

    /// Steps UTC alone by `d` (either sign), as an NTP step or an operator would.
    public func stepUTC(by d: Duration) { lock.withLock { utc += d.nanoseconds / 1000 } }

    /// Records `duration`; with `autoAdvance` moves time by it, else waits until time reaches its end.
    public func sleep(for duration: Duration) async throws {
        try Task.checkCancellation()
        let deadline: UInt64 = lock.withLock {
            recorded.append(duration)
            return mono &+ UInt64(max(0, duration.nanoseconds))
        }
        if autoAdvance {
            advance(by: duration)
            return
        }
        let id = lock.withLock {
            nextWaiter += 1
            return nextWaiter
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
                let now: Bool? = lock.withLock {
                    if Task.isCancelled { return false }
                    if mono >= deadline { return true }
                    waiters[id] = (deadline, c)
                    return nil
                }
                switch now {
                case true: c.resume()
                case false: c.resume(throwing: CancellationError())
                default: break
                }
            }
        } onCancel: {
            lock.withLock { waiters.removeValue(forKey: id) }?.resume.resume(throwing: CancellationError())
        }
    }

    /// Records `duration`; with `autoAdvance` moves time by it (unless `stop()` already holds), else blocks
    /// until time reaches its end or `stop()` is true.
    @discardableResult
    public func sleepBlocking(for duration: Duration, unless stop: () -> Bool) -> Bool {
        let deadline: UInt64 = lock.withLock {
            recorded.append(duration)
            return mono &+ UInt64(max(0, duration.nanoseconds))
        }
        if autoAdvance {
            if stop() { return false }
            advance(by: duration)
            return true
        }
        while !stop() {
            if lock.withLock({ mono >= deadline }) { return true }
            usleep(1000)
        }
        return false
    }
}
