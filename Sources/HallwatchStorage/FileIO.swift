import Foundation
import HallwatchCore

/// One open slot file. Positional I/O only (`pread`/`pwritev`), so one handle is safely shared by
/// the camera writing it, the flusher syncing it and nothing else; it closes its descriptor when the
/// last reference goes away.
///
/// Injected through ``SlotFileOpener`` so tests can make `fdatasync` fail (STYLE habit 3, Moonfire's
/// `Opener`).
public protocol SlotFileHandle: AnyObject, Sendable {
    /// The file's path, for messages.
    var path: String { get }
    /// Writes all of `first` and then all of `second` at `offset` (bytes from the file's start),
    /// retrying short writes. Not durable until ``syncData()`` returns.
    /// - Throws: ``StorageError/Code/io`` with the `errno`.
    func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, at offset: Int64) throws(StorageError)
    /// Reads into `buffer` from `offset`; returns the bytes read, fewer than `buffer.count` only at end of file.
    /// - Throws: ``StorageError/Code/io``.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageError) -> Int
    /// `fdatasync(2)`: makes every byte written so far durable. Slot files never change size after
    /// initialisation, so this is a data-only flush (DESIGN.md § Storage).
    /// - Throws: ``StorageError/Code/io``. After a failure the written bytes must be treated as lost
    ///   even if a later call succeeds (Linux may have dropped the dirty pages).
    func syncData() throws(StorageError)
}

/// Opens slot files; the seam where tests inject faults.
public protocol SlotFileOpener: Sendable {
    /// Opens an existing file, read-write when `writable`, else read-only.
    /// - Throws: ``StorageError/Code/io``.
    func open(_ path: String, writable: Bool) throws(StorageError) -> any SlotFileHandle
}

/// The real file system.
public struct PosixSlotFileOpener: SlotFileOpener {
    /// The real file system (`open(2)` and friends).
    public init() {}
    /// `open(2)` with `O_CLOEXEC`, read-write or read-only.
    public func open(_ path: String, writable: Bool) throws(StorageError) -> any SlotFileHandle {
        let fd = retryingEINTR { Foundation.open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC) }
        guard fd >= 0 else { throw .io("open", path: path) }
        return PosixSlotFile(fd: fd, path: path)
    }
}

final class PosixSlotFile: SlotFileHandle {
    let fd: Int32
    let path: String
    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }
    deinit { _ = Foundation.close(fd) }

    func write(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, at offset: Int64) throws(StorageError)
    {
        try writeAll(fd: fd, path: path, first, second, at: offset)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(StorageError) -> Int {
        try readFully(fd: fd, path: path, into: buffer, at: offset)
    }

    func syncData() throws(StorageError) {
        #if os(Linux)
            let r = retryingEINTR { fdatasync(fd) }
        #else
            let r = retryingEINTR { fsync(fd) }
        #endif
        guard r == 0 else { throw .io("fdatasync", path: path) }
    }
}

/// `pwritev` of two buffers, looping over short writes.
func writeAll(
    fd: Int32, path: String, _ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer, at offset: Int64
) throws(StorageError) {
    let total = first.count + second.count
    var done = 0
    while done < total {
        var iov = [iovec](repeating: iovec(), count: 2)
        var n = 0
        if done < first.count {
            iov[n] = iovec(
                iov_base: UnsafeMutableRawPointer(mutating: first.baseAddress! + done), iov_len: first.count - done)
            n += 1
        }
        if second.count > 0 {
            let skip = max(0, done - first.count)
            iov[n] = iovec(
                iov_base: UnsafeMutableRawPointer(mutating: second.baseAddress! + skip), iov_len: second.count - skip)
            n += 1
        }
        let r = retryingEINTR { pwritev(fd, iov, Int32(n), off_t(offset) + off_t(done)) }
        guard r > 0 else { throw .io("pwritev", path: path, errno: r == 0 ? EIO : errno) }
        done += r
    }
}

/// `pread` until `buffer` is full or end of file; returns the bytes read.
func readFully(fd: Int32, path: String, into buffer: UnsafeMutableRawBufferPointer, at offset: Int64)
    throws(StorageError) -> Int
{
    var done = 0
    while done < buffer.count {
        let r = retryingEINTR {
            pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
        }
        guard r >= 0 else { throw .io("pread", path: path) }
        if r == 0 { break }
        done += r
    }
    return done
}

extension SlotFileHandle {
    /// Reads exactly `count` bytes at `offset` into a new array.
    /// - Throws: ``StorageError/Code/io``; ``StorageError/Code/corrupt`` when the file ends first.
    func readBytes(_ count: Int, at offset: Int64) throws(StorageError) -> [UInt8] {
        var got = 0
        var failure: StorageError?
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buf, initialized in
            do throws(StorageError) { got = try self.read(into: UnsafeMutableRawBufferPointer(buf), at: offset) } catch
            { failure = error }
            // Zero whatever was not read so the array is fully initialised.
            if got < count { (buf.baseAddress! + got).initialize(repeating: 0, count: count - got) }
            initialized = count
        }
        if let failure { throw failure }
        guard got == count else {
            throw StorageError(.corrupt, "\(path): \(count) bytes at offset \(offset) run past the end of the file")
        }
        return bytes
    }
}

/// Small whole-file helpers for `meta` and directories (not the slot hot path).
enum FileOps {
    static func exists(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int64(st.st_size)
    }

    /// Directory entries except `.` and `..`; `[]` when the directory does not exist.
    static func entries(_ path: String) throws(StorageError) -> [String] {
        guard let dir = opendir(path) else {
            if errno == ENOENT { return [] }
            throw .io("opendir", path: path)
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let e = readdir(dir) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func makeDirectory(_ path: String) throws(StorageError) {
        if mkdir(path, 0o750) != 0 && errno != EEXIST { throw .io("mkdir", path: path) }
    }

    /// `fsync` on a directory, so entries created or renamed in it survive a power cut.
    static func syncDirectory(_ path: String) throws(StorageError) {
        let fd = retryingEINTR { Foundation.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else { throw .io("open", path: path) }
        defer { _ = Foundation.close(fd) }
        guard retryingEINTR({ fsync(fd) }) == 0 else { throw .io("fsync", path: path) }
    }

    /// Writes `bytes` to a new or truncated file and `fsync`s it.
    static func writeFileDurably(_ path: String, _ bytes: [UInt8]) throws(StorageError) {
        let fd = retryingEINTR { Foundation.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640) }
        guard fd >= 0 else { throw .io("open", path: path) }
        defer { _ = Foundation.close(fd) }
        try narrow {
            try bytes.withUnsafeBytes { b in
                try writeAll(fd: fd, path: path, b, UnsafeRawBufferPointer(start: nil, count: 0), at: 0)
            }
        }
        guard retryingEINTR({ fsync(fd) }) == 0 else { throw .io("fsync", path: path) }
    }

    static func readFile(_ path: String) throws(StorageError) -> [UInt8] {
        let fd = retryingEINTR { Foundation.open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw .io("open", path: path) }
        defer { _ = Foundation.close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = try narrow {
                try chunk.withUnsafeMutableBytes { b in try readFully(fd: fd, path: path, into: b, at: Int64(out.count))
                }
            }
            out.append(contentsOf: chunk[0..<n])
            if n < chunk.count { return out }
        }
    }

    static func rename(_ from: String, _ to: String) throws(StorageError) {
        guard Foundation.rename(from, to) == 0 else {
            throw .io("rename", path: from, "renaming \(from) to \(to) failed")
        }
    }
}
