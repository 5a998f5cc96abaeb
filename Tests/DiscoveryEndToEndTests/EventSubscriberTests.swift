import Foundation
import HallwatchCore
import HallwatchDiscovery
import HallwatchSimONVIF
import Logging
import Synchronization
import Testing

/// The ONVIF pull-point subscriber against the simulated device's event service (issue 16), on 127.0.0.1.
@Suite("ONVIF events: pull-point subscriber against the simulated device", .serialized)
struct EventSubscriberTests {
    static let user = "hallwatch"
    let password = randomPassword()

    func simulator(maxSkewSeconds: Int64 = 10) async throws -> ONVIFSimulator {
        let devices = [
            SimulatedDevice(index: 0, seed: "events", mount: "door", encoding: "H264", width: 640, height: 360, fps: 25)
        ]
        // UsernameToken only, and the device's clock an hour ahead: every request must be in its clock.
        let configuration = ONVIFSimConfiguration(
            address: "127.0.0.1", httpPort: 0, rtspPort: 8554, devices: devices,
            credentials: ONVIFCredentials(username: Self.user, password: password), authMode: .usernameToken,
            clockOffsetSeconds: 3600, discovery: false)
        var strict = configuration
        strict.maxSkewSeconds = maxSkewSeconds
        let sim = ONVIFSimulator(configuration: strict, logger: Logger(label: "sim"))
        try await sim.start()
        return sim
    }

    /// A running subscriber and what it emitted.
    final class Run: Sendable {
        final class Sink: Sendable {
            let list = Mutex<[ContractEvent]>([])
        }
        let subscriber: PullPointSubscriber
        let http = BoundedHTTPClient()
        let sink = Sink()
        let task = Mutex<Task<Void, Never>?>(nil)

        init(_ sim: ONVIFSimulator, password: String, settings: PullPointSubscriber.Settings) {
            let sink = sink
            subscriber = PullPointSubscriber(
                device: "door-ctl", deviceXAddr: URL(string: sim.deviceXAddr(0))!, http: http,
                credentials: ONVIFCredentials(username: EventSubscriberTests.user, password: password),
                settings: settings, logger: Logger(label: "subscriber")
            ) { event in sink.list.withLock { $0.append(event) } }
            let s = subscriber
            task.withLock { $0 = Task { await s.run() } }
        }

        var events: [ContractEvent] { sink.list.withLock { $0 } }
        var types: [String] { events.map(\.type) }

        func stop() async {
            let t = task.withLock { $0 }
            t?.cancel()
            await t?.value
            http.shutdown()
        }
    }

    static func settings() -> PullPointSubscriber.Settings {
        var s = PullPointSubscriber.Settings()
        s.pullTimeout = .seconds(1)
        s.retryDelay = .milliseconds(300)
        return s
    }

    /// Polls `condition` every 50 ms for up to `seconds` (generous: 2 loaded cores).
    func eventually(_ seconds: Double = 30, _ condition: () -> Bool) async throws -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }

    @Test func eventsArriveOnceAndInitializedStormsCreateNone() async throws {
        let sim = try await simulator()
        let run = Run(sim, password: password, settings: Self.settings())
        // The first pull brings the four properties' Initialized: state, no event.
        #expect(try await eventually { run.subscriber.stats.initialized == 4 })
        sim.emit(.forced, device: 0)
        sim.emit(.closed, device: 0)
        sim.emit(.granted, device: 0)
        #expect(try await eventually { run.events.count >= 4 })
        #expect(run.types == ["door.opened", "door.forced", "door.closed", "access.granted"])
        // A storm of 50 rounds of Initialized (new times each round, so no hash repeats): no event.
        sim.initializedStorm(device: 0, rounds: 50)
        #expect(try await eventually { run.subscriber.stats.initialized == 4 + 50 * 4 })
        // And a door opened after the storm still arrives, once.
        sim.emit(.opened, device: 0)
        #expect(try await eventually { run.events.count >= 5 })
        try await Task.sleep(for: .seconds(2))
        await run.stop()
        let stats = sim.eventStats(device: 0)
        await sim.stop()

        let events = run.events
        #expect(run.types == ["door.opened", "door.forced", "door.closed", "access.granted", "door.opened"])
        #expect(Set(events.map(\.id)).count == events.count)
        #expect(events.allSatisfy { $0.source == "onvif:door-ctl" && $0.doorref == "Door1" })
        // The device's own time (its clock is an hour ahead), never merged with the receive time.
        let now = SystemClocks().utcNow()
        for e in events {
            let t = try #require(ISO8601.parse(e.time))
            #expect(abs(t.micros - now.micros - 3_600_000_000) < 120_000_000)
            #expect(e.data.timeFrom == "device")
        }
        let forced = try #require(events.first { $0.type == "door.forced" })
        #expect(forced.data.topic == "Door/State/DoorAlarm" && forced.data.dataItems?["State"] == "DoorForcedOpen")
        // The holder's name is moved where the web drops it unless the building keeps names.
        let granted = try #require(events.first { $0.type == "access.granted" })
        #expect(granted.data.holder == "Pat Example" && granted.data.dataItems?["CredentialHolderName"] == nil)
        // One subscription, extended by each pull: never renewed; unsubscribed on stop.
        #expect(stats.subscriptions == 1 && stats.renewals == 0 && stats.unsubscribes == 1 && stats.live == 0)
        #expect(run.subscriber.stats.renewals == 0 && run.subscriber.stats.unsubscribed == 1)
        // The contract document: CloudEvents 1.0 JSON.
        let json = try #require(try JSONSerialization.jsonObject(with: forced.json()) as? [String: Any])
        #expect(json["specversion"] as? String == "1.0" && json["type"] as? String == "door.forced")
    }

    /// A fresh user's finding: the demo's door subscription was refused every other pull and marked a gap each
    /// time. The simulated device checked a waiting PullMessages' UsernameToken again at the end of its wait,
    /// when its `Created` was older than the device's window; a device checks it once, on arrival.
    @Test func pullsThatWaitTheirWholeTimeoutAreNotRefused() async throws {
        let sim = try await simulator(maxSkewSeconds: 1)
        var settings = Self.settings()
        settings.pullTimeout = .seconds(2)
        let run = Run(sim, password: password, settings: settings)
        #expect(try await eventually { run.subscriber.stats.pulls >= 4 })
        await run.stop()
        let stats = sim.eventStats(device: 0)
        await sim.stop()
        #expect(run.events.isEmpty, "\(run.types)")
        #expect(stats.subscriptions == 1, "subscriptions \(stats.subscriptions): lost and made again")
    }

    @Test func aDroppedSubscriptionIsRenewedAndItsGapMarked() async throws {
        let sim = try await simulator()
        // A device that needs Renew (pulls do not extend its pull points) and stamps events in 1970.
        sim.setEventFaults(times1970: true, needsRenew: true)
        var settings = Self.settings()
        settings.initialTermination = .seconds(8)
        let run = Run(sim, password: password, settings: settings)
        #expect(try await eventually { run.subscriber.stats.renewals >= 2 })
        #expect(sim.eventStats(device: 0).subscriptions == 1)
        sim.emit(.held, device: 0)
        #expect(try await eventually { run.events.count >= 1 })
        // Lost: the device forgets its pull points (a reboot). The subscriber subscribes again and marks the gap;
        // the new subscription's Initialized (the door is still held) is state, not a second door.held.
        sim.dropEventSubscriptions(device: 0)
        #expect(try await eventually { run.events.count >= 2 })
        sim.emit(.forced, device: 0)
        #expect(try await eventually { run.events.count >= 3 })
        try await Task.sleep(for: .seconds(2))
        await run.stop()
        let stats = sim.eventStats(device: 0)
        await sim.stop()

        let types = run.types
        #expect(types == ["door.held", "x.onvif.subscription-gap", "door.opened", "door.forced"])
        let gap = try #require(run.events.first { $0.type == "x.onvif.subscription-gap" })
        let from = try #require(gap.data.gapFrom.flatMap(ISO8601.parse))
        let to = try #require(gap.data.gapTo.flatMap(ISO8601.parse))
        #expect(from < to && to.micros - from.micros < 30_000_000)
        #expect(gap.data.reason?.contains("unknown subscription") == true)
        #expect(stats.subscriptions == 2 && stats.renewals >= 2 && stats.unsubscribes == 1)
        #expect(run.subscriber.stats.gaps == 1)
        // 1970 stamps are not believed: the box's receive time stands in, and the device's text is kept.
        let now = SystemClocks().utcNow()
        for e in run.events where e.type != "x.onvif.subscription-gap" {
            #expect(e.data.timeFrom == "box" && e.data.deviceTime?.hasPrefix("1970-01-01") == true)
            #expect(abs((ISO8601.parse(e.time)?.micros ?? 0) - now.micros) < 120_000_000)
        }
    }

    /// A door that closed while the subscription was lost: the new subscription's `Initialized` differs from
    /// the state known before the gap, so the change is an event (with the gap's bounds), not only state.
    @Test func aDoorThatChangedDuringASubscriptionGapIsReportedWithTheGap() async throws {
        let sim = try await simulator()
        let run = Run(sim, password: password, settings: Self.settings())
        #expect(try await eventually { run.subscriber.stats.pulls >= 1 })
        sim.emit(.opened, device: 0)
        #expect(try await eventually { run.events.count >= 1 })
        // Lost, and the door closes before the subscriber can subscribe again (its retry waits 300 ms).
        sim.dropEventSubscriptions(device: 0)
        sim.emit(.closed, device: 0)
        #expect(try await eventually { run.events.count >= 3 })
        // A storm of the same states afterwards changes nothing.
        sim.initializedStorm(device: 0, rounds: 3)
        try await Task.sleep(for: .seconds(2))
        await run.stop()
        await sim.stop()

        #expect(run.types == ["door.opened", "x.onvif.subscription-gap", "door.closed"])
        let gap = try #require(run.events.first { $0.type == "x.onvif.subscription-gap" })
        let closed = try #require(run.events.last)
        #expect(closed.data.operation == "Initialized" && closed.data.dataItems?["State"] == "Closed")
        #expect(closed.data.gapFrom == gap.data.gapFrom && closed.data.gapTo == gap.data.gapTo)
        #expect(closed.data.reason?.hasPrefix("changed while the subscription was lost") == true)
        #expect(closed.doorref == "Door1")
        #expect(run.subscriber.stats.gaps == 1)
    }

    @Test(.enabled(if: Repo.interopRuns, "needs .venv-test (make test-deps)"))
    func onvifZeepAsyncPullsTheSimulatedEvents() async throws {
        guard let python = Repo.interopPython() else { return }
        let sim = try await simulator()
        let dir = try TempDir("zeep-events")
        let pw = try dir.write("pw", password + "\n")
        let child = try Child(
            "onvif-zeep-async", python,
            [
                Repo.root.appendingPathComponent("Tests/Interop/onvif_events.py").path,
                "127.0.0.1", "\(sim.httpPort)", Self.user, pw,
            ], log: dir.path + "/py.log")
        _ = try await child.waitForLine("subscribed", seconds: 60)
        sim.emit(.forced, device: 0)
        let line = try await child.waitForLine("{", seconds: 60)
        try await Task.sleep(for: .milliseconds(500))
        await child.stop()
        let stats = sim.eventStats(device: 0)
        await sim.stop()
        let out = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let messages = try #require(out["messages"] as? [[String: Any]])
        let initialized = messages.filter { $0["operation"] as? String == "Initialized" }
        #expect(initialized.count == 4)
        #expect(Set(initialized.compactMap { $0["topic"] as? String }).contains("tns1:Door/State/DoorAlarm"))
        let changed = messages.filter { $0["operation"] as? String == "Changed" }
        #expect(changed.compactMap { ($0["data"] as? [String: String])?["State"] } == ["Open", "DoorForcedOpen"])
        #expect((changed.last?["source"] as? [String: String])?["DoorToken"] == "Door1")
        #expect(stats.subscriptions == 1 && stats.unsubscribes == 1 && stats.pulls >= 1)
    }
}
