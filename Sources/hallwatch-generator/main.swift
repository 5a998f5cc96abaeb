// hallwatch-generator: the systemd generator (systemd.generator(7)) that makes the running capture workers
// follow the configuration. Installed as /usr/lib/systemd/system-generators/hallwatch-generator; systemd runs
// it at boot and at each `systemctl daemon-reload` with three output directories (normal, early, late).
import Foundation
import HallwatchConfig
import HallwatchProcess

/// Wants symlinks `NORMAL/hallwatch.target.wants/hallwatch-capture@<escaped id>.service` → the template, one
/// per configured camera stream (a camera, and `<id>/sub` for one with a `subStream`: `lobby-sub`), and the
/// recording disks' mount units (``DiskMounts``). A refused configuration writes nothing (no capture worker, no
/// disk mounted), says why on stderr (the journal, through systemd) and exits 78, so the rest of the box still
/// boots.
func generate() -> Int32 {
    var args = Array(CommandLine.arguments.dropFirst())
    var configPath = ProcessInfo.processInfo.environment["HALLWATCH_CONFIG"] ?? "/etc/hallwatch/hallwatch.yaml"
    var template = "/usr/lib/systemd/system/hallwatch-capture@.service"
    while let i = args.firstIndex(where: { $0 == "--config" || $0 == "--template" }), i + 1 < args.count {
        if args[i] == "--config" { configPath = args[i + 1] } else { template = args[i + 1] }
        args.removeSubrange(i...(i + 1))
    }
    guard (1...3).contains(args.count) else {
        FileHandle.standardError.write(
            Data(
                "usage: hallwatch-generator [--config FILE] [--template UNITFILE] NORMAL_DIR [EARLY_DIR LATE_DIR]\n"
                    .utf8))
        return ExitStatus.usage
    }
    let config: HallwatchConfig
    do { config = try ConfigLoader.load(path: configPath) } catch let e as ConfigError {
        FileHandle.standardError.write(
            Data(
                ("hallwatch-generator: \(e.code): \(configPath) refused; no capture worker started\n"
                    + e.diagnostics.map { "\($0)\n" }.joined()).utf8))
        return ExitStatus.config
    } catch {
        FileHandle.standardError.write(Data("hallwatch-generator: cannot read \(configPath): \(error)\n".utf8))
        return ExitStatus.config
    }
    let wants = URL(fileURLWithPath: args[0]).appendingPathComponent("hallwatch.target.wants")
    let fm = FileManager.default
    do {
        try fm.createDirectory(at: wants, withIntermediateDirectories: true)
        for camera in config.streams {
            let link = wants.appendingPathComponent(SystemdEscape.captureUnit(camera.id.rawValue)).path
            try? fm.removeItem(atPath: link)
            try fm.createSymbolicLink(atPath: link, withDestinationPath: template)
        }
        let disks = DiskMounts.units(for: config.recorder.disks, configPath: configPath)
        for problem in disks.problems {
            FileHandle.standardError.write(Data("hallwatch-generator: \(problem)\n".utf8))
        }
        for unit in disks.units {
            let file = URL(fileURLWithPath: args[0]).appendingPathComponent(unit.path)
            try fm.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(unit.text.utf8).write(to: file)
        }
    } catch {
        FileHandle.standardError.write(Data("hallwatch-generator: cannot write in \(args[0]): \(error)\n".utf8))
        return ExitStatus.software
    }
    return 0
}

/// `hallwatch-generator --sync [--config FILE] [--spool DIR] [--systemctl PATH]`: run by
/// `hallwatch-config.service` when the configuration's `current` switched (steps S3–S6 of
/// HallwatchProcess's ``CaptureUnitSync``): daemon-reload (this generator runs again), start the target
/// (new cameras' workers), stop the workers of cameras no longer configured. One line per action on stderr
/// (the journal).
func sync(_ args: [String]) -> Int32 {
    var configPath = ProcessInfo.processInfo.environment["HALLWATCH_CONFIG"] ?? "/etc/hallwatch/hallwatch.yaml"
    var spool = CaptureUnitSync.defaultSpool
    var systemctl = "/usr/bin/systemctl"
    var rest = args[...]
    while let flag = rest.popFirst() {
        guard let value = rest.popFirst(), ["--config", "--spool", "--systemctl"].contains(flag) else {
            FileHandle.standardError.write(
                Data("usage: hallwatch-generator --sync [--config FILE] [--spool DIR] [--systemctl PATH]\n".utf8))
            return ExitStatus.usage
        }
        switch flag {
        case "--config": configPath = value
        case "--spool": spool = value
        default: systemctl = value
        }
    }
    let (report, status) = CaptureUnitSync.run(configPath: configPath, spool: spool, systemctl: systemctl)
    var lines = ["hallwatch-generator --sync: \(report.spoolEntries) switch(es) noted"]
    if status == ExitStatus.config {
        lines.append("\(configPath) does not load: no capture worker stopped")
    } else {
        lines.append("wanted: \(report.wanted.isEmpty ? "-" : report.wanted.joined(separator: " "))")
        lines.append("stopped: \(report.stopped.isEmpty ? "-" : report.stopped.joined(separator: " "))")
    }
    lines += report.failures.map { "failed: \($0)" }
    FileHandle.standardError.write(Data(lines.map { $0 + "\n" }.joined().utf8))
    return status
}

if CommandLine.arguments.dropFirst().first == "--sync" {
    exit(sync(Array(CommandLine.arguments.dropFirst(2))))
}
exit(generate())
