// hallwatchctl export's audit entry: asked of hallwatch-web, the audit log's owner, over the bus (AuditRequest).
import ArgumentParser
import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import HallwatchProcess
import Logging
import Synchronization

/// Puts an export into the box's audit log before any of its video is written (a failed export stays audited
/// as attempted): publishes `request` retained on ``BusTopics/auditRequest(_:)`` and waits for `hallwatch-web` to
/// append it and clear the topic. The CLI needs no right over the web's state (its database and `audit.log` stay
/// the web's alone, mode 0600 under a 0700 directory); it needs what it already needs to read recordings on a
/// box, the box's group, which opens the bus socket.
/// - Parameters:
///   - wait: how long the broker may take to confirm it holds the request (its echo to this client).
///   - settle: how long, after that, the web may take to log it before the request is left waiting, retained.
/// - Returns: ``AuditOutcome/recorded`` or ``AuditOutcome/held`` (appended when the web runs), or
///   ``AuditOutcome/unconfirmed`` when the broker never confirmed it (the caller exports nothing then).
/// - Throws: ``ErrorEvent`` `audit.unavailable` when the bus cannot be reached: nothing is exported then.
func requestAudit(
    _ cfg: HallwatchConfig, _ request: AuditRequest, wait: Duration = .seconds(10), settle: Duration = .seconds(2),
    logger: Logger
) async throws -> AuditOutcome {
    let bus = BusClient(
        clientID: "hallwatchctl-audit-\(getpid())", socketPath: cfg.bus.socket, will: nil, logger: logger)
    do { try await bus.connect(timeout: .seconds(3)) } catch {
        throw ErrorEvent(
            code: "audit.unavailable",
            message:
                "cannot put the export into the audit log: the bus at \(cfg.bus.socket) does not answer (\(error)); nothing was exported (a disk read away from its box has no audit log: give --no-audit)"
        )
    }
    let topic = BusTopics(box: cfg.box).auditRequest(request.id)
    let updates = bus.subscribe(topic)
    do { try bus.publish(request, topic: topic, retain: true) } catch {
        await bus.close()
        throw ErrorEvent(code: "audit.unavailable", message: "cannot publish the audit request on \(topic): \(error)")
    }
    // The broker echoes the retained request to this subscription once it holds it; the web clears it (an empty
    // payload) once the entry is in the log.
    let heldAt = HeldAt()
    let outcome = await withTaskGroup(of: AuditOutcome.self) { group in
        group.addTask {
            for await m in updates {
                if m.payload.isEmpty { return .recorded }
                heldAt.set(ContinuousClock.now)
            }
            return .unconfirmed
        }
        group.addTask {
            let start = ContinuousClock.now
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(50))
                if let held = heldAt.get() {
                    if ContinuousClock.now - held >= settle { return .held }
                } else if ContinuousClock.now - start >= wait {
                    return .unconfirmed
                }
            }
            return .unconfirmed
        }
        let first = await group.next() ?? .unconfirmed
        group.cancelAll()
        return first
    }
    await bus.close()
    return outcome
}

/// When the broker echoed the request, shared by the two waiting tasks.
private final class HeldAt: Sendable {
    private let instant = Mutex<ContinuousClock.Instant?>(nil)
    func set(_ t: ContinuousClock.Instant) { instant.withLock { $0 = $0 ?? t } }
    func get() -> ContinuousClock.Instant? { instant.withLock { $0 } }
}

/// What became of an ``HallwatchCore/AuditRequest`` within the wait.
enum AuditOutcome: Sendable {
    /// The web appended it and cleared the topic.
    case recorded
    /// The broker holds it (retained); the web has not cleared it yet.
    case held
    /// Not even the broker confirmed it.
    case unconfirmed
}

extension Export {
    /// The audit request of this export (`export.file` to `--out`, `export.bundle` to `--bundle`): the Unix user,
    /// the cameras, the range and the absolute output path, and for a bundle its case and reason.
    func auditRequest(_ ids: [CameraID], _ start: UTCMicros, _ end: UTCMicros, now: UTCMicros) -> AuditRequest {
        let output = URL(fileURLWithPath: bundle ?? out ?? "").standardizedFileURL.path
        var details = "\(start.iso8601)–\(end.iso8601) to \(output)"
        if bundle != nil { details += ", case \(caseID ?? "-"): \(reason ?? "-")\(noHold ? ", no hold" : "")" }
        return AuditRequest(
            user: unixUser(), action: bundle == nil ? "export.file" : "export.bundle",
            object: ids.map(\.rawValue).joined(separator: ","), details: details, at: now)
    }

    /// Asks for the audit entry (``requestAudit(_:_:wait:settle:logger:)``) unless `--no-audit`, and says on stderr what
    /// became of it. Throws `ExitCode(69)` (`EX_UNAVAILABLE`) when the bus cannot be reached.
    func audit(
        _ cfg: HallwatchConfig, _ ids: [CameraID], _ start: UTCMicros, _ end: UTCMicros, now: UTCMicros, logger: Logger
    )
        async throws
    {
        let request = auditRequest(ids, start, end, now: now)
        if noAudit {
            FileHandle.standardError.write(
                Data("not audited (--no-audit): \(request.action) \(request.details)\n".utf8))
            return
        }
        do {
            switch try await requestAudit(cfg, request, logger: logger) {
            case .recorded:
                FileHandle.standardError.write(
                    Data("audited: \(request.action) by \(request.user) (request \(request.id))\n".utf8))
            case .held:
                FileHandle.standardError.write(
                    Data(
                        "audit request \(request.id) waits on the bus for hallwatch-web; it is logged when the web runs\n"
                            .utf8))
            case .unconfirmed:
                throw ErrorEvent(
                    code: "audit.unavailable",
                    message: "the bus did not confirm the audit request \(request.id); nothing was exported")
            }
        } catch let e as ErrorEvent {
            FileHandle.standardError.write(Data("export refused: \(e)\n".utf8))
            throw ExitCode(ExitStatus.unavailable)
        }
    }
}
