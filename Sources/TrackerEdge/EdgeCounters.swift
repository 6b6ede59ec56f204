import LinkTracking
import Synchronization

/// One monotonically increasing count, shared across event loops.
public final class Counter: Sendable {
    private let storage = Atomic<Int>(0)
    public init() {}
    @inline(__always) public func increment() { storage.add(1, ordering: .relaxed) }
    @inline(__always) public func decrement() { storage.subtract(1, ordering: .relaxed) }
    public var value: Int { storage.load(ordering: .relaxed) }
}

/// The edge's counters, shared by every event loop (atomics, no locks on the hot path).
/// Exposed in `/metrics` once the admin listener exists (issue 4, second part).
public final class EdgeCounters: Sendable {
    /// Clicks recorded in the log before (or, with durability none, around) their 302.
    public let clicksRecorded = Counter()
    /// Clicks redirected although the log could not take them: the loss the promise allows.
    public let clicksUnrecorded = Counter()
    /// HEAD requests answered with a 302 (recorded as prefetches).
    public let prefetches = Counter()
    /// Requests to any other path, or with another method.
    public let notFound = Counter()
    /// Requests that broke a limit (request target or header size).
    public let rejected = Counter()
    /// Tokens refused, by reason (`TokenError.reason`, and `unsafe_destination`).
    public let invalidTokens: [String: Counter]
    public let openConnections = Counter()

    public init() {
        var byReason: [String: Counter] = [:]
        for reason in ["malformed", "too_long", "truncated", "unsupported_version", "unknown_key", "retired_key", "bad_signature",
                       "invalid_field", "unsafe_destination"] {
            byReason[reason] = Counter()
        }
        invalidTokens = byReason
    }

    public func invalid(_ reason: String) { invalidTokens[reason]?.increment() }

    public var invalidTotal: Int { invalidTokens.values.reduce(0) { $0 + $1.value } }
}
