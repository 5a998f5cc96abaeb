import Foundation
import HallwatchCore

#if canImport(Glibc)
    import Glibc
#endif

/// `IP_MULTICAST_ALL` (linux/in.h), which Glibc's module does not export: 0 delivers to this socket only the
/// groups it joined itself, not every group any socket on the host joined.
private let ipMulticastAll: Int32 = 49

/// An owning wrapper of a UDP socket on the WS-Discovery port 3702, a member of 239.255.255.250 on the given
/// IPv4 interfaces (SOAP-over-UDP 1.1 §4, WS-Discovery 1.1 §2.4): what hears Hello and Bye (the agent) and
/// Probes (a device, such as the simulated camera).
///
/// - Bound to `0.0.0.0:3702` with `SO_REUSEADDR`, so an agent and a device on one host can share the port;
///   `IP_MULTICAST_ALL` is off, so only the groups joined here on these interfaces are delivered (Linux would
///   otherwise deliver every group any socket joined).
/// - Multicast sent from it leaves by the first interface (`IP_MULTICAST_IF`, explicit), TTL 1: it never
///   crosses a router.
/// - Datagrams longer than 64 KiB are reported as oversize, never cut and parsed.
///
/// ``receive(timeoutMs:)`` blocks the calling thread for up to the timeout: call it from a dedicated thread.
/// Unchecked `Sendable`: the descriptor is read by one thread, and `sendto` is thread-safe.
public final class WSDiscoverySocket: @unchecked Sendable {
    /// The UDP socket's descriptor.
    public let fd: Int32
    /// The interfaces' IPv4 addresses, as given.
    public let interfaceAddresses: [String]

    /// One datagram.
    public struct Datagram: Sendable {
        /// The datagram's bytes (empty when ``oversize``).
        public var bytes: Data
        /// Source IPv4 address and UDP port.
        public var from: String
        /// Source UDP port.
        public var fromPort: UInt16
        /// Longer than 64 KiB: ``bytes`` is empty.
        public var oversize: Bool
    }

    /// Opens and joins. Throws ``SystemError`` (`EINVAL` for an address that is not dotted IPv4).
    public init(interfaceAddresses: [String], port: UInt16 = WSDiscoveryProbe.port) throws {
        let s = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw SystemError("socket") }
        var ok = true
        var one: Int32 = 1
        var zero: Int32 = 0
        var ttl: UInt8 = 1
        ok = ok && setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) == 0
        _ = setsockopt(s, Int32(IPPROTO_IP), ipMulticastAll, &zero, socklen_t(MemoryLayout<Int32>.size))
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_port = port.bigEndian
        ok =
            ok
            && withUnsafePointer(to: &local) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            } == 0
        ok = ok && setsockopt(s, Int32(IPPROTO_IP), IP_MULTICAST_TTL, &ttl, 1) == 0
        var first = true
        for a in interfaceAddresses where ok {
            var m = ip_mreq()
            guard inet_pton(AF_INET, WSDiscoveryProbe.multicastGroup, &m.imr_multiaddr) == 1,
                inet_pton(AF_INET, a, &m.imr_interface) == 1
            else {
                close(s)
                throw SystemError("inet_pton", errno: EINVAL, subject: a)
            }
            ok =
                ok
                && setsockopt(s, Int32(IPPROTO_IP), IP_ADD_MEMBERSHIP, &m, socklen_t(MemoryLayout<ip_mreq>.size)) == 0
            if first {
                var ifAddr = m.imr_interface
                ok =
                    ok
                    && setsockopt(s, Int32(IPPROTO_IP), IP_MULTICAST_IF, &ifAddr, socklen_t(MemoryLayout<in_addr>.size))
                        == 0
                first = false
            }
        }
        guard ok else {
            let e = SystemError("socket 3702", subject: interfaceAddresses.joined(separator: ","))
            close(s)
            throw e
        }
        fd = s
        self.interfaceAddresses = interfaceAddresses
    }

    deinit { close(fd) }

    /// Waits up to `timeoutMs` for one datagram; `nil` on timeout. Throws ``SystemError`` on a socket error.
    public func receive(timeoutMs: Int32) throws -> Datagram? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = retryingEINTR { poll(&p, 1, timeoutMs) }
        if ready < 0 { throw SystemError("poll") }
        guard ready > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        return try UDP.receive(fd, into: &buffer)
    }

    /// Sends `data` to `address:port` (unicast, or the group). Throws ``SystemError``.
    public func send(
        _ data: Data, to address: String = WSDiscoveryProbe.multicastGroup, port: UInt16 = WSDiscoveryProbe.port
    ) throws {
        try UDP.send(fd, data, to: address, port: port)
    }
}

/// The one place that calls `recvfrom(2)` and `sendto(2)` for discovery sockets.
enum UDP {
    /// One datagram without blocking (`nil` on `EAGAIN`/`EINTR`); longer than 64 KiB is reported as
    /// oversize (`MSG_TRUNC` gives the real length), never cut and parsed. Throws ``SystemError``.
    static func receive(_ fd: Int32, into buffer: inout [UInt8]) throws -> WSDiscoverySocket.Datagram? {
        var from = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let n = buffer.withUnsafeMutableBytes { b in
            withUnsafeMutablePointer(to: &from) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    recvfrom(fd, b.baseAddress, b.count, Int32(MSG_TRUNC) | Int32(MSG_DONTWAIT), $0, &len)
                }
            }
        }
        if n < 0 {
            if errno == EAGAIN || errno == EINTR { return nil }
            throw SystemError("recvfrom")
        }
        let source = WSDiscoveryProber.text(from.sin_addr)
        let port = UInt16(bigEndian: from.sin_port)
        guard n <= XMLLimits.datagram.maxBytes else {
            return WSDiscoverySocket.Datagram(bytes: Data(), from: source, fromPort: port, oversize: true)
        }
        return WSDiscoverySocket.Datagram(bytes: Data(buffer[..<n]), from: source, fromPort: port, oversize: false)
    }

    /// Sends one datagram to `address:port`. Throws ``SystemError``.
    static func send(_ fd: Int32, _ data: Data, to address: String, port: UInt16) throws {
        var to = sockaddr_in()
        to.sin_family = sa_family_t(AF_INET)
        to.sin_port = port.bigEndian
        guard inet_pton(AF_INET, address, &to.sin_addr) == 1 else {
            throw SystemError("inet_pton", errno: EINVAL, subject: address)
        }
        let sent = data.withUnsafeBytes { b in
            withUnsafePointer(to: &to) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(
                        fd, b.baseAddress, b.count, Int32(MSG_NOSIGNAL), $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent == data.count else { throw SystemError("sendto", subject: address) }
    }
}

/// IPv4 interfaces of this host (network namespace), from `getifaddrs(3)`.
public enum IPv4Interfaces {
    /// An interface name with its IPv4 address and netmask (dotted).
    public struct Interface: Sendable, Equatable {
        /// Interface name, e.g. `eth1`.
        public var name: String
        /// Its IPv4 address, dotted.
        public var address: String
        /// Its netmask, dotted.
        public var netmask: String
    }

    /// Every interface that has an IPv4 address.
    public static func all() -> [Interface] {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0, let first = head else { return [] }
        defer { freeifaddrs(head) }
        var out: [Interface] = []
        var p: UnsafeMutablePointer<ifaddrs>? = first
        while let i = p {
            defer { p = i.pointee.ifa_next }
            guard let a = i.pointee.ifa_addr, a.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            let addr = a.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                WSDiscoveryProber.text($0.pointee.sin_addr)
            }
            let mask =
                i.pointee.ifa_netmask.map { m in
                    m.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                        WSDiscoveryProber.text($0.pointee.sin_addr)
                    }
                } ?? "255.255.255.255"
            out.append(Interface(name: String(cString: i.pointee.ifa_name), address: addr, netmask: mask))
        }
        return out
    }

    /// Resolves a configured interface: an interface name (`eth1`) or one of this host's IPv4 addresses.
    public static func resolve(_ nameOrAddress: String) -> Interface? {
        all().first { $0.name == nameOrAddress || $0.address == nameOrAddress }
    }

    /// Whether `host` (dotted IPv4) is in the subnet of `interface`.
    public static func contains(_ interface: Interface, host: String) -> Bool {
        var a = in_addr()
        var i = in_addr()
        var m = in_addr()
        guard inet_pton(AF_INET, host, &a) == 1, inet_pton(AF_INET, interface.address, &i) == 1,
            inet_pton(AF_INET, interface.netmask, &m) == 1
        else { return false }
        return a.s_addr & m.s_addr == i.s_addr & m.s_addr
    }
}

/// Whether a TCP connection to an IPv4 `host:port` can be opened within `timeoutMs` (non-blocking `connect`
/// and `poll`; the socket is closed at once). Used to tell an unreachable advertised host (a camera behind NAT,
/// or naming an address of another interface) from the one actually reached. Blocks the calling thread.
public func tcpReachable(host: String, port: UInt16, timeoutMs: Int32 = 1_000) -> Bool {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    guard inet_pton(AF_INET, host, &addr.sin_addr) == 1 else { return false }
    let fd = socket(
        AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    if rc == 0 { return true }
    guard errno == EINPROGRESS else { return false }
    var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
    guard retryingEINTR({ poll(&p, 1, timeoutMs) }) > 0 else { return false }
    var err: Int32 = 0
    var len = socklen_t(MemoryLayout<Int32>.size)
    return getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0
}
