import HallwatchCore

/// `cameras[]` — one camera.
public struct CameraConfig: Codable, Sendable, Equatable {
    /// Unique camera id (see `CameraID`). Required.
    public var id: CameraID
    /// Name shown to people. Default: the id. At most 200 bytes.
    public var name: String
    /// RTSP URL of the stream to record, without credentials (`rtsp://host[:port]/path`). Required.
    public var source: String
    /// RTP transport: `tcp` (interleaved in the RTSP connection, the default; read by Hallwatch's own RTSP
    /// client unless `audio` is on) or `udp` (read by libavformat's client).
    public var transport: Transport = .tcp
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
        /// RTP interleaved in the RTSP TCP connection.
        case tcp
        /// RTP over UDP (libavformat's client).
        case udp
    }

    /// A camera with its required keys; everything else at its default (`name` is the id).
    public init(id: CameraID, source: String) {
        self.id = id; self.name = id.rawValue; self.source = source
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
    static let camera: ConfigSchema = .mapping([
        "id": .scalar(.identifier), "name": .scalar(.text(maxBytes: 200)), "source": .scalar(.rtspURL),
        "transport": .scalar(.oneOf(CameraConfig.Transport.allCases.map(\.rawValue))), "audio": .scalar(.bool),
        "username": .scalar(.text(maxBytes: 128)), "passwordFile": .scalar(.path), "disk": .scalar(.identifier),
        "onvifEndpoint": .scalar(.text(maxBytes: 256)), "retention": RetentionSection.cameraRetention,
    ], required: ["id", "source"])
    static let schema: ConfigSchema = .sequence(camera, maxCount: 1000)
    static var absent: [CameraConfig] { [] }

    struct RawCamera: Decodable {
        var id: CameraID; var name: String?; var source: String; var transport: CameraConfig.Transport?
        var audio: Bool?; var username: String?; var passwordFile: String?; var disk: String?; var onvifEndpoint: String?
        var retention: RetentionSection.RawOverride?
    }
    typealias Raw = [RawCamera]

    static func resolve(_ raw: [RawCamera]) -> [CameraConfig] {
        raw.map { raw -> CameraConfig in
            var cam = CameraConfig(id: raw.id, source: raw.source)
            cam.name = raw.name ?? raw.id.rawValue
            cam.transport = raw.transport ?? .tcp
            cam.audio = raw.audio ?? false
            cam.username = raw.username
            cam.passwordFile = raw.passwordFile
            cam.disk = raw.disk
            cam.retention = raw.retention?.resolved()
            cam.onvifEndpoint = raw.onvifEndpoint
            return cam
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
