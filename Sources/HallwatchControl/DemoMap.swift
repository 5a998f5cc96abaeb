import Foundation
import HallwatchConfig
import HallwatchCore
import Logging

/// The demo's floor-plan map: the two floors of a small school the project drew (`Image/demo/school-ground.svg`,
/// `Image/demo/school-upper.svg`) with the four demo cameras placed on the ground floor and two doors — and
/// those doors in the `doors:` section: the main entrance is fed by the simulated ONVIF door controller
/// (``BoxPlan/demoEventDevice``, a door event every two minutes) and by anything POSTed for it.
///
/// The demo's configuration lists no camera at start (discovery adopts them), and a `map:` section may only pin
/// configured cameras, so ``addWhenAdopted(configPath:floorPlans:logger:)`` appends the section once all four are
/// in the file — as an installer would after adoption. The web picks it up without a restart (it re-reads the
/// map when the file changes).
public enum DemoMap {
    /// The demo cameras' ids, as the demo's simcam mounts name them (``BoxPlan/demoMounts(mediaDirectory:)``).
    public static let cameras: [CameraID] = ["lobby", "gym", "hallway", "entrance"].map { CameraID($0)! }

    /// The `map:` section for floor plans in `floorPlans` (an absolute directory).
    public static func yaml(floorPlans dir: String) -> String {
        """

        # Added by `hallwatchctl demo` once discovery adopted the four cameras: the demo school's floor plans.
        map:
          floors:
            - id: ground
              name: Ground floor
              level: 0
              image: \(dir)/school-ground.svg
            - id: upper
              name: Upper floor
              level: 1
              image: \(dir)/school-upper.svg
          cameras:
            - { camera: entrance, floor: ground, x: 350, y: 645, direction: 110, angle: 80 }
            - { camera: lobby, floor: ground, x: 505, y: 465, direction: 225, angle: 90 }
            - { camera: hallway, floor: ground, x: 780, y: 385, direction: 270, angle: 60 }
            - { camera: gym, floor: ground, x: 1115, y: 650, direction: 315, angle: 90 }
          doors:
            - { id: main-entrance, floor: ground, x: 425, y: 676 }
            - { id: gym-hall, floor: ground, x: 800, y: 385 }

        # The doors (issue 16): events at the main entrance come from the simulated ONVIF door controller
        # (source onvif:\(BoxPlan.demoEventDevice), its DoorToken Door1) or from any event source naming it as subject.
        doors:
          - id: main-entrance
            name: Main entrance
            refs:
              - { source: "onvif:\(BoxPlan.demoEventDevice)", ref: Door1 }
            direct: [entrance]
            indirect: [lobby]
            preRoll: 10s
            postRoll: 30s
            holdOn: [door.forced]
          - id: gym-hall
            name: Gym hall door
            direct: [hallway]
            indirect: [gym]

        """
    }

    /// Waits (checking every second, for up to `timeout`) until the configuration at `configPath` holds the four
    /// demo cameras, then appends ``yaml(floorPlans:)`` — only if the result loads (it is checked first) and the
    /// file has no `map:` yet. Logs what it did; never throws (the demo goes on without a map).
    public static func addWhenAdopted(
        configPath: String, floorPlans: String, timeout: Duration = .seconds(600), logger: Logger
    ) async {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < timeout {
            if let config = try? ConfigLoader.load(path: configPath) {
                if config.map != nil { return }
                if cameras.allSatisfy({ config.camera($0) != nil }) {
                    append(configPath: configPath, floorPlans: floorPlans, logger: logger)
                    return
                }
            }
            do { try await Task.sleep(for: .seconds(1)) } catch { return }
        }
        logger.warning("the demo's cameras were not all adopted in time: no floor-plan map")
    }

    static func append(configPath: String, floorPlans: String, logger: Logger) {
        // The same lock camera adoption takes while it rewrites the file.
        let fd = open(configPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        flock(fd, LOCK_EX)
        guard let text = try? String(contentsOfFile: configPath, encoding: .utf8) else { return }
        let updated = text + yaml(floorPlans: floorPlans)
        do {
            _ = try ConfigLoader.parse(updated, file: configPath)
            try updated.write(toFile: configPath, atomically: true, encoding: .utf8)
            logger.info("floor-plan map added to the demo's configuration", metadata: ["floorPlans": "\(floorPlans)"])
        } catch {
            logger.warning("the demo's floor-plan map was not added: \(error)")
        }
    }
}
