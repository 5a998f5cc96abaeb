import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import HallwatchStorage
import Logging

extension EventService {
    /// The store's file in the web's state directory.
    public static func storePath(stateDirectory: String) -> String { stateDirectory + "/events.sqlite" }

    /// The service as `hallwatch-web` runs it: the store in `<stateDirectory>/events.sqlite`, the doors of the
    /// configuration, publishing on `bus`. Holds are requested from `hallwatch-pruner` on the bus (retained, one
    /// topic per hold id: ``BusTopics/holdRequest(_:)``), which places them on the disks: the web never writes a
    /// recording disk. The ids are made here, so the event's receipt names them at once. The doors are `map`'s
    /// (the configuration file as it changes) when given, else the configuration's at start.
    /// - Throws: GRDB errors opening the store.
    public static func production(
        config: HallwatchConfig, stateDirectory: String, audit: AuditLog, bus: BusClient, clocks: any Clocks,
        map: MapStore? = nil, logger: Logger
    ) throws -> EventService {
        let store = try EventStore(path: storePath(stateDirectory: stateDirectory))
        let topics = BusTopics(box: config.box)
        var liveDoors: (@Sendable () -> [DoorConfig])?
        if let map { liveDoors = { map.current().doors } }
        var limits = EventService.Limits()
        limits.maxBehind = EventRetention.Policy.maxAge(config: config)
        return EventService(
            store: store, doors: config.doors, box: config.box, clocks: clocks, audit: audit, limits: limits,
            publish: { topic, payload, retain in try? bus.publish(topic: topic, payload: payload, retain: retain) },
            placeHold: holdRequester(bus: bus, topics: topics, clocks: clocks), liveDoors: liveDoors,
            logger: logger)
    }

    /// Asks `hallwatch-pruner` for one evidence hold per camera over `[from, to)` with a reason and case id: a
    /// retained ``HallwatchCore/EvidenceHold`` on ``HallwatchCore/BusTopics/holdRequest(_:)`` each, the ids made
    /// here (the pruner places them on the disks; the web never writes one). Door events and exports use it.
    /// - Returns: A function returning the hold ids; it throws the bus's errors.
    public static func holdRequester(bus: BusClient, topics: BusTopics, clocks: any Clocks)
        -> @Sendable ([CameraID], UTCMicros, UTCMicros, String, String) throws -> [String]
    {
        { cameras, from, to, reason, caseID in
            let now = clocks.utcNow()
            var ids: [String] = []
            for camera in cameras {
                let hold = EvidenceHold(
                    id: EvidenceHolds.newID(), camera: camera, from: from, to: to, reason: reason, caseID: caseID,
                    until: nil, createdAt: now)
                try bus.publish(hold, topic: topics.holdRequest(hold.id), retain: true)
                ids.append(hold.id)
            }
            return ids
        }
    }
}

extension EventService {
    /// Types the ONVIF subscriber may send over the bus: those its mapping makes, and `x.onvif.*`.
    static let onvifTypes: Set<String> = [
        "door.forced", "door.held", "door.opened", "door.closed", "door.tamper", "access.granted", "access.denied",
        "access.duress", "input.alarm",
    ]

    /// Ingests the events the discovery agent's ONVIF subscribers publish (``BusTopics/allONVIFEvents``) until
    /// cancelled. Each is checked and stored like a POSTed one (the same steps, the same store), under a grant
    /// that is only source `onvif:<id>` of its topic, with only the ONVIF types: a bus client cannot speak for
    /// an HTTP event source, whose tokens it never sees.
    public func runBusIngest(bus: BusClient, logger: Logger) async {
        let topics = BusTopics(box: box)
        for await m in bus.subscribe(topics.allONVIFEvents) {
            do {
                if let refusal = try await ingestFromBus(topic: m.topic, payload: m.payload) {
                    logger.warning(
                        "ONVIF event refused", metadata: ["topic": "\(m.topic)", "error": "\(refusal)"])
                }
            } catch {
                logger.error("cannot store an ONVIF event", metadata: ["topic": "\(m.topic)", "error": "\(error)"])
            }
        }
    }

    /// One bus message of ``runBusIngest(bus:logger:)``: `nil` when stored (or an identical repeat), else why not.
    /// - Throws: storage and audit errors.
    public func ingestFromBus(topic: String, payload: [UInt8]) async throws -> EventRefusal? {
        let prefix = BusTopics(box: box).onvifEvents("")
        guard topic.hasPrefix(prefix), payload.count <= EventRoutes.maxSingleBytes else {
            return EventRefusal(400, "events.invalid", "not an ONVIF event topic, or too large")
        }
        let device = String(topic.dropFirst(prefix.count))
        let value: JSONValue
        do { value = try JSONValue.eventDocument(payload, maxDepth: EventRoutes.maxDepth) } catch { return error }
        let type = value.object?["type"]?.string ?? ""
        guard Self.onvifTypes.contains(type) || type.hasPrefix("x.onvif.") else {
            return EventRefusal(403, "events.scope", "type '\(type)' is not one the ONVIF subscriber sends")
        }
        let source = EventSourceInfo(
            name: "onvif:\(device)", types: [], doors: [], addresses: [], createdMicros: 0, revokedMicros: nil,
            liveTokens: 0)
        let answer = try await ingest(value, grant: EventGrant(source: source, tokenHash: ""), address: "bus")
        return answer.status == 200 || answer.status == 201 ? nil : answer.refusal
    }
}
