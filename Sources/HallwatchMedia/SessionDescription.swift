import Foundation
import HallwatchCore

/// The video media of a camera's SDP (RFC 8866), as Hallwatch's RTSP client needs it: which payload
/// format, where to SETUP it, and the out-of-band parameter sets.
///
/// Of the `m=video` sections with an RTP profile (RFC 8866 §5.14) the first H.264 or H.265 one is taken
/// (a camera may offer MJPEG first); audio and other media are skipped. Parameter sets come from `sprop-parameter-sets` (H.264, RFC 6184 §8.1) or `sprop-vps`,
/// `sprop-sps`, `sprop-pps` (H.265, RFC 7798 §7.1); a camera that leaves them out is recorded from the first
/// in-band set.
public struct VideoMediaDescription: Sendable, Equatable {
    /// RTP payload type (0–127, RFC 3550 §5.1).
    public var payloadType: UInt8
    /// The encoding name of `a=rtpmap` (`H264`, `H265`), or the static payload type's name (`JPEG` for 26).
    public var encoding: String
    /// The codec when it is one Hallwatch stores, else `nil`.
    public var codec: VideoCodec?
    /// RTP clock rate, Hz (90 000 for video).
    public var clockRate: Int
    /// The media's `a=control` attribute, unresolved (`trackID=1`, an absolute URL, or `*`); `nil` when absent.
    public var control: String?
    /// The session-level `a=control`, unresolved.
    public var sessionControl: String?
    /// Parameter sets from the `fmtp` line, each a NAL unit without start code (VPS, SPS, PPS order for H.265).
    public var parameterSets: [[UInt8]]

    /// Longest SDP read (a camera's reply is hostile input): 64 KiB.
    public static let maxBytes = 64 << 10
    /// Most parameter sets taken from one `fmtp` line, and longest one (bytes).
    static let maxParameterSets = 16, maxParameterSetBytes = 4096

    /// Reads the RTP video media sections of `sdp` and returns the first one Hallwatch can store (H.264,
    /// H.265), else the first one (whose ``codec`` is then `nil`, so the caller can name it).
    /// - Throws: ``MediaError`` `rtsp.garbage` when the text is not SDP (no `v=0`, too long, a malformed
    ///   `m=` line); `media.noVideo` when it holds no RTP video section.
    public static func parse(_ sdp: String) throws -> VideoMediaDescription {
        guard sdp.utf8.count <= maxBytes else {
            throw MediaError("rtsp.garbage", "the SDP is larger than \(maxBytes) bytes")
        }
        let lines = sdp.split(omittingEmptySubsequences: true) { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard lines.first == "v=0" else {
            throw MediaError("rtsp.garbage", "the DESCRIBE reply is not SDP (no v=0 line)")
        }
        var sessionControl: String?
        var sections: [VideoMediaDescription] = []
        var inVideo = false
        var inSession = true
        for line in lines {
            if line.hasPrefix("m=") {
                inSession = false
                // m=<media> <port>[/<n>] <proto> <fmt> ...
                let f = line.dropFirst(2).split(separator: " ")
                guard f.count >= 4, let port = f[1].split(separator: "/").first, Int(port) != nil else {
                    throw MediaError("rtsp.garbage", "malformed SDP media line: \(Self.printable(line))")
                }
                inVideo = f[0] == "video" && f[2].hasPrefix("RTP/")
                if inVideo {
                    guard let pt = UInt8(f[3]), pt < 128 else {
                        throw MediaError("rtsp.garbage", "bad RTP payload type in \(Self.printable(line))")
                    }
                    sections.append(
                        VideoMediaDescription(
                            payloadType: pt, encoding: Self.staticNames[pt] ?? "", codec: nil, clockRate: 90_000,
                            control: nil, sessionControl: nil, parameterSets: []))
                }
                continue
            }
            guard line.hasPrefix("a=") else { continue }
            let attr = line.dropFirst(2)
            let (key, value) =
                attr.firstIndex(of: ":").map { (attr[..<$0], attr[attr.index(after: $0)...]) } ?? (attr, "")
            if inSession, key == "control" {
                sessionControl = String(value)
                continue
            }
            guard inVideo, var m = sections.popLast() else { continue }
            switch key {
            case "control": m.control = String(value)
            case "rtpmap":
                // a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]
                let f = value.split(separator: " ", maxSplits: 1)
                if f.count == 2, UInt8(f[0]) == m.payloadType, let name = f[1].split(separator: "/").first {
                    let enc = f[1].split(separator: "/")
                    m.encoding = String(name)
                    if enc.count > 1, let rate = Int(enc[1]), rate > 0, rate <= 1_000_000 { m.clockRate = rate }
                }
            case "fmtp":
                let f = value.split(separator: " ", maxSplits: 1)
                if f.count == 2, UInt8(f[0]) == m.payloadType {
                    m.parameterSets = Self.parameterSets(fmtp: String(f[1]))
                }
            default: break
            }
            sections.append(m)
        }
        for i in sections.indices {
            sections[i].sessionControl = sessionControl
            switch sections[i].encoding.uppercased() {
            case "H264": sections[i].codec = .h264
            case "H265", "HEVC": sections[i].codec = .hevc
            default: sections[i].codec = nil
            }
        }
        guard let chosen = sections.first(where: { $0.codec != nil }) ?? sections.first else {
            throw MediaError("media.noVideo", "the camera's SDP has no RTP video section")
        }
        return chosen
    }

    /// The codec's name as people know it, for `media.unsupportedCodec` (`mjpeg` for JPEG, RFC 2435).
    public var encodingDisplayName: String {
        switch encoding.uppercased() {
        case "JPEG": return "mjpeg"
        case "MP4V-ES": return "mpeg4"
        case "H263", "H263-1998", "H263-2000": return "h263"
        case "": return "payload type \(payloadType)"
        default: return encoding.lowercased()
        }
    }

    /// The RTSP URL to SETUP for this media (RFC 2326 §C.1.1): an absolute `a=control` as is, else resolved
    /// against `base` (Content-Base, Content-Location or the DESCRIBE URL); `*` or no control means `base`.
    public func setupURL(base: String) -> String { Self.resolve(control: control, base: base) }

    /// The URL to PLAY the session with (RFC 2326 §C.1.1, aggregate control): the session-level
    /// `a=control` resolved like a media's, else `base`.
    public func playURL(base: String) -> String { Self.resolve(control: sessionControl, base: base) }

    static func resolve(control: String?, base: String) -> String {
        guard let c = control, !c.isEmpty, c != "*" else { return base }
        if c.lowercased().hasPrefix("rtsp://") || c.lowercased().hasPrefix("rtsps://") { return c }
        return base.hasSuffix("/") ? base + c : base + "/" + c
    }

    /// Names of the static video payload types of RFC 3551 §6 that cameras send.
    static let staticNames: [UInt8: String] = [26: "JPEG", 31: "H261", 32: "MPV", 34: "H263"]

    /// Decodes the base64 parameter sets of an `fmtp` value (`k=v; k=v`), bounded in count and size.
    static func parameterSets(fmtp: String) -> [[UInt8]] {
        var byKey: [String: [[UInt8]]] = [:]
        for pair in fmtp.split(separator: ";") {
            let kv = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2 else { continue }
            let key = kv[0].lowercased()
            guard ["sprop-parameter-sets", "sprop-vps", "sprop-sps", "sprop-pps"].contains(key) else { continue }
            byKey[key] = kv[1].split(separator: ",").prefix(maxParameterSets).compactMap { b64 -> [UInt8]? in
                guard b64.utf8.count <= maxParameterSetBytes * 2, let d = Data(base64Encoded: Self.padded(String(b64))),
                    !d.isEmpty
                else { return nil }
                return Array(d)
            }
        }
        return (byKey["sprop-parameter-sets"] ?? []) + (byKey["sprop-vps"] ?? []) + (byKey["sprop-sps"] ?? [])
            + (byKey["sprop-pps"] ?? [])
    }

    /// Base64 with its `=` padding restored (some cameras drop it).
    static func padded(_ s: String) -> String {
        let r = s.utf8.count % 4
        return r == 0 ? s : s + String(repeating: "=", count: 4 - r)
    }

    /// A line for an error message: at most 80 characters, control characters escaped.
    static func printable(_ s: String) -> String { HallwatchCore.printable(s, limit: 80) }
}
