import Foundation

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

/// Runs one helper process with a deadline and a bound on what it prints.
///
/// The helper is spawned with `posix_spawn` in a process group of its own (empty signal mask, default
/// dispositions) so that a deadline or an overlong output kills the group with SIGKILL: a wrapper's child
/// that kept the pipe open would otherwise stall the reader past its deadline.
enum Helper {
    struct Result {
        var status: Int32
        var output: [UInt8]
    }

    static func run(_ argv: [String], sandbox: ReaderSandbox, maxOutputBytes: Int) throws(ProvisionError) -> Result {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ProvisionError(.reader, "cannot make a pipe") }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        defer { close(fds[0]) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setpgroup(&attr, 0)
        posix_spawnattr_setflags(
            &attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let env = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "MTOOLS_SKIP_CHECK=1", "LC_ALL=C.UTF-8"]
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer {
            for p in cArgs { free(p) }
            for p in cEnv { free(p) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attr, &cArgs, &cEnv)
        close(fds[1])
        guard rc == 0 else {
            throw ProvisionError(.reader, "cannot start \(argv[0]): \(String(cString: strerror(rc)))")
        }
        let timedOut = Flag()
        let timer = DispatchSource.makeTimerSource(queue: .global())
        let c = sandbox.deadline.components
        timer.schedule(
            deadline: .now() + .nanoseconds(Int(c.seconds) * 1_000_000_000 + Int(c.attoseconds / 1_000_000_000)))
        timer.setEventHandler {
            timedOut.set()
            kill(-pid, SIGKILL)
        }
        timer.resume()
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while output.count < maxOutputBytes {
            let want = min(chunk.count, maxOutputBytes - output.count)
            let n = chunk.withUnsafeMutableBytes { Foundation.read(fds[0], $0.baseAddress, want) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            output += chunk[0..<n]
        }
        let cutOff = output.count >= maxOutputBytes
        if cutOff { kill(-pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        timer.cancel()
        kill(-pid, SIGKILL)  // anything the helper left behind in its group
        if timedOut.isSet {
            throw ProvisionError(.reader, "the reader helper took longer than \(sandbox.deadline) and was killed")
        }
        let exited = status & 0x7F == 0
        return Result(status: cutOff ? 0 : (exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F)), output: output)
    }

    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        func set() { lock.withLock { value = true } }
        var isSet: Bool { lock.withLock { value } }
    }
}
