import Foundation

/// An owned file descriptor; closed when the last reference goes away (or by ``close()``).
public final class FileHandleFD: @unchecked Sendable {
    /// The descriptor, or -1 once closed. Not shared across threads while being closed.
    public private(set) var fd: Int32
    /// Takes ownership of `fd` (closed by ``close()`` or when the last reference goes).
    public init(_ fd: Int32) { self.fd = fd }
    deinit { if fd >= 0 { Glibc.close(fd) } }
    /// Closes the descriptor once; later calls do nothing.
    public func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }

    /// Writes all of `bytes`, retrying short writes and `EINTR`.
    /// - Throws: ``SystemError`` (`EPIPE` when the peer is gone).
    public func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = retryingEINTR { Glibc.send(fd, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            if n < 0 { throw SystemError("send") }
            done += n
        }
    }

    /// Writes all of `first` then all of `second` with as few `sendmsg` calls as the socket allows (one, unless
    /// the send buffer is short): a frame's header and payload leave together, waking the reader once.
    /// - Throws: ``SystemError`` (`EPIPE` when the peer is gone, `EAGAIN` after `SO_SNDTIMEO`).
    public func writeAll(_ first: UnsafeRawBufferPointer, _ second: UnsafeRawBufferPointer) throws {
        var a = first  // what is left of each
        var b = second
        while a.count + b.count > 0 {
            let n: Int
            if a.isEmpty {
                n = retryingEINTR { Glibc.send(fd, b.baseAddress!, b.count, Int32(MSG_NOSIGNAL)) }
            } else {
                var iov = [
                    iovec(iov_base: UnsafeMutableRawPointer(mutating: a.baseAddress!), iov_len: a.count),
                    iovec(iov_base: UnsafeMutableRawPointer(mutating: b.baseAddress), iov_len: b.count),
                ]
                n = iov.withUnsafeMutableBufferPointer { v in
                    var msg = msghdr()
                    msg.msg_iov = v.baseAddress
                    msg.msg_iovlen = b.isEmpty ? 1 : 2
                    return retryingEINTR { sendmsg(fd, &msg, Int32(MSG_NOSIGNAL)) }
                }
            }
            if n < 0 { throw SystemError("send") }
            let fromA = min(n, a.count)
            a = UnsafeRawBufferPointer(rebasing: a[fromA...])
            b = UnsafeRawBufferPointer(rebasing: b[(n - fromA)...])
        }
    }

    /// Reads exactly `count` bytes. Returns `nil` on a clean end of stream before the first byte.
    /// - Throws: ``SystemError``, or `ECONNRESET` as a `SystemError` when the stream ends mid-read.
    public func readExactly(_ count: Int) throws -> [UInt8]? {
        // Read straight into the array's storage: no zero fill of what the kernel is about to write.
        var failure: SystemError?
        var ended = false
        let out = [UInt8](unsafeUninitializedCapacity: count) { p, initialized in
            var done = 0
            while done < count {
                let n = retryingEINTR { Glibc.read(fd, p.baseAddress! + done, count - done) }
                if n < 0 {
                    failure = SystemError("read")
                    break
                }
                if n == 0 {
                    if done == 0 {
                        ended = true
                    } else {
                        failure = SystemError("read", errno: ECONNRESET, subject: "stream ended mid-frame")
                    }
                    break
                }
                done += n
            }
            initialized = failure == nil && !ended ? count : 0
        }
        if let failure { throw failure }
        return ended ? nil : out
    }
}

/// Unix-domain stream sockets (the data plane; the bus uses libmosquitto's own).
public enum UnixSocket {
    static func address(_ path: String) throws -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw SystemError("socket", errno: ENAMETOOLONG, subject: path)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in p.copyBytes(from: bytes) }
        return addr
    }

    /// Connects to the stream socket at `path`.
    /// - Throws: ``SystemError`` (`ENOENT` or `ECONNREFUSED` when nobody listens).
    public static func connect(path: String) throws -> FileHandleFD {
        var addr = try address(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        let handle = FileHandleFD(fd)
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard r == 0 else { throw SystemError("connect", subject: path) }
        return handle
    }

    /// Creates a listening stream socket at `path` (replacing a stale socket file) with mode `mode`.
    /// - Throws: ``SystemError``; `EADDRINUSE` when another process is listening on `path` (its socket is
    ///   never taken over).
    public static func listen(path: String, mode: mode_t = 0o660, backlog: Int32 = 256) throws -> FileHandleFD {
        var addr = try address(path)
        if (try? connect(path: path)) != nil {
            throw SystemError("bind", errno: EADDRINUSE, subject: "\(path) (another process is listening)")
        }
        unlink(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        let handle = FileHandleFD(fd)
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard r == 0 else { throw SystemError("bind", subject: path) }
        chmod(path, mode)
        guard Glibc.listen(fd, backlog) == 0 else { throw SystemError("listen", subject: path) }
        return handle
    }

    /// Accepts one connection; blocks. Returns `nil` once the listener is shut down.
    public static func accept(_ listener: FileHandleFD) throws -> FileHandleFD? {
        let fd = retryingEINTR { Glibc.accept(listener.fd, nil, nil) }
        if fd < 0 {
            if errno == EINVAL || errno == EBADF { return nil }
            throw SystemError("accept")
        }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return FileHandleFD(fd)
    }
}

/// TCP ports on the loopback interface (the demo and tests never use another address).
public enum LoopbackPort {
    /// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, released).
    public static func pickFree() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { Glibc.close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
