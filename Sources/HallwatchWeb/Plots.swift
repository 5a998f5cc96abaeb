import Foundation
import HallwatchCore
import HallwatchStorage
import Synchronization

/// `GET /api/v1/plots`: the last 24 h of bit rate per camera and disk use per disk, in 10-minute buckets,
/// from the recording indexes (``HallwatchStorage/RecordingReader/usageHistory(from:bucket:count:)``), drawn
/// on the status page with Chart.js (Debian's `libjs-chart.js`, served from the box).
public struct PlotData: Codable, Sendable, Equatable {
    /// One camera's bit rate.
    public struct CameraSeries: Codable, Sendable, Equatable {
        public var id: String
        /// Mean bits per second in each bucket (all disks together).
        public var bitsPerSecond: [Double]
    }
    /// One disk's use.
    public struct DiskSeries: Codable, Sendable, Equatable {
        public var name: String
        /// Bytes of recordings at each bucket's end.
        public var usedBytes: [Int64]
        /// Slots × slot size, bytes.
        public var capacityBytes: Int64
    }
    /// Each bucket's end, ISO 8601 UTC.
    public var times: [String]
    /// Each bucket's end in the building's time zone (axis labels).
    public var labels: [String]
    /// Bucket length, seconds.
    public var bucketSeconds: Int
    public var cameras: [CameraSeries]
    public var disks: [DiskSeries]
}

/// Where plot data comes from: the disks in production, a fake in tests. Blocking.
public protocol UsageSource: Sendable {
    /// Each readable disk's name and history.
    func histories(from: UTCMicros, bucket: Duration, count: Int) throws -> [(disk: String, history: UsageHistory)]
}

/// ``UsageSource`` over the configured disks, read-only (opened per call, so a disk that appears is seen).
public struct RecordingUsageSource: UsageSource {
    let disks: [RecordingThumbnailSource.DiskLocation]
    let box: String?
    public init(disks: [RecordingThumbnailSource.DiskLocation], box: String?) {
        self.disks = disks
        self.box = box
    }
    public func histories(from: UTCMicros, bucket: Duration, count: Int) throws -> [(
        disk: String, history: UsageHistory
    )] {
        let library = RecordingLibrary(disks: disks.map { ($0.name, $0.path) }, box: box)
        return try library.readers.map { r in
            (r.name, try r.reader.usageHistory(from: from, bucket: bucket, count: count))
        }
    }
}

/// Builds ``PlotData`` at most once a minute (the newest bucket fills slowly; 10 status pages cost one read).
public final class PlotCache: Sendable {
    /// Buckets of 10 min over 24 h.
    public static let bucket: Duration = .seconds(600)
    public static let bucketCount = 144
    /// How long a computed set of series is served.
    public static let maxAge: Duration = .seconds(60)

    let source: any UsageSource
    let clocks: any Clocks
    let cached = Mutex<(at: MonotonicInstant, histories: [(disk: String, history: UsageHistory)])?>(nil)

    public init(source: any UsageSource, clocks: any Clocks) {
        self.source = source
        self.clocks = clocks
    }

    /// The histories of the 24 h ending at the current bucket's end (cached ``maxAge``).
    func histories() async throws -> [(disk: String, history: UsageHistory)] {
        let now = clocks.monotonicNow()
        if let c = cached.withLock({ $0 }), now - c.at < Self.maxAge { return c.histories }
        let bucketMicros = Self.bucket.nanoseconds / 1000
        let utc = clocks.utcNow().micros
        let end = (utc / bucketMicros + 1) * bucketMicros
        let from = UTCMicros(end - bucketMicros * Int64(Self.bucketCount))
        let source = source
        let result = try await withCheckedThrowingContinuation { c in
            PlotCache.queue.async {
                c.resume(
                    with: Result { try source.histories(from: from, bucket: Self.bucket, count: Self.bucketCount) })
            }
        }
        cached.withLock { $0 = (now, result) }
        return result
    }

    static let queue = DispatchQueue(label: "hallwatch.web.plots")

    /// The plots for a user who may see `visible` cameras (`nil`: all); times labelled in `time`'s zone.
    func plots(visible: Set<String>?, time: BuildingTime) async throws -> PlotData {
        let histories = try await histories()
        guard let first = histories.first?.history else {
            return PlotData(times: [], labels: [], bucketSeconds: 600, cameras: [], disks: [])
        }
        let ends = (1...first.bucketCount).map { UTCMicros(first.from.micros + first.bucketMicros * Int64($0)) }
        var bytes: [String: [Int64]] = [:]
        for (_, h) in histories {
            for (camera, series) in h.recordedBytes where visible?.contains(camera.rawValue) ?? true {
                var sum = bytes[camera.rawValue] ?? [Int64](repeating: 0, count: series.count)
                for i in 0..<min(sum.count, series.count) { sum[i] += series[i] }
                bytes[camera.rawValue] = sum
            }
        }
        let seconds = Double(first.bucketMicros) / 1e6
        return PlotData(
            times: ends.map(\.iso8601), labels: ends.map { String(time.format($0).dropFirst(11).prefix(5)) },
            bucketSeconds: Int(seconds),
            cameras: bytes.keys.sorted().map { id in
                .init(id: id, bitsPerSecond: bytes[id]!.map { (Double($0) * 8 / seconds).rounded() })
            },
            disks: histories.map {
                .init(name: $0.disk, usedBytes: $0.history.usedBytes, capacityBytes: $0.history.capacityBytes)
            })
    }
}
