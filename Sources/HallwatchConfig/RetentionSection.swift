import Foundation
import HallwatchCore

/// `retention:` — the building's retention policy, read by `hallwatch-pruner` (and the recorder's
/// low-free-slots event). Every key is optional; per-camera `cameras[].retention` overrides
/// ``maxAge``, ``minAge`` and ``maxBytes`` for that camera, also for a camera added at runtime
/// (the pruner reloads the configuration each pass). Whichever limit binds first wins.
public struct RetentionConfig: Codable, Sendable, Equatable {
    /// Video older than this is deleted (a privacy limit as much as a space setting): after a pass no
    /// slot holds video older than `maxAge` unless an evidence hold pins it. Default `30d`, range 1m–3650d.
    public var maxAge: Duration = .seconds(30 * 86_400)
    /// Video younger than this is never deleted by policy (quota or reserve); when space runs out the
    /// pruner raises an alarm instead and the recorder's ring reuse is the last resort. Default `1h`,
    /// range 0s–3650d, at most ``maxAge``.
    public var minAge: Duration = .seconds(3600)
    /// Per-camera byte quota (recorded bytes over all disks); `nil` (the default) means none. The
    /// oldest closed slots go first, so a camera stays within one slot's size of it. Range ≥ 65 536.
    public var maxBytes: Int64?
    /// Free-slot reserve per disk as recording time: enough free slots for this long of all the disk's
    /// cameras at their measured rates, so the recorder's ring reuse never fires in normal operation.
    /// Default `10m`, range 0s–7d.
    public var reserve: Duration = .seconds(600)
    /// Free-slot reserve per disk as a slot count; the larger of this and ``reserve`` applies. Default 2,
    /// range 0–100 000.
    public var reserveSlots: Int = 2
    /// How often the pruner runs (it also runs at once on the recorder's low-free-slots event).
    /// Default `60s`, range 1s–1d.
    public var period: Duration = .seconds(60)
    /// Largest share of one disk's slots that evidence holds may pin, percent. A hold that would pin
    /// more is refused: pinned slots cannot be reused, so holds could otherwise stop recording.
    /// Default 50, range 1–95.
    public var maxHoldPercent: Int = 50

    /// The defaults listed above.
    public init() {}

    /// The policy that applies to a camera: these defaults with the camera's overrides on top.
    public func policy(for camera: CameraConfig?) -> RetentionPolicy {
        let o = camera?.retention
        return RetentionPolicy(
            maxAge: o?.maxAge ?? maxAge, minAge: o?.minAge ?? minAge, maxBytes: o?.maxBytes ?? maxBytes)
    }
}

/// `cameras[].retention` — a camera's own limits; each key given here wins over `retention:`.
public struct RetentionOverride: Codable, Sendable, Equatable {
    /// As ``RetentionConfig/maxAge``; `nil`: the building's.
    public var maxAge: Duration?
    /// As ``RetentionConfig/minAge``; `nil`: the building's.
    public var minAge: Duration?
    /// As ``RetentionConfig/maxBytes``; `nil`: the building's.
    public var maxBytes: Int64?
    /// No overrides.
    public init(maxAge: Duration? = nil, minAge: Duration? = nil, maxBytes: Int64? = nil) {
        self.maxAge = maxAge
        self.minAge = minAge
        self.maxBytes = maxBytes
    }
    /// True when no limit is overridden.
    var isEmpty: Bool { maxAge == nil && minAge == nil && maxBytes == nil }
}

/// The resolved limits of one camera (see ``RetentionConfig/policy(for:)``).
public struct RetentionPolicy: Sendable, Equatable {
    /// Delete video older than this.
    public var maxAge: Duration
    /// Never delete video younger than this by policy.
    public var minAge: Duration
    /// Byte quota (recorded bytes over all disks), `nil` for none.
    public var maxBytes: Int64?
    /// A policy from its parts.
    public init(maxAge: Duration, minAge: Duration, maxBytes: Int64?) {
        self.maxAge = maxAge
        self.minAge = minAge
        self.maxBytes = maxBytes
    }

    /// ``maxAge`` in µs.
    public var maxAgeMicros: Int64 { Self.micros(maxAge) }
    /// ``minAge`` in µs.
    public var minAgeMicros: Int64 { Self.micros(minAge) }
    /// A duration in whole µs.
    public static func micros(_ d: Duration) -> Int64 {
        d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000
    }

    /// A duration in the largest unit that divides it (`7d`, `36h`, `90m`, `45s`), as the config writes it.
    public static func text(_ d: Duration) -> String {
        let ms = micros(d) / 1000
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        where ms != 0 && ms % size == 0 {
            return "\(ms / size)\(unit)"
        }
        return DurationText.format(d)
    }
}

extension HallwatchConfig {
    /// The building's retention policy (`retention:`; see ``RetentionConfig``).
    public var retention: RetentionConfig {
        get { self[section: RetentionSection.self] }
        set { self[section: RetentionSection.self] = newValue }
    }

    /// The resolved retention policy of `camera`, configured or not (an unknown camera gets the defaults).
    public func retentionPolicy(_ camera: CameraID) -> RetentionPolicy { retention.policy(for: self.camera(camera)) }
}

/// `retention:` as a section of the document; also the keys of `cameras[].retention`.
enum RetentionSection: KeyedConfigSection {
    static let key = "retention"
    static var absent: RetentionConfig { RetentionConfig() }
    // The limits that `cameras[].retention` shares.
    static let maxAgeRange = (min: Duration.seconds(60), max: Duration.seconds(3650 * 86_400))
    static let minAgeRange = (min: Duration.zero, max: Duration.seconds(3650 * 86_400))
    static let maxBytesForm = ConfigSchema.Scalar.integer(64 << 10...Int64.max, multipleOf: 1)

    static let keys: [ConfigKey<RetentionConfig>] = [
        .duration("maxAge", \.maxAge, min: maxAgeRange.min, max: maxAgeRange.max),
        .duration("minAge", \.minAge, min: minAgeRange.min, max: minAgeRange.max),
        .scalar("maxBytes", \.maxBytes, maxBytesForm),
        .duration("reserve", \.reserve, min: .zero, max: .seconds(7 * 86_400)),
        .scalar("reserveSlots", \.reserveSlots, .integer(0...100_000, multipleOf: 1)),
        .duration("period", \.period, min: .seconds(1), max: .seconds(86_400)),
        .scalar("maxHoldPercent", \.maxHoldPercent, .integer(1...95, multipleOf: 1)),
    ]

    /// The keys of `cameras[].retention`.
    static let overrideKeys: [ConfigKey<RetentionOverride>] = [
        .duration("maxAge", \.maxAge, min: maxAgeRange.min, max: maxAgeRange.max),
        .duration("minAge", \.minAge, min: minAgeRange.min, max: minAgeRange.max),
        .scalar("maxBytes", \.maxBytes, maxBytesForm),
    ]

    /// `cameras[].retention`: a mapping of ``overrideKeys``; no key given (or `{}`) means no override.
    static let cameraRetentionKey = overrideKey(\CameraConfig.retention)

    /// A `retention:` key of ``overrideKeys`` stored at `property` (`cameras[].retention`,
    /// `cameras[].subStream.retention`); no key given (or `{}`) means no override.
    static func overrideKey<Value>(_ property: WritableKeyPath<Value, RetentionOverride?> & Sendable) -> ConfigKey<
        Value
    > {
        ConfigKey<Value>(name: "retention", schema: ConfigKey<RetentionOverride>.mapping(overrideKeys), required: false)
        {
            value, node in
            var o = RetentionOverride()
            try ConfigKey.read(overrideKeys, from: node, into: &o)
            value[keyPath: property] = o.isEmpty ? nil : o
        }
    }

    /// minAge ≤ maxAge, for the building and for each camera's resolved limits; the free-slot reserve
    /// below the disks' slot count (a reserve of every slot would leave none to record to).
    static func validate(_ config: HallwatchConfig, _ check: inout ConfigCheck) {
        let retention = config.retention
        check.need(
            retention.reserveSlots < config.recorder.slotCount, ["retention", "reserveSlots"],
            "expected fewer than recorder.slotCount (\(config.recorder.slotCount)): a reserve of every slot leaves none to record to"
        )
        check.need(
            retention.minAge <= retention.maxAge, ["retention", "minAge"],
            "expected at most maxAge (\(RetentionPolicy.text(retention.maxAge)))")
        for (i, cam) in config.cameras.enumerated() {
            if cam.retention != nil {
                let p = retention.policy(for: cam)
                check.need(
                    p.minAge <= p.maxAge, ["cameras", "[\(i)]", "retention", "minAge"],
                    "expected at most this camera's maxAge (\(RetentionPolicy.text(p.maxAge)))")
            }
            if cam.subStream?.retention != nil, let sub = cam.id.subStream, let p = config.camera(sub)?.retention {
                check.need(
                    (p.minAge ?? .zero) <= (p.maxAge ?? .zero),
                    ["cameras", "[\(i)]", "subStream", "retention", "minAge"],
                    "expected at most this sub stream's maxAge (\(RetentionPolicy.text(p.maxAge ?? .zero)))")
            }
        }
    }
}
