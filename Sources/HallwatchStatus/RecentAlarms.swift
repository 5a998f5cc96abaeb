import HallwatchBus
import HallwatchCore
import Synchronization

/// The most recent typed errors published on the box's error topic (`…/errors`, not retained: only those
/// since this process started), newest first, at most ``capacity``, one per (code, camera, process): a
/// condition repeated every second (each camera's `storage.noHealthyDisk` while its disk is gone) keeps one line,
/// its newest, so the alarm that caused it (`storage.vanished`) is not pushed off the list.
public final class RecentAlarms: Sendable {
    /// How many are kept.
    public let capacity: Int
    let alarms = Mutex<[ErrorEvent]>([])
    let task = Mutex<Task<Void, Never>?>(nil)

    /// Subscribes on `bus` (which the caller connects) when given; without one, feed it with ``add(_:)``.
    public init(bus: BusClient?, topics: BusTopics, capacity: Int = 20) {
        self.capacity = capacity
        if let bus {
            let stream = bus.subscribe(topics.errors)
            let t = Task { [weak self] in
                for await m in stream {
                    if let e = try? m.decode(ErrorEvent.self) { self?.add(e) }
                }
            }
            task.withLock { $0 = t }
        }
    }

    deinit { task.withLock { $0?.cancel() } }

    /// Adds one alarm at the front, replacing an older one with the same code, camera and process.
    public func add(_ event: ErrorEvent) {
        alarms.withLock { a in
            a.removeAll { $0.code == event.code && $0.camera == event.camera && $0.process == event.process }
            a.insert(event, at: 0)
            if a.count > capacity { a.removeLast(a.count - capacity) }
        }
    }

    /// Newest first.
    public func recent() -> [ErrorEvent] { alarms.withLock { $0 } }
}
