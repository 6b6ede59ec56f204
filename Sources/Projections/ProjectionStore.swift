import EventLog
import LinkTracking

/// Writes `ProjectionBatch`es to PostgreSQL, exactly once: the rows of one (log, shard)
/// batch and that (log, shard)'s checkpoint in one transaction, with a compare-and-set on
/// the checkpoint; every statement names the shard (docs/design/sharding.md).
public struct ProjectionStore {
    public let db: PostgresConnection
    /// The schema of the projection tables: `clickd_internal`, or a rebuild's shadow schema.
    /// An identifier chosen by clickd, never by input.
    public let schema: String

    /// How batches are written: temporary tables and COPY, or one call of the batch function.
    public var shape: WriteShape
    /// The function shape's most bytes of rows in one call; a batch with more is written in
    /// the temporary-table shape, which streams its rows by COPY (`functionArgumentBytes`).
    public var functionArgumentLimit = ProjectionStore.functionArgumentBytes

    public init(_ db: PostgresConnection, schema: String = "clickd_internal", shape: WriteShape = .temporaryTables) {
        self.db = db
        self.schema = schema
        self.shape = shape
    }

    /// The shard count of the projection tables (migration 0005's `sharding` row).
    public func shardCount() throws -> Int {
        let rows: [[String?]]
        do {
            rows = try db.query("SELECT shards FROM \(schema).sharding")
        } catch let error as PostgresError where error.sqlState == "42P01" {
            throw PostgresError(sqlState: error.sqlState, message: "\(schema) has no sharding table: run clickd migrate first")
        }
        guard let value = rows.first?[0], let shards = Int(value), ShardFunction.shardCounts.contains(shards) else {
            throw PostgresError(sqlState: nil, message: "\(schema).sharding holds no valid shard count")
        }
        return shards
    }

    /// The projected LSN and the classifier's replay start of one (log, shard) (0 and nil
    /// when new: the row is made then, in a transaction of its own, on that shard alone).
    /// Throws `ShardCountChanged` when the projections no longer have `shards` shards — and
    /// then makes no row: a worker planned for the count a rebuild swapped out must not
    /// leave a checkpoint of a shard the new count does not have.
    public func checkpoint(_ log: LogID, shard: Int, shards: Int) throws -> Checkpoint {
        try db.query(
            """
            INSERT INTO \(schema).checkpoints (shard, log_id, lsn) SELECT $1, $2, 0 FROM \(schema).sharding WHERE shards = $3
            ON CONFLICT DO NOTHING
            """, [shard, log, shards])
        let rows = try db.query(
            """
            SELECT c.lsn, c.window_start, s.shards, c.erasure_seq FROM \(schema).sharding s
            LEFT JOIN \(schema).checkpoints c ON c.shard = $1 AND c.log_id = $2
            """, [shard, log])
        guard let row = rows.first, let found = row[2].flatMap({ Int($0) }) else {
            throw PostgresError(sqlState: nil, message: "\(schema).sharding holds no valid shard count")
        }
        guard found == shards else { throw ShardCountChanged(planned: shards, found: found) }
        guard let lsn = row[0].flatMap({ UInt64($0) }) else {
            throw PostgresError(sqlState: nil, message: "log \(log) has no checkpoint row for shard \(shard) in \(schema).checkpoints")
        }
        return Checkpoint(lsn: lsn, windowStart: row[1].flatMap { UInt64($0) }, erasureSeq: row[3].flatMap { Int64($0) } ?? 0)
    }

    /// A (log, shard)'s checkpoint: the LSN projected through, and where the classifier's
    /// replay starts (nil: nothing to replay).
    public struct Checkpoint: Sendable, Equatable {
        public let lsn: UInt64
        public let windowStart: UInt64?
        /// Raised by each erasure of the shard (migration 0011): a batch folded under another
        /// value is refused (`begin`).
        public var erasureSeq: Int64 = 0
    }

    /// The erasure list of `shards` (every erased person of them, and the key of their MACs).
    public func erasures(shards: [Int]) throws -> ErasureList {
        let key = try erasureKey()
        let rows = try db.query(
            "SELECT customer_mac FROM clickd_ingest.erasures WHERE shard = ANY($1)", [PostgresBigintArray(shards.map { UInt64($0) })])
        return ErasureList(key: key, macs: Set(rows.compactMap { $0[0].flatMap(Self.bytea) }))
    }

    /// The instant (ms since 1970) before which the retention has dropped activity
    /// (migration 0012; 0 when nothing was dropped): rows older are not written again.
    public func activityDroppedBefore() throws -> UInt64 {
        let rows = try db.query(
            "SELECT floor(extract(epoch FROM dropped_before) * 1000)::bigint FROM clickd_ingest.activity_retention WHERE dropped_before > 'epoch'")
        return rows.first?[0].flatMap { UInt64($0) } ?? 0
    }

    /// The key of the erasure list's MACs (migration 0011).
    public func erasureKey() throws -> [UInt8] {
        guard let keyText = try db.query("SELECT key FROM clickd_ingest.erasure_key").first?[0], let key = Self.bytea(keyText) else {
            throw PostgresError(sqlState: nil, message: "clickd_ingest.erasure_key holds no key: run clickd migrate")
        }
        return key
    }

    /// A bytea as PostgreSQL's text output writes it (`\\x` and hex digits).
    static func bytea(_ text: String) -> [UInt8]? {
        guard text.hasPrefix("\\x") else { return nil }
        return Hex.bytes(text.dropFirst(2))
    }

    /// Every shard's checkpoint of a log, as far as rows exist.
    public func checkpoints(_ log: LogID) throws -> [Int: UInt64] {
        var result: [Int: UInt64] = [:]
        for row in try db.query("SELECT shard, lsn FROM \(schema).checkpoints WHERE log_id = $1", [log]) {
            if let shard = row[0].flatMap({ Int($0) }), let lsn = row[1].flatMap({ UInt64($0) }) { result[shard] = lsn }
        }
        return result
    }

    /// The dead letters of one (log, shard) from `lsn` on, with their errors.
    public func deadLetters(_ log: LogID, shard: Int, from lsn: UInt64) throws -> [(lsn: UInt64, error: String)] {
        try db.query(
            "SELECT lsn, error FROM \(schema).dead_letters WHERE shard = $1 AND log_id = $2 AND lsn >= $3 ORDER BY lsn",
            [shard, log, lsn]
        )
        .compactMap { row in row[0].flatMap(UInt64.init).map { ($0, row[1] ?? "") } }
    }

    public enum Outcome: Equatable {
        case applied
        case checkpointMoved(UInt64)
    }

    /// A batch encoded for the database (pure; done while the previous batch commits).
    public struct PreparedBatch {
        var activity = CopyBinary(), links = CopyBinary(), clickers = CopyBinary(), sources = CopyBinary()
        var sourceClickers = CopyBinary(), daily = CopyBinary(), hourly = CopyBinary(), botDaily = CopyBinary()
        var sourceOpeners = CopyBinary(), openDaily = CopyBinary()
        var corrections: [(reason: String, lsns: PostgresBigintArray)] = []
        var deadLetters: [(lsn: UInt64, error: String, payload: [UInt8])] = []
        /// Whether a human count went down (a burst correction): source clickers and openers
        /// left at 0 are removed.
        var lowersHumanCounts = false
        public let shard: Int
        /// The checkpoint this batch moves its (log, shard) to.
        public let through: UInt64

        /// The bytes of its rows in binary (what the function shape's arrays hold).
        var argumentBytes: Int {
            [activity, links, clickers, sources, sourceClickers, daily, hourly, botDaily, sourceOpeners, openDaily].reduce(0) {
                $0 + $1.bytes.count
            }
                + corrections.reduce(0) { $0 + $1.reason.utf8.count + 12 * $1.lsns.values.count }
                + deadLetters.reduce(0) { $0 + 24 + $1.error.utf8.count + $1.payload.count }
        }
    }

    /// Encodes `batch` for `shard`, to move its checkpoint to `through` (the last LSN the
    /// worker has read: at or past the batch's last record).
    public func prepare(_ batch: ProjectionBatch, log: LogID, shard: Int, through: UInt64) -> PreparedBatch {
        precondition(through >= batch.lastLSN)
        var p = PreparedBatch(shard: shard, through: through)
        let shard32 = Int32(shard)
        for row in batch.activity {
            p.activity.row(17)
            p.activity.int32(shard32)
            p.activity.uuid(log.bytes)
            p.activity.int64(Int64(row.lsn))
            p.activity.text(row.customerID)
            p.activity.timestamp(row.occurredAt)
            p.activity.text(row.kind)
            p.activity.text(row.deliveryID)
            p.activity.text(row.sourceKind)
            p.activity.text(row.sourceID)
            p.activity.text(row.messageType)
            p.activity.text(row.linkID)
            p.activity.text(row.url)
            p.activity.bool(row.human)
            p.activity.text(row.botReason)
            p.activity.text(row.userAgent)
            p.activity.inet(row.ip)
            p.activity.text(row.openReason)
        }
        for reason in Set(batch.corrections.map(\.reason)).sorted() {
            p.corrections.append((reason, PostgresBigintArray(batch.corrections.filter { $0.reason == reason }.map(\.lsn))))
        }
        var numbers: [ProjectionBatch.LinkKey: [UInt8]] = [:]
        numbers.reserveCapacity(batch.links.count)
        for (key, c) in batch.links {
            let number = key.numberBytes
            numbers[key] = number
            p.links.row(9)
            p.links.uuid(number)
            p.links.text(key.sourceKind)
            p.links.text(key.sourceID)
            p.links.text(key.linkID)
            p.links.text(c.url ?? "")
            p.links.int64(c.total)
            p.links.int64(c.human)
            p.links.timestamp(c.first)
            p.links.timestamp(c.last)
        }
        for (key, c) in batch.clickers {
            // Every clicker delta has its link's delta in the same batch (`ProjectionFold.count`).
            p.clickers.row(6)
            p.clickers.uuid(numbers[key.link] ?? key.link.numberBytes)
            p.clickers.text(key.customerID)
            p.clickers.int64(c.total)
            p.clickers.int64(c.human)
            p.clickers.timestamp(c.first)
            p.clickers.timestamp(c.last)
            if c.human < 0 { p.lowersHumanCounts = true }
        }
        for (key, c) in batch.daily {
            p.daily.row(4)
            p.daily.uuid(numbers[key.link] ?? key.link.numberBytes)
            p.daily.date(daysSince1970: key.day)
            p.daily.int64(c.total)
            p.daily.int64(c.human)
        }
        var sourceNumbers: [ProjectionBatch.SourceKey: [UInt8]] = [:]
        sourceNumbers.reserveCapacity(batch.sources.count)
        for (key, c) in batch.sources {
            let number = key.numberBytes
            sourceNumbers[key] = number
            p.sources.row(8)
            p.sources.uuid(number)
            p.sources.text(key.sourceKind)
            p.sources.text(key.sourceID)
            p.sources.int64(c.delivered)
            p.sources.int64(c.clicks)
            p.sources.int64(c.human)
            p.sources.int64(c.opens)
            p.sources.int64(c.machineOpens)
        }
        for (key, c) in batch.hourly {
            p.hourly.row(7)
            p.hourly.uuid(sourceNumbers[key.source] ?? key.source.numberBytes)
            p.hourly.timestamp(UInt64(key.hour) * ProjectionFold.msPerHour)
            p.hourly.int64(c.delivered)
            p.hourly.int64(c.total)
            p.hourly.int64(c.human)
            p.hourly.int64(c.opens)
            p.hourly.int64(c.personOpens)
        }
        // Per (source, day, reason): bot clicks, and opens that are not the person's own.
        for (counts, rows) in [(batch.botDaily, \PreparedBatch.botDaily), (batch.openDaily, \PreparedBatch.openDaily)] {
            for (key, count) in counts {
                p[keyPath: rows].row(4)
                p[keyPath: rows].uuid(sourceNumbers[key.source] ?? key.source.numberBytes)
                p[keyPath: rows].date(daysSince1970: key.day)
                p[keyPath: rows].text(key.reason)
                p[keyPath: rows].int64(count)
            }
        }
        // Per (source, customer): human clicks, and opens as a person; a change of 0 is no row.
        for (deltas, rows) in [(batch.sourceClickers, \PreparedBatch.sourceClickers), (batch.sourceOpeners, \PreparedBatch.sourceOpeners)] {
            for (key, change) in deltas where change != 0 {
                p[keyPath: rows].row(3)
                p[keyPath: rows].uuid(sourceNumbers[key.source] ?? key.source.numberBytes)
                p[keyPath: rows].text(key.customerID)
                p[keyPath: rows].int64(change)
                if change < 0 { p.lowersHumanCounts = true }
            }
        }
        p.activity.end()
        p.links.end()
        p.clickers.end()
        p.sources.end()
        p.sourceClickers.end()
        p.daily.end()
        p.hourly.end()
        p.botDaily.end()
        p.sourceOpeners.end()
        p.openDaily.end()
        p.deadLetters = batch.deadLetters
        return p
    }

    /// The shard count changed under a worker (a rebuild swapped in projections with another
    /// count): its plan of shards is void.
    public struct ShardCountChanged: Error, CustomStringConvertible {
        public let planned: Int, found: Int
        public var description: String { "the projections now have \(found) shards (this worker planned for \(planned)); re-planning" }
    }

    /// Starts applying `batch` if its (log, shard)'s checkpoint is still `expected` (else
    /// changes nothing): checks the checkpoint and the shard count, writes the rows, moves
    /// the checkpoint, and sends the counter upserts and the COMMIT without waiting for
    /// them — `finish` waits (any other use of the connection waits first). `.applied`
    /// means "sent". With `ownTransaction: false` the caller holds a transaction open (a
    /// rebuild's swap): no BEGIN, no COMMIT, and on failure the caller rolls back.
    public func begin(
        _ batch: PreparedBatch, log: LogID, shards: Int, expected: UInt64, windowStart: UInt64?, erasureSeq: Int64 = 0,
        ownTransaction: Bool = true
    ) throws -> Outcome {
        if shape == .function, batch.argumentBytes <= functionArgumentLimit {
            return try applyByFunction(batch, log: log, shards: shards, expected: expected, windowStart: windowStart, erasureSeq: erasureSeq)
        }
        let shard = batch.shard
        // Everything up to the counter upserts; their SQL (and, in a transaction of its own,
        // the COMMIT) is sent without waiting for it.
        func write() throws -> (Outcome, PostgresConnection.TransactionEnd) {
            let rows = try db.query(
                """
                SELECT c.lsn, s.shards, c.erasure_seq FROM \(schema).checkpoints c, \(schema).sharding s
                WHERE c.shard = $1 AND c.log_id = $2 FOR UPDATE OF c
                """, [shard, log])
            guard let value = rows.first?[0], let current = UInt64(value) else {
                // No row: a shard the projections' current count may not have.
                let found = try shardCount()
                if found != shards { throw ShardCountChanged(planned: shards, found: found) }
                throw PostgresError(sqlState: nil, message: "log \(log) has no checkpoint row for shard \(shard) in \(schema).checkpoints")
            }
            if let found = rows.first?[1].flatMap({ Int($0) }), found != shards {
                throw ShardCountChanged(planned: shards, found: found)
            }
            guard current == expected else { return (.checkpointMoved(current), .rollback) }
            // An erasure of the shard committed after this batch was folded: it may hold the
            // person. Refused as a moved checkpoint; the worker folds again with the new list.
            if let seq = rows.first?[2].flatMap({ Int64($0) }), seq != erasureSeq { return (.checkpointMoved(current), .rollback) }
            if batch.activity.rows > 0 {
                try db.copy(
                    """
                    COPY \(schema).activity (shard, log_id, lsn, customer_id, occurred_at, kind, delivery_id, source_kind, source_id,
                                              message_type, link_id, url, human, bot_reason, user_agent, ip, open_reason)
                    FROM STDIN (FORMAT binary)
                    """, data: batch.activity.bytes)
            }
            for (reason, lsns) in batch.corrections {
                try db.query(
                    """
                    UPDATE \(schema).activity SET human = false, bot_reason = $4
                    WHERE shard = $1 AND log_id = $2 AND lsn = ANY($3)
                    """, [shard, log, lsns, reason])
            }
            for dead in batch.deadLetters {
                try db.query(
                    """
                    INSERT INTO \(schema).dead_letters (shard, log_id, lsn, error, payload) VALUES ($1, $2, $3, $4, $5)
                    ON CONFLICT DO NOTHING
                    """, [shard, log, dead.lsn, dead.error, dead.payload])
            }
            // A compare-and-set again: the row locked above may belong to tables a rebuild
            // swapped out while this transaction waited for it.
            let moved = try db.query(
                """
                UPDATE \(schema).checkpoints SET lsn = $3, window_start = $4, updated_at = now()
                WHERE shard = $1 AND log_id = $2 AND lsn = $5 RETURNING lsn
                """, [shard, log, batch.through, windowStart, expected])
            guard moved.count == 1 else {
                throw PostgresError(sqlState: nil, message: "the checkpoint of log \(log) shard \(shard) moved during the batch; it will be retried")
            }
            return (.applied, .commitSent(after: try writeCounts(batch)))
        }
        guard ownTransaction else {
            // The caller's transaction: it ends it, and rolls it back on failure.
            let (outcome, end) = try write()
            if case .commitSent(let upserts) = end, !upserts.isEmpty { try db.send(upserts) }
            return outcome
        }
        return try db.transactionEnding(write)
    }

    /// Moves the checkpoint of a (log, shard) that had no records to `through` (and its
    /// window start), if it is still `expected` and the projections still have `shards`
    /// shards: one statement, one shard. False if either changed (`checkpoint` tells which).
    /// The shard count is part of the compare-and-set: a worker planned for the count a
    /// rebuild swapped out would otherwise move a shard of the new count past records of
    /// customers that shard now holds — that skipped them, and re-sharding under a running
    /// daemon lost clicks (issue 13).
    public func advance(_ log: LogID, shard: Int, shards: Int, expected: UInt64, through: UInt64, windowStart: UInt64?) throws -> Bool {
        try db.query(
            """
            UPDATE \(schema).checkpoints c SET lsn = $3, window_start = $4, updated_at = now() FROM \(schema).sharding s
            WHERE c.shard = $1 AND c.log_id = $2 AND c.lsn = $5 AND s.shards = $6 RETURNING c.lsn
            """, [shard, log, through, windowStart, expected, shards]
        ).count == 1
    }

    /// Waits for the upserts (and the COMMIT) that `begin` sent.
    public func finish(ownTransaction: Bool = true) throws {
        if ownTransaction { try db.finishTransaction() } else { try db.finish() }
    }

    /// COPYs the counter deltas into the session's temporary tables (made on first use,
    /// emptied by every commit — no catalog writes per batch) and returns the upserts that
    /// fold them in: one per key per table, every key on the batch's shard. The `ORDER BY`
    /// of each upsert makes every daemon lock keys in the same order (no deadlocks between
    /// daemons on different logs); sorting in Swift as well was measured to cost 45 % of
    /// ingestion's CPU (String comparison), so it is left to SQL.
    ///
    /// The distinct counts move with the clicker upserts: a clicker row's new
    /// `human_clicks` comes back from its upsert, its delta is in the temporary table, so
    /// its value before is `new - delta` — exact even when another log's daemon updates the
    /// same row at once, since the upsert adds under the row's lock. 0 → more is one more
    /// unique clicker of the link; more → 0 is one fewer.
    /// Per `key`, the change of a distinct count from the rows a clicker upsert returned
    /// (CTE `clickers`: key, customer_id, the new human_clicks) and their deltas: +1 for
    /// each that went from 0 to more, -1 for each that went from more to 0.
    /// `rows` and `column` name the CTE and its counted column (`clickers`, `human_clicks`
    /// by default; the openers' are `openers`, `opens`), `deltaColumn` the delta's.
    static func distinctChange(
        key: String, delta: String, rows: String = "clickers", column: String = "human_clicks", deltaColumn: String = "human"
    ) -> String {
        """

                    SELECT c.\(key), sum(CASE WHEN c.\(column) > 0 AND c.\(column) - d.\(deltaColumn) <= 0 THEN 1
                                           WHEN c.\(column) <= 0 AND c.\(column) - d.\(deltaColumn) > 0 THEN -1
                                           ELSE 0 END) AS change
                    FROM \(rows) c JOIN \(delta) d USING (\(key), customer_id)
                    GROUP BY c.\(key)
        """
    }

    /// Applies only `batch`'s counter deltas, in the caller's transaction (an erasure's
    /// subtraction: docs/design/erasure.md, 2a).
    func applyCounts(_ batch: PreparedBatch) throws {
        let upserts = try writeCounts(batch)
        if !upserts.isEmpty { try db.execute(upserts) }
    }

    private func writeCounts(_ batch: PreparedBatch) throws -> String {
        let shard = batch.shard  // an Int: written into the SQL as a number
        var upserts = ""
        func delta(_ rows: CopyBinary, _ name: String, _ columns: String) throws -> Bool {
            guard rows.rows > 0 else { return false }
            try db.execute("CREATE TEMP TABLE IF NOT EXISTS \(name) \(columns) ON COMMIT DELETE ROWS")
            try db.copy("COPY \(name) FROM STDIN (FORMAT binary)", data: rows.bytes)
            return true
        }
        let links = try delta(
            batch.links, "delta_links",
            "(link_key uuid, source_kind text, source_id text, link_id text, url text, total bigint, human bigint, first timestamptz, last timestamptz)"
        )
        let clickers = try delta(
            batch.clickers, "delta_clickers", "(link_key uuid, customer_id text, clicks bigint, human bigint, first timestamptz, last timestamptz)")
        if links {
            // Every clicker delta has its link's delta: the clickers' upsert feeds the links'.
            upserts += """
                WITH clickers AS (
                    INSERT INTO \(schema).link_clickers AS t
                        (shard, link_key, customer_id, clicks, human_clicks, first_clicked_at, last_clicked_at)
                    SELECT \(shard), * FROM delta_clickers ORDER BY 1, 2, 3
                    ON CONFLICT (shard, link_key, customer_id) DO UPDATE SET
                        clicks = t.clicks + EXCLUDED.clicks,
                        human_clicks = t.human_clicks + EXCLUDED.human_clicks,
                        first_clicked_at = LEAST(t.first_clicked_at, EXCLUDED.first_clicked_at),
                        last_clicked_at = GREATEST(t.last_clicked_at, EXCLUDED.last_clicked_at)
                    RETURNING t.link_key, t.customer_id, t.human_clicks
                ), uniques AS (\(Self.distinctChange(key: "link_key", delta: "delta_clickers"))
                )
                INSERT INTO \(schema).link_totals AS t
                    (shard, link_key, source_kind, source_id, link_id, url, total_clicks, human_clicks, unique_clickers, first_click_at, last_click_at)
                SELECT \(shard), l.link_key, l.source_kind, l.source_id, l.link_id, l.url, l.total, l.human, coalesce(u.change, 0), l.first, l.last
                FROM delta_links l LEFT JOIN uniques u USING (link_key) ORDER BY l.link_key
                ON CONFLICT (shard, link_key) DO UPDATE SET
                    url = EXCLUDED.url,
                    total_clicks = t.total_clicks + EXCLUDED.total_clicks,
                    human_clicks = t.human_clicks + EXCLUDED.human_clicks,
                    unique_clickers = t.unique_clickers + EXCLUDED.unique_clickers,
                    first_click_at = LEAST(t.first_click_at, EXCLUDED.first_click_at),
                    last_click_at = GREATEST(t.last_click_at, EXCLUDED.last_click_at);

                """
        }
        precondition(links || !clickers, "clicker deltas without their links' deltas")
        if try delta(batch.daily, "delta_daily", "(link_key uuid, day date, total bigint, human bigint)") {
            upserts += """
                INSERT INTO \(schema).link_daily AS t (shard, link_key, day, total_clicks, human_clicks)
                SELECT \(shard), * FROM delta_daily ORDER BY 1, 2, 3
                ON CONFLICT (shard, link_key, day) DO UPDATE SET
                    total_clicks = t.total_clicks + EXCLUDED.total_clicks, human_clicks = t.human_clicks + EXCLUDED.human_clicks;

                """
        }
        if try delta(
            batch.hourly, "delta_hourly",
            "(source_key uuid, hour timestamptz, delivered bigint, total bigint, human bigint, opens bigint, person_opens bigint)")
        {
            upserts += """
                INSERT INTO \(schema).source_hourly AS t
                    (shard, source_key, hour, delivered, total_clicks, human_clicks, total_opens, person_opens)
                SELECT \(shard), * FROM delta_hourly ORDER BY 1, 2, 3
                ON CONFLICT (shard, source_key, hour) DO UPDATE SET
                    delivered = t.delivered + EXCLUDED.delivered, total_clicks = t.total_clicks + EXCLUDED.total_clicks,
                    human_clicks = t.human_clicks + EXCLUDED.human_clicks, total_opens = t.total_opens + EXCLUDED.total_opens,
                    person_opens = t.person_opens + EXCLUDED.person_opens;

                """
        }
        if try delta(batch.botDaily, "delta_bot_daily", "(source_key uuid, day date, bot_reason text, clicks bigint)") {
            upserts += """
                INSERT INTO \(schema).bot_daily AS t (shard, source_key, day, bot_reason, clicks)
                SELECT \(shard), * FROM delta_bot_daily ORDER BY 1, 2, 3, 4
                ON CONFLICT (shard, source_key, day, bot_reason) DO UPDATE SET clicks = t.clicks + EXCLUDED.clicks;

                """
        }
        if try delta(batch.openDaily, "delta_open_daily", "(source_key uuid, day date, reason text, opens bigint)") {
            upserts += """
                INSERT INTO \(schema).open_daily AS t (shard, source_key, day, reason, opens)
                SELECT \(shard), * FROM delta_open_daily ORDER BY 1, 2, 3, 4
                ON CONFLICT (shard, source_key, day, reason) DO UPDATE SET opens = t.opens + EXCLUDED.opens;

                """
        }
        let sources = try delta(
            batch.sources, "delta_sources",
            "(source_key uuid, source_kind text, source_id text, delivered bigint, clicks bigint, human bigint, opens bigint, machine_opens bigint)"
        )
        let sourceClickers = try delta(batch.sourceClickers, "delta_source_clickers", "(source_key uuid, customer_id text, human bigint)")
        let sourceOpeners = try delta(batch.sourceOpeners, "delta_source_openers", "(source_key uuid, customer_id text, opens bigint)")
        precondition(sources || !(sourceClickers || sourceOpeners), "source clicker or opener deltas without their sources' deltas")
        if sources {
            // As for links: a customer's first human click on any link of the source makes
            // them a clicked customer of the source; their last one corrected away, no more.
            // Openers alike, with a person's opens (a human click is one).
            // The upsert of one per-customer table (`rows`: its RETURNING) and the change of
            // its distinct count (`changes`), or an empty change when the batch has no rows.
            func customerUpsert(_ present: Bool, table: String, column: String, deltaColumn: String, rows: String, changes: String) -> String {
                guard present else { return "\(changes) AS (SELECT NULL::uuid AS source_key, 0::bigint AS change WHERE false)" }
                return """
                    \(rows) AS (
                        INSERT INTO \(schema).\(table) AS t (shard, source_key, customer_id, \(column))
                        SELECT \(shard), * FROM delta_\(table) ORDER BY 1, 2, 3
                        ON CONFLICT (shard, source_key, customer_id) DO UPDATE SET \(column) = t.\(column) + EXCLUDED.\(column)
                        RETURNING t.source_key, t.customer_id, t.\(column)
                    ), \(changes) AS (\(Self.distinctChange(
                        key: "source_key", delta: "delta_\(table)", rows: rows, column: column, deltaColumn: deltaColumn))
                    )
                    """
            }
            let ctes = [
                customerUpsert(
                    sourceClickers, table: "source_clickers", column: "human_clicks", deltaColumn: "human", rows: "clickers", changes: "customers"),
                customerUpsert(sourceOpeners, table: "source_openers", column: "opens", deltaColumn: "opens", rows: "openers", changes: "opened"),
            ]
            upserts +=
                "WITH " + ctes.joined(separator: ", ") + "\n"
                    + """
                    INSERT INTO \(schema).source_totals AS t
                        (shard, source_key, source_kind, source_id, delivered, total_clicks, clicked_customers, human_clicks,
                         total_opens, machine_opens, opened_customers)
                    SELECT \(shard), s.source_key, s.source_kind, s.source_id, s.delivered, s.clicks, coalesce(c.change, 0), s.human,
                           s.opens, s.machine_opens, coalesce(o.change, 0)
                    FROM delta_sources s LEFT JOIN customers c USING (source_key) LEFT JOIN opened o USING (source_key)
                    ORDER BY s.source_key
                    ON CONFLICT (shard, source_key) DO UPDATE SET
                        delivered = t.delivered + EXCLUDED.delivered, total_clicks = t.total_clicks + EXCLUDED.total_clicks,
                        clicked_customers = t.clicked_customers + EXCLUDED.clicked_customers, human_clicks = t.human_clicks + EXCLUDED.human_clicks,
                        total_opens = t.total_opens + EXCLUDED.total_opens, machine_opens = t.machine_opens + EXCLUDED.machine_opens,
                        opened_customers = t.opened_customers + EXCLUDED.opened_customers;

                    """
            if batch.lowersHumanCounts {
                // A source clicker (opener) row exists while its human clicks (opens) are more than 0.
                if sourceClickers {
                    upserts += """
                        DELETE FROM \(schema).source_clickers t USING delta_source_clickers d
                        WHERE t.shard = \(shard) AND t.source_key = d.source_key AND t.customer_id = d.customer_id
                          AND d.human < 0 AND t.human_clicks <= 0;

                        """
                }
                if sourceOpeners {
                    upserts += """
                        DELETE FROM \(schema).source_openers t USING delta_source_openers d
                        WHERE t.shard = \(shard) AND t.source_key = d.source_key AND t.customer_id = d.customer_id
                          AND d.opens < 0 AND t.opens <= 0;

                        """
                }
            }
        }
        return upserts
    }
}
