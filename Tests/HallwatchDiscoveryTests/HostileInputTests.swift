import Foundation
import Testing

@testable import HallwatchDiscovery

private func code(_ body: () throws -> Void) -> ONVIFError.Code? {
    do {
        try body()
        return nil
    } catch let e as ONVIFError { return e.code } catch { return nil }
}

private func d(_ s: String) -> Data { Data(s.utf8) }

private let env =
    #"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><s:Body>"#
private let endEnv = "</s:Body></s:Envelope>"
private let devInfo =
    env
    + "<tds:GetDeviceInformationResponse><tds:Manufacturer>ACME</tds:Manufacturer></tds:GetDeviceInformationResponse>"
    + endEnv

/// Replies built to hurt: each gives a typed error quickly and never crashes.
@Suite("Hostile replies")
struct HostileInputTests {
    @Test func billionLaughsIsRefusedBeforeParsing() {
        var dtd = #"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">"#
        for i in 1...9 {
            dtd += "<!ENTITY lol\(i) \"" + String(repeating: "&lol\(i == 1 ? "" : String(i - 1));", count: 10) + "\">"
        }
        dtd +=
            "]>" + env
            + "<tds:GetDeviceInformationResponse><tds:Manufacturer>&lol9;</tds:Manufacturer></tds:GetDeviceInformationResponse>"
            + endEnv
        #expect(code { _ = try DeviceInformation.parse(d(dtd)) } == .dtdRefused)
    }

    /// Defence in depth: with the byte scan off, the bomb still ends in a typed error, not an expansion.
    /// (Seen here: libxml2 2.9.14 stops it itself with XML_ERR_ENTITY_LOOP, error 89, in about 0.3 s of a
    /// debug build; the entity-declaration delegate callbacks are not reached on this Foundation.)
    @Test func billionLaughsWithoutTheByteScanStillFails() {
        var dtd = #"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">"#
        for i in 1...9 {
            dtd += "<!ENTITY lol\(i) \"" + String(repeating: "&lol\(i == 1 ? "" : String(i - 1));", count: 10) + "\">"
        }
        dtd += "]><lolz>&lol9;</lolz>"
        let start = ContinuousClock.now
        let c = code { _ = try XMLReader.parse(d(dtd), limits: .reply, prescan: false) }
        #expect(c == .dtdRefused || c == .malformed)
        #expect(ContinuousClock.now - start < .seconds(3))
    }

    @Test func otherEncodingsAreRefused() {
        let utf16 = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>"
        var bytes: [UInt8] = [0xFF, 0xFE]
        for u in utf16.utf16 { bytes += [UInt8(u & 0xFF), UInt8(u >> 8)] }
        #expect(code { _ = try XMLReader.parse(Data(bytes)) } == .malformed)
        #expect(
            code { _ = try XMLReader.parse(d(#"<?xml version="1.0" encoding="UTF-7"?><a>+ADw-</a>"#)) } == .malformed)
        #expect((try? XMLReader.parse(d(#"<?xml version='1.0' encoding='utf-8'?><a/>"#)))?.name.local == "a")
    }

    @Test func externalEntityIsRefused() {
        let xxe =
            #"<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>"# + env
            + "<tds:GetDeviceInformationResponse><tds:Manufacturer>&xxe;</tds:Manufacturer></tds:GetDeviceInformationResponse>"
            + endEnv
        #expect(code { _ = try DeviceInformation.parse(d(xxe)) } == .dtdRefused)
        // A parameter-entity-only DTD and a bare DOCTYPE are refused too.
        #expect(
            code { _ = try DeviceInformation.parse(d(#"<!DOCTYPE x SYSTEM "http://127.0.0.1:1/x.dtd">"# + devInfo)) }
                == .dtdRefused)
    }

    @Test func undefinedEntityWithoutDTDIsMalformed() {
        let text =
            env
            + "<tds:GetDeviceInformationResponse><tds:Manufacturer>&xxe;</tds:Manufacturer></tds:GetDeviceInformationResponse>"
            + endEnv
        #expect(code { _ = try DeviceInformation.parse(d(text)) } == .malformed)
    }

    @Test func tenThousandDeepNestingIsRefused() {
        let deep = String(repeating: "<a>", count: 10_000) + String(repeating: "</a>", count: 10_000)
        let start = ContinuousClock.now
        #expect(code { _ = try XMLReader.parse(d(deep)) } == .tooDeep)
        #expect(code { _ = try DeviceInformation.parse(d(env + deep + endEnv)) } == .tooDeep)
        #expect(ContinuousClock.now - start < .seconds(1))
    }

    @Test func twentyMegabyteBodyIsRefusedBeforeParsing() {
        let big = Data(count: 20 << 20)
        let start = ContinuousClock.now
        #expect(code { _ = try DeviceInformation.parse(big) } == .tooLarge)
        #expect(code { _ = try DiscoveryMessage.parse(Data(count: 70_000)) } == .tooLarge)
        #expect(ContinuousClock.now - start < .milliseconds(500))
    }

    @Test func tooManyElementsIsRefused() {
        let many = "<r>" + String(repeating: "<a/>", count: 3_000) + "</r>"
        #expect(code { _ = try XMLReader.parse(d(many), limits: .datagram) } == .tooLarge)
    }

    @Test func truncatedRepliesAreMalformedAtEveryCut() {
        let whole = Array(devInfo.utf8)
        #expect((try? DeviceInformation.parse(Data(whole)))?.manufacturer == "ACME")
        for cut in stride(from: 0, to: whole.count - 1, by: 3) {
            let c = code { _ = try DeviceInformation.parse(Data(whole[..<cut])) }
            #expect(c == .malformed, "cut at \(cut) of \(whole.count): \(String(describing: c))")
        }
    }

    @Test func garbageIsMalformed() {
        #expect(code { _ = try XMLReader.parse(Data()) } == .malformed)
        #expect(code { _ = try XMLReader.parse(d("   \n")) } == .malformed)
        #expect(code { _ = try XMLReader.parse(d("HTTP/1.1 200 OK")) } == .malformed)
        #expect(code { _ = try XMLReader.parse(Data([0xFF, 0xFE, 0x00, 0x3C, 0x00])) } == .malformed)
        #expect(code { _ = try XMLReader.parse(d("<a></b>")) } == .malformed)
        #expect(code { _ = try XMLReader.parse(d("<a/><b/>")) } == .malformed)
        #expect(code { _ = try XMLReader.parse(d("<p:a>unbound prefix</p:a>")) } == .malformed)
    }

    @Test func wrongNamespacesAreUnexpected() {
        // Right prefixes, wrong URIs: prefixes mean nothing.
        let fakeSOAP = devInfo.replacingOccurrences(
            of: "http://www.w3.org/2003/05/soap-envelope", with: "http://example.invalid/soap")
        #expect(code { _ = try DeviceInformation.parse(d(fakeSOAP)) } == .unexpectedReply)
        let fakeTDS = devInfo.replacingOccurrences(
            of: "http://www.onvif.org/ver10/device/wsdl", with: "http://www.onvif.org/ver10/media/wsdl")
        #expect(code { _ = try DeviceInformation.parse(d(fakeTDS)) } == .unexpectedReply)
        // The right response to the wrong question.
        #expect(code { _ = try MediaProfile.parseList(d(devInfo)) } == .unexpectedReply)
        // Not an envelope at all, and an envelope without a body.
        #expect(code { _ = try DeviceInformation.parse(d("<html><body>login</body></html>")) } == .unexpectedReply)
        #expect(
            code {
                _ = try DeviceInformation.parse(d(#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>"#))
            } == .unexpectedReply)
        // A discovery message in an unknown discovery namespace.
        let probe =
            #"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:d="http://example.invalid/discovery"><e:Body><d:ProbeMatches/></e:Body></e:Envelope>"#
        #expect(code { _ = try DiscoveryMessage.parse(d(probe)) } == .unexpectedReply)
    }

    @Test func notAuthorizedIsDecidedByQualifiedNameNotText() throws {
        func fault(_ value: String, text: String) -> Data {
            d(
                #"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:ter="http://www.onvif.org/ver10/error" xmlns:x="http://example.invalid/x"><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>"#
                    + value + "</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"en\">" + text
                    + "</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>")
        }
        #expect(
            code { _ = try DeviceInformation.parse(fault("ter:NotAuthorized", text: "whatever")) } == .notAuthorized)
        // Same local name in another namespace, and a reason that merely says so: not an auth failure.
        #expect(code { _ = try DeviceInformation.parse(fault("x:NotAuthorized", text: "Not Authorized")) } == .fault)
        #expect(
            code { _ = try DeviceInformation.parse(fault("ter:ActionNotSupported", text: "NotAuthorized")) } == .fault)
        // SOAP 1.1 fault with a WS-Security code.
        let soap11 =
            #"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><S:Body><S:Fault><faultcode>wsse:FailedAuthentication</faultcode><faultstring>nope</faultstring></S:Fault></S:Body></S:Envelope>"#
        #expect(code { _ = try DeviceInformation.parse(d(soap11)) } == .notAuthorized)
    }

    @Test func leadingWhitespaceAndByteOrderMarkAreTolerated() throws {
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        let text = "\r\n  <?xml version=\"1.0\" encoding=\"UTF-8\"?>" + devInfo
        #expect(try DeviceInformation.parse(Data(bom + Array(text.utf8))).manufacturer == "ACME")
    }

    @Test func credentialsInAStreamURIAreRemoved() throws {
        let reply =
            #"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:trt="http://www.onvif.org/ver10/media/wsdl" xmlns:tt="http://www.onvif.org/ver10/schema"><s:Body><trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>rtsp://admin:secret@192.0.2.9/live?a=1&amp;b=2</tt:Uri></trt:MediaUri></trt:GetStreamUriResponse></s:Body></s:Envelope>"#
        let u = try StreamURI.parse(d(reply))
        #expect(u.uri == "rtsp://192.0.2.9/live?a=1&b=2")
        #expect(u.port == 554)
    }

    @Test func faultReasonPrefersEnglish() throws {
        let reply =
            #"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code><s:Reason><s:Text xml:lang="de">Fehler</s:Text><s:Text xml:lang="en">Failure</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>"#
        let f = try #require(try SOAPEnvelope.parse(d(reply)).fault)
        #expect(f.reason == "Failure")
        #expect(f.kind == .receiver)
    }

    @Test func deviceInformationIsOneLineEach() throws {
        // A model name carrying a newline (as &#10;) and a forged log line, a serial with a C1 control (NEL)
        // and a line separator, and a 10 000-character manufacturer.
        let reply =
            env + "<tds:GetDeviceInformationResponse><tds:Manufacturer>" + String(repeating: "A", count: 10_000)
            + "</tds:Manufacturer><tds:Model>M3&#10;2026-12-07T00:00:00Z error : forged</tds:Model>"
            + "<tds:SerialNumber>S1&#133;[31m\u{2028}X</tds:SerialNumber>"
            + "<tds:HardwareId>&#9;&#10;</tds:HardwareId></tds:GetDeviceInformationResponse>" + endEnv
        let info = try DeviceInformation.parse(d(reply))
        #expect(info.model == "M3 2026-12-07T00:00:00Z error : forged")
        #expect(info.serialNumber == "S1 [31m X")
        #expect(info.manufacturer?.count == 256)
        #expect(info.hardwareID == nil)
    }
}
