import Foundation
import HallwatchCore
import HallwatchStatus

/// The status as one user may see it: the JSON of `/api/v1/status` and of each live event, and the model of
/// the status page. Cameras outside the user's groups are left out everywhere (disks' camera lists and
/// capture processes included).
public struct StatusView: Codable, Sendable, Equatable {
    /// One camera. Sizes in pixels, `bitrateBps` in bits per second, ages in seconds.
    public struct Camera: Codable, Sendable, Equatable {
        public var id: String
        /// `connecting`, `online`, `not-recording` (online, but the recorder refuses its media: no healthy disk,
        /// a full one), `offline`, or `unknown` (nothing on the bus yet).
        public var state: String
        /// The typed reason of a state other than online (`rtsp.auth`, `media.noKeyframe`…), or what is wrong
        /// with an online camera (`storage.full`: not recorded; `media.cameraClock`).
        public var reasonCode: String?
        public var reasonMessage: String?
        public var codec: String?
        public var width: Int?
        public var height: Int?
        public var fps: Double?
        public var bitrateBps: Int?
        public var recordedSeconds: Double?
        /// Seconds since the start of the newest durable fragment.
        public var lastFragmentAgeSeconds: Double?
        /// The camera's sub stream (`<id>/sub`, `?stream=sub` in the live routes) when the configuration gives it
        /// one (or its worker reports on the bus); `nil`: the camera has none (grids and pop-ups play `main`).
        public var sub: SubStream?
    }
    /// A camera's sub stream: what a player needs to choose it.
    public struct SubStream: Codable, Sendable, Equatable {
        /// As ``Camera/state``.
        public var state: String
        public var codec: String?
        public var width: Int?
        public var height: Int?
    }
    /// One recording disk.
    public struct Disk: Codable, Sendable, Equatable {
        public var name: String
        /// `healthy`, `failed`, `quarantined`, `missing`.
        public var health: String
        public var reasonCode: String?
        public var freeSlots: Int
        public var slotCount: Int
        public var cameras: [String]
    }
    /// One process, from its retained state and last-will.
    public struct Process: Codable, Sendable, Equatable {
        public var name: String
        /// `up`, `stopping`, `down`.
        public var state: String
        public var pid: Int32
    }
    /// One typed error from the bus.
    public struct Alarm: Codable, Sendable, Equatable {
        public var code: String
        public var message: String
        public var camera: String?
        public var process: String?
        /// ISO 8601 UTC.
        public var at: String?
        /// ``at`` in the building's time zone (`2026-11-01 01:30:00 EDT`).
        public var atLocal: String?
    }

    /// When the snapshot was taken, ISO 8601 UTC.
    public var at: String
    public var cameras: [Camera]
    public var disks: [Disk]
    public var processes: [Process]
    public var alarms: [Alarm]
    /// ``at`` in the building's time zone.
    public var atLocal: String
    /// SHA-256 of the web page's certificate (as published on the bus), for comparing with the browser.
    public var tlsSHA256: String?
    /// The box itself: name, building, version, uptime, clock, fingerprints.
    public var box: BoxView?

    /// Cuts `snapshot` and `alarms` to `visible` cameras (`nil`: every camera; a sub stream is visible with its
    /// camera); times also in `time`'s zone. Sub streams are no rows of their own: each is its camera's ``Camera/sub``.
    public init(
        snapshot: StatusCollector.Snapshot, alarms: [ErrorEvent], visible: Set<CameraID>?, box: BoxView? = nil,
        time: BuildingTime = .utc
    ) {
        func sees(_ id: CameraID) -> Bool { visible?.contains(id.camera) ?? true }
        at = snapshot.at.iso8601
        atLocal = time.format(snapshot.at)
        self.box = box
        tlsSHA256 = snapshot.web?.tlsSHA256
        let subs = Dictionary(
            snapshot.cameras.filter(\.camera.isSubStream).map { ($0.camera.camera, $0) },
            uniquingKeysWith: { a, _ in a })
        cameras = snapshot.cameras.filter { sees($0.camera) && !$0.camera.isSubStream }.map { row in
            // A camera whose capture worker is down is not being recorded, whatever its last state said.
            let s = snapshot.state(of: row)
            // No reason from the worker: what else is wrong (the recorder refusing it, a wrong camera clock).
            let reason = s?.reason ?? row.warning
            // A camera the worker reads but the recorder refuses (no healthy disk, a full one) is not `online`
            // to the people who rely on its recording: its state says so, in red.
            var state = s?.state.rawValue ?? "unknown"
            if s?.state == .online, row.recording?.refused != nil { state = "not-recording" }
            return Camera(
                id: row.camera.rawValue, state: state, reasonCode: reason?.code,
                reasonMessage: reason?.message, codec: s?.codec, width: s?.width, height: s?.height, fps: s?.fps,
                bitrateBps: s?.bitrateBps, recordedSeconds: row.recording?.recordedSeconds,
                lastFragmentAgeSeconds: row.recording?.lastFragmentAt.map {
                    (Double(snapshot.at.micros - $0.micros) / 1e5).rounded() / 10
                },
                sub: subs[row.camera].map { sub in
                    let st = snapshot.state(of: sub)
                    return SubStream(
                        state: st?.state.rawValue ?? "unknown",
                        codec: st?.codec, width: st?.width, height: st?.height)
                })
        }
        disks = snapshot.disks.map { d in
            Disk(
                name: d.disk, health: d.health.rawValue, reasonCode: d.reason?.code, freeSlots: d.freeSlots,
                slotCount: d.slotCount, cameras: d.cameras.filter(sees).map(\.rawValue))
        }
        processes = snapshot.processes.filter { p in
            // A capture worker is named after its camera: hide the ones of cameras this user may not see.
            guard visible != nil, p.process.hasPrefix("capture-") else { return true }
            guard let id = CameraID.capturedBy(process: p.process) else { return false }
            return sees(id)
        }.map { Process(name: $0.process, state: $0.state.rawValue, pid: $0.pid) }
        self.alarms = alarms.filter { a in
            if let c = a.camera { return sees(c) }
            if visible != nil, let p = a.process, p.hasPrefix("capture-") { return false }
            return true
        }.map {
            Alarm(
                code: $0.code, message: $0.message, camera: $0.camera?.rawValue, process: $0.process,
                at: $0.at?.iso8601,
                atLocal: $0.at.map(time.format))
        }
    }
}

/// `GET /api/v1/cameras`.
public struct CameraList: Codable, Sendable, Equatable {
    public var cameras: [StatusView.Camera]
}

/// Display text shared by the page's first rendering (the JavaScript formats live updates the same way).
enum Display {
    static func size(_ c: StatusView.Camera) -> String {
        guard let w = c.width, let h = c.height else { return "–" }
        return "\(w)×\(h)"
    }
    static func fps(_ c: StatusView.Camera) -> String { c.fps.map { String(format: "%.1f", $0) } ?? "–" }
    static func bitrate(_ c: StatusView.Camera) -> String {
        c.bitrateBps.map { String(format: "%.2f Mb/s", Double($0) / 1e6) } ?? "–"
    }
    static func age(_ c: StatusView.Camera) -> String {
        c.lastFragmentAgeSeconds.map { String(format: "%.1f s", $0) } ?? "–"
    }
}

/// The status page's mustache model (dictionaries: swift-mustache reads them without reflection surprises).
struct StatusPageModel {
    var dictionary: [String: Any]

    init(building: String, user: String, role: String, csrf: String, status: StatusView) {
        dictionary = [
            "building": building, "user": user, "role": role, "csrf": csrf, "at": status.at,
            "atLocal": status.atLocal,
            "cameras": status.cameras.map { c -> [String: Any] in
                [
                    "id": c.id, "state": c.state,
                    "reason": c.reasonCode.map { "\($0): \(c.reasonMessage ?? "")" } ?? "",
                    "codec": c.codec ?? "–", "size": Display.size(c), "fps": Display.fps(c),
                    "bitrate": Display.bitrate(c), "age": Display.age(c),
                ]
            },
            "noCameras": status.cameras.isEmpty,
            "disks": status.disks.map { d -> [String: Any] in
                [
                    "name": d.name, "health": d.health, "reason": d.reasonCode ?? "",
                    "slots": "\(d.freeSlots)/\(d.slotCount)", "cameras": d.cameras.joined(separator: ", "),
                ]
            },
            "processes": status.processes.map {
                ["name": $0.name, "state": $0.state, "pid": $0.pid > 0 ? "\($0.pid)" : "–"]
            },
            "alarms": status.alarms.map {
                [
                    "code": $0.code, "message": $0.message, "subject": $0.camera ?? $0.process ?? "", "at": $0.at ?? "",
                    "atLocal": $0.atLocal ?? "",
                ]
            },
            "noAlarms": status.alarms.isEmpty,
            "tls": status.tlsSHA256 ?? "",
        ]
        if let b = status.box {
            dictionary["box"] = [
                "name": b.name, "building": b.building, "version": b.softwareVersion,
                "uptime": Display.uptime(b.uptimeSeconds), "utc": b.utc, "local": b.local, "zone": b.timeZone,
                "clock": Display.clock(b.clock), "clockState": b.clock.synchronised == true ? "ok" : "bad",
                "identity": b.identitySHA256 ?? "not made yet", "tls": b.tlsSHA256 ?? "–",
            ]
        }
    }
}
