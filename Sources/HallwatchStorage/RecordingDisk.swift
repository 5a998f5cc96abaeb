import Foundation
import HallwatchCore

/// The `meta` file at the root of a recording disk (JSON, written once by
/// ``RecordingDisk/initialize(at:box:slotCount:slotSizeBytes:clocks:progress:)``).
///
/// ```json
/// {"box":"lincoln-elementary","createdAt":1764449543125000,"diskUUID":"6F1C…","formatVersion":1,
///  "slotCount":2048,"slotSizeBytes":1073741824}
/// ```
public struct DiskMeta: Codable, Sendable, Equatable {
    /// The only version this code reads and writes.
    public static let currentFormatVersion = 1

    /// On-disk format version (1).
    public var formatVersion: Int
    /// The disk's identity; repeated in every slot header.
    public var diskUUID: UUID
    /// The box that owns the disk; a disk from another box is quarantined, never written.
    public var box: String
    /// Size of every slot file, bytes (header included).
    public var slotSizeBytes: Int64
    /// Number of slot files, `slots/000000.slot` to `slots/<slotCount-1>.slot`.
    public var slotCount: Int
    /// When the disk was initialised: box UTC, µs since the epoch.
    public var createdAt: UTCMicros
}

/// A recording disk's directory: the `meta` file, the `slots/` directory of equal, zero-filled slot
/// files and the `index.sqlite` cache (DESIGN.md § Storage; layout in <doc:OnDiskFormat>).
///
/// This type only formats and validates; ``DiskWriter`` writes records and ``RecordingReader`` reads them.
public struct RecordingDisk: Sendable {
    /// The directory, as given.
    public let path: String
    /// The validated `meta`.
    public let meta: DiskMeta

    /// Smallest slot size accepted, bytes (64 KiB).
    public static let minSlotSizeBytes: Int64 = 64 << 10
    /// Largest slot size accepted, bytes (64 GiB).
    public static let maxSlotSizeBytes: Int64 = 64 << 30
    /// Largest slot count (the file names have six digits).
    public static let maxSlotCount = 999_999

    /// `<path>/meta`
    public var metaPath: String { path + "/meta" }
    /// `<path>/index.sqlite`
    public var indexPath: String { path + "/index.sqlite" }
    /// `<path>/slots/NNNNNN.slot`
    public func slotPath(_ slot: Int) -> String { Self.slotPath(path, slot) }
    static func slotPath(_ disk: String, _ slot: Int) -> String {
        let n = String(slot)
        return disk + "/slots/" + String(repeating: "0", count: max(0, 6 - n.count)) + n + ".slot"
    }

    /// Formats `path` as a recording disk (protocol steps I1–I5 in <doc:WriteProtocol>).
    ///
    /// Every slot file is written in full with zeros behind its generation-0 header, so steady-state
    /// appends never allocate blocks or change file size and `fdatasync` flushes data only. This takes
    /// as long as writing the whole disk once.
    ///
    /// - Parameters:
    ///   - path: The directory (created if missing). It must be empty (a `lost+found` is ignored) or
    ///     hold an interrupted initialisation (`meta.initializing`, no `meta`), which is redone.
    ///   - box: The owning box's name, stored in `meta`.
    ///   - slotCount: Number of slots, 1…999 999.
    ///   - slotSizeBytes: Bytes per slot file, a multiple of 4096 between 64 KiB and 64 GiB.
    ///   - clocks: Source of `createdAt`.
    ///   - progress: Called after each slot with (slots done, slot count).
    /// - Throws: ``StorageError/Code/alreadyInitialized`` if `meta` exists; ``StorageError/Code/foreignDisk``
    ///   if the directory holds anything else; ``StorageError/Code/invalidArgument``; ``StorageError/Code/io``.
    public static func initialize(
        at path: String, box: String, slotCount: Int, slotSizeBytes: Int64,
        clocks: any Clocks = SystemClocks(),
        progress: (_ slotsDone: Int, _ slotCount: Int) -> Void = { _, _ in }
    ) throws(StorageError) -> RecordingDisk {
        guard (1...maxSlotCount).contains(slotCount) else {
            throw StorageError(.invalidArgument, "slot count \(slotCount) is outside 1…\(maxSlotCount)")
        }
        guard (minSlotSizeBytes...maxSlotSizeBytes).contains(slotSizeBytes), slotSizeBytes % 4096 == 0 else {
            throw StorageError(
                .invalidArgument,
                "slot size \(slotSizeBytes) bytes is not a multiple of 4096 between \(minSlotSizeBytes) and \(maxSlotSizeBytes)"
            )
        }
        guard !box.isEmpty else { throw StorageError(.invalidArgument, "empty box name") }

        // I1. Only an empty directory, or one holding an interrupted initialisation, may be formatted.
        // An interrupted one never had `meta`, so no writer ever recorded to it.
        try FileOps.makeDirectory(path)
        let entries = Set(try FileOps.entries(path)).subtracting(["lost+found"])
        if entries.contains("meta") { throw StorageError(.alreadyInitialized, "\(path) already is a recording disk") }
        guard entries.isSubset(of: ["meta.initializing", "slots"]),
            entries.isEmpty || entries.contains("meta.initializing")
        else {
            throw StorageError(
                .foreignDisk,
                "\(path) is not empty and holds no recording-disk meta (found \(entries.sorted().prefix(5).joined(separator: ", ")))"
            )
        }

        // I2. Claim the directory: the meta, under a name `open` does not accept yet.
        let meta = DiskMeta(
            formatVersion: DiskMeta.currentFormatVersion, diskUUID: UUID(), box: box,
            slotSizeBytes: slotSizeBytes, slotCount: slotCount, createdAt: clocks.utcNow())
        let pending = path + "/meta.initializing"
        try FileOps.writeFileDurably(pending, try encodeMeta(meta))
        try FileOps.syncDirectory(path)

        // I3. Every slot file: generation-0 header, then zeros up to the full size, fsync'd.
        try FileOps.makeDirectory(path + "/slots")
        let zeros = [UInt8](repeating: 0, count: Int(min(slotSizeBytes, 1 << 20)))
        for slot in 0..<slotCount {
            let file = slotPath(path, slot)
            let fd = retryingEINTR { Foundation.open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640) }
            guard fd >= 0 else { throw .io("open", path: file) }
            defer { _ = Foundation.close(fd) }
            var offset: Int64 = 0
            while offset < slotSizeBytes {
                let n = Int(min(Int64(zeros.count), slotSizeBytes - offset))
                let at = offset
                try narrow {
                    try zeros.withUnsafeBytes { z in
                        try writeAll(
                            fd: fd, path: file, UnsafeRawBufferPointer(rebasing: z[0..<n]),
                            UnsafeRawBufferPointer(start: nil, count: 0), at: at)
                    }
                }
                offset += Int64(n)
            }
            let header = SlotHeader(
                diskUUID: meta.diskUUID, slot: slot, generation: 0, takeSequence: 0, takenAt: UTCMicros(0), camera: nil
            ).encode()
            try narrow {
                try header.withUnsafeBytes { h in
                    try writeAll(fd: fd, path: file, h, UnsafeRawBufferPointer(start: nil, count: 0), at: 0)
                }
            }
            guard retryingEINTR({ fsync(fd) }) == 0 else { throw .io("fsync", path: file) }
            progress(slot + 1, slotCount)
        }
        // I4. The slot files' directory entries.
        try FileOps.syncDirectory(path + "/slots")
        // I5. Publish: from the rename on, `open` accepts the disk.
        try FileOps.rename(pending, path + "/meta")
        try FileOps.syncDirectory(path)
        return RecordingDisk(path: path, meta: meta)
    }

    /// Opens an initialised disk and validates it: `meta` decodes, its version is known, its box is
    /// `box` (when given), and every slot file exists with the right size.
    ///
    /// - Parameters:
    ///   - path: The disk's directory.
    ///   - box: The expected owner; `nil` accepts any box (reading a pulled disk).
    /// - Throws: ``StorageError/Code/notInitialized`` (no `meta`), ``StorageError/Code/foreignDisk``
    ///   (another box's disk: quarantine it), ``StorageError/Code/version``, ``StorageError/Code/corrupt``
    ///   (undecodable `meta`, missing or wrongly sized slot file), ``StorageError/Code/io``.
    public static func open(at path: String, box: String? = nil) throws(StorageError) -> RecordingDisk {
        let metaPath = path + "/meta"
        guard FileOps.exists(metaPath) else {
            throw StorageError(
                .notInitialized,
                "\(path) has no meta file\(FileOps.exists(path + "/meta.initializing") ? " (initialisation was interrupted)" : "")"
            )
        }
        let meta = try decodeMeta(try FileOps.readFile(metaPath), path: metaPath)
        if let box, meta.box != box {
            throw StorageError(.foreignDisk, "\(path) belongs to box \"\(meta.box)\", not \"\(box)\"")
        }
        for slot in 0..<meta.slotCount {
            let file = slotPath(path, slot)
            guard let size = FileOps.fileSize(file) else {
                throw StorageError(.corrupt, "slot file \(file) is missing")
            }
            guard size == meta.slotSizeBytes else {
                throw StorageError(.corrupt, "slot file \(file) is \(size) bytes, expected \(meta.slotSizeBytes)")
            }
        }
        return RecordingDisk(path: path, meta: meta)
    }

    /// Opens the disk at `path`, or initialises it when the directory is missing, empty or holds an
    /// interrupted initialisation. Never formats a directory with other contents.
    /// - Throws: as ``open(at:box:)`` and ``initialize(at:box:slotCount:slotSizeBytes:clocks:progress:)``.
    public static func openOrInitialize(
        at path: String, box: String, slotCount: Int, slotSizeBytes: Int64,
        clocks: any Clocks = SystemClocks(),
        progress: (_ slotsDone: Int, _ slotCount: Int) -> Void = { _, _ in }
    ) throws(StorageError) -> RecordingDisk {
        if FileOps.exists(path + "/meta") { return try open(at: path, box: box) }
        return try initialize(
            at: path, box: box, slotCount: slotCount, slotSizeBytes: slotSizeBytes, clocks: clocks, progress: progress)
    }

    static func encodeMeta(_ meta: DiskMeta) throws(StorageError) -> [UInt8] {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        do { return Array(try e.encode(meta)) + [0x0A] } catch {
            throw StorageError(.invalidArgument, "cannot encode meta", cause: "\(error)")
        }
    }

    static func decodeMeta(_ bytes: [UInt8], path: String) throws(StorageError) -> DiskMeta {
        struct Version: Decodable { var formatVersion: Int }
        guard let v = try? JSONDecoder().decode(Version.self, from: Data(bytes)) else {
            throw StorageError(.corrupt, "\(path) is not a recording-disk meta file")
        }
        guard v.formatVersion == DiskMeta.currentFormatVersion else {
            throw StorageError(
                .version,
                "\(path) has format version \(v.formatVersion); this build reads \(DiskMeta.currentFormatVersion)")
        }
        let meta: DiskMeta
        do { meta = try JSONDecoder().decode(DiskMeta.self, from: Data(bytes)) } catch {
            throw StorageError(.corrupt, "\(path) does not decode", cause: "\(error)")
        }
        guard (1...maxSlotCount).contains(meta.slotCount),
            (minSlotSizeBytes...maxSlotSizeBytes).contains(meta.slotSizeBytes)
        else {
            throw StorageError(.corrupt, "\(path) has an impossible slot count or size")
        }
        return meta
    }
}
