import Foundation
import Glibc
import HallwatchCore
import Testing

@testable import HallwatchBus

/// BusClient against a real mosquitto 2.0 per test (see ``TestBroker``).
@Suite("BusClient with a real mosquitto", .timeLimit(.minutes(1)))
struct BusClientTests {
    let topics = BusTopics(box: "box")
    let lobby = CameraID("lobby")!
    let gym = CameraID("gym")!

    @Test("publish/subscribe round trip delivers the exact bytes", arguments: [Int32(0), 1, 2])
    func roundTrip(qos: Int32) async throws {
        let broker = try TestBroker()
        try await broker.start()
        let sub = try await connectedClient("sub", broker)
        let pub = try await connectedClient("pub", broker)
        let topic = "hallwatch/v1/box/test/raw"
        let inbox = Inbox(try await sub.subscribe(topic, qos: qos, timeout: .seconds(5)))

        // Every byte value, NUL and invalid UTF-8 included, then a larger block; and an empty payload.
        let payload: [UInt8] = Array(0...255) + (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        try pub.publish(topic: topic, payload: payload, retain: false, qos: qos)
        try pub.publish(topic: topic, payload: [], retain: false, qos: qos)

        let got = try await inbox.wait(for: 2)
        #expect(got.count == 2)
        #expect(got[0] == BusMessage(topic: topic, payload: payload, retained: false))
        #expect(got[0].payload.count == 256 + 70_000)
        #expect(got[1] == BusMessage(topic: topic, payload: [], retained: false))
    }

    @Test("a retained message reaches a subscriber that connects later, flagged retained")
    func retainedForLateSubscriber() async throws {
        let broker = try TestBroker()
        try await broker.start()
        var state = CameraState(camera: lobby, state: .online, at: UTCMicros(1_780_000_000_000_000))
        state.codec = "h264"
        state.width = 1920
        state.height = 1080
        state.fps = 25
        let pub = try await connectedClient("capture-lobby", broker)
        try pub.publish(state, topic: topics.cameraState(lobby), retain: true)
        await pub.close()  // the DISCONNECT follows the PUBLISH, so the broker has stored it

        let late = try await connectedClient("web", broker)
        let inbox = Inbox(late.subscribe(topics.cameraState(lobby)))
        let got = try await inbox.wait(for: 1)
        #expect(got[0].topic == "hallwatch/v1/box/camera/lobby/state")
        #expect(got[0].retained == true)
        #expect(got[0].payload == (try BusCoding.encode(state)))
        #expect(try got[0].decode(CameraState.self) == state)
    }

    @Test("wildcard filters route exactly: camera/+/state gets both cameras, not the process topic")
    func wildcardRouting() async throws {
        let broker = try TestBroker()
        try await broker.start()
        let sub = try await connectedClient("web", broker)
        let cameras = Inbox(try await sub.subscribe(topics.allCameraStates, timeout: .seconds(5)))
        let everything = Inbox(try await sub.subscribe("\(topics.root)/#", timeout: .seconds(5)))
        let processes = Inbox(try await sub.subscribe(topics.allProcesses, timeout: .seconds(5)))
        let lobbyOnly = Inbox(try await sub.subscribe(topics.cameraState(lobby), timeout: .seconds(5)))
        #expect(topics.allCameraStates == "hallwatch/v1/box/camera/+/state")

        let pub = try await connectedClient("pub", broker)
        try pub.publish(topic: topics.cameraState(lobby), payload: Array("lobby".utf8), retain: false)
        try pub.publish(topic: topics.process("recorder"), payload: Array("recorder".utf8), retain: false)
        try pub.publish(topic: topics.cameraState(gym), payload: Array("gym".utf8), retain: false)
        try pub.publish(topic: topics.recording(gym), payload: Array("stats".utf8), retain: false)
        try pub.publish(topic: "hallwatch/v1/otherbox/camera/lobby/state", payload: Array("other".utf8), retain: false)

        try await everything.wait(for: 4)
        try await cameras.wait(for: 2)
        try await processes.wait(for: 1)
        try await lobbyOnly.wait(for: 1)
        try await Task.sleep(for: .milliseconds(300))  // anything extra (a duplicate) would arrive by now

        #expect(cameras.messages.map(\.topic) == [topics.cameraState(lobby), topics.cameraState(gym)])
        #expect(cameras.messages.map(\.payload) == [Array("lobby".utf8), Array("gym".utf8)])
        #expect(processes.messages.map(\.topic) == [topics.process("recorder")])
        #expect(lobbyOnly.messages.map(\.topic) == [topics.cameraState(lobby)])
        #expect(
            everything.messages.map(\.topic) == [
                topics.cameraState(lobby), topics.process("recorder"), topics.cameraState(gym), topics.recording(gym),
            ])
    }

    @Test("streams on one filter share the subscription; cancelling the last one unsubscribes")
    func cancellationUnsubscribes() async throws {
        let broker = try TestBroker()
        try await broker.start()
        let sub = try await connectedClient("web", broker)
        let first = Inbox(try await sub.subscribe(topics.allProcesses, timeout: .seconds(5)))
        let second = Inbox(try await sub.subscribe(topics.allProcesses, timeout: .seconds(5)))
        let pub = try await connectedClient("pub", broker)

        try pub.publish(topic: topics.process("a"), payload: [1], retain: false)
        try await first.wait(for: 1)
        try await second.wait(for: 1)

        first.cancel()
        try await eventually { sub.core.state.withLock { $0.filters[topics.allProcesses]?.subscribers.count == 1 } }
        try pub.publish(topic: topics.process("b"), payload: [2], retain: false)
        try await second.wait(for: 2)
        #expect(second.messages.map(\.payload) == [[1], [2]])
        #expect(first.messages.map(\.payload) == [[1]])

        second.cancel()
        try await eventually { sub.core.state.withLock { $0.filters.isEmpty && $0.subscribers.isEmpty } }
        try await eventually { first.ended && second.ended }
    }

    @Test("disconnect with reason 0x04 makes the broker publish the will, byte for byte")
    func lastWillOnDisconnectWithWill() async throws {
        let broker = try TestBroker()
        try await broker.start()
        let watcher = try await connectedClient("web", broker)
        let inbox = Inbox(try await watcher.subscribe(topics.process("recorder"), timeout: .seconds(5)))

        let will = BusWill.processDown(topics: topics, process: "recorder")
        let recorder = try await connectedClient("recorder", broker, will: will)
        let up = ProcessState(process: "recorder", state: .up, pid: getpid(), at: UTCMicros(1_780_000_000_000_000))
        try recorder.publish(up, topic: topics.process("recorder"), retain: true)
        try await inbox.wait(for: 1)

        // Wait for the PUBACK so that the broker has nothing left to write to `recorder` (see BusClient.close).
        try await eventually { recorder.core.state.withLock { $0.unackedPublishes.isEmpty } }
        recorder.disconnect(withWill: true)
        let got = try await inbox.wait(for: 2)
        try await eventually { broker.log.contains("Received DISCONNECT from recorder") }  // 0x04 arrived
        #expect(got[1].topic == topics.process("recorder"))
        #expect(got[1].payload == will.payload)
        let down = try got[1].decode(ProcessState.self)
        #expect(down == ProcessState(process: "recorder", state: .down, pid: 0, at: nil, reason: "connection lost"))

        // The will was retained: a late subscriber sees `down`, not `up`.
        let late = Inbox(watcher.subscribe(topics.process("recorder")))
        let retained = try await late.wait(for: 1)
        #expect(retained[0].retained && retained[0].payload == will.payload)
        #expect(throws: BusError.self) { try recorder.publish(topic: "x", payload: [], retain: false) }
    }

    @Test(
        "close() without the will right after a QoS 1 publication does not fire the will",
        arguments: 0..<10)
    func normalDisconnectDiscardsWill(round: Int) async throws {
        let broker = try TestBroker()
        try await broker.start()
        let watcher = try await connectedClient("web", broker)
        let inbox = Inbox(try await watcher.subscribe(topics.process("pruner"), timeout: .seconds(5)))
        let pruner = try await connectedClient("pruner", broker, will: .processDown(topics: topics, process: "pruner"))
        try pruner.publish(topic: topics.process("pruner"), payload: Array("stopping".utf8), retain: true)
        await pruner.close(withWill: false)
        try await inbox.wait(for: 1)
        try await eventually { broker.log.contains("Received DISCONNECT from pruner") }
        try await Task.sleep(for: .milliseconds(200))
        #expect(inbox.messages.map(\.payload) == [Array("stopping".utf8)])
        #expect(!broker.log.contains("pruner disconnected due to"))
    }

    @Test("a killed connection makes the broker publish the will (mosquitto_sub as the victim)")
    func lastWillOnKilledConnection() async throws {
        let broker = try TestBroker()
        try await broker.start()
        let watcher = try await connectedClient("web", broker)
        let inbox = Inbox(try await watcher.subscribe(topics.process("victim"), timeout: .seconds(5)))
        let will = BusWill.processDown(topics: topics, process: "victim")

        let victim = Process()
        victim.executableURL = URL(fileURLWithPath: "/usr/bin/mosquitto_sub")
        victim.arguments = [
            "--unix", broker.socketPath, "-V", "5", "-i", "victim", "-t", "nothing",
            "--will-topic", will.topic, "--will-payload", String(decoding: will.payload, as: UTF8.self),
            "--will-qos", "1", "--will-retain",
        ]
        try victim.run()
        try await eventually { broker.log.contains("as victim") }
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()

        let got = try await inbox.wait(for: 1)
        #expect(got[0].payload == will.payload)
        #expect(try got[0].decode(ProcessState.self).state == .down)
    }

    @Test("after the broker restarts the client reconnects, re-subscribes and re-asserts its retained state")
    func reconnectAfterBrokerRestart() async throws {
        let broker = try TestBroker()
        try await broker.start()
        let client = try await connectedClient("recorder", broker)
        let events = client.connectionEvents()
        let subscribed = Inbox(try await client.subscribe(topics.allCameraStates, timeout: .seconds(5)))
        try client.publish(topic: topics.process("recorder"), payload: Array("up".utf8), retain: true)

        try await broker.stop()
        try await eventually { !client.isConnected }
        #expect(!FileManager.default.fileExists(atPath: broker.socketPath))
        // During the outage QoS 1 is queued, QoS 0 is refused.
        try client.publish(topic: "\(topics.root)/test/outage", payload: [1], retain: false, qos: 1)
        #expect(throws: BusError.self) {
            try client.publish(topic: "\(topics.root)/test/outage", payload: [0], retain: false, qos: 0)
        }
        #expect(client.core.state.withLock { $0.unackedPublishes.count } == 1)
        try await broker.start()  // same config, same socket path, empty retained store (no persistence)

        var iterator = events.makeAsyncIterator()
        var seen: [BusConnectionEvent] = []
        while let event = await iterator.next() {
            seen.append(event)
            if case .connected = event { break }
        }
        #expect(
            seen.first.map { if case .disconnected(let e) = $0 { e.code == "bus.disconnected" } else { false } } == true
        )
        #expect(seen.last == .connected(sessionPresent: false, count: 2))
        try await client.connect(timeout: .seconds(10))  // returns at once
        #expect(client.isConnected)
        try await eventually { client.core.state.withLock { $0.unackedPublishes.isEmpty } }  // the queued one was PUBACKed

        // A publish after the reconnect reaches a fresh subscriber.
        let fresh = try await connectedClient("web", broker)
        let freshInbox = Inbox(try await fresh.subscribe("\(topics.root)/test/#", timeout: .seconds(5)))
        try client.publish(topic: "\(topics.root)/test/after", payload: [0xAB, 0x00, 0xCD], retain: false)
        #expect(
            try await freshInbox.wait(for: 1)[0]
                == BusMessage(topic: "\(topics.root)/test/after", payload: [0xAB, 0x00, 0xCD], retained: false))

        // The re-asserted retained state is there although the new broker started empty.
        let state = Inbox(fresh.subscribe(topics.process("recorder")))
        #expect(
            try await state.wait(for: 1)[0]
                == BusMessage(topic: topics.process("recorder"), payload: Array("up".utf8), retained: true))

        // The old subscription was renewed: it receives publications made after the restart.
        try await eventually { client.core.state.withLock { $0.filters[topics.allCameraStates]?.acked == true } }
        try fresh.publish(topic: topics.cameraState(gym), payload: [7], retain: false)
        #expect(try await subscribed.wait(for: 1)[0].payload == [7])
    }

    @Test("a client started before the broker exists connects once the broker appears")
    func brokerAppearsLater() async throws {
        let broker = try TestBroker()
        let client = BusClient(clientID: "early", socketPath: broker.socketPath, will: nil, logger: testLogger("early"))
        let subscription = Inbox(client.subscribe(topics.allProcesses))  // queued until connected
        // Published before any broker exists: QoS 1 is queued; retained state is also re-asserted on connect.
        try client.publish(topic: topics.process("early"), payload: Array("up".utf8), retain: true)
        try client.publish(topic: "\(topics.root)/test/queued", payload: [9], retain: false)

        let error = await #expect(throws: BusError.self) { try await client.connect(timeout: .milliseconds(300)) }
        #expect(error?.code == "bus.timeout")
        #expect(error?.message.contains("socket does not exist") == true)
        #expect(!client.isConnected)

        try await broker.start()
        try await client.connect(timeout: .seconds(10))
        #expect(client.isConnected)
        try await eventually { client.core.state.withLock { $0.filters[topics.allProcesses]?.acked == true } }
        let pub = try await connectedClient("pub", broker)
        let late = Inbox(pub.subscribe(topics.process("early")))
        #expect(
            try await late.wait(for: 1)[0]
                == BusMessage(topic: topics.process("early"), payload: Array("up".utf8), retained: true))
        try pub.publish(topic: topics.process("x"), payload: [42], retain: false)
        try await eventually {
            subscription.messages.contains(BusMessage(topic: topics.process("x"), payload: [42], retained: false))
        }
        // Its own retained state arrives through its subscription too (queued publish and re-assertion: twice).
        #expect(
            subscription.messages.contains { $0.topic == topics.process("early") && $0.payload == Array("up".utf8) })
        try await eventually { client.core.state.withLock { $0.unackedPublishes.isEmpty } }  // the queued QoS 1 went out
    }

    @Test("the broker listens on its Unix socket only, not on TCP")
    func noTCPListener() async throws {
        let broker = try TestBroker()
        try await broker.start()
        let pid = try #require(broker.pid)

        let tcp = try run(["ss", "-H", "-ltnp"])
        #expect(!tcp.contains("pid=\(pid),"), "mosquitto \(pid) listens on TCP:\n\(tcp)")
        let tcp6 = try run(["ss", "-H", "-ltnp", "-6"])
        #expect(!tcp6.contains("pid=\(pid),"))
        let unix = try run(["ss", "-H", "-lxp"])
        #expect(unix.split(separator: "\n").contains { $0.contains(broker.socketPath) && $0.contains("pid=\(pid),") })
        #expect(broker.log.contains("Opening unix listen socket on path \(broker.socketPath)"))
        #expect(!broker.log.contains("Opening ipv4 listen socket"))
        #expect(!broker.log.contains("Opening ipv6 listen socket"))
    }

    @Test("errors carry stable codes and libmosquitto's text")
    func errorCodes() async throws {
        let never = BusClient(clientID: "x", socketPath: "/nonexistent/bus.sock", will: nil, logger: testLogger("x"))
        // QoS 0 cannot be queued while disconnected.
        let qos0 = #expect(throws: BusError.self) {
            try never.publish(topic: "a/b", payload: [1], retain: false, qos: 0)
        }
        #expect(qos0?.code == "bus.publish")
        #expect(qos0?.mosquittoError == "The client is not currently connected.")
        // Wildcards are not topic names.
        let wildcard = #expect(throws: BusError.self) { try never.publish(topic: "a/+", payload: [1], retain: false) }
        #expect(wildcard?.code == "bus.publish")
        #expect(wildcard?.mosquittoError == "Invalid function arguments provided.")

        let long = "/tmp/" + String(repeating: "x", count: 120) + "/bus.sock"
        let tooLong = BusClient(clientID: "y", socketPath: long, will: nil, logger: testLogger("y"))
        let config = await #expect(throws: BusError.self) { try await tooLong.connect(timeout: .seconds(1)) }
        #expect(config?.code == "bus.config")

        let badWill = BusClient(
            clientID: "z", socketPath: "/tmp/bus.sock", will: BusWill(topic: "a/#", payload: []),
            logger: testLogger("z"))
        #expect(
            throws: BusError(
                code: "bus.config", message: "libmosquitto rejected the last-will on a/#",
                mosquittoError: "Invalid function arguments provided.")
        ) {
            try badWill.start()
        }

        // An invalid filter yields a finished stream.
        let invalid = Inbox(never.subscribe("a/#/b"))
        try await eventually { invalid.ended }

        never.disconnect()
        let closed = #expect(throws: BusError.self) { try never.publish(topic: "a/b", payload: [1], retain: false) }
        #expect(closed?.code == "bus.closed")
        #expect(
            BusError(code: "bus.timeout", message: "m", mosquittoError: "e").description
                == "[bus.timeout] m (mosquitto: e)")
    }

    @Test("destroying a client while the broker is gone does not wait for the reconnect delay")
    func deinitWhileReconnecting() async throws {
        let broker = try TestBroker()
        try await broker.start()
        var client: BusClient? = try await connectedClient("gone", broker)
        try await broker.stop()
        try await eventually { client?.isConnected == false }
        try await Task.sleep(for: .milliseconds(1200))  // inside a reconnect delay now
        let start = ContinuousClock.now
        client = nil
        let took = ContinuousClock.now - start
        #expect(took < .milliseconds(500), "deinit took \(took)")
    }
}
