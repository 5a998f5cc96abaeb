import Foundation
import HallwatchCore

/// What a stick's first sectors say it holds (read in-process: a bounded read of raw bytes, no parsing
/// beyond fixed offsets).
///
/// Offsets: the FAT boot sector and BPB (ISO/IEC 9293; Microsoft's FAT specification: bytes 510–511 `55 AA`,
/// the file-system type text at 54 for FAT12/16 and at 82 for FAT32), the exFAT boot sector (`EXFAT   ` at
/// 3), the ext2/3/4 superblock magic `EF53` at 1080, NTFS's `NTFS    ` at 3, and the MBR partition table
/// (four 16-byte entries at 446: type at +4, first LBA at +8, little-endian).
public enum StickVolume: Sendable, Equatable {
    /// A FAT12/16/32 volume starting `offsetBytes` into the device.
    case fat(offsetBytes: Int)
    /// An exFAT volume starting `offsetBytes` into the device.
    case exfat(offsetBytes: Int)
    /// Anything else; the reason names what was seen (`ext4`, `NTFS`, `unknown`).
    case ignored(String)

    /// Reads the first sectors of `path` (a block device or an image file) and classifies them.
    public static func detect(path: String) -> StickVolume {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return .ignored("cannot open (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
            return .ignored("a directory, not a stick or a stick's image")
        }
        func sector(_ offset: Int, _ count: Int) -> [UInt8] {
            var buf = [UInt8](repeating: 0, count: count)
            let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
            return n == count ? buf : []
        }
        let first = sector(0, 2048)
        guard first.count == 2048 else { return .ignored("shorter than 2 KiB") }
        if let v = classify(first, offsetBytes: 0) { return v }
        // An MBR: the first FAT or exFAT partition.
        guard first[510] == 0x55, first[511] == 0xAA else { return .ignored("unknown") }
        for i in 0..<4 {
            let e = 446 + 16 * i
            let type = first[e + 4]
            let lba = Int(first[e + 8]) | Int(first[e + 9]) << 8 | Int(first[e + 10]) << 16 | Int(first[e + 11]) << 24
            guard [0x01, 0x04, 0x06, 0x07, 0x0B, 0x0C, 0x0E].contains(type), lba > 0 else { continue }
            let boot = sector(lba * 512, 2048)
            if boot.count == 2048, let v = classify(boot, offsetBytes: lba * 512) {
                if case .ignored = v { continue }
                return v
            }
        }
        return .ignored("a partition table without a FAT or exFAT partition")
    }

    /// A reader of this volume in `device`, or `nil` for an ignored stick.
    public func source(device: String, sandbox: ReaderSandbox) -> (any StickSource)? {
        switch self {
        case .fat(let o): MtoolsStick(VolumeLocation(device: device, offsetBytes: o, sandbox: sandbox))
        case .exfat(let o): ExfatStick(VolumeLocation(device: device, offsetBytes: o, sandbox: sandbox))
        case .ignored: nil
        }
    }

    private static func classify(_ s: [UInt8], offsetBytes: Int) -> StickVolume? {
        func text(_ at: Int, _ n: Int) -> String { String(decoding: s[at..<(at + n)], as: UTF8.self) }
        if text(3, 8) == "EXFAT   " { return .exfat(offsetBytes: offsetBytes) }
        if text(3, 8) == "NTFS    " { return .ignored("NTFS") }
        if s[1080] == 0x53, s[1081] == 0xEF { return .ignored("ext2/3/4") }
        let bytesPerSector = Int(s[11]) | Int(s[12]) << 8
        if s[510] == 0x55, s[511] == 0xAA, [512, 1024, 2048, 4096].contains(bytesPerSector),
            text(54, 3) == "FAT" || text(82, 5) == "FAT32"
        {
            return .fat(offsetBytes: offsetBytes)
        }
        return nil
    }
}

/// How the reader helper runs: its command prefix (the sandbox), deadline and output bound.
///
/// The default prefix is `prlimit --as=256MiB --cpu=10 --nofile=32 ionice -c 3 unshare --net`: a memory and
/// CPU limit, idle I/O priority and no network, so a hostile file system can at worst crash or stall the
/// helper. The wall-clock deadline is enforced here (the helper is killed with SIGKILL).
public struct ReaderSandbox: Sendable {
    /// Arguments put before the tool's own (empty: no sandbox).
    public var prefix: [String]
    /// The wall-clock limit of one helper run.
    public var deadline: Duration
    /// The default sandbox (needs root for `unshare --net`).
    public static let `default` = ReaderSandbox(
        prefix: [
            "/usr/bin/prlimit", "--as=268435456", "--cpu=10", "--nofile=32", "/usr/bin/ionice", "-c", "3",
            "/usr/bin/unshare", "--net",
        ], deadline: .seconds(10))
    /// A sandbox with `prefix` and `deadline`.
    public init(prefix: [String], deadline: Duration) {
        self.prefix = prefix
        self.deadline = deadline
    }

    /// Runs `/bin/true` inside the sandbox once, so a sandbox that cannot start is an error when the provisioner
    /// starts rather than a stick that seems to hold no bundle (a failed helper prints nothing, and an empty
    /// listing reads as an empty stick).
    ///
    /// - Throws: `provision.reader` naming the prefix and its exit status: for example a service manager that
    ///   forbids network namespaces (`RestrictNamespaces=` without `net`) makes `unshare --net` exit 1.
    public func check() throws(ProvisionError) {
        guard !prefix.isEmpty else { return }
        let r = try Helper.run(prefix + ["/bin/true"], sandbox: self, maxOutputBytes: 4096)
        guard r.status == 0 else {
            throw ProvisionError(
                .reader,
                "the reader's sandbox does not start (`\(prefix.joined(separator: " "))` exits \(r.status)): it needs root, a mount and a network namespace"
            )
        }
    }
}

/// Where a volume is: a device or image file, the volume's offset in it, and the sandbox its helper runs in.
public struct VolumeLocation: Sendable {
    /// The device or image file.
    public var device: String
    /// Where the volume starts in it, in bytes.
    public var offsetBytes: Int
    /// The helper's sandbox.
    public var sandbox: ReaderSandbox
    /// A location.
    public init(device: String, offsetBytes: Int, sandbox: ReaderSandbox = .default) {
        self.device = device
        self.offsetBytes = offsetBytes
        self.sandbox = sandbox
    }

    /// Writes `contents` to a private temporary file, runs `body` with its path, removes it.
    func withTemporaryCopy<T>(_ contents: [UInt8], _ body: (String) throws(ProvisionError) -> T)
        throws(ProvisionError) -> T
    {
        try HallwatchProvision.withTemporaryCopy(contents, body)
    }
}

/// Writes `contents` to a private temporary file (mode 0600), runs `body` with its path, removes it.
func withTemporaryCopy<T>(_ contents: [UInt8], _ body: (String) throws(ProvisionError) -> T) throws(ProvisionError)
    -> T
{
    let local = FileManager.default.temporaryDirectory.appendingPathComponent("hw-prov-\(UUID().uuidString)")
    guard
        FileManager.default.createFile(
            atPath: local.path, contents: Data(contents), attributes: [.posixPermissions: 0o600])
    else { throw ProvisionError(.receipt, "cannot write a temporary file") }
    defer { try? FileManager.default.removeItem(at: local) }
    return try body(local.path)
}

/// Read access to one stick's volume, through a helper process; the provisioner never mounts it.
public protocol StickSource: Sendable {
    /// At most `maxBytes` bytes of the file at `path` (relative to the volume's root, `/`-separated). Returns
    /// exactly `maxBytes` bytes when the file has that many or more: callers pass their bound + 1 and treat a
    /// full read as "too long".
    func read(_ path: String, maxBytes: Int) throws(ProvisionError) -> [UInt8]
    /// The names (no path) of the subdirectories of `path`.
    func directories(in path: String) throws(ProvisionError) -> [String]
    /// The names (no path) of the regular files in `path`.
    func files(in path: String) throws(ProvisionError) -> [String]
    /// Writes a new file at `path` (its directory made if missing); never overwrites.
    func create(_ path: String, contents: [UInt8]) throws(ProvisionError)
}

/// A FAT volume read and written with mtools (`mcopy`, `mdir`, `mmd`) in user space: the kernel never parses
/// the stick. mtools' exit status proves nothing (a truncated image gives exit 0 and a short file): callers
/// check the exact size and SHA-256 of everything they read.
public struct MtoolsStick: StickSource {
    /// The device, the volume's offset in it and the helper's sandbox.
    public var location: VolumeLocation

    /// A reader of the FAT volume at `location`.
    public init(_ location: VolumeLocation) { self.location = location }

    private var device: String { location.device }
    private var offsetBytes: Int { location.offsetBytes }
    private var sandbox: ReaderSandbox { location.sandbox }

    private var image: String { offsetBytes == 0 ? device : "\(device)@@\(offsetBytes)" }

    /// Regular-file names per directory (lowercased), listed once per stick: mcopy and mtype given a
    /// directory print the files inside it, so only a name listed as a regular file is ever read.
    private let listing = Listing()

    final class Listing: @unchecked Sendable {
        let lock = NSLock()
        var files: [String: Set<String>] = [:]
    }

    public func read(_ path: String, maxBytes: Int) throws(ProvisionError) -> [UInt8] {
        let parent = path.split(separator: "/").dropLast().joined(separator: "/")
        let name = path.split(separator: "/").last.map { String($0).lowercased() } ?? ""
        let known = listing.lock.withLock { listing.files[parent] }
        let regular: Set<String>
        if let known {
            regular = known
        } else {
            regular = Set(try files(in: parent).map { $0.lowercased() })
            listing.lock.withLock { listing.files[parent] = regular }
        }
        guard regular.contains(name) else { return [] }
        let r = try Helper.run(
            sandbox.prefix + ["/usr/bin/mcopy", "-n", "-i", image, "::/" + path, "-"], sandbox: sandbox,
            maxOutputBytes: maxBytes)
        return r.output
    }

    public func directories(in path: String) throws(ProvisionError) -> [String] { try entries(in: path, dirs: true) }

    public func files(in path: String) throws(ProvisionError) -> [String] { try entries(in: path, dirs: false) }

    private func entries(in path: String, dirs: Bool) throws(ProvisionError) -> [String] {
        let r = try Helper.run(
            sandbox.prefix + ["/usr/bin/mdir", "-b", "-i", image, "::/" + path], sandbox: sandbox,
            maxOutputBytes: 1 << 20)
        let prefix = "::/" + path + "/"
        return String(decoding: r.output, as: UTF8.self).split(separator: "\n").compactMap { line in
            guard line.hasPrefix(prefix), line.hasSuffix("/") == dirs else { return nil }
            let name = line.dropFirst(prefix.count).dropLast(dirs ? 1 : 0)
            return name.contains("/") || name.isEmpty ? nil : String(name)
        }
    }

    public func create(_ path: String, contents: [UInt8]) throws(ProvisionError) {
        let parts = path.split(separator: "/").map(String.init)
        var dir = ""
        for p in parts.dropLast() {
            dir += "/" + p
            // Exit status ignored: the directory may exist; the copy below fails if it does not.
            _ = try? Helper.run(
                sandbox.prefix + ["/usr/bin/mmd", "-i", image, "::" + dir],
                sandbox: sandbox, maxOutputBytes: 4096)
        }
        let r = try location.withTemporaryCopy(contents) { (local) throws(ProvisionError) in
            try Helper.run(
                sandbox.prefix + ["/usr/bin/mcopy", "-n", "-i", image, local, "::/" + path], sandbox: sandbox,
                maxOutputBytes: 4096)
        }
        let parent = path.split(separator: "/").dropLast().joined(separator: "/")
        listing.lock.withLock { listing.files[parent] = nil }  // listed again on the read-back
        guard r.status == 0 else { throw ProvisionError(.receipt, "mcopy could not write \(path) (exit \(r.status))") }
        // Read back: mtools' exit status alone proves nothing.
        guard (try? read(path, maxBytes: contents.count + 1)) == contents else {
            throw ProvisionError(.receipt, "\(path) did not read back as written")
        }
    }
}

/// Runs one helper of the reader (mtools, `unshare`, exfat-fuse's wrapper) through ``ChildProcess``: the
/// sandbox's deadline, a bound on what it prints, a fixed environment (mtools' checks off, C.UTF-8), its stderr
/// discarded (what it would say is reported as a typed ``ProvisionError``).
enum Helper {
    struct Result {
        /// The exit status; 0 when the output reached the bound (the caller asked for that many bytes at most).
        var status: Int32
        var output: [UInt8]
    }

    static let environment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8"]

    /// - Throws: ``ProvisionError`` `.reader` when the helper cannot start or outlives the sandbox's deadline.
    static func run(_ argv: [String], sandbox: ReaderSandbox, maxOutputBytes: Int) throws(ProvisionError) -> Result {
        let r: ChildProcess.Result
        do {
            r = try ChildProcess.run(
                argv, environment: environment, errorOutput: .discard, deadline: sandbox.deadline,
                maxOutputBytes: maxOutputBytes)
        } catch {
            throw ProvisionError(.reader, "cannot start \(argv[0]): \(SystemError.text(error.errno))")
        }
        if r.timedOut {
            throw ProvisionError(.reader, "the reader helper took longer than \(sandbox.deadline) and was killed")
        }
        return Result(status: r.cutOff ? 0 : r.status, output: r.output)
    }
}
