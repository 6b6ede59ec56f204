import EventLog
import LinkTracking
import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// The tracker edge: binds the click listener and answers clicks until shut down.
public final class EdgeServer: Sendable {
    public let counters: EdgeCounters
    let edge: EdgeContext
    let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let channel: any Channel
    /// Collects the accepted connections, to tell each to finish and close at shutdown.
    private let quiescing: ServerQuiescingHelper

    /// The port actually bound (useful with port 0).
    public var port: Int { channel.localAddress?.port ?? 0 }

    /// Binds and starts answering. The writer must stay open until `shutdown()` returns.
    public init(
        configuration: EdgeConfiguration, keys: KeyRingStore, appleEgress: Swappable<AddressRanges> = Swappable(.empty),
        writer: EventLogWriter, counters: EdgeCounters, logger: Logger,
        now: @escaping @Sendable () -> UInt64 = EdgeServer.wallClockMilliseconds
    ) async throws {
        self.logger = logger
        self.counters = counters
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
        let edge = EdgeContext(
            configuration: configuration, keys: keys, appleEgress: appleEgress, writer: writer, counters: counters, logger: logger,
            loops: Array(group.makeIterator()), now: now)
        self.edge = edge
        let idle = TimeAmount.nanoseconds(Int64(configuration.idleTimeout.components.seconds) * 1_000_000_000)
        let limiterLogger = logger
        // Its promise lives on NIO's singleton group, never shut down: the helper fails that
        // promise when it is released, which on this edge's group (shut down by then) would
        // schedule onto a closed event loop.
        let quiescing = ServerQuiescingHelper(group: MultiThreadedEventLoopGroup.singleton)
        self.quiescing = quiescing
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                    try channel.pipeline.syncOperations.addHandler(
                        ConnectionLimiter(limit: configuration.maxConnections, counters: counters, logger: limiterLogger))
                }
            }
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // Answers not yet taken by the client beyond 64 KiB make the channel unwritable:
            // the click handler then stops reading (and the write deadline runs).
            .childChannelOption(.writeBufferWaterMark, value: ChannelOptions.Types.WriteBufferWaterMark(low: 16 << 10, high: 64 << 10))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: idle))
                    try sync.addHandler(ConnectionHandler(counters: counters))
                    // ClickHandler parses request heads and writes its answers as bytes itself,
                    // in request order (no NIO HTTP decoder, encoder or pipelining handler:
                    // measured, docs/benchmarks.md).
                    try sync.addHandler(ClickHandler(edge: edge))
                }
            }
        do {
            channel = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        } catch {
            try? await group.shutdownGracefully()
            throw EdgeError("cannot listen on \(configuration.host):\(configuration.port): \(error)")
        }
        logger.info(
            "edge listening",
            metadata: [
                "edge.listen": "\(configuration.host):\(port)", "edge.id": "\(configuration.edgeID)",
                "edge.durability": "\(configuration.durability.rawValue)",
            ])
    }

    /// Stops accepting, lets every request already read be answered (a durable 302 once
    /// its click is on disk), and returns when every connection has closed after its last
    /// answer (`ServerQuiescingHelper`; `ClickHandler` closes on the quiesce event). No
    /// polling: a connection whose client leaves its answers unread is closed by the write
    /// deadline. The log writer is the caller's to close afterwards.
    public func shutdown() async {
        let closed = group.next().makePromise(of: Void.self)
        quiescing.initiateShutdown(promise: closed)
        try? await closed.futureResult.get()
        try? await group.shutdownGracefully()
        logger.info("edge stopped")
    }

    @Sendable public static func wallClockMilliseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec / 1_000_000)
    }
}

public struct EdgeError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
