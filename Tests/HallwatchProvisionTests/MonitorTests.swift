import Foundation
import Testing

@testable import HallwatchProvision

/// The monitor's events and the service's handling: tests feed events through the same code path as a
/// plugged stick (no udevd runs here; the kernel group delivers raw events, loop devices included).
@Suite(
    "USB block-device events", .serialized,
    .enabled(if: getuid() == 0, "the reader sandbox, loop devices and FUSE need root"))
struct MonitorTests {
    @Test func usbEventsAreProcessedOthersIgnoredAndAReplugWhileBusyIsOne() throws {
        let box = try TestBox("events")
        defer { box.cleanup() }
        let image = try box.stick([Fx.Bundle()])
        let p = box.provisioner
        let service = ProvisionService { () throws(ProvisionError) -> Provisioner in p }
        let loop = BlockEvent(action: "add", devnode: image, devpath: "/devices/virtual/block/loop0")
        #expect(service.handle(loop) == nil)
        let removed = BlockEvent(action: "remove", devnode: image, devpath: "/devices/pci0/usb2/2-1/block/sdb")
        #expect(service.handle(removed) == nil)
        let usb = BlockEvent(
            action: "add", devnode: image, devpath: "/devices/pci0000:00/0000:00:14.0/usb2/2-1/block/sdb",
            properties: ["ID_BUS": "usb", "ID_FS_TYPE": "vfat"])
        // Re-added while its run is still going (inside the apply): not processed a second time.
        var nestedRan = false
        var nestedResult: ProvisionOutcome.Result?
        let out = service.handle(usb) { step in
            if step == .staged {
                nestedRan = true
                nestedResult = service.handle(usb)?.result
            }
        }
        #expect(out?.result == .applied, "\(String(describing: out?.reasons))")
        #expect(nestedRan && nestedResult == nil)
        #expect(service.handle(usb)?.result == .alreadyApplied)
    }

    /// Two sticks at once (two threads): the store's lock makes check-and-apply one at a time, so the newer
    /// version ends current whatever the order, and the floors match it.
    @Test func twoSticksAtOnce() throws {
        let box = try TestBox("two")
        defer { box.cleanup() }
        var v3 = Fx.Bundle()
        v3.version = 3
        var v4 = Fx.Bundle()
        v4.version = 4
        v4.files.append(("plans/four.txt", Array("4".utf8)))
        let images = [try box.stick([v3], name: "a.img"), try box.stick([v4], name: "b.img")]
        for _ in 0..<3 {
            DispatchQueue.concurrentPerform(iterations: 2) { i in
                _ = box.provisioner.process(device: images[i], apply: true)
            }
        }
        #expect(box.store.state().versionFloor == 4)
        #expect(box.currentFiles()["plans/four.txt"] == Array("4".utf8))
        #expect(box.store.current() == box.store.state().release)
    }

    @Test func theKernelMonitorSeesALoopDeviceAppear() throws {
        guard getuid() == 0, let monitor = UdevMonitor(group: "kernel") else { return }
        let dir = Fx.tempDir("loop")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let image = dir + "/loop.img"
        try FileManager.default.createDirectory(atPath: dir + "/tree", withIntermediateDirectories: true)
        try Fx.fatImage(of: dir + "/tree", at: image, sizeKiB: 4096)
        let attach = try Fx.run(["losetup", "-f", "--show", image])
        guard attach.status == 0 else { return }  // no loop devices in this sandbox
        let node = attach.out.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? Fx.run(["losetup", "-d", node]) }
        var seen: BlockEvent?
        let deadline = ContinuousClock.now + .seconds(3)
        while seen == nil, ContinuousClock.now < deadline {
            if let e = monitor.next(timeout: .milliseconds(200)), e.devnode == node { seen = e }
        }
        let e = try #require(seen, "no event for \(node)")
        #expect(e.devpath.contains("/virtual/block/loop"))
        #expect(!e.isUSBStickArrival)  // a loop device is not a USB stick
        #expect(monitor.scan().contains { $0.devnode == node })
    }
}
