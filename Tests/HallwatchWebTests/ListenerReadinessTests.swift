import HallwatchProcess
import Testing

@testable import HallwatchWeb

@Suite("hallwatch-web: READY=1 only once every listener is bound")
struct ListenerReadinessTests {
    @Test("the last of three listeners is the one that makes the web ready, and only once")
    func lastListenerReady() {
        let readiness = ListenerReadiness(
            expected: 3, status: "serving", notifier: ServiceNotifier(environment: [:]))
        #expect(readiness.bound() == false)
        #expect(readiness.bound() == false)
        #expect(readiness.bound() == true)
        // A listener restarted later (or a fourth) does not send READY=1 again.
        #expect(readiness.bound() == false)
    }

    @Test("no listener configured still needs one bound before ready")
    func atLeastOne() {
        let readiness = ListenerReadiness(expected: 0, status: "serving", notifier: ServiceNotifier(environment: [:]))
        #expect(readiness.bound() == true)
        #expect(readiness.bound() == false)
    }
}
