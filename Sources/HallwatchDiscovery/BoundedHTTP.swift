import Foundation
import Synchronization

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One HTTP reply, bounded.
public struct HTTPReply: Sendable, Equatable {
    /// The status code (200, 401, 500 …).
    public var status: Int
    /// Header values by lower-cased name; repeated headers (`WWW-Authenticate`) joined with `, ` as
    /// RFC 9110 §5.3 allows.
    public var headers: [String: String]
    /// The body, at most ``BoundedHTTPClient/maxBodyBytes``.
    public var body: Data
    /// A reply from its parts.
    public init(status: Int, headers: [String: String], body: Data) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// A small HTTP client on Foundation's `URLSession` (FoundationNetworking on Linux, which ships with the
/// toolchain: no new dependency, no hand-written HTTP parsing) that bounds what a camera can make it hold.
///
/// - The body is collected through a data delegate and the task is cancelled as soon as it passes
///   ``maxBodyBytes`` (`onvif.tooLarge`), so a camera streaming an endless body costs at most that much.
/// - Each request has a deadline (`timeout`, whole request) on top of URLSession's idle timeout.
/// - Redirects are refused (a SOAP endpoint does not redirect; following one would send credentials to
///   another host), cookies and caches are off, and authentication challenges are never answered by
///   URLSession: a 401 comes back as a reply so the caller decides (UsernameToken or Digest, issue 5 §2).
///
/// Errors thrown: ``ONVIFError`` with `onvif.unreachable` (connection refused, no route, timeout, reset)
/// or `onvif.tooLarge`.
public final class BoundedHTTPClient: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    /// Largest body read, in bytes (the XML reader's own limit, ``XMLLimits/reply``).
    public let maxBodyBytes: Int
    private struct Pending {
        var response: HTTPURLResponse?
        var data = Data()
        var overflow = false
        var continuation: CheckedContinuation<HTTPReply, any Error>
    }
    private let pending = Mutex<[Int: Pending]>([:])
    // Set once in init, after super.init (the session keeps its delegate strongly until invalidated).
    private var session: URLSession!

    /// - Parameters:
    ///   - maxBodyBytes: body cap, default 4 MiB.
    ///   - maxConnectionsPerHost: concurrent connections to one camera (cameras are small servers).
    public init(maxBodyBytes: Int = XMLLimits.reply.maxBytes, maxConnectionsPerHost: Int = 4) {
        self.maxBodyBytes = maxBodyBytes
        super.init()
        let c = URLSessionConfiguration.ephemeral
        c.httpCookieStorage = nil
        c.urlCredentialStorage = nil
        c.urlCache = nil
        c.requestCachePolicy = .reloadIgnoringLocalCacheData
        c.httpMaximumConnectionsPerHost = maxConnectionsPerHost
        c.timeoutIntervalForRequest = 5
        c.timeoutIntervalForResource = 30
        session = URLSession(configuration: c, delegate: self, delegateQueue: nil)
    }

    /// Ends the session; pending requests fail.
    public func shutdown() { session.invalidateAndCancel() }

    /// POSTs `body` to `url` with `headers` and returns the reply (any status).
    /// - Throws: ``ONVIFError`` (`onvif.unreachable`, `onvif.tooLarge`), `CancellationError`.
    public func post(_ url: URL, headers: [String: String], body: Data, timeout: Duration) async throws -> HTTPReply {
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.httpBody = body
        request.timeoutInterval = max(0.5, timeout.seconds)
        request.httpShouldHandleCookies = false
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        let task = session.dataTask(with: request)
        let id = task.taskIdentifier
        let deadline = Task { [weak task] in
            try? await Task.sleep(for: timeout)
            task?.cancel()
        }
        defer { deadline.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<HTTPReply, any Error>) in
                pending.withLock { $0[id] = Pending(continuation: c) }
                task.resume()
            }
        } onCancel: {
            task.cancel()
        }
    }

    // MARK: URLSessionDataDelegate

    /// Keeps the response head for the task.
    public func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
    ) {
        pending.withLock { $0[dataTask.taskIdentifier]?.response = response as? HTTPURLResponse }
        completionHandler(.allow)
    }

    /// Appends a chunk of the body; cancels the task once the body would exceed ``maxBodyBytes``.
    public func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        let over = pending.withLock { p -> Bool in
            guard var entry = p[dataTask.taskIdentifier] else { return false }
            if entry.data.count + data.count > maxBodyBytes {
                entry.overflow = true
            } else {
                entry.data.append(data)
            }
            p[dataTask.taskIdentifier] = entry
            return entry.overflow
        }
        if over { dataTask.cancel() }
    }

    /// Refuses every redirect: a camera's reply is taken as it is.
    public func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping (URLRequest?) -> Void
    ) {
        completionHandler(nil)
    }

    /// Never lets URLSession answer a challenge: the 401 and its `WWW-Authenticate` come back to the caller.
    public func urlSession(
        _ session: URLSession, task: URLSessionTask, didReceive challenge: URLAuthenticationChallenge,
        completionHandler: @escaping (URLSession.AuthChallengeDisposition, URLCredential?) -> Void
    ) {
        // Never let URLSession answer: the 401 and its WWW-Authenticate come back to the caller.
        completionHandler(.rejectProtectionSpace, nil)
    }

    /// Completes the task's request with its reply or an ``ONVIFError``.
    public func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        guard let entry = pending.withLock({ $0.removeValue(forKey: task.taskIdentifier) }) else { return }
        let host = task.originalRequest?.url?.host ?? "?"
        if entry.overflow {
            entry.continuation.resume(
                throwing: ONVIFError(.tooLarge, "reply from \(host) is larger than \(maxBodyBytes) bytes"))
            return
        }
        if let error {
            let ns = error as NSError
            let why =
                ns.code == NSURLErrorCancelled ? "timed out or cancelled" : quoted(ns.localizedDescription, limit: 120)
            entry.continuation.resume(throwing: ONVIFError(.unreachable, "no reply from \(host): \(why)"))
            return
        }
        guard let r = entry.response else {
            entry.continuation.resume(throwing: ONVIFError(.unreachable, "no HTTP response from \(host)"))
            return
        }
        var headers: [String: String] = [:]
        for (k, v) in r.allHeaderFields {
            guard let k = k as? String, let v = v as? String else { continue }
            let key = k.lowercased()
            headers[key] = headers[key].map { $0 + ", " + v } ?? v
        }
        entry.continuation.resume(returning: HTTPReply(status: r.statusCode, headers: headers, body: entry.data))
    }
}
