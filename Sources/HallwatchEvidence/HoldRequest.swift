import Foundation
import HallwatchCore
import HallwatchStorage

/// Why a request for an evidence hold was refused: a stable ``code``, the ``field`` concerned (as the
/// operator typed it: `--reason`, `--case`, `--from`, `--to`, `--until`, `--camera`) and a message for people.
public struct HoldInputError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable codes (they may appear in scripts and, later, in the web process's replies).
    public enum Code: String, Sendable, Equatable {
        /// Not a camera id (``HallwatchCore/CameraID``).
        case invalidCamera = "hold.invalidCamera"
        /// Reason or case id empty (after trimming spaces) or longer than allowed.
        case badLength = "hold.badLength"
        /// Reason or case id with a control character (newline, escape, …).
        case controlCharacter = "hold.controlCharacter"
        /// A time that is not ISO 8601 UTC, `now`, or relative to now (`-30s`, `+2h`).
        case badTime = "hold.badTime"
        /// `--from` not before `--to`.
        case emptyRange = "hold.emptyRange"
        /// `--to` more than ``HoldRange/maxFutureMicros`` after now.
        case tooFarAhead = "hold.tooFarAhead"
        /// `--until` at or before now.
        case untilPast = "hold.untilPast"
    }

    /// What was wrong.
    public var code: Code
    /// The input concerned, as named on `hallwatchctl hold add`'s command line.
    public var field: String
    /// For people.
    public var message: String

    /// A refusal of `field` (`--reason`) with a message for people.
    public init(_ code: Code, field: String, _ message: String) {
        self.code = code
        self.field = field
        self.message = message
    }

    /// `FIELD: message`, as `hallwatchctl` prints it.
    public var description: String { "\(field): \(message)" }
}

/// Free text of a hold for people — its reason or its case id — checked: 1…``maxBytes`` bytes of UTF-8
/// once surrounding spaces are trimmed, no control characters (they would rewrite an investigator's
/// terminal or the audit listing when the hold is printed).
public struct HoldText: Sendable, Equatable {
    /// The text, surrounding whitespace trimmed.
    public let text: String

    /// - Parameters:
    ///   - raw: As typed.
    ///   - field: Its name in messages (`--reason`).
    ///   - maxBytes: Longest accepted, bytes of UTF-8 (after trimming).
    /// - Throws: ``HoldInputError/Code/controlCharacter``, ``HoldInputError/Code/badLength``.
    public init(_ raw: String, field: String, maxBytes: Int) throws(HoldInputError) {
        // Control characters first: a trailing newline is refused, not trimmed away.
        guard !raw.unicodeScalars.contains(where: isControlCharacter) else {
            throw HoldInputError(
                .controlCharacter, field: field, "control characters (newlines, escapes) are not allowed")
        }
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.utf8.count <= maxBytes else {
            throw HoldInputError(.badLength, field: field, "expected 1-\(maxBytes) bytes of text")
        }
        text = trimmed
    }
}

/// The time range of a hold, resolved against the box's clock: `from < to`, `to` at most
/// ``maxFutureMicros`` past now, an optional lapse time `until` after now. Times are box UTC µs.
public struct HoldRange: Sendable, Equatable {
    /// Start of the held range (inclusive).
    public let from: UTCMicros
    /// End of the held range (exclusive); may be in the future.
    public let to: UTCMicros
    /// When the hold lapses; `nil`: until released.
    public let until: UTCMicros?

    /// How far past now a hold's range may reach: 24 h, µs. A range into the future pins every slot the
    /// camera records into until it ends, so a far one would fill the disk and stop recording
    /// (``HallwatchStorage/EvidenceHolds/maxFutureMicros``, which the storage library enforces too).
    public static let maxFutureMicros: Int64 = EvidenceHolds.maxFutureMicros

    /// Parses and checks the operator's times.
    /// - Parameters:
    ///   - from, to, until: ISO 8601 UTC (`2026-11-29T20:52:00Z`), `now`, or relative to `now` (`-30s`,
    ///     `-5m`, `-2h`, `+30d`) — ``HallwatchCore/TimeExpression``.
    ///   - now: The box's clock.
    /// - Throws: ``HoldInputError/Code/badTime``, ``HoldInputError/Code/emptyRange``,
    ///   ``HoldInputError/Code/tooFarAhead``, ``HoldInputError/Code/untilPast``.
    public init(from: String, to: String, until: String? = nil, now: UTCMicros) throws(HoldInputError) {
        func parse(_ text: String, _ field: String) throws(HoldInputError) -> UTCMicros {
            guard let t = TimeExpression.parse(text, now: now) else {
                throw HoldInputError(
                    .badTime, field: field, "\(text): expected ISO 8601 UTC, now, or -30s/-5m/-2h/+30d")
            }
            return t
        }
        try self.init(
            from: parse(from, "--from"), to: parse(to, "--to"),
            until: until.map { (u) throws(HoldInputError) in try parse(u, "--until") }, now: now)
    }

    /// Checks resolved times.
    /// - Throws: ``HoldInputError/Code/emptyRange``, ``HoldInputError/Code/tooFarAhead``, ``HoldInputError/Code/untilPast``.
    public init(from: UTCMicros, to: UTCMicros, until: UTCMicros? = nil, now: UTCMicros) throws(HoldInputError) {
        guard from < to else { throw HoldInputError(.emptyRange, field: "--from", "must be before --to") }
        guard to.micros <= now.micros + Self.maxFutureMicros else {
            throw HoldInputError(
                .tooFarAhead, field: "--to",
                "\(to.iso8601) is more than 24 h ahead: a hold pins the slots the camera records into until its end; hold until at most \(now.adding(micros: Self.maxFutureMicros).iso8601) and add another hold later"
            )
        }
        if let until, until <= now {
            throw HoldInputError(.untilPast, field: "--until", "\(until.iso8601) is already past")
        }
        self.from = from
        self.to = to
        self.until = until
    }
}

/// A request to hold a camera's video, every input checked (`hallwatchctl hold add`; the web process later).
/// Whether the camera is known and whether the disks can take the hold are checked when it is placed
/// (``HallwatchStorage/EvidenceHolds/add(_:disks:box:maxHoldPercent:now:logger:)``).
public struct HoldRequest: Sendable, Equatable {
    /// Longest reason, bytes of UTF-8.
    public static let maxReasonBytes = 500
    /// Longest case id, bytes of UTF-8.
    public static let maxCaseIDBytes = 100

    /// Whose video.
    public let camera: CameraID
    /// The held range and its lapse time.
    public let range: HoldRange
    /// Why, for people.
    public let reason: HoldText
    /// The case or incident id.
    public let caseID: HoldText

    /// Checks every input; the first refusal is thrown, in the order camera, reason, case, times.
    /// - Parameters: as typed on `hallwatchctl hold add`; `now` is the box's clock.
    /// - Throws: ``HoldInputError`` (see its codes).
    public init(
        camera: String, from: String, to: String, until: String? = nil, reason: String, caseID: String,
        now: UTCMicros
    ) throws(HoldInputError) {
        guard let id = CameraID(camera) else {
            throw HoldInputError(.invalidCamera, field: "--camera", "'\(camera)' is not a camera id")
        }
        self.camera = id
        self.reason = try HoldText(reason, field: "--reason", maxBytes: Self.maxReasonBytes)
        self.caseID = try HoldText(caseID, field: "--case", maxBytes: Self.maxCaseIDBytes)
        range = try HoldRange(from: from, to: to, until: until, now: now)
    }

    /// A request from resolved values (an export's range): reason and case checked as on the command line.
    /// - Throws: ``HoldInputError/Code/controlCharacter``, ``HoldInputError/Code/badLength``.
    public init(camera: CameraID, range: HoldRange, reason: String, caseID: String) throws(HoldInputError) {
        self.camera = camera
        self.reason = try HoldText(reason, field: "--reason", maxBytes: Self.maxReasonBytes)
        self.caseID = try HoldText(caseID, field: "--case", maxBytes: Self.maxCaseIDBytes)
        self.range = range
    }

    /// The hold to place, with a new id (`h-` and 8 hex digits) unless one is given.
    public func hold(id: String = EvidenceHolds.newID(), createdAt: UTCMicros) -> EvidenceHold {
        EvidenceHold(
            id: id, camera: camera, from: range.from, to: range.to, reason: reason.text, caseID: caseID.text,
            until: range.until, createdAt: createdAt)
    }
}
