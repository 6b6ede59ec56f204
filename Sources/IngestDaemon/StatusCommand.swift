import ArgumentParser
import EventLog
import Foundation
import LinkTracking
import LogArchive
import Logging
import Projections

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show, per log, how far ingestion has projected it.",
        discussion: """
            One line per log: its id, durable end (the last LSN the edge has on disk), the \
            projected checkpoint (the lowest of its shards'), the lag in events and in \
            seconds (the age of the oldest event not yet projected), and the dead letters \
            (records that did not decode). When the shards' checkpoints differ, a second \
            line lists them: shards=<shard>:<checkpoint>,…

            Then a line of the log's lifecycle, read from its directory: archiving=on|off, \
            unarchived (sealed segments the archive does not hold yet) and the age in seconds \
            of the oldest, the local segments and bytes, the first local LSN (past 1 once \
            retention removed segments), each follower's database:needed_from, and what \
            retention waits for besides --keep-local (retention_waits_for=…). When the log's \
            edge has run an erasure pass, a line of it: erasure=done (every list it was given is \
            clean in every sealed segment and the archive), pending or blocked, the sealed segments checked, the stale archived copies and why it \
            is blocked (blocked=…).

            Then one line of this database's erasures (no ids): erasures=<people>, \
            projections_pending (not yet erased from the projections), logs_pending (not yet \
            gone from every followed log) and the age in seconds of the oldest request still \
            pending anywhere.

            Then one line of activity's months and the retention (clickd ingest \
            --activity-retention): months (partitions held), oldest_month and newest_month, \
            default_rows (rows of a month with no partition, e.g. an edge's clock far ahead), \
            retention (the last one that dropped, in days, or none), dropped_before (activity \
            before it is gone), drops, and the last drop: last_drop=<month> last_drop_rows \
            last_drop_at.

            On a Citus coordinator, last, one line per node that holds clickd's shards: \
            citus_node=host:port, clickd_shards (how many of clickd's shards its Citus \
            shards hold), bytes (of those shards) and transactions (committed in this \
            database on that node since its statistics were reset: taken before and after an \
            ingest, the work each node did).
            """
    )

    @Option(help: ArgumentHelp("A log directory (repeat for each edge's log).", valueName: "dir"))
    var log: [String] = []

    @OptionGroup var db: DatabaseOptions

    func validate() throws {
        if log.isEmpty { throw ValidationError("give at least one --log DIR") }
    }

    func run() async throws {
        try await runReportingErrors {
            let database = db
            let ingestor = try Ingestor(logDirectories: log, logger: Logger(label: "clickd.status")) { try database.connect() }
            let now = Date().timeIntervalSince1970
            for entry in try ingestor.status() {
                let lag = entry.durable > entry.checkpoint ? entry.durable - entry.checkpoint : 0
                var seconds = 0.0
                if lag > 0 {
                    let reader = try LogReader(directory: entry.directory, from: entry.checkpoint + 1)
                    if let first = try reader.read(maxRecords: 1).first,
                        case .success(let event) = Result(catching: { try EventCodec.decode(first.payload) })
                    {
                        seconds = max(0, now - Double(event.occurredAt) / 1000)
                    }
                }
                printOut(
                    "\(entry.directory) log_id=\(entry.logID) durable_end=\(entry.durable) checkpoint=\(entry.checkpoint) "
                        + "lag_events=\(lag) lag_seconds=\(String(format: "%.1f", seconds)) dead_letters=\(entry.deadLetters)")
                if Set(entry.shards).count > 1 {
                    printOut("\(entry.directory) shards=" + entry.shards.enumerated().map { "\($0.offset):\($0.element)" }.joined(separator: ","))
                }
                let life = try LifecycleSummary.read(logDirectory: entry.directory, now: Int64(now * 1000))
                printOut(
                    "\(entry.directory) archiving=\(life.archiving ? "on" : "off") unarchived_segments=\(life.waiting) "
                        + "oldest_unarchived_seconds=\(life.oldestUnarchivedSeconds) local_segments=\(life.localSegments) "
                        + "local_bytes=\(life.localBytes) first_local_lsn=\(life.firstLocalLSN) "
                        + "followers=\(life.followers.isEmpty ? "none" : life.followers.joined(separator: ","))"
                        + (life.retentionWaitsFor.map { " retention_waits_for=\"\($0)\"" } ?? ""))
                if FileSystem.exists(FileSystem.join(entry.directory, ErasureStatus.fileName)) {
                    let erasure = ErasureStatus.read(logDirectory: entry.directory)
                    let allDone = erasure.lists.allSatisfy { list in erasure.done.contains { "\($0.key)=\($0.value.revision)" == list } }
                    let state = erasure.blocked != nil ? "blocked" : allDone ? "done" : "pending"
                    printOut(
                        "\(entry.directory) erasure=\(state) checked_segments=\(erasure.clean.count) stale_archived=\(erasure.stale.count)"
                            + (erasure.blocked.map { " blocked=\"\($0)\"" } ?? ""))
                }
            }
            let connection = try database.connect()
            defer { connection.close() }
            if let row = try connection.query(
                """
                SELECT count(*), count(*) FILTER (WHERE erased_at IS NULL), count(*) FILTER (WHERE log_clean_at IS NULL),
                       coalesce(extract(epoch FROM now() - min(requested_at) FILTER (WHERE erased_at IS NULL OR log_clean_at IS NULL))::bigint, 0)
                  FROM clickd_ingest.erasures
                """
            ).first {
                printOut(
                    "erasures=\(row[0] ?? "0") projections_pending=\(row[1] ?? "0") logs_pending=\(row[2] ?? "0") oldest_pending_seconds=\(row[3] ?? "0")"
                )
            }
            printOut(try ActivityRetention.statusLine(connection))
            if try CitusLayout.isCoordinator(connection) {
                let shards = try ProjectionStore(connection, schema: "clickd_internal").shardCount()
                for node in try CitusLayout.nodeLoad(connection, shards: shards) {
                    printOut(
                        "citus_node=\(node.node) clickd_shards=\(node.clickdShards) bytes=\(node.bytes) transactions=\(node.transactions)")
                }
            }
        }
    }
}
