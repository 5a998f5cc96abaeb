import Foundation

/// A parsed SOAP envelope (SOAP 1.2 Part 1 §5, SOAP 1.1 §4): header and body of a reply.
public struct SOAPEnvelope: Sendable {
    /// SOAP 1.1 or 1.2, from the envelope's namespace.
    public enum Version: Sendable, Equatable { case soap11, soap12 }
    /// The SOAP version of the reply.
    public var version: Version
    /// The `Header` element, if any.
    public var header: ParsedXMLElement?
    /// The `Body` element.
    public var body: ParsedXMLElement

    /// Parses a reply; throws ``ONVIFError`` (`onvif.unexpectedReply` when the root is not a SOAP
    /// `Envelope` with a `Body`).
    public static func parse(_ data: Data, limits: XMLLimits = .reply) throws -> SOAPEnvelope {
        try SOAPEnvelope(root: XMLReader.parse(data, limits: limits))
    }

    /// Reads an envelope from a parsed root element. Throws ``ONVIFError`` `onvif.unexpectedReply` when it is not a SOAP envelope with a body.
    public init(root: ParsedXMLElement) throws {
        guard root.name.local == "Envelope", NS.soap.contains(root.name.namespace) else {
            throw ONVIFError(.unexpectedReply, "root element \(root.name) is not a SOAP envelope")
        }
        version = root.name.namespace == NS.soap12 ? .soap12 : .soap11
        header = root.child(root.name.namespace, "Header")
        guard let body = root.child(root.name.namespace, "Body") else {
            throw ONVIFError(.unexpectedReply, "SOAP envelope without a Body")
        }
        self.body = body
    }

    /// The body's fault, if it carries one.
    public var fault: SOAPFault? {
        body.child(NS.soap, "Fault").map(SOAPFault.init(element:))
    }

    /// The body's response element `local` in `namespace`. Throws the fault as `onvif.notAuthorized` or
    /// `onvif.fault` when the body holds one, and `onvif.unexpectedReply` when the response is absent.
    public func response(_ namespace: String, _ local: String) throws -> ParsedXMLElement {
        try response([namespace], local)
    }

    /// The body's response element `local` in any of `namespaces`; throws as the single-namespace form does.
    public func response(_ namespaces: [String], _ local: String) throws -> ParsedXMLElement {
        if let fault { throw fault.error }
        guard let element = body.child(namespaces, local) else {
            let got = body.children.first.map { "\($0.name)" } ?? "an empty body"
            throw ONVIFError(.unexpectedReply, "expected \(local) in \(namespaces[0]), got \(got)")
        }
        return element
    }
}

/// A SOAP fault, SOAP 1.2 (`Code/Value`, nested `Subcode/Value`, `Reason/Text`) or SOAP 1.1 (`faultcode`,
/// `faultstring`).
///
/// Codes are qualified names resolved with the namespace bindings in scope (`ter:NotAuthorized` →
/// `{http://www.onvif.org/ver10/error}NotAuthorized`); ``kind`` is decided from them and never from the
/// reason text, which vendors word freely.
public struct SOAPFault: Sendable, Equatable {
    /// What the fault means to a client.
    public enum Kind: String, Sendable, Equatable {
        /// `ter:NotAuthorized` (ONVIF Core §5.11.2.2), or WS-Security's `wsse:FailedAuthentication`,
        /// `wsse:InvalidSecurityToken`, `wsse:InvalidSecurity` (WS-Security 1.0 §12).
        case notAuthorized
        /// `ter:ActionNotSupported`: the service does not implement the operation (e.g. GetServices on an
        /// old device — fall back to GetCapabilities).
        case actionNotSupported
        /// `ter:InvalidArgVal`, `ter:InvalidArgs`.
        case invalidArgs
        /// `VersionMismatch`: the device wants the other SOAP version.
        case versionMismatch
        /// `MustUnderstand`.
        case mustUnderstand
        /// Other `Sender` (SOAP 1.1 `Client`) faults.
        case sender
        /// Other `Receiver` (SOAP 1.1 `Server`) faults.
        case receiver
        /// Anything else.
        case other
    }

    /// The top-level code (`Code/Value` or `faultcode`), resolved; `nil` when missing or its prefix unbound.
    public var code: XMLName?
    /// The subcodes from the outermost in, resolved (unresolvable ones are left out).
    public var subcodes: [XMLName]
    /// The reason text, trimmed (first `Reason/Text`, or `faultstring`).
    public var reason: String?

    /// A fault from its code, subcodes and reason.
    public init(code: XMLName?, subcodes: [XMLName], reason: String?) {
        self.code = code
        self.subcodes = subcodes
        self.reason = reason
    }

    /// Reads a `Fault` element of either SOAP version.
    public init(element f: ParsedXMLElement) {
        var code: XMLName?
        var subcodes: [XMLName] = []
        var reason: String?
        if let c = f.child(NS.soap, "Code") {
            // SOAP 1.2 Part 1 §5.4.6: Code/Value, Code/Subcode/Value, Subcode/Subcode/…
            if let v = c.child(NS.soap, "Value") { code = v.resolveQName(v.text) }
            var sub = c.child(NS.soap, "Subcode")
            var hops = 0
            while let s = sub, hops < 8 {
                if let v = s.child(NS.soap, "Value"), let q = v.resolveQName(v.text) { subcodes.append(q) }
                sub = s.child(NS.soap, "Subcode")
                hops += 1
            }
            // Reason may hold one Text per language (SOAP 1.2 Part 1 §5.4.7): English if present, else the first.
            let texts =
                f.child(NS.soap, "Reason")?.children.filter {
                    $0.name.local == "Text" && NS.soap.contains($0.name.namespace)
                } ?? []
            reason =
                (texts.first { $0.attributes["xml:lang"]?.lowercased().hasPrefix("en") == true } ?? texts.first)?
                .trimmedText
        }
        // SOAP 1.1 §4.4: unqualified faultcode/faultstring. Seen inside SOAP 1.2 envelopes too.
        if code == nil, let fc = f.child(["", NS.soap11, NS.soap12], "faultcode") {
            code = fc.resolveQName(fc.text)
        }
        if reason == nil { reason = f.child(["", NS.soap11, NS.soap12], "faultstring")?.trimmedText }
        self.init(code: code, subcodes: subcodes, reason: reason.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// The fault's meaning, from the subcodes first, then the code.
    public var kind: Kind {
        for q in subcodes + [code].compactMap({ $0 }) {
            if q.namespace == NS.error {
                switch q.local {
                case "NotAuthorized": return .notAuthorized
                case "ActionNotSupported": return .actionNotSupported
                case "InvalidArgVal", "InvalidArgs": return .invalidArgs
                default: continue
                }
            }
            if q.namespace == NS.wsse,
                ["FailedAuthentication", "InvalidSecurityToken", "InvalidSecurity"].contains(q.local)
            {
                return .notAuthorized
            }
        }
        guard let code, NS.soap.contains(code.namespace) else { return .other }
        switch code.local {
        case "VersionMismatch": return .versionMismatch
        case "MustUnderstand": return .mustUnderstand
        case "Sender", "Client": return .sender
        case "Receiver", "Server": return .receiver
        default: return .other
        }
    }

    /// The fault as an error: `onvif.notAuthorized` for ``Kind/notAuthorized``, `onvif.fault` otherwise.
    public var error: ONVIFError {
        let what = ([code] + subcodes.map { Optional($0) }).compactMap { $0?.local }.joined(separator: "/")
        let text = reason.map { ": \(quoted($0))" } ?? ""
        return ONVIFError(
            kind == .notAuthorized ? .notAuthorized : .fault,
            "SOAP fault \(what.isEmpty ? "without a code" : what)\(text)", fault: self)
    }
}
