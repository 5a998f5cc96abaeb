import Foundation
import HTTPTypes
import HallwatchCore
import Hummingbird
import Mustache
import NIOCore

/// Evidence exports over HTTP (<doc:Exports>), for building admins and up (``Permission/exportEvidence``), only
/// of cameras in their groups (a camera outside them is 404 like one that does not exist; an export of such a
/// camera is not listed):
///
/// - `POST /api/v1/exports` — JSON `{cameras, from, to, reason, caseNumber}` (times RFC 3339 UTC): queues the
///   export (``ExportJobs``), 202 with the ``ExportView`` and its `Location`; audited `export.create`.
/// - `GET /api/v1/exports` — the user's exports, newest first; `GET /api/v1/exports/{id}` — one.
/// - `GET /api/v1/exports/{id}/bundle.zip` — the finished bundle as a zip (Info-ZIP's `zip` writing to a pipe,
///   streamed: the bundle is never held in memory or copied), one folder named by the export id; audited
///   `export.download`.
/// - `DELETE /api/v1/exports/{id}` — a finished or failed export's bundle and record; audited `export.delete`.
/// - `/exports` — the page: the form and the list with progress (`/static/exports.js` asks the API every second).
enum ExportRoutes {
    /// `POST /api/v1/exports` body.
    struct CreateRequest: Codable, Sendable {
        var cameras: [String]
        var from: String
        var to: String
        var reason: String
        var caseNumber: String
    }

    /// An export as the API shows it (``HallwatchCore/ExportProgress`` with RFC 3339 times).
    struct ExportView: Codable, Sendable, Equatable {
        var id: String
        /// `queued`, `running`, `done`, `failed`.
        var state: String
        var cameras: [String]
        var from: String
        var to: String
        var reason: String
        var caseNumber: String
        var requestedBy: String
        var createdAt: String
        var finishedAt: String?
        /// 0…1.
        var fraction: Double
        var filesDone: Int
        var filesTotal: Int
        var recordedBytes: Int64
        var bundleBytes: Int64
        var holds: [String]
        var error: String?
        var errorMessage: String?
        /// The zip's path once `done`.
        var download: String?

        init(_ p: ExportProgress) {
            id = p.id
            state = p.state.rawValue
            cameras = p.cameras.map(\.rawValue)
            from = p.from.iso8601
            to = p.to.iso8601
            reason = p.reason
            caseNumber = p.caseNumber
            requestedBy = p.requestedBy
            createdAt = p.createdAt.iso8601
            finishedAt = p.finishedAt?.iso8601
            fraction = p.fraction
            filesDone = p.filesDone
            filesTotal = p.filesTotal
            recordedBytes = p.recordedBytes
            bundleBytes = p.bundleBytes
            holds = p.holds
            error = p.error?.code
            errorMessage = p.error?.message
            download = p.state == .done ? "/api/v1/exports/\(p.id)/bundle.zip" : nil
        }
    }

    struct ExportList: Codable, Sendable {
        var exports: [ExportView]
    }

    /// The zip program (Debian's `zip`).
    static let zipPath = "/usr/bin/zip"

    static func table(_ env: WebEnvironment) -> [WebRoute] {
        [
            WebRoute(method: .post, path: "/api/v1/exports", access: .permission(.exportEvidence)) { req, ctx in
                try await create(env, req, ctx)
            },
            WebRoute(method: .get, path: "/api/v1/exports", access: .permission(.exportEvidence)) { _, ctx in
                guard let jobs = env.exports else { return unavailable() }
                let visible = visibleCameras(env, ctx)
                return try WebResponses.json(
                    ExportList(exports: jobs.list().filter { mine($0, visible) }.map(ExportView.init)))
            },
            WebRoute(method: .get, path: "/api/v1/exports/{id}", access: .permission(.exportEvidence)) { _, ctx in
                try WebResponses.json(ExportView(try find(env, ctx)))
            },
            WebRoute(method: .delete, path: "/api/v1/exports/{id}", access: .permission(.exportEvidence)) { _, ctx in
                try await delete(env, ctx)
            },
            WebRoute(method: .get, path: "/api/v1/exports/{id}/bundle.zip", access: .permission(.exportEvidence)) {
                _, ctx in try await download(env, ctx)
            },
            WebRoute(method: .get, path: "/exports", access: .permission(.exportEvidence)) { _, ctx in
                page(env, ctx)
            },
            WebRoute(method: .get, path: "/static/exports.js", access: .anyone) { _, _ in
                WebResponses.asset(exportsJS, type: "text/javascript; charset=utf-8")
            },
        ]
    }

    static func unavailable() -> Response {
        WebResponses.problem(.serviceUnavailable, "playback.unavailable", "This box makes no exports.")
    }

    /// The cameras this user may see (configuration order).
    static func visibleCameras(_ env: WebEnvironment, _ context: WebContext) -> [String] {
        WebRoutes.scopedStatus(env, context).cameras.map(\.id)
    }

    /// Whether every camera of the export is one the user may see.
    static func mine(_ job: ExportProgress, _ visible: [String]) -> Bool {
        job.cameras.allSatisfy { visible.contains($0.rawValue) }
    }

    /// The request's export, if the user may see it; else the 404 to send.
    /// - Throws: ``RefusalError`` with 503 without exports, 404 `export.unknown`.
    static func find(_ env: WebEnvironment, _ context: WebContext) throws(RefusalError) -> ExportProgress {
        guard let jobs = env.exports else { throw RefusalError(refusal: unavailable()) }
        guard let id = context.parameters.get("id"), id.utf8.count <= 20, let job = jobs.job(id),
            mine(job, visibleCameras(env, context))
        else { throw RefusalError(refusal: WebResponses.problem(.notFound, "export.unknown", "No such export.")) }
        return job
    }

    static func create(_ env: WebEnvironment, _ request: Request, _ context: WebContext) async throws -> Response {
        guard let jobs = env.exports else { return unavailable() }
        let data = try await request.body.collect(upTo: 4096)
        if let name = JSONValue.duplicateName(in: data.readableBytesView) {
            // Two `from`s or two `cameras`: evidence of which range? Foundation keeps one silently (RFC 8259 §4).
            return WebResponses.problem(
                .badRequest, "export.input", "The key \"\(name.prefix(40))\" is given twice: send each key once.")
        }
        guard let body = try? JSONDecoder().decode(CreateRequest.self, from: Data(data.readableBytesView)) else {
            return WebResponses.problem(
                .badRequest, "export.input", "Expected JSON: cameras, from, to (RFC 3339 UTC), reason, caseNumber.")
        }
        let visible = visibleCameras(env, context)
        var chosen: [CameraID] = []
        for text in body.cameras.prefix(64) {
            guard let id = CameraID(text), visible.contains(id.rawValue) else {
                return WebResponses.problem(.notFound, "camera.unknown", "No such camera.")
            }
            chosen.append(id)
        }
        let cameras = chosen
        let from: UTCMicros
        let to: UTCMicros
        do {
            from = try ISO8601.parseStrict(body.from)
            to = try ISO8601.parseStrict(body.to)
        } catch {
            return WebResponses.problem(.badRequest, "export.input", "from and to: \(error)")
        }
        let user = context.user?.name ?? "-"
        let job: ExportProgress
        do {
            job = try await PlaybackBody.offPool {
                try jobs.submit(
                    cameras: cameras, from: from, to: to, reason: body.reason, caseNumber: body.caseNumber, by: user)
            }
        } catch let refusal as ExportJobs.Refusal {
            return WebResponses.problem(HTTPResponse.Status(code: refusal.status), refusal.code, refusal.message)
        }
        try await env.audit.record(
            actor: user, address: context.remoteAddress, action: "export.create",
            object: job.cameras.map(\.rawValue).joined(separator: ","),
            details:
                "\(job.id) \(job.from.iso8601)–\(job.to.iso8601) case \(job.caseNumber): \(job.reason); holds \(job.holds.joined(separator: ","))"
        )
        var r = try WebResponses.json(ExportView(job))
        r.status = .accepted
        r.headers[.location] = "/api/v1/exports/\(job.id)"
        return r
    }

    static func delete(_ env: WebEnvironment, _ context: WebContext) async throws -> Response {
        let job = try find(env, context)
        guard let jobs = env.exports, jobs.delete(job.id) else {
            return WebResponses.problem(.conflict, "export.busy", "The export is still queued or running.")
        }
        try await env.audit.record(
            actor: context.user?.name ?? "-", address: context.remoteAddress, action: "export.delete",
            object: job.cameras.map(\.rawValue).joined(separator: ","), details: job.id)
        return Response(status: .noContent)
    }

    /// The bundle as a zip, streamed from `zip`'s standard output; a `zip` that fails ends the body short (the
    /// client sees a broken download, never a zip missing a file silently).
    static func download(_ env: WebEnvironment, _ context: WebContext) async throws -> Response {
        let job = try find(env, context)
        guard let jobs = env.exports, jobs.bundle(job.id) != nil else {
            return WebResponses.problem(.notFound, "export.unknown", "The export is not finished.")
        }
        let zip = ZipPipe(directory: jobs.directory, folder: job.id)
        do { try zip.start() } catch {
            context.logger.error("zip failed to start", metadata: ["error": "\(error)"])
            return WebResponses.problem(.serviceUnavailable, "export.bundle", "The zip could not be made.")
        }
        try await env.audit.record(
            actor: context.user?.name ?? "-", address: context.remoteAddress, action: "export.download",
            object: job.cameras.map(\.rawValue).joined(separator: ","),
            details: "\(job.id) case \(job.caseNumber) (\(job.bundleBytes) bytes)")
        let body = ResponseBody { writer in
            do {
                while let chunk = try await PlaybackBody.offPool({ try zip.read() }) {
                    try await writer.write(ByteBuffer(bytes: chunk))
                }
                let status = try await PlaybackBody.offPool { zip.wait() }
                guard status == 0 else {
                    throw ExportJobs.Refusal(status: 500, code: "export.bundle", message: "zip exit \(status)")
                }
                try await writer.finish(nil)
            } catch {
                zip.stop()
                throw error
            }
        }
        return Response(
            status: .ok,
            headers: [
                .contentType: "application/zip",
                .contentDisposition: "attachment; filename=\"hallwatch-\(job.id).zip\"",
                .cacheControl: "private, no-store",
            ], body: body)
    }

    // MARK: - The page

    // swift-format-ignore
    static let template = try! MustacheTemplate(string: Pages.head + """
        <title>Evidence exports — {{building}}</title>
        <script src="/static/exports.js" defer></script></head>
        <body>
        <header><h1>Evidence exports</h1><nav><a href="/">Status</a> · <a href="/audit">Audit log</a></nav></header>
        <main id="exports" data-csrf="{{csrf}}">
        <section aria-labelledby="h-new"><h2 id="h-new">New export</h2>
        <form id="export-form">
        <fieldset><legend>Cameras</legend>{{#cameras}}<label class="choice"><input type="checkbox" name="camera" value="{{.}}"> {{.}}</label> {{/cameras}}</fieldset>
        <label for="export-from">From (UTC, RFC 3339)</label><input id="export-from" name="from" required maxlength="40" value="{{from}}">
        <label for="export-to">To (UTC, RFC 3339)</label><input id="export-to" name="to" required maxlength="40" value="{{to}}">
        <label for="export-reason">Reason</label><input id="export-reason" name="reason" required maxlength="500">
        <label for="export-case">Case number</label><input id="export-case" name="caseNumber" required maxlength="100">
        <button type="submit" id="export-start">Start export</button>
        <p id="export-message" role="status"></p></form>
        <p>Each export is a signed folder (video, framehashes, manifest, SHA256SUMS and its two signatures) that
        anyone checks with <code>sha256sum -c</code>, <code>openssl</code> and <code>minisign</code>, or with
        <code>hallwatchctl export verify</code>; its range is held from deletion.</p></section>
        <section aria-labelledby="h-list"><h2 id="h-list">Exports</h2>
        <table id="export-list"><thead><tr><th scope="col">Export</th><th scope="col">Cameras</th><th scope="col">Range (UTC)</th>
        <th scope="col">Case</th><th scope="col">By</th><th scope="col">Progress</th><th scope="col"></th></tr></thead>
        <tbody></tbody></table></section>
        </main></body></html>
        """)

    static func page(_ env: WebEnvironment, _ context: WebContext) -> Response {
        let now = env.clocks.utcNow()
        let model: [String: Any] = [
            "building": env.building, "csrf": context.session?.csrfToken ?? "",
            "cameras": visibleCameras(env, context),
            "from": UTCMicros((now.micros - 600_000_000) / 1_000_000 * 1_000_000).iso8601,
            "to": UTCMicros(now.micros / 1_000_000 * 1_000_000).iso8601,
        ]
        return WebResponses.html(Pages.render(template, model))
    }

    /// The page's script: posts the form as JSON with the CSRF token, then lists the exports every second with
    /// a `<progress>` per running one and a download link per finished one.
    static let exportsJS = """
        "use strict";
        (() => {
          const main = document.getElementById("exports");
          const csrf = main.dataset.csrf;
          const form = document.getElementById("export-form");
          const message = document.getElementById("export-message");
          const body = document.querySelector("#export-list tbody");
          const cell = (tr, text) => { const td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; };
          async function refresh() {
            const r = await fetch("/api/v1/exports", { credentials: "same-origin" });
            if (!r.ok) return;
            const { exports } = await r.json();
            body.replaceChildren();
            for (const x of exports) {
              const tr = document.createElement("tr");
              tr.dataset.id = x.id;
              tr.dataset.state = x.state;
              cell(tr, x.id);
              cell(tr, x.cameras.join(", "));
              cell(tr, x.from + " – " + x.to);
              cell(tr, x.caseNumber);
              cell(tr, x.requestedBy);
              const p = cell(tr, "");
              if (x.state === "done") {
                p.textContent = "done, " + (x.bundleBytes / 1e6).toFixed(1) + " MB";
              } else if (x.state === "failed") {
                p.textContent = "failed: " + (x.errorMessage || x.error || "");
              } else {
                const bar = document.createElement("progress");
                bar.max = 1; bar.value = x.fraction;
                p.appendChild(bar);
                p.append(" " + x.state + " " + Math.round(x.fraction * 100) + " %");
              }
              const actions = cell(tr, "");
              if (x.download) {
                const a = document.createElement("a");
                a.href = x.download; a.textContent = "Download zip"; a.className = "export-download";
                actions.appendChild(a);
              }
              body.appendChild(tr);
            }
          }
          form.addEventListener("submit", async (e) => {
            e.preventDefault();
            const data = new FormData(form);
            const request = {
              cameras: data.getAll("camera"), from: data.get("from"), to: data.get("to"),
              reason: data.get("reason"), caseNumber: data.get("caseNumber"),
            };
            const r = await fetch("/api/v1/exports", {
              method: "POST", credentials: "same-origin",
              headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(request),
            });
            const answer = await r.json().catch(() => ({}));
            message.textContent = r.ok ? "Export " + answer.id + " queued." : (answer.message || "Refused (" + r.status + ").");
            refresh();
          });
          refresh();
          setInterval(refresh, 1000);
        })();
        """
}

/// Info-ZIP's `zip` writing a bundle folder to its standard output (`zip -r -q -X -n .mp4 - <folder>` in the
/// export directory: video stored as is, text deflated), read a chunk at a time. `zip` streams to a pipe with
/// data descriptors and Zip64 where needed, so its output is never held whole.
final class ZipPipe: @unchecked Sendable {
    // @unchecked: `process` and `output` are used by one response body at a time, in order (read…, wait or stop).
    let process = Process()
    let output = Pipe()

    init(directory: String, folder: String) {
        process.executableURL = URL(fileURLWithPath: ExportRoutes.zipPath)
        process.arguments = ["-r", "-q", "-X", "-n", ".mp4", "-", folder]
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
    }

    /// Starts `zip`. Throws when it cannot be run.
    func start() throws { try process.run() }

    /// The next chunk (at most 256 KiB); `nil` at the end. Blocks.
    func read() throws -> [UInt8]? {
        guard let data = try output.fileHandleForReading.read(upToCount: 256 << 10), !data.isEmpty else { return nil }
        return [UInt8](data)
    }

    /// Waits for `zip` to end; its exit status.
    func wait() -> Int32 {
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Ends `zip` (the client went away) and reaps it.
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        try? output.fileHandleForReading.close()
        process.waitUntilExit()
    }
}
