import HallwatchConfig
import Testing

@testable import HallwatchProvision

@Suite("What a bundle changes, for the receipt")
struct ConfigChangeTests {
    @Test func camerasAndDisksAddedRemovedChanged() throws {
        let old = try ConfigLoader.parse(
            """
            box: b
            recorder:
              disks: [{ name: disk0, path: /srv/disk0 }]
            cameras:
              - { id: lobby, source: "rtsp://10.0.0.1/s" }
              - { id: gym, source: "rtsp://10.0.0.2/s" }
              - { id: hall, source: "rtsp://10.0.0.3/s" }

            """)
        let new = try ConfigLoader.parse(
            """
            box: b
            recorder:
              disks: [{ name: disk1, path: /srv/disk1 }]
            cameras:
              - { id: lobby, source: "rtsp://10.0.0.1/s" }
              - { id: gym, source: "rtsp://10.0.0.9/s" }
              - { id: door, source: "rtsp://10.0.0.4/s" }

            """)
        let c = ConfigChange(from: old, to: new)
        #expect(c.camerasAdded == ["door"] && c.camerasRemoved == ["hall"] && c.camerasChanged == ["gym"])
        #expect(c.summary == "cameras +door -hall ~gym; disks +disk1 -disk0")
        #expect(ConfigChange(from: new, to: new).summary == "none")
    }
}
