import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchMedia
import HallwatchStorage

/// Export of a camera's recording as evidence (`hallwatchctl export`, later the web process): resolve the
/// readable disks, build the ``HallwatchStorage/RecordingStream`` of the range from the indexes, and remux
/// it run by run with ``HallwatchMedia/Exporter`` while reading the records lazily (<doc:HallwatchEvidence>
/// § Export).
public enum EvidenceExport {
    /// Every configured disk (`recorder.disks`), opened for reading; disks that cannot be read are left out.
    public static func library(_ config: HallwatchConfig) -> RecordingLibrary {
        RecordingLibrary(disks: config.recorder.disks.map { ($0.name, $0.path) }, box: config.box)
    }

    /// Every configured disk, opened for an operator's command. A disk that exists but cannot be read (a
    /// damaged index or `meta`, another box's disk) is named through `warn` and left out — its video is
    /// not in the answer, and the operator must know that; with no readable disk at all it is an error.
    /// A disk with no index yet holds nothing indexed and is left out silently.
    /// - Throws: ``HallwatchCore/ErrorEvent`` with code `storage.unreadable`.
    public static func readable(_ config: HallwatchConfig, warn: (String) -> Void) throws -> RecordingLibrary {
        let lib = library(config)
        let bad = lib.unreadable.filter { $0.error.code != .noIndex }
        for b in bad { warn("disk \(b.name) could not be read; its recordings are left out: \(b.error)") }
        if lib.readers.isEmpty && !bad.isEmpty {
            throw ErrorEvent(
                code: "storage.unreadable",
                message: "no recording disk could be read: "
                    + bad.map { "\($0.name): \($0.error)" }.joined(separator: "; "))
        }
        return lib
    }

    /// Refuses a camera that is neither configured nor recorded on the disks (a typo, most likely).
    /// - Throws: ``HallwatchCore/ErrorEvent`` with code `ctl.unknownCamera`, naming the known cameras.
    public static func requireKnown(_ camera: CameraID, _ config: HallwatchConfig) throws {
        if config.camera(camera) != nil { return }
        let onDisk = (try? library(config).cameras()) ?? []
        guard onDisk.contains(camera) else {
            let known = (config.cameras.map(\.id) + onDisk).map(\.rawValue)
            throw ErrorEvent(
                code: "ctl.unknownCamera",
                message:
                    "no camera '\(camera)' in the configuration or on the disk; known: \(Array(Set(known)).sorted().joined(separator: ", "))"
            )
        }
    }

    /// Refuses an output path an export must not write: a symbolic link (it would be followed, even a dangling
    /// one), a directory, or any path inside a configured recording disk (an export over `meta` or the index
    /// would destroy the disk). The check resolves the parent directory's real path, so `..` and links in it do
    /// not hide a disk.
    /// With `allowDirectory` (an evidence bundle's directory) an existing directory is accepted.
    /// - Throws: ``HallwatchCore/ErrorEvent`` `export.badOutput`.
    public static func checkOutput(_ out: String, config: HallwatchConfig, allowDirectory: Bool = false) throws {
        func refuse(_ why: String) -> ErrorEvent {
            ErrorEvent(
                code: "export.badOutput", message: "cannot write the export to \(printable(out, limit: 200)): \(why)")
        }
        var st = stat()
        if lstat(out, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFLNK { throw refuse("it is a symbolic link") }
            if (st.st_mode & S_IFMT) == S_IFDIR && !allowDirectory { throw refuse("it is a directory") }
        }
        let url = URL(fileURLWithPath: out)
        let parent = url.deletingLastPathComponent().path
        guard let real = realpath(parent, nil) else {
            throw refuse("its directory \(printable(parent, limit: 200)) does not exist")
        }
        let resolved = String(cString: real) + "/" + url.lastPathComponent
        free(real)
        for disk in config.recorder.disks {
            guard let d = realpath(disk.path, nil) else { continue }
            let diskPath = String(cString: d)
            free(d)
            if resolved == diskPath || resolved.hasPrefix(diskPath + "/") {
                throw refuse("it is inside recording disk \(disk.name)")
            }
        }
    }

    /// Exports `[from, to)` of a camera on the configured disks to `out` (and `NAME-2.mp4`, … when codec
    /// parameters change between runs; see ``HallwatchMedia/Exporter``).
    /// - Parameters:
    ///   - from: Start, box UTC µs (inclusive; the export starts at the keyframe at or before it).
    ///   - to: End, box UTC µs (exclusive).
    ///   - out: The first output file (`.mp4`), replaced if it exists.
    ///   - warn: Told about each disk left out because it cannot be read.
    /// - Throws: as ``checkOutput(_:config:)``, ``requireKnown(_:_:)``, ``readable(_:warn:)`` and
    ///   ``export(from:camera:from:to:out:)``.
    public static func export(
        config: HallwatchConfig, camera: CameraID, from: UTCMicros, to: UTCMicros, out: String,
        warn: (String) -> Void = { _ in }
    ) throws -> ExportSummary {
        try checkOutput(out, config: config)
        try requireKnown(camera, config)
        return try export(from: readable(config, warn: warn), camera: camera, from: from, to: to, out: out)
    }

    /// Exports `[from, to)` of a camera recorded on `library`'s disks to `out`, reading one record at a time.
    /// - Throws: ``HallwatchMedia/MediaError`` `media.export` with "nothing recorded" for an empty range, or
    ///   when a run cannot be remuxed or a file written; ``HallwatchStorage/StorageError`` when the index
    ///   cannot be read or a record was overwritten meanwhile (`storage.overwritten`) or fails its CRC-32C
    ///   (`storage.corrupt`) — the export stops there rather than leave a silent hole.
    public static func export(
        from library: RecordingLibrary, camera: CameraID, from: UTCMicros, to: UTCMicros,
        out: String
    ) throws -> ExportSummary {
        let stream = try library.stream(camera: camera, from: from, to: to)
        guard stream.fragmentCount > 0 else {
            throw MediaError("media.export", "nothing recorded for \(camera) between \(from.iso8601) and \(to.iso8601)")
        }
        return try Exporter.write(stream.runs.map(RecordingByteSource.init), to: out)
    }
}

/// A ``HallwatchStorage/RecordingStream`` (here one run: init segment, then fragments) as the media library's
/// ``HallwatchMedia/SeekableByteSource``, read through a ``HallwatchStorage/RecordingStreamCursor``: at most
/// one record's payload is held at a time.
public final class RecordingByteSource: SeekableByteSource {
    private let cursor: RecordingStreamCursor
    private let onProgress: ((Int64) -> Void)?
    private var furthest: Int64 = 0
    private var reported: Int64 = 0

    /// A source reading `stream` lazily.
    public init(_ stream: RecordingStream) {
        cursor = stream.cursor()
        onProgress = nil
    }

    /// A source reading `stream` lazily that tells `progress` the furthest byte read so far, every
    /// ``EvidenceBundle/progressStepBytes`` (the remux reads a run front to back, with short looks back).
    public init(_ stream: RecordingStream, progress: @escaping (Int64) -> Void) {
        cursor = stream.cursor()
        onProgress = progress
    }

    /// The stream's length, bytes.
    public var lengthBytes: Int64 { cursor.length }

    /// Bytes from `offset`, read from the records that hold them.
    /// - Throws: ``HallwatchStorage/StorageError`` (`overwritten`, `corrupt`, `io`).
    public func read(at offset: Int64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = try cursor.read(at: offset, into: buffer)
        if let onProgress, offset + Int64(n) > furthest {
            furthest = offset + Int64(n)
            if furthest - reported >= EvidenceBundle.progressStepBytes {
                reported = furthest
                onProgress(furthest)
            }
        }
        return n
    }
}
