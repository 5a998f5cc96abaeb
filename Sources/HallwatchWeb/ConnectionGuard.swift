import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOSSL
import NIOTLS
import Synchronization

/// Bounds on connections that hold the server without finishing a request (slowloris, RFC 9110 §"denial of
/// service" in spirit; OWASP "Slow HTTP"): idle timeouts alone do not end a client that sends one byte of its
/// request head every few seconds.
public struct ConnectionLimits: Sendable {
    /// Most connections open at once; more are closed as they arrive. Default 512.
    public var maxConnections = 512
    /// The TLS handshake and the first request head (HTTP/1.1) must arrive within this of the connection
    /// opening; every later request head within this of its first byte. Default 10 s.
    public var headDeadline: Duration = .seconds(10)
    public init(maxConnections: Int = 512, headDeadline: Duration = .seconds(10)) {
        self.maxConnections = maxConnections
        self.headDeadline = headDeadline
    }
}

/// Hummingbird's HTTP/2-upgrade child channel with a ``ConnectionGuardHandler`` right after the TLS handler.
struct GuardedHTTP2Channel: ServerChildChannel {
    typealias Value = HTTP2UpgradeChannel.Value
    let inner: HTTP2UpgradeChannel
    let limits: ConnectionLimits
    let open: OpenConnections

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let future = inner.setup(channel: channel, logger: logger)
        do {
            let tls = try channel.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
            try channel.pipeline.syncOperations.addHandler(
                ConnectionGuardHandler(limits: limits, open: open), position: .after(tls))
        } catch {
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(error)
        }
        return future
    }

    func handle(value: Value, logger: Logger) async { await inner.handle(value: value, logger: logger) }

    /// The server builder: HTTP/2 through ALPN, HTTP/1.1 otherwise, guarded.
    static func builder(
        tls: TLSConfiguration, configuration: HTTP2UpgradeChannel.Configuration, limits: ConnectionLimits
    ) -> HTTPServerBuilder {
        let open = OpenConnections()
        return HTTPServerBuilder { responder in
            GuardedHTTP2Channel(
                inner: try HTTP2UpgradeChannel(
                    tlsConfiguration: tls, configuration: configuration, responder: responder),
                limits: limits, open: open)
        }
    }
}

/// How many connections are open (shared by a server's connections).
final class OpenConnections: Sendable {
    let count = Atomic<Int>(0)
}

/// Sits after the TLS handler and sees the decrypted bytes.
///
/// 1. A connection beyond ``ConnectionLimits/maxConnections`` is closed at once.
/// 2. A deadline of ``ConnectionLimits/headDeadline`` starts when the connection opens.
/// 3. ALPN chose `h2`: the deadline ends with the handshake; HTTP/2's own idle timeouts bound the rest.
/// 4. HTTP/1.1: the deadline ends when the request head ends (`CRLF CRLF`); the next byte after a head starts
///    a new one (the next request, or a body: forms are small and sent at once). The deadline passing closes
///    the connection.
final class ConnectionGuardHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let limits: ConnectionLimits
    let open: OpenConnections
    var counted = false
    var deadline: Scheduled<Void>?
    /// How many bytes of `\r\n\r\n` the last bytes matched.
    var matched = 0
    var inHead = true
    var http2 = false

    init(limits: ConnectionLimits, open: OpenConnections) {
        self.limits = limits
        self.open = open
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let now = open.count.add(1, ordering: .relaxed).newValue
        counted = true
        if now > limits.maxConnections {
            context.close(promise: nil)
            return
        }
        arm(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        if counted {
            open.count.subtract(1, ordering: .relaxed)
            counted = false
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        if counted {
            open.count.subtract(1, ordering: .relaxed)
            counted = false
        }
        context.fireChannelInactive()
    }

    func arm(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: .nanoseconds(limits.headDeadline.nanoseconds)) {
            channel.close(promise: nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let proto) = event as? TLSUserEvent, proto == "h2" {
            http2 = true
            deadline?.cancel()
            deadline = nil
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !http2 {
            let buffer = unwrapInboundIn(data)
            let pattern: [UInt8] = [13, 10, 13, 10]
            buffer.withUnsafeReadableBytes { bytes in
                for b in bytes {
                    if !inHead {
                        inHead = true
                        matched = 0
                        arm(context)
                    }
                    matched = b == pattern[matched] ? matched + 1 : (b == 13 ? 1 : 0)
                    if matched == 4 {
                        inHead = false
                        deadline?.cancel()
                        deadline = nil
                    }
                }
            }
        }
        context.fireChannelRead(data)
    }
}
