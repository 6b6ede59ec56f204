import Logging
import ServiceLifecycle
import Systemd
import UnixSignals

/// Everything that decides how an ingest daemon runs: what `clickd ingest` reads from its
/// command line, and what a test sets directly (docs/design/lifecycle.md).
public struct IngestSetup: Sendable {
    public var logDirectories: [String]
    /// The database: a conninfo or URL (libpq's).
    public var conninfo: String
    public var batchSize = 4096
    /// nil: one per core (at most the shard count).
    public var workers: Int?
    /// NOTIFY_SOCKET and WATCHDOG_USEC, when run by systemd.
    public var environment: [String: String] = [:]
    /// The signals that stop the daemon gracefully (none in tests: they call
    /// `ServiceGroup.triggerGracefulShutdown`).
    public var stopSignals: [UnixSignal] = [.sigterm, .sigint]
    /// How often each log's follower file is written (docs/design/archive.md, "Retention").
    public var followerInterval: Duration = .seconds(10)
    /// An archive directory segments removed from the logs are read from.
    public var archive: String?
    /// `--activity-retention` (nil: activity is kept for ever), and how often it is kept.
    public var activityRetention: Duration?
    public var retentionInterval: Duration = .seconds(600)

    public init(logDirectories: [String], conninfo: String) {
        self.logDirectories = logDirectories
        self.conninfo = conninfo
    }
}

/// The ingest daemon's composition root — what `clickd ingest` and the in-process tests both
/// call: opens the logs (a missing one is an error now) and returns the service group that
/// follows them (`IngestService`), tells the edges what is projected (`FollowerReporter`), keeps activity's partitions (`ActivityRetention`), with systemd's notifications (`SystemdService`: READY once
/// the group runs, WATCHDOG while the loop turns — also while PostgreSQL is down and it
/// retries —, STATUS on each change of state, STOPPING first at shutdown); then each worker
/// stops after its batch in flight.
public func buildIngest(_ setup: IngestSetup, logger: Logger) throws -> ServiceGroup {
    let conninfo = setup.conninfo
    let ingestor = try Ingestor(
        logDirectories: setup.logDirectories, batchSize: setup.batchSize, workers: setup.workers, logger: logger,
        archive: setup.archive
    ) { try PostgresConnection(conninfo) }
    let notifier = SystemdNotifier(environment: setup.environment)
    let ingest = IngestService(ingestor: ingestor, status: { notifier.notify("STATUS=\($0)") })
    let systemd = SystemdService(notifier: notifier, status: "ingesting", alive: { ingest.turned(within: .seconds(5)) })
    let followers = FollowerReporter(
        logDirectories: setup.logDirectories, interval: setup.followerInterval, logger: logger
    ) { try PostgresConnection(conninfo) }
    let retention = ActivityRetention(
        retention: setup.activityRetention, interval: setup.retentionInterval, logger: logger
    ) { try PostgresConnection(conninfo) }
    return ServiceGroup(
        configuration: .init(services: [followers, retention, ingest, systemd], gracefulShutdownSignals: setup.stopSignals, logger: logger))
}
