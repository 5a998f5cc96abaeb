import Foundation
import HallwatchCore
import Logging
import Testing

@testable import HallwatchDiscovery

#if canImport(Glibc)
    import Glibc
#endif

/// Two network namespaces joined by a veth pair, made and removed by the test. Nothing is sent from the
/// root namespace: every socket of the test is created inside one of them.
private struct NamespacePair {
    let prober: String, camera: String, vethP: String, vethC: String
    static let proberAddress = "10.213.7.1", cameraAddress = "10.213.7.2"

    init() {
        let tag = String(getpid() % 100_000)
        prober = "hwdisc-p\(tag)"
        camera = "hwdisc-c\(tag)"
        vethP = "hwdp\(tag)"
        vethC = "hwdc\(tag)"
    }

    static var ipTool: String? {
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
    }
    static var usable: Bool { getuid() == 0 && ipTool != nil }

    @discardableResult
    func ip(_ args: String...) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Self.ipTool ?? "/usr/sbin/ip")
        p.arguments = args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    func create() throws {
        remove()
        for args in [
            ["netns", "add", prober], ["netns", "add", camera],
            ["link", "add", vethP, "type", "veth", "peer", "name", vethC],
            ["link", "set", vethP, "netns", prober], ["link", "set", vethC, "netns", camera],
            ["-n", prober, "addr", "add", Self.proberAddress + "/24", "dev", vethP],
            ["-n", camera, "addr", "add", Self.cameraAddress + "/24", "dev", vethC],
            ["-n", prober, "link", "set", "lo", "up"], ["-n", camera, "link", "set", "lo", "up"],
            ["-n", prober, "link", "set", vethP, "up"], ["-n", camera, "link", "set", vethC, "up"],
        ] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Self.ipTool ?? "/usr/sbin/ip")
            p.arguments = args
            p.standardOutput = FileHandle.nullDevice
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw SystemError("ip \(args.joined(separator: " "))", errno: EIO) }
        }
    }

    /// Deleting a namespace deletes the veth end inside it, and with it the peer.
    func remove() {
        _ = try? ip("netns", "del", prober)
        _ = try? ip("netns", "del", camera)
    }
}

/// Runs `body` on a new thread that has first entered network namespace `name` (setns affects only the
/// calling thread; sockets made there stay in that namespace whichever thread uses them later).
private func inNamespace<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        let t = Thread {
            let fd = open("/var/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                c.resume(throwing: SystemError("open", subject: name))
                return
            }
            defer { close(fd) }
            guard let setns = setnsFunction, setns(fd, cloneNewNet) == 0 else {
                c.resume(throwing: SystemError("setns", subject: name))
                return
            }
            c.resume(with: Result { try body() })
        }
        t.start()
    }
}

/// Runs blocking `body` on a thread of its own.
private func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        Thread { c.resume(with: Result { try body() }) }.start()
    }
}

/// `setns(2)` is not in Swift's Glibc module (it needs `_GNU_SOURCE`); look it up in libc.
private let setnsFunction: (@convention(c) (Int32, Int32) -> Int32)? = {
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { return nil }
    return unsafeBitCast(sym, to: (@convention(c) (Int32, Int32) -> Int32).self)
}()
private let cloneNewNet: Int32 = 0x4000_0000  // CLONE_NEWNET

/// A minimal camera: joins the discovery group on its veth and answers each Probe with a garbage datagram,
/// a ProbeMatches for someone else's probe, a non-camera match and its own match.
private final class FakeCamera: @unchecked Sendable {
    let fd: Int32
    init() throws {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = WSDiscoveryProbe.port.bigEndian
        let b = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var m = ip_mreq()
        inet_pton(AF_INET, WSDiscoveryProbe.multicastGroup, &m.imr_multiaddr)
        inet_pton(AF_INET, NamespacePair.cameraAddress, &m.imr_interface)
        guard b == 0,
            setsockopt(fd, Int32(IPPROTO_IP), IP_ADD_MEMBERSHIP, &m, socklen_t(MemoryLayout<ip_mreq>.size)) == 0
        else {
            close(fd)
            throw SystemError("camera socket")
        }
    }
    deinit { close(fd) }

    static func matches(relatesTo: String, address: String, types: String) -> String {
        """
        <e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing" \
        xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl" \
        xmlns:pub="http://schemas.microsoft.com/windows/pub/2005/07"><e:Header><w:MessageID>urn:uuid:\(UUID())</w:MessageID>\
        <w:RelatesTo>\(relatesTo)</w:RelatesTo></e:Header><e:Body><d:ProbeMatches><d:ProbeMatch><w:EndpointReference>\
        <w:Address>\(address)</w:Address></w:EndpointReference><d:Types>\(types)</d:Types>\
        <d:Scopes>onvif://www.onvif.org/name/Fake</d:Scopes><d:XAddrs>http://\(NamespacePair.cameraAddress)/onvif/device_service</d:XAddrs>\
        </d:ProbeMatch></d:ProbeMatches></e:Body></e:Envelope>
        """
    }

    /// Answers probes until it has answered `probeCount` or `seconds` have passed; returns how many it saw.
    func serve(probeCount: Int, seconds: Double) -> Int {
        let end = Date().addingTimeInterval(seconds)
        var probes = 0
        var buf = [UInt8](repeating: 0, count: 65_536)
        while Date() < end, probes < probeCount {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            var from = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let n = buf.withUnsafeMutableBytes { b in
                withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        recvfrom(fd, b.baseAddress, b.count, 0, $0, &len)
                    }
                }
            }
            guard n > 0, case .probe(let h, let types)? = try? DiscoveryMessage.parse(Data(buf[..<n])),
                let id = h.messageID, types.contains(WSDiscoveryProbe.networkVideoTransmitter)
            else { continue }
            probes += 1
            for reply in [
                "<not xml",
                Self.matches(
                    relatesTo: "urn:uuid:someone-else", address: "urn:uuid:other", types: "dn:NetworkVideoTransmitter"),
                Self.matches(relatesTo: id, address: "urn:uuid:pc", types: "pub:Computer"),
                Self.matches(relatesTo: id, address: "urn:uuid:fake-camera-1", types: "dn:NetworkVideoTransmitter"),
            ] {
                let bytes = Array(reply.utf8)
                _ = withUnsafePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, 0, $0, len) }
                }
            }
        }
        return probes
    }
}

@Suite(
    "WS-Discovery over multicast", .serialized,
    .enabled(if: NamespacePair.usable, "needs root and iproute2 to create network namespaces; skipped"))
struct MulticastProbeTests {
    @Test func probeFindsTheCameraInAnotherNamespaceAndSkipsTheRest() async throws {
        let ns = NamespacePair()
        try ns.create()
        defer { ns.remove() }
        let camera = try await inNamespace(ns.camera) { try FakeCamera() }
        let prober = try await inNamespace(ns.prober) {
            UncheckedBox(
                try WSDiscoveryProber(interfaceAddress: NamespacePair.proberAddress, logger: Logger(label: "test")))
        }
        // Bounded either way: the camera stops after the Probe and its repeat (or 5 s), the prober after 1.5 s.
        // Both block, so each gets its own thread: on a busy 2-core machine a task on the cooperative pool
        // could start after the prober's window has closed.
        async let served = onThread { camera.serve(probeCount: 2, seconds: 5) }
        let outcome = try await onThread { try prober.value.probe(listenFor: .milliseconds(1_500)) }
        let probes = try await served
        #expect(probes == 2)  // the Probe and its one repeat
        #expect(
            outcome.replies == [
                ProbeReply(
                    endpoint: DiscoveredEndpoint(
                        address: "urn:uuid:fake-camera-1", types: [WSDiscoveryProbe.networkVideoTransmitter],
                        scopes: ["onvif://www.onvif.org/name/Fake"],
                        xAddrs: ["http://10.213.7.2/onvif/device_service"]),
                    from: NamespacePair.cameraAddress)
            ])
        #expect(outcome.malformed == 2)
        #expect(outcome.unrelated == 2)
        #expect(outcome.notCameras == 2)
    }

    @Test func probeMessageRoundTrips() throws {
        let id = WSDiscoveryProbe.newMessageID()
        let msg = WSDiscoveryProbe.message(
            messageID: id, types: [WSDiscoveryProbe.networkVideoTransmitter, WSDiscoveryProbe.onvifDevice])
        guard case .probe(let h, let types) = try DiscoveryMessage.parse(msg) else {
            Issue.record("not a Probe")
            return
        }
        #expect(h.messageID == id)
        #expect(h.action == "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe")
        #expect(types == [WSDiscoveryProbe.networkVideoTransmitter, WSDiscoveryProbe.onvifDevice])
        #expect(msg.count < 1_400)  // one unfragmented datagram
    }
}

/// Carries a non-Sendable value across one hand-off (the prober is used by one thread at a time).
private struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ v: T) { value = v }
}
