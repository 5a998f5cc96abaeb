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
    /// Absolute path of the file holding the RTSP password (first line). Default none. The password itself is
    /// a secret and never appears in the config, the logs or the bus.
    public var passwordFile: String?
    /// Name of the disk (`recorder.disks[].name`) this camera records to while that disk is healthy. Default
    /// none: the recorder balances cameras over the healthy disks by bit rate.
    public var disk: String?
    /// This camera's retention limits, overriding `retention:` (see ``RetentionOverride``). Default none.
    public var retention: RetentionOverride?
    /// The WS-Discovery endpoint reference (`urn:uuid:…`) the camera was adopted from
    /// (`hallwatchctl camera adopt`). Default none. Not secret.
    public var onvifEndpoint: String?
    /// The camera's sub stream: a second, smaller stream (typically H.264 at 640×360) recorded as its own
    /// stream `<id>/sub` (see ``SubStreamConfig``). Default none. A camera with one has an id of at most 28
    /// bytes, so `<id>/sub` fits the 32-byte camera field of the record headers.
    public var subStream: SubStreamConfig?

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

/// `cameras[].subStream` — a camera's second, smaller stream, for grids, map pop-ups, phones on cellular links
/// and browsers that cannot decode the main stream's codec (Firefox and HEVC).
///
/// It is recorded like a camera of its own, stream id `<camera>/sub` (`CameraID`): its own capture worker
/// (`hallwatch-capture --camera lobby/sub`, unit `hallwatch-capture@lobby-sub.service`), runs, index rows and
/// retention. It shares the camera's transport, user name, password file and disk, and never records audio.
/// ``HallwatchConfig/camera(_:)`` gives the sub stream's settings as a ``CameraConfig`` of its own.
public struct SubStreamConfig: Codable, Sendable, Equatable {
    /// RTSP URL of the sub stream, without credentials (as `cameras[].source`). Required.
    public var source: String
    /// The sub stream's retention limits. Default: video older than 3 days (``defaultMaxAge``), or the
    /// camera's own `maxAge` when that is shorter, is deleted; the camera's `minAge` and the building's
    /// `maxBytes` apply. Each key given here wins.
    public var retention: RetentionOverride?

    /// A sub stream's `maxAge` when neither it nor a shorter camera limit says otherwise: 3 days.
    public static let defaultMaxAge: Duration = .seconds(3 * 86_400)

    /// A sub stream at `source` with the default retention.
    public init(source: String, retention: RetentionOverride? = nil) {
        self.source = source
        self.retention = retention
    }
}

extension HallwatchConfig {
    /// The cameras to record, in display order (`cameras:`; see ``CameraConfig``). Ids are unique. Default none.
    public var cameras: [CameraConfig] {
        get { self[section: CamerasSection.self] }
        set { self[section: CamerasSection.self] = newValue }
    }

    /// Looks a camera stream up by id; `nil` when it is not configured. For a sub stream (`lobby/sub`) this is
    /// the settings its capture worker, the recorder and the pruner use: id `lobby/sub`, name `<name> (sub)`,
    /// source ``SubStreamConfig/source``, the camera's transport, credentials and disk, no audio, no sub stream,
    /// and the sub stream's resolved retention (``SubStreamConfig/retention``).
    public func camera(_ id: CameraID) -> CameraConfig? {
        guard let main = cameras.first(where: { $0.id == id.camera }) else { return nil }
        guard id.isSubStream else { return main }
        guard let sub = main.subStream else { return nil }
        var stream = main
        stream.id = id
        stream.name = main.name + " (sub)"
        stream.source = sub.source
        stream.audio = false
        stream.onvifEndpoint = nil
        stream.subStream = nil
        let camera = retention.policy(for: main)
        let maxAge = sub.retention?.maxAge ?? min(SubStreamConfig.defaultMaxAge, camera.maxAge)
        stream.retention = RetentionOverride(
            maxAge: maxAge, minAge: sub.retention?.minAge ?? min(camera.minAge, maxAge),
            maxBytes: sub.retention?.maxBytes ?? camera.maxBytes)
        return stream
    }

    /// Every stream to record, each camera followed by its sub stream when it has one: what gets a capture
    /// worker (the generator, the development supervisor).
    public var streams: [CameraConfig] {
        cameras.flatMap { cam in [cam] + (cam.id.subStream.flatMap { camera($0) }.map { [$0] } ?? []) }
    }
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
        .scalar("passwordFile", \.passwordFile, .absolutePath),
        .scalar("disk", \.disk, DiskConfig.nameForm),
        .scalar("onvifEndpoint", \.onvifEndpoint, .text(maxBytes: 256)),
        RetentionSection.cameraRetentionKey,
        subStreamKey,
    ]

    /// The keys of `cameras[].subStream`.
    static let subStreamKeys: [ConfigKey<SubStreamConfig>] = [
        .scalar("source", \.source, .rtspURL, required: true),
        RetentionSection.overrideKey(\.retention),
    ]

    /// `cameras[].subStream`: a mapping of ``subStreamKeys``.
    static let subStreamKey = ConfigKey<CameraConfig>(
        name: "subStream", schema: ConfigKey.mapping(subStreamKeys), required: false
    ) { camera, node in
        var sub = SubStreamConfig(source: "")
        try ConfigKey.read(subStreamKeys, from: node, into: &sub)
        camera.subStream = sub
    }
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

    /// Camera ids are unique; a camera with a sub stream has an id short enough for `<id>/sub`, and a sub
    /// stream's source differs from its camera's. (A camera's `disk` is checked by ``RecorderSection``, its
    /// `retention` and its sub stream's by ``RetentionSection``.)
    static func validate(_ config: HallwatchConfig, _ check: inout ConfigCheck) {
        var seen = Set<CameraID>()
        for (i, cam) in config.cameras.enumerated() {
            check.need(seen.insert(cam.id).inserted, ["cameras", "[\(i)]", "id"], "duplicate camera id '\(cam.id)'")
            guard let sub = cam.subStream else { continue }
            check.need(
                cam.id.subStream != nil, ["cameras", "[\(i)]", "id"],
                "expected at most \(CameraID.maxBytes - CameraID.subSuffix.count) characters for a camera with a subStream ('\(cam.id)\(CameraID.subSuffix)' must fit \(CameraID.maxBytes) bytes)"
            )
            check.need(
                sub.source != cam.source, ["cameras", "[\(i)]", "subStream", "source"],
                "expected a stream other than the camera's source")
        }
    }
}
