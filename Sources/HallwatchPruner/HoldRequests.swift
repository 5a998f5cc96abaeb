import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import HallwatchProcess
import HallwatchStorage
import Logging

/// Evidence holds other processes ask for on the bus (``BusTopics/holdRequest(_:)``): the web asks on a door
/// event whose type is in the door's `holdOn`, and for each camera of an evidence export. The pruner is the process that writes the disks' indexes, so it
/// places them.
///
/// Steps for each retained request:
/// 1. Decode the ``EvidenceHold``; check it (``check(_:config:now:)``): an `h-` id, a configured camera, a range
///    of at most ``maxSpanMicros``, reason and case without control characters and within their lengths.
/// 2. Unless a hold of that id is already on the disks (a repeat), place it with ``EvidenceHolds/add(_:disks:box:maxHoldPercent:now:logger:)``.
/// 3. Clear the request (an empty retained message) and publish the new ``EvidenceHoldList``; a refusal goes
///    out on the error topic as `retention.holdRequest` and is cleared too (it would be refused again).
extension PrunerService {
    /// The longest range a request may hold: 24 h, an evidence export's longest range (a door's pre-roll and
    /// post-roll, ≤ 1 h 10 min, fit easily). The disks' hold budget (`retention.maxHoldPercent`) still applies.
    static let maxSpanMicros: Int64 = 24 * 3_600_000_000

    /// Why a request is refused, or `nil` when it may be placed.
    static func check(_ hold: EvidenceHold, config: HallwatchConfig, now: UTCMicros) -> String? {
        let idOK =
            hold.id.count == 10 && hold.id.hasPrefix("h-") && hold.id.dropFirst(2).allSatisfy { $0.isHexDigit }
        guard idOK else { return "'\(printable(hold.id, limit: 40))' is not a hold id" }
        guard config.camera(hold.camera) != nil else { return "camera \(hold.camera) is not configured" }
        guard hold.from < hold.to, hold.to.micros - hold.from.micros <= maxSpanMicros else {
            return "the range must be non-empty and at most 24 h"
        }
        for (text, limit) in [(hold.reason, 500), (hold.caseID, 100)] {
            guard text.utf8.count <= limit,
                !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else { return "reason or case too long or with control characters" }
        }
        guard hold.releasedAt == nil else { return "a request cannot be released already" }
        return nil
    }

    /// Places one requested hold (steps 1–2).
    /// - Returns: `nil` when placed (or already there), else why it was refused.
    func place(requested hold: EvidenceHold) -> String? {
        let (config, _) = currentConfig()
        let now = clocks.utcNow()
        if let refusal = Self.check(hold, config: config, now: now) { return refusal }
        let disks = NamedDisk.all(of: config)
        do {
            if try EvidenceHolds.list(disks: disks, box: config.box, logger: logger).contains(where: {
                $0.id == hold.id
            }) {
                return nil
            }
            _ = try EvidenceHolds.add(
                hold, disks: disks, box: config.box, maxHoldPercent: config.retention.maxHoldPercent, now: now,
                logger: logger)
            logger.notice(
                "requested hold placed",
                metadata: ["hold": "\(hold.id)", "camera": "\(hold.camera)", "reason": "\(hold.reason)"])
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Listens for requests until cancelled (step 3 after each).
    func listenForHoldRequests(_ presence: Presence) -> Task<Void, Never> {
        let requests = presence.bus.subscribe(presence.topics.allHoldRequests)
        return Task { [self] in
            for await m in requests where !m.payload.isEmpty {
                let refusal: String?
                if let hold = try? BusCoding.decode(EvidenceHold.self, from: m.payload) {
                    refusal = place(requested: hold)
                } else {
                    refusal = "not an evidence hold"
                }
                try? presence.bus.publish(topic: m.topic, payload: [], retain: true)
                if let refusal {
                    logger.error("hold request refused", metadata: ["topic": "\(m.topic)", "reason": "\(refusal)"])
                    presence.publishError(
                        ErrorEvent(code: "retention.holdRequest", message: "hold request refused: \(refusal)"))
                }
                let (config, _) = currentConfig()
                if let holds = try? EvidenceHolds.list(
                    disks: NamedDisk.all(of: config), box: config.box, logger: logger)
                {
                    try? presence.bus.publish(
                        EvidenceHoldList(holds: holds, at: clocks.utcNow()), topic: presence.topics.holds, retain: true)
                }
            }
        }
    }
}
