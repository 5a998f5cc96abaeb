import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOHTTP2
import NIOSSL
import NIOTLS

/// The web's HTTPS connections: TLS, then ALPN (RFC 7301) picks HTTP/2 or HTTP/1.1; HTTP/1.1 connections may
/// upgrade to a WebSocket (RFC 6455 §4) on a route the router declares with `ws`. Browsers open WebSockets on
/// their own HTTP/1.1 connection (Hummingbird's HTTP/2 does not offer RFC 8441's extended CONNECT), so live
/// video and the HTTP/2 page share one port and one route table. Hummingbird's own `http2Upgrade` channel
/// offers no WebSocket upgrade on its HTTP/1.1 side; this is the same composition with one that does, and with
/// the ``ConnectionGuardHandler`` right after TLS.
struct HTTPSWebSocketChannel: HTTPChannelHandler {
    struct Value: ServerChildChannelValue {
        let negotiated:
            EventLoopFuture<NIONegotiatedHTTPVersion<HTTP1WebSocketUpgradeChannel.Value, HTTP2Channel.Value>>
        let channel: any Channel
    }

    let sslContext: NIOSSLContext
    let http1: HTTP1WebSocketUpgradeChannel
    let http2: HTTP2Channel
    let responder: Responder
    /// The slow-client bounds (``ConnectionGuardHandler``, right after TLS) and the server's open connections.
    let limits: ConnectionLimits
    let open: OpenConnections

    init<WSResponder: HTTPResponder>(
        tlsConfiguration: TLSConfiguration, configuration: HTTP2ChannelConfiguration,
        webSocket: WebSocketServerConfiguration, webSocketResponder: WSResponder,
        limits: ConnectionLimits, open: OpenConnections, responder: @escaping Responder
    ) throws where WSResponder.Context: WebSocketRequestContext {
        self.limits = limits
        self.open = open
        var tls = tlsConfiguration
        tls.applicationProtocols = NIOHTTP2SupportedALPNProtocols
        sslContext = try NIOSSLContext(configuration: tls)
        http1 = HTTP1WebSocketUpgradeChannel(
            responder: responder, webSocketResponder: webSocketResponder,
            configuration: .init(http1: configuration.streamConfiguration, ws: webSocket))
        http2 = HTTP2Channel(responder: responder, configuration: configuration)
        self.responder = responder
    }

    /// Unsent bytes a connection's kernel send buffer may hold before the socket stops taking writes
    /// (`TCP_NOTSENT_LOWAT`, Linux tcp(7)): 64 KiB. Without it the kernel grows the buffer to megabytes on a
    /// slow link, and live video waits there, unseen by the viewer's bounded queue (``LiveHub``): measured
    /// through a relay at half a 4 Mbit/s camera's rate, 17 s behind after 30 s. Bytes in flight are not
    /// limited, so throughput is not either.
    static let notSentLowWater = 64 << 10

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let (http1, http2, limits, open) = (http1, http2, limits, open)
        return channel.eventLoop.makeCompletedFuture {
            // 25 is TCP_NOTSENT_LOWAT (linux/tcp.h), which Glibc's module does not export.
            try channel.syncOptions?.setOption(
                ChannelOptions.tcpOption(.init(rawValue: 25)), value: Self.notSentLowWater)
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: sslContext))
            let guardHandler = ConnectionGuardHandler(limits: limits, open: open)
            try channel.pipeline.syncOperations.addHandler(guardHandler)
            let alpn = NIOTypedApplicationProtocolNegotiationHandler<
                NIONegotiatedHTTPVersion<HTTP1WebSocketUpgradeChannel.Value, HTTP2Channel.Value>
            > { result in
                switch result {
                case .negotiated("h2"):
                    return http2.setup(channel: channel, logger: logger).map { .http2($0) }
                case .negotiated("http/1.1"), .fallback:
                    return http1.setup(channel: channel, logger: logger).flatMapThrowing { value in
                        try channel.pipeline.syncOperations.addHandler(
                            HTTPParseErrorHandler(guardHandler: guardHandler))
                        return .http1_1(value)
                    }
                case .negotiated:
                    return channel.close().flatMap {
                        channel.eventLoop.makeFailedFuture(NIOHTTP2Errors.invalidALPNToken())
                    }
                }
            }
            try channel.pipeline.syncOperations.addHandler(alpn)
            return Value(negotiated: alpn.protocolNegotiationResult, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.negotiated.get() {
            case .http1_1(let v):
                await http1.handle(value: v, logger: logger)
                // The upgrade channel returns without closing when the first head failed to parse.
                try? await value.channel.close()
            case .http2(let v): await http2.handle(value: v, logger: logger)
            }
        } catch {
            logger.debug("TLS or ALPN failed", metadata: ["error": "\(error)"])
        }
    }
}

extension HTTPServerBuilder {
    /// HTTPS with HTTP/2 through ALPN, HTTP/1.1 otherwise, and WebSocket upgrades on HTTP/1.1 for the routes
    /// `webSocketRouter` declares with `ws` (``HTTPSWebSocketChannel``).
    /// Every connection is guarded by `limits` (``ConnectionGuardHandler``: a cap on open connections, a
    /// deadline for the TLS handshake and each HTTP/1.1 request head).
    static func httpsWithWebSocket<Router: HTTPResponderBuilder>(
        tlsConfiguration: TLSConfiguration, configuration: HTTP2ChannelConfiguration,
        webSocket: WebSocketServerConfiguration, webSocketRouter: Router, limits: ConnectionLimits
    ) -> HTTPServerBuilder where Router.Responder.Context: WebSocketRequestContext, Router.Responder: Sendable {
        let wsResponder = webSocketRouter.buildResponder()
        let open = OpenConnections()
        return .init { responder in
            try HTTPSWebSocketChannel(
                tlsConfiguration: tlsConfiguration, configuration: configuration, webSocket: webSocket,
                webSocketResponder: wsResponder, limits: limits, open: open, responder: responder)
        }
    }
}
