import Foundation
import HallwatchConfig
import HallwatchCore
import Yams

// The `web:`, `users:` and `cameraGroups:` sections. Until the configuration library (`HallwatchConfig`, one
// file per section) lands they live here, read by ``WebConfigLoader`` from their own file
// (`/etc/hallwatch/web.yaml`); each type is written to move there as a section file unchanged.

/// `web:` — the box's own web page.
public struct WebConfig: Sendable, Equatable {
    /// Addresses the HTTPS server listens on. Default `[0.0.0.0]`. Each an IPv4 or IPv6 literal.
    public var listen: [String] = ["0.0.0.0"]
    /// HTTPS port. Default 443, range 1–65535.
    public var httpsPort: Int = 443
    /// Optional plain-HTTP port that only answers `308 Permanent Redirect` to HTTPS. Default none.
    public var httpRedirectPort: Int? = nil
    /// The web's own state: TLS key and certificate, SQLite database (sessions, audit log), audit file.
    /// Default `/var/lib/hallwatch-web`. Not secret itself; what it holds is.
    public var stateDirectory: String = "/var/lib/hallwatch-web"
    /// Extra names for the self-signed certificate besides the host name (DNS names or IP literals), e.g.
    /// the box's address on the district network. Default none. At most 16.
    public var certificateNames: [String] = []
    /// A session ends after this long without a request. Default `15m`, range 1m–12h.
    public var sessionIdleTimeout: Duration = .seconds(15 * 60)
    /// A session ends this long after login, however active. Default `12h`, range 5m–7d.
    public var sessionLifetime: Duration = .seconds(12 * 3600)
    /// File holding the bearer token `/metrics` requires (one line, 32–256 characters). Secret: readable by
    /// `hallwatch-web` only. Default none: `/metrics` refuses everyone.
    public var metricsTokenFile: String? = nil
    /// File holding the bearer token a dispatch system uses to make responder links
    /// (`POST /api/v1/responder-links`; one line, 32–256 characters). Secret. Default none: only building and
    /// district admins make links.
    public var dispatchTokenFile: String? = nil
    /// The building's time zone, an IANA name (`America/New_York`): pages show times in it, with UTC one hover
    /// away; everything stored and exported stays UTC. Default `UTC`. Checked against the box's tz database.
    public var timeZone: String = "UTC"
    public init() {}
}

/// The three roles (issue 13): each includes the one before it.
public enum Role: String, Sendable, Codable, CaseIterable, Comparable {
    /// Sees its cameras: status, live, playback.
    case viewer
    /// Also exports, holds, event sources, responder links, the audit log.
    case buildingAdmin = "building-admin"
    /// Everything, including the configuration view and the users list.
    case districtAdmin = "district-admin"

    var rank: Int { Role.allCases.firstIndex(of: self)! }
    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
}

/// `users[]` — one person who may sign in. There is no default user: a box without one shows how to add one.
public struct UserConfig: Sendable, Equatable {
    /// Sign-in name: 1–64 characters of `a-z 0-9 . _ -`. Unique.
    public var name: String
    /// Name shown on the page and in the audit log beside ``name``. Default: ``name``. At most 128 characters.
    public var displayName: String
    /// bcrypt hash (`$2b$…`) printed by `hallwatchctl user hash`. Secret (an offline guess target): the file
    /// is readable only by root and `hallwatch-web`.
    public var passwordHash: String
    /// The user's role.
    public var role: Role
    /// Camera groups this user is limited to (names in `cameraGroups:`). Absent or empty: every camera.
    public var cameraGroups: [String]
    public init(name: String, displayName: String? = nil, passwordHash: String, role: Role, cameraGroups: [String] = [])
    {
        self.name = name
        self.displayName = displayName ?? name
        self.passwordHash = passwordHash
        self.role = role
        self.cameraGroups = cameraGroups
    }
}

/// The whole web file: `web:`, `users:`, `cameraGroups:`.
public struct WebSettings: Sendable, Equatable {
    /// `web:`.
    public var web = WebConfig()
    /// Everyone who may sign in, in file order.
    public var users: [UserConfig] = []
    /// `cameraGroups:` — group name → camera ids, e.g. `parking: [lot-north, lot-south]`.
    public var cameraGroups: [String: [CameraID]] = [:]
    public init(web: WebConfig = WebConfig(), users: [UserConfig] = [], cameraGroups: [String: [CameraID]] = [:]) {
        self.web = web
        self.users = users
        self.cameraGroups = cameraGroups
    }

    /// Looks a user up by sign-in name.
    public func user(named name: String) -> UserConfig? { users.first { $0.name == name } }

    /// The cameras `user` may see, or `nil` for every camera (no groups named).
    public func visibleCameras(for user: UserConfig) -> Set<CameraID>? {
        guard !user.cameraGroups.isEmpty else { return nil }
        return Set(user.cameraGroups.flatMap { cameraGroups[$0] ?? [] })
    }
}

/// Reads the web file strictly: unknown keys, wrong types and out-of-range values are refused with
/// `file:line:` diagnostics, all at once (``WebConfigError``, code `config.invalid` or `config.unreadable`).
public enum WebConfigLoader {
    /// Largest file accepted, in bytes.
    public static let maxBytes = 256 << 10
    /// Most users accepted (bounded input).
    public static let maxUsers = 1000

    /// Reads `path`. A missing file is an empty configuration (no users: the page says how to add one).
    public static func load(path: String) throws -> WebSettings {
        guard FileManager.default.fileExists(atPath: path) else { return WebSettings() }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WebConfigError(
                code: "config.unreadable", diagnostics: [.init(file: path, line: 0, message: "cannot read the file")])
        }
        guard data.count <= maxBytes, let text = String(data: data, encoding: .utf8) else {
            throw WebConfigError(
                code: "config.invalid",
                diagnostics: [.init(file: path, line: 0, message: "not UTF-8 text of at most \(maxBytes) bytes")])
        }
        return try parse(text, file: path)
    }

    /// Parses `text` (called `file` in diagnostics).
    public static func parse(_ text: String, file: String = "web.yaml") throws -> WebSettings {
        var problems: [WebConfigError.Diagnostic] = []
        func problem(_ node: Node?, _ message: String) {
            problems.append(.init(file: file, line: node.map { $0.mark?.line ?? 0 } ?? 0, message: message))
        }
        guard text.utf8.count <= maxBytes else {
            throw WebConfigError(
                code: "config.invalid",
                diagnostics: [.init(file: file, line: 0, message: "larger than \(maxBytes) bytes")])
        }
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw WebConfigError(
                code: "config.invalid", diagnostics: [.init(file: file, line: 0, message: "not valid YAML: \(error)")])
        }
        var settings = WebSettings()
        guard let root else { return settings }
        guard let top = root.mapping else {
            throw WebConfigError(
                code: "config.invalid",
                diagnostics: [.init(file: file, line: 1, message: "expected a mapping with web, users, cameraGroups")])
        }
        func keys(_ m: Node.Mapping, allowed: Set<String>, in place: String) {
            for (k, _) in m where !allowed.contains(k.string ?? "") {
                problem(
                    k,
                    "unknown key '\(k.string ?? "?")' in \(place); expected one of: \(allowed.sorted().joined(separator: ", "))"
                )
            }
        }
        func string(_ n: Node, _ what: String, maxLength: Int = 256) -> String? {
            guard let s = n.scalar?.string, !s.isEmpty, s.count <= maxLength else {
                problem(n, "\(what): expected a string of 1–\(maxLength) characters")
                return nil
            }
            return s
        }
        func int(_ n: Node, _ what: String, _ range: ClosedRange<Int>) -> Int? {
            guard let v = n.int, range.contains(v) else {
                problem(n, "\(what): expected an integer in \(range.lowerBound)–\(range.upperBound)")
                return nil
            }
            return v
        }
        func duration(_ n: Node, _ what: String, _ range: ClosedRange<Duration>) -> Duration? {
            guard let s = n.scalar?.string, let d = DurationText.parse(s), range.contains(d) else {
                problem(n, "\(what): expected a duration such as 15m or 12h in \(range.lowerBound)–\(range.upperBound)")
                return nil
            }
            return d
        }
        func strings(_ n: Node, _ what: String, max: Int, check: (String) -> Bool = { _ in true }) -> [String] {
            guard let seq = n.sequence, seq.count <= max else {
                problem(n, "\(what): expected a list of at most \(max) strings")
                return []
            }
            return seq.compactMap { item in
                guard let s = item.scalar?.string, check(s) else {
                    problem(item, "\(what): '\(item.scalar?.string ?? "?")' is not valid")
                    return nil
                }
                return s
            }
        }
        keys(top, allowed: ["web", "users", "cameraGroups"], in: "the web file")

        if let w = top["web"] {
            if let m = w.mapping {
                keys(
                    m,
                    allowed: [
                        "listen", "httpsPort", "httpRedirectPort", "stateDirectory", "certificateNames",
                        "sessionIdleTimeout", "sessionLifetime", "metricsTokenFile", "timeZone", "dispatchTokenFile",
                    ], in: "web")
                if let n = m["listen"] {
                    settings.web.listen = strings(n, "web.listen", max: 8) { IPAddressText.bytes($0) != nil }
                }
                if let n = m["httpsPort"], let v = int(n, "web.httpsPort", 1...65535) { settings.web.httpsPort = v }
                if let n = m["httpRedirectPort"], let v = int(n, "web.httpRedirectPort", 1...65535) {
                    settings.web.httpRedirectPort = v
                }
                if let n = m["stateDirectory"], let v = string(n, "web.stateDirectory", maxLength: 1024) {
                    if v.hasPrefix("/") {
                        settings.web.stateDirectory = v
                    } else {
                        problem(n, "web.stateDirectory: expected an absolute path")
                    }
                }
                if let n = m["certificateNames"] {
                    settings.web.certificateNames = strings(n, "web.certificateNames", max: 16) {
                        !$0.isEmpty && $0.count <= 253
                            && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || ".-:".contains($0)) }
                    }
                }
                if let n = m["sessionIdleTimeout"],
                    let d = duration(n, "web.sessionIdleTimeout", .seconds(60)...(.seconds(12 * 3600)))
                {
                    settings.web.sessionIdleTimeout = d
                }
                if let n = m["metricsTokenFile"], let v = string(n, "web.metricsTokenFile", maxLength: 1024) {
                    if v.hasPrefix("/") {
                        settings.web.metricsTokenFile = v
                    } else {
                        problem(n, "web.metricsTokenFile: expected an absolute path")
                    }
                }
                if let n = m["dispatchTokenFile"], let v = string(n, "web.dispatchTokenFile", maxLength: 1024) {
                    if v.hasPrefix("/") {
                        settings.web.dispatchTokenFile = v
                    } else {
                        problem(n, "web.dispatchTokenFile: expected an absolute path")
                    }
                }
                if let n = m["timeZone"], let v = string(n, "web.timeZone", maxLength: 64) {
                    if BuildingTime(identifier: v) != nil {
                        settings.web.timeZone = v
                    } else {
                        problem(n, "web.timeZone: '\(v)' is not an IANA time zone such as America/New_York or UTC")
                    }
                }
                if let n = m["sessionLifetime"],
                    let d = duration(n, "web.sessionLifetime", .seconds(300)...(.seconds(7 * 86400)))
                {
                    settings.web.sessionLifetime = d
                }
            } else {
                problem(w, "web: expected a mapping")
            }
        }

        if let g = top["cameraGroups"] {
            if let m = g.mapping {
                for (k, v) in m {
                    guard let name = k.string, UserName.isValid(name) else {
                        problem(k, "cameraGroups: a group name is 1–64 characters of a-z 0-9 . _ -")
                        continue
                    }
                    settings.cameraGroups[name] = strings(v, "cameraGroups.\(name)", max: 1000) {
                        CameraID.isValid($0)
                    }.compactMap(CameraID.init)
                }
            } else {
                problem(g, "cameraGroups: expected a mapping of group name to camera ids")
            }
        }

        if let u = top["users"] {
            if let seq = u.sequence, seq.count <= maxUsers {
                var seen = Set<String>()
                for item in seq {
                    guard let m = item.mapping else {
                        problem(item, "users: each user is a mapping")
                        continue
                    }
                    keys(m, allowed: ["name", "displayName", "passwordHash", "role", "cameraGroups"], in: "a user")
                    guard let nameNode = m["name"], let name = string(nameNode, "users[].name", maxLength: 64)
                    else {
                        if m["name"] == nil { problem(item, "users[]: 'name' is required") }
                        continue
                    }
                    guard UserName.isValid(name) else {
                        problem(nameNode, "users[].name: 1–64 characters of a-z 0-9 . _ -")
                        continue
                    }
                    if !seen.insert(name).inserted { problem(nameNode, "users[].name: '\(name)' appears twice") }
                    let display = m["displayName"].flatMap { string($0, "users[].displayName", maxLength: 128) }
                    guard let hashNode = m["passwordHash"] else {
                        problem(item, "user '\(name)': 'passwordHash' is required (from `hallwatchctl user hash`)")
                        continue
                    }
                    guard let hash = hashNode.scalar?.string, PasswordHashing.isBcryptHash(hash) else {
                        problem(
                            hashNode,
                            "user '\(name)': passwordHash is not a bcrypt hash ($2b$…); use `hallwatchctl user hash`")
                        continue
                    }
                    guard let roleNode = m["role"], let role = roleNode.scalar.flatMap({ Role(rawValue: $0.string) })
                    else {
                        problem(
                            m["role"] ?? item, "user '\(name)': role is one of viewer, building-admin, district-admin")
                        continue
                    }
                    let groups = m["cameraGroups"].map { strings($0, "users[].cameraGroups", max: 64) } ?? []
                    settings.users.append(
                        UserConfig(
                            name: name, displayName: display, passwordHash: hash, role: role, cameraGroups: groups))
                }
            } else {
                problem(u, "users: expected a list of at most \(maxUsers) users")
            }
        }
        for user in settings.users {
            for g in user.cameraGroups where settings.cameraGroups[g] == nil {
                problem(top["users"], "user '\(user.name)': no camera group '\(g)' in cameraGroups")
            }
        }
        if !problems.isEmpty { throw WebConfigError(code: "config.invalid", diagnostics: problems) }
        return settings
    }
}

/// A refused web file, with every problem found (the shape of HallwatchCore's `ConfigError`, whose
/// initialisers are internal to that module; the two merge when these sections move to the config library).
public struct WebConfigError: Error, CustomStringConvertible, Sendable {
    /// One problem and its place.
    public struct Diagnostic: Sendable, Equatable, CustomStringConvertible {
        public var file: String
        /// 1-based line (0 when unknown).
        public var line: Int
        public var message: String
        public var description: String { "\(file):\(line): \(message)" }
    }
    /// `config.invalid` or `config.unreadable`.
    public var code: String
    public var diagnostics: [Diagnostic]
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

extension WebConfig {
    /// Reads the token of ``metricsTokenFile`` (first line, trimmed).
    /// - Returns: `nil` when no file is configured.
    /// - Throws: ``WebConfigError`` (`config.unreadable`, `config.invalid`) when it cannot be read or is not
    ///   32–256 printable ASCII characters.
    public func metricsToken() throws -> String? { try Self.token(file: metricsTokenFile, what: "metrics") }

    /// Reads the token of ``dispatchTokenFile``, as ``metricsToken()``.
    public func dispatchToken() throws -> String? { try Self.token(file: dispatchTokenFile, what: "dispatch") }

    static func token(file: String?, what: String) throws -> String? {
        guard let path = file else { return nil }
        func fail(_ code: String, _ m: String) -> WebConfigError {
            WebConfigError(code: code, diagnostics: [.init(file: path, line: 0, message: m)])
        }
        guard let data = FileManager.default.contents(atPath: path), data.count <= 4096 else {
            throw fail("config.unreadable", "cannot read the \(what) token file (or it is over 4 KiB)")
        }
        let token =
            String(decoding: data, as: UTF8.self).split(separator: "\n").first.map {
                $0.trimmingCharacters(in: .whitespaces)
            } ?? ""
        guard (32...256).contains(token.count), token.allSatisfy({ $0.isASCII && !$0.isWhitespace && !$0.isNewline })
        else { throw fail("config.invalid", "the \(what) token is 32–256 printable ASCII characters") }
        return token
    }
}

/// User and group names: 1–64 characters of `a-z 0-9 . _ -`.
public enum UserName {
    /// Whether `s` is 1–64 bytes of `a-z 0-9 . _ -`.
    public static func isValid(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= 64
            && s.utf8.allSatisfy {
                (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
            }
    }
}

/// IP address literals as bytes (4 or 16), through `inet_pton`.
public enum IPAddressText {
    /// The address's network-order bytes, or `nil` when `text` is not an IPv4 or IPv6 literal.
    public static func bytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}
