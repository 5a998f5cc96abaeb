import Foundation

/// Waits for one of the given signals (delivered through a DispatchSource, not a C handler).
public final class SignalWaiter: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let stream: AsyncStream<Int32>
    private let continuation: AsyncStream<Int32>.Continuation
    /// Ignores `signals`' default action and delivers them to ``wait()`` instead.
    public init(_ signals: [Int32]) {
        (stream, continuation) = AsyncStream<Int32>.makeStream()
        for s in signals {
            signal(s, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: s, queue: .global())
            let c = continuation
            src.setEventHandler { c.yield(s) }
            src.resume()
            sources.append(src)
        }
    }
    /// Returns when the first of the signals arrives.
    public func wait() async { for await _ in stream { return } }
}
