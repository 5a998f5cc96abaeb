import Foundation
import Yams

/// The box's whole configuration: one YAML document, `/etc/hallwatch/hallwatch.yaml` in production.
///
/// Every key is documented where it is declared (type, default, range, secret or not); the commented
/// example at `Image/hallwatch.example.yaml` is the reference. Unknown keys and bad values are refused by
/// ``ConfigLoader`` with `file:line` and the expected form, all problems at once.
public struct HallwatchConfig: Codable, Sendable, Equatable {
    /// Box identifier used in bus topics (`hallwatch/v1/<box>/…`); same alphabet as a camera id. Required.
    public var box: String
    /// Building name shown to people. Default: the box id.
    public var building: String
    /// The message bus.
    public var bus: BusConfig
    /// The ring-buffer writer.
    public var recorder: RecorderConfig
    /// Defaults for every capture worker.
    public var capture: CaptureConfig
    /// The cameras to record, in display order. Ids must be unique.
    public var cameras: [CameraConfig]
    /// Retention defaults of the building (`retention:`; see ``RetentionConfig``).
    public var retention = RetentionConfig()
    /// The ONVIF discovery agent. Absent: the agent does not run.
    public var discovery: DiscoveryConfig? = nil

    /// Looks a camera up by id.
    public func camera(_ id: CameraID) -> CameraConfig? { cameras.first { $0.id == id } }
}

/// `bus:` — the MQTT broker (mosquitto) on a Unix socket.
public struct BusConfig: Codable, Sendable, Equatable {
    /// Path of the broker's Unix socket. Default `/run/hallwatch/bus.sock`. Not secret.
    public var socket: String = "/run/hallwatch/bus.sock"
    public init(socket: String = "/run/hallwatch/bus.sock") { self.socket = socket }
}

/// `recorder:` — where and how video is written.
public struct RecorderConfig: Codable, Sendable, Equatable {
    /// Path of the recorder's data-plane Unix socket that capture workers connect to.
    /// Default `/run/hallwatch/recorder.sock`.
    public var socket: String = "/run/hallwatch/recorder.sock"
    /// The recording disks, each a directory on its own filesystem. Default one disk, `disk0` at
    /// `/var/lib/hallwatch/disk0`. Names are unique, paths are unique.
    public var disks: [DiskConfig] = [DiskConfig(name: "disk0", path: "/var/lib/hallwatch/disk0")]
    /// How often written records are `fdatasync`ed and then indexed: the recovery point objective.
    /// Default `1s`, range 100ms–10s.
    public var fsyncCadence: Duration = .seconds(1)
    /// Size of each slot file in bytes. Default 64 MiB, range 1 MiB–4 GiB.
    public var slotSizeBytes: Int64 = 64 << 20
    /// Number of slot files created when the directory is initialised. Default 64, range 2–100 000.
    public var slotCount: Int = 64
    public init() {}

    /// Looks a disk up by name.
    public func disk(named name: String) -> DiskConfig? { disks.first { $0.name == name } }
}

/// `recorder.disks[]` — one recording disk.
public struct DiskConfig: Codable, Sendable, Equatable {
    /// Disk name used in bus topics (`…/storage/<name>`) and in `cameras[].disk`; same alphabet as a camera id.
    public var name: String
    /// The disk's directory (its mount point, or a directory on it). Initialised on first start when empty;
    /// a directory holding anything else is never formatted.
    public var path: String
    public init(name: String, path: String) {
        self.name = name
        self.path = path
    }
}

/// `capture:` — defaults for the capture workers.
public struct CaptureConfig: Codable, Sendable, Equatable {
    /// Longest fMP4 fragment; a longer GOP is split. Default `1s`, range 100ms–10s.
    public var maxFragmentDuration: Duration = .seconds(1)
    /// RTSP connect (and each socket read) timeout. Default `5s`, range 1s–60s.
    public var ioTimeout: Duration = .seconds(5)
    /// First reconnect delay; doubles per failure up to ``backoffMax``. Default `500ms`.
    public var backoffInitial: Duration = .milliseconds(500)
    /// Longest reconnect delay. Default `10s`.
    public var backoffMax: Duration = .seconds(10)
    public init() {}
}

/// `cameras[]` — one camera.
public struct CameraConfig: Codable, Sendable, Equatable {
    /// Unique camera id (see ``CameraID``). Required.
    public var id: CameraID
    /// Name shown to people. Default: the id.
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
    public enum Transport: String, Codable, Sendable, CaseIterable { case tcp, udp }

    public init(id: CameraID, source: String) {
        self.id = id
        self.name = id.rawValue
        self.source = source
    }
}

/// `discovery:` — the ONVIF discovery agent (`hallwatch-discovery`).
public struct DiscoveryConfig: Codable, Sendable, Equatable {
    /// Interfaces to probe and listen on: names (`eth1`) or this box's IPv4 addresses. Required, 1–16.
    /// Probes leave only by these (the outgoing interface is set explicitly, TTL 1). Not secret.
    public var interfaces: [String]
    /// Time between probe rounds. Default `60s`, range 5s–1h.
    public var period: Duration = .seconds(60)
    /// How long a round waits for answers. Default `2s`, range 500ms–10s.
    public var listen: Duration = .seconds(2)
    /// Rounds a device may miss before it is marked gone. Default 3, range 1–100.
    public var missedProbes: Int = 3
    /// Most devices tracked. Default 256, range 1–4096.
    public var maxDevices: Int = 256
    /// Timeout of each ONVIF HTTP request. Default `4s`, range 1s–30s.
    public var requestTimeout: Duration = .seconds(4)
    /// `manual` (default): `hallwatchctl camera adopt ID` adds a camera; `auto`: the agent adds every camera it
    /// describes with a recordable stream.
    public var adopt: Adopt = .manual
    /// ONVIF user name for every camera. Default none. Not secret.
    public var username: String?
    /// File whose first line is the ONVIF password (secret; never in the config, URIs, logs or the bus). It is
    /// also given to adopted cameras as their RTSP `passwordFile`. Default none.
    public var passwordFile: String?

    public enum Adopt: String, Codable, Sendable, CaseIterable { case manual, auto }
    public init(interfaces: [String]) { self.interfaces = interfaces }
}

/// A duration as written in YAML (`500ms`, `1s`, `30d`); see ``DurationText``.
struct ConfigDuration: Decodable {
    var value: Duration
    init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let d = DurationText.parse(text) else {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: decoder.codingPath,
                    debugDescription: "expected a duration such as 500ms, 1s, 5m, 2h or 30d, got \"\(text)\""))
        }
        value = d
    }
}

/// One problem found in a configuration file, with its place.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    /// File path as given to the loader.
    public var file: String
    /// 1-based line (0 when the place is unknown).
    public var line: Int
    /// What is wrong and what was expected.
    public var message: String
    public var description: String { "\(file):\(line): \(message)" }
}

/// A configuration that was refused; carries every problem found, not just the first.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    /// Stable error code for logs and the bus: `config.invalid` or `config.unreadable`.
    public var code: String
    public var diagnostics: [ConfigDiagnostic]
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Reads and schema-checks ``HallwatchConfig`` documents.
public enum ConfigLoader {
    /// Reads the file at `path`.
    /// - Throws: ``ConfigError`` with code `config.unreadable` if it cannot be read, `config.invalid` with a
    ///   diagnostic per problem (unknown key, missing key, wrong type, out-of-range value) otherwise.
    public static func load(path: String) throws -> HallwatchConfig {
        func unreadable(_ why: String) -> ConfigError {
            ConfigError(code: "config.unreadable", diagnostics: [.init(file: path, line: 0, message: why)])
        }
        guard FileManager.default.fileExists(atPath: path) else { throw unreadable("no such file") }
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber,
            size.intValue > maxBytes
        {
            throw ConfigError(
                code: "config.invalid",
                diagnostics: [.init(file: path, line: 0, message: "the file is larger than \(maxBytes) bytes")])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw unreadable("cannot read the file (permissions?)")
        }
        guard let text = String(data: data, encoding: .utf8), !text.contains("\0") else {
            throw ConfigError(
                code: "config.invalid",
                diagnostics: [.init(file: path, line: 0, message: "not a text file (expected UTF-8 YAML)")])
        }
        return try parse(text, file: path)
    }

    /// The largest document accepted, in bytes (inputs are bounded: a USB drop could hold anything).
    public static let maxBytes = 1 << 20

    /// Parses `text` (named `file` in diagnostics). Same errors as ``load(path:)``.
    public static func parse(_ text: String, file: String = "hallwatch.yaml") throws -> HallwatchConfig {
        func fail(_ line: Int, _ message: String) -> ConfigError {
            ConfigError(code: "config.invalid", diagnostics: [.init(file: file, line: line, message: message)])
        }
        guard text.utf8.count <= maxBytes else { throw fail(0, "the file is larger than \(maxBytes) bytes") }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw fail(1, "the document is empty; expected a mapping with box, recorder and cameras")
            }
            root = node
        } catch let e as ConfigError { throw e } catch let e as YamlError {
            throw fail(yamlErrorLine(e), "not valid YAML: \(yamlErrorText(e))")
        } catch { throw fail(0, "not valid YAML: \(error)") }

        var problems: [ConfigDiagnostic] = []
        ConfigSchema.root.check(root, path: [], file: file, into: &problems)
        if problems.isEmpty {
            do {
                let config = try YAMLDecoder().decode(RawConfig.self, from: root).resolved()
                problems += config.validate(file: file, root: root)
                if problems.isEmpty { return config }
            } catch let e as DecodingError {
                let (path, message) = describe(e)
                problems.append(.init(file: file, line: line(of: path, in: root), message: message))
            }
        }
        throw ConfigError(code: "config.invalid", diagnostics: problems)
    }

    static func yamlErrorLine(_ e: YamlError) -> Int {
        switch e {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return 0
        }
    }

    /// libyaml's problem in one line, without the echo of the document Yams adds.
    static func yamlErrorText(_ e: YamlError) -> String {
        switch e {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _),
            .composer(let context, let problem, _, _):
            return [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ": ")
        default: return "\(e)".split(separator: "\n").first.map(String.init) ?? "syntax error"
        }
    }

    static func describe(_ e: DecodingError) -> ([any CodingKey], String) {
        let place: ([any CodingKey]) -> String = { path in
            path.isEmpty
                ? "document" : path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch e {
        case .typeMismatch(let type, let ctx):
            return (ctx.codingPath, "\(place(ctx.codingPath)): expected \(typeName(type))")
        case .valueNotFound(let type, let ctx):
            return (ctx.codingPath, "\(place(ctx.codingPath)): expected \(typeName(type)), found nothing")
        case .keyNotFound(let key, let ctx):
            return (ctx.codingPath, "\(place(ctx.codingPath + [key])): required key is missing")
        case .dataCorrupted(let ctx): return (ctx.codingPath, "\(place(ctx.codingPath)): \(ctx.debugDescription)")
        @unknown default: return ([], "\(e)")
        }
    }

    static func typeName(_ t: Any.Type) -> String {
        switch t {
        case is Bool.Type: return "true or false"
        case is Int.Type, is Int64.Type: return "an integer"
        case is Double.Type: return "a number"
        case is String.Type: return "a string"
        default: return "\(t)"
        }
    }

    /// The 1-based line of the node at `path`, or of its nearest existing parent.
    static func line(of path: [any CodingKey], in root: Node) -> Int {
        var node = root
        for key in path {
            if let i = key.intValue, let seq = node.sequence, i < seq.count {
                node = seq[i]
                continue
            }
            if let map = node.mapping, let next = map[key.stringValue] {
                node = next
                continue
            }
            break
        }
        return node.mark?.line ?? 0
    }
}

/// What the schema allows where: mappings with known (and required) keys, sequences, and typed scalars.
///
/// The schema walk checks every key and every scalar's form and range before anything is decoded, so all
/// problems in a file are reported at once, each at its line; decoding afterwards cannot fail on types.
indirect enum ConfigSchema: Sendable {
    case mapping([String: ConfigSchema], required: Set<String> = [])
    case sequence(ConfigSchema, maxCount: Int)
    case scalar(Scalar)

    /// The form of one value.
    enum Scalar: Sendable {
        case text(maxBytes: Int)
        case bool
        case integer(ClosedRange<Int64>, multipleOf: Int64)
        case duration(min: Duration, max: Duration)
        case oneOf([String])
        case identifier
        case rtspURL
        case path
    }

    static let camera: ConfigSchema = .mapping(
        [
            "id": .scalar(.identifier), "name": .scalar(.text(maxBytes: 200)), "source": .scalar(.rtspURL),
            "transport": .scalar(.oneOf(CameraConfig.Transport.allCases.map(\.rawValue))), "audio": .scalar(.bool),
            "username": .scalar(.text(maxBytes: 128)), "passwordFile": .scalar(.path), "disk": .scalar(.identifier),
            "onvifEndpoint": .scalar(.text(maxBytes: 256)), "retention": cameraRetention,
        ], required: ["id", "source"])
    static let disk: ConfigSchema = .mapping(
        ["name": .scalar(.identifier), "path": .scalar(.path)], required: ["name", "path"])
    static let discovery: ConfigSchema = .mapping(
        [
            "interfaces": .sequence(.scalar(.text(maxBytes: 64)), maxCount: 16),
            "period": .scalar(.duration(min: .seconds(5), max: .seconds(3600))),
            "listen": .scalar(.duration(min: .milliseconds(500), max: .seconds(10))),
            "missedProbes": .scalar(.integer(1...100, multipleOf: 1)),
            "maxDevices": .scalar(.integer(1...4096, multipleOf: 1)),
            "requestTimeout": .scalar(.duration(min: .seconds(1), max: .seconds(30))),
            "adopt": .scalar(.oneOf(DiscoveryConfig.Adopt.allCases.map(\.rawValue))),
            "username": .scalar(.text(maxBytes: 128)), "passwordFile": .scalar(.path),
        ], required: ["interfaces"])
    static let root: ConfigSchema = .mapping(
        [
            "box": .scalar(.identifier), "building": .scalar(.text(maxBytes: 200)),
            "bus": .mapping(["socket": .scalar(.path)]),
            "recorder": .mapping([
                "socket": .scalar(.path), "disks": .sequence(disk, maxCount: 16),
                "fsyncCadence": .scalar(.duration(min: .milliseconds(100), max: .seconds(10))),
                "slotSizeBytes": .scalar(.integer(1 << 20...4 << 30, multipleOf: 4096)),
                "slotCount": .scalar(.integer(2...100_000, multipleOf: 1)),
            ]),
            "capture": .mapping([
                "maxFragmentDuration": .scalar(.duration(min: .milliseconds(100), max: .seconds(10))),
                "ioTimeout": .scalar(.duration(min: .seconds(1), max: .seconds(60))),
                "backoffInitial": .scalar(.duration(min: .milliseconds(50), max: .seconds(300))),
                "backoffMax": .scalar(.duration(min: .milliseconds(50), max: .seconds(300))),
            ]),
            "cameras": .sequence(camera, maxCount: 1000),
            "retention": retention,
            "discovery": discovery,
        ], required: ["box"])

    func check(_ node: Node, path: [String], file: String, into problems: inout [ConfigDiagnostic]) {
        let line = node.mark?.line ?? 0
        let here = path.isEmpty ? "document" : path.joined(separator: ".")
        func problem(_ message: String, at l: Int? = nil) {
            problems.append(.init(file: file, line: l ?? line, message: message))
        }
        switch (self, node) {
        case (.mapping(let keys, let required), .mapping(let map)):
            var seen = Set<String>()
            for (k, v) in map {
                guard let name = k.string else { continue }
                seen.insert(name)
                if let sub = keys[name] {
                    sub.check(v, path: path + [name], file: file, into: &problems)
                } else {
                    problem(
                        "unknown key '\(name)' in \(here); expected one of: \(keys.keys.sorted().joined(separator: ", "))",
                        at: k.mark?.line)
                }
            }
            for key in required.subtracting(seen).sorted() {
                problem("\((path + [key]).joined(separator: ".")): required key is missing")
            }
        case (.sequence(let element, let maxCount), .sequence(let seq)):
            if seq.count > maxCount { problem("\(here): at most \(maxCount) entries, found \(seq.count)") }
            for (i, v) in seq.prefix(maxCount).enumerated() {
                element.check(v, path: path + ["[\(i)]"], file: file, into: &problems)
            }
        case (.scalar(let kind), .scalar(let scalar)):
            if let message = kind.problem(with: scalar.string) { problem("\(here): \(message)") }
        case (.mapping, _): problem("\(here): expected a mapping of keys")
        case (.sequence, _): problem("\(here): expected a list")
        case (.scalar, _): problem("\(here): expected a single value, not a list or mapping")
        }
    }
}

extension ConfigSchema.Scalar {
    /// What is wrong with `text` for this form, or `nil` when it fits.
    func problem(with text: String) -> String? {
        switch self {
        case .text(let maxBytes):
            return text.utf8.count <= maxBytes ? nil : "expected at most \(maxBytes) bytes of text"
        case .bool:
            return ["true", "false"].contains(text.lowercased()) ? nil : "expected true or false, got \"\(text)\""
        case .integer(let range, let multiple):
            guard let v = Int64(text) else { return "expected an integer, got \"\(text)\"" }
            guard range.contains(v) else { return "expected \(range.lowerBound) to \(range.upperBound), got \(v)" }
            return v % multiple == 0 ? nil : "expected a multiple of \(multiple), got \(v)"
        case .duration(let min, let max):
            guard let d = DurationText.parse(text) else {
                return "expected a duration such as 500ms, 1s, 5m, 2h or 30d, got \"\(text)\""
            }
            return d >= min && d <= max
                ? nil : "expected \(DurationText.format(min)) to \(DurationText.format(max)), got \(text)"
        case .oneOf(let choices):
            return choices.contains(text) ? nil : "expected one of \(choices.joined(separator: ", ")), got \"\(text)\""
        case .identifier:
            return CameraID.isValid(text)
                ? nil : "expected 1-32 characters a-z, 0-9, '-' or '_' (not starting with '-' or '_'), got \"\(text)\""
        case .rtspURL:
            guard let url = URLComponents(string: text), url.scheme?.lowercased() == "rtsp", !(url.host ?? "").isEmpty
            else {
                return "expected an rtsp://host[:port]/path URL, got \"\(text)\""
            }
            guard url.user == nil && url.password == nil else {
                return "credentials do not belong in the URL (they would appear in logs); use username and passwordFile"
            }
            guard !text.contains(where: { $0.isWhitespace || $0.isNewline }) else {
                return "expected a URL without spaces or line breaks, got \"\(text)\""
            }
            if let port = url.port, !(1...65_535).contains(port) { return "port \(port) is outside 1-65535" }
            // Some cameras take credentials in the query (`?user=…&password=…`): just as secret.
            let secretKeys: Set<String> = ["password", "passwd", "pass", "pwd"]
            if (url.queryItems ?? []).contains(where: { secretKeys.contains($0.name.lowercased()) }) {
                return
                    "a password does not belong in the URL's query (it would appear in logs); use username and passwordFile"
            }
            return nil
        case .path:
            guard !text.isEmpty, text.utf8.count <= 4096, !text.contains("\0") else { return "expected a file path" }
            return nil
        }
    }
}

/// The document as written, with optional keys, before defaults are applied.
struct RawConfig: Decodable {
    var box: String
    var building: String?
    var bus: RawBus?
    var recorder: RawRecorder?
    var capture: RawCapture?
    var cameras: [RawCamera]?
    var retention: RawRetention?
    var discovery: RawDiscovery?
    struct RawDiscovery: Decodable {
        var interfaces: [String]
        var period: ConfigDuration?
        var listen: ConfigDuration?
        var missedProbes: Int?
        var maxDevices: Int?
        var requestTimeout: ConfigDuration?
        var adopt: DiscoveryConfig.Adopt?
        var username: String?
        var passwordFile: String?
        func resolved() -> DiscoveryConfig {
            var d = DiscoveryConfig(interfaces: interfaces)
            if let v = period { d.period = v.value }
            if let v = listen { d.listen = v.value }
            if let v = missedProbes { d.missedProbes = v }
            if let v = maxDevices { d.maxDevices = v }
            if let v = requestTimeout { d.requestTimeout = v.value }
            if let v = adopt { d.adopt = v }
            d.username = username
            d.passwordFile = passwordFile
            return d
        }
    }
    struct RawBus: Decodable { var socket: String? }
    struct RawRecorder: Decodable {
        var socket: String?
        var disks: [DiskConfig]?
        var fsyncCadence: ConfigDuration?
        var slotSizeBytes: Int64?
        var slotCount: Int?
    }
    struct RawCapture: Decodable {
        var maxFragmentDuration: ConfigDuration?
        var ioTimeout: ConfigDuration?
        var backoffInitial: ConfigDuration?
        var backoffMax: ConfigDuration?
    }
    struct RawCamera: Decodable {
        var id: CameraID
        var name: String?
        var source: String
        var transport: CameraConfig.Transport?
        var audio: Bool?
        var username: String?
        var passwordFile: String?
        var disk: String?
        var onvifEndpoint: String?
        var retention: RawCameraRetention?
    }

    func resolved() -> HallwatchConfig {
        var r = RecorderConfig()
        if let v = recorder?.socket { r.socket = v }
        if let v = recorder?.disks { r.disks = v }
        if let v = recorder?.fsyncCadence { r.fsyncCadence = v.value }
        if let v = recorder?.slotSizeBytes { r.slotSizeBytes = v }
        if let v = recorder?.slotCount { r.slotCount = v }
        var c = CaptureConfig()
        if let v = capture?.maxFragmentDuration { c.maxFragmentDuration = v.value }
        if let v = capture?.ioTimeout { c.ioTimeout = v.value }
        if let v = capture?.backoffInitial { c.backoffInitial = v.value }
        if let v = capture?.backoffMax { c.backoffMax = v.value }
        let cams = (cameras ?? []).map { raw -> CameraConfig in
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
        var config = HallwatchConfig(
            box: box, building: building ?? box, bus: BusConfig(socket: bus?.socket ?? BusConfig().socket),
            recorder: r, capture: c, cameras: cams, discovery: discovery?.resolved())
        config.retention = retention?.resolved() ?? RetentionConfig()
        return config
    }
}

extension HallwatchConfig {
    /// Range and consistency checks the types alone cannot express.
    func validate(file: String, root: Node) -> [ConfigDiagnostic] {
        var out: [ConfigDiagnostic] = []
        func at(_ path: [String]) -> Int {
            var node = root
            for k in path {
                if k.hasPrefix("["), let i = Int(k.dropFirst().dropLast()), let s = node.sequence, i < s.count {
                    node = s[i]
                } else if let m = node.mapping, let n = m[k] {
                    node = n
                } else {
                    break
                }
            }
            return node.mark?.line ?? 0
        }
        func need(_ ok: Bool, _ path: [String], _ message: String) {
            if !ok {
                out.append(.init(file: file, line: at(path), message: "\(path.joined(separator: ".")): \(message)"))
            }
        }
        need(
            capture.backoffInitial <= capture.backoffMax, ["capture", "backoffInitial"],
            "expected at most backoffMax (\(DurationText.format(capture.backoffMax)))")
        need(!recorder.disks.isEmpty, ["recorder", "disks"], "expected at least one disk")
        var names = Set<String>()
        var paths = Set<String>()
        for (i, d) in recorder.disks.enumerated() {
            need(
                names.insert(d.name).inserted, ["recorder", "disks", "[\(i)]", "name"],
                "duplicate disk name '\(d.name)'")
            let canonical = URL(fileURLWithPath: d.path).standardizedFileURL.path
            need(
                paths.insert(canonical).inserted, ["recorder", "disks", "[\(i)]", "path"],
                "disk path '\(d.path)' is listed twice")
        }
        for (i, cam) in cameras.enumerated() {
            guard let d = cam.disk else { continue }
            need(
                names.contains(d), ["cameras", "[\(i)]", "disk"],
                "no disk named '\(d)' in recorder.disks (have: \(recorder.disks.map(\.name).joined(separator: ", ")))")
        }
        if let d = discovery {
            need(
                !d.interfaces.isEmpty, ["discovery", "interfaces"],
                "expected at least one interface name or IPv4 address")
            need(
                (d.username == nil) == (d.passwordFile == nil),
                ["discovery", d.username == nil ? "passwordFile" : "username"],
                "username and passwordFile go together")
        }
        var seen = Set<CameraID>()
        for (i, cam) in cameras.enumerated() {
            need(seen.insert(cam.id).inserted, ["cameras", "[\(i)]", "id"], "duplicate camera id '\(cam.id)'")
        }
        validateRetention(need: need)
        return out
    }
}
