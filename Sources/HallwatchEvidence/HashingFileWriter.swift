import CWriteback
import Crypto
import Dispatch
import Foundation
import HallwatchCore
import Synchronization

/// Appends bytes to a new file and takes their SHA-256 (FIPS 180-4) on a thread of its own, so the caller's
/// work — laying the MP4 out from the records, demuxing it and hashing each packet for the framehash — runs
/// beside the file's writing instead of between its writes.
///
/// Why a thread: taking the bytes in is a large part of a bundle's cost — the kernel's copy into the page cache
/// was 26 % of its profile, its SHA-256 half of the 42 % spent hashing — and on one thread it adds to the
/// layout, the demuxing and the framehash; here the two run on two cores. Each chunk's writeback is started as
/// soon as it is written (`sync_file_range(2)`, `SYNC_FILE_RANGE_WRITE`) rather than when the kernel's
/// dirty-page threshold (`vm.dirty_background_ratio`) is crossed gigabytes later, so a large export does not
/// leave a pile of dirty pages for the file system's next journal commit, which the recorder's `fdatasync` may
/// wait on. Measured by `Tests/Bench/export.sh` (README § Benchmarks).
///
/// Bounded: the caller fills chunks of ``chunkBytes``; at most ``depth`` of them wait for the writer, so memory
/// is `depth × chunkBytes` (8 MiB) whatever the file's length. Bytes are written in the order appended.
/// Not for concurrent callers: one producer (the export), one writer thread.
final class HashingFileWriter {
    /// Bytes per chunk handed to the writer thread.
    static let chunkBytes = 1 << 20
    /// Chunks at most in flight (filled, not yet written).
    static let depth = 8

    /// The file, for messages.
    let path: String
    private let fd: Int32
    private let queue = DispatchQueue(label: "hallwatch.export.file")
    private let slots = DispatchSemaphore(value: HashingFileWriter.depth)
    private let shared: Shared
    /// The chunk being filled (caller's thread only).
    private var current: [UInt8] = []
    private var closed = false

    /// What the two threads share: chunks handed over and not yet written (in order), emptied ones to reuse,
    /// and the first failure.
    private final class Shared: Sendable {
        struct State {
            var pending: [[UInt8]] = []
            var spare: [[UInt8]] = []
            var failure: EvidenceBundleError?
        }
        let state = Mutex(State())
        let digest = Digest()
    }

    /// The running SHA-256 (swift-crypto's `SHA256` is not `Sendable`) and the bytes written: used only on
    /// ``queue``, which is serial, so by one thread at a time; ``finish()`` reads them there too.
    private final class Digest: @unchecked Sendable {
        var hasher = SHA256()
        var offset: Int64 = 0
    }

    /// Creates `path`, which must not exist (`O_EXCL`), mode 0644.
    /// - Throws: ``EvidenceBundleError`` `export.bundle` when it cannot be created.
    init(creating path: String) throws {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw Self.failure("cannot create", path, errno) }
        shared = Shared()
    }

    deinit {
        // An export that failed half-way: let the thread finish what it holds before the descriptor goes.
        queue.sync {}
        if !closed { close(fd) }
    }

    /// Appends `bytes` (copied: the caller may reuse its buffer at once).
    /// - Throws: the writer thread's first failure, if it has failed by now (``EvidenceBundleError``
    ///   `export.noSpace` for a full file system, else `export.bundle`).
    func append(_ bytes: UnsafeRawBufferPointer) throws(EvidenceBundleError) {
        var from = 0
        while from < bytes.count {
            if current.capacity < Self.chunkBytes { current.reserveCapacity(Self.chunkBytes) }
            let n = min(bytes.count - from, Self.chunkBytes - current.count)
            current.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[from..<(from + n)]))
            from += n
            if current.count == Self.chunkBytes { try handOff() }
        }
    }

    /// Writes what is left, waits for the thread, closes the file (no `fsync`: a bundle is a copy, the records
    /// stay on their disk) and returns its SHA-256 in lower-case hex.
    /// - Throws: ``EvidenceBundleError`` as ``append(_:)``, or `export.bundle` when closing fails.
    func finish() throws(EvidenceBundleError) -> String {
        if !current.isEmpty { try handOff() }
        queue.sync {}
        if let failure = shared.state.withLock({ $0.failure }) { throw failure }
        closed = true
        guard close(fd) == 0 else { throw Self.failure("cannot close", path, errno) }
        let digest = shared.digest
        return queue.sync { digest.hasher.finalize() }.map { String(format: "%02x", $0) }.joined()
    }

    /// Gives the filled chunk to the thread (waiting while ``depth`` are in flight) and takes a spare one.
    /// Chunks travel through ``Shared`` rather than the closure, so each has one owner at a time and is
    /// reused without a copy.
    private func handOff() throws(EvidenceBundleError) {
        if let failure = shared.state.withLock({ $0.failure }) { throw failure }
        slots.wait()
        var chunk = shared.state.withLock { $0.spare.popLast() } ?? []
        swap(&chunk, &current)
        shared.state.withLock { $0.pending.append(chunk) }
        let (fd, path, shared, slots) = (fd, path, shared, slots)
        queue.async {
            defer { slots.signal() }
            var chunk: [UInt8] = []
            let failed = shared.state.withLock { s in
                chunk = s.pending.removeFirst()
                return s.failure != nil
            }
            guard !failed else { return }
            let error: Int32? = chunk.withUnsafeBytes { b in
                var done = 0
                while done < b.count {
                    let n = Foundation.write(fd, b.baseAddress! + done, b.count - done)
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else { return n < 0 ? errno : ENOSPC }
                    done += n
                }
                return nil
            }
            if let error {
                shared.state.withLock { $0.failure = Self.failure("cannot write", path, error) }
                return
            }
            // The chunk's writeback starts now, not waited for (see the type's notes). Advisory: a failure
            // here changes nothing; the write itself succeeded.
            let digest = shared.digest
            _ = hw_sync_file_range(fd, digest.offset, Int64(chunk.count), HW_SYNC_FILE_RANGE_WRITE)
            digest.offset += Int64(chunk.count)
            chunk.withUnsafeBytes { digest.hasher.update(bufferPointer: $0) }
            chunk.removeAll(keepingCapacity: true)
            shared.state.withLock { $0.spare.append(chunk) }
        }
    }

    /// `export.noSpace` ("no space left on device writing PATH") for a full file system or quota, else
    /// `export.bundle` with the system's reason.
    static func failure(_ what: String, _ path: String, _ code: Int32) -> EvidenceBundleError {
        if code == ENOSPC || code == EDQUOT {
            return EvidenceBundleError(.noSpace, "no space left on device writing \(printable(path, limit: 200))")
        }
        return EvidenceBundleError(
            .bundle, "\(what) \(printable(path, limit: 200)): \(String(cString: strerror(code)))")
    }
}
