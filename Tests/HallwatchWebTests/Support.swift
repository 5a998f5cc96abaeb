import Foundation
import HTTPTypes
import HallwatchCore
import HallwatchStatus
import Hummingbird
import HummingbirdTesting
import Synchronization

@testable import HallwatchWeb

/// A clock the test moves by hand.
final class TestClocks: Clocks {
    let micros = Mutex<Int64>(1_800_000_000_000_000)
    func utcNow() -> UTCMicros { UTCMicros(micros.withLock { $0 }) }
    func monotonicNanos() -> UInt64 { UInt64(micros.withLock { $0 }) * 1000 }
    func advance(seconds: Int64) { micros.withLock { $0 += seconds * 1_000_000 } }
}

/// Four cameras (`lot-north` with a sub stream), one disk, processes; a fixed alarm.
struct FakeStatus: StatusSource {
    func snapshot(now: UTCMicros) -> StatusCollector.Snapshot {
        let ids = ["lobby", "gym", "lot-north", "lot-south"].compactMap(CameraID.init)
        return StatusCollector.Snapshot(
            box: "box1", at: now,
            cameras: (ids + [CameraID("lot-north/sub")!]).map { id in
                var state = CameraState(camera: id, state: id.rawValue == "gym" ? .offline : .online, at: now)
                if id.rawValue == "gym" {
                    state.reason = ErrorEvent(code: "rtsp.auth", message: "<script>alert(1)</script>", camera: id)
                }
                state.codec = "h264"
                state.width = 1280
                state.height = 720
                state.fps = 25
                state.bitrateBps = 1_600_000
                return StatusCollector.CameraRow(
                    camera: id, state: state,
                    recording: RecordingStats(
                        camera: id, recordedSeconds: 30, recordedBytes: 1000,
                        lastFragmentAt: now.adding(micros: -2_000_000), run: 1, at: now))
            },
            disks: [
                DiskState(
                    disk: "disk0", path: "/d0", health: .healthy, reason: nil, cameras: ids, freeSlots: 60,
                    slotCount: 64, at: now)
            ],
            processes: [
                ProcessState(process: "capture-lobby", state: .up, pid: 10, at: now),
                ProcessState(process: "capture-lot-north", state: .up, pid: 11, at: now),
                ProcessState(process: "recorder", state: .up, pid: 12, at: now),
            ],
            web: WebIdentity(tlsSHA256: "AB:CD", selfSigned: true, names: ["box"], httpsPort: 443, at: now))
    }
    func recentAlarms() -> [ErrorEvent] {
        [ErrorEvent(code: "rtsp.auth", message: "401", camera: CameraID("gym"))]
    }
}

let password = "correct horse battery"
let testHash = try! PasswordHashing.hash(password, cost: 4)
/// What the router test framework puts in `:authority`.
let host = "localhost"

func makeSettings(users: [UserConfig]? = nil) -> WebSettings {
    WebSettings(
        users: users ?? [
            UserConfig(name: "admin", displayName: "District IT", passwordHash: testHash, role: .districtAdmin),
            UserConfig(name: "office", passwordHash: testHash, role: .viewer),
            UserConfig(name: "facilities", passwordHash: testHash, role: .viewer, cameraGroups: ["parking"]),
        ],
        cameraGroups: ["parking": ["lot-north", "lot-south"].compactMap(CameraID.init)])
}

/// A host up 1 d 2 h 3 min 4 s whose clock is synchronised 0.5 ms off.
struct FakeHost: HostFacts {
    func uptimeSeconds() -> Double { 93784 }
    func clockSync() -> ClockSync { ClockSync(synchronised: true, offsetMs: 0.5, maxErrorMs: 16) }
}

/// What the checkpointer published.
final class Published: Sendable {
    let checkpoints = Mutex<[AuditCheckpoint]>([])
}

struct Harness {
    let clocks = TestClocks()
    var env: WebEnvironment
    let database: WebDatabase
    let auditPath: String
    let key = BoxIdentityKey.generate()
    let published = Published()

    init(settings: WebSettings = makeSettings(), time: BuildingTime = .utc) throws {
        database = try WebDatabase(path: ":memory:")
        auditPath = FileManager.default.temporaryDirectory.path + "/hw-web-audit-\(UUID().uuidString).log"
        let published = published
        let checkpointer = AuditCheckpointer(
            database: database, key: key, box: "box1", clocks: clocks,
            publish: { c in published.checkpoints.withLock { $0.append(c) } })
        env = WebEnvironment(
            settings: settings,
            sessions: SessionStore(
                database: database, clocks: clocks, idle: settings.web.sessionIdleTimeout,
                lifetime: settings.web.sessionLifetime),
            throttle: LoginThrottle(clocks: clocks),
            audit: AuditLog(database: database, clocks: clocks, filePath: auditPath),
            status: FakeStatus(), clocks: clocks, building: "Lincoln Elementary",
            facts: BoxFacts(
                box: "box1", building: "Lincoln Elementary", softwareVersion: "9.9.9",
                identitySHA256: key.fingerprintSHA256),
            host: FakeHost(), time: time, checkpointer: checkpointer)
    }

    func app(extra: ((Router<WebContext>) -> Void)? = nil) -> some ApplicationProtocol {
        let router = WebRoutes.router(environment: env)
        extra?(router)
        return Application(router: router)
    }
}

/// Headers of a same-origin browser request.
func sameOrigin(_ extra: HTTPFields = [:], cookie: String? = nil) -> HTTPFields {
    var h: HTTPFields = [
        HTTPField.Name("Host")!: host, .origin: "https://\(host)", .contentType: "application/x-www-form-urlencoded",
    ]
    if let cookie { h[.cookie] = "\(WebCookies.sessionName)=\(cookie)" }
    h.append(contentsOf: extra)
    return h
}

func form(_ fields: [String: String]) -> ByteBuffer {
    ByteBuffer(
        string: fields.map {
            "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")"
        }.joined(separator: "&"))
}

/// Signs in; returns the session cookie's value.
func signIn(_ client: some TestClientProtocol, user: String, password pw: String = password) async throws -> String? {
    try await client.execute(
        uri: "/login", method: .post, headers: sameOrigin(), body: form(["username": user, "password": pw])
    ) { response in
        guard response.status == .seeOther, let set = response.headers[.setCookie] else { return nil }
        let pair = set.split(separator: ";")[0]
        return String(pair.split(separator: "=", maxSplits: 1)[1])
    }
}

func cookieHeader(_ id: String) -> HTTPFields { [.cookie: "\(WebCookies.sessionName)=\(id)", .hostHeader: host] }
