import EventLog
import LinkTracking
import Logging
import NIOCore
import NIOHTTP1
import Prometheus

/// What every connection's handler shares: configuration, keys, the log, counters.
final class EdgeContext: Sendable {
    let configuration: EdgeConfiguration
    let keys: KeyRingStore
    /// Apple's Private Relay egress ranges, for the opens' Apple-relay bit.
    let appleEgress: Swappable<AddressRanges>
    let writer: EventLogWriter
    let counters: EdgeCounters
    let unrecordedLog: RateLimitedLog
    /// One mailbox per event loop, for answers that wait on the log.
    let mailboxes: [ObjectIdentifier: LoopMailbox]
    /// Milliseconds since the Unix epoch (injected for tests).
    let now: @Sendable () -> UInt64

    init(
        configuration: EdgeConfiguration, keys: KeyRingStore, appleEgress: Swappable<AddressRanges>, writer: EventLogWriter,
        counters: EdgeCounters, logger: Logger, loops: [any EventLoop], now: @escaping @Sendable () -> UInt64
    ) {
        self.appleEgress = appleEgress
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
/// NIO handler (one per connection) — and the open route, `GET|HEAD /o/<token>`: verify,
/// append, the pixel (`handleOpen`). It parses request heads itself (`RequestHead`) and
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
    /// Decides when a partial head is worth parsing (each byte scanned once).
    private var scanner = RequestHeadScanner()
    /// Bytes of empty lines dropped since the last request head (bounded like a request line).
    private var blankLineBytes = 0
    /// Whether the channel is being read (NIO's `autoRead`): off while answers wait to be read
    /// by the client (the channel is not writable) or too many are pending.
    private var reading = true
    /// Set while `parseRequests` runs, so answers written meanwhile do not parse re-entrantly.
    private var parsing = false
    /// Closes the connection when a request head is not complete in time.
    private var headDeadline: Scheduled<Void>?
    /// Closes the connection when its answers are not read in time.
    private var writeDeadline: Scheduled<Void>?

    static let notFoundBody = Array(
        """
        <!doctype html><meta charset="utf-8"><title>Link not found</title>\
        <h1>This link is not valid</h1><p>It may have been mistyped or cut short.</p>

        """.utf8)
    static let redirectBody = Array("Redirecting\n".utf8)
    static let redirectHeaders = Array(
        """
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

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            writeDeadline?.cancel()
            writeDeadline = nil
            parseRequests(context: context)  // requests held back meanwhile
        } else if writeDeadline == nil {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let counters = edge.counters
            writeDeadline = context.eventLoop.scheduleTask(in: Self.timeAmount(edge.configuration.writeTimeout)) {
                let (handler, context) = bound.value
                guard !context.channel.isWritable else { return }
                counters.closedWriteTimeout.increment()
                handler.pending.removeAll()
                context.close(promise: nil)
            }
        }
        updateReading(context: context)
        context.fireChannelWritabilityChanged()
    }

    /// The edge is shutting down (`ServerQuiescingHelper`): nothing more is read, every
    /// request read so far is answered — a durable 302 once its click is on disk — and then
    /// the connection closes; an idle one closes now.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        received = nil
        headDeadline?.cancel()
        headDeadline = nil
        if pending.isEmpty {
            context.close(promise: nil)
        } else if closeAfter.map({ requests - 1 < $0 }) ?? true {
            closeAfter = requests - 1
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        headDeadline?.cancel()
        writeDeadline?.cancel()
        headDeadline = nil
        writeDeadline = nil
        received = nil
        context.fireChannelInactive()
    }

    /// Whether more requests may be parsed now: not while the client leaves its answers
    /// unread (the outbound buffer is over its high-water mark) or too many are pending.
    private func mayAnswerMore(_ context: ChannelHandlerContext) -> Bool {
        closeAfter == nil && context.channel.isWritable && pending.count < edge.configuration.maxPendingAnswers
    }

    /// Reads from the socket only while requests may be answered: a client that pipelines
    /// without reading is held by TCP's own flow control, not by the edge's memory.
    private func updateReading(context: ChannelHandlerContext) {
        let wanted = mayAnswerMore(context)
        guard wanted != reading else { return }
        reading = wanted
        try? context.channel.syncOptions?.setOption(.autoRead, value: wanted)
    }

    /// Answers every complete request head received, in order, keeping a partial one, as
    /// far as the connection's limits allow (the rest waits in `received`).
    private func parseRequests(context: ChannelHandlerContext) {
        guard !parsing else { return }
        parsing = true
        defer {
            parsing = false
            updateReading(context: context)
            armHeadDeadline(context: context)
        }
        let maxLine = edge.configuration.maxRequestTargetBytes + 64
        let maxHead = edge.configuration.maxRequestTargetBytes + edge.configuration.maxHeaderBytes + 1024
        while mayAnswerMore(context), let readable = received?.readableBytes, readable > 0 {
            let worth = received!.withUnsafeReadableBytes { scanner.worthParsing($0, maxLineBytes: maxLine, maxHeadBytes: maxHead) }
            let parse =
                worth
                ? received!.withUnsafeReadableBytes { RequestHead.parse($0, maxLineBytes: maxLine, maxHeadBytes: maxHead) }
                : .incomplete
            let number = requests
            switch parse {
            case .incomplete:
                received!.discardReadBytes()  // keeps the partial head at the front; nothing to move when it already is
                return
            case .blankLines(let length):
                received!.moveReaderIndex(forwardBy: length)
                scanner.reset()
                blankLineBytes += length
                if blankLineBytes > maxLine {
                    refuse(number, status: .badRequest, context: context)
                    return
                }
            case .complete(var head, let length):
                received!.moveReaderIndex(forwardBy: length)
                scanner.reset()
                blankLineBytes = 0
                headDeadline?.cancel()
                headDeadline = nil
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
                refuse(number, status: status, context: context)
                return
            }
        }
        if received?.readableBytes == 0 { received = nil }
    }

    /// Answers request `number` with `status` (after the answers owed before it) and closes.
    private func refuse(_ number: Int, status: HTTPResponseStatus, context: ChannelHandlerContext) {
        received = nil
        headDeadline?.cancel()
        headDeadline = nil
        edge.counters.rejected.increment()
        requests += 1
        pending.append(nil)
        answer(
            number,
            Self.encode(
                status: status, version: .http1_1, keepAlive: false, headOnly: false, headers: [], body: [],
                allocator: context.channel.allocator), keepAlive: false, context: context)
    }

    /// A partial head starts the head deadline (once; a completed head stops it). While
    /// requests are held back by the connection's limits, the write deadline applies instead.
    private func armHeadDeadline(context: ChannelHandlerContext) {
        guard headDeadline == nil, closeAfter == nil, mayAnswerMore(context), let readable = received?.readableBytes, readable > 0
        else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let counters = edge.counters
        let number = requests
        headDeadline = context.eventLoop.scheduleTask(in: Self.timeAmount(edge.configuration.headTimeout)) {
            let (handler, context) = bound.value
            handler.headDeadline = nil
            guard handler.requests == number, handler.closeAfter == nil else { return }
            counters.closedHeadTimeout.increment()
            handler.refuse(number, status: .requestTimeout, context: context)
        }
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func handle(_ head: RequestHead, number: Int, context: ChannelHandlerContext) {
        let uri = head.target.utf8
        // Over a limit: answered, and the connection closes (what follows may be the rest of
        // a request the edge did not read whole).
        if uri.count > edge.configuration.maxRequestTargetBytes {
            edge.counters.rejected.increment()
            return respond(context, number, head, status: .uriTooLong, close: true)
        }
        if head.headerBytes > edge.configuration.maxHeaderBytes {
            edge.counters.rejected.increment()
            return respond(context, number, head, status: .requestHeaderFieldsTooLarge, close: true)
        }
        let isOpen = uri.starts(with: "/o/".utf8)
        guard isOpen || uri.starts(with: "/c/".utf8) else {
            edge.counters.notFound.increment()
            return respond(context, number, head, status: .notFound, headers: Self.notFoundHeaders, body: Self.notFoundBody)
        }
        guard head.method != .other else {
            edge.counters.notFound.increment()
            return respond(context, number, head, status: .methodNotAllowed, headers: [("Allow", "GET, HEAD")])
        }
        let token = Self.token(in: head.target)
        if isOpen { return handleOpen(head, token: token, number: number, context: context) }
        let ring = edge.keys.current
        let verified: LinkToken
        let keyID: String
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
            ?? verified.destination.utf8.contains(where: unsafe)
        {
            edge.counters.invalid("unsafe_destination")
            return respond(context, number, head, status: .notFound, headers: Self.notFoundHeaders, body: Self.notFoundBody)
        }
        let event = ClickEvent(
            occurredAt: edge.now(), method: head.method == .head ? .head : .get, token: verified,
            keyID: keyID, userAgent: head.userAgent, clientIP: recordedAddress(of: clientAddress(head, context)),
            edgeID: edge.configuration.edgeID)
        if head.method == .head { edge.counters.prefetches.increment() }
        let redirect = Self.encodeRedirect(
            to: verified.destination, version: head.version, keepAlive: head.keepAlive,
            headOnly: head.method == .head, allocator: context.channel.allocator)
        record(
            EventCodec.encode(.click(event)), then: redirect, number: number, keepAlive: head.keepAlive,
            outcome: (edge.counters.clicksRecorded, edge.counters.clicksUnrecorded), context: context)
    }

    /// `GET|HEAD /o/<token>`, the open pixel (docs/design/opens.md): a valid open token's GET
    /// is recorded — durably before the answer, like a click — and answered with the GIF. A
    /// forged, malformed or unknown-key token gets the same GIF and records nothing (no
    /// oracle; counted by reason), HEAD records nothing, and a failing log answers the GIF
    /// anyway (a person's mail must not show a broken image) and counts the loss.
    private func handleOpen(_ head: RequestHead, token: Substring, number: Int, context: ChannelHandlerContext) {
        let pixel = Self.encodePixel(
            version: head.version, keepAlive: head.keepAlive, headOnly: head.method == .head, allocator: context.channel.allocator)
        let verified: OpenToken
        let keyID: String
        switch edge.keys.current.verifyOpen(token) {
        case .success(let t):
            (verified, keyID) = t
        case .failure(let error):
            edge.counters.invalid(error.reason)
            return answer(number, pixel, keepAlive: head.keepAlive, context: context)
        }
        guard head.method == .get else {
            edge.counters.openHeads.increment()
            return answer(number, pixel, keepAlive: head.keepAlive, context: context)
        }
        // Apple's relay is recognised by the whole address: before the privacy mode cuts it
        // (with `--ip none` too: the record keeps one bit of it, never the address).
        let address = ClientAddress.client(peer: peer(context), forwardedFor: head.forwardedFor, trusted: edge.configuration.trustedProxies)
        let event = OpenEvent(
            occurredAt: edge.now(), token: verified, keyID: keyID, userAgent: head.userAgent,
            clientIP: recordedAddress(of: address), edgeID: edge.configuration.edgeID,
            appleRelay: edge.appleEgress.current.contains(address))
        record(
            EventCodec.encode(.opened(event)), then: pixel, number: number, keepAlive: head.keepAlive,
            outcome: (edge.counters.opensRecorded, edge.counters.opensUnrecorded), context: context)
    }

    /// The token of a `/c/` or `/o/` target: after the route, up to a query or fragment
    /// some mail clients append. Scanned as contiguous bytes: walking String.UTF8View was a
    /// tenth of the click route in a profile of bench/edge.sh.
    static func token(in target: String) -> Substring {
        let uri = target.utf8
        let start = uri.index(uri.startIndex, offsetBy: 3)
        let length =
            uri.withContiguousStorageIfAvailable { bytes in
                bytes[3...].firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }.map { $0 - 3 }
            } ?? uri[start...].firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }.map { uri.distance(from: start, to: $0) }
        return target[start..<(length.map { uri.index(start, offsetBy: $0) } ?? uri.endIndex)]
    }

    /// The request's client, whole (the peer, or what a trusted proxy forwarded); empty
    /// when the privacy mode records none.
    private func clientAddress(_ head: RequestHead, _ context: ChannelHandlerContext) -> [UInt8] {
        guard edge.configuration.ipMode != .none else { return [] }
        return ClientAddress.client(peer: peer(context), forwardedFor: head.forwardedFor, trusted: edge.configuration.trustedProxies)
    }

    /// The client address as the privacy mode records it.
    private func recordedAddress(of address: [UInt8]) -> [UInt8] {
        edge.configuration.ipMode == .none ? [] : ClientAddress.truncate(address, mode: edge.configuration.ipMode)
    }

    /// Appends `payload` to the log and files `answer` for request `number`: at once when the
    /// edge is not durable, else once the record is on disk — or, if the log fails, anyway
    /// (a tracker must never break a person's link or image), counting the loss.
    private func record(
        _ payload: [UInt8], then answer: ByteBuffer, number: Int, keepAlive: Bool,
        outcome: (recorded: Prometheus.Counter, unrecorded: Prometheus.Counter), context: ChannelHandlerContext
    ) {
        let counters = edge.counters
        let unrecorded = edge.unrecordedLog
        let loop = context.eventLoop
        let mailbox = edge.mailboxes[ObjectIdentifier(loop)]
        // The flusher is woken once per burst of reads, not by this record (see LoopMailbox).
        defer { mailbox?.wakeFlusherAfterBurst(edge.writer) }
        if edge.configuration.durability == .none {
            payload.withUnsafeBytes { raw in
                edge.writer.append(bytes: raw, wakeLater: mailbox != nil) { result in
                    if case .failure(let error) = result {
                        outcome.unrecorded.increment()
                        unrecorded.note(error)
                    } else {
                        outcome.recorded.increment()
                    }
                }
            }
            return self.answer(number, answer, keepAlive: keepAlive, context: context)
        }
        let started = ContinuousClock.now
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        payload.withUnsafeBytes { raw in
            edge.writer.append(bytes: raw, wakeLater: mailbox != nil) { result in
                switch result {
                case .success:
                    outcome.recorded.increment()
                    counters.appendLatency.record(ContinuousClock.now - started)
                case .failure(let error):
                    outcome.unrecorded.increment()
                    unrecorded.note(error)
                }
                let deliver: @Sendable () -> Void = {
                    let (handler, context) = bound.value
                    handler.answer(number, answer, keepAlive: keepAlive, context: context)
                }
                if let mailbox { mailbox.post(deliver) } else { loop.execute(deliver) }
            }
        }
    }

    private func respond(
        _ context: ChannelHandlerContext, _ number: Int, _ request: RequestHead, status: HTTPResponseStatus,
        headers: [(String, String)] = [], body: [UInt8] = [], close: Bool = false
    ) {
        let keepAlive = request.keepAlive && !close
        if close, closeAfter.map({ number < $0 }) ?? true { closeAfter = number }
        let bytes = Self.encode(
            status: status, version: request.version, keepAlive: keepAlive, headOnly: request.method == .head,
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
        if wrote {
            context.flush()
            // Answers drained: requests held back by the pending cap may go on.
            if !parsing, received != nil { parseRequests(context: context) } else { updateReading(context: context) }
        }
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

    /// The 302: status line, Location (`LocationURL.header`), the pre-encoded fixed headers,
    /// the body unless HEAD.
    static func encodeRedirect(
        to destination: String, version: HTTPVersion, keepAlive: Bool, headOnly: Bool,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 200 + destination.utf8.count)
        if version.major == 1, version.minor == 1 {
            buffer.writeStaticString("HTTP/1.1 302 Found\r\n")
        } else {
            statusLine(version, .found, into: &buffer)
        }
        buffer.writeStaticString("Location: ")
        // ASCII as signed; non-ASCII as a browser's URL parser serializes it (issue 29).
        buffer.writeString(LocationURL.header(for: destination))
        buffer.writeStaticString("\r\n")
        buffer.writeBytes(redirectHeaders)
        connectionHeader(version, keepAlive: keepAlive, into: &buffer)
        buffer.writeStaticString("\r\n")
        if !headOnly { buffer.writeBytes(redirectBody) }
        return buffer
    }

    /// The open pixel: a 1×1 transparent GIF89a, 43 bytes (one colour, transparent).
    static let pixelGIF: [UInt8] = [
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x21, 0xf9,
        0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00,
        0x3b,
    ]
    static let pixelHeaders = Array(
        """
        Content-Type: image/gif\r\nCache-Control: no-store, private\r\nReferrer-Policy: no-referrer\r\nX-Robots-Tag: noindex\r\n\
        Content-Length: \(pixelGIF.count)\r\n
        """.utf8)

    /// The pixel's answer: 200, the pre-encoded headers, the GIF unless HEAD.
    static func encodePixel(version: HTTPVersion, keepAlive: Bool, headOnly: Bool, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 256)
        if version.major == 1, version.minor == 1 {
            buffer.writeStaticString("HTTP/1.1 200 OK\r\n")
        } else {
            statusLine(version, .ok, into: &buffer)
        }
        buffer.writeBytes(pixelHeaders)
        connectionHeader(version, keepAlive: keepAlive, into: &buffer)
        buffer.writeStaticString("\r\n")
        if !headOnly { buffer.writeBytes(pixelGIF) }
        return buffer
    }

    static func encode(
        status: HTTPResponseStatus, version: HTTPVersion, keepAlive: Bool, headOnly: Bool,
        headers: [(String, String)], body: [UInt8], allocator: ByteBufferAllocator
    ) -> ByteBuffer {
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
