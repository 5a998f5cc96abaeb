// hallwatch-generator: the systemd generator (systemd.generator(7)) that makes the running capture workers
// follow the configuration. Installed as /usr/lib/systemd/system-generators/hallwatch-generator; systemd runs
// it at boot and at each `systemctl daemon-reload` with three output directories (normal, early, late).
import Foundation
import HallwatchConfig
import HallwatchProcess

/// Wants symlinks `NORMAL/hallwatch.target.wants/hallwatch-capture@<escaped id>.service` → the template, one
/// per configured camera stream (a camera, and `<id>/sub` for one with a `subStream`: `lobby-sub`). A refused configuration writes nothing (no capture worker), says why on stderr
/// (the journal, through systemd) and exits 78, so the rest of the box still boots.
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
    } catch {
        FileHandle.standardError.write(Data("hallwatch-generator: cannot write \(wants.path): \(error)\n".utf8))
        return ExitStatus.software
    }
    return 0
}

exit(generate())
