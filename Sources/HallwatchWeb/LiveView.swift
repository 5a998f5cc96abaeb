import Foundation
import HTTPTypes
import HallwatchCore
import HallwatchDataPlane
import Hummingbird
import HummingbirdWebSocket
import NIOCore

/// A response a check returns instead of upgrading (a WebSocket route's refusal keeps the JSON problem body).
struct RefusalError: HTTPResponseError {
    let refusal: Response
    var status: HTTPResponse.Status { refusal.status }
    func response(from request: Request, context: some RequestContext) throws -> Response { refusal }
}

/// `GET /api/v1/cameras/{id}/live?stream=main|sub` as a WebSocket (RFC 6455): the live view's messages. `main`
/// (the default) is the camera's recorded stream `id`, `sub` its sub stream `id/sub` (`cameras[].subStream`),
/// each its own subscription to the recorder's live tap.
///
/// 1. Text `{"type":"init","camera","stream","codec","width","height","initId"}`: the RFC 6381 codec string and picture
///    size derived from the init segment that follows (``HallwatchDataPlane/InitSegmentInfo``); `initId` is
///    `run-sequence`. Sent first and again whenever the camera's init segment changes (a codec or resolution
///    change: the player calls `changeType`).
/// 2. Binary, 12-byte header then the boxes: byte 0 the kind (1 init segment, 2 media), byte 1 flags (bit 0:
///    starts with a keyframe), bytes 2–3 how long before the recorder's receipt the capture worker took the unit
///    in (ms, little-endian `UInt16`, 65 535 meaning that or more: the unit's UTC anchor, which for a per-frame
///    chunk is its frame's arrival on the box's clock), bytes 4–11 the recorder's receive time as an IEEE 754
///    double, milliseconds since the epoch, little-endian (comparable with the browser's `Date.now()` on the
///    same clock).
/// 3. Text `{"type":"drop","skipped":N}`: this browser fell behind and media was skipped to the next keyframe.
/// 4. Text `{"type":"error","code","message"}`: e.g. `live.codec` when the init segment has no codec the page
///    can name. The socket closes when the session ends (sign-out, idle timeout, lifetime).
enum LiveView {
    /// The kinds of the binary messages.
    static let initKind: UInt8 = 1
    static let mediaKind: UInt8 = 2

    /// The check before the upgrade (after ``AccessMiddleware`` let the session through with permission
    /// `live`): a camera this user may see (else 404, as if it did not exist), a stream it has (``stream(_:_:of:)``),
    /// a live tap, and a WebSocket upgrade request. Returns the stream's id (`lobby` or `lobby/sub`).
    static func check(_ env: WebEnvironment, _ request: Request, _ context: WebContext) throws -> CameraID {
        guard let raw = context.parameters.get("id"), CameraID.isValid(raw), let camera = CameraID(raw),
            env.status.snapshot(now: env.clocks.utcNow()).cameras.contains(where: { $0.camera == camera }),
            context.user.flatMap({ env.settings.visibleCameras(for: $0) }).map({ $0.contains(camera) }) ?? true
        else { throw RefusalError(refusal: WebResponses.problem(.notFound, "live.camera", "No such camera.")) }
        let id = try stream(env, request, of: camera)
        guard env.live != nil else {
            throw RefusalError(
                refusal: WebResponses.problem(.serviceUnavailable, "live.unavailable", "Live view is not available."))
        }
        guard request.headers[.upgrade]?.lowercased() == "websocket" else {
            throw RefusalError(
                refusal: WebResponses.problem(.badRequest, "live.upgrade", "This route is a WebSocket."))
        }
        return id
    }

    /// The stream `?stream=` names of `camera` (a camera the caller checked the user may see): `main` (the
    /// default) is `camera`, `sub` is `camera/sub` when the configuration gives the camera a `subStream` (or its
    /// capture worker reports on the bus). Throws a ``RefusalError`` 404 `code` (`live.stream`, or
    /// `playback.stream` for the playback routes) otherwise.
    static func stream(_ env: WebEnvironment, _ request: Request, of camera: CameraID, code: String = "live.stream")
        throws(RefusalError) -> CameraID
    {
        let name = request.uri.queryParameters.get("stream") ?? "main"
        if name == "main" { return camera }
        if name == "sub", let sub = subStream(env, of: camera) { return sub }
        let shown = String(name.prefix(16)).filter { $0.isLetter || $0.isNumber }
        throw RefusalError(refusal: WebResponses.problem(.notFound, code, "This camera has no stream '\(shown)'."))
    }

    /// `camera/sub` when the configuration gives `camera` a `subStream` (or its capture worker reports on the
    /// bus), else `nil`: the one rule for the live view, playback (`?stream=sub`) and the timeline's scrubbing.
    static func subStream(_ env: WebEnvironment, of camera: CameraID) -> CameraID? {
        guard let sub = camera.subStream,
            env.status.snapshot(now: env.clocks.utcNow()).cameras.contains(where: { $0.camera == sub })
        else { return nil }
        return sub
    }

    /// `main` or `sub`: how the audit log names the stream of `id`.
    static func streamName(_ id: CameraID) -> String { id.isSubStream ? "sub" : "main" }

    /// One browser's live view: audited at its start and end (`live.start`, `live.end` with the seconds
    /// watched), its own bounded queue, ends with the session or the socket.
    static func serve(
        _ env: WebEnvironment, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter,
        context: WebSocketRouterContext<WebContext>
    ) async throws {
        let ctx = context.requestContext
        guard let live = env.live, let camera = try? check(env, context.request, ctx) else { return }
        let actor = ctx.user?.name ?? "-"
        let started = env.clocks.utcNow()
        try await env.audit.record(
            actor: actor, address: ctx.remoteAddress, action: "live.start", object: camera.camera.rawValue,
            details: streamName(camera))
        let (feed, queue) = live.subscribe(camera)
        let sessionHash = ctx.session?.idHash ?? ""
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while let event = await queue.next() {
                    do { try await send(event, camera: camera, to: outbound) } catch { return }
                }
            }
            group.addTask {
                // Reads until the browser closes (pings and pongs are answered by the WebSocket handler).
                do { for try await _ in inbound {} } catch {}
            }
            group.addTask {
                // Every second: a revoked responder link closes its sockets within 2 s.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    if (try? await env.sessions.stillLive(idHash: sessionHash)) != true { return }
                }
            }
            await group.next()
            feed.fanout.unsubscribe(queue)
            group.cancelAll()
        }
        let seconds = Double(env.clocks.utcNow().micros - started.micros) / 1e6
        _ = try? await env.audit.record(
            actor: actor, address: ctx.remoteAddress, action: "live.end", object: camera.camera.rawValue,
            details: String(format: "%@, %.1f s, %d drops", streamName(camera), seconds, queue.drops))
    }

    static func send(_ event: LiveEvent, camera: CameraID, to outbound: WebSocketOutboundWriter) async throws {
        switch event {
        case .initSegment(let u):
            guard let info = InitSegmentInfo(initSegment: u.segment.payload) else {
                try await outbound.write(
                    .text(
                        json(["type": "error", "code": "live.codec", "message": "unknown codec in the init segment"])))
                return
            }
            try await outbound.write(
                .text(
                    json([
                        "type": "init", "camera": camera.camera.rawValue, "stream": streamName(camera),
                        "codec": info.codec, "width": info.width,
                        "height": info.height, "initId": "\(u.segment.meta.run)-\(u.segment.meta.sequence)",
                    ])))
            try await sendMessage(u.memoized { frame(initKind, u) }, to: outbound)
        case .media(let u):
            // Made once per unit for all its viewers (writing a ByteBuffer to a channel never copies it).
            try await sendMessage(u.memoized { frame(mediaKind, u) }, to: outbound)
        case .drop(let skipped):
            try await outbound.write(.text(json(["type": "drop", "skipped": skipped])))
        }
    }

    /// Most bytes of a binary message in one WebSocket frame (RFC 6455 §5.4): 16 KiB, one TLS record.
    static let frameBytes = 16 << 10

    /// Sends `message` as one binary message in frames of at most ``frameBytes``. Each frame is written when the
    /// connection can take it (the writer waits while the channel is over its write watermark), so a browser's
    /// unsent backlog stays within about 64 KiB however large a keyframe is: the rest of it waits, unencrypted
    /// and shared with every other viewer, in the unit itself. A 150 KB keyframe written whole was encrypted
    /// whole for every viewer at once.
    static func sendMessage(_ message: ByteBuffer, to outbound: WebSocketOutboundWriter) async throws {
        try await outbound.withBinaryMessageWriter { write in
            var rest = message
            while rest.readableBytes > frameBytes, let piece = rest.readSlice(length: frameBytes) {
                try await write(piece)
            }
            try await write(rest)
        }
    }

    /// The binary message of `unit`: the 12-byte header, then its boxes.
    static func frame(_ kind: UInt8, _ unit: LiveUnit) -> ByteBuffer {
        var b = ByteBuffer()
        b.reserveCapacity(12 + unit.segment.payload.count)
        b.writeInteger(kind)
        b.writeInteger(UInt8(unit.isKeyframe ? 1 : 0))
        let inCaptureMs = (unit.receivedMicros - unit.segment.meta.utc.micros) / 1000
        b.writeInteger(UInt16(clamping: max(0, inCaptureMs)), endianness: .little)
        b.writeInteger((Double(unit.receivedMicros) / 1000).bitPattern, endianness: .little)
        b.writeBytes(unit.segment.payload)
        return b
    }

    static func json(_ object: [String: any Sendable]) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
