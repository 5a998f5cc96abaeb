/// The registry of every stable error code: its kind and what it means, one line each.
///
/// Codes are for operators (logs, the bus's `errors` topic, `CameraState.reason`, `DiskState.reason`) and
/// never change meaning once released; ``ErrorKind`` is for code. A test greps `Sources/` and fails when a
/// code literal is missing here, or when a code here is no longer used.
public enum ErrorCodes {
    /// One stable code.
    public struct Entry: Sendable, Hashable {
        /// The dotted code, e.g. `storage.io`.
        public let code: String
        /// Its kind.
        public let kind: ErrorKind
        /// What it means, one line.
        public let meaning: String
        init(_ code: String, _ kind: ErrorKind, _ meaning: String) {
            self.code = code
            self.kind = kind
            self.meaning = meaning
        }
    }

    /// Every code, grouped by domain, alphabetical within a domain.
    public static let all: [Entry] = [
        // Camera adoption (HallwatchDiscovery's CameraAdoption).
        .init("adopt.already", .conflict, "the device is already configured as a camera"),
        .init("adopt.config", .invalidInput, "the configuration with the adopted camera would not load or read back"),
        .init("adopt.idTaken", .conflict, "the camera id asked for is already in use"),
        .init("adopt.io", .unavailable, "the configuration file could not be read or written"),
        .init("adopt.noStream", .notFound, "the device offers no stream Hallwatch can record"),
        .init(
            "adopt.signedRelease", .conflict,
            "the configuration is a signed release: a camera is added by the next bundle, never written on the box"),

        // The web's audit log and the box's identity key (HallwatchWeb).
        .init("audit.filter", .invalidInput, "an audit log filter that cannot be read (a date and time)"),
        .init("audit.keyFile", .corrupt, "an identity key file that is not a Hallwatch Ed25519 key"),
        .init("audit.request", .invalidInput, "an audit request on the bus that is not an export of this box"),
        .init(
            "audit.unavailable", .unavailable, "an export could not be put into the audit log: the bus is unreachable"),

        // The floor-plan map (HallwatchConfig's `map:` section).
        .init("map.floor", .notFound, "no such floor on the map"),
        .init("map.image", .invalidInput, "a floor plan image that is missing, too large, or not a PNG, JPEG or SVG"),
        .init("map.leaflet", .notFound, "Leaflet (Debian's libjs-leaflet) is not installed"),

        // The bus (HallwatchBus's BusError).
        .init("bus.closed", .unavailable, "the client was disconnected on purpose or is being destroyed"),
        .init("bus.config", .invalidInput, "libmosquitto refused an argument (socket path, client id, …)"),
        .init("bus.connect", .unavailable, "the broker could not be reached or refused the connection"),
        .init("bus.disconnected", .unavailable, "the connection to the broker was lost"),
        .init("bus.encode", .internal, "a message could not be encoded"),
        .init("bus.publish", .invalidInput, "libmosquitto refused a PUBLISH (topic, size, QoS 0 while disconnected)"),
        .init("bus.subscribe", .unavailable, "the broker refused or dropped a subscription"),
        .init("bus.timeout", .timeout, "connecting to the broker took longer than allowed"),
        // The capture worker.
        .init("capture.down", .unavailable, "the camera's capture worker is down (its last-will): not recorded now"),
        .init("capture.credentials", .notFound, "the camera's passwordFile cannot be read"),
        .init("capture.internal", .internal, "an unexpected error ended a capture session"),
        .init("capture.stopped", .unavailable, "the capture worker was stopped"),
        // The configuration (HallwatchConfig's ConfigError).
        .init("config.invalid", .invalidInput, "the configuration was refused; see its diagnostics"),
        .init("config.unreadable", .notFound, "the configuration file does not exist or cannot be read"),
        .init("config.reload", .invalidInput, "an announced configuration did not load; the running one is kept"),
        // hallwatchctl.
        .init("ctl.supervisor", .conflict, "the development supervisor could not start (another one runs)"),
        .init("ctl.unknownCamera", .notFound, "no such camera in the configuration or on the disks"),
        // The data plane between capture workers and the recorder (DataPlaneError and the recorder).
        .init("dataplane.duplicateCamera", .conflict, "a second capture worker connected for the same camera"),
        .init("dataplane.duration", .invalidInput, "a frame header with a negative duration"),
        .init("dataplane.kind", .invalidInput, "a frame header with an unknown kind"),
        .init("dataplane.magic", .invalidInput, "a frame header without the magic bytes"),
        .init("dataplane.protocol", .invalidInput, "frames in the wrong order"),
        .init("dataplane.short", .invalidInput, "a frame header or payload cut short"),
        .init("dataplane.tooLarge", .invalidInput, "a frame payload larger than the protocol allows"),
        .init("dataplane.unknownCamera", .notFound, "a capture worker for a camera that is not configured"),
        .init("dataplane.version", .invalidInput, "a frame of another protocol version"),
        // The discovery agent.
        .init("discovery.credentials", .notFound, "the ONVIF passwordFile cannot be read"),
        .init("discovery.interface", .notFound, "a configured interface does not exist or has no IPv4 address"),
        .init("discovery.listen", .unavailable, "the agent cannot listen for Hello and Bye"),
        .init("discovery.probe", .unavailable, "a probe round could not be sent"),
        // Door and alarm events (HallwatchWeb's EventService and EventRoutes; issue 16).
        .init("events.address", .forbidden, "an event-source token used from an address its source does not allow"),
        .init("events.budget", .exhausted, "an event source held more events than its row budget: its oldest deleted"),
        .init("events.camera", .notFound, "an event list asked for a camera the user may not see"),
        .init("events.clockSkew", .badReply, "an event source's clock is off by more than 2 s (from its live events)"),
        .init("events.conflict", .conflict, "an event id sent again with other content (both are kept)"),
        .init("events.duplicateKey", .invalidInput, "an event document with a name twice in one object (RFC 8259 §4)"),
        .init("events.filter", .invalidInput, "an event list filter that cannot be read (a time, a limit)"),
        .init("events.future", .invalidInput, "an event time more than a day ahead of the box's clock"),
        .init("events.invalid", .invalidInput, "an event that is not a valid CloudEvent of the contract"),
        .init("events.mediaType", .invalidInput, "an event POST that is not application/cloudevents(-batch)+json"),
        .init("events.naiveTime", .invalidInput, "an event time without a UTC offset"),
        .init("events.rate", .exhausted, "an event source sent more events than its rate allows"),
        .init("events.scope", .forbidden, "an event type or door outside what the source's token may send"),
        .init("events.source", .forbidden, "an event of another source than the token's"),
        .init(
            "events.sourceRate", .exhausted,
            "an event source sends faster, for an hour, than its row budget can keep for the retention"),
        .init("events.subject", .invalidInput, "an event subject that names no configured door"),
        .init(
            "events.time", .invalidInput,
            "an event time that is not an RFC 3339 date-time (no such date, an offset outside ±23:59)"),
        .init("events.token", .unauthorized, "no live event-source bearer token"),
        .init("events.tooLarge", .invalidInput, "an event request body or raw vendor record over its limit"),
        .init("events.tooOld", .invalidInput, "an event older than the longest camera retention (its video is gone)"),
        .init("events.unavailable", .unavailable, "door and alarm events are not set up in this process"),
        // Media: files, muxing and export (HallwatchMedia's MediaError).
        .init(
            "media.cameraClock", .badReply,
            "the camera's clock runs far from its frames' arrivals (fps that lies): its runs are re-anchored"),
        .init("media.export", .internal, "an export could not be written"),
        .init("media.file", .notFound, "a media file could not be opened or read"),
        .init("media.mux", .badReply, "the fMP4 muxer refused the camera's packets or parameters"),
        .init("media.noKeyframe", .badReply, "no keyframe with parameter sets within 30 s"),
        .init("media.noVideo", .badReply, "the stream has no video track"),
        .init("media.thumbnail", .internal, "a recorded keyframe could not be decoded or encoded as a JPEG thumbnail"),
        .init("media.unsupportedCodec", .badReply, "a codec Hallwatch cannot store without transcoding"),
        // ONVIF and WS-Discovery replies (HallwatchDiscovery's ONVIFError), and the fresh stream URI.
        .init("onvif.dtdRefused", .badReply, "a reply with a document type or entity declaration"),
        .init("onvif.fault", .badReply, "a SOAP fault other than an authentication failure"),
        .init("onvif.httpStatus", .badReply, "an HTTP status that is neither success, 401 nor a SOAP fault"),
        .init("onvif.malformed", .badReply, "a reply that is not well-formed XML"),
        .init("onvif.missingField", .badReply, "a reply without a field that cannot be done without"),
        .init("onvif.notAuthorized", .unauthorized, "the device refused our credentials"),
        .init("onvif.streamUri", .unavailable, "no fresh stream URI could be had before connecting"),
        .init("onvif.tooDeep", .badReply, "a reply nested deeper than allowed"),
        .init("onvif.tooLarge", .badReply, "a reply larger, or with more elements, than allowed"),
        .init("onvif.unexpectedReply", .badReply, "well-formed XML, but not the SOAP response expected"),
        .init("onvif.unreachable", .unavailable, "no HTTP reply: refused, no route, reset or past the deadline"),
        // Playback of recorded video over HTTP (HallwatchWeb's Playback).
        .init("playback.none", .notFound, "nothing of the camera is recorded in the range asked for"),
        .init("playback.stream", .notFound, "the camera has no such stream (stream=sub without a sub stream)"),
        .init("playback.range", .invalidInput, "a range that is empty, too long, or a byte range outside the body"),
        .init("playback.read", .unavailable, "the recordings could not be read (a disk, the index, a record)"),
        .init("playback.time", .invalidInput, "from or to missing or not an RFC 3339 time"),
        .init("playback.unavailable", .unavailable, "this web serves no recordings (no disks configured)"),
        // The USB config drop (HallwatchProvision's ProvisionError): each refusal's reason on the receipt.
        .init("provision.ambiguous", .conflict, "more than one bundle on the stick is meant for this box"),
        .init("provision.apply", .unavailable, "staging or switching the configuration failed; the old one stays"),
        .init(
            "provision.cleartextSecret", .invalidInput,
            "a secret travelled in clear text (the bundle allowed it): applied, and the receipt warns"),
        .init("provision.config", .invalidInput, "the bundle's configuration does not validate"),
        .init("provision.expired", .conflict, "the bundle expired, or was issued after it expires"),
        .init("provision.file", .corrupt, "a listed file is missing, of another size or another SHA-256"),
        .init("provision.health", .unavailable, "a process did not report the new configuration healthy: reverted"),
        .init("provision.ignored", .notFound, "not a FAT or exFAT volume: the stick is ignored"),
        .init("provision.keyring", .invalidInput, "the box's keyring is unusable or older than the bundle needs"),
        .init("provision.manifest", .invalidInput, "bundle.txt breaks the manifest grammar or its bounds"),
        .init("provision.noBundle", .notFound, "the stick holds no bundle for this box"),
        .init("provision.otherBox", .conflict, "the bundle is for another district, building or box"),
        .init("provision.reader", .unavailable, "the sandboxed stick reader failed, stalled or was cut off"),
        .init("provision.receipt", .unavailable, "the receipt could not be written to the stick (kept pending)"),
        .init("provision.replay", .conflict, "a version not above the floor (or the same version, another hash)"),
        .init("provision.signature", .unauthorized, "the signature is missing, malformed or does not verify"),
        .init("provision.unknownKey", .unauthorized, "the signing key is not in the box's keyring"),
        // The recorder.
        .init("recorder.internal", .internal, "an unexpected error in the recorder's handling of a camera"),
        .init(
            "recorder.live", .unavailable, "the live tap's socket cannot listen: recording goes on, live view cannot"),
        .init("recorder.start", .unavailable, "the recorder cannot start (socket, disks)"),
        // Retention alarms (the pruner).
        .init(
            "retention.openSlotPastMaxAge", .conflict,
            "an open slot holds video past maxAge; deleted once the recorder closes it"),
        .init(
            "retention.quotaUnreachable", .exhausted, "a camera stays over maxBytes: the rest is young, open or held"),
        .init("retention.holdRequest", .invalidInput, "a hold requested on the bus was refused (camera, range, space)"),
        .init("retention.reserveUnreachable", .exhausted, "a disk's free-slot reserve cannot be met by policy"),
        // Responder links (HallwatchWeb's ResponderLinks): why a link was not made or opened, or a session ended.
        .init("responder.expired", .unavailable, "the responder link has expired"),
        .init("responder.full", .exhausted, "the responder link opened as many sessions as it may"),
        .init("responder.group", .notFound, "a responder link asked for a camera group the web file does not have"),
        .init("responder.input", .invalidInput, "a responder link request with a bad label, duration, group or PIN"),
        .init("responder.locked", .unavailable, "too many wrong PINs locked the responder link"),
        .init("responder.pin", .invalidInput, "a wrong PIN for a responder link"),
        .init("responder.qr", .internal, "libqrencode could not make the link's QR code"),
        .init("responder.revoked", .unavailable, "the responder link was revoked"),
        .init("responder.unknown", .notFound, "no such responder link or session"),

        // RTSP ingest (HallwatchMedia's MediaError).
        .init(
            "export.badOutput", .invalidInput, "an export path that is a link, a directory or inside a recording disk"),
        .init("export.bundle", .invalidInput, "an evidence bundle directory that is not empty or cannot be written"),
        .init(
            "export.noSpace", .unavailable,
            "the file system an export writes to is full; what the export wrote was removed"),
        .init("export.signingKey", .notFound, "the identity key to sign an evidence bundle cannot be read"),
        .init(
            "export.budget", .exhausted, "the web's export space (count, bytes or free space) cannot take the export"),
        .init("export.busy", .exhausted, "too many evidence exports are queued"),
        .init("export.empty", .notFound, "nothing of the export's cameras is recorded in its range"),
        .init("export.input", .invalidInput, "an export request with bad cameras, times, reason or case number"),
        .init("export.interrupted", .unavailable, "the web stopped while the export ran; start it again"),
        .init("export.unknown", .notFound, "no such evidence export (or not one of this user's cameras)"),
        .init("rtsp.auth", .unauthorized, "the camera refused our credentials (401)"),
        .init("rtsp.badURL", .invalidInput, "a request URL or header value with spaces or control characters"),
        .init("rtsp.connect", .unavailable, "the camera did not answer, refused, or the RTSP handshake failed"),
        .init("rtsp.dropped", .unavailable, "the camera dropped a session that was playing (a reset mid-stream)"),
        .init("rtsp.ended", .unavailable, "the camera closed the stream"),
        .init("rtsp.garbage", .badReply, "a reply or stream that cannot be parsed (SDP, RTP, bitstream)"),
        .init("rtsp.noFrames", .badReply, "bytes arrive but no video frame can be rebuilt from them"),
        .init("rtsp.stopped", .unavailable, "the session was stopped on purpose (shutdown)"),
        .init("rtsp.timeout", .timeout, "no data from the camera for longer than the I/O timeout"),
        .init(
            "rtsp.transport", .badReply, "the camera refused the RTP transport asked for (461 Unsupported Transport)"),
        // The simulated camera (HallwatchSimCam's SimCamError, HallwatchSimONVIF).
        .init("simcam.listen", .unavailable, "the RTSP server cannot listen on the address and port asked for"),
        .init("simcam.missingFile", .notFound, "a mount's media file does not exist or cannot be read"),
        .init("simcam.mountSpec", .invalidInput, "a --mount value that is not NAME=FILE or whose name is unusable"),
        .init("simcam.onvifListen", .unavailable, "the simulated ONVIF device cannot listen"),
        .init("simcam.pipeline", .internal, "a GStreamer pipeline could not be built or run"),
        .init("simcam.unsupportedMedia", .invalidInput, "a mount's file holds nothing the simcam can serve"),
        // Recording disks (HallwatchStorage's StorageError and the recording pool).
        .init("storage.alreadyInitialized", .conflict, "asked to format a directory that already is a recording disk"),
        .init("storage.corrupt", .corrupt, "bytes on the disk fail validation (magic, CRC-32C, generation, length)"),
        .init("storage.diskFailed", .unavailable, "a disk failed; its cameras move to a healthy disk"),
        .init("storage.diskReturned", .unavailable, "a failed disk was rescanned and records again (notice)"),
        .init("storage.failed", .unavailable, "the disk's writer stopped after an earlier I/O failure"),
        .init(
            "storage.foreignDisk", .conflict, "the directory belongs to another box or holds other files: quarantined"),
        .init("storage.full", .exhausted, "no slot is free and none may be reused"),
        .init("storage.index", .internal, "the SQLite index failed"),
        .init("storage.invalidArgument", .invalidInput, "an argument out of range (slot count, size, hold times, …)"),
        .init("storage.io", .unavailable, "a system call on the disk failed"),
        .init("storage.locked", .conflict, "another writer has the disk open"),
        .init("storage.missing", .notFound, "a configured disk's directory does not exist (not mounted?)"),
        .init("storage.noHealthyDisk", .unavailable, "no recording disk is healthy; the camera waits"),
        .init("storage.noIndex", .notFound, "the disk has no index yet"),
        .init("storage.notInitialized", .notFound, "the directory holds no recording disk"),
        .init("storage.overrun", .exhausted, "no free slot: the oldest unheld slot was reused (ring)"),
        .init("storage.overwritten", .notFound, "the video asked for was overwritten after the index was read"),
        .init("storage.protocol", .invalidInput, "records in an order the format cannot store"),
        .init("storage.tooFewSlots", .exhausted, "a disk has fewer free slots than its cameras need"),
        .init("storage.tooLarge", .invalidInput, "a record larger than an empty slot"),
        .init("storage.unreadable", .unavailable, "no recording disk could be read"),
        .init("storage.vanished", .unavailable, "the disk's directory is gone or is another mount now"),
        .init("storage.version", .conflict, "a disk or index written by an unknown format version"),
        // Failed system calls (SystemError; `sys.errno<N>` for any other errno, kind internal).
        .init("sys.eacces", .forbidden, "permission denied (EACCES, EPERM)"),
        .init("sys.econnrefused", .unavailable, "nothing listens on the socket (ECONNREFUSED)"),
        .init("sys.eio", .unavailable, "the device reported an I/O error (EIO)"),
        .init("sys.enoent", .notFound, "no such file or directory (ENOENT)"),
        .init("sys.enospc", .exhausted, "no space left on the device (ENOSPC)"),
        .init("sys.erofs", .unavailable, "the file system is read-only (EROFS)"),
        .init("sys.peerGone", .unavailable, "the peer closed the connection (EPIPE, ECONNRESET)"),
        .init("sys.vanished", .unavailable, "the device or mount is gone (ENODEV, ENXIO, ESTALE)"),
    ]

    private static let byCode: [String: Entry] = Dictionary(uniqueKeysWithValues: all.map { ($0.code, $0) })

    /// The entry of `code`, or `nil` when it is not registered.
    public static func entry(_ code: String) -> Entry? { byCode[code] }

    /// The kind of `code`; ``ErrorKind/internal`` for a code not registered (such as `sys.errno<N>`).
    public static func kind(of code: String) -> ErrorKind { byCode[code]?.kind ?? .internal }
}
