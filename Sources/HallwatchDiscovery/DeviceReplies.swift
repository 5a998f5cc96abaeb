import Foundation
import HallwatchCore

/// The camera's clock minus the box's, in microseconds: add it to a box time to get camera time.
public struct ClockOffset: Sendable, Equatable, Hashable, Codable {
    /// Camera time minus box time, µs.
    public var micros: Int64
    /// An offset of `micros` µs.
    public init(micros: Int64) { self.micros = micros }
    /// No offset.
    public static let zero = ClockOffset(micros: 0)
    /// The camera's time when the box's clock reads `boxTime`.
    public func cameraTime(atBox boxTime: UTCMicros) -> UTCMicros { boxTime.adding(micros: micros) }
}

/// `GetSystemDateAndTimeResponse` (ONVIF Core §8.3.2 GetSystemDateAndTime): the one call a device must
/// answer without authentication, so that a client can correct its UsernameToken `Created` time.
public struct SystemDateAndTime: Sendable, Equatable {
    /// `NTP` or `Manual`.
    public var dateTimeType: String?
    /// Whether daylight saving time is in effect, as the camera says.
    public var daylightSavings: Bool?
    /// `TimeZone/TZ`, a POSIX TZ string (`BRT3`). Not needed: ``utc`` is used, never local time.
    public var timeZone: String?
    /// `UTCDateTime`, whole seconds. `nil` when the device did not send it (then no offset can be computed).
    public var utc: UTCMicros?

    /// Parses a reply; throws ``ONVIFError``.
    public static func parse(_ data: Data, limits: XMLLimits = .reply) throws -> SystemDateAndTime {
        let r = try SOAPEnvelope.parse(data, limits: limits).response(NS.device, "GetSystemDateAndTimeResponse")
        guard let s = r.child(NS.device, "SystemDateAndTime") else {
            throw ONVIFError(.missingField, "GetSystemDateAndTimeResponse without SystemDateAndTime")
        }
        let t = NS.schema
        var result = SystemDateAndTime(
            dateTimeType: s.childText(t, "DateTimeType"),
            daylightSavings: s.childText(t, "DaylightSavings").flatMap(parseBool),
            timeZone: s.child(t, "TimeZone")?.childText(t, "TZ"), utc: nil)
        if let u = s.child(t, "UTCDateTime") {
            func n(_ group: String, _ field: String) -> Int? {
                u.child(t, group)?.childText(t, field).flatMap { Int($0) }
            }
            guard let y = n("Date", "Year"), let mo = n("Date", "Month"), let d = n("Date", "Day"),
                let h = n("Time", "Hour"), let mi = n("Time", "Minute"), let se = n("Time", "Second"),
                (1970...9999).contains(y), (1...12).contains(mo), (1...31).contains(d), (0...23).contains(h),
                (0...59).contains(mi), (0...60).contains(se)
            else {
                throw ONVIFError(.missingField, "UTCDateTime with a missing or out-of-range field")
            }
            let text = String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", y, mo, d, h, mi, min(se, 59))
            result.utc = ISO8601.parse(text)
        }
        return result
    }

    /// The camera's clock minus the box's, given the box's UTC when the reply arrived; `nil` without ``utc``.
    /// The reply has whole seconds, so the offset is good to about a second — well inside the few seconds'
    /// tolerance devices apply to `Created`.
    public func clockOffset(boxTimeAtReply: UTCMicros) -> ClockOffset? {
        utc.map { ClockOffset(micros: $0.micros - boxTimeAtReply.micros) }
    }
}

/// `GetDeviceInformationResponse` (ONVIF Core §8.3.7). Empty fields are `nil`.
public struct DeviceInformation: Sendable, Equatable, Codable {
    /// Manufacturer, as sent.
    public var manufacturer: String?
    /// Model, as sent.
    public var model: String?
    /// Firmware version, as sent.
    public var firmwareVersion: String?
    /// Serial number, as sent.
    public var serialNumber: String?
    /// Hardware id, as sent.
    public var hardwareID: String?

    /// Device information from its parts.
    public init(
        manufacturer: String?, model: String?, firmwareVersion: String?, serialNumber: String?, hardwareID: String?
    ) {
        self.manufacturer = manufacturer
        self.model = model
        self.firmwareVersion = firmwareVersion
        self.serialNumber = serialNumber
        self.hardwareID = hardwareID
    }

    /// Parses a reply; each field is one line of at most 256 characters (``ParsedXMLElement/childLine(_:_:maxCharacters:)``:
    /// control characters become spaces). Throws ``ONVIFError``.
    public static func parse(_ data: Data, limits: XMLLimits = .reply) throws -> DeviceInformation {
        let r = try SOAPEnvelope.parse(data, limits: limits).response(NS.device, "GetDeviceInformationResponse")
        let d = NS.device
        return DeviceInformation(
            manufacturer: r.childLine(d, "Manufacturer"), model: r.childLine(d, "Model"),
            firmwareVersion: r.childLine(d, "FirmwareVersion"),
            serialNumber: r.childLine(d, "SerialNumber"), hardwareID: r.childLine(d, "HardwareId"))
    }
}

/// Service addresses from `GetCapabilitiesResponse` (ONVIF Core §8.1.2.1; deprecated but answered by every
/// device, and the fallback when GetServices is not supported).
public struct Capabilities: Sendable, Equatable {
    /// The device service address.
    public var deviceXAddr: String?
    /// The media service address.
    public var mediaXAddr: String?
    /// The events service address.
    public var eventsXAddr: String?
    /// The imaging service address.
    public var imagingXAddr: String?
    /// The PTZ service address.
    public var ptzXAddr: String?
    /// The analytics service address.
    public var analyticsXAddr: String?

    /// Parses a reply; throws ``ONVIFError``. Vendor extensions (`hikxsd:XAddr`) are not mistaken for ours:
    /// each XAddr is looked up as `tt:<Category>/tt:XAddr` directly under `tds:Capabilities`.
    public static func parse(_ data: Data, limits: XMLLimits = .reply) throws -> Capabilities {
        let r = try SOAPEnvelope.parse(data, limits: limits).response(NS.device, "GetCapabilitiesResponse")
        guard let c = r.child(NS.device, "Capabilities") else {
            throw ONVIFError(.missingField, "GetCapabilitiesResponse without Capabilities")
        }
        func x(_ category: String) -> String? {
            c.child(NS.schema, category)?.childText(NS.schema, "XAddr").flatMap { isHTTPURL($0) ? $0 : nil }
        }
        return Capabilities(
            deviceXAddr: x("Device"), mediaXAddr: x("Media"), eventsXAddr: x("Events"),
            imagingXAddr: x("Imaging"), ptzXAddr: x("PTZ"), analyticsXAddr: x("Analytics"))
    }
}

/// `GetServicesResponse` (ONVIF Core §8.1.2.2): one entry per service.
public struct Services: Sendable, Equatable {
    /// One service: its namespace, address and version.
    public struct Service: Sendable, Equatable {
        /// The service's WSDL namespace, e.g. ``NS/media``.
        public var namespace: String
        /// The service's address (an http(s) URL).
        public var xAddr: String
        /// Major version, when sent.
        public var versionMajor: Int?
        /// Minor version, when sent.
        public var versionMinor: Int?
    }
    /// The services, in the order sent.
    public var services: [Service]

    /// The media service (version 1) address, which GetProfiles and GetStreamUri go to.
    public var mediaXAddr: String? { xAddr(NS.media) }
    /// The media service version 2 address, when the device has one.
    public var media2XAddr: String? { xAddr(NS.media2) }
    /// The device service address.
    public var deviceXAddr: String? { xAddr(NS.device) }
    /// The address of the service with WSDL namespace `namespace`, if listed.
    public func xAddr(_ namespace: String) -> String? { services.first { $0.namespace == namespace }?.xAddr }

    /// Parses a reply; throws ``ONVIFError``. Entries without a namespace or a valid http(s) XAddr are
    /// left out.
    public static func parse(_ data: Data, limits: XMLLimits = .reply) throws -> Services {
        let r = try SOAPEnvelope.parse(data, limits: limits).response(NS.device, "GetServicesResponse")
        let d = NS.device
        return Services(
            services: r.children(d, "Service").compactMap { s in
                guard let ns = s.childText(d, "Namespace"), let x = s.childText(d, "XAddr"), isHTTPURL(x) else {
                    return nil
                }
                let v = s.child(d, "Version")
                return Service(
                    namespace: ns, xAddr: x, versionMajor: v?.childText(NS.schema, "Major").flatMap { Int($0) },
                    versionMinor: v?.childText(NS.schema, "Minor").flatMap { Int($0) })
            })
    }
}

/// `xs:boolean` (`true`, `false`, `1`, `0`).
func parseBool(_ s: String) -> Bool? {
    switch s.lowercased() {
    case "true", "1": return true
    case "false", "0": return false
    default: return nil
    }
}
