import Crypto
import Foundation

/// HTTP Digest authentication (RFC 7616; RFC 2617 without `qop`): the fallback to WS-UsernameToken that
/// ONVIF Core §5.12.1 allows and many cameras require, and RTSP's own authentication (RFC 2326 §D.1, the
/// same scheme with the RTSP method and request URL).
public struct DigestChallenge: Sendable, Equatable {
    /// The digest algorithms understood (RFC 7616 §3.3), as they are spelled in the challenge.
    public enum Algorithm: String, Sendable, Equatable {
        case md5 = "MD5"
        case md5Session = "MD5-sess"
        case sha256 = "SHA-256"
        case sha256Session = "SHA-256-sess"
    }
    /// The protection space, quoted back in the response.
    public var realm: String
    /// The server's nonce, quoted back in the response.
    public var nonce: String
    /// Opaque data to return unchanged, if the server sent any.
    public var opaque: String?
    /// The hash algorithm asked for (MD5 when the challenge names none).
    public var algorithm: Algorithm
    /// The `qop` options offered; empty for an RFC 2069-style challenge.
    public var qop: [String]
    /// `stale=true`: the nonce expired, the credentials were right — retry with the new nonce.
    public var stale: Bool

    /// Longest `WWW-Authenticate` value read (a header is hostile input too).
    public static let maxHeaderBytes = 4096

    /// A challenge from its parts.
    public init(realm: String, nonce: String, opaque: String?, algorithm: Algorithm, qop: [String], stale: Bool) {
        self.realm = realm
        self.nonce = nonce
        self.opaque = opaque
        self.algorithm = algorithm
        self.qop = qop
        self.stale = stale
    }

    /// The Digest challenges in one or more `WWW-Authenticate` values, strongest algorithm first (SHA-256
    /// before MD5, RFC 7616 §3.7). Challenges of other schemes, unknown algorithms, and challenges without
    /// realm or nonce are left out.
    public static func parse(_ headerValues: [String]) -> [DigestChallenge] {
        var out: [DigestChallenge] = []
        for value in headerValues where value.utf8.count <= maxHeaderBytes {
            for (scheme, params) in challenges(value) where scheme.lowercased() == "digest" {
                guard let realm = params["realm"], let nonce = params["nonce"],
                    let alg = Algorithm(rawValue: params["algorithm"].map(canonicalAlgorithm) ?? "MD5")
                else { continue }
                let qop = (params["qop"] ?? "").split(separator: ",").map {
                    $0.trimmingCharacters(in: .whitespaces).lowercased()
                }
                .filter { !$0.isEmpty }
                out.append(
                    DigestChallenge(
                        realm: realm, nonce: nonce, opaque: params["opaque"], algorithm: alg, qop: qop,
                        stale: params["stale"]?.lowercased() == "true"))
            }
        }
        return out.enumerated().sorted { a, b in
            let sa = a.element.algorithm.rawValue.hasPrefix("SHA")
            let sb = b.element.algorithm.rawValue.hasPrefix("SHA")
            return sa != sb ? sa : a.offset < b.offset
        }.map(\.element)
    }

    /// The canonical spelling of an algorithm name (`md5-sess` → `MD5-sess`); unknown names are upper-cased.
    public static func canonicalAlgorithm(_ s: String) -> String {
        switch s.uppercased() {
        case "MD5": return "MD5"
        case "MD5-SESS": return "MD5-sess"
        case "SHA-256": return "SHA-256"
        case "SHA-256-SESS": return "SHA-256-sess"
        default: return s
        }
    }

    /// The `Authorization` header value for one request (RFC 7616 §3.4). Uses `qop=auth` when offered,
    /// the RFC 2069 form when no qop is offered. `cnonce` should be random; `nonceCount` counts requests
    /// made with this nonce, from 1.
    public func authorization(
        method: String, uri: String, username: String, password: String,
        cnonce: String, nonceCount: Int = 1
    ) -> String {
        let h: (String) -> String = { [algorithm] s in Self.hex(algorithm, s) }
        var ha1 = h("\(username):\(realm):\(password)")
        if algorithm == .md5Session || algorithm == .sha256Session { ha1 = h("\(ha1):\(nonce):\(cnonce)") }
        let ha2 = h("\(method):\(uri)")
        let nc = String(format: "%08x", nonceCount)
        let useQop = qop.contains("auth")
        let response = useQop ? h("\(ha1):\(nonce):\(nc):\(cnonce):auth:\(ha2)") : h("\(ha1):\(nonce):\(ha2)")
        var parts = [
            "username=\"\(Self.quotedValue(username))\"", "realm=\"\(Self.quotedValue(realm))\"",
            "nonce=\"\(Self.quotedValue(nonce))\"", "uri=\"\(Self.quotedValue(uri))\"",
            "algorithm=\(algorithm.rawValue)", "response=\"\(response)\"",
        ]
        if useQop { parts += ["qop=auth", "nc=\(nc)", "cnonce=\"\(Self.quotedValue(cnonce))\""] }
        if let opaque { parts.append("opaque=\"\(Self.quotedValue(opaque))\"") }
        return "Digest " + parts.joined(separator: ", ")
    }

    static func hex(_ algorithm: Algorithm, _ s: String) -> String {
        let bytes: [UInt8]
        switch algorithm {
        case .md5, .md5Session: bytes = Array(Insecure.MD5.hash(data: Array(s.utf8)))
        case .sha256, .sha256Session: bytes = Array(SHA256.hash(data: Array(s.utf8)))
        }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }

    static func quotedValue(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }

    /// Splits a header value into (scheme, parameters) challenges (RFC 7235 §4.1: a value may hold several
    /// challenges, each `scheme param=value, param="quoted, value"`).
    public static func challenges(_ value: String) -> [(String, [String: String])] {
        var result: [(String, [String: String])] = []
        let s = Array(value.unicodeScalars)
        var i = 0
        func skipSpaceAndCommas() { while i < s.count, s[i] == " " || s[i] == "\t" || s[i] == "," { i += 1 } }
        func token() -> String {
            var t = ""
            while i < s.count, !" \t,=\"".unicodeScalars.contains(s[i]) {
                t.unicodeScalars.append(s[i])
                i += 1
            }
            return t
        }
        while i < s.count {
            skipSpaceAndCommas()
            let scheme = token()
            guard !scheme.isEmpty else { break }
            var params: [String: String] = [:]
            while true {
                skipSpaceAndCommas()
                let save = i
                let key = token()
                while i < s.count, s[i] == " " { i += 1 }
                guard !key.isEmpty, i < s.count, s[i] == "=" else {
                    i = save
                    break
                }  // next challenge's scheme
                i += 1
                while i < s.count, s[i] == " " { i += 1 }
                var v = ""
                if i < s.count, s[i] == "\"" {
                    i += 1
                    while i < s.count, s[i] != "\"" {
                        if s[i] == "\\", i + 1 < s.count { i += 1 }
                        v.unicodeScalars.append(s[i])
                        i += 1
                    }
                    i += 1
                } else {
                    v = token()
                    while i < s.count, s[i] == "=" {
                        v += "="
                        i += 1
                    }  // token68-ish trailing '='
                }
                params[key.lowercased()] = v
            }
            result.append((scheme, params))
        }
        return result
    }
}
