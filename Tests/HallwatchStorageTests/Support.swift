import Foundation
import HallwatchCore
import Logging
@testable import HallwatchStorage

func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }

/// Deterministic pseudo-random numbers for payloads.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func bytes(_ n: Int) -> [UInt8] {
        var out = [UInt8](); out.reserveCapacity(n + 8)
        while out.count < n { withUnsafeBytes(of: next()) { out.append(contentsOf: $0) } }
        return Array(out.prefix(n))
    }
}

func fragmentMeta(run: UInt64, sequence: UInt32, duration90k: Int32 = 45_000, keyframe: Bool = true, runStartUTC: Int64 = 1_764_000_000_000_000) -> FragmentMeta {
    let start = Int64(sequence - 1) * Int64(duration90k)
    return FragmentMeta(kind: .fragment, keyframe: keyframe, run: run, sequence: sequence, start90k: MediaTime90k(start),
                        duration90k: duration90k, utc: UTCMicros(runStartUTC).adding(MediaTime90k(start)))
}

func initMeta(run: UInt64, runStartUTC: Int64 = 1_764_000_000_000_000) -> FragmentMeta {
    FragmentMeta(kind: .initSegment, keyframe: false, run: run, sequence: 0, start90k: .zero, duration90k: 0, utc: UTCMicros(runStartUTC))
}

/// A fresh temporary directory, removed by `cleanup()`.
struct TempDir {
    let path: String
    init(_ name: String = #function) {
        let base = FileManager.default.temporaryDirectory.path + "/hallwatch-storage-tests"
        try? FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let clean = name.filter { $0.isLetter || $0.isNumber }
        path = base + "/\(clean)-\(UUID().uuidString.prefix(8))"
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// Clocks frozen at a settable instant.
final class TestClocks: Clocks, @unchecked Sendable {
    private let lock = NSLock()
    private var now: Int64
    init(_ micros: Int64 = 1_764_000_000_000_000) { now = micros }
    func utcNow() -> UTCMicros { lock.lock(); defer { lock.unlock() }; return UTCMicros(now) }
    func monotonicNanos() -> UInt64 { lock.lock(); defer { lock.unlock() }; return UInt64(now) * 1000 }
    func advance(micros: Int64) { lock.lock(); now += micros; lock.unlock() }
}

let testLogger: Logger = {
    var l = Logger(label: "hallwatch.storage.test")
    l.logLevel = .warning
    return l
}()
