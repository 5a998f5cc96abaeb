import Foundation
import HallwatchCore

/// Checking credentials on the device side: what the simulated camera (and any test peer) needs to verify
/// the requests this library builds. Kept beside the client code so both sides share one digest formula.
public enum ServerAuth {
    /// Why a request was not authenticated.
    public enum Failure: String, Sendable, Equatable {
        /// No credentials of the kind checked.
        case missing
        /// Wrong user name or digest.
        case wrongCredentials
        /// `Created` further from the device clock than the allowed skew (ONVIF Core §5.12.2).
        case timeCheck
        /// The header could not be read.
        case malformed
    }

    /// Verifies the `wsse:Security/wsse:UsernameToken` in a SOAP `header` (WS-Security UsernameToken Profile
    /// 1.0 §3.1, ONVIF Core §5.12.2) against `username`/`password`, with `Created` within `maxSkewSeconds` of
    /// `deviceNow` (the device's own clock). Returns `nil` when authenticated.
    public static func checkUsernameToken(
        header: ParsedXMLElement?, username: String, password: String,
        deviceNow: UTCMicros, maxSkewSeconds: Int64 = 5
    ) -> Failure? {
        guard let token = header?.child(NS.wsse, "Security")?.child(NS.wsse, "UsernameToken") else { return .missing }
        guard let user = token.child(NS.wsse, "Username")?.trimmedText,
            let digest = token.child(NS.wsse, "Password")?.trimmedText,
            let nonceText = token.child(NS.wsse, "Nonce")?.trimmedText, let nonce = Data(base64Encoded: nonceText),
            let created = token.child(NS.wsu, "Created")?.trimmedText
        else { return .malformed }
        guard user == username,
            UsernameToken.passwordDigest(nonce: Array(nonce), created: created, password: password) == digest
        else {
            return .wrongCredentials
        }
        guard let t = ISO8601.parse(created), abs(t.micros - deviceNow.micros) <= maxSkewSeconds * 1_000_000 else {
            return .timeCheck
        }
        return nil
    }

    /// Verifies an HTTP `Authorization: Digest …` value (RFC 7616 §3.4) for `method` against the nonce the
    /// device issued, `realm` and the credentials; MD5 and SHA-256, with `qop=auth` or without (RFC 2069).
    /// Returns `nil` when authenticated.
    public static func checkDigest(
        authorization: String?, method: String, realm: String, nonce: String,
        username: String, password: String
    ) -> Failure? {
        guard let value = authorization, value.utf8.count <= DigestChallenge.maxHeaderBytes else { return .missing }
        guard let (scheme, p) = DigestChallenge.challenges(value).first, scheme.lowercased() == "digest" else {
            return .missing
        }
        guard let user = p["username"], let uri = p["uri"], let response = p["response"], let gotNonce = p["nonce"],
            let algorithm = DigestChallenge.Algorithm(
                rawValue: DigestChallenge.canonicalAlgorithm(p["algorithm"] ?? "MD5"))
        else { return .malformed }
        guard user == username, gotNonce == nonce, p["realm"] == realm else { return .wrongCredentials }
        let challenge = DigestChallenge(
            realm: realm, nonce: nonce, opaque: p["opaque"], algorithm: algorithm,
            qop: p["qop"] == nil ? [] : ["auth"], stale: false)
        let nc = p["nc"].flatMap { Int($0, radix: 16) } ?? 1
        let expected = challenge.authorization(
            method: method, uri: uri, username: username, password: password,
            cnonce: p["cnonce"] ?? "", nonceCount: nc)
        guard let e = DigestChallenge.challenges(expected).first?.1["response"], e == response else {
            return .wrongCredentials
        }
        return nil
    }
}
