import HallwatchCore

/// `capture:` — defaults for the capture workers.
public struct CaptureConfig: Codable, Sendable, Equatable {
    /// Longest fMP4 fragment; a longer GOP is split. Default `1s`, range 100ms–10s.
    public var maxFragmentDuration: Duration = .seconds(1)
    /// RTSP connect (and each socket read) timeout. Default `5s`, range 1s–60s.
    public var ioTimeout: Duration = .seconds(5)
    /// First reconnect delay; doubles per failure up to ``backoffMax``. Default `500ms`, range 50ms–300s.
    public var backoffInitial: Duration = .milliseconds(500)
    /// Longest reconnect delay. Default `10s`, range 50ms–300s, at least ``backoffInitial``.
    public var backoffMax: Duration = .seconds(10)
    /// The defaults listed above.
    public init() {}
}

extension HallwatchConfig {
    /// Defaults for every capture worker (`capture:`; see ``CaptureConfig``).
    public var capture: CaptureConfig {
        get { self[section: CaptureSection.self] }
        set { self[section: CaptureSection.self] = newValue }
    }
}

/// `capture:` as a section of the document.
enum CaptureSection: KeyedConfigSection {
    static let key = "capture"
    static var absent: CaptureConfig { CaptureConfig() }
    static let keys: [ConfigKey<CaptureConfig>] = [
        .duration("maxFragmentDuration", \.maxFragmentDuration, min: .milliseconds(100), max: .seconds(10)),
        .duration("ioTimeout", \.ioTimeout, min: .seconds(1), max: .seconds(60)),
        .duration("backoffInitial", \.backoffInitial, min: .milliseconds(50), max: .seconds(300)),
        .duration("backoffMax", \.backoffMax, min: .milliseconds(50), max: .seconds(300)),
    ]

    /// `backoffInitial` ≤ `backoffMax`.
    static func validate(_ config: HallwatchConfig, _ check: inout ConfigCheck) {
        let capture = config.capture
        check.need(
            capture.backoffInitial <= capture.backoffMax, ["capture", "backoffInitial"],
            "expected at most backoffMax (\(DurationText.format(capture.backoffMax)))")
    }
}
