import Foundation

/// Bus topics, all under the versioned root `hallwatch/v1/<box>/`.
///
/// The control plane is MQTT 5 on a Unix socket (DESIGN.md § Two planes). State topics are published
/// retained so a late subscriber sees the current state at once; each process sets a last-will on its
/// ``process(_:)`` topic so its death is visible.
public struct BusTopics: Sendable, Equatable {
    /// Protocol version segment; bump when a message type changes incompatibly.
    public static let version = "v1"
    /// The box id.
    public let box: String
    /// The topics of box `box`.
    public init(box: String) { self.box = box }

    /// `hallwatch/v1/<box>`
    public var root: String { "hallwatch/\(Self.version)/\(box)" }
    /// Retained ``ProcessState`` of one process instance, e.g. `…/process/capture-lobby`.
    public func process(_ name: String) -> String { "\(root)/process/\(name)" }
    /// Retained ``CameraState`` published by the camera's capture worker.
    public func cameraState(_ id: CameraID) -> String { "\(root)/camera/\(id)/state" }
    /// Retained ``RecordingStats`` published by the recorder.
    public func recording(_ id: CameraID) -> String { "\(root)/camera/\(id)/recording" }
    /// Non-retained ``ErrorEvent``s of every process.
    public var errors: String { "\(root)/errors" }
    /// Wildcard for every camera's state (main streams; a sub stream's topic has one level more).
    public var allCameraStates: String { "\(root)/camera/+/state" }
    /// Wildcard for every camera's recording statistics (main streams).
    public var allRecordings: String { "\(root)/camera/+/recording" }
    /// Wildcard for every sub stream's state (`camera/<id>/sub/state`).
    public var allSubStreamStates: String { "\(root)/camera/+/sub/state" }
    /// Wildcard for every sub stream's recording statistics (`camera/<id>/sub/recording`).
    public var allSubStreamRecordings: String { "\(root)/camera/+/sub/recording" }
    /// Wildcard for every process.
    public var allProcesses: String { "\(root)/process/+" }
    /// Retained ``DiskState`` of one recording disk, published by the recorder.
    public func disk(_ name: String) -> String { "\(root)/storage/\(name)" }
    /// Wildcard for every recording disk.
    public var allDisks: String { "\(root)/storage/+" }
    /// Retained ``DiscoveredDevice`` published by the discovery agent, one per device id.
    public func discovered(_ id: String) -> String { "\(root)/discovered/\(id)" }
    /// Wildcard for every discovered device.
    public var allDiscovered: String { "\(root)/discovered/+" }
    /// Not retained: one issue 16 contract event (CloudEvents JSON) from the ONVIF event subscriber of device
    /// `id` (`discovery.eventDevices`), which `hallwatch-web` checks and stores as source `onvif:<id>`.
    public func onvifEvents(_ id: String) -> String { "\(root)/onvif-events/\(id)" }
    /// Wildcard for every ONVIF event device.
    public var allONVIFEvents: String { "\(root)/onvif-events/+" }
}

/// JSON coding shared by every bus message: ISO 8601 dates, sorted keys (stable golden files).
public enum BusCoding {
    /// A JSON encoder with sorted keys (stable bytes for golden files).
    public static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }
    /// A plain JSON decoder (unknown keys are ignored, so newer senders stay readable).
    public static func decoder() -> JSONDecoder { JSONDecoder() }
    /// Encodes `value` as a message payload.
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] { Array(try encoder().encode(value)) }
    /// Decodes a message payload. Throws `DecodingError` on a malformed payload.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try decoder().decode(type, from: Data(bytes))
    }
}

/// A process's liveness, retained on ``BusTopics/process(_:)``. The broker publishes the `down` variant
/// as the last-will when the process dies without saying goodbye.
public struct ProcessState: Codable, Sendable, Equatable {
    /// `up` (running), `stopping` (graceful shutdown begun) or `down` (gone; the last-will says so).
    public enum State: String, Codable, Sendable { case up, stopping, down }
    /// Process instance name, e.g. `recorder`, `capture-lobby`.
    public var process: String
    /// Where the process is in its life.
    public var state: State
    /// Process id (0 in a last-will, which the broker sends on the process's behalf).
    public var pid: Int32
    /// When the state was set (box UTC); `nil` in a last-will.
    public var at: UTCMicros?
    /// Why the process is down, when known (`"connection lost"` for a last-will).
    public var reason: String?
    /// The configuration release the process runs with (``ConfigAnnouncement/version``, e.g. `v3-0123…`), when
    /// it was started from a provisioned store; the provisioner's health gate waits for it (issue 17 step 8).
    public var configVersion: String?
    /// A state of process `process` (`pid` 0 and `at` nil in a last-will).
    public init(
        process: String, state: State, pid: Int32, at: UTCMicros?, reason: String? = nil, configVersion: String? = nil
    ) {
        self.process = process
        self.state = state
        self.pid = pid
        self.at = at
        self.reason = reason
        self.configVersion = configVersion
    }
}

/// A camera's ingest state, retained on ``BusTopics/cameraState(_:)`` by its capture worker.
public struct CameraState: Codable, Sendable, Equatable {
    /// `connecting` (opening the RTSP session), `online` (fragments flowing) or `offline` (see ``reason``).
    public enum State: String, Codable, Sendable { case connecting, online, offline }
    /// The camera.
    public var camera: CameraID
    /// Where ingest is.
    public var state: State
    /// Why the camera is offline or reconnecting: a stable error code (`rtsp.connect`, `rtsp.timeout`,
    /// `media.unsupportedCodec`, …) and a human message. `nil` when online.
    public var reason: ErrorEvent?
    /// Video codec name as FFmpeg spells it (`h264`, `hevc`).
    public var codec: String?
    /// Coded picture size in pixels.
    public var width: Int?
    /// Coded picture height in pixels.
    public var height: Int?
    /// Frames per second that arrive, counted on the box's clock over the last ~5 s (not the SDP's claim).
    public var fps: Double?
    /// Frames per second the camera's timestamps say; far from ``fps`` means the camera's clock is wrong
    /// (and `media.cameraClock` is raised).
    public var timestampFPS: Double?
    /// RTP transport in use, `tcp` or `udp` (with `transport: auto`, the one the camera took).
    public var transport: String?
    /// Received payload bit rate, bits per second, over the last ~5 s.
    public var bitrateBps: Int?
    /// Audio codec when audio is recorded.
    public var audioCodec: String?
    /// When this state was published (box UTC).
    public var at: UTCMicros
    /// A state of `camera` at `at`; the rest is filled in by the publisher.
    public init(camera: CameraID, state: State, at: UTCMicros) {
        self.camera = camera
        self.state = state
        self.at = at
    }
}

/// What the recorder has stored for a camera, retained on ``BusTopics/recording(_:)``; published after each
/// index commit (about once per fsync cadence).
public struct RecordingStats: Codable, Sendable, Equatable {
    /// The camera.
    public var camera: CameraID
    /// Seconds of media durably recorded and indexed on the disk.
    public var recordedSeconds: Double
    /// Payload bytes durably recorded and indexed on the disk.
    public var recordedBytes: Int64
    /// Start (box UTC) of the newest indexed fragment.
    public var lastFragmentAt: UTCMicros?
    /// Current run id.
    public var run: UInt64?
    /// Why the recorder refused this camera's media (`storage.full`, a data-plane protocol error…), when the
    /// last thing it did for the camera was to close its connection; `nil` once a later commit stored media.
    /// The capture worker may still say `online`: this is what tells that nothing is written.
    public var refused: ErrorEvent?
    /// When these statistics were published (box UTC).
    public var at: UTCMicros
    /// Statistics of `camera` at `at`.
    public init(
        camera: CameraID, recordedSeconds: Double, recordedBytes: Int64, lastFragmentAt: UTCMicros?, run: UInt64?,
        at: UTCMicros
    ) {
        self.camera = camera
        self.recordedSeconds = recordedSeconds
        self.recordedBytes = recordedBytes
        self.lastFragmentAt = lastFragmentAt
        self.run = run
        self.at = at
    }
}

/// A typed error as it appears in logs and on the bus: a stable code, a message, the camera if any.
public struct ErrorEvent: Codable, Sendable, Equatable, Error, CustomStringConvertible {
    /// Stable, dotted code, e.g. `rtsp.connect`, `media.unsupportedCodec`, `storage.io`.
    public var code: String
    /// One sentence for people; never contains credentials.
    public var message: String
    /// The camera concerned, if any.
    public var camera: CameraID?
    /// The process instance that raised it (`recorder`, `capture-lobby`), if known.
    public var process: String?
    /// When it happened (box UTC), if known.
    public var at: UTCMicros?
    /// An event with its stable code (registered in ``ErrorCodes``) and message.
    public init(code: String, message: String, camera: CameraID? = nil, process: String? = nil, at: UTCMicros? = nil) {
        self.code = code
        self.message = message
        self.camera = camera
        self.process = process
        self.at = at
    }
    /// `[code] message`.
    public var description: String { "[\(code)] \(message)" }
}

/// A recording disk as the recorder sees it, retained on ``BusTopics/disk(_:)``; published when its
/// health or its cameras change and about every 10 s with fresh slot counts.
public struct DiskState: Codable, Sendable, Equatable {
    /// Health of a disk (write protocol, step F).
    public enum Health: String, Codable, Sendable {
        /// Open and written.
        case healthy
        /// An I/O error, a full file system or a vanished mount: not written; its cameras moved to a
        /// healthy disk. Retried when the directory comes back as a different mount (a replaced or
        /// remounted disk), after recovery rescans it.
        case failed
        /// Holds another box's disk or other files: never written, never formatted.
        case quarantined
        /// The directory does not exist (not mounted?); checked again every few seconds.
        case missing
    }
    /// `recorder.disks[].name`.
    public var disk: String
    /// The disk's directory.
    public var path: String
    /// Whether the disk is written (see ``Health``).
    public var health: Health
    /// Why the disk is not healthy: a stable code (`storage.io`, `storage.vanished`, `storage.foreignDisk`,
    /// …) and a message.
    public var reason: ErrorEvent?
    /// Cameras recording to this disk now.
    public var cameras: [CameraID]
    /// Slots free for new recording, and in all (both 0 when the disk is not open).
    public var freeSlots: Int
    /// All slots of the disk (0 when it is not open).
    public var slotCount: Int
    /// The longest commit (`fdatasync` of the slot files, then the index) since this disk's previous state was
    /// published, about 10 s, in milliseconds; `nil` when there was none. What a power cut can cost grows by
    /// this much beyond the fsync cadence plus one fragment (README § Several disks, and a bad day).
    public var slowestCommitMillis: Double?
    /// When this state was published (box UTC).
    public var at: UTCMicros
    /// A disk's state at `at`.
    public init(
        disk: String, path: String, health: Health, reason: ErrorEvent?, cameras: [CameraID], freeSlots: Int,
        slotCount: Int, slowestCommitMillis: Double? = nil, at: UTCMicros
    ) {
        self.disk = disk
        self.path = path
        self.health = health
        self.reason = reason
        self.cameras = cameras
        self.freeSlots = freeSlots
        self.slotCount = slotCount
        self.slowestCommitMillis = slowestCommitMillis
        self.at = at
    }
}

/// A device the ONVIF discovery agent found, retained on ``BusTopics/discovered(_:)`` (issue 5 §4).
///
/// The agent republishes it whenever something changes; a device that said Bye or missed
/// `discovery.missedProbes` probe rounds stays published with ``presence`` `gone`.
public struct DiscoveredDevice: Codable, Sendable, Equatable {
    /// `present` (answering) or `gone` (said Bye, or missed `discovery.missedProbes` rounds).
    public enum Presence: String, Codable, Sendable { case present, gone }
    /// One media profile as the device reported it.
    public struct Profile: Codable, Sendable, Equatable {
        /// The profile's ONVIF token.
        public var token: String
        /// Display name (never used to choose).
        public var name: String?
        /// `H264`, `H265`, `JPEG`, … as sent; `nil` when missing.
        public var encoding: String?
        /// Encoded picture width in pixels, as sent.
        public var width: Int?
        /// Encoded picture height in pixels, as sent.
        public var height: Int?
        /// Frame-rate limit, frames per second, as sent.
        public var frameRateLimit: Double?
        /// Bit-rate limit, kbit/s, as sent.
        public var bitrateLimitKbps: Int?
        /// The video source this profile encodes.
        public var videoSourceToken: String?
        /// A profile known only by its token.
        public init(token: String) { self.token = token }
    }
    /// A chosen stream and its URI.
    public struct Stream: Codable, Sendable, Equatable {
        /// `main` or `sub`.
        public var role: String
        /// The profile the URI belongs to.
        public var profileToken: String
        /// The video source of that profile.
        public var videoSourceToken: String
        /// `rtsp://…` without credentials; `nil` when GetStreamUri failed.
        public var uri: String?
        /// The URI is good for one connection only: ask again before each (issue 5 §3).
        public var invalidAfterConnect: Bool
        /// A chosen stream.
        public init(
            role: String, profileToken: String, videoSourceToken: String, uri: String?, invalidAfterConnect: Bool
        ) {
            self.role = role
            self.profileToken = profileToken
            self.videoSourceToken = videoSourceToken
            self.uri = uri
            self.invalidAfterConnect = invalidAfterConnect
        }
    }

    /// `dev-` and 8 hex digits of SHA-256 of the endpoint reference: stable, and a valid ``CameraID``.
    public var id: String
    /// WS-Addressing endpoint reference (`urn:uuid:…`), canonical form.
    public var endpoint: String
    /// Whether the device is currently answering.
    public var presence: Presence
    /// `bye` or `missedProbes` when ``presence`` is `gone`.
    public var goneReason: String?
    /// Configured interface the device was last heard on (name or address as configured).
    public var interface: String?
    /// IPv4 source addresses of its discovery datagrams (several when dedupe merged two endpoints).
    public var addresses: [String]
    /// Device service XAddrs as announced (routable on the interface's subnet first, link-local last).
    public var xAddrs: [String]
    /// The device service URL that answered.
    public var deviceXAddr: String?
    /// The media service URL (to re-ask a stream URI that is `invalidAfterConnect`).
    public var mediaXAddr: String?
    /// The media service is version 2 (`tr2:`).
    public var media2: Bool?
    /// From the ONVIF scopes.
    public var name: String?
    /// Location from the ONVIF scopes.
    public var location: String?
    /// MAC address, when the device gave one.
    public var mac: String?
    /// Manufacturer (GetDeviceInformation).
    public var manufacturer: String?
    /// Model (GetDeviceInformation).
    public var model: String?
    /// Firmware version (GetDeviceInformation).
    public var firmware: String?
    /// Serial number (GetDeviceInformation).
    public var serial: String?
    /// Hardware id (GetDeviceInformation).
    public var hardwareID: String?
    /// `notRequired`, `usernameToken`, `digest`, `credentialsMissing`, `failed`, or `unknown` before the first
    /// description.
    public var auth: String
    /// Camera clock minus box clock, milliseconds.
    public var clockOffsetMs: Int64?
    /// Media profiles as reported.
    public var profiles: [Profile]
    /// The streams chosen for recording (`main`, and `sub` when there is one).
    public var streams: [Stream]
    /// Why the description is missing or partial (`onvif.notAuthorized`, `onvif.unreachable`, …).
    public var error: ErrorEvent?
    /// The camera id it was adopted as, when the configuration has it.
    public var adoptedAs: CameraID?
    /// With `discovery.adopt: auto` on a provisioned box (the configuration is a signed release, which the
    /// agent never writes): the `cameras:` item (YAML lines) proposed for the district's next bundle.
    public var proposal: String?
    /// First heard (box UTC).
    public var firstSeen: UTCMicros
    /// Last heard (box UTC).
    public var lastSeen: UTCMicros
    /// Last described over ONVIF (box UTC); `nil` before the first description.
    public var describedAt: UTCMicros?

    /// A device as first heard, before its description.
    public init(
        id: String, endpoint: String, presence: Presence, addresses: [String], xAddrs: [String], auth: String,
        firstSeen: UTCMicros, lastSeen: UTCMicros
    ) {
        self.id = id
        self.endpoint = endpoint
        self.presence = presence
        self.addresses = addresses
        self.xAddrs = xAddrs
        self.auth = auth
        self.profiles = []
        self.streams = []
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
    }

    /// The main stream of the first video source, if its URI is known: what adoption records.
    public var mainStream: Stream? { streams.first { $0.role == "main" && $0.uri != nil } }
}
