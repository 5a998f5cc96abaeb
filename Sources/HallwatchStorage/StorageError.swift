import Foundation
import GRDB
import HallwatchCore

/// The one error type of the storage library (STYLE habit 4): a stable ``Code``, a message for people,
/// and the cause (a `SystemError` for failed system calls, SQLite's text for index failures).
///
/// errno and SQLite result codes are turned into this type in this file only, so the choice of which
/// failures mean "this disk is unusable" is made in one place (``isDiskFailure``).
public struct StorageError: HallwatchError {
    /// A stable, machine-readable error code (`storage.*`) for logs, the bus and tests.
    public struct Code: StableErrorCode {
        /// The code text, e.g. `storage.io`.
        public let rawValue: String
        /// Wraps a code text (prefer the constants below).
        public init(rawValue: String) { self.rawValue = rawValue }

        /// A system call on the disk failed (read, write, `fdatasync`, open…); see ``StorageError/system``.
        public static let io = Code(rawValue: "storage.io")
        /// No slot is free and none may be reused (every slot open, unsettled or held as evidence).
        public static let full = Code(rawValue: "storage.full")
        /// Bytes on the disk fail validation: bad magic, CRC-32C, generation, length or field.
        public static let corrupt = Code(rawValue: "storage.corrupt")
        /// A slot was reused (ring or pruner) after the index snapshot that pointed at it was read.
        public static let overwritten = Code(rawValue: "storage.overwritten")
        /// The directory belongs to another box, or is not empty and holds no recording-disk `meta`:
        /// quarantine it, never write to it.
        public static let foreignDisk = Code(rawValue: "storage.foreignDisk")
        /// The directory holds no recording disk (`meta` missing).
        public static let notInitialized = Code(rawValue: "storage.notInitialized")
        /// `initialize` was asked to format a directory that already is a recording disk.
        public static let alreadyInitialized = Code(rawValue: "storage.alreadyInitialized")
        /// The disk or index was written by an unknown format version.
        public static let version = Code(rawValue: "storage.version")
        /// Records arrived in an order the format cannot store (a fragment of a run whose init segment is
        /// unknown, a `hello` frame, …). The caller's bug or a hostile capture worker.
        public static let `protocol` = Code(rawValue: "storage.protocol")
        /// A record larger than an empty slot can hold.
        public static let tooLarge = Code(rawValue: "storage.tooLarge")
        /// The SQLite index failed (see ``StorageError/cause``).
        public static let index = Code(rawValue: "storage.index")
        /// The disk has no `index.sqlite` yet (a reader does not create one; open a ``DiskWriter`` to
        /// rebuild it).
        public static let noIndex = Code(rawValue: "storage.noIndex")
        /// The writer stopped accepting records after an earlier I/O failure (``StorageError/system``
        /// holds the first one); move the cameras to another disk.
        public static let failed = Code(rawValue: "storage.failed")
        /// Another ``DiskWriter`` (in this or another process) has the disk open for writing.
        public static let locked = Code(rawValue: "storage.locked")
        /// An argument out of range (slot count, slot size, …).
        public static let invalidArgument = Code(rawValue: "storage.invalidArgument")
    }

    /// What went wrong, stable across releases.
    public var code: Code
    /// Human-readable detail (paths, slot numbers, offsets in bytes).
    public var message: String
    /// The failed system call, when there was one.
    public var system: SystemError?
    /// Any other cause as text (SQLite's message and result code, a JSON decoding error).
    public var cause: String?

    /// ``code`` as text.
    public var stableCode: String { code.rawValue }

    /// An error with its code, message and cause.
    public init(_ code: Code, _ message: String, system: SystemError? = nil, cause: String? = nil) {
        self.code = code
        self.message = message
        self.system = system
        self.cause = cause
    }

    /// True when the disk itself is unusable (full, failing, read-only or gone) rather than the caller
    /// wrong: the recorder should mark the disk failed and move its cameras.
    public var isDiskFailure: Bool {
        if let system { return system.isDiskFailure }
        return code == .failed
    }

    /// `[code] message`, then the failed system call and the cause when there are.
    public var description: String {
        var s = "[\(code)] \(message)"
        if let system { s += ": \(system)" }
        if let cause { s += ": \(cause)" }
        return s
    }
}

extension StorageError {
    /// A failed system call; `errno` is read by `SystemError.init(_:errno:subject:)`'s default, so
    /// call this immediately after the failing call.
    static func io(_ call: String, path: String, errno: Int32 = Foundation.errno, _ message: String? = nil)
        -> StorageError
    {
        StorageError(
            .io, message ?? "\(call) failed on \(path)", system: SystemError(call, errno: errno, subject: path))
    }

    /// Maps anything GRDB or SQLite throws.
    static func sqlite(_ error: any Error, _ doing: String) -> StorageError {
        if let e = error as? StorageError { return e }
        if let e = error as? DatabaseError {
            let cause = "SQLite \(e.extendedResultCode.rawValue): \(e.message ?? "\(e)")"
            // The file system under the index is full, failing or read-only: the disk is unusable, like
            // a failed write to a slot (the recorder moves the disk's cameras).
            let errno: Int32? =
                switch e.resultCode {
                case .SQLITE_FULL: ENOSPC
                case .SQLITE_IOERR: EIO
                case .SQLITE_READONLY: EROFS
                default: nil
                }
            if let errno {
                return StorageError(
                    .io, doing, system: SystemError("sqlite", errno: errno, subject: "index.sqlite"), cause: cause)
            }
            return StorageError(.index, doing, cause: cause)
        }
        return StorageError(.index, doing, cause: "\(error)")
    }

    /// Whether a SQLite error means the index file itself is damaged (then it is moved aside and rebuilt).
    static func isDamagedIndex(_ error: any Error) -> Bool {
        guard let e = error as? DatabaseError else { return false }
        return e.resultCode == .SQLITE_CORRUPT || e.resultCode == .SQLITE_NOTADB
    }
}

/// Runs `body`, mapping whatever it throws to ``StorageError/Code/index``.
@inline(__always)
func withSQLite<T>(_ doing: @autoclosure () -> String, _ body: () throws -> T) throws(StorageError) -> T {
    do { return try body() } catch { throw StorageError.sqlite(error, doing()) }
}

/// Narrows what a `rethrows` standard-library call (`withUnsafeBytes`, …) throws back to
/// ``StorageError``; only storage code runs inside those closures.
@inline(__always)
func narrow<T>(_ body: () throws -> T) throws(StorageError) -> T {
    do { return try body() } catch let e as StorageError { throw e } catch {
        throw StorageError(.io, "unexpected error", cause: "\(error)")
    }
}
