import Crypto
import Foundation
import HallwatchCore

/// A WS-Security UsernameToken with a password digest (WS-Security UsernameToken Profile 1.0 §3.1;
/// ONVIF Core §5.12.2 requires it of every device):
///
///     PasswordDigest = Base64( SHA-1( nonce + created + password ) )
///
/// where `nonce` is the raw nonce bytes (sent Base64-encoded), `created` the `wsu:Created` text, and the
/// password its UTF-8 bytes. Devices reject a `Created` too far from their own clock, so `Created` is the
/// box's UTC corrected by the camera's ``ClockOffset`` from GetSystemDateAndTime (ONVIF Core §5.12.2, and
/// the time-check faults Dahua NVRs send otherwise).
///
/// The password is not kept; ``description`` shows neither it nor the digest.
public struct UsernameToken: Sendable, Equatable, CustomStringConvertible {
    /// The ONVIF user name.
    public var username: String
    /// Base64 of SHA-1(nonce + created + password).
    public var passwordDigest: String
    /// The nonce, Base64-encoded as sent in `wsse:Nonce`.
    public var nonceBase64: String
    /// `wsu:Created`, `YYYY-MM-DDTHH:MM:SSZ` in the camera's clock.
    public var created: String

    /// The digest for raw `nonce` bytes, `created` text and `password`.
    public static func passwordDigest(nonce: [UInt8], created: String, password: String) -> String {
        var sha = Insecure.SHA1()
        sha.update(data: nonce)
        sha.update(data: Array(created.utf8))
        sha.update(data: Array(password.utf8))
        return Data(sha.finalize()).base64EncodedString()
    }

    /// A token for one request. `nonce` should be 16 random bytes (tests pass fixed ones); `boxNow` is the
    /// box's UTC now, shifted by `clockOffset` into the camera's clock.
    public init(username: String, password: String, nonce: [UInt8], boxNow: UTCMicros, clockOffset: ClockOffset) {
        let created = Self.createdText(clockOffset.cameraTime(atBox: boxNow))
        self.username = username
        self.nonceBase64 = Data(nonce).base64EncodedString()
        self.created = created
        self.passwordDigest = Self.passwordDigest(nonce: nonce, created: created, password: password)
    }

    /// 16 random bytes from the system generator.
    public static func randomNonce() -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &g) }
    }

    /// Whole seconds, UTC, `Z` suffix: the form every device accepts.
    static func createdText(_ t: UTCMicros) -> String {
        let iso = ISO8601.format(t)  // YYYY-MM-DDTHH:MM:SS.mmmZ
        return String(iso.prefix(19)) + "Z"
    }

    /// The `wsse:Security` SOAP header block carrying the token.
    public var securityHeaderXML: String {
        """
        <wsse:Security xmlns:wsse="\(NS.wsse)" xmlns:wsu="\(NS.wsu)" s:mustUnderstand="1">\
        <wsse:UsernameToken><wsse:Username>\(xmlEscaped(username))</wsse:Username>\
        <wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest">\
        \(passwordDigest)</wsse:Password>\
        <wsse:Nonce EncodingType="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary">\
        \(nonceBase64)</wsse:Nonce>\
        <wsu:Created>\(created)</wsu:Created></wsse:UsernameToken></wsse:Security>
        """
    }

    /// The user name and `wsu:Created`; never the password or its digest.
    public var description: String { "UsernameToken(\(username), created \(created))" }
}

/// Escapes `&`, `<`, `>`, `"` and `'` for XML text and attribute values.
func xmlEscaped(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for ch in s {
        switch ch {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&apos;"
        default: out.append(ch)
        }
    }
    return out
}
