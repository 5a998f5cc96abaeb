import Foundation
import GRDB
import HallwatchCore

/// A disk's recent history as its index tells it, in equal time buckets: bytes recorded per camera and bytes
/// in use. What the web page plots for the last 24 h — read from the index, not kept in a second store.
public struct UsageHistory: Sendable, Equatable {
    /// Start of the first bucket (UTC).
    public var from: UTCMicros
    /// Bucket length, µs.
    public var bucketMicros: Int64
    /// Number of buckets.
    public var bucketCount: Int
    /// Per camera: bytes recorded in each bucket (a chunk's bytes spread over its time span).
    public var recordedBytes: [CameraID: [Int64]]
    /// Bytes of recordings on the disk at each bucket's end: what is indexed now and was recorded by then,
    /// plus what the pruner deleted after then (its `deletion` rows). Video reused by the ring without a
    /// deletion row is not counted back, so this is a lower bound in a disk that overran.
    public var usedBytes: [Int64]
    /// The disk's capacity for recordings: slots × slot size, bytes.
    public var capacityBytes: Int64
}

extension RecordingReader {
    /// The disk's ``UsageHistory`` over `[from, from + bucket × count)`.
    /// - Throws: ``StorageError/Code/index``; ``StorageError/Code/invalidArgument`` for a bucket that is not
    ///   positive or a count outside 1–10 000.
    public func usageHistory(from: UTCMicros, bucket: Duration, count: Int) throws(StorageError) -> UsageHistory {
        let bucketMicros = bucket.nanoseconds / 1000
        guard bucketMicros > 0, (1...10_000).contains(count) else {
            throw StorageError(.invalidArgument, "usage history: bucket \(bucket), count \(count)")
        }
        let start = from.micros
        let end = start + bucketMicros * Int64(count)
        var recorded: [CameraID: [Int64]] = [:]
        var used = [Int64](repeating: 0, count: count)
        try withSQLite("reading usage history") {
            try db.read { db in
                // Everything recorded before the window counts in full at every bucket.
                let before =
                    try Int64.fetchOne(
                        db, sql: "SELECT COALESCE(SUM(endOffset - firstOffset), 0) FROM chunk WHERE endUTCMicros <= ?",
                        arguments: [start]) ?? 0
                for i in 0..<count { used[i] = before }
                let rows = try Row.fetchAll(
                    db,
                    sql: """
                        SELECT camera, startUTCMicros, endUTCMicros, endOffset - firstOffset AS bytes FROM chunk
                        WHERE endUTCMicros > ? AND startUTCMicros < ?
                        """, arguments: [start, end])
                for row in rows {
                    guard let camera = CameraID(row["camera"] as String) else { continue }
                    let (s, e, bytes): (Int64, Int64, Int64) = (
                        row["startUTCMicros"], row["endUTCMicros"], row["bytes"]
                    )
                    let span = max(1, e - s)
                    var series = recorded[camera] ?? [Int64](repeating: 0, count: count)
                    for i in 0..<count {
                        let bEnd = start + bucketMicros * Int64(i + 1)
                        let bStart = bEnd - bucketMicros
                        // The part of the chunk in this bucket, and the part before this bucket's end.
                        let inside = max(0, min(e, bEnd) - max(s, bStart))
                        series[i] += bytes * inside / span
                        used[i] += bytes * max(0, min(e, bEnd) - s) / span
                    }
                    recorded[camera] = series
                }
                // Deleted since a bucket's end: it was still on the disk then.
                let deletions = try Row.fetchAll(
                    db,
                    sql: "SELECT bytes, fromUTCMicros, deletedAtUTCMicros FROM deletion WHERE deletedAtUTCMicros > ?",
                    arguments: [start])
                for d in deletions {
                    let (bytes, recordedFrom, deletedAt): (Int64, Int64, Int64) =
                        (d["bytes"], d["fromUTCMicros"], d["deletedAtUTCMicros"])
                    for i in 0..<count {
                        let bEnd = start + bucketMicros * Int64(i + 1)
                        if deletedAt > bEnd && recordedFrom < bEnd { used[i] += bytes }
                    }
                }
            }
        }
        return UsageHistory(
            from: from, bucketMicros: bucketMicros, bucketCount: count, recordedBytes: recorded, usedBytes: used,
            capacityBytes: disk.meta.slotSizeBytes * Int64(disk.meta.slotCount))
    }
}
