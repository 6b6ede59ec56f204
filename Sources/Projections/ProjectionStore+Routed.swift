import EventLog
import Foundation

/// The ingest writes in the shape Citus routes to the one worker that holds the batch's
/// shard (docs/design/citus.md, "Ingest statements on Citus"): every row as a multi-row
/// `INSERT … VALUES` with bound parameters, never a `COPY` (Citus commits any transaction
/// that copies into a distributed table with two-phase commit) nor an `INSERT … SELECT`
/// from the session's temporary tables (which exist only on the coordinator, so Citus runs
/// it "via the coordinator"). The rows are the very `CopyBinary` rows the temporary-table
/// shape copies, each field bound in binary as it is encoded there.
extension ProjectionStore {
    /// How a store writes a batch.
    public enum WriteShape: String, Sendable {
        /// COPY into the session's temporary tables, then upserts from them, pipelined
        /// with the COMMIT: the fastest on plain PostgreSQL (docs/benchmarks.md, issue 13).
        case temporaryTables = "tables"
        /// INSERT … VALUES statements, each routed by Citus to one worker.
        case values
        /// One call of `clickd_ingest.apply_batch` per batch, delegated by Citus to one worker.
        case function

        /// `.temporaryTables` unless the environment says `CLICKD_INGEST_SHAPE=values`.
        /// Not `.values` on Citus by default: measured on a 3-node cluster on one 2-core box
        /// (bench/citus.sh, docs/benchmarks.md "Issue 28"), routing every write cost the
        /// coordinator more CPU per event (planning multi-row VALUES) than sending the
        /// upserts through it did, and the ingest took 1.75x as long.
        public static var configured: WriteShape {
            ProcessInfo.processInfo.environment["CLICKD_INGEST_SHAPE"].flatMap(WriteShape.init(rawValue:)) ?? .temporaryTables
        }
    }

    /// PostgreSQL's limit of bound parameters in one statement.
    static let parameterLimit = 65_535

    /// `INSERT INTO table (columns) VALUES …` of `rows` (each `types.count` bound fields,
    /// after `prefix`, SQL text of one constant such as the shard), `suffix` after (ON CONFLICT,
    /// RETURNING), cut into statements under the parameter limit. Returns what RETURNING gave.
    @discardableResult
    func insertValues(
        _ table: String, _ columns: String, prefix: String = "", rows: [[PostgresBind?]], types: [UInt32], suffix: String = ""
    ) throws -> [[String?]] {
        guard !rows.isEmpty else { return [] }
        let width = types.count
        let perStatement = max(1, Self.parameterLimit / width)
        var returned: [[String?]] = []
        var start = 0
        while start < rows.count {
            let end = min(rows.count, start + perStatement)
            var sql = "INSERT INTO \(schema).\(table) AS t (\(columns)) VALUES "
            var parameters: [(any PostgresBindable)?] = []
            parameters.reserveCapacity((end - start) * width)
            for (n, row) in rows[start..<end].enumerated() {
                sql += n == 0 ? "(" : ", ("
                sql += prefix
                for (i, field) in row.enumerated() {
                    parameters.append(field)
                    sql += (i == 0 && prefix.isEmpty ? "$" : ", $") + String(parameters.count)
                }
                sql += ")"
            }
            returned += try db.query(sql + " " + suffix, parameters)
            start = end
        }
        return returned
    }

    /// The activity rows, as `begin` would COPY them.
    func insertActivity(_ batch: PreparedBatch) throws {
        try insertValues(
            "activity",
            "shard, log_id, lsn, customer_id, occurred_at, kind, delivery_id, source_kind, source_id, message_type, link_id, url, human, bot_reason, user_agent, ip",
            rows: batch.activity.boundRows(Self.activityTypes), types: Self.activityTypes)
    }

    /// The counter upserts of `writeCounts`, each a routed statement, run now (not
    /// pipelined: the totals need what the clicker upserts return). Rows are upserted in
    /// the order of their keys' bytes, so that every daemon locks keys in one order.
    func writeCountsRouted(_ batch: PreparedBatch) throws {
        let shard = "\(batch.shard)"  // an Int: written into the SQL as a number
        let clickers = sortedByKey(batch.clickers.boundRows(Self.clickerTypes), keys: 2)
        let linkChanges = try distinctChanges(
            try insertValues(
                "link_clickers", "shard, link_key, customer_id, clicks, human_clicks, first_clicked_at, last_clicked_at", prefix: shard,
                rows: clickers, types: Self.clickerTypes,
                suffix: """
                    ON CONFLICT (shard, link_key, customer_id) DO UPDATE SET
                        clicks = t.clicks + EXCLUDED.clicks, human_clicks = t.human_clicks + EXCLUDED.human_clicks,
                        first_clicked_at = LEAST(t.first_clicked_at, EXCLUDED.first_clicked_at),
                        last_clicked_at = GREATEST(t.last_clicked_at, EXCLUDED.last_clicked_at)
                    RETURNING t.link_key, t.customer_id, t.human_clicks
                    """), deltas: clickers, humanField: 3)
        // The totals take the unique clickers' change between human_clicks and first_click_at.
        let links = sortedByKey(batch.links.boundRows(Self.linkTypes), keys: 1).map { row in
            Array(row[0..<7]) + [Int64(linkChanges[Self.uuidKey(row[0])] ?? 0).postgresBind()] + Array(row[7...])
        }
        var linkTypes = Self.linkTypes
        linkTypes.insert(PostgresBind.int8, at: 7)
        try insertValues(
            "link_totals",
            "shard, link_key, source_kind, source_id, link_id, url, total_clicks, human_clicks, unique_clickers, first_click_at, last_click_at",
            prefix: shard, rows: links, types: linkTypes,
            suffix: """
                ON CONFLICT (shard, link_key) DO UPDATE SET
                    url = EXCLUDED.url, total_clicks = t.total_clicks + EXCLUDED.total_clicks,
                    human_clicks = t.human_clicks + EXCLUDED.human_clicks, unique_clickers = t.unique_clickers + EXCLUDED.unique_clickers,
                    first_click_at = LEAST(t.first_click_at, EXCLUDED.first_click_at), last_click_at = GREATEST(t.last_click_at, EXCLUDED.last_click_at)
                """)
        try insertValues(
            "link_daily", "shard, link_key, day, total_clicks, human_clicks", prefix: shard,
            rows: sortedByKey(batch.daily.boundRows(Self.dailyTypes), keys: 2), types: Self.dailyTypes,
            suffix: """
                ON CONFLICT (shard, link_key, day) DO UPDATE SET
                    total_clicks = t.total_clicks + EXCLUDED.total_clicks, human_clicks = t.human_clicks + EXCLUDED.human_clicks
                """)
        try insertValues(
            "source_hourly", "shard, source_key, hour, delivered, total_clicks, human_clicks", prefix: shard,
            rows: sortedByKey(batch.hourly.boundRows(Self.hourlyTypes), keys: 2), types: Self.hourlyTypes,
            suffix: """
                ON CONFLICT (shard, source_key, hour) DO UPDATE SET
                    delivered = t.delivered + EXCLUDED.delivered, total_clicks = t.total_clicks + EXCLUDED.total_clicks,
                    human_clicks = t.human_clicks + EXCLUDED.human_clicks
                """)
        try insertValues(
            "bot_daily", "shard, source_key, day, bot_reason, clicks", prefix: shard,
            rows: sortedByKey(batch.botDaily.boundRows(Self.botDailyTypes), keys: 3), types: Self.botDailyTypes,
            suffix: "ON CONFLICT (shard, source_key, day, bot_reason) DO UPDATE SET clicks = t.clicks + EXCLUDED.clicks")
        let sourceClickers = sortedByKey(batch.sourceClickers.boundRows(Self.sourceClickerTypes), keys: 2)
        let returned = try insertValues(
            "source_clickers", "shard, source_key, customer_id, human_clicks", prefix: shard, rows: sourceClickers,
            types: Self.sourceClickerTypes,
            suffix: """
                ON CONFLICT (shard, source_key, customer_id) DO UPDATE SET human_clicks = t.human_clicks + EXCLUDED.human_clicks
                RETURNING t.source_key, t.customer_id, t.human_clicks
                """)
        let sourceChanges = distinctChanges(returned, deltas: sourceClickers, humanField: 2)
        let sources = sortedByKey(batch.sources.boundRows(Self.sourceTypes), keys: 1).map { row in
            Array(row[0..<5]) + [Int64(sourceChanges[Self.uuidKey(row[0])] ?? 0).postgresBind()] + Array(row[5...])
        }
        var sourceTypes = Self.sourceTypes
        sourceTypes.insert(PostgresBind.int8, at: 5)
        try insertValues(
            "source_totals", "shard, source_key, source_kind, source_id, delivered, total_clicks, clicked_customers, human_clicks",
            prefix: shard, rows: sources, types: sourceTypes,
            suffix: """
                ON CONFLICT (shard, source_key) DO UPDATE SET
                    delivered = t.delivered + EXCLUDED.delivered, total_clicks = t.total_clicks + EXCLUDED.total_clicks,
                    clicked_customers = t.clicked_customers + EXCLUDED.clicked_customers, human_clicks = t.human_clicks + EXCLUDED.human_clicks
                """)
        // A source clicker row exists while its human clicks are more than 0.
        let emptied = returned.filter { ($0[2].flatMap { Int64($0) } ?? 1) <= 0 }
        if !emptied.isEmpty {
            var parameters: [(any PostgresBindable)?] = []
            var pairs: [String] = []
            for row in emptied {
                parameters.append(row[0] ?? "")
                parameters.append(row[1] ?? "")
                pairs.append("($\(parameters.count - 1)::uuid, $\(parameters.count))")
            }
            try db.query(
                """
                DELETE FROM \(schema).source_clickers WHERE shard = \(batch.shard) AND human_clicks <= 0
                AND (source_key, customer_id) IN (\(pairs.joined(separator: ", ")))
                """, parameters)
        }
    }

    /// Per key (the uuid text), the change of a distinct count from the rows a clicker
    /// upsert returned (key, customer id, the new human clicks) and the deltas it was given
    /// (`humanField`: their human-clicks field): +1 for each clicker that went from 0 to
    /// more, -1 for each that went from more to 0 (as `distinctChange` in SQL).
    func distinctChanges(_ returned: [[String?]], deltas: [[PostgresBind?]], humanField: Int) -> [String: Int64] {
        var delta: [String: [String: Int64]] = [:]
        for row in deltas {
            let human = row[humanField].map { Int64(bigEndianBytes: $0.bytes) } ?? 0
            delta[Self.uuidKey(row[0]), default: [:]][row[1].map { String(decoding: $0.bytes, as: UTF8.self) } ?? ""] = human
        }
        var changes: [String: Int64] = [:]
        for row in returned {
            guard let key = row[0], let customer = row[1], let now = row[2].flatMap({ Int64($0) }) else { continue }
            let before = now - (delta[key]?[customer] ?? 0)
            if now > 0 && before <= 0 { changes[key, default: 0] += 1 }
            if now <= 0 && before > 0 { changes[key, default: 0] -= 1 }
        }
        return changes
    }

    /// Rows ordered by the bytes of their first `keys` fields.
    func sortedByKey(_ rows: [[PostgresBind?]], keys: Int) -> [[PostgresBind?]] {
        rows.sorted { a, b in
            for i in 0..<keys {
                let (x, y) = (a[i]?.bytes ?? [], b[i]?.bytes ?? [])
                if x != y { return x.lexicographicallyPrecedes(y) }
            }
            return false
        }
    }

    /// A uuid field as the server prints it (RETURNING's text).
    static func uuidKey(_ field: PostgresBind?) -> String { LogID.uuidText(field?.bytes ?? []) }
}

extension Int64 {
    init(bigEndianBytes bytes: [UInt8]) {
        var value: UInt64 = 0
        for byte in bytes.prefix(8) { value = value << 8 | UInt64(byte) }
        self = Int64(bitPattern: value)
    }
}

/// A bound field is sent as it is.
extension PostgresBind: PostgresBindable {
    public func postgresBind() -> PostgresBind { self }
}
