import Foundation
import Glibc

/// What the box shows an installer who has no screen (issue 17 step 10): LED patterns that differ by rhythm as
/// well as colour (a colour-blind installer, or a box with one LED, still tells them apart) and buzzer beeps,
/// through the kernel's LED class (`/sys/class/leds/<name>/{trigger,delay_on,delay_off,brightness}`,
/// Documentation/leds/leds-class.rst and ledtrig-timer). A box without LEDs configured shows nothing.
public struct Indicator: Sendable {
    /// The moments the installer is told about.
    public enum Event: String, Sendable, CaseIterable {
        /// A FAT/exFAT stick was found: blue (else amber) flashing briefly once a second (50 ms / 950 ms);
        /// one short beep.
        case stickSeen = "stick-seen"
        /// Applying — do not pull the stick: amber fast blink (100 ms on, 100 ms off).
        case applying
        /// Applied and the receipt written — safe to remove: green steady; two short beeps.
        case applied
        /// The same bundle is already current; nothing changed — safe to remove: green slow blink (1 s / 1 s);
        /// one medium beep.
        case alreadyApplied = "already-applied"
        /// Refused (or reverted by the health gate) — the receipt says why: red blink (250 ms / 250 ms);
        /// three long beeps.
        case refused
        /// The receipt could not be written to the stick (kept pending for the next one): red and amber
        /// alternating slowly (red 1.5 s on / 0.5 s off); one long beep.
        case receiptNotWritten = "receipt-not-written"
    }

    /// One LED's state: off, steady on, or blinking with the timer trigger.
    public struct Light: Sendable, Equatable {
        /// Milliseconds on and off; `nil` for steady.
        public var blinkMs: (on: Int, off: Int)?
        /// Lit at all.
        public var lit: Bool
        /// Off.
        public static let off = Light(blinkMs: nil, lit: false)
        /// Steady on.
        public static let steady = Light(blinkMs: nil, lit: true)
        /// Blinking.
        public static func blink(_ on: Int, _ off: Int) -> Light { Light(blinkMs: (on, off), lit: true) }
        public static func == (a: Light, b: Light) -> Bool {
            a.lit == b.lit && a.blinkMs?.on == b.blinkMs?.on && a.blinkMs?.off == b.blinkMs?.off
        }
    }

    /// The LED class directories by colour (`green`, `red`, `amber`, `blue`), from the provisioner's options;
    /// empty: no LEDs.
    public var leds: [String: String]
    /// An LED-class buzzer (a GPIO beeper exposed as an LED), or `nil`.
    public var buzzer: String?
    /// Writes one sysfs attribute (injected by tests; default: open, write, close).
    public var write: @Sendable (_ path: String, _ value: String) -> Void
    /// Waits between beeps (injected by tests).
    public var sleep: @Sendable (_ milliseconds: Int) -> Void

    /// An indicator; the defaults write real sysfs files and really wait.
    public init(
        leds: [String: String] = [:], buzzer: String? = nil,
        write: @escaping @Sendable (String, String) -> Void = Indicator.writeAttribute,
        sleep: @escaping @Sendable (Int) -> Void = { usleep(useconds_t($0) * 1000) }
    ) {
        self.leds = leds
        self.buzzer = buzzer
        self.write = write
        self.sleep = sleep
    }

    /// Each colour's light for `event`; colours the box lacks fall back (blue → amber → green for
    /// `stickSeen`, amber → red for `applying`, else any LED), so a one-LED box still shows the rhythm: no two
    /// events share a rhythm (steady, 50/950, 100/100, 250/250, 1000/1000, 1500/500 ms) or a beep pattern.
    public func lights(for event: Event) -> [String: Light] {
        func first(_ colours: [String]) -> String? { colours.first { leds[$0] != nil } ?? leds.keys.sorted().first }
        var out = Dictionary(uniqueKeysWithValues: leds.keys.map { ($0, Light.off) })
        let pick: (colour: String?, light: Light)
        switch event {
        case .stickSeen: pick = (first(["blue", "amber", "green"]), .blink(50, 950))
        case .applying: pick = (first(["amber", "red"]), .blink(100, 100))
        case .applied: pick = (first(["green"]), .steady)
        case .alreadyApplied: pick = (first(["green"]), .blink(1000, 1000))
        case .refused: pick = (first(["red"]), .blink(250, 250))
        case .receiptNotWritten:
            pick = (first(["red"]), .blink(1500, 500))
            if leds["amber"] != nil, pick.colour != "amber" { out["amber"] = .blink(500, 1500) }
        }
        if let c = pick.colour { out[c] = pick.light }
        return out
    }

    /// The beeps for `event`: milliseconds on, each followed by 150 ms of silence.
    public func beeps(for event: Event) -> [Int] {
        switch event {
        case .stickSeen: [100]
        case .alreadyApplied: [300]
        case .applying: []
        case .applied: [100, 100]
        case .refused: [600, 600, 600]
        case .receiptNotWritten: [1200]
        }
    }

    /// Shows `event`: every configured LED set (trigger `none` + brightness, or trigger `timer` + delays),
    /// then the beeps, on the calling thread (at most ~2.5 s).
    public func show(_ event: Event) {
        for (colour, light) in lights(for: event).sorted(by: { $0.key < $1.key }) {
            guard let dir = leds[colour] else { continue }
            if let blink = light.blinkMs {
                write(dir + "/trigger", "timer")
                write(dir + "/delay_on", "\(blink.on)")
                write(dir + "/delay_off", "\(blink.off)")
            } else {
                write(dir + "/trigger", "none")
                write(dir + "/brightness", light.lit ? "1" : "0")
            }
        }
        guard let buzzer else { return }
        for ms in beeps(for: event) {
            write(buzzer + "/brightness", "1")
            sleep(ms)
            write(buzzer + "/brightness", "0")
            sleep(150)
        }
    }

    /// Writes `value` to the sysfs attribute `path` (no symlink followed at the last component; errors
    /// ignored: a missing LED must never stop provisioning).
    public static let writeAttribute: @Sendable (String, String) -> Void = { path, value in
        let fd = open(path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    /// Parses a `colour=directory` option (`--led green=/sys/class/leds/hw:green`): a known colour and an
    /// absolute path without `..`; `nil` otherwise (the caller reports it).
    public static func parseLED(_ option: String) -> (colour: String, directory: String)? {
        guard let eq = option.firstIndex(of: "=") else { return nil }
        let colour = String(option[..<eq])
        let dir = String(option[option.index(after: eq)...])
        guard ["green", "red", "amber", "blue"].contains(colour), dir.hasPrefix("/"), !dir.contains("..") else {
            return nil
        }
        return (colour, dir)
    }
}
