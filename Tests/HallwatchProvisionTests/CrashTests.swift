import Foundation
import Testing

@testable import HallwatchProvision

/// kill -9 of `hallwatch-provision --once` after each apply step (U1–U4): after a restart (`recover`), the
/// old or the new configuration is current and whole, and no staging is left.
@Suite(
    "Crash at each apply step", .serialized,
    .enabled(if: getuid() == 0, "the reader sandbox, loop devices and FUSE need root"))
struct CrashTests {
    static var tool: String? {
        var root = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { root.deleteLastPathComponent() }
        var dirs: [URL] = []
        if let exe = Bundle.main.executableURL { dirs.append(exe.deletingLastPathComponent()) }
        dirs.append(root.appendingPathComponent(".build/debug"))
        return dirs.map { $0.appendingPathComponent("hallwatch-provision").path }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @Test(arguments: ConfigStore.Step.allCases)
    func killNineLeavesOldOrNewWhole(_ step: ConfigStore.Step) throws {
        let tool = try #require(Self.tool, "build hallwatch-provision first (swift build)")
        let box = try TestBox("crash")
        defer { box.cleanup() }
        #expect(box.process(try box.stick([Fx.Bundle()], name: "v2.img")).result == .applied)
        let old = box.currentFiles()
        var v3 = Fx.Bundle()
        v3.version = 3
        v3.files = [("hallwatch.yaml", Array((Fx.goodYAML + "# v3\n").utf8)), ("plans/a.txt", Array("a".utf8))]
        let image = try box.stick([v3], name: "v3.img")
        let argv = [
            tool, "--once", "--device", image, "--keyring", box.dir + "/keyring", "--store", box.store.root,
            "--serial", box.identity.serial, "--building", "north-es", "--district", "lincoln-usd",
            "--health-timeout", "0",
        ]
        let r = try Fx.run(argv, env: ["HALLWATCH_PROVISION_CRASH_AFTER": step.rawValue])
        #expect(r.status == 9 || (step == .current && r.status == 9), "exit \(r.status): \(r.out)")
        try box.store.recover()
        let now = box.currentFiles()
        #expect(now == old || now["plans/a.txt"] == Array("a".utf8) && now.count == 2, "\(step)")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: box.store.root + "/releases")
            .filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty)
        if step != .staged && step != .previous { #expect(now != old) }  // U3 written: rolled forward
        // Running again completes (or finds it already applied).
        let again = try Fx.run(argv)
        #expect(again.status == 0, "\(again.out)")
        #expect(box.currentFiles()["plans/a.txt"] == Array("a".utf8))
    }

    /// kill -9 after each revert step (V1–V4) of a health gate that failed (no bus answers within 1 s): after
    /// `recover`, the old configuration is current and whole, with its state, and no staging is left.
    @Test(arguments: ConfigStore.RevertStep.allCases)
    func killNineWhileRevertingLeavesTheOldWhole(_ step: ConfigStore.RevertStep) throws {
        let tool = try #require(Self.tool, "build hallwatch-provision first (swift build)")
        let box = try TestBox("crash-revert")
        defer { box.cleanup() }
        #expect(box.process(try box.stick([Fx.Bundle()], name: "v2.img")).result == .applied)
        let (old, oldState, oldCurrent) = (box.currentFiles(), box.store.state(), box.store.current())
        var v3 = Fx.Bundle()
        v3.version = 3
        v3.files = [("hallwatch.yaml", Array((Fx.goodYAML + "# v3\n").utf8))]
        let argv = [
            tool, "--once", "--device", try box.stick([v3], name: "v3.img"), "--keyring", box.dir + "/keyring",
            "--store", box.store.root, "--serial", box.identity.serial, "--building", "north-es", "--district",
            "lincoln-usd", "--health-timeout", "1",
        ]
        let r = try Fx.run(argv, env: ["HALLWATCH_PROVISION_CRASH_AFTER": step.rawValue])
        #expect(r.status == 9, "exit \(r.status): \(r.out)")
        try box.store.recover()
        #expect(box.currentFiles() == old && box.store.current() == oldCurrent, "\(step)")
        #expect(box.store.state() == oldState, "\(step)")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: box.store.root + "/releases")
            .filter { $0.hasPrefix(".") }
        #expect(leftovers.isEmpty)
    }
}
