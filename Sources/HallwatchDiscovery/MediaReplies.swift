import Foundation

/// A video encoding as ONVIF names it (`tt:VideoEncoding`, plus H.265 as media service 2 and many
/// version-1 devices report it).
public enum VideoEncoding: Sendable, Equatable, Hashable, Codable {
    case h264, h265, jpeg, mpeg4
    /// Any other value, as sent.
    case other(String)

    /// Reads `H264`, `H.264`, `H265`, `H.265`, `HEVC`, `JPEG`, `MJPEG`, `MPEG4` in any case.
    public init(_ text: String) {
        switch text.uppercased().replacingOccurrences(of: ".", with: "") {
        case "H264", "AVC": self = .h264
        case "H265", "HEVC": self = .h265
        case "JPEG", "MJPEG": self = .jpeg
        case "MPEG4", "MP4V-ES": self = .mpeg4
        default: self = .other(text)
        }
    }

    /// H.264 or H.265: what the capture worker records.
    public var isRecordable: Bool { self == .h264 || self == .h265 }
}

/// A resolution in pixels.
public struct PixelSize: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    /// Width in pixels.
    public var width: Int
    /// Height in pixels.
    public var height: Int
    /// A size of `width` × `height` pixels.
    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }
    /// Width × height.
    public var pixels: Int { width * height }
    /// `WIDTHxHEIGHT`.
    public var description: String { "\(width)x\(height)" }
}

/// `tt:VideoEncoderConfiguration` of a profile. Every field may be missing (some NVRs send only a name and
/// a use count).
public struct VideoEncoderConfiguration: Sendable, Equatable, Codable {
    /// The configuration's token.
    public var token: String?
    /// Its display name.
    public var name: String?
    /// The encoding (`H264`, `H265`, `JPEG`, …).
    public var encoding: VideoEncoding?
    /// The encoded picture size.
    public var resolution: PixelSize?
    /// Frame-rate limit, frames per second.
    public var frameRateLimit: Double?
    /// `RateControl/BitrateLimit`, kbit/s.
    public var bitrateLimitKbps: Int?
    /// `H264/GovLength`.
    public var govLength: Int?
}

/// One media profile from `GetProfilesResponse` (ONVIF Media Service Spec §5.2.1).
public struct MediaProfile: Sendable, Equatable, Codable {
    /// The profile token, passed to GetStreamUri.
    public var token: String
    /// Display name. Never used to choose a stream (vendors name them freely).
    public var name: String?
    /// `fixed="true"`: the profile cannot be deleted (informative only).
    public var fixed: Bool?
    /// `VideoSourceConfiguration/SourceToken`: the physical input (an NVR has one per channel).
    public var videoSourceToken: String?
    /// `VideoSourceConfiguration/Bounds` size.
    public var sourceBounds: PixelSize?
    /// `nil` when the profile has no video encoder (it cannot be streamed as video).
    public var videoEncoder: VideoEncoderConfiguration?

    /// Parses a media service 1 (`trt:GetProfilesResponse`, Media Service Spec §5.2.1) or media service 2
    /// (`tr2:GetProfilesResponse`, Media2 Service Spec §5.2.2, where H.265 is reported) reply; throws
    /// ``ONVIFError``. Profiles without a token are left out.
    public static func parseList(_ data: Data, limits: XMLLimits = .reply) throws -> [MediaProfile] {
        let r = try SOAPEnvelope.parse(data, limits: limits).response([NS.media, NS.media2], "GetProfilesResponse")
        let t = NS.schema
        // Media 1: tt:VideoSourceConfiguration / tt:VideoEncoderConfiguration directly in the profile.
        // Media 2: tr2:Configurations/tr2:VideoSource and tr2:Configurations/tr2:VideoEncoder, whose
        // children are still tt: elements; GovLength is an attribute there.
        let isMedia2 = r.name.namespace == NS.media2
        return r.children(r.name.namespace, "Profiles").compactMap { p in
            guard let token = p.attributes["token"]?.trimmingCharacters(in: .whitespaces), !token.isEmpty else {
                return nil
            }
            let configurations = p.child(NS.media2, "Configurations")
            let vs = isMedia2 ? configurations?.child(NS.media2, "VideoSource") : p.child(t, "VideoSourceConfiguration")
            let ve =
                isMedia2 ? configurations?.child(NS.media2, "VideoEncoder") : p.child(t, "VideoEncoderConfiguration")
            let bounds = vs?.child(t, "Bounds").flatMap { b -> PixelSize? in
                guard let w = b.attributes["width"].flatMap({ Int($0) }),
                    let h = b.attributes["height"].flatMap({ Int($0) }),
                    w > 0, h > 0
                else { return nil }
                return PixelSize(width: w, height: h)
            }
            let encoder = ve.map { v in
                VideoEncoderConfiguration(
                    token: v.attributes["token"], name: v.childText(t, "Name"),
                    encoding: v.childText(t, "Encoding").map(VideoEncoding.init),
                    resolution: v.child(t, "Resolution").flatMap { r -> PixelSize? in
                        guard let w = r.childText(t, "Width").flatMap({ Int($0) }),
                            let h = r.childText(t, "Height").flatMap({ Int($0) }), w > 0, h > 0
                        else { return nil }
                        return PixelSize(width: w, height: h)
                    },
                    frameRateLimit: v.child(t, "RateControl")?.childText(t, "FrameRateLimit").flatMap { Double($0) },
                    bitrateLimitKbps: v.child(t, "RateControl")?.childText(t, "BitrateLimit").flatMap { Int($0) },
                    govLength: (v.child(t, "H264")?.childText(t, "GovLength") ?? v.attributes["GovLength"]).flatMap {
                        Int($0)
                    })
            }
            let name = isMedia2 ? p.childText(NS.media2, "Name") : p.childText(t, "Name")
            return MediaProfile(
                token: token, name: name, fixed: p.attributes["fixed"].flatMap(parseBool),
                videoSourceToken: vs?.childText(t, "SourceToken") ?? vs?.attributes["token"],
                sourceBounds: bounds, videoEncoder: encoder)
        }
    }
}

/// `GetStreamUriResponse` (ONVIF Media Service Spec §5.15.1; media 2 `GetStreamUri` too).
public struct StreamURI: Sendable, Equatable, Codable {
    /// The URI with XML entities replaced (`&amp;` → `&`), surrounding whitespace and any `user:password@`
    /// removed.
    public var uri: String
    /// When `true`, the URI is good for one connection only: ask again before each (issue 5 §3).
    public var invalidAfterConnect: Bool
    /// When `true`, the URI stops working when the device reboots.
    public var invalidAfterReboot: Bool
    /// `Timeout` as an `xs:duration` (`PT60S`), in seconds; `nil` when missing or not understood.
    public var timeoutSeconds: Double?

    /// The URI's port, or 554 (RFC 2326 §3.2) for an `rtsp` URI without one.
    public var port: Int? {
        guard let c = URLComponents(string: uri) else { return nil }
        if let p = c.port { return p }
        return c.scheme?.lowercased() == "rtsp" ? 554 : nil
    }

    /// Parses a reply; throws ``ONVIFError`` (`onvif.missingField` without a usable `Uri`).
    public static func parse(_ data: Data, limits: XMLLimits = .reply) throws -> StreamURI {
        let env = try SOAPEnvelope.parse(data, limits: limits)
        let r = try env.response([NS.media, NS.media2], "GetStreamUriResponse")
        let t = NS.schema
        // Media 1: MediaUri/tt:Uri with the flags beside it. Media 2: tr2:Uri directly.
        let mediaUri = r.child(NS.media, "MediaUri")
        guard let raw = mediaUri?.childText(t, "Uri") ?? r.childText(NS.media2, "Uri"),
            var c = URLComponents(string: raw), c.scheme != nil, c.host?.isEmpty == false
        else {
            throw ONVIFError(.missingField, "GetStreamUriResponse without a usable Uri")
        }
        // Credentials never travel in URIs (issue 5 §3): a camera that embeds them gets them removed here;
        // the capture worker authenticates from the password file.
        var uri = raw
        if c.user != nil || c.password != nil {
            c.user = nil
            c.password = nil
            uri = c.string ?? raw
        }
        return StreamURI(
            uri: uri,
            invalidAfterConnect: mediaUri?.childText(t, "InvalidAfterConnect").flatMap(parseBool) ?? false,
            invalidAfterReboot: mediaUri?.childText(t, "InvalidAfterReboot").flatMap(parseBool) ?? false,
            timeoutSeconds: mediaUri?.childText(t, "Timeout").flatMap(parseXSDuration))
    }
}

/// Parses the time part of an `xs:duration` (`PT0S`, `PT60S`, `PT1M30.5S`, `P1DT2H`); `nil` otherwise.
/// Years and months are refused (they have no fixed length).
func parseXSDuration(_ text: String) -> Double? {
    var s = Substring(text.trimmingCharacters(in: .whitespaces))
    guard s.first == "P" else { return nil }
    s = s.dropFirst()
    var total = 0.0
    var number = ""
    var inTime = false
    var any = false
    for ch in s {
        if ch == "T" {
            guard !inTime, number.isEmpty else { return nil }
            inTime = true
            continue
        }
        if ch.isNumber || ch == "." {
            number.append(ch)
            continue
        }
        guard let v = Double(number) else { return nil }
        number = ""
        any = true
        switch (ch, inTime) {
        case ("D", false): total += v * 86_400
        case ("H", true): total += v * 3_600
        case ("M", true): total += v * 60
        case ("S", true): total += v
        default: return nil
        }
    }
    return number.isEmpty && any ? total : nil
}
