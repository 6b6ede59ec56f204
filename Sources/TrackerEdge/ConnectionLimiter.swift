import Logging
import NIOCore

/// Caps the click listener's open connections: on the server channel, it counts each
/// accepted connection until it closes, and at the cap turns accepting off (`autoRead` of
/// the listening socket) until one closes. New clients then wait in the kernel's listen
/// backlog instead of taking descriptors the process does not have (go's
/// `netutil.LimitListener` works the same way). Accept errors such as EMFILE are backed off
/// by NIO's `AcceptBackoffHandler`, which `ServerBootstrap` installs, instead of spinning.
final class ConnectionLimiter: ChannelInboundHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let limit: Int
    private let counters: EdgeCounters
    private let logger: Logger
    private var open = 0
    private var paused = false
    /// When the cap was last logged (a line a minute at most).
    private var lastLogged: NIODeadline?

    init(limit: Int, counters: EdgeCounters, logger: Logger) {
        self.limit = max(1, limit)
        self.counters = counters
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let child = unwrapInboundIn(data)
        open += 1
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let loop = context.eventLoop
        child.closeFuture.whenComplete { _ in
            loop.execute {
                let (limiter, context) = bound.value
                limiter.closed(context: context)
            }
        }
        if open >= limit, !paused {
            paused = true
            try? context.channel.syncOptions?.setOption(.autoRead, value: false)
            counters.connectionCapReached.increment()
            let now = NIODeadline.now()
            if lastLogged.map({ now - $0 >= .seconds(60) }) ?? true {
                lastLogged = now
                logger.warning(
                    "connection cap reached: new connections wait until one closes (raise --max-connections if this is real traffic)",
                    metadata: ["edge.max_connections": "\(limit)"])
            }
        }
        context.fireChannelRead(data)
    }

    private func closed(context: ChannelHandlerContext) {
        open -= 1
        if paused, open < limit {
            paused = false
            try? context.channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }
}
