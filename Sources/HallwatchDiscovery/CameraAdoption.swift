import Foundation
import HallwatchConfig
import HallwatchCore
import HallwatchProcess

/// Adding a discovered camera to the configuration file (`hallwatchctl camera adopt ID`, or the agent itself
/// with `discovery.adopt: auto`).
///
/// Steps:
/// 1. Lock the file (`flock` on the file itself, so the agent and `hallwatchctl` never interleave).
/// 2. Refuse a device without a recordable main stream URI, one already adopted (same `onvifEndpoint`), or
///    an id already in use.
/// 3. Append a camera entry — id, name (the device's ONVIF `name/` scope), source (its main stream URI, no
///    credentials), `username`/`passwordFile` from `discovery:`, `onvifEndpoint`, and `subStream.source` (its
///    first video source's sub stream URI, when known and the id leaves room for `/sub`) — at the end of the
///    `cameras:` list, as text, so every comment and key order in the file stays as the installer wrote it.
/// 4. Check the new text with ``ConfigLoader`` (it must load, with the camera in it), then replace the file
///    atomically (write beside it, `fsync`, `rename`), keeping its permissions.
///
/// A configuration that is a signed release (its path resolves into the provisioner's `releases/<id>/`, HallwatchProcess's
/// `ConfigVersion`) is never written: the district signed those bytes, and a rename over the link would cut the
/// box off from every later release. There ``adopt(_:configPath:as:)`` refuses with `adopt.signedRelease`, and
/// ``propose(_:configPath:as:)`` gives the entry for the district's next bundle instead; the agent publishes it
/// on the device's bus message (`proposal`), where `hallwatchctl camera list-discovered` prints it.
///
/// How a capture worker then starts: the development supervisor (`hallwatchctl supervise`/`demo`) watches the
/// configuration file and starts a worker for every camera added; on a box, the provisioning path enables
/// `hallwatch-capture@ID.service` for it (`systemctl enable --now`).
public enum CameraAdoption {
    /// Why a camera was not adopted.
    public struct Failure: HallwatchError {
        /// `adopt.noStream`, `adopt.already`, `adopt.idTaken`, `adopt.config`, `adopt.io`.
        public var code: String
        /// One sentence for people.
        public var message: String
        /// ``message``.
        public var description: String { message }
        /// ``code``.
        public var stableCode: String { code }
    }

    /// The camera id to use for `device` when none is given: its `name/` scope if that is a valid, unused id,
    /// else its discovered id.
    public static func suggestedID(for device: DiscoveredDevice, existing: Set<CameraID>) -> CameraID? {
        if let n = device.name?.lowercased(), CameraID.isValid(n), let id = CameraID(n), !existing.contains(id) {
            return id
        }
        return CameraID.isValid(device.id) ? CameraID(device.id) : nil
    }

    /// Adds `device` to the configuration at `configPath` (steps 1–4) and returns the camera entry written.
    /// - Throws: ``Failure`` (`adopt.signedRelease` when the file is a signed release); ``ConfigError`` when the
    ///   file itself does not load.
    @discardableResult
    public static func adopt(_ device: DiscoveredDevice, configPath: String, as requested: CameraID? = nil) throws
        -> CameraConfig
    {
        if let release = ConfigVersion.of(path: configPath) {
            throw Failure(
                code: "adopt.signedRelease",
                message:
                    "\(configPath) is the signed release \(release): add the camera to the district's next bundle (hallwatchctl camera list-discovered prints the entry)"
            )
        }
        let fd = open(configPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(code: "adopt.io", message: "cannot open \(configPath)") }
        defer { close(fd) }
        flock(fd, LOCK_EX)
        let (camera, updated) = try plan(device, configPath: configPath, as: requested)
        try replaceAtomically(configPath, with: updated)
        return camera
    }

    /// The camera entry `device` would get in the configuration at `configPath` (steps 2–4, nothing written),
    /// as the YAML lines of one `cameras:` item (two-space indent) — what a district adds to its next bundle.
    /// - Throws: ``Failure`` as ``adopt(_:configPath:as:)`` does, but never `adopt.signedRelease`.
    public static func propose(_ device: DiscoveredDevice, configPath: String, as requested: CameraID? = nil) throws
        -> (camera: CameraConfig, yaml: String)
    {
        let camera = try plan(device, configPath: configPath, as: requested).camera
        return (camera, entry(camera, indent: "  ").joined(separator: "\n") + "\n")
    }

    /// Steps 2–4: the camera and the whole file's new text, checked to load with it.
    static func plan(_ device: DiscoveredDevice, configPath: String, as requested: CameraID?) throws
        -> (camera: CameraConfig, text: String)
    {
        let config = try ConfigLoader.load(path: configPath)
        guard let stream = device.mainStream, let uri = stream.uri else {
            throw Failure(
                code: "adopt.noStream",
                message: "device \(device.id) has no recordable (H.264/H.265) stream URI yet (auth: \(device.auth))")
        }
        if let existing = config.cameras.first(where: { $0.onvifEndpoint == device.endpoint }) {
            throw Failure(code: "adopt.already", message: "device \(device.id) is already camera '\(existing.id)'")
        }
        let ids = Set(config.cameras.map(\.id))
        guard let id = requested ?? suggestedID(for: device, existing: ids) else {
            throw Failure(code: "adopt.idTaken", message: "no usable camera id for \(device.id); give one")
        }
        guard !ids.contains(id) else {
            throw Failure(code: "adopt.idTaken", message: "camera id '\(id)' is already in use")
        }
        var camera = CameraConfig(id: id, source: uri)
        camera.name = device.name ?? id.rawValue
        camera.username = config.discovery?.username
        camera.passwordFile = config.discovery?.passwordFile
        camera.onvifEndpoint = device.endpoint
        // The first video source's sub stream (``StreamChooser`` rule 3), when its URI is known and its id fits.
        if let sub = device.streams.first(where: { $0.role == "sub" && $0.uri != nil })?.uri, sub != uri,
            id.subStream != nil
        {
            camera.subStream = SubStreamConfig(source: sub)
        }
        guard let text = try? String(contentsOfFile: configPath, encoding: .utf8) else {
            throw Failure(code: "adopt.io", message: "cannot read \(configPath)")
        }
        let updated = appending(camera, to: text)
        do {
            guard try ConfigLoader.parse(updated, file: configPath).camera(id) == camera else {
                throw Failure(code: "adopt.config", message: "the camera entry did not read back as written")
            }
        } catch let e as ConfigError {
            throw Failure(code: "adopt.config", message: "the configuration would not load with camera '\(id)': \(e)")
        }
        return (camera, updated)
    }

    /// One `cameras:` item for `camera`, its dash at `indent`.
    static func entry(_ camera: CameraConfig, indent: String) -> [String] {
        var out = [
            "\(indent)- id: \(camera.id.rawValue)", "\(indent)  name: \(quote(camera.name))",
            "\(indent)  source: \(quote(camera.source))",
        ]
        if let u = camera.username { out.append("\(indent)  username: \(quote(u))") }
        if let p = camera.passwordFile { out.append("\(indent)  passwordFile: \(quote(p))") }
        if let e = camera.onvifEndpoint { out.append("\(indent)  onvifEndpoint: \(quote(e))") }
        if let s = camera.subStream { out += ["\(indent)  subStream:", "\(indent)    source: \(quote(s.source))"] }
        return out
    }

    /// `text` with `camera` appended to its top-level `cameras:` list (created when missing).
    static func appending(_ camera: CameraConfig, to text: String) -> String {
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        guard let start = lines.firstIndex(where: { $0.hasPrefix("cameras:") }) else {
            return (lines + ["", "cameras:"] + entry(camera, indent: "  ")).joined(separator: "\n") + "\n"
        }
        let rest = lines[start].dropFirst("cameras:".count).trimmingCharacters(in: .whitespaces)
        if rest.hasPrefix("[]") { lines[start] = "cameras:" }
        var end = start  // last line of the list's content
        var indent = "  "
        var i = start + 1
        while i < lines.count {
            let l = lines[i]
            let trimmed = l.trimmingCharacters(in: .whitespaces)
            if !l.isEmpty, let c = l.first, c != " ", c != "-", c != "#", c != "\t" { break }  // next top-level key
            if !trimmed.isEmpty, !trimmed.hasPrefix("#") {
                if end == start, trimmed.hasPrefix("-") { indent = String(l.prefix { $0 == " " }) }
                end = i
            }
            i += 1
        }
        lines.insert(contentsOf: entry(camera, indent: indent), at: end + 1)
        return lines.joined(separator: "\n") + "\n"
    }

    /// A YAML double-quoted scalar (YAML 1.2 §7.3.1).
    static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where u.value < 0x20 || u.value == 0x7F: out += String(format: "\\x%02x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }

    static func replaceAtomically(_ path: String, with text: String) throws {
        let tmp = path + ".adopt-\(getpid())"
        var st = stat()
        let mode = stat(path, &st) == 0 ? st.st_mode & 0o7777 : 0o644
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(code: "adopt.io", message: "cannot write beside \(path)") }
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw Failure(code: "adopt.io", message: "cannot replace \(path)")
        }
    }
}
