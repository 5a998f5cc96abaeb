import HallwatchCore

extension BusTopics {
    /// Retained ``WebIdentity`` of `hallwatch-web`.
    public var webIdentity: String { "\(root)/web/identity" }
}

/// What a person compares with the browser's certificate warning, retained on ``BusTopics/webIdentity`` by
/// `hallwatch-web` at start and shown by `hallwatchctl status` and on the status page.
public struct WebIdentity: Codable, Sendable, Equatable {
    /// SHA-256 of the certificate's DER, upper-case hex pairs joined by `:`.
    public var tlsSHA256: String
    /// Whether the certificate is the box's own self-signed one (not yet one the district's CA signed).
    public var selfSigned: Bool
    /// The names in the certificate.
    public var names: [String]
    /// HTTPS port.
    public var httpsPort: Int
    /// When it was published.
    public var at: UTCMicros
    /// SHA-256 of the box's Ed25519 identity public key (32 bytes), upper-case hex pairs joined by `:`; the key
    /// that signs the audit checkpoints. `nil` from a web older than the key.
    public var identitySHA256: String?

    public init(
        tlsSHA256: String, selfSigned: Bool, names: [String], httpsPort: Int, at: UTCMicros,
        identitySHA256: String? = nil
    ) {
        self.identitySHA256 = identitySHA256
        self.tlsSHA256 = tlsSHA256
        self.selfSigned = selfSigned
        self.names = names
        self.httpsPort = httpsPort
        self.at = at
    }
}
