import Crypto
import Foundation
import HallwatchCore
import NIOSSL
import SwiftASN1
import X509

/// The box's TLS identity: an ECDSA P-256 key made on first start in the state directory (mode 0600; it never
/// leaves the box), and the certificate presented for it — until the district provides one, a self-signed
/// certificate whose names are the host name and the configured addresses (TLS 1.2/1.3, RFC 8446).
///
/// Steps of ``load(directory:names:now:)``:
/// 1. `tls.key` exists: read it. Otherwise make a key, write it to `tls.key.tmp` (0600), `fsync`, rename.
/// 2. `tls.crt` exists, is for this key, carries exactly `names` and is valid for 30 more days: use it.
///    Otherwise make a new self-signed certificate (valid 825 days, the longest Apple's platforms accept for a
///    TLS server certificate) and write it the same way (0644: it is public).
/// 3. The SHA-256 fingerprint of the certificate's DER is what a person compares with the browser's warning.
public struct TLSIdentity: Sendable {
    /// The private key's raw scalar (swift-crypto's key type is not `Sendable`).
    let keyRaw: Data
    /// The private key.
    public var key: P256.Signing.PrivateKey { try! P256.Signing.PrivateKey(rawRepresentation: keyRaw) }
    /// The certificate presented.
    public let certificate: Certificate
    /// Whether ``certificate`` is self-signed (made here).
    public let selfSigned: Bool

    /// SHA-256 of the certificate's DER, upper-case hex pairs joined by `:` (as browsers show it).
    public var fingerprintSHA256: String {
        var s = DER.Serializer()
        guard (try? s.serialize(certificate)) != nil else { return "" }
        return SHA256.hash(data: s.serializedBytes).map { String(format: "%02X", $0) }.joined(separator: ":")
    }

    /// The names for the certificate: the host name and `extra` (DNS names or IP literals), de-duplicated.
    public static func names(hostName: String, extra: [String]) -> [String] {
        var out: [String] = []
        for n in [hostName] + extra where !n.isEmpty && !out.contains(n) { out.append(n) }
        return out
    }

    /// Loads or makes the identity in `directory` (see the steps above).
    /// - Throws: `SystemError` for file errors, swift-certificates' errors for a corrupt key file (never
    ///   replaced silently: a key that changes under a district's certificate would break it).
    public static func load(directory: String, names: [String], now: Date) throws -> TLSIdentity {
        let keyPath = directory + "/tls.key"
        let certPath = directory + "/tls.crt"
        let key: P256.Signing.PrivateKey
        if FileManager.default.fileExists(atPath: keyPath) {
            // A key someone copied in with a wider mode is narrowed before it is used.
            guard chmod(keyPath, 0o600) == 0 else { throw SystemError("chmod", subject: keyPath) }
            key = try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOfFile: keyPath, encoding: .utf8))
        } else {
            key = P256.Signing.PrivateKey()
            try writeAtomically(key.pemRepresentation, to: keyPath, mode: 0o600)
        }
        if let text = try? String(contentsOfFile: certPath, encoding: .utf8),
            let existing = try? Certificate(pemEncoded: text),
            existing.publicKey == Certificate.PublicKey(key.publicKey),
            existing.notValidAfter > now.addingTimeInterval(30 * 86400)
        {
            let selfSigned = existing.issuer == existing.subject
            let sameNames =
                (try? existing.extensions.subjectAlternativeNames).flatMap { $0 }.map { Array($0) }
                == sanNames(names)
            if !selfSigned || sameNames {
                return TLSIdentity(keyRaw: key.rawRepresentation, certificate: existing, selfSigned: selfSigned)
            }
        }
        let certificate = try selfSignedCertificate(key: key, names: names, now: now)
        try writeAtomically(try certificate.serializeAsPEM().pemString, to: certPath, mode: 0o644)
        return TLSIdentity(keyRaw: key.rawRepresentation, certificate: certificate, selfSigned: true)
    }

    /// A self-signed server certificate for `key` naming `names` (first one also the common name).
    public static func selfSignedCertificate(key: P256.Signing.PrivateKey, names: [String], now: Date) throws
        -> Certificate
    {
        let subject = try DistinguishedName {
            OrganizationName("Hallwatch")
            CommonName(names.first ?? "hallwatch")
        }
        return try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(825 * 86400),
            issuer: subject, subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(sanNames(names))
            },
            issuerPrivateKey: .init(key))
    }

    /// Reads the key and certificate in `directory` as they are, changing nothing (`hallwatchctl web csr`).
    /// - Throws: file errors, or parse errors of either file.
    public static func read(directory: String) throws -> TLSIdentity {
        let key = try P256.Signing.PrivateKey(
            pemRepresentation: try String(contentsOfFile: directory + "/tls.key", encoding: .utf8))
        let certificate = try Certificate(
            pemEncoded: try String(contentsOfFile: directory + "/tls.crt", encoding: .utf8))
        return TLSIdentity(
            keyRaw: key.rawRepresentation, certificate: certificate,
            selfSigned: certificate.issuer == certificate.subject)
    }

    /// A PKCS #10 certificate signing request (PEM) for the box's key naming `names` — what a district's CA
    /// signs; the signed certificate, placed as `tls.crt`, is used from the next start on once it is for this
    /// key (step 2 of ``load(directory:names:now:)``).
    public func signingRequestPEM(names: [String]) throws -> String {
        let subject = try DistinguishedName {
            OrganizationName("Hallwatch")
            CommonName(names.first ?? "hallwatch")
        }
        let extensions = try Certificate.Extensions {
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames(Self.sanNames(names))
        }
        let csr = try CertificateSigningRequest(
            version: .v1, subject: subject, privateKey: .init(key),
            attributes: CertificateSigningRequest.Attributes([
                try CertificateSigningRequest.Attribute(ExtensionRequest(extensions: extensions))
            ]),
            signatureAlgorithm: .ecdsaWithSHA256)
        return try csr.serializeAsPEM().pemString
    }

    /// The names of the certificate in use (its subject alternative names, as text).
    public var certificateNames: [String] {
        guard let san = try? certificate.extensions.subjectAlternativeNames else { return [] }
        return san.compactMap { n in
            switch n {
            case .dnsName(let d): return d
            case .ipAddress(let a):
                let b = Array(a.bytes)
                var text = [CChar](repeating: 0, count: 64)
                let family = b.count == 4 ? AF_INET : AF_INET6
                guard b.count == 4 || b.count == 16, inet_ntop(family, b, &text, 64) != nil else { return nil }
                return String(cString: text)
            default: return nil
            }
        }
    }

    static func sanNames(_ names: [String]) -> [GeneralName] {
        names.map { n in
            if let bytes = IPAddressText.bytes(n) {
                return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes)))
            }
            return .dnsName(n)
        }
    }

    /// The swift-nio-ssl server configuration: this key and certificate, TLS 1.2 at least, ALPN set by the
    /// HTTP/2 channel (`h2`, `http/1.1`).
    public func serverConfiguration() throws -> TLSConfiguration {
        let certPEM = try certificate.serializeAsPEM().pemString
        var c = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: Array(certPEM.utf8), format: .pem))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem)))
        c.minimumTLSVersion = .tlsv12
        return c
    }

    static func writeAtomically(_ text: String, to path: String, mode: mode_t) throws {
        let tmp = path + ".tmp"
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw SystemError("open", subject: tmp) }
        let data = Array(text.utf8)
        let n = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == data.count, fsync(fd) == 0 else {
            close(fd)
            throw SystemError("write", subject: tmp)
        }
        close(fd)
        guard rename(tmp, path) == 0 else { throw SystemError("rename", subject: path) }
    }
}
