// The conformance lives apart from DataPlane.swift so that the data plane's own file can move on its own.

extension DataPlaneError: HallwatchError {
    /// ``code`` (`dataplane.*`).
    public var stableCode: String { code }
}
