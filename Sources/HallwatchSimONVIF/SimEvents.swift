import Foundation
import HallwatchCore
import HallwatchDiscovery
import Synchronization

/// Something that happens at the simulated device's door (issue 16): what ``ONVIFSimulator/emit(_:device:)``
/// turns into ONVIF notifications on every live pull point of that device.
public enum SimDoorEvent: String, Sendable, CaseIterable {
    /// `Door/State/DoorPhysicalState` → `Open` (Changed).
    case opened
    /// `Door/State/DoorPhysicalState` → `Closed`, and `DoorAlarm` back to `Normal` when it was not (Changed).
    case closed
    /// `Door/State/DoorPhysicalState` → `Open` and `Door/State/DoorAlarm` → `DoorForcedOpen` (Changed).
    case forced
    /// `Door/State/DoorAlarm` → `DoorOpenTooLong` (Changed).
    case held
    /// `Door/State/DoorTamper` → `TamperDetected` (Changed).
    case tamper
    /// `AccessControl/AccessGranted/Credential` (not a property event), with a credential and holder name.
    case granted
    /// `AccessControl/Denied/Credential` (not a property event).
    case denied
    /// `Device/Trigger/DigitalInput` `LogicalState` → `true` (Changed).
    case inputActive = "input-active"
    /// `Device/Trigger/DigitalInput` `LogicalState` → `false` (Changed).
    case inputInactive = "input-inactive"
}

/// What the simulated event service did, per device (tests read it).
public struct SimEventStats: Sendable, Equatable {
    /// Pull points made.
    public var subscriptions = 0
    /// PullMessages answered with messages (or at their timeout).
    public var pulls = 0
    /// Renews answered.
    public var renewals = 0
    /// Unsubscribes answered.
    public var unsubscribes = 0
    /// Pull points alive now.
    public var live = 0
}

/// The simulated device's ONVIF event service (ONVIF Core §9.1, real-time pull point): properties of one door
/// (`Door1`: physical state, alarm, tamper) and one digital input (`DI0`), sent as `Initialized` on each new
/// subscription and as `Changed` when they change; access events (not properties). Fault injection: a lost
/// subscription, `Initialized` storms, 1970 timestamps, a device that needs `Renew`.
final class SimEventService: Sendable {
    struct Subscription {
        var device: Int
        var queue: [String] = []
        /// In the device's clock.
        var termination: UTCMicros
    }
    struct Property {
        var topic: String
        var source: (String, String)
        var data: [(String, String)]
    }
    struct State {
        var subscriptions: [Int: Subscription] = [:]
        var nextID = 1
        /// Per device: topic|source → property.
        var properties: [Int: [String: Property]] = [:]
        var stats: [Int: SimEventStats] = [:]
        var times1970 = false
        var needsRenew = false
    }
    let state = Mutex(State())
    /// Most messages queued per pull point (older ones are dropped, as a device's buffer would).
    static let maxQueue = 1000
    /// The device's start, for 1970 timestamps (seconds since boot, as a device without a clock stamps).
    let started: MonotonicInstant
    let clocks: any Clocks

    init(clocks: any Clocks) {
        self.clocks = clocks
        started = clocks.monotonicNow()
    }

    static func initialProperties() -> [String: Property] {
        let list = [
            Property(
                topic: "Door/State/DoorPhysicalState", source: ("DoorToken", "Door1"), data: [("State", "Closed")]),
            Property(topic: "Door/State/DoorAlarm", source: ("DoorToken", "Door1"), data: [("State", "Normal")]),
            Property(topic: "Door/State/DoorTamper", source: ("DoorToken", "Door1"), data: [("State", "NotInTamper")]),
            Property(
                topic: "Device/Trigger/DigitalInput", source: ("InputToken", "DI0"), data: [("LogicalState", "false")]),
        ]
        return Dictionary(uniqueKeysWithValues: list.map { ($0.topic, $0) })
    }

    /// The `UtcTime` of a message made now.
    func stamp(deviceNow: UTCMicros, times1970: Bool) -> String {
        guard times1970 else { return deviceNow.iso8601 }
        return UTCMicros((clocks.monotonicNow() - started).nanoseconds / 1000).iso8601
    }

    static func message(
        topic: String, time: String, operation: String?, source: (String, String), data: [(String, String)]
    ) -> String {
        let op = operation.map { " PropertyOperation=\"\($0)\"" } ?? ""
        let items = data.map { "<tt:SimpleItem Name=\"\($0.0)\" Value=\"\(xmlText($0.1))\"/>" }.joined()
        return """
            <wsnt:NotificationMessage><wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">\
            tns1:\(topic)</wsnt:Topic><wsnt:Message><tt:Message UtcTime="\(time)"\(op)><tt:Source>\
            <tt:SimpleItem Name="\(source.0)" Value="\(xmlText(source.1))"/></tt:Source><tt:Data>\(items)</tt:Data>\
            </tt:Message></wsnt:Message></wsnt:NotificationMessage>
            """
    }

    static func xmlText(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "<", with: "&lt;")
    }

    /// The Initialized messages of every property of `device`.
    func initialized(_ s: inout State, device: Int, deviceNow: UTCMicros) -> [String] {
        let props = s.properties[device] ?? Self.initialProperties()
        s.properties[device] = props
        let time = stamp(deviceNow: deviceNow, times1970: s.times1970)
        return props.values.sorted { $0.topic < $1.topic }.map {
            Self.message(topic: $0.topic, time: time, operation: "Initialized", source: $0.source, data: $0.data)
        }
    }

    static func enqueue(_ s: inout State, device: Int, _ messages: [String]) {
        for (id, var sub) in s.subscriptions where sub.device == device {
            sub.queue += messages
            if sub.queue.count > maxQueue { sub.queue.removeFirst(sub.queue.count - maxQueue) }
            s.subscriptions[id] = sub
        }
    }

    // MARK: - operations

    /// CreatePullPointSubscription: a new pull point whose queue starts with every property's `Initialized`.
    func create(device: Int, termination: Duration, deviceNow: UTCMicros) -> (id: Int, end: UTCMicros) {
        state.withLock { s in
            let id = s.nextID
            s.nextID += 1
            let end = deviceNow.adding(micros: termination.nanoseconds / 1000)
            var sub = Subscription(device: device, termination: end)
            sub.queue = initialized(&s, device: device, deviceNow: deviceNow)
            s.subscriptions[id] = sub
            s.stats[device, default: SimEventStats()].subscriptions += 1
            return (id, end)
        }
    }

    /// The pull point `id` of `device` if it is alive (an expired one is removed).
    func alive(_ s: inout State, id: Int, device: Int, deviceNow: UTCMicros) -> Subscription? {
        guard let sub = s.subscriptions[id], sub.device == device else { return nil }
        if sub.termination < deviceNow {
            s.subscriptions[id] = nil
            return nil
        }
        return sub
    }

    enum PullResult {
        case unknown
        case messages([String], termination: UTCMicros)
        case empty
    }

    /// PullMessages: up to `limit` queued messages; `.empty` when there are none yet (the caller waits and asks
    /// again until its timeout, then takes them with `final`). Extends the pull point by `extend` unless the
    /// device needs `Renew`.
    func pull(id: Int, device: Int, limit: Int, extend: Duration, deviceNow: UTCMicros, final: Bool) -> PullResult {
        state.withLock { s in
            guard var sub = alive(&s, id: id, device: device, deviceNow: deviceNow) else { return .unknown }
            if sub.queue.isEmpty && !final { return .empty }
            let taken = Array(sub.queue.prefix(max(1, limit)))
            sub.queue.removeFirst(taken.count)
            if !s.needsRenew {
                sub.termination = max(sub.termination, deviceNow.adding(micros: extend.nanoseconds / 1000))
            }
            s.subscriptions[id] = sub
            s.stats[device, default: SimEventStats()].pulls += 1
            return .messages(taken, termination: sub.termination)
        }
    }

    /// Renew: the pull point ends `termination` from now. `nil` when unknown.
    func renew(id: Int, device: Int, termination: Duration, deviceNow: UTCMicros) -> UTCMicros? {
        state.withLock { s in
            guard var sub = alive(&s, id: id, device: device, deviceNow: deviceNow) else { return nil }
            sub.termination = deviceNow.adding(micros: termination.nanoseconds / 1000)
            s.subscriptions[id] = sub
            s.stats[device, default: SimEventStats()].renewals += 1
            return sub.termination
        }
    }

    /// Unsubscribe; `false` when unknown.
    func unsubscribe(id: Int, device: Int) -> Bool {
        state.withLock { s in
            guard s.subscriptions[id]?.device == device else { return false }
            s.subscriptions[id] = nil
            s.stats[device, default: SimEventStats()].unsubscribes += 1
            return true
        }
    }

    // MARK: - what happens at the door, and faults

    func emit(_ event: SimDoorEvent, device: Int, deviceNow: UTCMicros) {
        state.withLock { s in
            var props = s.properties[device] ?? Self.initialProperties()
            let time = stamp(deviceNow: deviceNow, times1970: s.times1970)
            var messages: [String] = []
            func set(_ topic: String, _ value: (String, String)) {
                guard var p = props[topic], p.data.first?.1 != value.1 else { return }
                p.data = [value]
                props[topic] = p
                messages.append(
                    Self.message(topic: topic, time: time, operation: "Changed", source: p.source, data: p.data))
            }
            let door = "Door/State/DoorPhysicalState"
            let alarm = "Door/State/DoorAlarm"
            switch event {
            case .opened: set(door, ("State", "Open"))
            case .closed:
                set(door, ("State", "Closed"))
                set(alarm, ("State", "Normal"))
            case .forced:
                set(door, ("State", "Open"))
                set(alarm, ("State", "DoorForcedOpen"))
            case .held: set(alarm, ("State", "DoorOpenTooLong"))
            case .tamper: set("Door/State/DoorTamper", ("State", "TamperDetected"))
            case .inputActive: set("Device/Trigger/DigitalInput", ("LogicalState", "true"))
            case .inputInactive: set("Device/Trigger/DigitalInput", ("LogicalState", "false"))
            case .granted, .denied:
                let topic =
                    event == .granted ? "AccessControl/AccessGranted/Credential" : "AccessControl/Denied/Credential"
                var data = [("CredentialToken", "cred-17"), ("CredentialHolderName", "Pat Example")]
                if event == .denied { data.append(("Reason", "CredentialNotEnabled")) }
                messages.append(
                    Self.message(
                        topic: topic, time: time, operation: nil, source: ("AccessPointToken", "Door1"), data: data))
            }
            s.properties[device] = props
            Self.enqueue(&s, device: device, messages)
        }
    }

    /// Every pull point of `device` forgotten (a device reboot): its next PullMessages gets a fault.
    func drop(device: Int) {
        state.withLock { s in
            for (id, sub) in s.subscriptions where sub.device == device { s.subscriptions[id] = nil }
        }
    }

    /// `rounds` × every property's `Initialized`, each round with a new time (so no hash repeats).
    func initializedStorm(device: Int, rounds: Int, deviceNow: UTCMicros) {
        state.withLock { s in
            var messages: [String] = []
            for r in 0..<rounds {
                messages += initialized(&s, device: device, deviceNow: deviceNow.adding(micros: Int64(r) * 1000))
            }
            Self.enqueue(&s, device: device, messages)
        }
    }

    func stats(device: Int) -> SimEventStats {
        state.withLock { s in
            var st = s.stats[device] ?? SimEventStats()
            st.live = s.subscriptions.values.filter { $0.device == device }.count
            return st
        }
    }
}
