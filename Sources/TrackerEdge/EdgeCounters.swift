import LinkTracking
import Prometheus
import Synchronization

/// The edge's metrics, in a Prometheus registry served at the admin listener's `/metrics`
/// (swift-prometheus; swift-metrics is bootstrapped onto the same registry by `clickd edge`).
/// Every metric is an atomic: no locks on the hot path.
public final class EdgeCounters: Sendable {
    public let registry: PrometheusCollectorRegistry
    let clicksRecorded: Prometheus.Counter
    let clicksUnrecorded: Prometheus.Counter
    let prefetches: Prometheus.Counter
    let opensRecorded: Prometheus.Counter
    let opensUnrecorded: Prometheus.Counter
    /// HEAD requests of a valid pixel: answered, never recorded.
    let openHeads: Prometheus.Counter
    let notFound: Prometheus.Counter
    let rejected: Prometheus.Counter
    let deliveries: Prometheus.Counter
    let invalidTokens: [String: Prometheus.Counter]
    let openConnections: Gauge
    /// Times the click listener reached its connection cap and stopped accepting.
    let connectionCapReached: Prometheus.Counter
    let closedHeadTimeout: Prometheus.Counter
    let closedWriteTimeout: Prometheus.Counter
    /// From the click's append to its durability (what a person waits for on top of the network).
    let appendLatency: DurationHistogram
    /// Records per group commit.
    let batchSize: ValueHistogram

    static let invalidReasons = [
        "malformed", "too_long", "truncated", "unsupported_version", "unknown_key", "retired_key",
        "bad_signature", "invalid_field", "unsafe_destination", "wrong_kind",
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        (clicksRecorded, clicksUnrecorded) = Self.outcomes(
            registry, "clickd_clicks_total", help: "Clicks answered with a 302, by whether the log recorded them")
        prefetches = registry.makeCounter(name: "clickd_prefetches_total", help: "HEAD requests answered with a 302 (recorded as prefetches)")
        (opensRecorded, opensUnrecorded) = Self.outcomes(
            registry, "clickd_opens_total", help: "Pixel fetches (GET /o/) of valid tokens answered with the GIF, by whether the log recorded them")
        openHeads = registry.makeCounter(name: "clickd_open_heads_total", help: "HEAD requests of valid pixels (answered, not recorded)")
        notFound = registry.makeCounter(name: "clickd_requests_not_found_total", help: "Requests to other paths or with other methods")
        rejected = registry.makeCounter(
            name: "clickd_requests_rejected_total", help: "Requests over the target or header limits, or that do not parse")
        deliveries = registry.makeCounter(name: "clickd_deliveries_total", help: "Messages rewritten through POST /v1/messages and recorded")
        var byReason: [String: Prometheus.Counter] = [:]
        for reason in Self.invalidReasons {
            byReason[reason] = registry.makeCounter(
                name: "clickd_invalid_tokens_total", labels: [("reason", reason)],
                help: "Tokens refused (a link's: 404, never a redirect; a pixel's: the same GIF, nothing recorded), by reason")
        }
        invalidTokens = byReason
        openConnections = registry.makeGauge(name: "clickd_open_connections", help: "Open client connections on the click listener")
        connectionCapReached = registry.makeCounter(
            name: "clickd_connection_cap_reached_total",
            help: "Times the click listener reached --max-connections and stopped accepting until a connection closed")
        closedHeadTimeout = registry.makeCounter(
            name: "clickd_connections_timed_out_total", labels: [("reason", "head")],
            help: "Connections closed by the edge's deadlines, by which")
        closedWriteTimeout = registry.makeCounter(
            name: "clickd_connections_timed_out_total", labels: [("reason", "write")],
            help: "Connections closed by the edge's deadlines, by which")
        appendLatency = registry.makeDurationHistogram(
            name: "clickd_append_latency_seconds",
            buckets: [
                .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
                .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(100), .seconds(1),
            ],
            help: "Time from a click's append to its durability")
        batchSize = registry.makeValueHistogram(
            name: "clickd_group_commit_batch_size", buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
            help: "Records written and synced per group commit")
    }

    func invalid(_ reason: String) { invalidTokens[reason]?.increment() }

    /// A counter's `outcome="recorded"` and `outcome="unrecorded"` series.
    static func outcomes(_ registry: PrometheusCollectorRegistry, _ name: String, help: String) -> (Prometheus.Counter, Prometheus.Counter) {
        (
            registry.makeCounter(name: name, labels: [("outcome", "recorded")], help: help),
            registry.makeCounter(name: name, labels: [("outcome", "unrecorded")], help: help)
        )
    }
}
