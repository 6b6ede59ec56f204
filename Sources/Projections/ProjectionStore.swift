import EventLog
import LinkTracking

/// Writes `ProjectionBatch`es to PostgreSQL, exactly once: the rows of a batch and its
/// log's checkpoint in one transaction, with a compare-and-set on the checkpoint.
public struct ProjectionStore {
    public let db: PostgresConnection

    public init(_ db: PostgresConnection) { self.db = db }

    /// The projected LSN and the classifier's replay start for a log (0 and nil when new).
    public func checkpoint(_ log: LogID) throws -> (lsn: UInt64, windowStart: UInt64?) {
        try db.query("INSERT INTO clickd_internal.checkpoints (log_id, lsn) VALUES ($1, 0) ON CONFLICT DO NOTHING", ["\(log)"])
        let row = try db.query("SELECT lsn, window_start FROM clickd_internal.checkpoints WHERE log_id = $1", ["\(log)"])[0]
        return (UInt64(row[0]!)!, row[1].flatMap { UInt64($0) })
    }

    public enum Outcome: Equatable { case applied, checkpointMoved(UInt64) }

    /// Applies `batch` if the log's checkpoint is still `expected`; else changes nothing.
    public func apply(_ batch: ProjectionBatch, log: LogID, expected: UInt64, windowStart: UInt64?) throws -> Outcome {
        let id = "\(log)"
        try db.execute("BEGIN")
        do {
            let current = UInt64(try db.query("SELECT lsn FROM clickd_internal.checkpoints WHERE log_id = $1 FOR UPDATE", [id])[0][0]!)!
            guard current == expected else {
                try db.execute("ROLLBACK")
                return .checkpointMoved(current)
            }
            try writeActivity(batch, id)
            for reason in Set(batch.corrections.map(\.reason)).sorted() {
                let lsns = batch.corrections.filter { $0.reason == reason }.map { String($0.lsn) }
                try db.query("""
                    UPDATE clickd_internal.activity SET human = false, bot_reason = $3
                    WHERE log_id = $1 AND lsn = ANY($2::bigint[])
                    """, [id, "{" + lsns.joined(separator: ",") + "}", reason])
            }
            try writeCounts(batch)
            for dead in batch.deadLetters {
                try db.query("""
                    INSERT INTO clickd_internal.dead_letters (log_id, lsn, error, payload) VALUES ($1, $2, $3, decode($4, 'hex'))
                    ON CONFLICT DO NOTHING
                    """, [id, String(dead.lsn), dead.error, dead.payload.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()])
            }
            try db.query("UPDATE clickd_internal.checkpoints SET lsn = $2, window_start = $3, updated_at = now() WHERE log_id = $1",
                         [id, String(batch.lastLSN), windowStart.map(String.init)])
            try db.execute("COMMIT")
            return .applied
        } catch {
            _ = try? db.execute("ROLLBACK")
            throw error
        }
    }

    private func writeActivity(_ batch: ProjectionBatch, _ id: String) throws {
        guard !batch.activity.isEmpty else { return }
        var copy = CopyText()
        for row in batch.activity {
            copy.field(id); copy.field(Int64(row.lsn)); copy.field(row.customerID); copy.timestamp(row.occurredAt)
            copy.field(row.kind); copy.field(row.deliveryID); copy.field(row.sourceKind); copy.field(row.sourceID)
            copy.field(row.messageType); copy.field(row.linkID); copy.field(row.url)
            copy.field(row.human.map { $0 ? "t" : "f" }); copy.field(row.botReason); copy.field(row.userAgent)
            copy.field(CopyText.inet(row.ip))
            copy.endRow()
        }
        try db.copy("""
            COPY clickd_internal.activity (log_id, lsn, customer_id, occurred_at, kind, delivery_id, source_kind, source_id,
                                           message_type, link_id, url, human, bot_reason, user_agent, ip) FROM STDIN
            """, data: copy.bytes)
    }

    /// One upsert per key per table. The `ORDER BY` of each upsert makes every daemon lock
    /// keys in the same order (no deadlocks between daemons); sorting in Swift as well was
    /// measured to cost 45 % of ingestion's CPU (String comparison), so it is left to SQL.
    private func writeCounts(_ batch: ProjectionBatch) throws {
        if !batch.links.isEmpty {
            var copy = CopyText()
            for (key, c) in batch.links {
                copy.field(key.sourceKind); copy.field(key.sourceID); copy.field(key.linkID); copy.field(c.url ?? "")
                copy.field(c.total); copy.field(c.human); copy.timestamp(c.first); copy.timestamp(c.last)
                copy.endRow()
            }
            try upsert(copy, temp: "(source_kind text, source_id text, link_id text, url text, total bigint, human bigint, first timestamptz, last timestamptz)",
                       sql: """
                INSERT INTO clickd_internal.link_totals AS t
                    (source_kind, source_id, link_id, url, total_clicks, human_clicks, first_click_at, last_click_at)
                SELECT * FROM delta ORDER BY 1, 2, 3
                ON CONFLICT (source_kind, source_id, link_id) DO UPDATE SET
                    url = EXCLUDED.url,
                    total_clicks = t.total_clicks + EXCLUDED.total_clicks,
                    human_clicks = t.human_clicks + EXCLUDED.human_clicks,
                    first_click_at = LEAST(t.first_click_at, EXCLUDED.first_click_at),
                    last_click_at = GREATEST(t.last_click_at, EXCLUDED.last_click_at)
                """)
        }
        if !batch.clickers.isEmpty {
            var copy = CopyText()
            for (key, c) in batch.clickers {
                copy.field(key.link.sourceKind); copy.field(key.link.sourceID); copy.field(key.link.linkID); copy.field(key.customerID)
                copy.field(c.total); copy.field(c.human); copy.timestamp(c.first); copy.timestamp(c.last)
                copy.endRow()
            }
            try upsert(copy, temp: "(source_kind text, source_id text, link_id text, customer_id text, clicks bigint, human bigint, first timestamptz, last timestamptz)",
                       sql: """
                INSERT INTO clickd_internal.link_clickers AS t
                    (source_kind, source_id, link_id, customer_id, clicks, human_clicks, first_clicked_at, last_clicked_at)
                SELECT * FROM delta ORDER BY 1, 2, 3, 4
                ON CONFLICT (source_kind, source_id, link_id, customer_id) DO UPDATE SET
                    clicks = t.clicks + EXCLUDED.clicks,
                    human_clicks = t.human_clicks + EXCLUDED.human_clicks,
                    first_clicked_at = LEAST(t.first_clicked_at, EXCLUDED.first_clicked_at),
                    last_clicked_at = GREATEST(t.last_clicked_at, EXCLUDED.last_clicked_at)
                """)
        }
        if !batch.sources.isEmpty {
            var copy = CopyText()
            for (key, c) in batch.sources {
                copy.field(key.sourceKind); copy.field(key.sourceID); copy.field(c.delivered); copy.field(c.clicks)
                copy.endRow()
            }
            try upsert(copy, temp: "(source_kind text, source_id text, delivered bigint, clicks bigint)", sql: """
                INSERT INTO clickd_internal.source_totals AS t (source_kind, source_id, delivered, total_clicks)
                SELECT * FROM delta ORDER BY 1, 2
                ON CONFLICT (source_kind, source_id) DO UPDATE SET
                    delivered = t.delivered + EXCLUDED.delivered, total_clicks = t.total_clicks + EXCLUDED.total_clicks
                """)
        }
        if !batch.sourceClickers.isEmpty {
            var copy = CopyText()
            for (key, c) in batch.sourceClickers {
                copy.field(key.source.sourceKind); copy.field(key.source.sourceID); copy.field(key.customerID)
                copy.field(c.total); copy.field(c.human)
                copy.endRow()
            }
            try upsert(copy, temp: "(source_kind text, source_id text, customer_id text, clicks bigint, human bigint)", sql: """
                INSERT INTO clickd_internal.source_clickers AS t (source_kind, source_id, customer_id, clicks, human_clicks)
                SELECT * FROM delta ORDER BY 1, 2, 3
                ON CONFLICT (source_kind, source_id, customer_id) DO UPDATE SET
                    clicks = t.clicks + EXCLUDED.clicks, human_clicks = t.human_clicks + EXCLUDED.human_clicks
                """)
        }
    }

    private func upsert(_ rows: CopyText, temp columns: String, sql: String) throws {
        try db.execute("CREATE TEMP TABLE delta \(columns) ON COMMIT DROP")
        try db.copy("COPY delta FROM STDIN", data: rows.bytes)
        try db.execute(sql)
        try db.execute("DROP TABLE delta")
    }
}
