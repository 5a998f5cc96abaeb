import Foundation
import HallwatchCore
import Logging
import Synchronization
import Testing

@testable import HallwatchDiscovery

/// The agent's bookkeeping without a network: presence, duplicates, what gets published.
@Suite("Discovery agent state")
struct AgentStateTests {
    final class Published: Sendable { let list = Mutex<[DiscoveredDevice]>([]) }

    func agent(_ published: Published, missed: Int = 2) -> DiscoveryAgent {
        let iface = IPv4Interfaces.Interface(name: "cam0", address: "10.9.0.1", netmask: "255.255.255.0")
        return DiscoveryAgent(
            settings: DiscoveryAgentSettings(
                interfaces: [("cam0", iface)], missedProbes: missed, credentials: nil,
                listenForAnnouncements: false),
            http: BoundedHTTPClient(), logger: Logger(label: "test"),
            publish: { d in published.list.withLock { $0.append(d) } }, reportError: { _ in })
    }

    func endpoint(_ uuid: String, mac: String, xAddrs: [String]) -> DiscoveredEndpoint {
        DiscoveredEndpoint(
            address: "urn:uuid:\(uuid)", types: [WSDiscoveryProbe.networkVideoTransmitter],
            scopes: ["onvif://www.onvif.org/name/cam", "onvif://www.onvif.org/MAC/\(mac)"], xAddrs: xAddrs)
    }

    func description(serial: String) -> DeviceDescription {
        DeviceDescription(
            deviceXAddr: "http://10.9.0.2/onvif/device_service", reachedHost: "10.9.0.2", clockOffset: .zero,
            auth: .usernameToken,
            information: DeviceInformation(
                manufacturer: "Acme", model: "X", firmwareVersion: "1", serialNumber: serial, hardwareID: nil),
            profiles: [], streams: [], undetermined: [], usedMedia2: false, error: nil)
    }

    @Test func twoEndpointsOfOneCameraArePublishedOnce() async {
        let published = Published()
        let a = agent(published)
        // One camera with two NICs (two endpoint references), one unrelated camera.
        await a.observe(
            endpoint(
                "1", mac: "00:11:22:33:44:55",
                xAddrs: ["http://169.254.3.4/onvif/device_service", "http://10.9.0.2/onvif/device_service"]),
            from: "10.9.0.2", interface: "cam0")
        await a.observe(
            endpoint("2", mac: "00:11:22:33:44:55", xAddrs: ["http://10.9.0.3/onvif/device_service"]), from: "10.9.0.3",
            interface: "cam0")
        await a.observe(
            endpoint("3", mac: "00:aa:bb:cc:dd:ee", xAddrs: ["http://10.9.0.4/onvif/device_service"]), from: "10.9.0.4",
            interface: "cam0")
        await a.record("urn:uuid:1", xAddrs: [], description: description(serial: "S1"))
        await a.record("urn:uuid:2", xAddrs: [], description: description(serial: "S1"))
        await a.record("urn:uuid:3", xAddrs: [], description: description(serial: "S3"))
        await a.publishChanges()
        let devices = published.list.withLock { $0 }
        #expect(devices.map(\.endpoint) == ["urn:uuid:1", "urn:uuid:3"])
        #expect(devices.first?.addresses == ["10.9.0.2", "10.9.0.3"])
        // The interface's subnet first, link-local last.
        #expect(
            devices.first?.xAddrs == [
                "http://10.9.0.2/onvif/device_service", "http://169.254.3.4/onvif/device_service",
            ])
        #expect(devices.first?.id == DiscoveryAgent.deviceID(endpointKey: "urn:uuid:1"))
        // Nothing changed: nothing republished.
        await a.publishChanges()
        #expect(published.list.withLock { $0.count } == 2)
    }

    @Test func byeAndMissedRoundsMarkDevicesGone() async {
        let published = Published()
        let a = agent(published, missed: 2)
        let e = endpoint("1", mac: "00:11:22:33:44:55", xAddrs: ["http://10.9.0.2/onvif/device_service"])
        await a.observe(e, from: "10.9.0.2", interface: "cam0")
        await a.record("urn:uuid:1", xAddrs: e.xAddrs, description: description(serial: "S1"))
        await a.announcement(.bye(DiscoveryHeader(), DiscoveredEndpoint(address: "urn:uuid:1")), from: "10.9.0.2")
        #expect(published.list.withLock { $0.last?.presence } == .gone)
        #expect(published.list.withLock { $0.last?.goneReason } == "bye")
        #expect(published.list.withLock { $0.last?.manufacturer } == "Acme")  // what was learned is kept
    }
}
