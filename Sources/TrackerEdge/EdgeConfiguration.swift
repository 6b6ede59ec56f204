import LinkTracking
import NIOCore

/// How the edge answers clicks. Defaults suit a public tracking domain.
public struct EdgeConfiguration: Sendable {
    public enum IPMode: String, Sendable, CaseIterable {
        /// The whole client address is recorded.
        case full
        /// IPv4 cut to its /24, IPv6 to its /48 (the default).
        case truncated
        /// No address is recorded.
        case none
    }

    public enum Durability: String, Sendable, CaseIterable {
        /// The 302 goes out once the click is on disk (group commit).
        case durable
        /// The 302 goes out at once; the click is appended in the background (benchmarks,
        /// or operators who prefer latency to the durability promise).
        case none
    }

    public var host: String = "0.0.0.0"
    public var port: Int = 8080
    public var ipMode: IPMode = .truncated
    /// Peers whose `X-Forwarded-For` is believed (load balancers, reverse proxies).
    public var trustedProxies: [CIDR] = []
    public var durability: Durability = .durable
    /// Written into every click: which edge (and so which log) answered.
    public var edgeID: String
    /// Requests whose target is longer are answered 414.
    public var maxRequestTargetBytes: Int = TokenCodec.maxTokenLength + 16
    /// Headers together are bounded by this many bytes (else 431); the request target has
    /// its own bound (a token for an 8 KB destination is about 11 KB).
    public var maxHeaderBytes: Int = 8192
    /// A connection that sends nothing for this long is closed.
    public var idleTimeout: Duration = .seconds(30)
    /// A request head must be complete this long after its first byte (else 408 and the
    /// connection closes): a client sending a byte a second cannot hold a connection.
    public var headTimeout: Duration = .seconds(10)
    /// A connection whose answers are not read for this long (the outbound buffer stays
    /// over its high-water mark) is closed.
    public var writeTimeout: Duration = .seconds(10)
    /// Pipelined requests answered ahead of the client reading them, per connection: past
    /// this the connection is not read until answers drain.
    public var maxPendingAnswers: Int = 32
    /// Open client connections; at the cap the edge stops accepting (new connections wait
    /// in the listen backlog) until one closes. Clamped at start to what the process's
    /// descriptor limit allows (`FileDescriptorLimit`).
    public var maxConnections: Int = 16_384
    /// Event-loop threads (default: one per core).
    public var threads: Int = System.coreCount

    public init(edgeID: String) { self.edgeID = edgeID }
}
