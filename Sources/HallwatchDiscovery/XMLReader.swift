import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// Bounds on one XML document read from the network.
public struct XMLLimits: Sendable, Equatable {
    /// Largest document, in bytes. Checked before parsing starts.
    public var maxBytes: Int
    /// Deepest element nesting (the root element is depth 1).
    public var maxDepth: Int
    /// Most elements in one document.
    public var maxElements: Int

    /// Limits from their parts.
    public init(maxBytes: Int, maxDepth: Int, maxElements: Int) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
        self.maxElements = maxElements
    }

    /// An HTTP SOAP reply: 4 MiB (a 64-channel NVR's GetProfiles is about 1 MiB), 64 levels, 100 000 elements.
    public static let reply = XMLLimits(maxBytes: 4 << 20, maxDepth: 64, maxElements: 100_000)
    /// A SOAP-over-UDP datagram: 64 KiB, the largest UDP payload (SOAP-over-UDP 1.1 §3.1), 32 levels,
    /// 2 000 elements.
    public static let datagram = XMLLimits(maxBytes: 65_535, maxDepth: 32, maxElements: 2_000)
}

/// A namespace-qualified name: the namespace URI and the local name. Prefixes are never compared.
public struct XMLName: Hashable, Sendable, CustomStringConvertible {
    /// Namespace URI; empty for an unqualified name.
    public var namespace: String
    /// The local name.
    public var local: String
    /// A name in `namespace` (empty for none).
    public init(_ namespace: String, _ local: String) {
        self.namespace = namespace
        self.local = local
    }
    /// `{namespace}local`, or `local` alone when unqualified.
    public var description: String { namespace.isEmpty ? local : "{\(namespace)}\(local)" }
}

/// One element of a parsed document: immutable, `Sendable`, with the namespace bindings in scope so that
/// qualified names inside text (`ter:NotAuthorized`, `dn:NetworkVideoTransmitter`) resolve correctly.
public struct ParsedXMLElement: Sendable {
    /// The element's qualified name.
    public var name: XMLName
    /// Attributes by the name as written (`token`, `xml:lang`); namespace declarations are not included.
    public var attributes: [String: String]
    /// The element's own character data (children's text not included), entities already replaced.
    public var text: String
    /// Child elements, in document order.
    public var children: [ParsedXMLElement]
    /// Prefix → namespace URI bindings in scope at this element ("" is the default namespace).
    public var namespacesInScope: [String: String]

    /// ``text`` without leading and trailing whitespace.
    public var trimmedText: String { text.trimmingCharacters(in: .whitespacesAndNewlines) }

    /// The first child named `local` in `namespace`.
    public func child(_ namespace: String, _ local: String) -> ParsedXMLElement? {
        children.first { $0.name.local == local && $0.name.namespace == namespace }
    }
    /// The first child named `local` in any of `namespaces`.
    public func child(_ namespaces: [String], _ local: String) -> ParsedXMLElement? {
        children.first { $0.name.local == local && namespaces.contains($0.name.namespace) }
    }
    /// Every child named `local` in `namespace`.
    public func children(_ namespace: String, _ local: String) -> [ParsedXMLElement] {
        children.filter { $0.name.local == local && $0.name.namespace == namespace }
    }
    /// Follows a path of children in one namespace; `nil` when a step is missing.
    public func path(_ namespace: String, _ locals: String...) -> ParsedXMLElement? {
        var e: ParsedXMLElement? = self
        for l in locals { e = e?.child(namespace, l) }
        return e
    }
    /// The trimmed text of the child, or `nil` when it is missing or empty.
    public func childText(_ namespace: String, _ local: String) -> String? {
        guard let t = child(namespace, local)?.trimmedText, !t.isEmpty else { return nil }
        return t
    }

    /// A child's text for showing and logging as one line: every control character (U+0000–U+001F,
    /// U+007F–U+009F) and line or paragraph separator becomes a space, so a device naming its model
    /// `X\nlevel=error …` cannot forge a log line or a status row; at most `maxCharacters` characters are kept.
    /// `nil` when absent or empty.
    public func childLine(_ namespace: String, _ local: String, maxCharacters: Int = 256) -> String? {
        guard let t = childText(namespace, local) else { return nil }
        let line = String(
            String.UnicodeScalarView(
                t.unicodeScalars.map { s in
                    s.properties.generalCategory == .control || s.value == 0x2028 || s.value == 0x2029 ? " " : s
                }))
        let kept = String(line.prefix(maxCharacters)).trimmingCharacters(in: .whitespaces)
        return kept.isEmpty ? nil : kept
    }

    /// Resolves a QName written as text (`prefix:local` or `local`) with the bindings in scope here
    /// (XML Namespaces §6.2); `nil` when its prefix is not bound.
    public func resolveQName(_ qname: String) -> XMLName? {
        let t = qname.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !t.isEmpty else { return nil }
        if let colon = t.firstIndex(of: ":") {
            let prefix = String(t[..<colon])
            let local = String(t[t.index(after: colon)...])
            guard !local.isEmpty, let ns = namespacesInScope[prefix] else { return nil }
            return XMLName(ns, local)
        }
        return XMLName(namespacesInScope[""] ?? "", t)
    }
}

/// A bounded, namespace-aware XML reader for replies from cameras, over Foundation's `XMLParser`
/// (libxml2 on Linux).
///
/// Hazards handled, in the order they are checked:
/// 1. Size: a document over ``XMLLimits/maxBytes`` is refused before parsing (`onvif.tooLarge`).
/// 2. Encoding and DTDs: only UTF-8 (or ASCII/Latin-1) is read, so that a byte scan is meaningful; then any
///    `<!DOCTYPE` or `<!ENTITY` is refused before parsing (`onvif.dtdRefused`). This scan is the defence:
///    swift-corelibs-foundation runs libxml2 with entity substitution on (`XML_PARSE_NOENT`), so an
///    internal-entity bomb ("billion laughs") would otherwise be expanded as far as libxml2's own loop check
///    lets it. External entities are off (`shouldResolveExternalEntities = false`); declaration callbacks, where
///    Foundation delivers them, also abort the parse.
/// 3. Depth and element count: counted in the start-element callback, the parse is aborted past the limit.
/// 4. Errors: libxml2 runs in recover mode there, so `parse()` returning `true` proves nothing; every
///    reported error is fatal here, and a document whose root element never closed (truncated) is refused.
public enum XMLReader {
    /// Parses `data` into its root element, or throws an ``ONVIFError``.
    public static func parse(_ data: Data, limits: XMLLimits = .reply) throws -> ParsedXMLElement {
        try parse(data, limits: limits, prescan: true)
    }

    /// `prescan: false` exists only so that a test can show the declaration callbacks stop a DTD on their own.
    static func parse(_ data: Data, limits: XMLLimits, prescan: Bool) throws -> ParsedXMLElement {
        guard data.count <= limits.maxBytes else {
            throw ONVIFError(.tooLarge, "reply of \(data.count) bytes is over the \(limits.maxBytes)-byte limit")
        }
        let bytes = [UInt8](data)
        var start = 0
        // A UTF-8 byte order mark and whitespace before the XML declaration are tolerated (libxml2 refuses
        // whitespace before `<?xml`).
        if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { start = 3 }
        while start < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[start]) { start += 1 }
        guard start < bytes.count else { throw ONVIFError(.malformed, "empty reply") }
        // ONVIF replies are UTF-8 (ONVIF Core §5.1.1). Other encodings are refused: in UTF-16 or UTF-7 a
        // declaration would slip past the byte scan below.
        if bytes.contains(0) {
            throw ONVIFError(.malformed, "reply is not UTF-8 (NUL bytes: UTF-16 or UTF-32?)")
        }
        if let encoding = declaredEncoding(bytes, from: start),
            !["utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin1"].contains(encoding.lowercased())
        {
            throw ONVIFError(.malformed, "reply declares encoding \(quoted(encoding, limit: 40)); only UTF-8 is read")
        }
        if prescan, containsDeclaration(bytes, from: start) {
            throw ONVIFError(.dtdRefused, "reply contains a document type or entity declaration")
        }
        let builder = TreeBuilder(limits: limits)
        let parser = XMLParser(data: Data(bytes[start...]))
        parser.shouldProcessNamespaces = true
        parser.shouldReportNamespacePrefixes = true
        parser.shouldResolveExternalEntities = false
        parser.externalEntityResolvingPolicy = .never
        parser.delegate = builder
        _ = parser.parse()
        if let failure = builder.failure { throw failure }
        if let error = parser.parserError {
            throw ONVIFError(.malformed, "not well-formed XML: \(quoted((error as NSError).localizedDescription))")
        }
        guard let root = builder.root else {
            throw ONVIFError(
                .malformed, builder.stack.isEmpty ? "no root element" : "truncated: the root element is not closed")
        }
        return root
    }

    /// The `encoding` pseudo-attribute of an XML declaration at `start`, if any.
    static func declaredEncoding(_ b: [UInt8], from start: Int) -> String? {
        let head = b[start..<min(b.count, start + 256)]
        guard head.starts(with: Array("<?xml".utf8)), let end = head.firstIndex(of: 0x3E) else { return nil }
        let decl = String(decoding: head[head.startIndex..<end], as: UTF8.self)
        guard let r = decl.range(of: "encoding") else { return nil }
        let rest = decl[r.upperBound...].drop { $0 == " " || $0 == "=" || $0 == "\t" }
        guard let quote = rest.first, quote == "\"" || quote == "'" else { return nil }
        return String(rest.dropFirst().prefix { $0 != quote })
    }

    /// Whether `<!DOCTYPE` or `<!ENTITY` occurs anywhere (also inside comments: a false refusal is cheap).
    static func containsDeclaration(_ b: [UInt8], from start: Int) -> Bool {
        let doctype = Array("DOCTYPE".utf8)
        let entity = Array("ENTITY".utf8)
        var i = start
        while i + 2 < b.count {
            if b[i] == 0x3C, b[i + 1] == 0x21 {
                let rest = b[(i + 2)...]
                if rest.starts(with: doctype) || rest.starts(with: entity) { return true }
            }
            i += 1
        }
        return false
    }
}

/// Builds the element tree from SAX callbacks and enforces the limits.
private final class TreeBuilder: NSObject, XMLParserDelegate {
    let limits: XMLLimits
    var stack: [ParsedXMLElement] = []
    var root: ParsedXMLElement?
    var failure: ONVIFError?
    var elementCount = 0
    var pendingPrefixes: [String: String] = [:]
    var scopes: [[String: String]] = [[:]]

    init(limits: XMLLimits) { self.limits = limits }

    func fail(_ parser: XMLParser, _ error: ONVIFError) {
        if failure == nil { failure = error }
        parser.abortParsing()
    }

    func parser(_ parser: XMLParser, didStartMappingPrefix prefix: String, toURI namespaceURI: String) {
        pendingPrefixes[prefix] = namespaceURI
    }

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
        qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]
    ) {
        guard failure == nil else { return }
        if root != nil { return fail(parser, ONVIFError(.malformed, "content after the root element")) }
        elementCount += 1
        if elementCount > limits.maxElements {
            return fail(parser, ONVIFError(.tooLarge, "more than \(limits.maxElements) elements"))
        }
        if stack.count + 1 > limits.maxDepth {
            return fail(parser, ONVIFError(.tooDeep, "elements nested deeper than \(limits.maxDepth) levels"))
        }
        var scope = scopes[scopes.count - 1]
        if !pendingPrefixes.isEmpty {
            scope.merge(pendingPrefixes) { _, new in new }
            pendingPrefixes.removeAll(keepingCapacity: true)
        }
        scopes.append(scope)
        // With namespace processing on, corelibs passes the local name; strip a prefix defensively.
        let local = elementName.split(separator: ":", maxSplits: 1).last.map(String.init) ?? elementName
        stack.append(
            ParsedXMLElement(
                name: XMLName(namespaceURI ?? "", local), attributes: attributeDict,
                text: "", children: [], namespacesInScope: scope))
    }

    func parser(
        _ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName qName: String?
    ) {
        guard failure == nil, let done = stack.popLast() else { return }
        scopes.removeLast()
        if stack.isEmpty { root = done } else { stack[stack.count - 1].children.append(done) }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        guard failure == nil, !stack.isEmpty else { return }
        stack[stack.count - 1].text += string
    }

    func parser(_ parser: XMLParser, foundCDATA block: Data) {
        guard failure == nil, !stack.isEmpty else { return }
        stack[stack.count - 1].text += String(decoding: block, as: UTF8.self)
    }

    func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) {
        guard failure == nil else { return }
        failure = ONVIFError(.malformed, "not well-formed XML: \(quoted((parseError as NSError).localizedDescription))")
        parser.abortParsing()
    }

    // Declarations cannot get here past the pre-scan; if one does, the parse ends.
    func parser(_ parser: XMLParser, foundInternalEntityDeclarationWithName name: String, value: String?) {
        fail(parser, ONVIFError(.dtdRefused, "entity declaration"))
    }
    func parser(
        _ parser: XMLParser, foundExternalEntityDeclarationWithName name: String, publicID: String?, systemID: String?
    ) {
        fail(parser, ONVIFError(.dtdRefused, "external entity declaration"))
    }
    func parser(
        _ parser: XMLParser, foundUnparsedEntityDeclarationWithName name: String, publicID: String?, systemID: String?,
        notationName: String?
    ) {
        fail(parser, ONVIFError(.dtdRefused, "unparsed entity declaration"))
    }
    func parser(_ parser: XMLParser, foundElementDeclarationWithName elementName: String, model: String) {
        fail(parser, ONVIFError(.dtdRefused, "element declaration"))
    }
    // With every DTD refused, an entity that needs resolving can only be an undeclared one.
    func parser(_ parser: XMLParser, resolveExternalEntityName name: String, systemID: String?) -> Data? {
        fail(parser, ONVIFError(.malformed, "reference to an undeclared entity"))
        return nil
    }
}
