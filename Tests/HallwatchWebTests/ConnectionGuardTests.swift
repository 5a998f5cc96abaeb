import NIOCore
import NIOEmbedded
import NIOTLS
import Testing

@testable import HallwatchWeb

@Suite("hallwatch-web: the connection guard (slow clients)")
struct ConnectionGuardTests {
    static let limits = ConnectionLimits(maxConnections: 2, headDeadline: .seconds(10))

    func channel(
        _ open: OpenConnections, from ip: String = "127.0.0.1", limits: ConnectionLimits = Self.limits
    ) throws -> EmbeddedChannel {
        // As on the server: the guard joins a connected channel's pipeline.
        let c = EmbeddedChannel()
        try c.connect(to: SocketAddress(ipAddress: ip, port: 1)).wait()
        try c.pipeline.syncOperations.addHandler(ConnectionGuardHandler(limits: limits, open: open))
        return c
    }

    @Test("one address holding its share of connections leaves room for the others; a closed one frees a place")
    func perAddress() throws {
        let open = OpenConnections()
        let limits = ConnectionLimits(maxConnections: 10, maxPerAddress: 3)
        let hog = try (0..<3).map { _ in try channel(open, from: "192.0.2.7", limits: limits) }
        #expect(hog.allSatisfy { $0.isActive })
        let fourth = try channel(open, from: "192.0.2.7", limits: limits)
        #expect(!fourth.isActive)
        let other = try channel(open, from: "192.0.2.8", limits: limits)
        #expect(other.isActive)
        #expect(open.perAddress.withLock { $0 } == ["192.0.2.7": 3, "192.0.2.8": 1])
        _ = try? hog[0].close().wait()
        #expect(try channel(open, from: "192.0.2.7", limits: limits).isActive)
        #expect(open.count.load(ordering: .relaxed) == 4)
    }

    @Test("a request head dripped a byte at a time is closed at its deadline, however often it sends")
    func slowHead() throws {
        let c = try channel(OpenConnections())
        let loop = c.embeddedEventLoop
        try c.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n"))
        for _ in 0..<4 {
            loop.advanceTime(by: .seconds(2))
            try c.writeInbound(ByteBuffer(string: "X"))
        }
        #expect(c.isActive)
        loop.advanceTime(by: .seconds(2))
        #expect(!c.isActive)
    }

    @Test("a finished head ends the deadline; the next request's first byte starts another")
    func finishedHead() throws {
        let c = try channel(OpenConnections())
        let loop = c.embeddedEventLoop
        // The head split over reads, CR LF CR LF across the boundary.
        try c.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r"))
        try c.writeInbound(ByteBuffer(string: "\n"))
        loop.advanceTime(by: .seconds(60))
        #expect(c.isActive)
        try c.writeInbound(ByteBuffer(string: "GET /next HTTP/1.1\r\n"))
        loop.advanceTime(by: .seconds(11))
        #expect(!c.isActive)
        // What reached the handlers after it is what came in.
        var got = ""
        while let b: ByteBuffer = try c.readInbound() { got += String(buffer: b) }
        #expect(got == "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\n")
    }

    @Test("HTTP/2 (ALPN h2) leaves the deadline to HTTP/2's own timeouts; over the limit closes at once")
    func http2AndLimit() throws {
        let open = OpenConnections()
        let c = try channel(open)
        c.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: "h2"))
        c.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(c.isActive)
        let second = try channel(open)
        #expect(second.isActive)
        let third = try channel(open)
        #expect(!third.isActive)
        #expect(open.count.load(ordering: .relaxed) == 2)
        _ = try? second.close().wait()
        #expect(open.count.load(ordering: .relaxed) == 1)
    }
}
