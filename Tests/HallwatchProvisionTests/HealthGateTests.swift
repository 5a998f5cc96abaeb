import Foundation
import HallwatchCore
import Testing

@testable import HallwatchProvision

/// The health gate's bookkeeping, fed process states as the bus delivers them (the real processes are in
/// ActivationTests): healthy only up with the new version under one pid, restarts timed, new and removed
/// cameras told apart, and the gate's verdict with no bus at all.
@Suite("Health gate bookkeeping")
struct HealthGateTests {
    static func state(_ name: String, _ s: ProcessState.State, pid: Int32, version: String?) -> ProcessState {
        ProcessState(process: name, state: s, pid: pid, at: nil, configVersion: version)
    }

    @Test func upWithTheNewVersionUnderOnePidIsHealthyAndRestartsAreTimed() {
        let watch = HealthGate.Watch()
        let v3 = "v3-0123456789abcdef"
        func note(_ s: ProcessState, retained: Bool = false, at t: Double) {
            HealthGate.note(s, retained: retained, version: v3, at: t, in: watch)
        }
        // Retained states from before the announcement.
        note(Self.state("recorder", .up, pid: 10, version: "v2-0123456789abcdef"), retained: true, at: 0)
        note(Self.state("capture-lobby", .up, pid: 11, version: "v2-0123456789abcdef"), retained: true, at: 0)
        note(Self.state("capture-gym", .up, pid: 12, version: "v2-0123456789abcdef"), retained: true, at: 0)
        // The recorder adopts (same pid); lobby restarts in 1.5 s; gym stops; hall is new.
        note(Self.state("recorder", .up, pid: 10, version: v3), at: 0.2)
        note(Self.state("capture-lobby", .stopping, pid: 11, version: "v2-0123456789abcdef"), at: 0.3)
        note(Self.state("capture-lobby", .up, pid: 21, version: v3), at: 1.8)
        note(Self.state("capture-gym", .stopping, pid: 12, version: "v2-0123456789abcdef"), at: 0.3)
        note(Self.state("capture-hall", .up, pid: 22, version: v3), at: 1.0)
        // The pruner comes up with the new version, then dies: not healthy.
        note(Self.state("pruner", .up, pid: 30, version: v3), at: 0.5)
        note(Self.state("pruner", .down, pid: 0, version: nil), at: 0.9)
        let p = watch.processes.withLock { $0 }
        #expect(HealthGate.health("recorder", p["recorder"], version: v3, now: 4, settle: 3).healthy)
        // Up with the new version, but not yet for the settle time when the gate ends: not healthy (a process
        // crash-looping on the new configuration is up for a moment between restarts; seen in ActivationTests).
        let early = HealthGate.health("recorder", p["recorder"], version: v3, now: 2, settle: 3)
        #expect(!early.healthy && early.detail.contains("for only 1.8 s"), "\(early.detail)")
        let pruner = HealthGate.health("pruner", p["pruner"], version: v3, now: 4, settle: 3)
        #expect(!pruner.healthy && pruner.detail.contains("not up with \(v3)"), "\(pruner.detail)")
        let web = HealthGate.health("web", p["web"], version: v3, now: 4, settle: 3)
        #expect(!web.healthy && web.detail == "never reported on the bus")
        let lobby = p["capture-lobby"]?.activity
        #expect(lobby?.event == "restarted" && abs((lobby?.downSeconds ?? 0) - 1.5) < 1e-9)
        #expect(p["capture-gym"]?.activity?.event == "stopped")
        #expect(p["capture-hall"]?.activity?.event == "started")
        #expect(p["recorder"]?.activity == nil)
    }

    @Test func noBusIsUnhealthyForEveryService() async {
        let gate = HealthGate(timeout: .milliseconds(500))
        // `activate` blocks its thread: run it on one of its own, never on the test's concurrency pool.
        let report = await withCheckedContinuation { c in
            Thread {
                c.resume(
                    returning: gate.activate(
                        ConfigAnnouncement(
                            version: "v3-0123456789abcdef", bundleVersion: 3, cause: "applied", at: UTCMicros(0)),
                        busSocket: "/nonexistent/hallwatch/bus.sock", box: "b1"))
            }.start()
        }
        #expect(!report.healthy)
        #expect(report.services.map(\.name) == ["bus", "recorder", "web", "pruner"])
        #expect(
            report.failures.first?.hasPrefix("bus: the bus at /nonexistent/hallwatch/bus.sock did not answer") == true)
    }
}
