// The RTSP side of the load generator: requests in, responses out (RFC 2326 / RFC 7826, the subset that
// ffmpeg, GStreamer and hallwatch-capture use for RTP over the RTSP connection).
import Foundation

/// One parsed RTSP request (RFC 2326 §6; RFC 7826 §8): request line and headers, body skipped.
struct RTSPRequest {
    var method: String
    var url: String
    /// Header names lowercased, values trimmed, in order.
    var headers: [(name: String, value: String)]
    var cseq: String? { header("cseq") }
    func header(_ name: String) -> String? { headers.first { $0.name == name }?.value }

    /// Bounds on what a client may send: the whole request (head and body) and the number of header lines.
    static let maxRequestBytes = 8 << 10
    static let maxHeaders = 64

    enum Parse {
        /// The request, and how many bytes of the input it took (head + body).
        case request(RTSPRequest, consumedBytes: Int)
        /// The head or body is not complete yet.
        case needMore
        /// A malformed or oversized request: answer with this status and close.
        case reject(status: Int)
    }

    /// Parses one request from the start of `bytes` (which do not start with an interleaved frame).
    static func parse(_ bytes: ArraySlice<UInt8>) -> Parse {
        guard let headEnd = endOfHead(bytes) else {
            return bytes.count >= maxRequestBytes ? .reject(status: 400) : .needMore
        }
        let lines = String(decoding: bytes[bytes.startIndex..<headEnd], as: UTF8.self).components(separatedBy: "\r\n")
        let requestLine = lines[0].split(separator: " ", omittingEmptySubsequences: true)
        guard requestLine.count == 3 else { return .reject(status: 400) }
        guard requestLine[2] == "RTSP/1.0" else { return .reject(status: 505) }
        guard lines.count - 1 <= maxHeaders else { return .reject(status: 400) }
        var headers: [(String, String)] = []
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { return .reject(status: 400) }
            headers.append(
                (
                    line[..<colon].lowercased().trimmingCharacters(in: .whitespaces),
                    line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                ))
        }
        let request = RTSPRequest(method: String(requestLine[0]), url: String(requestLine[1]), headers: headers)
        let bodyBytes = Int(request.header("content-length") ?? "0") ?? -1
        let total = headEnd + 4 - bytes.startIndex + max(bodyBytes, 0)
        guard bodyBytes >= 0, total <= maxRequestBytes else { return .reject(status: bodyBytes < 0 ? 400 : 413) }
        return bytes.count >= total ? .request(request, consumedBytes: total) : .needMore
    }

    /// Index of the blank line's `\r\n\r\n` ending the head, if present.
    private static func endOfHead(_ bytes: ArraySlice<UInt8>) -> Int? {
        var i = bytes.startIndex
        while i + 3 < bytes.endIndex {
            if bytes[i] == 13, bytes[i + 1] == 10, bytes[i + 2] == 13, bytes[i + 3] == 10 { return i }
            i += 1
        }
        return nil
    }

    /// The camera a URL names: `rtsp://host[:port]/cam<k>[/trackID=0][/]` → k, when k < `streams`. The
    /// `trackID=0` suffix is the SDP's `a=control` (SETUP uses it, PLAY by some clients).
    static func camera(in url: String, streams: Int) -> Int? {
        var rest = Substring(url)
        if let scheme = rest.range(of: "://") {
            rest = rest[scheme.upperBound...]
            rest = rest.drop { $0 != "/" }
        }
        if let query = rest.firstIndex(of: "?") { rest = rest[..<query] }
        let parts = rest.split(separator: "/")
        guard let first = parts.first, first.hasPrefix("cam"), let k = Int(first.dropFirst(3)),
            String(k) == first.dropFirst(3), k >= 0, k < streams
        else { return nil }
        guard parts.count == 1 || (parts.count == 2 && parts[1] == "trackID=0") else { return nil }
        return k
    }
}

/// An RTSP response (RFC 2326 §7), serialised with CSeq echoed and Content-Length for a body.
struct RTSPResponse {
    var status: Int
    var headers: [(String, String)] = []
    var body = ""

    static let reasons = [
        200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 413: "Request Entity Too Large",
        454: "Session Not Found", 455: "Method Not Valid in This State", 461: "Unsupported Transport",
        501: "Not Implemented", 505: "RTSP Version Not Supported",
    ]

    func bytes(cseq: String?) -> [UInt8] {
        var text = "RTSP/1.0 \(status) \(Self.reasons[status] ?? "Error")\r\n"
        if let cseq { text += "CSeq: \(cseq)\r\n" }
        text += "Server: hallwatch-loadgen\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        if !body.isEmpty { text += "Content-Length: \(body.utf8.count)\r\n" }
        return Array((text + "\r\n" + body).utf8)
    }
}

extension RTPTrack {
    /// The session description (RFC 8866) for DESCRIBE: one video medium, dynamic payload type 96,
    /// `a=control:trackID=0` relative to the Content-Base (RFC 7826 §18.31), and the codec's fmtp.
    func sdp(sessionID: UInt64) -> String {
        """
        v=0\r
        o=- \(sessionID) 1 IN IP4 127.0.0.1\r
        s=hallwatch-loadgen\r
        c=IN IP4 0.0.0.0\r
        t=0 0\r
        a=control:*\r
        a=range:npt=0-\r
        m=video 0 RTP/AVP \(Self.payloadType)\r
        a=rtpmap:\(Self.payloadType) \(encodingName)/90000\r
        a=fmtp:\(Self.payloadType) \(fmtp)\r
        a=control:trackID=0\r

        """
    }
}
