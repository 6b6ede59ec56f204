import EventLog
import LinkTracking
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// `clickd rebuild` (docs/design/rebuild.md): replays the logs from their start into shadow
/// tables in schema `clickd_rebuild`, beside the live ones in `clickd_internal`, while live
/// ingestion goes on; then, in one short transaction that holds the live checkpoints
/// (ingest daemons wait), catches up to them and swaps the schemas, repointing the
/// analysts' views. With `verify` it compares instead of swapping.
public final class Rebuilder {
    public static let shadow = "clickd_rebuild"
    static let live = "clickd_internal"
    static let retired = "clickd_retired"
    /// Serialises rebuilds (pg_try_advisory_lock key; the migrator uses another).
    static let lockKey: Int64 = 7_355_608_001
    /// Tables whose rows are not projections: copied into the shadow schema at the swap.
    static let copiedTables = ["schema_migrations", "database_identity"]
    /// The projection tables a verification compares, with the bookkeeping columns it ignores.
    static let comparedTables = [
        "activity", "link_totals", "link_clickers", "link_daily", "source_totals", "source_clickers",
        "source_hourly", "bot_daily", "source_openers", "open_daily", "dead_letters", "checkpoints",
    ]
    /// Not figures: when a row was written, and the checkpoints' erasure sequence (a
    /// compare-and-set token of the live tables that a rebuild starts again at 0; no eraser
    /// runs during a rebuild, which holds its lock).
    static let ignoredColumns: Set<String> = ["updated_at", "recorded_at", "erasure_seq"]

    public let db: PostgresConnection
    /// Replays the logs into the shadow tables, with its own connections (`connect`).
    public let ingestor: Ingestor
    private let logDirectories: [String]
    private let batchSize: Int
    private var holdsLock = false
    /// The database is a Citus coordinator (found by `prepare`).
    private var citus = false
    private let logger: Logger

    /// Where segments removed from the logs' directories are read from (`--archive-dir`).
    let archive: String?

    /// `db` is the rebuild's own connection (it prepares, catches up and swaps); the replay's
    /// `workers` each connect with `connect`.
    public init(
        logDirectories: [String], db: PostgresConnection, batchSize: Int = 4096, workers: Int? = nil, logger: Logger,
        archive: String? = nil, connect: @escaping () throws -> PostgresConnection
    ) throws {
        self.db = db
        self.archive = archive
        self.logger = logger
        self.logDirectories = logDirectories
        self.batchSize = batchSize
        ingestor = try Ingestor(
            logDirectories: logDirectories, batchSize: batchSize, workers: workers, logger: logger,
            schema: Self.shadow, archive: archive, connect: connect)
    }

    /// Takes the rebuild lock and makes empty shadow tables shaped like the live ones.
    /// Refuses when the live projections hold a log that is not being rebuilt (swapping
    /// would lose it) or another rebuild runs. A rebuild that was killed holds the lock
    /// until its server process notices, a moment after: the lock is tried for 2 s.
    public func prepare() throws {
        let deadline = ContinuousClock.now + .seconds(2)
        while try db.query("SELECT pg_try_advisory_lock($1)", [Self.lockKey]) != [["t"]] {
            guard ContinuousClock.now < deadline else { throw RebuildError("another clickd rebuild is running on this database") }
            usleep(50_000)
        }
        holdsLock = true
        let given = Set(try logDirectories.map { "\(try LogReader(directory: $0).logID)" })
        let live = try db.query("SELECT log_id::text FROM \(Self.live).checkpoints WHERE lsn > 0 ORDER BY 1").compactMap { $0[0] }
        if let missing = live.first(where: { !given.contains($0) }) {
            throw RebuildError(
                "the live projections include log \(missing), which is not among the --log directories: give every log, or the swap would lose it")
        }
        // The tables, not their partitions (made below, under their table).
        let catalog = try db.query(
            """
            SELECT c.relname, pg_get_partkeydef(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1
            """, [Self.live])
        let tables = catalog.compactMap { $0[0] }
        let partitionKeys = Dictionary(uniqueKeysWithValues: catalog.compactMap { row in row[0].flatMap { name in row[1].map { (name, $0) } } })
        guard tables.contains("checkpoints"), tables.contains("activity"), tables.contains("sharding") else {
            throw RebuildError("the database is not migrated (no clickd_internal.sharding); run clickd migrate first")
        }
        try db.transaction {
            try db.execute(
                "DROP SCHEMA IF EXISTS \(Self.shadow) CASCADE; DROP SCHEMA IF EXISTS \(Self.retired) CASCADE; CREATE SCHEMA \(Self.shadow)")
            for table in tables {
                // Table names come from the catalog of our own schema; quote them anyway.
                let name = quoteIdentifier(table)
                if let key = partitionKeys[table] {
                    // A partitioned table (activity, by month): partitioned alike, with the
                    // live one's partitions (the writers make the months they meet beyond).
                    guard key.allSatisfy({ $0.isLetter || $0.isNumber || "_ (),".contains($0) }) else {
                        throw RebuildError("\(Self.live).\(table) has a partition key clickd does not know: \(key)")
                    }
                    try db.execute("CREATE TABLE \(Self.shadow).\(name) (LIKE \(Self.live).\(name) INCLUDING ALL) PARTITION BY \(key)")
                    for partition in try db.query(
                        """
                        SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                        WHERE i.inhparent = $1::regclass ORDER BY 1
                        """, ["\(Self.live).\(name)"])
                    {
                        guard let child = partition[0], let bound = partition[1] else { continue }
                        try db.execute("CREATE TABLE \(Self.shadow).\(quoteIdentifier(child)) PARTITION OF \(Self.shadow).\(name) \(bound)")
                    }
                    continue
                }
                try db.execute("CREATE TABLE \(Self.shadow).\(name) (LIKE \(Self.live).\(name) INCLUDING ALL)")
                let options = try db.query(
                    "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE oid = $1::regclass",
                    ["\(Self.live).\(name)"])
                if let list = options.first?[0] ?? nil, !list.isEmpty, list.allSatisfy({ $0.isLetter || $0.isNumber || "_=,.".contains($0) }) {
                    try db.execute("ALTER TABLE \(Self.shadow).\(name) SET (\(list))")
                }
            }
            // The shadow projections have the shard count `clickd migrate --shards` asked for last.
            try db.execute("INSERT INTO \(Self.shadow).sharding (shards, next_shards) SELECT next_shards, next_shards FROM \(Self.live).sharding")
        }
        // On Citus the shadow tables are placed as the live ones are, co-located with them,
        // before the replay writes a row (docs/design/citus.md, "Rebuild").
        citus = try CitusLayout.isCoordinator(db)
        if citus { try CitusLayout.apply(db, schema: Self.shadow, colocateWith: Self.live) }
    }

    /// Replays every log into the shadow tables up to `limits` (per log; default: its
    /// durable end). Returns false if `shouldStop` stopped it first.
    public func replay(limits: ShardTargets = ShardTargets(), shouldStop: @escaping @Sendable () -> Bool, progress: () -> Void) throws -> Bool {
        try ingestor.drain(to: limits, shouldStop: shouldStop, heartbeat: progress)
        return !shouldStop()
    }

    /// The shard counts of the live and of the shadow projections.
    func shardCounts() throws -> (live: Int, shadow: Int) {
        (try ProjectionStore(db, schema: Self.live).shardCount(), try ProjectionStore(db, schema: Self.shadow).shardCount())
    }

    /// The live checkpoints of the logs being rebuilt, as targets for the shadow: shard by
    /// shard when both have the same shard count; else, for every shard, the log's highest
    /// live checkpoint (re-sharded projections are then never behind the live ones).
    public func liveCheckpoints() throws -> ShardTargets {
        let counts = try shardCounts()
        var targets = ShardTargets()
        for directory in logDirectories {
            let log = try LogReader(directory: directory).logID
            let live = try ProjectionStore(db, schema: Self.live).checkpoints(log)
            if counts.live == counts.shadow {
                targets.byLog[log] = Dictionary(uniqueKeysWithValues: (0..<counts.live).map { ($0, live[$0] ?? 0) })
            } else {
                targets.everyShard[log] = live.values.max() ?? 0
            }
        }
        return targets
    }

    /// In one transaction: holds the live checkpoints (ingest daemons wait), brings the
    /// shadow tables up to them, and swaps them in; the analysts' views follow. Then, in a
    /// transaction of its own (it waits for queries still reading them), drops the old tables.
    ///
    /// Should the swap still meet a deadlock or a lock timeout, it asks to be the side
    /// PostgreSQL fails (a short deadlock_timeout, when the role may set it) and retries.
    /// Returns how long the swap transaction held the live checkpoints (ingestion waited):
    /// the catch-up and the swap itself, the attempt that committed.
    @discardableResult
    public func swap(attempts: Int = 20) throws -> Duration {
        _ = try? db.execute(
            """
            DO $$ BEGIN SET deadlock_timeout = '20ms'; EXCEPTION WHEN insufficient_privilege THEN NULL; END $$
            """)
        var attempt = 1
        var held = Duration.zero
        while true {
            do {
                let start = ContinuousClock.now
                try swapOnce()
                held = ContinuousClock.now - start
                break
            } catch let error as PostgresError where ["40P01", "55P03"].contains(error.sqlState ?? "") && attempt < attempts {
                logger.info("swap gave way to a query; retrying", metadata: ["rebuild.attempt": "\(attempt)"])
                attempt += 1
                usleep(UInt32(50_000 * attempt))
            }
        }
        _ = try? db.execute("RESET deadlock_timeout")
        do {
            try db.execute("DROP SCHEMA \(Self.retired) CASCADE")
        } catch {
            // The swap is done; the next rebuild drops what is left.
            logger.warning("the old projection tables could not be dropped", metadata: ["error": "\(error)", "schema": "\(Self.retired)"])
        }
        return held
    }

    private func swapOnce() throws {
        try db.transaction {
            // Citus renames a schema only over one connection per node, and refuses it in a
            // transaction that has already written over several (the catch-up below may):
            // sequential mode makes every statement of this one use one connection per node.
            if citus { try db.execute("SET LOCAL citus.multi_shard_modify_mode TO 'sequential'") }
            try db.execute("SET LOCAL lock_timeout = '30s'")
            try db.execute("LOCK TABLE \(Self.live).checkpoints IN ACCESS EXCLUSIVE MODE")
            try catchUpInTransaction()
            // With only pg_catalog on the path, the definitions name every table with its
            // schema: read now, `clickd_internal.…` will mean the rebuilt tables.
            try db.execute("SET LOCAL search_path = pg_catalog")
            let views = try db.query(
                """
                SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'clickd' AND c.relkind = 'v' ORDER BY 1
                """)
            for table in Self.copiedTables {
                try db.execute("INSERT INTO \(Self.shadow).\(table) SELECT * FROM \(Self.live).\(table)")
            }
            try lockViews(views.compactMap { $0[0] })
            try db.execute(
                """
                ALTER SCHEMA \(Self.live) RENAME TO \(Self.retired);
                ALTER SCHEMA \(Self.shadow) RENAME TO \(Self.live);
                REVOKE ALL ON SCHEMA \(Self.live) FROM PUBLIC;
                """)
            for view in views {
                guard let name = view[0], let definition = view[1] else { continue }
                try db.execute("CREATE OR REPLACE VIEW clickd.\(quoteIdentifier(name)) AS \(definition)")
            }
        }
    }

    /// Takes every view's lock at once, between analysts' queries: a query holds the locks
    /// of the views it has opened while it opens the next, so taking them one by one while
    /// queries run makes deadlocks. `NOWAIT` under a savepoint, retried every few
    /// milliseconds, takes them all in a moment no query holds any (at most 30 s).
    private func lockViews(_ names: [String]) throws {
        guard !names.isEmpty else { return }
        let list = names.map { "clickd." + quoteIdentifier($0) }.joined(separator: ", ")
        let deadline = ContinuousClock.now + .seconds(30)
        while true {
            try db.execute("SAVEPOINT lock_views")
            do {
                try db.execute("LOCK TABLE \(list) IN ACCESS EXCLUSIVE MODE NOWAIT")
                try db.execute("RELEASE SAVEPOINT lock_views")
                return
            } catch let error as PostgresError where error.sqlState == "55P03" && ContinuousClock.now < deadline {
                try db.execute("ROLLBACK TO SAVEPOINT lock_views")
                usleep(UInt32.random(in: 1_000...5_000))
            }
        }
    }

    /// In one transaction that holds the live checkpoints, brings the shadow tables up to
    /// them and compares table by table; returns one line per differing row (at most
    /// `limit` per table and side) and rolls back. The live tables are never changed.
    public func verify(limit: Int = 20) throws -> [String] {
        let counts = try shardCounts()
        guard counts.live == counts.shadow else {
            throw RebuildError(
                "the live projections have \(counts.live) shards and a rebuild now makes \(counts.shadow) (clickd migrate --shards): there is nothing to compare shard by shard; rebuild without --verify"
            )
        }
        // Compares and changes nothing: the transaction always rolls back.
        return try db.transactionEnding { () throws -> ([String], PostgresConnection.TransactionEnd) in
            var differences: [String] = []
            try db.execute("SET LOCAL lock_timeout = '60s'")
            try db.execute("LOCK TABLE \(Self.live).checkpoints IN EXCLUSIVE MODE")
            try catchUpInTransaction()
            for table in Self.comparedTables {
                let columns = try db.query(
                    """
                    SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position
                    """, [Self.live, table]
                ).compactMap { $0[0] }.filter { !Self.ignoredColumns.contains($0) }.map(quoteIdentifier)
                let list = columns.joined(separator: ", ")
                // A month the retention dropped while the rebuild replayed is still in the
                // shadow (the next retention pass drops it there too): not a difference.
                let filter =
                    table == "activity"
                    ? " WHERE occurred_at >= coalesce((SELECT dropped_before FROM clickd_ingest.activity_retention), '-infinity')" : ""
                for (only, other) in [(Self.live, Self.shadow), (Self.shadow, Self.live)] {
                    let rows = try db.query(
                        """
                        SELECT count(*) OVER (), d::text FROM (SELECT \(list) FROM \(only).\(table)\(filter) EXCEPT ALL SELECT \(list) FROM \(other).\(table)\(filter)) d
                        ORDER BY 2 LIMIT \(limit)
                        """)
                    let side = only == Self.live ? "live" : "rebuilt"
                    for row in rows { differences.append("table=\(table) only_in=\(side) row=\(row[1] ?? "")") }
                    if let total = rows.first.flatMap({ $0[0] }).flatMap({ Int($0) }), total > rows.count {
                        differences.append("table=\(table) only_in=\(side) and \(total - rows.count) more rows")
                    }
                }
            }
            return (differences, .rollback)
        }
    }

    /// Drops the shadow tables (after a verification, or when abandoning).
    /// Gives the rebuild lock back (a rebuild that ends must not leave the next one to
    /// find it held until this session's server process has exited).
    public func release() {
        guard holdsLock else { return }
        holdsLock = false
        _ = try? db.query("SELECT pg_advisory_unlock($1)", [Self.lockKey])
    }

    public func discard() {
        _ = try? db.execute("DROP SCHEMA IF EXISTS \(Self.shadow) CASCADE")
    }

    /// Inside the caller's transaction: replays each log up to its live checkpoint. A shadow
    /// already past it (live ingestion lags the logs) stays where it is.
    private func catchUpInTransaction() throws {
        let targets = try liveCheckpoints()
        let shards = try ProjectionStore(db, schema: Self.shadow).shardCount()
        let db = self.db
        let worker = try ShardWorker(
            logDirectories: logDirectories, shardCount: shards, shards: Array(0..<shards), batchSize: batchSize,
            logger: logger, schema: Self.shadow, archive: archive
        ) { db }
        try worker.drain(to: targets, inTransaction: true)
        for position in worker.shardPositions() {
            guard let target = targets.lsn(position.logID, shard: position.shard), position.lsn < target else { continue }
            let directory = try logDirectories.first { try LogReader(directory: $0).logID == position.logID } ?? "\(position.logID)"
            throw RebuildError(
                "log \(directory) ends at LSN \(position.lsn), before its live checkpoint \(target): is this the log the live projections were made from?"
            )
        }
    }
}

public struct RebuildError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A SQL identifier in double quotes (for names read from the catalog).
func quoteIdentifier(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
