import Testing

@testable import HallwatchMedia

/// The run's wall clock (``RunWallClock``) against cameras whose clocks lie, simulated frame by frame:
/// 25 fps, 1 s fragments, network delay 5 ms plus jitter up to 40 ms and a 400 ms stall now and then,
/// and the first 2 s of frames arriving as one burst right after PLAY.
@Suite("Run wall clock")
struct RunWallClockTests {
    struct Outcome {
        var worstError = 0.0
        var worstSlew = 0.0
        var boundaries = 0
        var minStep = Double.infinity
    }

    /// Simulates `hours` of a camera whose clock runs `ppm` fast (negative: slow). True capture time of
    /// frame k is k/25 s of box time; its media time is that × (1 + ppm); it arrives after the delay.
    /// Returns the largest |wall − true time| at every fragment boundary after the first 5 s, the largest
    /// slew between boundaries (ppm), and the smallest wall step between boundaries.
    func simulate(ppm: Double, hours: Double, floor: Int64? = nil, startAt: Int64 = 1_800_000_000_000_000) -> Outcome {
        // A deterministic jitter (64-bit LCG, Knuth's MMIX constants), so the simulation is the same every run.
        var state: UInt64 = 42
        func jitter(upTo n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        let fps = 25.0
        let frames = Int(hours * 3600 * fps)
        var clock: RunWallClock?
        var out = Outcome()
        var lastBoundary: (media: Int64, wall: Int64)?
        for k in 0..<frames {
            let trueMicros = Double(k) / fps * 1e6
            let media90k = Int64((trueMicros * (1 + ppm * 1e-6) * 0.09).rounded())
            var delay = 5_000 + jitter(upTo: 40_000)
            if k % 9_000 == 4_500 { delay += 400_000 }  // a stall every 6 min
            let arrival: Int64 = k < 50 ? startAt + 2_000_000 + 5_000 : startAt + Int64(trueMicros) + Int64(delay)  // PLAY burst
            if clock == nil { clock = RunWallClock(firstArrival: arrival, floor: floor) }
            if k % 25 == 0 {
                let wall = clock!.boundary(at: media90k)
                if media90k >= RunWallClock.settlingMedia90k {
                    out.worstError = max(out.worstError, abs(Double(wall.micros - startAt) - trueMicros))
                    if let (m, w) = lastBoundary {
                        let slew = (Double(wall.micros - w) / (Double(media90k - m) / 0.09) - 1) * 1e6
                        out.worstSlew = max(out.worstSlew, abs(slew))
                        out.minStep = min(out.minStep, Double(wall.micros - w))
                    }
                    lastBoundary = (media90k, wall.micros)
                    out.boundaries += 1
                }
            }
            clock!.observe(media: media90k, arrival: arrival)
        }
        return out
    }

    @Test(arguments: [300.0, -300.0])
    func cameraOff300ppmFor24HoursStaysWithin50ms(ppm: Double) {
        let o = simulate(ppm: ppm, hours: 24)
        #expect(o.boundaries >= 24 * 3600 - 6)
        #expect(o.worstError <= 50_000, "worst error \(o.worstError / 1000) ms at \(ppm) ppm")
        // The line slews at most 500 ppm (1 µs of rounding per boundary allowed) and never runs backwards.
        #expect(o.worstSlew <= 501, "slew \(o.worstSlew) ppm")
        #expect(o.minStep > 0)
        print(
            "\(ppm) ppm camera, 24 h: worst error \(String(format: "%.1f", o.worstError / 1000)) ms at \(o.boundaries) fragment boundaries, largest slew \(String(format: "%.0f", o.worstSlew)) ppm"
        )
    }

    @Test func aPlayBurstDoesNotDragTheStartLate() {
        var clock = RunWallClock(firstArrival: 10_000_000, floor: nil)
        // 2 s of buffered frames arrive at once at t = 10 s; the camera started them at t = 8 s.
        for k in 0...50 { clock.observe(media: Int64(k) * 3600, arrival: 10_000_000) }
        #expect(abs(clock.wall(at: 0) - 8_000_000) < 1, "start \(clock.wall(at: 0))")
    }

    @Test func aRunNeverStartsBeforeThePreviousOnesEnd() {
        // The box's clock stepped back 10 min: arrivals say the run starts before the previous run ended.
        let previousEnd: Int64 = 1_000_000_000_000
        var clock = RunWallClock(firstArrival: previousEnd - 600_000_000, floor: previousEnd)
        for k in 0..<125 {
            clock.observe(media: Int64(k) * 3600, arrival: previousEnd - 600_000_000 + Int64(k) * 40_000)
        }
        #expect(clock.boundary(at: 0).micros == previousEnd)
        // Afterwards it slews back towards the box's clock at 500 ppm, no faster.
        var last = previousEnd
        var media: Int64 = 0
        for k in 125..<(125 + 25 * 600) {
            let m = Int64(k) * 3600
            if k % 25 == 0 {
                let w = clock.boundary(at: m).micros
                let step = Double(w - last) / (Double(m - media) / 0.09)
                #expect(step >= 1 - 501e-6 && step <= 1 + 501e-6)
                last = w
                media = m
            }
            clock.observe(media: m, arrival: previousEnd - 600_000_000 + Int64(k) * 40_000)
        }
        #expect(clock.rate == -RunWallClock.maxSlew)
    }
}
