import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore

/// The processes of a box, as the development supervisor runs them: mosquitto on the bus socket, the
/// recorder, the retention pruner, one capture worker per configured camera, and (for the demo) a
/// simulated camera.
public struct BoxPlan: Sendable {
    /// The configuration the processes run with.
    public var config: HallwatchConfig
    /// Its file, handed to each process with `--config`.
    public var configPath: String
    /// Directory for the generated broker config, pid files and logs.
    public var runDirectory: String
    /// Directory holding the Hallwatch executables.
    public var binDirectory: String
    /// Simulated-camera mounts (`NAME=FILE`) and port, when the plan includes one.
    public var simcam: (port: Int, mounts: [String])?
    /// Extra simcam arguments (the demo's ONVIF options).
    public var simcamArguments: [String] = []
    /// The web file, when the plan runs `hallwatch-web` (the demo does).
    public var webConfigPath: String? = nil

    /// A plan from its parts.
    public init(
        config: HallwatchConfig, configPath: String, runDirectory: String, binDirectory: String,
        simcam: (port: Int, mounts: [String])? = nil,
        simcamArguments: [String] = []
    ) {
        self.config = config
        self.configPath = configPath
        self.runDirectory = runDirectory
        self.binDirectory = binDirectory
        self.simcam = simcam
        self.simcamArguments = simcamArguments
    }

    /// The capture worker of one camera stream (a camera or its sub stream, ``HallwatchConfig/streams``).
    public func captureProcess(_ cam: CameraConfig) -> SupervisedProcess {
        SupervisedProcess(
            name: cam.id.captureProcessName, executable: binDirectory + "/hallwatch-capture",
            arguments: ["--config", configPath, "--camera", cam.id.rawValue])
    }

    /// Writes the broker's config and returns the processes in start order.
    public func processes() throws -> [SupervisedProcess] {
        try FileManager.default.createDirectory(atPath: runDirectory + "/disk0", withIntermediateDirectories: true)
        let brokerConf = runDirectory + "/mosquitto.conf"
        // Started by a developer, mosquitto runs as that developer: it must not drop to its own user, which
        // could not create the socket in the developer's directory (see notes/stack.md).
        let user = String(cString: getpwuid(geteuid()).pointee.pw_name)
        try BrokerConfig(socketPath: config.bus.socket, user: user).write(to: brokerConf)
        var list = [
            SupervisedProcess(name: "mosquitto", executable: "/usr/sbin/mosquitto", arguments: ["-c", brokerConf])
        ]
        if let sim = simcam {
            list.append(
                SupervisedProcess(
                    name: "simcam", executable: binDirectory + "/hallwatch-simcam",
                    arguments: ["--port", "\(sim.port)"] + sim.mounts.flatMap { ["--mount", $0] } + simcamArguments))
        }
        list.append(
            SupervisedProcess(
                name: "recorder", executable: binDirectory + "/hallwatch-recorder", arguments: ["--config", configPath])
        )
        list.append(
            SupervisedProcess(
                name: "pruner", executable: binDirectory + "/hallwatch-pruner", arguments: ["--config", configPath]))
        if config.discovery != nil {
            list.append(
                SupervisedProcess(
                    name: "discovery", executable: binDirectory + "/hallwatch-discovery",
                    arguments: ["--config", configPath]))
        }
        if let webConfigPath {
            list.append(
                SupervisedProcess(
                    name: "web", executable: binDirectory + "/hallwatch-web",
                    arguments: ["--config", configPath, "--web-config", webConfigPath]))
        }
        for cam in config.streams { list.append(captureProcess(cam)) }
        return list
    }

    /// The demo: four simulated cameras serving the real clips in `mediaDirectory`, recorded under `runDirectory`.
    /// It lists no camera: the discovery agent finds the simcam's four ONVIF devices on the loopback interface
    /// (127.0.0.1; multicast with TTL 1 and `IP_MULTICAST_IF` 127.0.0.1 never leaves the host) and adopts them
    /// (`adopt: auto`), with the ONVIF credentials in `passwordFile`.
    /// The demo's door controller: the simcam's ONVIF device 3 (the entrance camera), subscribed for events.
    public static let demoEventDevice = "entrance-door"

    /// How often the demo's simulated door takes a step (opened, closed, access granted, forced, closed).
    public static let demoDoorEvery = "2m"

    /// - Parameter onvifPort: the simcam's ONVIF HTTP port (`--onvif-port`), whose device 3 is the door
    ///   controller the agent subscribes to (``demoEventDevice``).
    public static func demoConfig(runDirectory: String, simcamPort: Int, onvifPort: Int) -> String {
        """
        # Generated by `hallwatchctl demo`: a simulated ONVIF camera on 127.0.0.1, found and adopted by discovery;
        # recorded under \(runDirectory). Adopted cameras are appended to the cameras list below.
        box: demo
        building: Demo Elementary School
        bus:
          socket: \(runDirectory)/bus.sock
        recorder:
          socket: \(runDirectory)/recorder.sock
          disks:
            - name: disk0
              path: \(runDirectory)/disk0
          fsyncCadence: 1s
          slotSizeBytes: 16777216
          slotCount: 64
        retention:
          maxAge: 30d
          minAge: 5m
          reserve: 2m
          reserveSlots: 4
        capture:
          maxFragmentDuration: 1s
          ioTimeout: 5s
          backoffInitial: 500ms
          backoffMax: 5s
        discovery:
          interfaces: [127.0.0.1]
          period: 10s
          listen: 1s
          adopt: auto
          username: hallwatch
          passwordFile: \(runDirectory)/onvif.password
          eventDevices:
            - id: \(demoEventDevice)
              xaddr: http://127.0.0.1:\(onvifPort)/onvif/3/device_service
        cameras: []

        """
    }

    /// Writes a fresh random ONVIF password for the demo's simcam and agent (mode 0600); returns the path.
    public static func writeDemoPassword(runDirectory: String) throws -> String {
        let path = runDirectory + "/onvif.password"
        var g = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        let password = String((0..<20).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &g)] })
        _ = FileManager.default.createFile(
            atPath: path, contents: Data((password + "\n").utf8), attributes: [.posixPermissions: 0o600])
        return path
    }

    /// The demo's simcam mounts for the clips in `mediaDirectory` (see `Image/fetch-clips.sh`): four cameras,
    /// each with a small H.264 sub stream on `<name>-sub` (the simcam offers it as the device's second profile,
    /// so adoption fills `subStream`).
    public static func demoMounts(mediaDirectory: String) -> [String] {
        [
            "lobby=\(mediaDirectory)/h264-aac.mp4", "gym=\(mediaDirectory)/h264-bframes.mp4",
            "hallway=\(mediaDirectory)/hevc.mp4", "entrance=\(mediaDirectory)/fullhd.mp4",
            "lobby-sub=\(mediaDirectory)/sub-360p.mp4", "gym-sub=\(mediaDirectory)/sub-bikes.mp4",
            "hallway-sub=\(mediaDirectory)/sub-bikes.mp4", "entrance-sub=\(mediaDirectory)/sub-360p.mp4",
        ]
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    public static func freePort() -> Int { LoopbackPort.pickFree() }
}
