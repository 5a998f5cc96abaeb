import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import HallwatchStatus

/// The box as a receipt describes it (issue 17 step 9), so that the installer comes home with the district's
/// inventory: disks, cameras configured and answering, cameras discovered but not configured, network
/// addresses, the web's TLS fingerprint and the box's public keys. Never a password, hash or private key.
public struct BoxInventory: Sendable, Equatable {
    /// One recording disk.
    public struct Disk: Sendable, Equatable {
        /// `recorder.disks[].name`.
        public var name: String
        /// Its directory.
        public var path: String
        /// The block device holding it (`sda`, `nvme0n1`), when sysfs names one.
        public var device: String?
        /// The device's model (sysfs `device/model`), when known.
        public var model: String?
        /// The device's serial (sysfs `device/serial`, else `device/wwid`), when known.
        public var serial: String?
        /// The device's size, bytes (sysfs `size` × 512).
        public var deviceBytes: Int64?
        /// The file system's size and free space, bytes (statvfs); `nil` when the directory is missing.
        public var fileSystemBytes: Int64?
        /// Free bytes for unprivileged writers.
        public var freeBytes: Int64?
        /// `smartctl -H`'s verdict (`PASSED`, `FAILED`), or why there is none.
        public var smart: String
    }

    /// Every configured recording disk.
    public var disks: [Disk] = []
    /// Camera ids in the configuration.
    public var camerasConfigured: [String] = []
    /// Configured cameras whose capture worker reports `online` on the bus.
    public var camerasAnswering: [String] = []
    /// Devices the discovery agent sees that no camera adopts: `id model address`.
    public var discoveredNotConfigured: [String] = []
    /// The box's addresses: `interface address` (loopback left out).
    public var addresses: [String] = []
    /// SHA-256 of the web's TLS certificate, as `hallwatch-web` publishes it; `nil` when not seen.
    public var tlsSHA256: String?
    /// The receipt-signing key, as a minisign public key line (the district verifies receipts with it).
    public var boxPublicKey: String?
    /// Its key id as minisign prints it.
    public var boxKeyID: String?

    /// An empty inventory.
    public init() {}

    /// Collects the inventory for `config` (the configuration current after the run): disks and addresses from
    /// the kernel; with `bus`, cameras, discovered devices and the TLS fingerprint from the retained bus state
    /// (at most `busWait` to connect and read it).
    public static func collect(
        config: HallwatchConfig?, receiptKey: Minisign.SecretKey?, bus: Bool, busWait: Duration = .seconds(2)
    ) -> BoxInventory {
        var inv = BoxInventory()
        if let key = receiptKey?.publicKey {
            inv.boxPublicKey = key.line
            inv.boxKeyID = key.keyIDText
        }
        inv.addresses = addresses()
        guard let config else { return inv }
        inv.disks = config.recorder.disks.map { disk($0.name, $0.path) }
        inv.camerasConfigured = config.cameras.map(\.id.rawValue).sorted()
        if bus {
            let seen = HealthGate.blocking { await busFacts(config: config, wait: busWait) }
            inv.camerasAnswering = inv.camerasConfigured.filter { seen.online.contains($0) }
            inv.discoveredNotConfigured = seen.discovered
            inv.tlsSHA256 = seen.tls
        }
        return inv
    }

    /// The receipt's lines for this inventory.
    var lines: [String] {
        var out: [String] = []
        if let k = boxPublicKey { out.append("box-key: \(k) (minisign, key id \(boxKeyID ?? "-"))") }
        out.append("tls-sha256: \(tlsSHA256 ?? "-")")
        out += addresses.map { "address: \($0)" }
        for d in disks {
            func bytes(_ v: Int64?) -> String { v.map { "\($0)" } ?? "-" }
            out.append(
                "disk: \(d.name) \(d.path) device \(d.device ?? "-") model \(d.model ?? "-") serial \(d.serial ?? "-") "
                    + "size \(bytes(d.deviceBytes)) fs \(bytes(d.fileSystemBytes)) free \(bytes(d.freeBytes)) "
                    + "smart \(d.smart)")
        }
        out.append("cameras-configured: \(camerasConfigured.joined(separator: " "))")
        out.append("cameras-answering: \(camerasAnswering.joined(separator: " "))")
        out += discoveredNotConfigured.map { "discovered-not-configured: \($0)" }
        return out
    }

    /// The same for the JSON receipt.
    var json: [String: Any] {
        [
            "boxPublicKey": boxPublicKey ?? "", "boxKeyID": boxKeyID ?? "", "tlsSHA256": tlsSHA256 ?? "",
            "addresses": addresses, "camerasConfigured": camerasConfigured, "camerasAnswering": camerasAnswering,
            "discoveredNotConfigured": discoveredNotConfigured,
            "disks": disks.map { d -> [String: Any] in
                [
                    "name": d.name, "path": d.path, "device": d.device ?? "", "model": d.model ?? "",
                    "serial": d.serial ?? "", "deviceBytes": d.deviceBytes ?? -1,
                    "fileSystemBytes": d.fileSystemBytes ?? -1, "freeBytes": d.freeBytes ?? -1, "smart": d.smart,
                ]
            },
        ]
    }

    /// What the retained bus state says: cameras online, devices discovered and not adopted, the TLS
    /// fingerprint.
    static func busFacts(config: HallwatchConfig, wait: Duration) async -> (
        online: Set<String>, discovered: [String], tls: String?
    ) {
        let topics = BusTopics(box: config.box)
        let client = BusClient(
            clientID: "provision-inventory-\(getpid())", socketPath: config.bus.socket, will: nil,
            logger: .init(label: "hallwatch.provision.inventory"))
        defer { client.disconnect() }
        guard (try? await client.connect(timeout: wait)) != nil else { return ([], [], nil) }
        var online = Set<String>()
        var discovered: [String: String] = [:]
        var tls: String?
        let seen = Shared<[BusMessage]>([])
        var readers: [Task<Void, Never>] = []
        for filter in [topics.allCameraStates, topics.allDiscovered, topics.webIdentity] {
            let stream = client.subscribe(filter)
            readers.append(
                Task { for await m in stream { seen.state.withLock { if $0.count < 4096 { $0.append(m) } } } })
        }
        // Retained messages arrive right after the subscription: read what came within 700 ms.
        try? await Task.sleep(for: .milliseconds(700))
        for r in readers { r.cancel() }
        for m in seen.state.withLock({ $0 }) {
            if m.topic.hasPrefix(topics.root + "/camera/"), let s = try? m.decode(CameraState.self) {
                if s.state == .online { online.insert(s.camera.rawValue) } else { online.remove(s.camera.rawValue) }
            } else if m.topic.hasPrefix(topics.root + "/discovered/"), let d = try? m.decode(DiscoveredDevice.self),
                d.presence == .present, d.adoptedAs == nil
            {
                discovered[d.id] = "\(d.id) \(d.model ?? "unknown-model") \(d.addresses.first ?? "-")"
            } else if m.topic == topics.webIdentity, let w = try? m.decode(WebIdentity.self) {
                tls = w.tlsSHA256
            }
        }
        return (online, discovered.keys.sorted().compactMap { discovered[$0] }, tls)
    }

    /// One disk: statvfs for the file system, sysfs for the device under it, `smartctl -H` when installed.
    static func disk(_ name: String, _ path: String) -> Disk {
        var d = Disk(name: name, path: path, smart: "unavailable")
        var vfs = statvfs()
        if statvfs(path, &vfs) == 0 {
            d.fileSystemBytes = Int64(vfs.f_blocks) * Int64(vfs.f_frsize)
            d.freeBytes = Int64(vfs.f_bavail) * Int64(vfs.f_frsize)
        }
        var st = stat()
        guard stat(path, &st) == 0 else {
            d.smart = "unavailable (directory missing)"
            return d
        }
        let major = (st.st_dev >> 8) & 0xfff | ((st.st_dev >> 32) & ~0xfff)
        let minor = (st.st_dev & 0xff) | ((st.st_dev >> 12) & ~0xff)
        guard let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/sys/dev/block/\(major):\(minor)")
        else {
            d.smart = "unavailable (no block device)"
            return d
        }
        // …/block/sda/sda1 for a partition, …/block/sda for a whole disk.
        let parts = link.split(separator: "/")
        guard let blockIndex = parts.lastIndex(of: "block"), blockIndex + 1 < parts.count else { return d }
        let device = String(parts[blockIndex + 1])
        d.device = device
        func attr(_ rel: String) -> String? {
            guard let data = FileManager.default.contents(atPath: "/sys/block/\(device)/\(rel)"), data.count < 4096
            else { return nil }
            let s = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            return s.isEmpty || s.contains(where: { $0.isNewline || $0 == "\0" }) ? nil : s
        }
        d.model = attr("device/model")
        d.serial = attr("device/serial") ?? attr("device/wwid")
        d.deviceBytes = attr("size").flatMap(Int64.init).map { $0 * 512 }
        let smartctl = "/usr/sbin/smartctl"
        if FileManager.default.isExecutableFile(atPath: smartctl) {
            let r = try? Helper.run(
                [smartctl, "-H", "/dev/" + device], sandbox: ReaderSandbox(prefix: [], deadline: .seconds(10)),
                maxOutputBytes: 16 << 10)
            let text = r.map { String(decoding: $0.output, as: UTF8.self) } ?? ""
            d.smart =
                text.contains("PASSED") ? "PASSED" : text.contains("FAILED") ? "FAILED" : "unavailable (no verdict)"
        } else {
            d.smart = "unavailable (smartctl not installed)"
        }
        return d
    }

    /// `interface address` for every configured address but loopback.
    static func addresses() -> [String] {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0 else { return [] }
        defer { freeifaddrs(head) }
        var out: [String] = []
        var p = head
        while let ifa = p?.pointee {
            defer { p = ifa.ifa_next }
            guard let sa = ifa.ifa_addr, ifa.ifa_flags & UInt32(IFF_LOOPBACK) == 0 else { continue }
            let family = Int32(sa.pointee.sa_family)
            guard family == AF_INET || family == AF_INET6 else { continue }
            var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            let ok =
                family == AF_INET
                ? sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    var a = sin.pointee.sin_addr
                    return inet_ntop(AF_INET, &a, &buf, socklen_t(buf.count)) != nil
                }
                : sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                    var a = sin6.pointee.sin6_addr
                    return inet_ntop(AF_INET6, &a, &buf, socklen_t(buf.count)) != nil
                }
            let address = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if ok { out.append("\(String(cString: ifa.ifa_name)) \(address)") }
        }
        return out.sorted()
    }
}
