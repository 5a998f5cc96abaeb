import HallwatchCore
import Yams

/// `cameras[]` — one camera.
public struct CameraConfig: Codable, Sendable, Equatable {
    /// Unique camera id (see `CameraID`). Required.
    public var id: CameraID
    /// Name shown to people. Default: the id. At most 200 bytes.
    public var name: String
    /// RTSP URL of the stream to record, without credentials (`rtsp://host[:port]/path`). Required.
    public var source: String
    /// RTP transport: `auto` (the default: TCP, and UDP when the camera answers the TCP SETUP with
    /// `461 Unsupported Transport`), `tcp` (interleaved in the RTSP connection; read by Hallwatch's own RTSP
    /// client unless `audio` is on) or `udp` (read by libavformat's client). The status says which one a
    /// camera uses.
    public var transport: Transport = .auto
    /// Record the camera's audio track. Default `false`: recording audio in schools is restricted by law in
    /// many places, so it is opt-in per camera.
    public var audio: Bool = false
    /// RTSP user name. Default none. Not secret.
    public var username: String?
    /// File holding the RTSP password (first line). Default none. The password itself is a secret and never
    /// appears in the config, the logs or the bus.
    public var passwordFile: String?
    /// Name of the disk (`recorder.disks[].name`) this camera records to while that disk is healthy. Default
    /// none: the recorder balances cameras over the healthy disks by bit rate.
    public var disk: String?
    /// This camera's retention limits, overriding `retention:` (see ``RetentionOverride``). Default none.
    public var retention: RetentionOverride?
    /// The WS-Discovery endpoint reference (`urn:uuid:…`) the camera was adopted from
    /// (`hallwatchctl camera adopt`). Default none. Not secret.
    public var onvifEndpoint: String?

    /// RTP transport of a camera.
    public enum Transport: String, Codable, Sendable, CaseIterable {
        /// TCP first; UDP for the rest of the worker's life once the camera refuses TCP with 461
        /// (RFC 7826 §17.4.25), as VLC's RTSP output and some encoders do.
        case auto
        /// RTP interleaved in the RTSP TCP connection.
        case tcp
        /// RTP over UDP (libavformat's client).
        case udp
    }

    /// A camera with its required keys; everything else at its default (`name` is the id).
    public init(id: CameraID, source: String) {
        self.id = id
        self.name = id.rawValue
        self.source = source
    }
}

extension HallwatchConfig {
    /// The cameras to record, in display order (`cameras:`; see ``CameraConfig``). Ids are unique. Default none.
    public var cameras: [CameraConfig] {
        get { self[section: CamerasSection.self] }
        set { self[section: CamerasSection.self] = newValue }
    }

    /// Looks a camera up by id; `nil` when it is not configured.
    public func camera(_ id: CameraID) -> CameraConfig? { cameras.first { $0.id == id } }
}

/// `cameras:` as a section of the document.
enum CamerasSection: ConfigSection {
    static let key = "cameras"
    static var absent: [CameraConfig] { [] }
    /// The keys of one camera; `id` and `source` are required.
    static let cameraKeys: [ConfigKey<CameraConfig>] = [
        .scalar("id", \.id, .identifier, required: true),
        .scalar("name", \.name, .text(maxBytes: 200)),
        .scalar("source", \.source, .rtspURL, required: true),
        .scalar("transport", \.transport, .oneOf(CameraConfig.Transport.allCases.map(\.rawValue))),
        .scalar("audio", \.audio, .bool),
        .scalar("username", \.username, .text(maxBytes: 128)),
        .scalar("passwordFile", \.passwordFile, .path),
        .scalar("disk", \.disk, .identifier),
        .scalar("onvifEndpoint", \.onvifEndpoint, .text(maxBytes: 256)),
        RetentionSection.cameraRetentionKey,
    ]
    static let schema: ConfigSchema = .sequence(ConfigKey.mapping(cameraKeys), maxCount: 1000)

    static func decode(_ node: Node) throws -> [CameraConfig] {
        try (node.sequence.map(Array.init) ?? []).enumerated().map { i, element in
            // `id` and `source` are required (the schema walk saw them), so these placeholders never survive.
            var camera = CameraConfig(id: CameraID("unset")!, source: "")
            do { try ConfigKey.read(cameraKeys, from: element, into: &camera) } catch let e as DecodingError {
                throw e.under(PathKey(index: i))
            }
            if !ConfigKey<CameraConfig>.gives(element, "name") { camera.name = camera.id.rawValue }
            return camera
        }
    }

    /// Camera ids are unique. (A camera's `disk` is checked by ``RecorderSection``, its `retention` by
    /// ``RetentionSection``.)
    static func validate(_ config: HallwatchConfig, _ check: inout ConfigCheck) {
        var seen = Set<CameraID>()
        for (i, cam) in config.cameras.enumerated() {
            check.need(seen.insert(cam.id).inserted, ["cameras", "[\(i)]", "id"], "duplicate camera id '\(cam.id)'")
        }
    }
}
