import Foundation
import HTTPTypes
import HallwatchCore
import HallwatchEvidence
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

@testable import HallwatchWeb

/// Evidence exports through the real router: the real recordings of ``PlaybackRig`` (H.264, a 30 s gap, HEVC),
/// a real export directory, `zip` and `unzip`, `sha256sum -c` and the bundle verifier `hallwatchctl export verify`
/// runs.
@Suite(.serialized, .enabled(if: PlaybackRig.available, "no clips in .media (make clips) or no ffmpeg"))
struct ExportJobTests {
    /// What the jobs published on the bus and asked of the pruner.
    final class Bus: Sendable {
        let progress = Mutex<[ExportProgress]>([])
        let holds = Mutex<[(cameras: [CameraID], from: UTCMicros, to: UTCMicros, reason: String, caseID: String)]>([])
    }

    /// A harness whose users are `admin` (district), `office` (viewer), `parking-admin` (building admin of the
    /// parking group) and `lobby-admin` (building admin of every camera), with exports in `<rig>/exports`.
    static func harness(_ rig: PlaybackRig, _ bus: Bus, limits: ExportJobs.Limits = .init()) throws -> Harness {
        var settings = makeSettings(users: [
            UserConfig(name: "admin", passwordHash: testHash, role: .districtAdmin),
            UserConfig(name: "office", passwordHash: testHash, role: .viewer),
            UserConfig(name: "parking-admin", passwordHash: testHash, role: .buildingAdmin, cameraGroups: ["parking"]),
            UserConfig(name: "lobby-admin", passwordHash: testHash, role: .buildingAdmin),
        ])
        settings.cameraGroups = ["parking": ["lot-north", "lot-south"].compactMap(CameraID.init)]
        var h = try Harness(settings: settings)
        h.env.recordings = rig.disks
        h.env.history = CameraHistory(database: h.database)
        h.env.exports = try jobs(rig, h, bus, limits: limits)
        return h
    }

    static func jobs(_ rig: PlaybackRig, _ h: Harness, _ bus: Bus, limits: ExportJobs.Limits = .init()) throws
        -> ExportJobs
    {
        let key = h.key
        let history = CameraHistory(database: h.database)
        var logger = Logger(label: "hallwatch.web.export.test")
        logger.logLevel = .error
        return try ExportJobs(
            directory: rig.dir + "/exports", limits: limits, recordings: rig.disks,
            signer: BundleSigner(publicKey: key.publicKey, sign: { key.sign($0) }), box: "box1", clocks: h.clocks,
            audit: h.env.audit, publish: { p in bus.progress.withLock { $0.append(p) } },
            requestHolds: { cameras, from, to, reason, caseID in
                bus.holds.withLock { $0.append((cameras, from, to, reason, caseID)) }
                return cameras.map { _ in "h-" + String(UUID().uuidString.prefix(8)).lowercased() }
            }, gapCause: { try? history.cause(of: $0, from: $1, to: $2) }, logger: logger)
    }

    /// Signs in; the session cookie and JSON headers with its CSRF token.
    static func session(_ client: some TestClientProtocol, _ h: Harness, _ user: String) async throws -> HTTPFields {
        let cookie = try #require(try await signIn(client, user: user))
        let csrf = try #require(try await h.env.sessions.find(id: cookie)?.csrfToken)
        return ResponderLinkTests.json(cookie, csrf: csrf)
    }

    static func body(_ cameras: [String], _ from: UTCMicros, _ to: UTCMicros, reason: String = "Fight in the lobby")
        -> ByteBuffer
    {
        let request = ExportRoutes.CreateRequest(
            cameras: cameras, from: from.iso8601, to: to.iso8601, reason: reason, caseNumber: "2026-0412")
        return ByteBuffer(data: try! JSONEncoder().encode(request))
    }

    /// Polls the export until it is `done` or `failed` (at most 120 s on a loaded machine).
    static func waitFor(_ client: some TestClientProtocol, _ id: String, _ headers: HTTPFields) async throws
        -> ExportRoutes.ExportView
    {
        for _ in 0..<1200 {
            let view = try await client.execute(uri: "/api/v1/exports/\(id)", method: .get, headers: headers) { r in
                try JSONDecoder().decode(ExportRoutes.ExportView.self, from: Data(buffer: r.body))
            }
            if view.state == "done" || view.state == "failed" { return view }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("export \(id) did not end")
        throw CancellationError()
    }

    @Test("an export across a gap and a codec change: queued, progress on the bus, done; the zip verifies; audited")
    func exportAndDownload() async throws {
        let rig = try PlaybackRig()
        defer { rig.cleanup() }
        let bus = Bus()
        let h = try Self.harness(rig, bus)
        let (from, to) = (rig.start.adding(micros: -2_000_000), rig.secondStart.adding(micros: 20_000_000))
        // The recorder was down for the 30 s between the runs (its last-will on the bus, kept in the history).
        try h.env.history?.record([
            .init(
                subject: "recorder", at: rig.secondStart.adding(micros: -29_000_000), state: "down", message: "killed")
        ])
        try await h.app().test(.router) { client in
            let admin = try await Self.session(client, h, "lobby-admin")
            let created = try await client.execute(
                uri: "/api/v1/exports", method: .post, headers: admin, body: Self.body(["lobby"], from, to)
            ) { r in
                #expect(r.status == .accepted, "\(String(buffer: r.body))")
                #expect(r.headers[.location]?.hasPrefix("/api/v1/exports/x-") == true)
                return try JSONDecoder().decode(ExportRoutes.ExportView.self, from: Data(buffer: r.body))
            }
            #expect(created.recordedBytes > 0 && created.holds.count == 1)
            let asked = bus.holds.withLock { $0 }
            #expect(asked.count == 1 && asked.first?.cameras == [CameraID("lobby")!])
            #expect(asked.first?.from == from && asked.first?.to == to && asked.first?.caseID == "2026-0412")
            let done = try await Self.waitFor(client, created.id, admin)
            #expect(done.state == "done", "\(done)")
            #expect(done.filesDone == 2 && done.filesTotal == 2 && done.fraction == 1 && done.bundleBytes > 0)
            #expect(done.download == "/api/v1/exports/\(created.id)/bundle.zip")
            // On the bus: queued, running with the fraction growing, done (published just after the API says so).
            for _ in 0..<100 where bus.progress.withLock({ $0.last?.state }) != .done {
                try await Task.sleep(for: .milliseconds(50))
            }
            let states = bus.progress.withLock { $0 }.filter { $0.id == created.id }
            #expect(states.first?.state == .queued && states.last?.state == .done)
            #expect(states.contains { $0.state == .running })
            let fractions = states.map(\.fraction)
            #expect(fractions == fractions.sorted(), "\(fractions)")
            // The list: newest first.
            let list = try await client.execute(uri: "/api/v1/exports", method: .get, headers: admin) { r in
                try JSONDecoder().decode(ExportRoutes.ExportList.self, from: Data(buffer: r.body))
            }
            #expect(list.exports.map(\.id) == [created.id])
            // The zip: one folder named by the export id that sha256sum -c and the verifier accept.
            let zip = try await client.execute(
                uri: "/api/v1/exports/\(created.id)/bundle.zip", method: .get, headers: admin
            ) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "application/zip")
                return Data(buffer: r.body)
            }
            try zip.write(to: URL(fileURLWithPath: rig.dir + "/bundle.zip"))
            let unzip = try PlaybackRig.run("/usr/bin/unzip", ["-q", rig.dir + "/bundle.zip", "-d", rig.dir + "/out"])
            #expect(unzip.status == 0)
            let bundle = rig.dir + "/out/" + created.id
            let sums = try PlaybackRig.run("/usr/bin/env", ["sh", "-c", "cd '\(bundle)' && sha256sum -c SHA256SUMS"])
            #expect(sums.status == 0 && sums.out.contains(": OK"), "\(sums.out)")
            let videos = try FileManager.default.contentsOfDirectory(atPath: bundle + "/video/lobby").sorted()
            #expect(videos.count == 2, "\(videos)")
            let verdict = EvidenceBundle.verify(directory: bundle)
            #expect(verdict.ok, "\(verdict)")
            let manifest = try JSONDecoder().decode(
                BundleManifest.self, from: Data(contentsOf: URL(fileURLWithPath: bundle + "/manifest.json")))
            #expect(manifest.exportID == created.id && manifest.exportedBy == "lobby-admin (web)")
            #expect(manifest.holds == created.holds && manifest.cameras.first?.gaps.count == 1)
            #expect(manifest.cameras.first?.gaps.first?.cause == "recorder.down", "\(manifest.cameras)")
            #expect(manifest.cameras.first?.gaps.first?.detail?.hasPrefix("killed (from ") == true)
            // Audited: made, finished, downloaded.
            var actions: [String] = []
            for _ in 0..<100 {
                actions = try await h.env.audit.entries().map(\.action)
                if actions.contains("export.done") { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            for action in ["export.create", "export.done", "export.download"] {
                #expect(actions.contains(action), "\(action) in \(actions)")
            }
        }
    }

    @Test("deny by default: viewers refused, a building admin sees only their groups' cameras and exports")
    func access() async throws {
        let rig = try PlaybackRig()
        defer { rig.cleanup() }
        let bus = Bus()
        let h = try Self.harness(rig, bus)
        let (from, to) = (rig.start, rig.start.adding(micros: 6_000_000))
        try await h.app().test(.router) { client in
            let office = try await Self.session(client, h, "office")
            try await client.execute(
                uri: "/api/v1/exports", method: .post, headers: office, body: Self.body(["lobby"], from, to)
            ) { r in #expect(r.status == .forbidden) }
            try await client.execute(uri: "/exports", method: .get, headers: office) { r in
                #expect(r.status == .forbidden)
            }
            let parking = try await Self.session(client, h, "parking-admin")
            try await client.execute(
                uri: "/api/v1/exports", method: .post, headers: parking, body: Self.body(["lobby"], from, to)
            ) { r in
                #expect(r.status == .notFound)
                #expect(String(buffer: r.body).contains("camera.unknown"))
            }
            let admin = try await Self.session(client, h, "lobby-admin")
            let id = try await client.execute(
                uri: "/api/v1/exports", method: .post, headers: admin, body: Self.body(["lobby"], from, to)
            ) { r in
                #expect(r.status == .accepted)
                return try JSONDecoder().decode(ExportRoutes.ExportView.self, from: Data(buffer: r.body)).id
            }
            _ = try await Self.waitFor(client, id, admin)
            for path in ["/api/v1/exports/\(id)", "/api/v1/exports/\(id)/bundle.zip"] {
                try await client.execute(uri: path, method: .get, headers: parking) { r in
                    #expect(r.status == .notFound, "\(path)")
                }
            }
            try await client.execute(uri: "/api/v1/exports/\(id)", method: .delete, headers: parking) { r in
                #expect(r.status == .notFound)
            }
            try await client.execute(uri: "/api/v1/exports", method: .get, headers: parking) { r in
                #expect(String(buffer: r.body) == #"{"exports":[]}"#)
            }
            // The page lists only the user's cameras.
            try await client.execute(uri: "/exports", method: .get, headers: parking) { r in
                let html = String(buffer: r.body)
                #expect(r.status == .ok && html.contains("value=\"lot-north\"") && !html.contains("value=\"lobby\""))
            }
        }
    }

    @Test(
        "bad input is 400, an empty range 404, the budget 507 until an export is deleted; restart fails a running job")
    func inputsAndBudget() async throws {
        let rig = try PlaybackRig()
        defer { rig.cleanup() }
        let bus = Bus()
        var limits = ExportJobs.Limits()
        limits.bundles = 1
        let h = try Self.harness(rig, bus, limits: limits)
        let (from, to) = (rig.start, rig.start.adding(micros: 6_000_000))
        let before = rig.start.adding(micros: -3_600_000_000)
        try await h.app().test(.router) { client in
            let admin = try await Self.session(client, h, "lobby-admin")
            for (body, code) in [
                (Self.body(["lobby"], from, to, reason: " "), "export.input"),
                (Self.body(["lobby"], from, to, reason: "two\nlines"), "export.input"),
                (Self.body([], from, to), "export.input"),
                (Self.body(["lobby"], to, from), "export.input"),
                (Self.body(["lobby"], from, from.adding(micros: 25 * 3_600_000_000)), "export.input"),
                (ByteBuffer(string: "{\"cameras\": 3}"), "export.input"),
                (
                    ByteBuffer(
                        string: String(buffer: Self.body(["lobby"], from, to)).replacingOccurrences(
                            of: "{", with: "{\"from\":\"\(before.iso8601)\",")), "given twice"
                ),
            ] {
                try await client.execute(uri: "/api/v1/exports", method: .post, headers: admin, body: body) { r in
                    #expect(
                        r.status == .badRequest && String(buffer: r.body).contains(code), "\(String(buffer: r.body))")
                }
            }
            try await client.execute(
                uri: "/api/v1/exports", method: .post, headers: admin,
                body: Self.body(["lobby"], before, before.adding(micros: 60_000_000))
            ) { r in #expect(r.status == .notFound && String(buffer: r.body).contains("export.empty")) }
            #expect(bus.holds.withLock { $0.isEmpty }, "a refused export requests no hold")
            let first = try await client.execute(
                uri: "/api/v1/exports", method: .post, headers: admin, body: Self.body(["lobby"], from, to)
            ) { r in try JSONDecoder().decode(ExportRoutes.ExportView.self, from: Data(buffer: r.body)).id }
            _ = try await Self.waitFor(client, first, admin)
            try await client.execute(
                uri: "/api/v1/exports", method: .post, headers: admin, body: Self.body(["lobby"], from, to)
            ) { r in
                #expect(r.status.code == 507 && String(buffer: r.body).contains("export.budget"))
            }
            try await client.execute(uri: "/api/v1/exports/\(first)", method: .delete, headers: admin) { r in
                #expect(r.status == .noContent)
            }
            #expect(!FileManager.default.fileExists(atPath: rig.dir + "/exports/" + first))
            let second = try await client.execute(
                uri: "/api/v1/exports", method: .post, headers: admin, body: Self.body(["lobby"], from, to)
            ) { r in
                #expect(r.status == .accepted)
                return try JSONDecoder().decode(ExportRoutes.ExportView.self, from: Data(buffer: r.body)).id
            }
            #expect(try await Self.waitFor(client, second, admin).state == "done")
            let actions = try await h.env.audit.entries().map(\.action)
            #expect(actions.contains("export.delete"))
        }
        // A job recorded as running when the web stopped: failed at the next start, its partial bundle gone.
        var job = ExportProgress(
            id: "x-0123456789ab", cameras: [CameraID("lobby")!], from: from, to: to, reason: "r", caseNumber: "c",
            requestedBy: "lobby-admin", createdAt: h.clocks.utcNow(), recordedBytes: 1)
        job.state = .running
        try BusCoding.encoder().encode(job).write(to: URL(fileURLWithPath: rig.dir + "/exports/x-0123456789ab.json"))
        try FileManager.default.createDirectory(
            atPath: rig.dir + "/exports/x-0123456789ab/video", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            atPath: rig.dir + "/exports/x-fedcba987654", withIntermediateDirectories: true)
        try await Task.sleep(for: .seconds(1))
        let reopened = try Self.jobs(rig, h, bus)
        #expect(reopened.job("x-0123456789ab")?.state == .failed)
        #expect(reopened.job("x-0123456789ab")?.error?.code == "export.interrupted")
        #expect(!FileManager.default.fileExists(atPath: rig.dir + "/exports/x-0123456789ab"))
        #expect(!FileManager.default.fileExists(atPath: rig.dir + "/exports/x-fedcba987654"))
    }
}
