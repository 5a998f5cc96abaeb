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
    /// recording disk. The ids are made here, so the event's receipt names them at once.
    /// - Throws: GRDB errors opening the store.
    public static func production(
        config: HallwatchConfig, stateDirectory: String, audit: AuditLog, bus: BusClient, clocks: any Clocks,
        logger: Logger
    ) throws -> EventService {
        let store = try EventStore(path: storePath(stateDirectory: stateDirectory))
        let topics = BusTopics(box: config.box)
        return EventService(
            store: store, doors: config.doors, box: config.box, clocks: clocks, audit: audit,
            publish: { topic, payload, retain in try? bus.publish(topic: topic, payload: payload, retain: retain) },
            placeHold: holdRequester(bus: bus, topics: topics, clocks: clocks), logger: logger)
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
