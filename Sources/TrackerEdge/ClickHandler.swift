import EventLog
import LinkTracking
import Logging
import NIOCore
import NIOHTTP1

/// What every connection's handler shares: configuration, keys, the log, counters.
final class EdgeContext: Sendable {
    let configuration: EdgeConfiguration
    let keys: KeyRingStore
    let writer: EventLogWriter
    let counters: EdgeCounters
    let unrecordedLog: RateLimitedLog
    let inFlight = Counter()
    /// One mailbox per event loop, for answers that wait on the log.
    let mailboxes: [ObjectIdentifier: LoopMailbox]
    /// Milliseconds since the Unix epoch (injected for tests).
    let now: @Sendable () -> UInt64

    init(configuration: EdgeConfiguration, keys: KeyRingStore, writer: EventLogWriter, counters: EdgeCounters, logger: Logger,
         loops: [any EventLoop], now: @escaping @Sendable () -> UInt64) {
        self.mailboxes = Dictionary(uniqueKeysWithValues: loops.map { (ObjectIdentifier($0), LoopMailbox(loop: $0)) })
        self.configuration = configuration
        self.keys = keys
        self.writer = writer
        self.counters = counters
        self.unrecordedLog = RateLimitedLog(logger: logger)
        self.now = now
    }
}

/// The click route, `GET|HEAD /c/<token>`: verify, append, 302 — the hot path, as a lean
/// NIO handler (one per connection; NIO's pipelining handler feeds it one request at a time).
final class ClickHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let edge: EdgeContext
    private var head: HTTPRequestHead?

    static let notFoundBody = Array("""
        <!doctype html><meta charset="utf-8"><title>Link not found</title>\
        <h1>This link is not valid</h1><p>It may have been mistyped or cut short.</p>

        """.utf8)
    static let redirectBody = Array("Redirecting\n".utf8)

    init(edge: EdgeContext) { self.edge = edge }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break  // GET and HEAD carry none; anything else is answered without reading it
        case .end:
            guard let head else { return }
            self.head = nil
            handle(head, context: context)
        }
    }

    private func handle(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let uri = head.uri.utf8
        if uri.count > edge.configuration.maxRequestTargetBytes {
            edge.counters.rejected.increment()
            return respond(context, head, status: .uriTooLong, body: [], extra: [])
        }
        var headerBytes = 0
        var userAgent = ""
        var forwardedFor: String?
        for (name, value) in head.headers {
            headerBytes += name.utf8.count + value.utf8.count + 4
            if name.utf8.count == 10, name.lowercased() == "user-agent" { userAgent = value }
            if name.utf8.count == 15, name.lowercased() == "x-forwarded-for" {
                forwardedFor = forwardedFor.map { $0 + "," + value } ?? value
            }
        }
        if headerBytes > edge.configuration.maxHeaderBytes {
            edge.counters.rejected.increment()
            return respond(context, head, status: .requestHeaderFieldsTooLarge, body: [], extra: [])
        }
        guard uri.starts(with: "/c/".utf8) else {
            edge.counters.notFound.increment()
            return respond(context, head, status: .notFound, body: Self.notFoundBody, extra: [("Content-Type", "text/html; charset=utf-8")])
        }
        guard head.method == .GET || head.method == .HEAD else {
            edge.counters.notFound.increment()
            return respond(context, head, status: .methodNotAllowed, body: [], extra: [("Allow", "GET, HEAD")])
        }
        // The token ends at a query or fragment some mail clients append (UTF-8 view: no
        // grapheme breaking on the hot path).
        let utf8 = head.uri.utf8
        let start = utf8.index(utf8.startIndex, offsetBy: 3)
        let end = utf8[start...].firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? utf8.endIndex
        let token = head.uri[start..<end]
        let ring = edge.keys.current
        let verified: LinkToken, keyID: String
        switch ring.verifyNamingKey(token) {
        case .success(let t):
            (verified, keyID) = t
        case .failure(let error):
            edge.counters.invalid(error.reason)
            return respond(context, head, status: .notFound, body: Self.notFoundBody, extra: [("Content-Type", "text/html; charset=utf-8")])
        }
        // Defence in depth: a signed destination with control characters never reaches a header.
        if verified.destination.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) {
            edge.counters.invalid("unsafe_destination")
            return respond(context, head, status: .notFound, body: Self.notFoundBody, extra: [("Content-Type", "text/html; charset=utf-8")])
        }
        let event = ClickEvent(
            occurredAt: edge.now(), method: head.method == .HEAD ? .head : .get, token: verified,
            keyID: keyID, userAgent: userAgent,
            clientIP: edge.configuration.ipMode == .none ? [] : ClientAddress.truncate(
                ClientAddress.client(peer: context.channel.remoteAddress, forwardedFor: forwardedFor,
                                     trusted: edge.configuration.trustedProxies),
                mode: edge.configuration.ipMode),
            edgeID: edge.configuration.edgeID)
        if head.method == .HEAD { edge.counters.prefetches.increment() }
        let payload = EventCodec.encode(.click(event))
        let redirect: [(String, String)] = [
            ("Location", verified.destination), ("Cache-Control", "no-store"), ("Referrer-Policy", "no-referrer"),
            ("X-Robots-Tag", "noindex"), ("Content-Type", "text/plain; charset=utf-8"),
        ]
        let counters = edge.counters, unrecorded = edge.unrecordedLog
        if edge.configuration.durability == .none {
            payload.withUnsafeBytes { raw in
                edge.writer.append(bytes: raw) { result in
                    if case .failure(let error) = result {
                        counters.clicksUnrecorded.increment()
                        unrecorded.note(error)
                    } else {
                        counters.clicksRecorded.increment()
                    }
                }
            }
            return respond(context, head, status: .found, body: Self.redirectBody, extra: redirect)
        }
        // Durable: answer once the click is on disk — or, if the log fails, answer anyway
        // (a tracker must never break a person's link) and count the loss.
        edge.inFlight.increment()
        let started = ContinuousClock.now
        let loop = context.eventLoop
        let mailbox = edge.mailboxes[ObjectIdentifier(loop)]
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let inFlight = edge.inFlight
        payload.withUnsafeBytes { raw in
            edge.writer.append(bytes: raw) { result in
                switch result {
                case .success:
                    counters.clicksRecorded.increment()
                    counters.appendLatency.record(ContinuousClock.now - started)
                case .failure(let error):
                    counters.clicksUnrecorded.increment()
                    unrecorded.note(error)
                }
                let answer: @Sendable () -> Void = {
                    let (handler, context) = bound.value
                    handler.respond(context, head, status: .found, body: Self.redirectBody, extra: redirect)
                    inFlight.decrement()
                }
                if let mailbox { mailbox.post(answer) } else { loop.execute(answer) }
            }
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ request: HTTPRequestHead, status: HTTPResponseStatus, body: [UInt8],
                         extra: [(String, String)]) {
        let keepAlive = request.isKeepAlive
        var headers = HTTPHeaders(extra)
        if status != .found {
            headers.add(name: "Cache-Control", value: "no-store")
            headers.add(name: "X-Robots-Tag", value: "noindex")
        }
        headers.add(name: "Content-Length", value: String(body.count))
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD, !body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            let channel = context.channel
            done.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}

/// Closes connections that send nothing for the idle timeout (slow clients, idle keep-alives),
/// and counts open connections.
final class ConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    typealias OutboundIn = NIOAny
    let counters: EdgeCounters

    init(counters: EdgeCounters) { self.counters = counters }

    func channelActive(context: ChannelHandlerContext) {
        counters.openConnections.increment(by: 1)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        counters.openConnections.decrement(by: 1)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
