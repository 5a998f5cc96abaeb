import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS
import Synchronization

/// Bounds on connections that hold the server without finishing a request (slowloris, RFC 9110 §"denial of
/// service" in spirit; OWASP "Slow HTTP"): idle timeouts alone do not end a client that sends one byte of its
/// request head every few seconds.
public struct ConnectionLimits: Sendable {
    /// Most connections open at once; more are closed as they arrive. Default 512.
    public var maxConnections = 512
    /// Most connections open at once from one IP address, so that one client holding idle connections cannot
    /// take every slot of ``maxConnections`` from the others. Default 64: a 4×4 live grid over HTTP/1.1 is 16
    /// WebSockets plus a few page connections, and several responders' phones behind one carrier NAT fit.
    public var maxPerAddress = 64
    /// The TLS handshake and the first request head (HTTP/1.1) must arrive within this of the connection
    /// opening; every later request head within this of its first byte. Default 10 s.
    public var headDeadline: Duration = .seconds(10)
    public init(maxConnections: Int = 512, maxPerAddress: Int = 64, headDeadline: Duration = .seconds(10)) {
        self.maxConnections = maxConnections
        self.maxPerAddress = maxPerAddress
        self.headDeadline = headDeadline
    }
}

/// How many connections are open, in all and per remote IP address (shared by a server's connections).
final class OpenConnections: Sendable {
    let count = Atomic<Int>(0)
    let perAddress = Mutex<[String: Int]>([:])

    /// Counts a connection from `address` (nil: a Unix socket or unknown peer, counted in the total only) and
    /// returns how many are now open from it.
    func add(_ address: String?) -> Int {
        guard let address else { return 0 }
        return perAddress.withLock { counts in
            counts[address, default: 0] += 1
            return counts[address]!
        }
    }

    /// Forgets one connection from `address`.
    func remove(_ address: String?) {
        guard let address else { return }
        perAddress.withLock { counts in
            let left = (counts[address] ?? 1) - 1
            counts[address] = left > 0 ? left : nil
        }
    }
}

/// Sits after the TLS handler and sees the decrypted bytes.
///
/// 1. A connection beyond ``ConnectionLimits/maxConnections``, or beyond ``ConnectionLimits/maxPerAddress`` from
///    its IP address, is closed at once.
/// 2. A deadline of ``ConnectionLimits/headDeadline`` starts when the connection opens.
/// 3. ALPN chose `h2`: the deadline ends with the handshake; HTTP/2's own idle timeouts bound the rest.
/// 4. HTTP/1.1: the deadline ends when the request head ends (`CRLF CRLF`); the next byte after a head starts
///    a new one (the next request, or a body: forms are small and sent at once). The deadline passing closes
///    the connection.
/// 5. A head that asks for a WebSocket (it holds `websocket`, as `Upgrade: websocket` does, RFC 6455 §4.1)
///    ends the guarding: the connection then carries WebSocket frames, which have no heads. (A client could
///    say `websocket` in a plain request to keep its connection unguarded afterwards; the live route needs a
///    session, and the cap on open connections still holds.)
final class ConnectionGuardHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let limits: ConnectionLimits
    let open: OpenConnections
    var counted = false
    /// The peer's IP address as counted in ``OpenConnections/perAddress``.
    var address: String?
    var deadline: Scheduled<Void>?
    /// How many bytes of `\r\n\r\n` the last bytes matched.
    var matched = 0
    var inHead = true
    var http2 = false
    /// How many bytes of `websocket` (lower-cased) the head's last bytes matched, and whether it held it.
    var wsMatched = 0
    var headAsksWebSocket = false
    /// A WebSocket upgrade was asked for: no more heads to time.
    var upgraded = false
    /// This handler's place in the pipeline, for ``refuse(_:)``.
    var context: ChannelHandlerContext?

    init(limits: ConnectionLimits, open: OpenConnections) {
        self.limits = limits
        self.open = open
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let now = open.count.add(1, ordering: .relaxed).newValue
        address = context.channel.remoteAddress?.ipAddress
        let fromAddress = open.add(address)
        counted = true
        if now > limits.maxConnections || fromAddress > limits.maxPerAddress {
            context.close(promise: nil)
            return
        }
        arm(context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
        self.context = nil
        uncount()
    }

    /// Answers an HTTP/1.1 request head the parser refused with `status` (400, or 431 for a header over the
    /// limits, RFC 6585 §5) and `Connection: close`, written as plain bytes from here, below the HTTP codec whose
    /// state the bad head broke, then closes the connection. Called by ``HTTPParseErrorHandler``.
    func refuse(_ status: HTTPResponseStatus) {
        guard let context, context.channel.isActive else { return }
        deadline?.cancel()
        upgraded = true
        let text =
            "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"
        let channel = context.channel
        context.writeAndFlush(NIOAny(context.channel.allocator.buffer(string: text))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        uncount()
        context.fireChannelInactive()
    }

    func uncount() {
        if counted {
            open.count.subtract(1, ordering: .relaxed)
            open.remove(address)
            counted = false
        }
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
        if !http2 && !upgraded {
            let buffer = unwrapInboundIn(data)
            let pattern: [UInt8] = [13, 10, 13, 10]
            let websocket = Array("websocket".utf8)
            buffer.withUnsafeReadableBytes { bytes in
                for b in bytes where !upgraded {
                    if !inHead {
                        inHead = true
                        matched = 0
                        wsMatched = 0
                        headAsksWebSocket = false
                        arm(context)
                    }
                    matched = b == pattern[matched] ? matched + 1 : (b == 13 ? 1 : 0)
                    let lower = (b >= 0x41 && b <= 0x5A) ? b + 0x20 : b
                    wsMatched = lower == websocket[wsMatched] ? wsMatched + 1 : (lower == websocket[0] ? 1 : 0)
                    if wsMatched == websocket.count {
                        headAsksWebSocket = true
                        wsMatched = 0
                    }
                    if matched == 4 {
                        inHead = false
                        deadline?.cancel()
                        deadline = nil
                        if headAsksWebSocket { upgraded = true }
                    }
                }
            }
        }
        context.fireChannelRead(data)
    }
}

/// The last handler of an HTTP/1.1 connection's pipeline: a request head that NIO's HTTP parser refuses (a request
/// line that is not HTTP, a header field over 8 KiB, over 100 fields, bytes HTTP does not allow) ends in an error
/// that nothing above answers — Hummingbird's WebSocket upgrade channel only logs it — and the connection stayed
/// open, unanswered, counted against its address. This answers it through ``ConnectionGuardHandler/refuse(_:)``
/// and closes it.
final class HTTPParseErrorHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let guardHandler: ConnectionGuardHandler

    init(guardHandler: ConnectionGuardHandler) { self.guardHandler = guardHandler }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let parse = error as? HTTPParserError {
            guardHandler.refuse(parse == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest)
        }
        context.fireErrorCaught(error)
    }
}
