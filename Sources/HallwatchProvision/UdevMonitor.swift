import CUdev
import Foundation

/// One block-device event, whether from the libudev monitor, the scan at start, or a test: the one shape
/// ``ProvisionService/handle(_:)`` takes, so tests drive the same code path as a plugged stick.
public struct BlockEvent: Sendable, Equatable {
    /// `add`, `change`, `remove` (udev's ACTION).
    public var action: String
    /// The device node (`/dev/sdb1`) or, in tests, an image file.
    public var devnode: String
    /// The sysfs path (`/devices/pci…/usb2/2-1/…/block/sdb/sdb1`); USB devices have `/usb` in it.
    public var devpath: String
    /// udev's properties (`ID_BUS`, `ID_FS_TYPE`, …); empty for raw kernel events.
    public var properties: [String: String]

    /// An event.
    public init(action: String, devnode: String, devpath: String, properties: [String: String] = [:]) {
        self.action = action
        self.devnode = devnode
        self.devpath = devpath
        self.properties = properties
    }

    /// Whether the event is a USB block device appearing: `add` or `change`, and `ID_BUS=usb` or a sysfs path
    /// under a USB controller (raw kernel events carry no udev properties).
    public var isUSBStickArrival: Bool {
        (action == "add" || action == "change")
            && (properties["ID_BUS"] == "usb" || devpath.contains("/usb"))
    }
}

/// A libudev monitor of the `block` subsystem, owning its `udev` and `udev_monitor` handles.
///
/// `group` is `udev` (events after udevd's rules, with properties) or `kernel` (raw uevents: what these
/// machines deliver, since no udevd runs). Not thread-safe: one owner reads it.
public final class UdevMonitor {
    private let udev: OpaquePointer
    private let monitor: OpaquePointer

    /// A monitor on `group`; `nil` when libudev refuses (no netlink permission).
    public init?(group: String = "udev") {
        guard let u = udev_new() else { return nil }
        guard let m = udev_monitor_new_from_netlink(u, group) else {
            udev_unref(u)
            return nil
        }
        udev_monitor_filter_add_match_subsystem_devtype(m, "block", nil)
        guard udev_monitor_enable_receiving(m) >= 0 else {
            udev_monitor_unref(m)
            udev_unref(u)
            return nil
        }
        udev = u
        monitor = m
    }

    deinit {
        udev_monitor_unref(monitor)
        udev_unref(udev)
    }

    /// The next event, waiting at most `timeout`; `nil` when none came.
    public func next(timeout: Duration) -> BlockEvent? {
        var pfd = pollfd(fd: udev_monitor_get_fd(monitor), events: Int16(POLLIN), revents: 0)
        let c = timeout.components
        let ms = Int32(c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000)
        guard poll(&pfd, 1, ms) > 0, let dev = udev_monitor_receive_device(monitor) else { return nil }
        defer { udev_device_unref(dev) }
        return Self.event(dev, action: udev_device_get_action(dev).map { String(cString: $0) } ?? "add")
    }

    /// Every block device present now, as `add` events (the scan at start).
    public func scan() -> [BlockEvent] {
        guard let e = udev_enumerate_new(udev) else { return [] }
        defer { udev_enumerate_unref(e) }
        udev_enumerate_add_match_subsystem(e, "block")
        udev_enumerate_scan_devices(e)
        var out: [BlockEvent] = []
        var entry = udev_enumerate_get_list_entry(e)
        while let en = entry {
            if let path = udev_list_entry_get_name(en), let dev = udev_device_new_from_syspath(udev, path) {
                if let ev = Self.event(dev, action: "add") { out.append(ev) }
                udev_device_unref(dev)
            }
            entry = udev_list_entry_get_next(en)
        }
        return out
    }

    private static func event(_ dev: OpaquePointer, action: String) -> BlockEvent? {
        guard let node = udev_device_get_devnode(dev) else { return nil }
        var props: [String: String] = [:]
        var entry = udev_device_get_properties_list_entry(dev)
        while let en = entry, props.count < 256 {
            if let k = udev_list_entry_get_name(en), let v = udev_list_entry_get_value(en) {
                props[String(cString: k)] = String(cString: v)
            }
            entry = udev_list_entry_get_next(en)
        }
        return BlockEvent(
            action: action, devnode: String(cString: node),
            devpath: udev_device_get_devpath(dev).map { String(cString: $0) } ?? "", properties: props)
    }
}

/// The long-running provisioner's event handling: which events start a run, one run per device at a time.
///
/// A stick removed and re-added while its run is still going is not processed twice; two sticks at once are
/// processed one after the other (the caller's loop is serial).
public final class ProvisionService: @unchecked Sendable {
    private let makeProvisioner: @Sendable () throws(ProvisionError) -> Provisioner
    private let sandbox: ReaderSandbox
    private let lock = NSLock()
    private var busy = Set<String>()

    /// A service that builds a fresh ``Provisioner`` per event (state and keyring re-read each time).
    public init(
        sandbox: ReaderSandbox = .default, provisioner: @escaping @Sendable () throws(ProvisionError) -> Provisioner
    ) {
        self.makeProvisioner = provisioner
        self.sandbox = sandbox
    }

    /// Processes `event` when it is a USB block device arriving and that device is not already being
    /// processed; returns the outcome, or `nil` when the event was not for us.
    public func handle(_ event: BlockEvent, afterStep: (ConfigStore.Step) -> Void = { _ in }) -> ProvisionOutcome? {
        guard event.isUSBStickArrival else { return nil }
        let fresh = lock.withLock { busy.insert(event.devnode).inserted }
        guard fresh else { return nil }
        defer { _ = lock.withLock { busy.remove(event.devnode) } }
        do throws(ProvisionError) {
            return try makeProvisioner().process(
                device: event.devnode, apply: true, sandbox: sandbox, afterStep: afterStep)
        } catch {
            return ProvisionOutcome(
                result: .refused, reasons: [error], building: nil, manifest: nil, signerKeyID: nil, versionBefore: 0,
                versionAfter: 0)
        }
    }
}
