import Foundation
import HallwatchCore
import Testing

@testable import HallwatchDiscovery

private func matches(_ name: String) throws -> (DiscoveryHeader, [DiscoveredEndpoint], Int) {
    guard case .probeMatches(let h, let m, let skipped) = try DiscoveryMessage.parse(Fixtures.data(name)) else {
        Issue.record("\(name) is not ProbeMatches")
        return (DiscoveryHeader(), [], 0)
    }
    return (h, m, skipped)
}

private func onvifError(_ body: () throws -> Void) -> ONVIFError? {
    do {
        try body()
        return nil
    } catch let e as ONVIFError { return e } catch { return nil }
}

private let nvt = XMLName(NS.onvifNetwork, "NetworkVideoTransmitter")
private let tdsDevice = XMLName(NS.device, "Device")

/// Every reply in ../shared/testdata/onvif parses to the values written out here.
@Suite("ONVIF fixtures", .enabled(if: Fixtures.available, Fixtures.skipMessage))
struct FixtureTests {
    /// The names of every fixture that a test below checks; a new file in the directory fails this test
    /// until it gets its own expectations.
    static let covered: Set<String> = [
        "axis-m1065l_probematches_types-order-trailing-space.xml",
        "axis-m5525e_GetDeviceInformation_no-xml-decl.xml",
        "axis-m5525e_GetProfiles_h264-jpeg.xml",
        "axis-m5525e_GetStreamUri_media-amp.xml",
        "axis_GetSystemDateAndTime_manual-dst-posix-tz.xml",
        "dahua-nvr_GetProfiles_36-profiles_empty-encoder.xml",
        "dahua_GetCapabilities_dotted-element-names.xml",
        "dahua_GetStreamUri_one-line_standalone.xml",
        "dahua_fault_wsse-time-check-failed_RECONSTRUCTED.xml",
        "emulator-onvif_simple_server_hello_template.xml",
        "generic-ipcam-631GA_probematches_no-types_messageid-equals-epr.xml",
        "hikvision-ds2cd2143g0i_GetCapabilities.xml",
        "hikvision-ds2cd2143g0i_GetDeviceInformation.xml",
        "hikvision-ds2cd2143g0i_GetProfiles_main-sub-third.xml",
        "hikvision-ds2cd2143g0i_GetServices-with-capabilities.xml",
        "hikvision-ds2cd2143g0i_GetStreamUri_profile1.xml",
        "hikvision-oem-DFI6256TE_probematches_mac-scope-junk-scope.xml",
        "onvif-apg-axis_probematches_multi-xaddrs-linklocal.xml",
        "pelco-imp3211es_GetDeviceInformation_empty-hardwareid.xml",
        "synthetic-onvif-rs_probematches_wrong-relatesto_match-without-epr.xml",
        "tplink-tp-ipc_probematches_port2020_bare-uuid.xml",
        "unknown-camera_probe-reply_soap12-envelope-soap11-fault.xml",
        "unknown-vendor_GetStreamUri_uppercase-prefixes-MC1-MC2.xml",
        "vivotek_GetSystemDateAndTime_fault-NotAuthorized.xml",
        "windows-pc_hello_not-a-camera_no-xaddrs.xml",
    ]

    @Test func everyFixtureIsCovered() throws {
        let names = Set(try Fixtures.names())
        #expect(names.count == 25)
        #expect(
            names.subtracting(Self.covered).isEmpty,
            "fixtures without expectations: \(names.subtracting(Self.covered).sorted())")
        #expect(Self.covered.subtracting(names).isEmpty)
    }

    // MARK: WS-Discovery

    @Test func axisProbeMatchesTypesInOtherOrderAndTrailingSpace() throws {
        let (h, m, skipped) = try matches("axis-m1065l_probematches_types-order-trailing-space.xml")
        #expect(h.messageID == "uuid:def91886-4f16-4872-ae57-f35062fe4c47")
        #expect(h.relatesTo == "urn:uuid:26fc5103-5811-301a-2b13-22f0c3d2dbcc")
        #expect(h.action == "http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches")
        #expect(h.appSequence == AppSequence(instanceID: 1_657_759_728, sequenceID: nil, messageNumber: 851))
        #expect(skipped == 0 && m.count == 1)
        let e = try #require(m.first)
        #expect(e.address == "urn:uuid:a50d18ff-a8b9-4533-bdfc-8cb1abea0c8f")
        #expect(e.types == [tdsDevice, nvt])
        #expect(e.isNetworkVideoTransmitter && e.isCamera)
        #expect(e.scopes.count == 5)
        #expect(e.onvifScopes.name == "AXIS M1065-L")
        #expect(e.onvifScopes.hardware == "M1065-L")
        #expect(e.onvifScopes.location == nil)  // `location/` with an empty value
        #expect(e.onvifScopes.profiles == ["Streaming", "G"])
        #expect(e.xAddrs == ["http://192.0.2.27/onvif/device_service", "http://169.254.0.137/onvif/device_service"])
        #expect(e.preferredXAddrs.first == "http://192.0.2.27/onvif/device_service")
        #expect(e.metadataVersion == 1)
    }

    @Test func genericIPCamWithoutTypesAndMessageIDEqualToEndpoint() throws {
        let (h, m, _) = try matches("generic-ipcam-631GA_probematches_no-types_messageid-equals-epr.xml")
        let e = try #require(m.first)
        #expect(e.types.isEmpty)
        #expect(!e.isNetworkVideoTransmitter)
        #expect(e.isCamera)  // no Types, but ONVIF scopes and an XAddr
        #expect(e.address == "urn:uuid:2419d68a-2dd2-21b2-a205-00005E005302")
        #expect(e.endpointKey == "urn:uuid:2419d68a-2dd2-21b2-a205-00005e005302")
        // The MessageID is the device's own address, not a fresh UUID: it must not be mistaken for ours.
        #expect(h.messageID == "uuid:2419d68a-2dd2-21b2-a205-00005E005302")
        #expect(h.relatesTo == "urn:uuid:2de9f5ad-abd2-4c0e-9ba8-178098d67f01")
        #expect(e.onvifScopes.hardware == "631GA")  // written `Model/631GA`
        #expect(e.onvifScopes.name == "IPCAM")  // written `Name/IPCAM`
        #expect(e.onvifScopes.location == "country/china")
        #expect(e.xAddrs == ["http://192.0.2.104:80/onvif/device_service"])
    }

    @Test func hikvisionOEMWithMACScopeAndJunkScope() throws {
        let (h, m, _) = try matches("hikvision-oem-DFI6256TE_probematches_mac-scope-junk-scope.xml")
        #expect(h == DiscoveryHeader())  // empty Header
        let e = try #require(m.first)
        #expect(e.address == "urn:uuid:cea94000-fb96-11b3-8260-00005e005303")
        #expect(e.types == [nvt, tdsDevice])
        #expect(e.scopes.last == "http:123")
        #expect(e.onvifScopes.mac == "00:00:5e:00:53:03")
        #expect(e.onvifScopes.hardware == "DFI6256TE")
        #expect(e.onvifScopes.name == nil)
        #expect(e.xAddrs == ["http://192.0.2.123/onvif/device_service"])
        #expect(e.metadataVersion == 10)
    }

    @Test func programmersGuideMatchWithLinkLocalXAddrFirst() throws {
        let (h, m, _) = try matches("onvif-apg-axis_probematches_multi-xaddrs-linklocal.xml")
        #expect(h.messageID == "uuid:84ede3de-e374-11df-b259-00005e005301")
        #expect(h.relatesTo == "uuid:84ede3de-7dec-11d0-c360-F01234567890")
        #expect(h.to == "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous")  // trimmed
        #expect(h.appSequence?.messageNumber == 3)
        let e = try #require(m.first)
        #expect(e.address == "urn:uuid:a1f48ac2-dc8b-11df-b255-00005e005301")
        #expect(e.types == [nvt])
        #expect(e.scopes.count == 5)  // one per line, padded with newlines and spaces
        #expect(e.onvifScopes.name == "VENDOR MODEL")
        #expect(e.onvifScopes.hardware == "MODEL")
        #expect(e.onvifScopes.location == "ANY")
        #expect(e.xAddrs == ["http://169.254.0.145/onvif/services", "http://192.0.2.24/onvif/services"])
        #expect(e.preferredXAddrs == ["http://192.0.2.24/onvif/services", "http://169.254.0.145/onvif/services"])
    }

    @Test func syntheticWrongRelatesToAndMatchWithoutEndpoint() throws {
        let (h, m, skipped) = try matches("synthetic-onvif-rs_probematches_wrong-relatesto_match-without-epr.xml")
        #expect(h.messageID == nil)
        #expect(h.relatesTo == "uuid:84ede3de-7dec-11d0-c360-F00000000000")
        #expect(skipped == 1)  // the ProbeMatch with XAddrs but no EndpointReference
        let e = try #require(m.first)
        #expect(m.count == 1)
        #expect(e.address == "an address")
        #expect(e.xAddrs == ["http://addr_30", "http://addr_31"])
        #expect(e.onvifScopes.name == "MyCamera2000")
    }

    @Test func tpLinkBareUUIDAndPort2020() throws {
        let (_, m, _) = try matches("tplink-tp-ipc_probematches_port2020_bare-uuid.xml")
        let e = try #require(m.first)
        #expect(e.address == "uuid:3fa1fe68-b915-4053-a3e1-c006c3afec0e")
        #expect(e.endpointKey == "urn:uuid:3fa1fe68-b915-4053-a3e1-c006c3afec0e")
        #expect(e.types == [nvt])
        #expect(e.onvifScopes.name == "TP-IPC")
        #expect(e.onvifScopes.location == "ShenZhen")
        #expect(e.xAddrs == ["http://192.0.2.128:2020/onvif/device_service"])
    }

    @Test func emulatorHelloTemplate() throws {
        let data = try Fixtures.data(
            "emulator-onvif_simple_server_hello_template.xml",
            replacing: [
                "%MSG_UUID%": "11111111-2222-3333-4444-555555555555", "%UUID%": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                "%MSG_NUMBER%": "7", "%HARDWARE%": "simcam", "%NAME%": "Hallway%20East",
                "%ADDRESS%": "http://127.0.0.1:8080/onvif/device_service",
            ])
        guard case .hello(let h, let e) = try DiscoveryMessage.parse(data) else {
            Issue.record("not a Hello")
            return
        }
        #expect(h.messageID == "uuid:11111111-2222-3333-4444-555555555555")
        #expect(h.appSequence == AppSequence(instanceID: 0, sequenceID: nil, messageNumber: 7))
        #expect(e.address == "urn:uuid:aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee")
        #expect(e.types == [nvt] && e.isCamera)
        #expect(e.onvifScopes.name == "Hallway East")
        #expect(e.onvifScopes.hardware == "simcam")
        #expect(e.xAddrs == ["http://127.0.0.1:8080/onvif/device_service"])
        #expect(e.metadataVersion == 0)
        // Unsubstituted, the placeholder is no URL and is dropped rather than trusted.
        guard
            case .hello(_, let raw) = try DiscoveryMessage.parse(
                Fixtures.data("emulator-onvif_simple_server_hello_template.xml"))
        else {
            Issue.record("not a Hello")
            return
        }
        #expect(raw.xAddrs.isEmpty)
    }

    @Test func windowsHelloIsNotACamera() throws {
        guard
            case .hello(let h, let e) = try DiscoveryMessage.parse(
                Fixtures.data("windows-pc_hello_not-a-camera_no-xaddrs.xml"))
        else {
            Issue.record("not a Hello")
            return
        }
        #expect(h.messageID == "urn:uuid:d724454b-cdc1-48e7-925b-25a744e6c6ae")
        #expect(
            h.appSequence
                == AppSequence(
                    instanceID: 2755, sequenceID: "urn:uuid:94506137-106b-43ed-ad34-6ba9c88d5209", messageNumber: 77))
        #expect(e.address == "urn:uuid:c69f7c8c-cfe5-44ce-8c9c-47a55d291d90")
        #expect(
            e.types == [
                XMLName("http://schemas.xmlsoap.org/ws/2006/02/devprof", "Device"),
                XMLName("http://schemas.microsoft.com/windows/pub/2005/07", "Computer"),
            ])
        #expect(e.xAddrs.isEmpty && e.scopes.isEmpty)
        #expect(!e.isCamera)
        #expect(e.metadataVersion == 35)
    }

    @Test func probeReplyFaultSOAP11StyleInSOAP12Envelope() throws {
        let e = try #require(
            onvifError {
                _ = try DiscoveryMessage.parse(
                    Fixtures.data("unknown-camera_probe-reply_soap12-envelope-soap11-fault.xml"))
            })
        #expect(e.code == .fault)
        let f = try #require(e.fault)
        #expect(f.kind == .versionMismatch)
        #expect(f.code == XMLName(NS.soap12, "VersionMismatch"))
        #expect(f.subcodes.isEmpty)
        #expect(f.reason == "Invalid SOAP message or SOAP version mismatch")
    }

    // MARK: device service

    @Test func systemDateAndTimeUsesUTCNotLocalTimeOrPOSIXZone() throws {
        let t = try SystemDateAndTime.parse(Fixtures.data("axis_GetSystemDateAndTime_manual-dst-posix-tz.xml"))
        #expect(t.dateTimeType == "Manual")
        #expect(t.daylightSavings == true)
        #expect(t.timeZone == "BRT3")
        #expect(t.utc == ISO8601.parse("2024-07-09T19:49:06Z"))
        let box = try #require(ISO8601.parse("2024-07-09T19:49:00.500Z"))
        #expect(t.clockOffset(boxTimeAtReply: box) == ClockOffset(micros: 5_500_000))
    }

    @Test func systemDateAndTimeNotAuthorizedFault() throws {
        let e = try #require(
            onvifError {
                _ = try SystemDateAndTime.parse(Fixtures.data("vivotek_GetSystemDateAndTime_fault-NotAuthorized.xml"))
            })
        #expect(e.code == .notAuthorized)
        #expect(e.fault?.kind == .notAuthorized)
        #expect(e.fault?.code == XMLName(NS.soap12, "Sender"))
        #expect(e.fault?.subcodes == [XMLName(NS.error, "NotAuthorized")])
        #expect(e.fault?.reason == "An error was discovered processing the <wsse:Security> header.")
    }

    @Test func dahuaTimeCheckFaultIsNotAuthorized() throws {
        let e = try #require(
            onvifError {
                _ = try DeviceInformation.parse(Fixtures.data("dahua_fault_wsse-time-check-failed_RECONSTRUCTED.xml"))
            })
        #expect(e.code == .notAuthorized)
        #expect(e.fault?.subcodes == [XMLName(NS.error, "NotAuthorized")])
        #expect(e.fault?.reason == "Wsse authorized time check failed.")
        #expect(e.event().code == "onvif.notAuthorized")
    }

    @Test func deviceInformation() throws {
        #expect(
            try DeviceInformation.parse(Fixtures.data("axis-m5525e_GetDeviceInformation_no-xml-decl.xml"))
                == DeviceInformation(
                    manufacturer: "AXIS", model: "M5525-E", firmwareVersion: "8.40.1.1",
                    serialNumber: "00005E005304", hardwareID: "757"))
        #expect(
            try DeviceInformation.parse(Fixtures.data("hikvision-ds2cd2143g0i_GetDeviceInformation.xml"))
                == DeviceInformation(
                    manufacturer: "HIKVISION", model: "DS-2CD2143G0-I", firmwareVersion: "V5.5.61 build 180718",
                    serialNumber: "DS-2CD2143G0-I20000101AAWRC00000000", hardwareID: "88"))
        #expect(
            try DeviceInformation.parse(Fixtures.data("pelco-imp3211es_GetDeviceInformation_empty-hardwareid.xml"))
                == DeviceInformation(
                    manufacturer: "pelco", model: "IMP321-1ES", firmwareVersion: "01.16.42-20180912",
                    serialNumber: "T00000000", hardwareID: nil))
    }

    @Test func capabilities() throws {
        let d = try Capabilities.parse(Fixtures.data("dahua_GetCapabilities_dotted-element-names.xml"))
        #expect(
            d
                == Capabilities(
                    deviceXAddr: "http://192.0.2.123/onvif/device_service",
                    mediaXAddr: "http://192.0.2.123/onvif/media_service",
                    eventsXAddr: "http://192.0.2.123/onvif/event_service",
                    imagingXAddr: "http://192.0.2.123/onvif/imaging_service", ptzXAddr: nil,
                    analyticsXAddr: "http://192.0.2.123/onvif/analytics_service"))
        let h = try Capabilities.parse(Fixtures.data("hikvision-ds2cd2143g0i_GetCapabilities.xml"))
        #expect(
            h
                == Capabilities(
                    deviceXAddr: "http://192.0.2.13/onvif/device_service",
                    mediaXAddr: "http://192.0.2.13/onvif/Media", eventsXAddr: "http://192.0.2.13/onvif/Events",
                    imagingXAddr: "http://192.0.2.13/onvif/Imaging", ptzXAddr: nil,
                    analyticsXAddr: "http://192.0.2.13/onvif/Analytics"))
    }

    @Test func services() throws {
        let s = try Services.parse(Fixtures.data("hikvision-ds2cd2143g0i_GetServices-with-capabilities.xml"))
        #expect(s.services.count == 10)
        #expect(s.mediaXAddr == "http://192.0.2.13/onvif/Media")
        #expect(s.media2XAddr == "http://192.0.2.13/onvif/Media2")
        #expect(s.deviceXAddr == "http://192.0.2.13/onvif/device_service")
        let media = try #require(s.services.first { $0.namespace == NS.media })
        #expect(media.versionMajor == 2 && media.versionMinor == 60)
    }

    // MARK: media service

    @Test func axisProfilesH264AndJPEG() throws {
        let p = try MediaProfile.parseList(Fixtures.data("axis-m5525e_GetProfiles_h264-jpeg.xml"))
        #expect(p.map(\.token) == ["profile_1_h264", "profile_1_jpeg"])
        #expect(p.map { $0.videoEncoder?.encoding } == [.h264, .jpeg])
        #expect(
            p.map { $0.videoEncoder?.resolution } == [
                PixelSize(width: 1920, height: 1080), PixelSize(width: 1920, height: 1080),
            ])
        #expect(p[0].videoEncoder?.frameRateLimit == 30)
        #expect(p[0].videoEncoder?.govLength == 32)
        #expect(p[0].videoSourceToken == "0")
        #expect(p[0].sourceBounds == PixelSize(width: 1920, height: 1080))
        let c = StreamChooser.choose(p)
        #expect(c.count == 1)
        #expect(c[0].main?.token == "profile_1_h264")
        #expect(c[0].sub == nil)  // the JPEG profile is skipped
        #expect(c[0].undetermined.isEmpty)
    }

    @Test func hikvisionMainSubThird() throws {
        let p = try MediaProfile.parseList(Fixtures.data("hikvision-ds2cd2143g0i_GetProfiles_main-sub-third.xml"))
        #expect(p.map(\.token) == ["Profile_1", "Profile_2", "Profile_3"])
        #expect(p.map(\.name) == ["mainStream", "subStream", "thirdStream"])
        #expect(p.map { $0.videoEncoder?.encoding } == [.h264, .jpeg, .h264])
        #expect(p.map { $0.videoEncoder?.resolution?.description } == ["1920x1080", "640x480", "1280x720"])
        #expect(p.map { $0.videoEncoder?.bitrateLimitKbps } == [12288, 768, 768])
        #expect(
            p.allSatisfy {
                $0.videoSourceToken == "VideoSource_1" && $0.sourceBounds == PixelSize(width: 2688, height: 1520)
            })
        let c = StreamChooser.choose(p)
        #expect(c.count == 1)
        #expect(c[0].main?.token == "Profile_1")
        // "subStream" is JPEG here: the sub stream is the H.264 third stream, whatever its name.
        #expect(c[0].sub?.token == "Profile_3")
    }

    @Test func dahuaNVRThirtySixProfilesWithEmptyEncoders() throws {
        let p = try MediaProfile.parseList(Fixtures.data("dahua-nvr_GetProfiles_36-profiles_empty-encoder.xml"))
        #expect(p.count == 36)
        let withEncoder = p.filter { $0.videoEncoder != nil }
        #expect(withEncoder.map(\.token) == (0..<12).map { String(format: "MediaProfile%03d00", $0) })
        #expect(withEncoder.allSatisfy { $0.videoEncoder?.encoding == nil && $0.videoEncoder?.resolution == nil })
        #expect(p.allSatisfy { $0.sourceBounds == PixelSize(width: 2048, height: 1536) })
        let c = StreamChooser.choose(p)
        #expect(c.count == 12)  // one per channel
        #expect(c.map(\.videoSourceToken) == (0..<12).map { String(format: "%03d00", $0) })
        #expect(c.allSatisfy { $0.main == nil && $0.sub == nil })
        #expect(c.map(\.undetermined) == (0..<12).map { [String(format: "MediaProfile%03d00", $0)] })
    }

    @Test func streamURIs() throws {
        let axis = try StreamURI.parse(Fixtures.data("axis-m5525e_GetStreamUri_media-amp.xml"))
        #expect(
            axis
                == StreamURI(
                    uri:
                        "rtsp://192.0.2.12/onvif-media/media.amp?profile=profile_1_h264&sessiontimeout=60&streamtype=unicast",
                    invalidAfterConnect: false, invalidAfterReboot: false, timeoutSeconds: 0))
        #expect(axis.port == 554)
        let dahua = try StreamURI.parse(Fixtures.data("dahua_GetStreamUri_one-line_standalone.xml"))
        #expect(
            dahua
                == StreamURI(
                    uri: "rtsp://192.0.2.123:554/cam/realmonitor?channel=1&subtype=1&unicast=true&proto=Onvif",
                    invalidAfterConnect: true, invalidAfterReboot: true, timeoutSeconds: 0))
        let hik = try StreamURI.parse(Fixtures.data("hikvision-ds2cd2143g0i_GetStreamUri_profile1.xml"))
        #expect(
            hik
                == StreamURI(
                    uri: "rtsp://192.0.2.13:554/Streaming/Channels/101?transportmode=unicast&profile=Profile_1",
                    invalidAfterConnect: false, invalidAfterReboot: false, timeoutSeconds: 60))
        let odd = try StreamURI.parse(Fixtures.data("unknown-vendor_GetStreamUri_uppercase-prefixes-MC1-MC2.xml"))
        #expect(
            odd
                == StreamURI(
                    uri: "rtsp://192.0.2.53:8090/profile1=r", invalidAfterConnect: false,
                    invalidAfterReboot: false, timeoutSeconds: nil))
        #expect(odd.port == 8090)
    }
}
