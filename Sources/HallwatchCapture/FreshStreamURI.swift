import Foundation
import HallwatchBus
import HallwatchConfig
import HallwatchCore
import HallwatchDiscovery
import Logging
import Synchronization

/// For a camera adopted through discovery whose main stream URI is good for one connection only
/// (`InvalidAfterConnect`, ONVIF Media §5.15.1; Dahua does it): the URI to use for the next connection,
/// asked of the camera again before each one (issue 5 §3).
///
/// It follows the camera's retained `discovered` message on the bus (matched by `onvifEndpoint`). When that
/// says `invalidAfterConnect`, ``uriForNextConnection()`` runs GetSystemDateAndTime + GetStreamUri on the
/// device (credentials: the camera's `username`/`passwordFile`, which adoption copies from `discovery:`);
/// otherwise it returns the configured source. Blocking: call it from the capture thread.
public final class FreshStreamURI: Sendable {
    let camera: CameraConfig
    let logger: Logger
    final class Latest: Sendable { let device = Mutex<DiscoveredDevice?>(nil) }
    let latest = Latest()
    let http = BoundedHTTPClient()

    /// Starts following the bus when the camera was adopted (`onvifEndpoint` set); `nil` otherwise.
    public init?(camera: CameraConfig, bus: BusClient, topics: BusTopics, logger: Logger) {
        guard let endpoint = camera.onvifEndpoint else { return nil }
        self.camera = camera
        self.logger = logger
        let stream = bus.subscribe(topics.allDiscovered)
        let latest = self.latest
        Task {
            for await m in stream {
                guard let d = try? BusCoding.decode(DiscoveredDevice.self, from: m.payload), d.endpoint == endpoint
                else { continue }
                latest.device.withLock { $0 = d }
            }
        }
    }

    deinit { http.shutdown() }

    /// The URI for the next RTSP connection. Throws ``ErrorEvent`` `onvif.streamUri` when a one-time URI could
    /// not be had (the worker reports it and retries with its back-off).
    public func uriForNextConnection(password: String?) throws -> String {
        guard let d = latest.device.withLock({ $0 }), let main = d.mainStream, main.invalidAfterConnect,
            let deviceXAddr = d.deviceXAddr, let mediaXAddr = d.mediaXAddr
        else { return camera.source }
        let credentials = camera.username.flatMap { u in password.map { ONVIFCredentials(username: u, password: $0) } }
        let describer = DeviceDescriber(http: http, credentials: credentials, logger: logger)
        let result = Mutex<Result<StreamURI, ONVIFError>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                let uri = try await describer.streamURI(
                    deviceXAddr: deviceXAddr, mediaXAddr: mediaXAddr,
                    profileToken: main.profileToken, media2: d.media2 ?? false)
                result.withLock { $0 = .success(uri) }
            } catch {
                result.withLock { $0 = .failure(error as? ONVIFError ?? ONVIFError(.unreachable, "\(error)")) }
            }
            done.signal()
        }
        done.wait()
        switch result.withLock({ $0 }) {
        case .success(let uri)?:
            logger.debug("one-time stream URI asked again", metadata: ["camera.id": "\(camera.id)"])
            return uri.uri
        case .failure(let e)?:
            throw ErrorEvent(code: "onvif.streamUri", message: "cannot get a fresh stream URI: \(e)", camera: camera.id)
        case nil:
            throw ErrorEvent(code: "onvif.streamUri", message: "cannot get a fresh stream URI", camera: camera.id)
        }
    }
}
