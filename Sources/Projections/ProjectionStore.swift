import EventLog
import LinkTracking

/// Writes `ProjectionBatch`es to PostgreSQL, exactly once: the rows of a batch and its
/// log's checkpoint in one transaction, with a compare-and-set on the checkpoint.
public struct ProjectionStore {
    public let db: PostgresConnection
    /// The schema of the projection tables: `clickd_internal`, or a rebuild's shadow schema.
    /// An identifier chosen by clickd, never by input.
    public let schema: String

    public init(_ db: PostgresConnection, schema: String = "clickd_internal") {
        self.db = db
        self.schema = schema
    }

    /// The projected LSN and the classifier's replay start for a log (0 and nil when new).
    public func checkpoint(_ log: LogID) throws -> (lsn: UInt64, windowStart: UInt64?) {
        try db.query("INSERT INTO \(schema).checkpoints (log_id, lsn) VALUES ($1, 0) ON CONFLICT DO NOTHING", ["\(log)"])
        let row = try db.query("SELECT lsn, window_start FROM \(schema).checkpoints WHERE log_id = $1", ["\(log)"])[0]
        return (UInt64(row[0]!)!, row[1].flatMap { UInt64($0) })
    }

    /// The dead letters of a log from `lsn` on, with their errors.
    public func deadLetters(_ log: LogID, from lsn: UInt64) throws -> [(lsn: UInt64, error: String)] {
        try db.query("SELECT lsn, error FROM \(schema).dead_letters WHERE log_id = $1 AND lsn >= $2 ORDER BY lsn", ["\(log)", String(lsn)])
            .compactMap { row in row[0].flatMap(UInt64.init).map { ($0, row[1] ?? "") } }
    }

    public enum Outcome: Equatable { case applied, checkpointMoved(UInt64) }

    /// A batch encoded for the database (pure; done while the previous batch commits).
    public struct PreparedBatch {
        var activity = CopyBinary(), links = CopyBinary(), clickers = CopyBinary(), sources = CopyBinary()
        var corrections: [(reason: String, lsns: String)] = []
        var deadLetters: [(lsn: String, error: String, payload: String)] = []
        public var lastLSN: UInt64
    }

    public func prepare(_ batch: ProjectionBatch, log: LogID) -> PreparedBatch {
        var p = PreparedBatch(lastLSN: batch.lastLSN)
        for row in batch.activity {
            p.activity.row(15)
            p.activity.uuid(log.bytes); p.activity.int64(Int64(row.lsn)); p.activity.text(row.customerID); p.activity.timestamp(row.occurredAt)
            p.activity.text(row.kind); p.activity.text(row.deliveryID); p.activity.text(row.sourceKind); p.activity.text(row.sourceID)
            p.activity.text(row.messageType); p.activity.text(row.linkID); p.activity.text(row.url)
            p.activity.bool(row.human); p.activity.text(row.botReason); p.activity.text(row.userAgent)
            p.activity.inet(row.ip)
        }
        for reason in Set(batch.corrections.map(\.reason)).sorted() {
            let lsns = batch.corrections.filter { $0.reason == reason }.map { String($0.lsn) }
            p.corrections.append((reason, "{" + lsns.joined(separator: ",") + "}"))
        }
        var numbers: [ProjectionBatch.LinkKey: [UInt8]] = [:]
        numbers.reserveCapacity(batch.links.count)
        for (key, c) in batch.links {
            let number = key.numberBytes
            numbers[key] = number
            p.links.row(9)
            p.links.uuid(number); p.links.text(key.sourceKind); p.links.text(key.sourceID); p.links.text(key.linkID); p.links.text(c.url ?? "")
            p.links.int64(c.total); p.links.int64(c.human); p.links.timestamp(c.first); p.links.timestamp(c.last)
        }
        for (key, c) in batch.clickers {
            // Every clicker delta has its link's delta in the same batch (`ProjectionFold.count`).
            p.clickers.row(6)
            p.clickers.uuid(numbers[key.link] ?? key.link.numberBytes); p.clickers.text(key.customerID)
            p.clickers.int64(c.total); p.clickers.int64(c.human); p.clickers.timestamp(c.first); p.clickers.timestamp(c.last)
        }
        for (key, c) in batch.sources {
            p.sources.row(4)
            p.sources.text(key.sourceKind); p.sources.text(key.sourceID); p.sources.int64(c.delivered); p.sources.int64(c.clicks)
        }
        p.activity.end(); p.links.end(); p.clickers.end(); p.sources.end()
        p.deadLetters = batch.deadLetters.map { dead in
            (String(dead.lsn), dead.error, dead.payload.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined())
        }
        return p
    }

    /// Starts applying `batch` if the log's checkpoint is still `expected` (else changes
    /// nothing): checks the checkpoint, writes the rows, moves the checkpoint,
    /// and sends the counter upserts and the COMMIT without waiting for them — `finish`
    /// waits (any other use of the connection waits first). `.applied` means "sent".
    /// With `ownTransaction: false` the caller holds a transaction open (a rebuild's swap):
    /// no BEGIN, no COMMIT, and on failure the caller rolls back.
    public func begin(_ batch: PreparedBatch, log: LogID, expected: UInt64, windowStart: UInt64?, ownTransaction: Bool = true) throws -> Outcome {
        let id = "\(log)"
        if ownTransaction { try db.execute("BEGIN") }
        do {
            let rows = try db.query("SELECT lsn FROM \(schema).checkpoints WHERE log_id = $1 FOR UPDATE", [id])
            guard let value = rows.first?[0], let current = UInt64(value) else {
                throw PostgresError(sqlState: nil, message: "log \(id) has no checkpoint row in \(schema).checkpoints")
            }
            guard current == expected else {
                if ownTransaction { try db.execute("ROLLBACK") }
                return .checkpointMoved(current)
            }
            if batch.activity.rows > 0 {
                try db.copy("""
                    COPY \(schema).activity (log_id, lsn, customer_id, occurred_at, kind, delivery_id, source_kind, source_id,
                                              message_type, link_id, url, human, bot_reason, user_agent, ip) FROM STDIN (FORMAT binary)
                    """, data: batch.activity.bytes)
            }
            for (reason, lsns) in batch.corrections {
                try db.query("""
                    UPDATE \(schema).activity SET human = false, bot_reason = $3
                    WHERE log_id = $1 AND lsn = ANY($2::bigint[])
                    """, [id, lsns, reason])
            }
            for dead in batch.deadLetters {
                try db.query("""
                    INSERT INTO \(schema).dead_letters (log_id, lsn, error, payload) VALUES ($1, $2, $3, decode($4, 'hex'))
                    ON CONFLICT DO NOTHING
                    """, [id, dead.lsn, dead.error, dead.payload])
            }
            // A compare-and-set again: the row locked above may belong to tables a rebuild
            // swapped out while this transaction waited for it.
            let moved = try db.query("""
                UPDATE \(schema).checkpoints SET lsn = $2, window_start = $3, updated_at = now() WHERE log_id = $1 AND lsn = $4 RETURNING lsn
                """, [id, String(batch.lastLSN), windowStart.map(String.init), String(expected)])
            guard moved.count == 1 else {
                throw PostgresError(sqlState: nil, message: "the checkpoint of log \(id) moved during the batch; it will be retried")
            }
            try db.send(try writeCounts(batch) + (ownTransaction ? "COMMIT;" : ""))
            return .applied
        } catch {
            if ownTransaction { _ = try? db.execute("ROLLBACK") }
            throw error
        }
    }

    /// Waits for the upserts (and the COMMIT) that `begin` sent.
    public func finish(ownTransaction: Bool = true) throws {
        do {
            try db.finish()
        } catch {
            if ownTransaction { _ = try? db.execute("ROLLBACK") }
            throw error
        }
    }

    /// COPYs the counter deltas into the session's temporary tables (made on first use,
    /// emptied by every commit — no catalog writes per batch) and returns the upserts that
    /// fold them in: one per key per table. The `ORDER BY` of each upsert makes every daemon
    /// lock keys in the same order (no deadlocks between daemons); sorting in Swift as well
    /// was measured to cost 45 % of ingestion's CPU (String comparison), so it is left to SQL.
    private func writeCounts(_ batch: PreparedBatch) throws -> String {
        var upserts = ""
        func delta(_ rows: CopyBinary, _ name: String, _ columns: String, upsert: String) throws {
            guard rows.rows > 0 else { return }
            try db.execute("CREATE TEMP TABLE IF NOT EXISTS \(name) \(columns) ON COMMIT DELETE ROWS")
            try db.copy("COPY \(name) FROM STDIN (FORMAT binary)", data: rows.bytes)
            upserts += upsert + ";\n"
        }
        try delta(batch.links, "delta_links", "(link_key uuid, source_kind text, source_id text, link_id text, url text, total bigint, human bigint, first timestamptz, last timestamptz)", upsert: """
            INSERT INTO \(schema).link_totals AS t
                (link_key, source_kind, source_id, link_id, url, total_clicks, human_clicks, first_click_at, last_click_at)
            SELECT * FROM delta_links ORDER BY 1
            ON CONFLICT (link_key) DO UPDATE SET
                url = EXCLUDED.url,
                total_clicks = t.total_clicks + EXCLUDED.total_clicks,
                human_clicks = t.human_clicks + EXCLUDED.human_clicks,
                first_click_at = LEAST(t.first_click_at, EXCLUDED.first_click_at),
                last_click_at = GREATEST(t.last_click_at, EXCLUDED.last_click_at)
            """)
        // Keyed by the link's number (migration 0004): its link_totals row is upserted first, in the same transaction.
        try delta(batch.clickers, "delta_clickers", "(link_key uuid, customer_id text, clicks bigint, human bigint, first timestamptz, last timestamptz)", upsert: """
            INSERT INTO \(schema).link_clickers AS t
                (link_key, customer_id, clicks, human_clicks, first_clicked_at, last_clicked_at)
            SELECT * FROM delta_clickers ORDER BY 1, 2
            ON CONFLICT (link_key, customer_id) DO UPDATE SET
                clicks = t.clicks + EXCLUDED.clicks,
                human_clicks = t.human_clicks + EXCLUDED.human_clicks,
                first_clicked_at = LEAST(t.first_clicked_at, EXCLUDED.first_clicked_at),
                last_clicked_at = GREATEST(t.last_clicked_at, EXCLUDED.last_clicked_at)
            """)
        try delta(batch.sources, "delta_sources", "(source_kind text, source_id text, delivered bigint, clicks bigint)", upsert: """
            INSERT INTO \(schema).source_totals AS t (source_kind, source_id, delivered, total_clicks)
            SELECT * FROM delta_sources ORDER BY 1, 2
            ON CONFLICT (source_kind, source_id) DO UPDATE SET
                delivered = t.delivered + EXCLUDED.delivered, total_clicks = t.total_clicks + EXCLUDED.total_clicks
            """)
        return upserts
    }
}
