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
/// NIO handler (one per connection). It parses request heads itself (`RequestHead`) and
/// writes its answers as bytes (the 302's fixed headers pre-encoded), in request order even
/// when a durable 302 waits for the log while a pipelined request behind it could be
/// answered at once.
final class ClickHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let edge: EdgeContext
    /// Bytes received and not yet parsed (a partial request head).
    private var received: ByteBuffer?
    /// Answers not yet written, oldest first; `pending[0]` answers request number `written`.
    private var pending = CircularBuffer<ByteBuffer?>(initialCapacity: 4)
    private var written = 0
    private var requests = 0
    /// The request after whose answer the connection closes.
    private var closeAfter: Int?

    static let notFoundBody = Array("""
        <!doctype html><meta charset="utf-8"><title>Link not found</title>\
        <h1>This link is not valid</h1><p>It may have been mistyped or cut short.</p>

        """.utf8)
    static let redirectBody = Array("Redirecting\n".utf8)
    static let redirectHeaders = Array("""
        Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nX-Robots-Tag: noindex\r\n\
        Content-Type: text/plain; charset=utf-8\r\nContent-Length: \(redirectBody.count)\r\n
        """.utf8)
    static let notFoundHeaders: [(String, String)] = [("Content-Type", "text/html; charset=utf-8")]

    /// The connection's peer, read from the channel once (each read takes the channel's lock).
    private var peerAddress: SocketAddress??

    init(edge: EdgeContext) { self.edge = edge }

    private func peer(_ context: ChannelHandlerContext) -> SocketAddress? {
        if let peerAddress { return peerAddress }
        let address = context.channel.remoteAddress
        peerAddress = .some(address)
        return address
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard closeAfter == nil else { return }  // the connection is closing: nothing more is read
        if received == nil {
            received = bytes
        } else {
            received!.writeBuffer(&bytes)
        }
        parseRequests(context: context)
    }

    /// Answers every complete request head received, in order, keeping a partial one.
    private func parseRequests(context: ChannelHandlerContext) {
        let maxLine = edge.configuration.maxRequestTargetBytes + 64
        let maxHead = edge.configuration.maxRequestTargetBytes + edge.configuration.maxHeaderBytes + 1024
        while closeAfter == nil, let readable = received?.readableBytes, readable > 0 {
            let parse = received!.withUnsafeReadableBytes { RequestHead.parse($0, maxLineBytes: maxLine, maxHeadBytes: maxHead) }
            let number = requests
            switch parse {
            case .incomplete:
                received!.discardReadBytes()  // keeps the partial head at the front; nothing to move when it already is
                return
            case .complete(var head, let length):
                received!.moveReaderIndex(forwardBy: length)
                requests += 1
                pending.append(nil)
                // A body is never read: answer, then close.
                if head.hasBody {
                    head.keepAlive = false
                    closeAfter = number
                }
                handle(head, number: number, context: context)
            case .invalid(let status):
                // Refused by the grammar or its limits: a 4xx after the answers owed to the
                // requests before it, and the connection closes.
                received = nil
                edge.counters.rejected.increment()
                requests += 1
                pending.append(nil)
                answer(number, Self.encode(status: status, version: .http1_1, keepAlive: false, headOnly: false, headers: [], body: [],
                                           allocator: context.channel.allocator), keepAlive: false, context: context)
                return
            }
        }
        received = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func handle(_ head: RequestHead, number: Int, context: ChannelHandlerContext) {
        let uri = head.target.utf8
        if uri.count > edge.configuration.maxRequestTargetBytes {
            edge.counters.rejected.increment()
            return respond(context, number, head, status: .uriTooLong)
        }
        if head.headerBytes > edge.configuration.maxHeaderBytes {
            edge.counters.rejected.increment()
            return respond(context, number, head, status: .requestHeaderFieldsTooLarge)
        }
        guard uri.starts(with: "/c/".utf8) else {
            edge.counters.notFound.increment()
            return respond(context, number, head, status: .notFound, headers: Self.notFoundHeaders, body: Self.notFoundBody)
        }
        guard head.method != .other else {
            edge.counters.notFound.increment()
            return respond(context, number, head, status: .methodNotAllowed, headers: [("Allow", "GET, HEAD")])
        }
        // The token ends at a query or fragment some mail clients append. Scanned as
        // contiguous bytes: walking String.UTF8View was a tenth of this function in a
        // profile of bench/edge.sh.
        let start = uri.index(uri.startIndex, offsetBy: 3)
        let length = uri.withContiguousStorageIfAvailable { bytes in
            bytes[3...].firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }.map { $0 - 3 }
        } ?? uri[start...].firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }.map { uri.distance(from: start, to: $0) }
        let token = head.target[start..<(length.map { uri.index(start, offsetBy: $0) } ?? uri.endIndex)]
        let ring = edge.keys.current
        let verified: LinkToken, keyID: String
        switch ring.verifyNamingKey(token) {
        case .success(let t):
            (verified, keyID) = t
        case .failure(let error):
            edge.counters.invalid(error.reason)
            return respond(context, number, head, status: .notFound, headers: Self.notFoundHeaders, body: Self.notFoundBody)
        }
        // Defence in depth: a signed destination with control characters never reaches a header.
        let unsafe: (UInt8) -> Bool = { $0 < 0x20 || $0 == 0x7f }
        if verified.destination.utf8.withContiguousStorageIfAvailable({ $0.contains(where: unsafe) })
            ?? verified.destination.utf8.contains(where: unsafe) {
            edge.counters.invalid("unsafe_destination")
            return respond(context, number, head, status: .notFound, headers: Self.notFoundHeaders, body: Self.notFoundBody)
        }
        let event = ClickEvent(
            occurredAt: edge.now(), method: head.method == .head ? .head : .get, token: verified,
            keyID: keyID, userAgent: head.userAgent,
            clientIP: edge.configuration.ipMode == .none ? [] : ClientAddress.truncate(
                ClientAddress.client(peer: peer(context), forwardedFor: head.forwardedFor,
                                     trusted: edge.configuration.trustedProxies),
                mode: edge.configuration.ipMode),
            edgeID: edge.configuration.edgeID)
        if head.method == .head { edge.counters.prefetches.increment() }
        let payload = EventCodec.encode(.click(event))
        let keepAlive = head.keepAlive
        let redirect = Self.encodeRedirect(to: verified.destination, version: head.version, keepAlive: keepAlive,
                                           headOnly: head.method == .head, allocator: context.channel.allocator)
        let counters = edge.counters, unrecorded = edge.unrecordedLog
        let loop = context.eventLoop
        let mailbox = edge.mailboxes[ObjectIdentifier(loop)]
        // The flusher is woken once per burst of reads, not by this click (see LoopMailbox).
        defer { mailbox?.wakeFlusherAfterBurst(edge.writer) }
        if edge.configuration.durability == .none {
            payload.withUnsafeBytes { raw in
                edge.writer.append(bytes: raw, wakeLater: mailbox != nil) { result in
                    if case .failure(let error) = result {
                        counters.clicksUnrecorded.increment()
                        unrecorded.note(error)
                    } else {
                        counters.clicksRecorded.increment()
                    }
                }
            }
            return answer(number, redirect, keepAlive: keepAlive, context: context)
        }
        // Durable: answer once the click is on disk — or, if the log fails, answer anyway
        // (a tracker must never break a person's link) and count the loss.
        edge.inFlight.increment()
        let started = ContinuousClock.now
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let inFlight = edge.inFlight
        payload.withUnsafeBytes { raw in
            edge.writer.append(bytes: raw, wakeLater: mailbox != nil) { result in
                switch result {
                case .success:
                    counters.clicksRecorded.increment()
                    counters.appendLatency.record(ContinuousClock.now - started)
                case .failure(let error):
                    counters.clicksUnrecorded.increment()
                    unrecorded.note(error)
                }
                let deliver: @Sendable () -> Void = {
                    let (handler, context) = bound.value
                    handler.answer(number, redirect, keepAlive: keepAlive, context: context)
                    inFlight.decrement()
                }
                if let mailbox { mailbox.post(deliver) } else { loop.execute(deliver) }
            }
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ number: Int, _ request: RequestHead, status: HTTPResponseStatus,
                         headers: [(String, String)] = [], body: [UInt8] = []) {
        let keepAlive = request.keepAlive
        let bytes = Self.encode(status: status, version: request.version, keepAlive: keepAlive, headOnly: request.method == .head,
                                headers: headers + [("Cache-Control", "no-store"), ("X-Robots-Tag", "noindex")], body: body,
                                allocator: context.channel.allocator)
        answer(number, bytes, keepAlive: keepAlive, context: context)
    }

    /// Files the answer to request `number`, then writes every answer now due, in order.
    private func answer(_ number: Int, _ bytes: ByteBuffer, keepAlive: Bool, context: ChannelHandlerContext) {
        let index = number - written
        guard index >= 0, index < pending.count else { return }  // the connection was reset meanwhile
        pending[pending.index(pending.startIndex, offsetBy: index)] = bytes
        if !keepAlive, closeAfter.map({ number < $0 }) ?? true { closeAfter = number }
        var wrote = false
        while let first = pending.first, let ready = first {
            _ = pending.removeFirst()
            context.write(wrapOutboundOut(ready), promise: nil)
            wrote = true
            if written == closeAfter {
                let channel = context.channel
                context.writeAndFlush(wrapOutboundOut(ByteBuffer())).whenComplete { _ in channel.close(promise: nil) }
                pending.removeAll()
                written += 1
                return
            }
            written += 1
        }
        if wrote { context.flush() }
    }

    static func statusLine(_ version: HTTPVersion, _ status: HTTPResponseStatus, into buffer: inout ByteBuffer) {
        buffer.writeString(version.minor == 0 && version.major == 1 ? "HTTP/1.0 " : "HTTP/1.1 ")
        buffer.writeString("\(status.code) \(status.reasonPhrase)\r\n")
    }

    static func connectionHeader(_ version: HTTPVersion, keepAlive: Bool, into buffer: inout ByteBuffer) {
        if !keepAlive {
            buffer.writeString("Connection: close\r\n")
        } else if version.major == 1, version.minor == 0 {
            buffer.writeString("Connection: keep-alive\r\n")
        }
    }

    /// The 302: status line, Location, the pre-encoded fixed headers, the body unless HEAD.
    static func encodeRedirect(to destination: String, version: HTTPVersion, keepAlive: Bool, headOnly: Bool,
                               allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 200 + destination.utf8.count)
        if version.major == 1, version.minor == 1 {
            buffer.writeStaticString("HTTP/1.1 302 Found\r\n")
        } else {
            statusLine(version, .found, into: &buffer)
        }
        buffer.writeStaticString("Location: ")
        buffer.writeString(destination)
        buffer.writeStaticString("\r\n")
        buffer.writeBytes(redirectHeaders)
        connectionHeader(version, keepAlive: keepAlive, into: &buffer)
        buffer.writeStaticString("\r\n")
        if !headOnly { buffer.writeBytes(redirectBody) }
        return buffer
    }

    static func encode(status: HTTPResponseStatus, version: HTTPVersion, keepAlive: Bool, headOnly: Bool,
                       headers: [(String, String)], body: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 256 + body.count)
        statusLine(version, status, into: &buffer)
        for (name, value) in headers { buffer.writeString("\(name): \(value)\r\n") }
        buffer.writeString("Content-Length: \(body.count)\r\n")
        connectionHeader(version, keepAlive: keepAlive, into: &buffer)
        buffer.writeStaticString("\r\n")
        if !headOnly { buffer.writeBytes(body) }
        return buffer
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
