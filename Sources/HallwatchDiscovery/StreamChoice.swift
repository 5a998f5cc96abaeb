/// Which profiles of a device to record: a main stream and a sub stream per video source.
///
/// Rules (issue 5 §3), applied per video source (`VideoSourceConfiguration/SourceToken`; an NVR has one
/// per channel, a camera usually one):
/// 1. Candidates are profiles whose encoder says H.264 or H.265 and gives a resolution. JPEG, MPEG-4 and
///    unknown encodings are skipped; profiles are never judged by name or by their order in the reply.
/// 2. Main: the candidate with the most pixels; ties go to the higher frame-rate limit, then the higher
///    bit-rate limit, then H.265 over H.264 (less disk for the same picture), and last the smaller token
///    (only so that the choice is deterministic).
/// 3. Sub: the candidate with the fewest pixels that is strictly smaller than the main one (for live-view
///    grids); ties broken the same way. None when every candidate is the main one's size.
/// 4. Profiles with a video encoder whose encoding or resolution is missing are listed in
///    ``SourceChoice/undetermined``: the caller must learn them another way (GetVideoEncoderConfiguration,
///    or the stream's SDP) before they can be chosen.
public enum StreamChooser {
    /// The choice for one video source.
    public struct SourceChoice: Sendable, Equatable {
        /// The video source token (`""` when the profiles name none).
        public var videoSourceToken: String
        /// The profile to record (rule 2), if any.
        public var main: MediaProfile?
        /// The smaller profile for live view (rule 3), if any.
        public var sub: MediaProfile?
        /// Tokens of profiles whose video encoder lacks an encoding or a resolution, in token order.
        public var undetermined: [String]
    }

    /// One ``SourceChoice`` per video source, in video source token order.
    public static func choose(_ profiles: [MediaProfile]) -> [SourceChoice] {
        let bySource = Dictionary(grouping: profiles) { $0.videoSourceToken ?? "" }
        return bySource.keys.sorted().map { source in
            let ps = bySource[source] ?? []
            let candidates = ps.filter { p in
                guard let e = p.videoEncoder, let enc = e.encoding, enc.isRecordable, e.resolution != nil else {
                    return false
                }
                return true
            }
            let undetermined = ps.filter { p in
                guard let e = p.videoEncoder else { return false }
                return e.encoding == nil || (e.encoding?.isRecordable == true && e.resolution == nil)
            }.map(\.token).sorted()
            let best = candidates.reduce(nil as MediaProfile?) { acc, p in
                guard let a = acc else { return p }
                return better(p, than: a, largest: true) ? p : a
            }
            var sub: MediaProfile?
            if let m = best, let mPixels = m.videoEncoder?.resolution?.pixels {
                sub = candidates.filter { ($0.videoEncoder?.resolution?.pixels ?? 0) < mPixels }
                    .reduce(nil as MediaProfile?) { acc, p in
                        guard let a = acc else { return p }
                        return better(p, than: a, largest: false) ? p : a
                    }
            }
            return SourceChoice(videoSourceToken: source, main: best, sub: sub, undetermined: undetermined)
        }
    }

    /// Whether `a` beats `b`: by pixel count (most when `largest`, else fewest), then frame rate, bit rate,
    /// H.265, smaller token.
    static func better(_ a: MediaProfile, than b: MediaProfile, largest: Bool) -> Bool {
        let ea = a.videoEncoder
        let eb = b.videoEncoder
        let pa = ea?.resolution?.pixels ?? 0
        let pb = eb?.resolution?.pixels ?? 0
        if pa != pb { return largest ? pa > pb : pa < pb }
        let fa = ea?.frameRateLimit ?? 0
        let fb = eb?.frameRateLimit ?? 0
        if fa != fb { return fa > fb }
        let ba = ea?.bitrateLimitKbps ?? 0
        let bb = eb?.bitrateLimitKbps ?? 0
        if ba != bb { return ba > bb }
        let ha = ea?.encoding == .h265
        let hb = eb?.encoding == .h265
        if ha != hb { return ha }
        return a.token < b.token
    }
}
