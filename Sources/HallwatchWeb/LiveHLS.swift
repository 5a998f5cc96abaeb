import Dispatch
import Foundation
import HallwatchCore
import HallwatchStorage
import Hummingbird
import NIOCore
import Synchronization

/// Live view for browsers without Media Source Extensions (iPhones before iOS 17.1): HLS (RFC 8216) with
/// fMP4 segments (§3.3) made from the stored fragments — the recorder's own bytes, no transcoding.
///
/// - `GET /api/v1/cameras/{id}/live.m3u8?stream=main|sub`: a live media playlist (no `EXT-X-ENDLIST`) of the camera's
///   newest run over the last ``window``: `EXT-X-MAP` names the run's init segment, each `EXTINF` one stored
///   fragment (≤ `capture.maxFragmentDuration`), `EXT-X-MEDIA-SEQUENCE` the first fragment's sequence number in
///   its run. Audited as `live.start` (details `hls main`) once per session and camera per 10 minutes.
/// - `GET /api/v1/cameras/{id}/hls/{segment}`: `<run>-init.mp4` (the run's `ftyp`+`moov`) or `<run>-<seq>.m4s`
///   (one `moof`+`mdat`), from the same recent window; older ones are 404 `hls.gone`.
///
/// The disks are read (read-only, through HallwatchStorage's ``RecordingLibrary``, CRC-checked) at most once per
/// ``refresh`` per camera, off Swift's cooperative pool, and the window is shared by every client of that camera.
/// HLS is plain HTTP: it is seconds behind (a segment can be listed only once it is stored, after the fsync),
/// which is why the WebSocket path is the default and this one only the fallback.
public final class LiveHLS: Sendable {
    let disks: [(name: String, path: String)]
    let box: String?
    /// Per camera: when the window was read (monotonic ns) and the newest run's init segment and fragments.
    let windows = Mutex<[CameraID: (atNanos: UInt64, run: ExportRun?)]>([:])
    let views = RepeatedViews()
    /// How much recent recording a playlist lists: 8 s.
    static let window: Int64 = 8_000_000
    /// How long a window read from the disks is reused: 0.5 s.
    static let refreshNanos: UInt64 = 500_000_000

    /// HLS over the recording disks `disks` (`recorder.disks`: name and directory) of box `box`.
    public init(disks: [(name: String, path: String)], box: String?) {
        self.disks = disks
        self.box = box
    }

    /// The newest run of `camera` over the last ``window``, read at most once per ``refreshNanos``; `nil` when
    /// nothing of it was stored lately.
    /// - Throws: `StorageError` reading the index or a record.
    func recent(_ camera: CameraID, now: UTCMicros) async throws -> ExportRun? {
        let t = DispatchTime.now().uptimeNanoseconds
        if let w = windows.withLock({ $0[camera] }), t - w.atNanos < Self.refreshNanos { return w.run }
        let run: ExportRun? = try await withCheckedThrowingContinuation { c in
            DispatchQueue.global().async { [disks, box] in
                do {
                    let library = RecordingLibrary(disks: disks, box: box)
                    let runs = try library.segments(
                        camera: camera, from: now.adding(micros: -Self.window), to: now.adding(micros: 1_000_000),
                        startAtKeyframe: true)
                    c.resume(returning: runs.last { !$0.fragments.isEmpty })
                } catch { c.resume(throwing: error) }
            }
        }
        windows.withLock { $0[camera] = (t, run) }
        return run
    }

    /// The media playlist (RFC 8216 §4.3) of run `run` and its fragments (sequence number and duration in 90 kHz
    /// ticks, in order), its URIs relative to `/api/v1/cameras/{id}/live.m3u8` and carrying `?stream=sub` for a
    /// sub stream (`sub`), so its segments come from the same stream.
    static func playlist(run: UInt64, fragments: [(sequence: UInt32, duration90k: Int32)], sub: Bool = false)
        -> String
    {
        let query = sub ? "?stream=sub" : ""
        let longest = fragments.map { Double($0.duration90k) / 90_000 }.max() ?? 1
        var text = """
            #EXTM3U
            #EXT-X-VERSION:7
            #EXT-X-TARGETDURATION:\(max(1, Int(longest.rounded(.up))))
            #EXT-X-MEDIA-SEQUENCE:\(fragments.first?.sequence ?? 0)
            #EXT-X-MAP:URI="hls/\(run)-init.mp4\(query)"

            """
        for f in fragments {
            text += String(format: "#EXTINF:%.3f,\n", Double(f.duration90k) / 90_000)
            text += "hls/\(run)-\(f.sequence).m4s\(query)\n"
        }
        return text
    }

    /// `GET /api/v1/cameras/{id}/live.m3u8`.
    static func playlistRoute(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws
        -> Response
    {
        let (hls, camera) = try check(env, request, context)
        if hls.views.first(
            session: context.session?.idHash ?? context.remoteAddress, camera: camera.rawValue,
            now: env.clocks.monotonicNow())
        {
            try await env.audit.record(
                actor: context.user?.name ?? "-", address: context.remoteAddress, action: "live.start",
                object: camera.camera.rawValue, details: "hls \(LiveView.streamName(camera))")
        }
        guard let run = try await hls.recent(camera, now: env.clocks.utcNow()) else {
            return WebResponses.problem(
                .notFound, "hls.none", "Nothing of this camera was recorded in the last seconds.")
        }
        return Response(
            status: .ok,
            headers: [.contentType: "application/vnd.apple.mpegurl", .cacheControl: "no-store"],
            body: .init(
                byteBuffer: ByteBuffer(
                    string: playlist(
                        run: run.run, fragments: run.fragments.map { ($0.meta.sequence, $0.meta.duration90k) },
                        sub: camera.isSubStream))))
    }

    /// `GET /api/v1/cameras/{id}/hls/{segment}`.
    static func segmentRoute(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws
        -> Response
    {
        let (hls, camera) = try check(env, request, context)
        let name = context.parameters.get("segment") ?? ""
        let gone = WebResponses.problem(.notFound, "hls.gone", "This segment is no longer in the live window.")
        guard let run = try await hls.recent(camera, now: env.clocks.utcNow()) else { return gone }
        let bytes: [UInt8]
        let type: String
        if name == "\(run.run)-init.mp4" {
            (bytes, type) = (run.initSegment, "video/mp4")
        } else if name.hasPrefix("\(run.run)-"), name.hasSuffix(".m4s"),
            let seq = UInt32(name.dropFirst("\(run.run)-".count).dropLast(4)),
            let f = run.fragments.first(where: { $0.meta.sequence == seq })
        {
            (bytes, type) = (f.payload, "video/iso.segment")
        } else {
            return gone
        }
        return Response(
            status: .ok, headers: [.contentType: type, .cacheControl: "private, max-age=60"],
            body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// A camera this user may see (else 404 as if it did not exist), the main stream, and HLS on this box.
    static func check(_ env: WebEnvironment, _ request: Request, _ context: WebContext) throws -> (LiveHLS, CameraID) {
        guard let raw = context.parameters.get("id"), CameraID.isValid(raw), let main = CameraID(raw),
            WebRoutes.scopedStatus(env, context).cameras.contains(where: { $0.id == main.rawValue })
        else { throw RefusalError(refusal: WebResponses.problem(.notFound, "live.camera", "No such camera.")) }
        let camera = try LiveView.stream(env, request, of: main)
        guard let hls = env.hls else {
            throw RefusalError(
                refusal: WebResponses.problem(.serviceUnavailable, "live.unavailable", "HLS is not available."))
        }
        return (hls, camera)
    }
}
