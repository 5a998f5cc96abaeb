import Foundation
import HallwatchCore
import Logging

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// ONVIF credentials for one device. The password never appears in ``description``, logs or the bus.
public struct ONVIFCredentials: Sendable, Equatable, CustomStringConvertible {
    /// The ONVIF user name (not secret).
    public var username: String
    /// The password (secret): read from a password file, never logged.
    public var password: String
    /// Credentials for every device.
    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }
    /// `ONVIFCredentials(username, password redacted)`: never the password.
    public var description: String { "ONVIFCredentials(\(username), password redacted)" }
}

/// How a device accepted (or refused) our requests.
public enum AuthState: String, Sendable, Equatable, Codable {
    /// No authenticated operation got an answer (the device is unreachable, or failed before).
    case unknown
    /// Every request answered without credentials.
    case notRequired
    /// Authenticated with a WS-UsernameToken (ONVIF Core §5.12.2).
    case usernameToken
    /// Authenticated with HTTP Digest (RFC 7616).
    case digest
    /// The device wants credentials and none are configured.
    case credentialsMissing
    /// The configured credentials were refused (also after re-reading the clock).
    case failed
}

/// One stream the box could record: a chosen profile and its URI.
public struct DescribedStream: Sendable, Equatable, Codable {
    /// `main` or `sub` (``StreamChooser``).
    public var role: String
    /// `VideoSourceConfiguration/SourceToken` of the profile (`""` when none).
    public var videoSourceToken: String
    /// The profile the stream comes from.
    public var profile: MediaProfile
    /// The stream URI (no credentials; host rewritten when link-local), or `nil` when GetStreamUri failed.
    public var uri: StreamURI?
}

/// Everything the agent learned about a device over HTTP (issue 5 §2–3).
public struct DeviceDescription: Sendable, Equatable {
    /// The device service URL that answered (after any host rewrite).
    public var deviceXAddr: String
    /// The host actually reached (IPv4 literal or name from the XAddr).
    public var reachedHost: String
    /// Camera clock minus box clock; zero when the device gave no time.
    public var clockOffset: ClockOffset
    /// How the device accepted our requests.
    public var auth: AuthState
    /// GetDeviceInformation, `nil` when it failed.
    public var information: DeviceInformation?
    /// Every profile from GetProfiles, in reply order.
    public var profiles: [MediaProfile]
    /// Main and sub stream per video source, in source order.
    public var streams: [DescribedStream]
    /// Tokens of profiles whose encoder was incomplete (``StreamChooser``).
    public var undetermined: [String]
    /// Whether media service 2 was used (H.265 reported there).
    public var usedMedia2: Bool
    /// The media service URL that GetProfiles and GetStreamUri went to (after any host rewrite).
    public var mediaXAddr: String? = nil
    /// What went wrong, when the description is partial (`auth` failed, a service unreachable…).
    public var error: ONVIFError?
}

/// The ONVIF device and media service conversation with one device, as issue 5 §2–3 prescribes.
///
/// Steps:
/// 1. `GetSystemDateAndTime` without credentials (ONVIF Core §8.3.2, which every device must answer so);
///    offset = camera UTC − box UTC at the midpoint of the exchange. A device that refuses it is asked again
///    with credentials (strict devices skip their time check for this one call); failing that, its HTTP
///    `Date` header (RFC 9110 §6.6.1) gives the offset, else zero.
/// 2. Every other request carries a WS-UsernameToken (ONVIF Core §5.12.2) whose `Created` is box UTC +
///    offset. An HTTP 401 with a Digest challenge switches the device to HTTP Digest (RFC 7616 §3.3;
///    ONVIF Core §5.12.1), without the token. A refusal — HTTP 401/400/500 carrying `ter:NotAuthorized`
///    or a WS-Security failure code, or a 401 without a Digest challenge — re-reads the clock (step 1) and
///    retries once; a second refusal is ``AuthState/failed``.
/// 3. `GetDeviceInformation` (§8.3.7).
/// 4. `GetServices` (§8.1.2.2); on any non-authentication failure `GetCapabilities` (§8.1.2.1).
/// 5. `GetProfiles` on media service 2 when advertised (Media2 §5.2.2), else (or on failure) media 1.
/// 6. ``StreamChooser`` picks main/sub per source; `GetStreamUri` for each (Media §5.15.1).
/// 7. Host rewrite: a service XAddr or stream URI whose host is link-local (169.254/16, fe80::/10), or another
///    host that does not accept a TCP connection within 1 s, is rewritten to the host actually reached; a
///    device XAddr that cannot be reached at all is retried at the datagram's source address (`fallbackHost`).
///
/// Every reply is bounded by ``BoundedHTTPClient`` and ``XMLLimits/reply``; each request has `timeout`.
public struct DeviceDescriber: Sendable {
    /// The bounded HTTP client every request goes through.
    public let http: BoundedHTTPClient
    /// The ONVIF credentials, or `nil` to ask without.
    public let credentials: ONVIFCredentials?
    /// Timeout of each request.
    public let timeout: Duration
    /// Box UTC (for `wsu:Created`) and the monotonic clock.
    public let clocks: any Clocks
    /// Where problems are logged (never credentials).
    public let logger: Logger
    /// Most video sources whose streams are asked for (an NVR may have 64 channels).
    public static let maxSources = 16

    /// - Parameters:
    ///   - http: the bounded client (shared by every device).
    ///   - credentials: `nil` to ask without any (devices that need them give ``AuthState/credentialsMissing``).
    ///   - timeout: deadline of each HTTP request (default 4 s).
    public init(
        http: BoundedHTTPClient, credentials: ONVIFCredentials?, timeout: Duration = .seconds(4),
        clocks: any Clocks = SystemClocks(), logger: Logger
    ) {
        self.http = http
        self.credentials = credentials
        self.timeout = timeout
        self.clocks = clocks
        self.logger = logger
    }

    /// Per-device conversation state.
    final class Conversation: @unchecked Sendable {  // used by one task at a time
        var offset = ClockOffset.zero
        var auth: AuthState = .unknown
        var digest: DigestChallenge?
        var nonceCount = 0
        var reachedHost = ""
        var deviceURL: URL?
    }

    /// Describes the device at `xAddrs` (tried in order; link-local ones should come last, see
    /// ``DiscoveredEndpoint/preferredXAddrs``); `fallbackHost` is where its discovery datagram came from.
    /// Never throws: failures are in ``DeviceDescription/error`` (a device that answers nothing has
    /// `error.code == .unreachable`).
    public func describe(xAddrs: [String], fallbackHost: String?) async -> DeviceDescription {
        let c = Conversation()
        var candidates = xAddrs.compactMap { URL(string: $0) }
        if let fb = fallbackHost, let first = candidates.first, let re = Self.rewriting(first, host: fb),
            !candidates.contains(re)
        {
            candidates.append(re)
        }
        var description = DeviceDescription(
            deviceXAddr: xAddrs.first ?? "", reachedHost: "", clockOffset: .zero,
            auth: .unknown, information: nil, profiles: [], streams: [],
            undetermined: [], usedMedia2: false, error: nil)
        // 1. Clock, and find which XAddr answers.
        var device: URL?
        var lastError = ONVIFError(.unreachable, "no usable XAddr")
        for url in candidates.prefix(8) {
            do {
                try await readClock(url, c)
                device = url
                break
            } catch let e as ONVIFError {
                lastError = e
                if e.code != .unreachable {
                    device = url
                    break
                }  // it answered: keep it, even if oddly
            } catch { lastError = ONVIFError(.unreachable, "cancelled") }
        }
        guard let device else {
            description.error = lastError
            return description
        }
        c.reachedHost = device.host ?? ""
        c.deviceURL = device
        description.deviceXAddr = device.absoluteString
        description.reachedHost = c.reachedHost
        func finish(_ error: ONVIFError?) -> DeviceDescription {
            description.clockOffset = c.offset
            description.auth = c.auth
            description.error = error
            return description
        }
        do {
            // 3. Device information.
            description.information = try DeviceInformation.parse(try await call(.getDeviceInformation, device, c))
            // 4. Services.
            var media: URL?
            var media2: URL?
            do {
                let s = try Services.parse(try await call(.getServices(includeCapability: false), device, c))
                media = await s.mediaXAddr.asyncFlatMap { await fix($0, c) }
                media2 = await s.media2XAddr.asyncFlatMap { await fix($0, c) }
            } catch let e as ONVIFError where e.code != .notAuthorized {
                logger.debug(
                    "GetServices failed; trying GetCapabilities", metadata: ["error.code": "\(e.code.rawValue)"])
                let caps = try Capabilities.parse(try await call(.getCapabilities, device, c))
                media = await caps.mediaXAddr.asyncFlatMap { await fix($0, c) }
            }
            // 5. Profiles.
            var profiles: [MediaProfile] = []
            if let m2 = media2 {
                do {
                    profiles = try MediaProfile.parseList(try await call(.getProfiles2, m2, c))
                    description.usedMedia2 = true
                } catch let e as ONVIFError where e.code != .notAuthorized {
                    logger.debug(
                        "media 2 GetProfiles failed; using media 1", metadata: ["error.code": "\(e.code.rawValue)"])
                }
            }
            if !description.usedMedia2 {
                guard let m = media else { throw ONVIFError(.missingField, "the device names no media service") }
                profiles = try MediaProfile.parseList(try await call(.getProfiles, m, c))
            }
            description.profiles = profiles
            // 6. Streams.
            let mediaURL = description.usedMedia2 ? media2! : media!
            description.mediaXAddr = mediaURL.absoluteString
            for choice in StreamChooser.choose(profiles).prefix(Self.maxSources) {
                description.undetermined += choice.undetermined
                for (role, profile) in [("main", choice.main), ("sub", choice.sub)] {
                    guard let profile else { continue }
                    var uri: StreamURI?
                    do {
                        let req: ONVIFRequest =
                            description.usedMedia2
                            ? .getStreamUri2(profileToken: profile.token)
                            : .getStreamUri(profileToken: profile.token)
                        uri = try StreamURI.parse(try await call(req, mediaURL, c))
                        if let u = uri, let fixed = await fix(u.uri, c) { uri?.uri = fixed.absoluteString }
                    } catch let e as ONVIFError where e.code != .notAuthorized {
                        logger.info(
                            "GetStreamUri failed",
                            metadata: ["profile": "\(profile.token)", "error.code": "\(e.code.rawValue)"])
                    }
                    description.streams.append(
                        DescribedStream(
                            role: role, videoSourceToken: choice.videoSourceToken,
                            profile: profile, uri: uri))
                }
            }
            return finish(nil)
        } catch let e as ONVIFError {
            return finish(e)
        } catch {
            return finish(ONVIFError(.unreachable, "cancelled"))
        }
    }

    /// Re-asks one stream URI (for `InvalidAfterConnect` streams, issue 5 §3): GetSystemDateAndTime, then
    /// GetStreamUri on `mediaXAddr` for `profileToken`. Throws ``ONVIFError``.
    public func streamURI(deviceXAddr: String, mediaXAddr: String, profileToken: String, media2: Bool) async throws
        -> StreamURI
    {
        guard let device = URL(string: deviceXAddr), let media = URL(string: mediaXAddr) else {
            throw ONVIFError(.missingField, "not a URL")
        }
        let c = Conversation()
        c.reachedHost = device.host ?? ""
        c.deviceURL = device
        try await readClock(device, c)
        var uri = try StreamURI.parse(
            try await call(
                media2
                    ? .getStreamUri2(profileToken: profileToken)
                    : .getStreamUri(profileToken: profileToken), media, c))
        if let fixed = await fix(uri.uri, c) { uri.uri = fixed.absoluteString }
        return uri
    }

    // MARK: - steps

    /// Step 1: GetSystemDateAndTime without credentials (then with them, when refused); sets the offset.
    func readClock(_ url: URL, _ c: Conversation) async throws {
        let sent = clocks.utcNow()
        let reply = try await http.post(
            url, headers: headers(for: .getSystemDateAndTime),
            body: ONVIFRequest.getSystemDateAndTime.envelope(token: nil),
            timeout: timeout)
        let now = clocks.utcNow()
        // The reply's time was read somewhere between send and receive: take the midpoint.
        let mid = UTCMicros(sent.micros + (now.micros - sent.micros) / 2)
        if reply.status == 200, let t = try? SystemDateAndTime.parse(reply.body),
            let o = t.clockOffset(boxTimeAtReply: mid)
        {
            c.offset = o
            return
        }
        // Refused: a strict device (Axis, Vivotek) wants credentials even here, and must then skip its time
        // check (nobody could set Created right otherwise). Ask again with them (as onvif-zeep-async does).
        if reply.status != 200, credentials != nil,
            let body = try? await call(.getSystemDateAndTime, url, c, retryClock: false),
            let t = try? SystemDateAndTime.parse(body), let o = t.clockOffset(boxTimeAtReply: mid)
        {
            c.offset = o
            return
        }
        // Still nothing: the Date header, if any (whole seconds, RFC 9110 §5.6.7).
        if let date = reply.headers["date"].flatMap(Self.httpDate) {
            c.offset = ClockOffset(micros: date.micros - mid.micros)
            return
        }
        if reply.status == 200 { _ = try SystemDateAndTime.parse(reply.body) }  // throws the reason
        if reply.status != 401 && reply.status != 400 && reply.status != 500 {
            throw ONVIFError(.httpStatus, "GetSystemDateAndTime: HTTP \(reply.status)")
        }
    }

    /// One authenticated request; returns the 200 body. Implements step 2's switches and retry.
    func call(_ request: ONVIFRequest, _ url: URL, _ c: Conversation, retryClock: Bool = true) async throws -> Data {
        var retriedClock = !retryClock
        var retriedStale = false
        while true {
            var h = headers(for: request)
            var token: UsernameToken?
            if let cr = credentials {
                if let d = c.digest {
                    c.nonceCount += 1
                    h["Authorization"] = d.authorization(
                        method: "POST", uri: url.path.isEmpty ? "/" : url.path + (url.query.map { "?" + $0 } ?? ""),
                        username: cr.username, password: cr.password,
                        cnonce: Self.hexNonce(), nonceCount: c.nonceCount)
                } else {
                    token = UsernameToken(
                        username: cr.username, password: cr.password, nonce: UsernameToken.randomNonce(),
                        boxNow: clocks.utcNow(), clockOffset: c.offset)
                }
            }
            let reply = try await http.post(url, headers: h, body: request.envelope(token: token), timeout: timeout)
            if reply.status == 200 {
                if credentials != nil {
                    c.auth = c.digest != nil ? .digest : .usernameToken
                } else {
                    c.auth = .notRequired
                }
                return reply.body
            }
            // Is it an authentication refusal? From the status and the fault's codes, never its text.
            let fault = (try? SOAPEnvelope.parse(reply.body))?.fault
            let refused = reply.status == 401 || fault?.kind == .notAuthorized
            guard refused else {
                if let fault { throw fault.error }
                throw ONVIFError(.httpStatus, "\(request.actionName): HTTP \(reply.status)")
            }
            guard credentials != nil else {
                c.auth = .credentialsMissing
                throw ONVIFError(
                    .notAuthorized, "\(request.actionName): the device wants credentials and none are configured",
                    fault: fault)
            }
            if reply.status == 401,
                let challenge = DigestChallenge.parse(reply.headers["www-authenticate"].map { [$0] } ?? []).first
            {
                let first = c.digest == nil
                if first || (challenge.stale && !retriedStale) {
                    retriedStale = retriedStale || !first
                    c.digest = challenge
                    c.nonceCount = 0
                    continue
                }
            }
            if !retriedClock {
                // ONVIF devices refuse a Created outside their window with the same NotAuthorized: the clock may
                // have been set meanwhile (NTP sync after boot). Read it again and retry once.
                retriedClock = true
                if c.digest == nil, let device = c.deviceURL { try? await readClock(device, c) }
                continue
            }
            c.auth = .failed
            throw ONVIFError(.notAuthorized, "\(request.actionName): credentials refused", fault: fault)
        }
    }

    func headers(for request: ONVIFRequest) -> [String: String] {
        ["Content-Type": request.contentType, "Accept": "application/soap+xml, text/xml"]
    }

    /// Step 7: parses `text`, rewriting its host to the one reached when it is link-local, or when it is
    /// another IPv4 address that does not accept a TCP connection within 1 s (port 80/554 by default).
    func fix(_ text: String, _ c: Conversation) async -> URL? {
        guard let url = URL(string: text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        guard !c.reachedHost.isEmpty, let host = url.host, host != c.reachedHost else { return url }
        if DiscoveredEndpoint.isLinkLocal(urlString: url.absoluteString) {
            return Self.rewriting(url, host: c.reachedHost) ?? url
        }
        let port = UInt16(
            url.port ?? (url.scheme?.lowercased() == "rtsp" ? 554 : url.scheme?.lowercased() == "https" ? 443 : 80))
        let reachable = (try? await onOwnThread { tcpReachable(host: host, port: port) }) ?? false
        if !reachable, let re = Self.rewriting(url, host: c.reachedHost) {
            logger.info(
                "advertised host unreachable; using the address reached",
                metadata: ["host": "\(host)", "reached": "\(c.reachedHost)"])
            return re
        }
        return url
    }

    static func rewriting(_ url: URL, host: String) -> URL? {
        guard var c = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return nil }
        c.host = host
        return c.url
    }

    static func hexNonce() -> String { UsernameToken.randomNonce().map { String(format: "%02x", $0) }.joined() }

    /// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 9110 §5.6.7.
    static func httpDate(_ text: String) -> UTCMicros? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: text).map { UTCMicros(seconds: $0.timeIntervalSince1970) }
    }
}

extension ONVIFRequest {
    /// The operation's name for messages (`GetProfiles`).
    public var actionName: String { String(action.split(separator: "/").last ?? "") }
}

extension Optional {
    /// `flatMap` with an async transform.
    func asyncFlatMap<U>(_ transform: (Wrapped) async -> U?) async -> U? {
        guard let w = self else { return nil }
        return await transform(w)
    }
}
