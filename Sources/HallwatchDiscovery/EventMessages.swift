import Crypto
import Foundation
import HallwatchCore

/// One notification from a pull point: a WS-BaseNotification `NotificationMessage` carrying an ONVIF
/// `tt:Message` (ONVIF Core §9.2.1 message format: `UtcTime`, `PropertyOperation`, `Source` and `Data`
/// `SimpleItem`s).
public struct ONVIFNotification: Sendable, Equatable {
    /// A property event's operation (ONVIF Core §9.2.2): `Initialized` is sent for every property on every new
    /// subscription (state, not news), `Changed` when it changes, `Deleted` when it goes away.
    public enum Operation: String, Sendable, Equatable {
        case initialized = "Initialized"
        case changed = "Changed"
        case deleted = "Deleted"
    }

    /// The topic with ONVIF's topic namespace left implicit (`Door/State/DoorAlarm` for `tns1:Door/State/DoorAlarm`);
    /// a topic in another namespace keeps it as `{namespace}Path`.
    public var topic: String
    /// `UtcTime` as the device sent it (its clock, possibly 1970 after a lost RTC).
    public var utcTime: String
    /// `utcTime` parsed, `nil` when it is not an xs:dateTime with an offset.
    public var time: UTCMicros?
    /// `nil` for a non-property event.
    public var operation: Operation?
    /// The `Source` items (`DoorToken`, `AccessPointToken`, `InputToken`…) by name.
    public var source: [String: String]
    /// The `Data` items (`State`, `LogicalState`, `CredentialToken`…) by name.
    public var data: [String: String]

    /// A notification from its parts.
    public init(
        topic: String, utcTime: String, operation: Operation?, source: [String: String], data: [String: String]
    ) {
        self.topic = topic
        self.utcTime = utcTime
        self.time = ISO8601.parse(utcTime)
        self.operation = operation
        self.source = source
        self.data = data
    }

    /// SHA-256 (hex) of the content: topic, time, operation and every item, sorted. ONVIF events carry no id, so
    /// this is their identity: a message pulled twice (a retried PullMessages) hashes the same.
    public var contentHash: String {
        func items(_ d: [String: String]) -> String {
            d.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\u{1F}")
        }
        let text = [topic, utcTime, operation?.rawValue ?? "", items(source), items(data)].joined(separator: "\u{1E}")
        return SHA256.hash(data: Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The property's identity: topic and source items (a door's `DoorAlarm`), whose latest data is its state.
    var propertyKey: String {
        topic + "|" + source.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
    }

    /// Reads one `wsnt:NotificationMessage`; `nil` when it has no topic or no `tt:Message`.
    static func parse(_ n: ParsedXMLElement) -> ONVIFNotification? {
        guard let topicElement = n.child(NS.wsnt, "Topic"),
            let message = n.path(NS.wsnt, "Message")?.child(NS.schema, "Message")
        else { return nil }
        let topic = topicElement.trimmedText
        guard !topic.isEmpty, topic.utf8.count <= 256 else { return nil }
        // ConcreteSet topics: `prefix:A/B/C`; the prefix is resolved where it is written (XML Namespaces §6.2).
        var path = topic
        if let colon = topic.firstIndex(of: ":"), let q = topicElement.resolveQName(String(topic[..<colon]) + ":x") {
            let rest = String(topic[topic.index(after: colon)...])
            path = q.namespace == NS.topics ? rest : "{\(q.namespace)}\(rest)"
        }
        func items(_ local: String) -> [String: String] {
            var out: [String: String] = [:]
            for item in message.child(NS.schema, local)?.children(NS.schema, "SimpleItem").prefix(16) ?? [] {
                guard let name = item.attributes["Name"], let value = item.attributes["Value"], name.utf8.count <= 64,
                    value.utf8.count <= 256
                else { continue }
                out[name] = value
            }
            return out
        }
        return ONVIFNotification(
            topic: path, utcTime: message.attributes["UtcTime"] ?? "",
            operation: message.attributes["PropertyOperation"].flatMap(Operation.init(rawValue:)),
            source: items("Source"), data: items("Data"))
    }
}

/// A pull point as `CreatePullPointSubscription` made it (ONVIF Core §9.1.1).
public struct PullPointReference: Sendable, Equatable {
    /// `SubscriptionReference/Address`: where PullMessages, Renew and Unsubscribe go.
    public var address: String
    /// The device's `CurrentTime` (its clock), when sent.
    public var currentTime: UTCMicros?
    /// When the pull point ends unless renewed (the device's clock), when sent.
    public var terminationTime: UTCMicros?

    /// Parses the reply; throws ``ONVIFError`` (the fault, or `onvif.unexpectedReply`, `onvif.missingField`).
    public static func parse(_ data: Data) throws -> PullPointReference {
        let r = try SOAPEnvelope.parse(data).response(NS.events, "CreatePullPointSubscriptionResponse")
        guard
            let address = r.child(NS.events, "SubscriptionReference")?.childText(NS.wsa10, "Address")
                ?? r.child(NS.events, "SubscriptionReference")?.childText(NS.wsa2004, "Address"),
            isHTTPURL(address)
        else { throw ONVIFError(.missingField, "CreatePullPointSubscription: no http(s) SubscriptionReference") }
        return PullPointReference(
            address: address, currentTime: r.childText(NS.wsnt, "CurrentTime").flatMap(ISO8601.parse),
            terminationTime: r.childText(NS.wsnt, "TerminationTime").flatMap(ISO8601.parse))
    }
}

/// What one `PullMessages` returned (ONVIF Core §9.1.2).
public struct PullMessagesReply: Sendable, Equatable {
    /// The device's clock, when sent.
    public var currentTime: UTCMicros?
    /// The subscription's end in the device's clock, when sent (a device that extends it on each pull sends a
    /// later one each time).
    public var terminationTime: UTCMicros?
    /// The notifications, in order (ones without a topic or message left out).
    public var notifications: [ONVIFNotification]

    /// Parses the reply; throws ``ONVIFError`` (a fault such as an unknown subscription, or
    /// `onvif.unexpectedReply`).
    public static func parse(_ data: Data) throws -> PullMessagesReply {
        let r = try SOAPEnvelope.parse(data).response(NS.events, "PullMessagesResponse")
        return PullMessagesReply(
            currentTime: r.childText(NS.events, "CurrentTime").flatMap(ISO8601.parse),
            terminationTime: r.childText(NS.events, "TerminationTime").flatMap(ISO8601.parse),
            notifications: r.children(NS.wsnt, "NotificationMessage").compactMap(ONVIFNotification.parse))
    }

    /// The subscription's end after a `Renew` (WS-BaseNotification §6.1.2); throws ``ONVIFError``.
    public static func parseRenew(_ data: Data) throws -> (current: UTCMicros?, termination: UTCMicros?) {
        let r = try SOAPEnvelope.parse(data).response(NS.wsnt, "RenewResponse")
        return (
            r.childText(NS.wsnt, "CurrentTime").flatMap(ISO8601.parse),
            r.childText(NS.wsnt, "TerminationTime").flatMap(ISO8601.parse)
        )
    }
}

/// Issue 16's contract event (a CloudEvents 1.0 structured JSON document) as the subscriber emits it: the web
/// checks and stores it exactly as one POSTed to `/api/v1/events`.
public struct ContractEvent: Codable, Sendable, Equatable {
    /// What the subscriber adds under `data`.
    public struct Payload: Codable, Sendable, Equatable {
        /// The ONVIF topic (``ONVIFNotification/topic``).
        public var topic: String?
        /// `Changed`, or `nil` for a non-property event.
        public var operation: String?
        /// `UtcTime` verbatim (the device's clock).
        public var deviceTime: String?
        /// `device` when `time` is the device's `UtcTime`, `box` when that was unusable (before 2000, or not a
        /// time) and the box's receive time stands in.
        public var timeFrom: String?
        /// The `Source` and `Data` items (a credential holder's name is moved to `holder`).
        public var sourceItems: [String: String]?
        public var dataItems: [String: String]?
        /// The credential holder's name, kept by the web only where the building turns it on.
        public var holder: String?
        /// A subscription gap's start: the last good pull (ISO 8601 UTC, the box's clock). On a gap event, and on
        /// a state change the new subscription's `Initialized` revealed (it happened between the two).
        public var gapFrom: String?
        /// A subscription gap's end: the new subscription (ISO 8601 UTC, the box's clock).
        public var gapTo: String?
        /// Why the subscription was lost (the error, at most 200 characters), or that a state changed during it.
        public var reason: String?
        /// An empty payload.
        public init() {}
    }

    /// CloudEvents `specversion`: always `1.0`.
    public var specversion = "1.0"
    /// `onvif-` and 32 hex digits of the content hash (stable for a message pulled twice).
    public var id: String
    /// `onvif:<device id>`.
    public var source: String
    /// A normalised type, `x.onvif.<name>`, or `x.onvif.subscription-gap`.
    public var type: String
    /// RFC 3339 UTC.
    public var time: String
    /// The device's door, access point or input token.
    public var doorref: String?
    /// What the subscriber adds (``Payload``).
    public var data: Payload

    /// The JSON document.
    public func json() -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(self)) ?? Data()
    }
}

/// ONVIF events to the contract's types (issue 16): door state (ONVIF Door Control spec §7 topics), access
/// control (Access Control spec §7) and digital inputs (ONVIF Core §9.6 `tns1:Device/Trigger/DigitalInput`).
public enum ONVIFEventMapping {
    /// The topic filter of the subscription (a ConcreteSet expression, ONVIF Core §9.6.3).
    public static let topicFilter =
        "tns1:Door//.|tns1:AccessControl//.|tns1:Device/Trigger/DigitalInput"

    /// The contract type of `n`, or `nil` when it tells nothing new (`DoorAlarm = Normal`, an input going
    /// inactive, a door mode change):
    ///
    /// | topic | data | type |
    /// |---|---|---|
    /// | `Door/State/DoorAlarm` | `State = DoorForcedOpen` | `door.forced` |
    /// | `Door/State/DoorAlarm` | `State = DoorOpenTooLong` | `door.held` |
    /// | `Door/State/DoorPhysicalState` | `State = Open` / `Closed` | `door.opened` / `door.closed` |
    /// | `Door/State/DoorTamper` | `State = TamperDetected` | `door.tamper` |
    /// | `AccessControl/AccessGranted/…` | | `access.granted` |
    /// | `AccessControl/Denied/…`, `AccessControl/AccessTaken`… | | `access.denied` (denials) |
    /// | `AccessControl/Duress` | | `access.duress` |
    /// | `Device/Trigger/DigitalInput` | `LogicalState = true` | `input.alarm` |
    public static func type(of n: ONVIFNotification) -> String? {
        let state = n.data["State"]
        switch n.topic {
        case "Door/State/DoorAlarm":
            switch state {
            case "DoorForcedOpen": return "door.forced"
            case "DoorOpenTooLong": return "door.held"
            default: return nil
            }
        case "Door/State/DoorPhysicalState":
            switch state {
            case "Open": return "door.opened"
            case "Closed": return "door.closed"
            default: return nil
            }
        case "Door/State/DoorTamper": return state == "TamperDetected" ? "door.tamper" : nil
        case "AccessControl/Duress": return "access.duress"
        case "Device/Trigger/DigitalInput":
            return ["true", "1"].contains(n.data["LogicalState"]?.lowercased() ?? "") ? "input.alarm" : nil
        default:
            if n.topic.hasPrefix("AccessControl/AccessGranted") { return "access.granted" }
            if n.topic.hasPrefix("AccessControl/Denied") { return "access.denied" }
            return nil
        }
    }

    /// The device's reference of the door (or access point, or input) `n` concerns: its `DoorToken`,
    /// `AccessPointToken` or `InputToken` source item.
    public static func doorRef(of n: ONVIFNotification) -> String? {
        for name in ["DoorToken", "AccessPointToken", "InputToken"] { if let v = n.source[name] { return v } }
        return nil
    }

    /// Earliest device time believed (a device that lost its clock stamps 1970).
    static let plausibleSince = UTCMicros(946_684_800_000_000)  // 2000-01-01T00:00:00Z

    /// The contract event for `n` of type `type` from device `device`, received at `received` (box UTC).
    public static func event(_ n: ONVIFNotification, type: String, device: String, received: UTCMicros)
        -> ContractEvent
    {
        var payload = ContractEvent.Payload()
        payload.topic = n.topic
        payload.operation = n.operation?.rawValue
        payload.deviceTime = n.utcTime
        var dataItems = n.data
        payload.holder = dataItems.removeValue(forKey: "CredentialHolderName")
        payload.sourceItems = n.source
        payload.dataItems = dataItems
        let time: UTCMicros
        if let t = n.time, t >= plausibleSince {
            time = t
            payload.timeFrom = "device"
        } else {
            time = received
            payload.timeFrom = "box"
        }
        return ContractEvent(
            id: "onvif-" + n.contentHash.prefix(32), source: "onvif:\(device)", type: type, time: time.iso8601,
            doorref: doorRef(of: n), data: payload)
    }

    /// The event marking a subscription gap from `from` to `to` (box UTC).
    public static func gap(device: String, from: UTCMicros, to: UTCMicros, reason: String) -> ContractEvent {
        var payload = ContractEvent.Payload()
        payload.gapFrom = from.iso8601
        payload.gapTo = to.iso8601
        payload.reason = String(reason.prefix(200))
        let hash = SHA256.hash(data: Array("gap|\(device)|\(from.micros)|\(to.micros)".utf8))
        return ContractEvent(
            id: "onvif-gap-" + hash.prefix(12).map { String(format: "%02x", $0) }.joined(),
            source: "onvif:\(device)", type: "x.onvif.subscription-gap", time: to.iso8601, doorref: nil, data: payload)
    }
}
