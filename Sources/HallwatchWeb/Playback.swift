import Foundation
import HTTPTypes
import HallwatchCore
import HallwatchDataPlane
import HallwatchStorage
import Hummingbird
import NIOCore

/// Recorded video over HTTP: the recordings API and the two media bodies (<doc:Playback>).
///
/// - `GET /api/v1/cameras/{id}/runs?from=&to=` — ``RecordingsView``: runs, gaps, codec changes, holds,
///   fragments and init segments of a camera over a range (RFC 3339 UTC).
/// - `GET /api/v1/cameras/{id}/video.m4s?from=&to=` — fMP4 from the keyframe at or before `from`: each run's
///   init segment then its fragments, as stored (for Media Source Extensions).
/// - `GET /api/v1/cameras/{id}/video.mp4?from=&to=` — the first run in the range as a progressive MP4, `moov`
///   first (for `<video>`, old iPhones and downloads); `Hallwatch-Covered-From`/`-To` say what it holds (box UTC of
///   the first fragment's start and of the last one's end), `Hallwatch-Presentation-Offset` when its first frame
///   is presented on the file's timeline (seconds; B-frames delay it): a frame presented at media time `m` was
///   recorded at `Covered-From + (m − offset)`.
///
/// Both bodies have an exact `Content-Length`, answer single `Range` requests with 206 (RFC 9110 §14; several
/// ranges in one request get the whole body, which §14.2 allows), honour `If-Range` and `If-None-Match`, and
/// carry a strong `ETag` over the covered records' identities. Camera access is the thumbnail's: a camera
/// outside the user's groups is 404 like one that does not exist. Every playback is audited (`playback`,
/// object the camera, details the form and range), once per session, camera, form and range every 10 minutes
/// (a `<video>` element makes many range requests for one playback).
enum Playback {
    /// Longest range a request may name: 7 days (the runs API), 24 h (media bodies).
    static let maxListMicros: Int64 = 7 * 86_400 * 1_000_000
    static let maxMediaMicros: Int64 = 86_400 * 1_000_000
    /// The fragments are listed for ranges up to this long (one entry per second of video).
    static let maxFragmentListMicros: Int64 = 3_600 * 1_000_000
    /// Bytes read and written per step of a body.
    static let chunkBytes = 256 << 10

    static func routes(_ env: WebEnvironment) -> [WebRoute] {
        [
            WebRoute(method: .get, path: "/api/v1/cameras/{id}/runs", access: .permission(.playback)) { req, ctx in
                try await runs(env, req, ctx)
            },
            WebRoute(method: .get, path: "/api/v1/cameras/{id}/video.m4s", access: .permission(.playback)) {
                req, ctx in try await video(env, req, ctx, form: .fragmented)
            },
            WebRoute(method: .get, path: "/api/v1/cameras/{id}/video.mp4", access: .permission(.playback)) {
                req, ctx in try await video(env, req, ctx, form: .progressive)
            },
            WebRoute(method: .get, path: "/cameras/{id}/timeline", access: .permission(.playback)) { req, ctx in
                try await TimelinePage.page(env, req, ctx)
            },
            WebRoute(method: .get, path: "/static/timeline.js", access: .anyone) { _, _ in
                WebResponses.asset(TimelineAssets.js, type: "text/javascript; charset=utf-8")
            },
            WebRoute(method: .get, path: "/static/timeline.css", access: .anyone) { _, _ in
                WebResponses.asset(TimelineAssets.css, type: "text/css; charset=utf-8")
            },
            WebRoute(method: .get, path: "/playback/wall", access: .permission(.playback)) { req, ctx in
                try await WallPage.page(env, req, ctx)
            },
            WebRoute(method: .get, path: "/static/wall.js", access: .anyone) { _, _ in
                WebResponses.asset(WallAssets.js, type: "text/javascript; charset=utf-8")
            },
            WebRoute(method: .get, path: "/static/wall.css", access: .anyone) { _, _ in
                WebResponses.asset(WallAssets.css, type: "text/css; charset=utf-8")
            },
        ]
    }

    // MARK: - Request checks

    /// The request's stream — its camera (one this user may see), or with `?stream=sub` that camera's sub stream
    /// (`lobby/sub`, recorded with its own retention: what phones, grids and scrubbing use) — its range (box UTC µs,
    /// `from` inclusive, `to` exclusive) and the disks to read.
    /// - Throws: ``RefusalError`` with the answer to send: 404 `camera.unknown` or `playback.stream`, 400
    ///   `playback.time` or `playback.range`, 503 `playback.unavailable`.
    static func target(_ env: WebEnvironment, _ request: Request, _ context: WebContext, maxMicros: Int64)
        throws(RefusalError) -> (camera: CameraID, from: UTCMicros, to: UTCMicros, disks: RecordingDisks)
    {
        guard let text = context.parameters.get("id"), let camera = CameraID(text),
            WebRoutes.scopedStatus(env, context).cameras.contains(where: { $0.id == camera.rawValue })
        else { throw RefusalError(refusal: WebResponses.problem(.notFound, "camera.unknown", "No such camera.")) }
        let stream = try LiveView.stream(env, request, of: camera, code: "playback.stream")
        let q = request.uri.queryParameters
        let from = try time("from", q.get("from"))
        let to = try time("to", q.get("to"))
        guard from < to, to.micros - from.micros <= maxMicros else {
            throw RefusalError(
                refusal: WebResponses.problem(
                    .badRequest, "playback.range",
                    "from must be before to, at most \(maxMicros / 3_600_000_000) h apart."))
        }
        guard let disks = env.recordings else {
            throw RefusalError(
                refusal: WebResponses.problem(
                    .serviceUnavailable, "playback.unavailable", "This box serves no recordings."))
        }
        return (stream, from, to, disks)
    }

    /// The query field `name` as an instant: RFC 3339 with `Z` or an offset, read by the one strict parser
    /// (``ISO8601/parseStrict(_:)``; `2026-02-30` and `+99:00` are refused, never normalised).
    /// - Throws: ``RefusalError`` 400 `playback.time` naming the field and what is wrong.
    static func time(_ name: String, _ text: String?) throws(RefusalError) -> UTCMicros {
        guard let text else {
            throw RefusalError(
                refusal: WebResponses.problem(
                    .badRequest, "playback.time", "Give \(name)= as an RFC 3339 time, e.g. 2026-12-07T08:00:00Z."))
        }
        do {
            return try ISO8601.parseStrict(text)
        } catch {
            throw RefusalError(refusal: WebResponses.problem(.badRequest, "playback.time", "\(name)=: \(error)"))
        }
    }

    // MARK: - The recordings API

    static func runs(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        let (camera, from, to, disks) = try target(env, request, context, maxMicros: maxListMicros)
        try await WebRoutes.auditCameraView(
            env, context, [camera.rawValue], details: "recordings \(from.iso8601)–\(to.iso8601)")
        let view: RecordingsView
        do {
            view = try await PlaybackBody.offPool {
                try RecordingsView.make(
                    library: disks.library(), camera: camera, from: from, to: to,
                    cause: { try? env.history?.cause(of: camera, from: $0, to: $1) })
            }
        } catch {
            context.logger.warning("recordings failed", metadata: ["camera.id": "\(camera)", "error": "\(error)"])
            return WebResponses.problem(.serviceUnavailable, "playback.read", "The recordings could not be read.")
        }
        return try WebResponses.json(view)
    }

    // MARK: - Media bodies

    static func video(_ env: WebEnvironment, _ request: Request, _ context: WebContext, form: PlaybackBody.Form)
        async throws -> Response
    {
        let (camera, from, to, disks) = try target(env, request, context, maxMicros: maxMediaMicros)
        let body: PlaybackBody?
        do {
            body = try await PlaybackBody.offPool { () throws -> PlaybackBody? in
                let stream = try disks.library().stream(camera: camera, from: from, to: to, startAtKeyframe: true)
                guard stream.fragmentCount > 0 else { return nil }
                return form == .fragmented ? PlaybackBody.fragmented(stream) : try PlaybackBody.progressive(stream)
            }
        } catch {
            context.logger.warning("playback failed", metadata: ["camera.id": "\(camera)", "error": "\(error)"])
            return WebResponses.problem(.serviceUnavailable, "playback.read", "The recording could not be read.")
        }
        guard let body else {
            return WebResponses.problem(.notFound, "playback.none", "Nothing of this camera is recorded in that range.")
        }
        let range = ByteRange.parse(request.headers[.range], ifRange: request.headers[.ifRange], etag: body.etag)
        // One playback, audited once per session, camera, form and range in 10 minutes.
        if env.playbackViews.first(
            session: context.session?.idHash ?? context.remoteAddress,
            camera: "\(camera.rawValue)|\(form.rawValue)|\(from.micros)|\(to.micros)", now: env.clocks.monotonicNow())
        {
            try await env.audit.record(
                actor: context.user?.name ?? "-", address: context.remoteAddress, action: "playback",
                object: camera.rawValue, details: "video.\(form.rawValue) \(from.iso8601)–\(to.iso8601)")
        }
        return response(body, range: range, ifNoneMatch: request.headers[.ifNoneMatch], camera: camera)
    }

    static func response(_ body: PlaybackBody, range: ByteRange, ifNoneMatch: String?, camera: CameraID) -> Response {
        var headers: HTTPFields = [
            .contentType: "video/mp4", .acceptRanges: "bytes", .eTag: body.etag, .cacheControl: "private, no-cache",
        ]
        if let first = body.firstUTC { headers[HTTPField.Name("Hallwatch-Covered-From")!] = first.iso8601 }
        if let end = body.endUTC { headers[HTTPField.Name("Hallwatch-Covered-To")!] = end.iso8601 }
        if let offset = body.presentationOffset {
            headers[HTTPField.Name("Hallwatch-Presentation-Offset")!] = String(format: "%.6f", offset)
        }
        if body.form == .progressive, let first = body.firstUTC {
            let name = "\(camera.rawValue)_\(first.iso8601.replacingOccurrences(of: ":", with: "-")).mp4"
            headers[.contentDisposition] = "inline; filename=\"\(name)\""
        }
        if let tags = ifNoneMatch,
            tags.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == body.etag })
        {
            return Response(status: .notModified, headers: headers)
        }
        let (lo, hi): (Int64, Int64)
        var status = HTTPResponse.Status.ok
        switch range.resolve(length: body.length) {
        case .whole: (lo, hi) = (0, body.length)
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(body.length)"
            headers[.contentType] = "application/json"
            let problem = WebResponses.problem(
                .rangeNotSatisfiable, "playback.range", "That byte range is outside the body.")
            return Response(status: .rangeNotSatisfiable, headers: headers, body: problem.body)
        case .part(let a, let b):
            (lo, hi) = (a, b)
            status = .partialContent
            headers[.contentRange] = "bytes \(a)-\(b - 1)/\(body.length)"
        }
        let reader = BodyReader(body)
        let pieces = body.pieces(from: lo, to: hi)
        let stream = ResponseBody(contentLength: Int(hi - lo)) { writer in
            for piece in pieces {
                switch piece {
                case .bytes(let b): try await writer.write(ByteBuffer(bytes: b))
                case .stream(var start, let count):
                    let end = start + count
                    while start < end {
                        let n = Int(min(Int64(chunkBytes), end - start))
                        // A record pruned meanwhile throws here: the connection closes short, never wrong bytes.
                        try await writer.write(ByteBuffer(bytes: try await reader.readOffPool(start, n)))
                        start += Int64(n)
                    }
                }
            }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: headers, body: stream)
    }
}

/// A `Range` header (RFC 9110 §14.2) as playback answers it: one range of bytes; anything else (several
/// ranges, another unit, an `If-Range` that no longer matches) means the whole body.
struct ByteRange: Equatable {
    enum Spec: Equatable {
        case whole
        /// `bytes=a-b` (b inclusive, `nil`: to the end).
        case from(Int64, Int64?)
        /// `bytes=-n`: the last n bytes (`n` = 0 is never satisfiable).
        case suffix(Int64)
        case invalid
    }
    var spec: Spec

    static func parse(_ header: String?, ifRange: String?, etag: String) -> ByteRange {
        guard let header, header.utf8.count <= 200 else { return ByteRange(spec: .whole) }
        if let ifRange, ifRange != etag { return ByteRange(spec: .whole) }
        guard header.hasPrefix("bytes="), !header.contains(",") else { return ByteRange(spec: .whole) }
        let parts = header.dropFirst(6).trimmingCharacters(in: .whitespaces).split(
            separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return ByteRange(spec: .invalid) }
        // 1*DIGIT only (Int64("+5") would read a sign); more than 18 digits cannot be a position in a body.
        func digits(_ t: Substring) -> Int64? {
            guard (1...18).contains(t.utf8.count), t.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return Int64(t)
        }
        if parts[0].isEmpty {
            // `bytes=-0` is well formed but unsatisfiable: a suffix must be non-zero (RFC 9110 §14.1.1) → 416 (§15.5.17).
            guard let n = digits(parts[1]) else { return ByteRange(spec: .invalid) }
            return ByteRange(spec: .suffix(n))
        }
        guard let a = digits(parts[0]) else { return ByteRange(spec: .invalid) }
        if parts[1].isEmpty { return ByteRange(spec: .from(a, nil)) }
        guard let b = digits(parts[1]), b >= a else { return ByteRange(spec: .invalid) }
        return ByteRange(spec: .from(a, b))
    }

    enum Resolved: Equatable {
        case whole
        case unsatisfiable
        /// Bytes `[lo, hi)`.
        case part(Int64, Int64)
    }

    func resolve(length: Int64) -> Resolved {
        switch spec {
        case .whole: return .whole
        case .invalid: return .whole  // a Range that cannot be read is ignored (RFC 9110 §14.2)
        case .suffix(let n): return length == 0 || n == 0 ? .unsatisfiable : .part(max(0, length - n), length)
        case .from(let a, let b):
            guard a < length else { return .unsatisfiable }
            return .part(a, min(length, (b ?? length - 1) + 1))
        }
    }
}
