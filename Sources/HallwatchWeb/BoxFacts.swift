import Foundation
import HallwatchCore

/// What the status page's box section says about the box itself, beside what the bus says.
public struct BoxFacts: Sendable {
    /// This firmware's version, shown on the page and in `/api/v1/status`.
    public static let softwareVersion = "0.13.0-dev"

    /// The box (configuration `box`).
    public var box: String
    /// The building (configuration `building`).
    public var building: String
    /// ``softwareVersion`` unless a test says otherwise.
    public var softwareVersion: String
    /// SHA-256 of the box's Ed25519 identity public key (``BoxIdentityKey/fingerprintSHA256``); `nil` until made.
    public var identitySHA256: String?
    /// SHA-256 of the TLS certificate's DER (``TLSIdentity/fingerprintSHA256``); `nil`: the bus's copy is shown.
    public var tlsSHA256: String?

    public init(
        box: String, building: String, softwareVersion: String = BoxFacts.softwareVersion,
        identitySHA256: String? = nil, tlsSHA256: String? = nil
    ) {
        self.box = box
        self.building = building
        self.softwareVersion = softwareVersion
        self.identitySHA256 = identitySHA256
        self.tlsSHA256 = tlsSHA256
    }
}

/// The kernel's view of clock synchronisation, from `adjtimex(2)` (read-only: `modes = 0`), which is what
/// `ntpd`, `chronyd` and `systemd-timesyncd` steer.
public struct ClockSync: Codable, Sendable, Equatable {
    /// Whether the kernel considers the clock synchronised: the call's state is not `TIME_ERROR` (5) and
    /// `STA_UNSYNC` (0x40) is clear. `nil` when it could not be read.
    public var synchronised: Bool?
    /// The offset still being slewed away (`timex.offset`), in ms; positive: the clock is behind.
    public var offsetMs: Double?
    /// The kernel's maximum error estimate (`timex.maxerror`), in ms.
    public var maxErrorMs: Double?

    public init(synchronised: Bool?, offsetMs: Double?, maxErrorMs: Double?) {
        self.synchronised = synchronised
        self.offsetMs = offsetMs
        self.maxErrorMs = maxErrorMs
    }
}

/// Where the web reads the host's uptime and clock synchronisation; a fake in tests.
public protocol HostFacts: Sendable {
    /// Seconds since the box booted (`CLOCK_BOOTTIME`).
    func uptimeSeconds() -> Double
    /// The clock's synchronisation state now.
    func clockSync() -> ClockSync
}

/// ``HostFacts`` of the machine it runs on: `clock_gettime(CLOCK_BOOTTIME)` and glibc's `adjtimex`.
public struct SystemHostFacts: HostFacts {
    public init() {}

    public func uptimeSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    public func clockSync() -> ClockSync { Self.adjtimex() }

    typealias AdjtimexFunction = @convention(c) (UnsafeMutableRawPointer) -> Int32
    /// glibc's `adjtimex`, looked up once: Swift's Glibc module does not import `<sys/timex.h>`.
    nonisolated(unsafe) static let adjtimexFunction: AdjtimexFunction? = {
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "adjtimex") else { return nil }
        return unsafeBitCast(symbol, to: AdjtimexFunction.self)
    }()

    /// Reads `struct timex` with `modes = 0` (nothing changed; no privilege needed). The struct's layout is the
    /// kernel's on LP64 Linux (x86-64, arm64): `modes` at 0, `offset` at 8, `maxerror` at 24, `status` at 40,
    /// all longs but `modes` and `status`; 208 bytes in all, a 512-byte buffer is passed.
    static func adjtimex() -> ClockSync {
        guard let call = adjtimexFunction, MemoryLayout<Int>.size == 8 else {
            return ClockSync(synchronised: nil, offsetMs: nil, maxErrorMs: nil)
        }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: 512)
        let state = call(buffer)
        guard state >= 0 else { return ClockSync(synchronised: nil, offsetMs: nil, maxErrorMs: nil) }
        let status = buffer.load(fromByteOffset: 40, as: Int32.self)
        let staNano: Int32 = 0x2000
        let offset = Double(buffer.load(fromByteOffset: 8, as: Int.self))
        return ClockSync(
            synchronised: state != 5 && status & 0x40 == 0,
            offsetMs: status & staNano != 0 ? offset / 1e6 : offset / 1e3,
            maxErrorMs: Double(buffer.load(fromByteOffset: 24, as: Int.self)) / 1e3)
    }
}

/// The box section of the status page and of `/api/v1/status`.
public struct BoxView: Codable, Sendable, Equatable {
    /// Configuration `box`.
    public var name: String
    /// Configuration `building`.
    public var building: String
    /// The firmware's version.
    public var softwareVersion: String
    /// Seconds since the box booted.
    public var uptimeSeconds: Double
    /// The box's UTC clock when the view was made, ISO 8601.
    public var utc: String
    /// The same instant in the building's time zone (``BuildingTime/format(_:)``).
    public var local: String
    /// The building's time zone (IANA name).
    public var timeZone: String
    /// The clock's synchronisation (`adjtimex`).
    public var clock: ClockSync
    /// SHA-256 of the Ed25519 identity public key, `:`-separated hex.
    public var identitySHA256: String?
    /// SHA-256 of the TLS certificate, `:`-separated hex.
    public var tlsSHA256: String?

    /// The view of `facts` at `now`.
    public init(facts: BoxFacts, host: any HostFacts, time: BuildingTime, now: UTCMicros, tlsFromBus: String?) {
        name = facts.box
        building = facts.building
        softwareVersion = facts.softwareVersion
        uptimeSeconds = host.uptimeSeconds().rounded()
        utc = now.iso8601
        local = time.format(now)
        timeZone = time.identifier
        clock = host.clockSync()
        identitySHA256 = facts.identitySHA256
        tlsSHA256 = facts.tlsSHA256 ?? tlsFromBus
    }
}

extension Display {
    /// `3 d 4 h`, `4 h 5 min`, `5 min` — uptime as a person reads it.
    static func uptime(_ seconds: Double) -> String {
        let s = Int(seconds)
        let (d, h, m) = (s / 86400, s % 86400 / 3600, s % 3600 / 60)
        if d > 0 { return "\(d) d \(h) h" }
        if h > 0 { return "\(h) h \(m) min" }
        return "\(m) min"
    }

    /// `synchronised (offset +0.012 ms, max error 16 ms)`, `NOT synchronised …`, `unknown`.
    static func clock(_ c: ClockSync) -> String {
        guard let sync = c.synchronised else { return "unknown" }
        var parts: [String] = []
        if let o = c.offsetMs { parts.append(String(format: "offset %+.3f ms", o)) }
        if let e = c.maxErrorMs { parts.append(String(format: "max error %.0f ms", e)) }
        return (sync ? "synchronised" : "NOT synchronised")
            + (parts.isEmpty ? "" : " (\(parts.joined(separator: ", ")))")
    }
}
