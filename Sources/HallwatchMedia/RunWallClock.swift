import HallwatchCore

/// Maps one run's media time to box UTC: where each fragment starts on the box's clock.
///
/// A camera's clock is not the box's: it runs fast or slow (hundreds of ppm are common), and network
/// delay makes every frame arrive late by a varying amount. The mapping is a line, `wall(m) =
/// wall₀ + m · (1 + rate)`, advanced fragment by fragment:
///
/// 1. **Settling.** Until ``settle()`` is called (at most until ``settlingMedia90k`` of media has passed),
///    the start is the minimum over the samples of *arrival − media time* (network delay only ever makes
///    samples late, so the minimum converges on the true start, and a burst of buffered frames right after
///    PLAY does not drag it late). The start is never earlier than ``floor`` (the camera's previous run's
///    end), so runs never overlap on the box's clock, even after the box's clock was stepped back. The
///    capture session holds a run's segments until it settles, so no fragment's time is fixed on a start
///    that later moves (issue 12, case 8).
/// 2. **Following.** Afterwards the line only slews: at each fragment boundary the target is the lowest
///    *arrival − media time* seen over the last ``windowMedia90k`` (the lower envelope, immune to jitter)
///    plus the media time there; the error is target − wall(m), and the rate becomes `error / τ`
///    (τ = ``steerSeconds``), clamped to ±``maxSlew`` (500 ppm). Wall time never jumps and never runs
///    backwards; a camera 300 ppm fast or slow is followed within ~25 ms (300 ppm × τ, plus the envelope's
///    lag; measured in `RunWallClockTests`).
///
/// Units: media time in 90 kHz ticks since the run's start, wall time and arrivals in box UTC µs.
struct RunWallClock {
    /// Largest rate difference between wall time and media time: 500 ppm.
    static let maxSlew = 500e-6
    /// Steering time constant, seconds: the error is corrected at `error / τ` per second of media.
    static let steerSeconds = 60.0
    /// Media time during which the start may still move earlier (a PLAY burst), 90 kHz ticks (5 s).
    static let settlingMedia90k: Int64 = 5 * 90_000
    /// Span of the lower envelope, 90 kHz ticks (30 s).
    static let windowMedia90k: Int64 = 30 * 90_000

    /// Earliest allowed start (box UTC µs): the end of the camera's previous run.
    let floor: Int64?
    /// Wall time at ``lastMedia``, µs (fractional: the line is exact, rounding happens on output).
    private(set) var lastWall: Double
    /// Media time of the last boundary, ticks.
    private(set) var lastMedia: Int64 = 0
    /// Current rate: wall µs per media µs, minus 1.
    private(set) var rate = 0.0
    /// Per fragment, the lowest *arrival − media time* (the start it implies, µs) and the media time
    /// the fragment ends at; the window's minimum is the lower envelope.
    private var envelope: [(media: Int64, implied: Double)] = []
    private var fragmentMin = Double.infinity
    /// Step 1 is over: the start no longer moves.
    private(set) var settled = false
    /// At the last boundary: how far the line was behind the fragment's earliest arrival, µs (its lowest
    /// *arrival − media time* minus the line's start). Network delay keeps it near 0; a camera whose clock
    /// runs much slower than it says (timestamps of 25 fps, frames at 21 per second) makes it grow without
    /// bound, since the line slews at most 500 ppm.
    private(set) var behindMicros = 0.0

    /// - Parameters:
    ///   - firstArrival: Box UTC µs at which the run's first sample arrived (media time 0).
    ///   - floor: The end of the camera's previous run (box UTC µs), if any.
    init(firstArrival: Int64, floor: Int64?) {
        self.floor = floor
        lastWall = Double(max(firstArrival, floor ?? .min))
    }

    static func micros(_ ticks: Int64) -> Double { Double(ticks) * 100 / 9 }

    /// The wall time of media time `media` on the current line, µs.
    func wall(at media: Int64) -> Double { lastWall + Self.micros(media - lastMedia) * (1 + rate) }

    /// One sample: media time `media` (ticks since the run's start) arrived at `arrival` (box UTC µs).
    mutating func observe(media: Int64, arrival: Int64) {
        let implied = Double(arrival) - Self.micros(media)
        fragmentMin = min(fragmentMin, implied)
        if !settled && media < Self.settlingMedia90k {
            // Step 1: a sample earlier than the line says proves the start later than the truth: move
            // the line back to it, but never before the previous run's end.
            let start = lastWall - Self.micros(lastMedia)
            let lowest = max(implied, Double(floor ?? .min))
            if lowest < start { lastWall = lowest + Self.micros(lastMedia) }
        }
    }

    /// Ends step 1: from now on the start stays where the arrivals so far put it (later lower arrivals steer
    /// the rate, step 2).
    mutating func settle() { settled = true }

    /// A fragment boundary at media time `media`: returns the wall time there (box UTC µs) and steers
    /// the line for the next fragment (step 2).
    mutating func boundary(at media: Int64) -> UTCMicros {
        let here = wall(at: media)
        lastWall = here
        lastMedia = media
        if fragmentMin.isFinite {
            envelope.append((media, fragmentMin))
            behindMicros = fragmentMin + Self.micros(media) - here
        }
        fragmentMin = .infinity
        envelope.removeAll { media - $0.media > Self.windowMedia90k }
        if media >= Self.settlingMedia90k, let low = envelope.map(\.implied).min() {
            let error = low + Self.micros(media) - here
            rate = min(Self.maxSlew, max(-Self.maxSlew, error / (Self.steerSeconds * 1e6)))
        }
        return UTCMicros(Int64(here.rounded()))
    }
}
