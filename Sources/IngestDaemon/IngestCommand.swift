import ArgumentParser
import Foundation
import Logging
import Projections
import ServiceLifecycle
import Synchronization
import Systemd

struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Project click logs into PostgreSQL, exactly once.",
        discussion: """
            Follows each --log (one per edge), reading only up to its durable end, with \
            --workers connections, each owning a fixed set of the projections' shards (a \
            shard is a function of the customer id). Each (log, shard) batch — activity \
            rows, per-link totals, clickers, per-source and per-day counts, and that \
            shard's checkpoint — is applied in one transaction with a compare-and-set on the \
            checkpoint, so that crashes and a second daemon (with any number of workers) \
            can neither lose nor double a click. On a Citus coordinator each batch is one call of \
            clickd_ingest.apply_batch, which Citus runs on the worker holding the shard \
            (docs/scale-out.md). Records that do not decode go to clickd_internal.dead_letters. With --once \
            it drains every log to its current end and exits 0. SIGTERM finishes the batch \
            in flight and exits. Under systemd (Type=notify) it sends READY, WATCHDOG, \
            STATUS and STOPPING. Every 10 minutes it makes this month's and the next month's \
            partitions of activity and, with --activity-retention, drops the months past it. \
            PostgreSQL unavailable: it retries with backoff and logs \
            once per change of state. Run 'clickd migrate' first.
            """
    )

    @OptionGroup var logs: LogsOptions

    @OptionGroup var db: DatabaseOptions

    @Flag(help: "Drain every log to its current durable end, then exit.")
    var once = false

    @Option(
        help: ArgumentHelp(
            """
            Keep activity rows (clickd.activity) this long, e.g. 400d: every 10 minutes, each \
            month (UTC) whose end is older is dropped whole and recorded in \
            clickd.retention_drops. Counters, rollups and segments are kept (docs/analysts.md, \
            "Retention"). At least 31d. Default: keep activity for ever.
            """, valueName: "age"))
    var activityRetention: String?

    /// `--activity-retention`, parsed (`validate`).
    var retention: Duration? { activityRetention.flatMap(AgeArgument.parse) }

    func validate() throws {
        if let activityRetention {
            guard let age = AgeArgument.parse(activityRetention), age >= .seconds(31 * 86_400) else {
                throw ValidationError(
                    "--activity-retention must be an age of at least 31d (activity is dropped by whole months), e.g. 400d; got \(activityRetention)")
            }
        }
    }

    func run() async throws {
        try await runReportingErrors {
            let logger = Logger(label: "clickd.ingest")
            // Before anything else: a stop signal from here on is kept for the service group
            // (`--once` runs no group: a signal ends it as it always did).
            let signals = once ? nil : EarlySignals()
            if once {
                let database = db
                let ingestor = try Ingestor(
                    logDirectories: logs.log, batchSize: logs.batchSize, workers: logs.workers, logger: logger, archive: logs.archiveDir
                ) { try database.connect() }
                let n = try ingestor.drain()
                logger.info("drained", metadata: ["ingest.records": "\(n)"])
                // What is projected now, for the edges' retention (as the daemon does every 10 s).
                do {
                    try FollowerReporter(logDirectories: logs.log, logger: logger) { try database.connect() }.reportOnce()
                } catch {
                    logger.warning("cannot write follower files; the edges hold their logs meanwhile", metadata: ["error": "\(error)"])
                }
                // This month's partitions ahead, and the months past the retention dropped.
                try ActivityRetention(retention: retention, logger: logger) { try database.connect() }.passOnce()
                // The other logs were drained; a log that could not be read is an error.
                if let failing = ingestor.failingLogs.first {
                    let more = ingestor.failingLogs.count > 1 ? " (and \(ingestor.failingLogs.count - 1) more logs)" : ""
                    throw ValidationFailure("log \(failing.directory) could not be read: \(failing.error)\(more)")
                }
                return
            }
            // One service group owns SIGTERM and SIGINT (docs/design/lifecycle.md).
            var setup = IngestSetup(logDirectories: logs.log, conninfo: db.conninfo)
            setup.batchSize = logs.batchSize
            setup.workers = logs.workers
            setup.archive = logs.archiveDir
            setup.activityRetention = retention
            setup.environment = ProcessInfo.processInfo.environment
            let group = try buildIngest(setup, logger: logger)
            await signals?.handOver(to: group)
            logger.info("ingesting", metadata: ["ingest.logs": "\(logs.log.joined(separator: ","))"])
            try await group.run()
            logger.info("stopped")
        }
    }
}
