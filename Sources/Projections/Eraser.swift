import EventLog
import LinkTracking

/// `clickd erase`: forgets people in the projections (docs/design/erasure.md, 2 and 2a).
///
/// The people are recorded first (`clickd_ingest.erasures`, by the MAC of their id); each
/// log is read once, keeping the records of every pending person (their own, no more). Then
/// each shard holding pending people is erased in one transaction: under its checkpoint
/// locks (no batch of the shard commits meanwhile; their LSNs are the cut), the people's
/// records up to the cut (the log read on to it, when it passed the scan) are folded
/// alone, and that fold is subtracted from
/// every counter — exact, because a person's records change no one else's figures but
/// through sums (`ErasureArithmeticTests`). Their rows are deleted, the rows left at zero
/// removed, the minima and maxima taken again from what stays, and the shard's
/// `erasure_seq` raised, so that a batch folded before the erasure is refused and folded
/// again without them. Idempotent: an erased person's row is skipped, a run cut short
/// leaves whole shards done and the next run does the rest.
public struct Eraser {
    public let db: PostgresConnection
    /// Log directories by log id: every log with projected records must be among them.
    public let logs: [LogID: String]
    /// Where segments the edge's retention removed are read from (`--archive-dir`).
    public let archive: String?

    public struct Report: Sendable, Equatable {
        /// People recorded by this run (not recorded before).
        public var recorded = 0
        /// Shards erased, and the people's records subtracted.
        public var shards = 0
        public var records = 0
    }

    public init(db: PostgresConnection, logDirectories: [String], archive: String? = nil) throws {
        self.db = db
        var logs: [LogID: String] = [:]
        for directory in logDirectories { logs[try LogMetadata.read(directory: directory).logID] = directory }
        self.logs = logs
        self.archive = archive
    }

    public func erase(customers: [String]) throws -> Report {
        let store = ProjectionStore(db)
        let shards = try store.shardCount()
        let key = try store.erasureKey()
        let keyed = ErasureList(key: key, macs: [])
        // Each id's bytes by its MAC.
        let given = Dictionary(customers.map { (keyed.mac(customer: Array($0.utf8)), Array($0.utf8)) }) { a, _ in a }
        var report = Report()
        try db.transaction {
            for (mac, customer) in given {
                report.recorded += try db.query(
                    """
                    INSERT INTO clickd_ingest.erasures (shard, customer_mac) VALUES ($1, $2)
                    ON CONFLICT DO NOTHING RETURNING 1
                    """, [customer.withUnsafeBytes { ShardFunction.shard(ofCustomerBytes: $0, shards: shards) }, mac]
                ).count
            }
        }
        let pending = try pendingLists(key: key)
        // The ids given cover every pending MAC (the usual case, a run again after a kill
        // included): records are matched by their ids' bytes, a hash lookup, and not by a
        // MAC of every record's customer (measured: docs/benchmarks.md, "Erasure").
        let covered = pending.values.allSatisfy { $0.macs.allSatisfy { given[$0] != nil } }
        let ids: Set<[UInt8]>? = covered ? Set(pending.values.flatMap { $0.macs.map { given[$0]! } }) : nil
        var scans: [LogID: Scan] = [:]
        for (log, directory) in logs.sorted(by: { $0.key.description < $1.key.description }) {
            var scan = Scan(
                reader: try LogReader(directory: directory, from: 1, archive: archive), pending: pending, ids: ids, shards: shards)
            try scan.read(through: try scan.reader.durableWatermark())
            scans[log] = scan
        }
        for shard in pending.keys.sorted() {
            report.records += try eraseShard(shard, scanned: pending[shard]!, shards: shards, store: store, scans: &scans)
            report.shards += 1
        }
        return report
    }

    /// The pending people (not yet erased) of each shard.
    private func pendingLists(key: [UInt8]) throws -> [Int: ErasureList] {
        var macs: [Int: Set<[UInt8]>] = [:]
        for row in try db.query("SELECT shard, customer_mac FROM clickd_ingest.erasures WHERE erased_at IS NULL") {
            guard let shard = row[0].flatMap({ Int($0) }), let mac = row[1].flatMap(ProjectionStore.bytea) else { continue }
            macs[shard, default: []].insert(mac)
        }
        return macs.mapValues { ErasureList(key: key, macs: $0) }
    }

    /// One log's records of the pending people, read from its first record on.
    struct Scan {
        let reader: LogReader
        /// The people whose records are kept, by shard (those pending when the run began).
        let pending: [Int: ErasureList]
        /// The pending people's ids, when the run was given every one of them.
        let ids: Set<[UInt8]>?
        let shards: Int
        /// By shard, in LSN order.
        var records: [Int: [(lsn: UInt64, payload: [UInt8])]] = [:]
        /// The last LSN read.
        var end: UInt64 = 0

        init(reader: LogReader, pending: [Int: ErasureList], ids: Set<[UInt8]>?, shards: Int) {
            self.reader = reader
            self.pending = pending
            self.ids = ids
            self.shards = shards
        }

        /// Reads on to `lsn` (or the log's durable end, if that is before it).
        mutating func read(through lsn: UInt64) throws {
            var done = end >= lsn
            while !done {
                var found: [(shard: Int, lsn: UInt64, payload: [UInt8])] = []
                let n = try reader.readWhile(maxRecords: 4096) { at, payload in
                    guard let customer = EventCodec.customerField(payload) else { return at < lsn }
                    if let ids {
                        if ids.contains(Array(customer)) {
                            found.append((ShardFunction.shard(ofRecord: payload, lsn: at, shards: shards), at, Array(payload)))
                        }
                    } else {
                        let shard = ShardFunction.shard(ofRecord: payload, lsn: at, shards: shards)
                        if let list = pending[shard], list.contains(customer: customer) { found.append((shard, at, Array(payload))) }
                    }
                    return at < lsn
                }
                for record in found { records[record.shard, default: []].append((record.lsn, record.payload)) }
                end = reader.nextLSN - 1
                done = n == 0 || end >= lsn
            }
        }
    }

    /// Erases the pending people of one shard in one transaction; returns their records.
    private func eraseShard(
        _ shard: Int, scanned: ErasureList, shards: Int, store: ProjectionStore, scans: inout [LogID: Scan]
    ) throws -> Int {
        try db.transaction {
            // A rebuild replays with the list it loaded at its start: an erasure waits for it
            // (and a rebuild does not start during one).
            _ = try db.query("SELECT pg_advisory_xact_lock($1)", [Rebuilder.lockKey])
            // The shard's people still pending (erasers wait for each other on the lock above)
            // whose records the scans kept: one recorded by another run since is left to it.
            let macs = try db.query(
                "SELECT customer_mac FROM clickd_ingest.erasures WHERE shard = $1 AND erased_at IS NULL", [shard]
            ).compactMap { $0[0].flatMap(ProjectionStore.bytea) }
            let list = ErasureList(key: scanned.key, macs: Set(macs).intersection(scanned.macs))
            if list.isEmpty { return 0 }
            let cuts = try db.query(
                "SELECT log_id, lsn FROM clickd_internal.checkpoints WHERE shard = $1 ORDER BY log_id FOR UPDATE", [shard])
            var theirs = ProjectionBatch()
            var found: [(log: LogID, lsns: [UInt64])] = []
            for row in cuts {
                guard let logText = row[0], let log = LogID(logText), let cut = row[1].flatMap({ UInt64($0) }), cut > 0 else { continue }
                guard scans[log] != nil else {
                    throw PostgresError(
                        sqlState: nil, message: "log \(log) has projected records of shard \(shard): give its directory with --log")
                }
                // Ingestion may have gone past the scan: the log is read on to the cut.
                try scans[log]!.read(through: cut)
                // Folded as ingestion folded them: the records the database refused stay dead letters.
                var fold = ProjectionFold()
                for (lsn, error) in try store.deadLetters(log, shard: shard, from: 1) { fold.refused[lsn] = error }
                var lsns: [UInt64] = []
                for record in scans[log]!.records[shard] ?? [] where record.lsn <= cut {
                    let listed = record.payload.withUnsafeBytes { raw in
                        EventCodec.customerField(raw).map { list.contains(customer: $0) } ?? false
                    }
                    guard listed else { continue }  // erased by another run meanwhile
                    lsns.append(record.lsn)
                    record.payload.withUnsafeBytes { fold.fold(lsn: record.lsn, payload: $0, into: &theirs) }
                }
                if lsns.count > 0 { found.append((log, lsns)) }
            }
            // Subtract their fold from every counter (distinct counts included: a person's
            // count going to 0 takes one from the link's and the source's). The deltas stay
            // in the transaction's temporary tables (delta_links, …): the keys they touched,
            // which the statements below visit and no other row.
            let negated = theirs.negated()
            let prepared = store.prepare(negated, log: LogID(bytes: Array(repeating: 0, count: 16)), shard: shard, through: negated.lastLSN)
            try store.applyCounts(prepared)
            for (log, lsns) in found {
                let array = PostgresBigintArray(lsns)
                try db.query("DELETE FROM clickd_internal.activity WHERE shard = $1 AND log_id = $2 AND lsn = ANY($3)", [shard, log, array])
                try db.query("DELETE FROM clickd_internal.dead_letters WHERE shard = $1 AND log_id = $2 AND lsn = ANY($3)", [shard, log, array])
            }
            try db.execute(Self.afterSubtraction(shard: shard, batch: prepared))
            try db.query("UPDATE clickd_internal.checkpoints SET erasure_seq = erasure_seq + 1 WHERE shard = $1", [shard])
            for mac in list.macs { try db.query("UPDATE clickd_ingest.erasures SET erased_at = now() WHERE customer_mac = $1", [mac]) }
            return found.reduce(0) { $0 + $1.lsns.count }
        }
    }

    /// After the subtraction of `batch`, in its transaction: the rows a log without the
    /// people would not have (every figure 0) deleted, among the keys the deltas touched;
    /// and what is not a sum taken again — a link's first and last click, from the clickers
    /// that stay, and its URL, from the latest of them (found through the clickers' key and
    /// the activity's customer index: the person's own URL may have been the link's).
    static func afterSubtraction(shard: Int, batch: ProjectionStore.PreparedBatch) -> String {
        let t = "clickd_internal"
        var sql = ""
        func zero(_ table: String, _ delta: String, _ key: String, _ zero: String) {
            sql += "DELETE FROM \(t).\(table) t WHERE t.shard = \(shard) AND (\(key)) IN (SELECT \(key) FROM \(delta)) AND \(zero);\n"
        }
        if batch.clickers.rows > 0 { zero("link_clickers", "delta_clickers", "link_key, customer_id", "clicks = 0") }
        if batch.sourceClickers.rows > 0 { zero("source_clickers", "delta_source_clickers", "source_key, customer_id", "human_clicks <= 0") }
        if batch.sourceOpeners.rows > 0 { zero("source_openers", "delta_source_openers", "source_key, customer_id", "opens <= 0") }
        if batch.links.rows > 0 {
            zero("link_totals", "delta_links", "link_key", "total_clicks = 0")
            sql += """
                UPDATE \(t).link_totals t SET first_click_at = m.first, last_click_at = m.last,
                    url = coalesce((
                        SELECT a.url FROM (SELECT customer_id, last_clicked_at FROM \(t).link_clickers
                                           WHERE shard = \(shard) AND link_key = t.link_key ORDER BY last_clicked_at DESC LIMIT 1) c
                        JOIN \(t).activity a ON a.shard = \(shard) AND a.customer_id = c.customer_id AND a.occurred_at = c.last_clicked_at
                        WHERE a.kind = 'clicked_link' AND a.source_kind = t.source_kind AND a.source_id = t.source_id AND a.link_id = t.link_id
                        ORDER BY a.lsn DESC LIMIT 1), t.url)
                FROM (SELECT c.link_key, min(c.first_clicked_at) AS first, max(c.last_clicked_at) AS last
                      FROM \(t).link_clickers c WHERE c.shard = \(shard) AND c.link_key IN (SELECT link_key FROM delta_links)
                      GROUP BY c.link_key) m
                WHERE t.shard = \(shard) AND t.link_key = m.link_key;

                """
        }
        if batch.daily.rows > 0 { zero("link_daily", "delta_daily", "link_key, day", "total_clicks = 0") }
        if batch.botDaily.rows > 0 { zero("bot_daily", "delta_bot_daily", "source_key, day, bot_reason", "clicks = 0") }
        if batch.openDaily.rows > 0 { zero("open_daily", "delta_open_daily", "source_key, day, reason", "opens = 0") }
        if batch.hourly.rows > 0 {
            zero(
                "source_hourly", "delta_hourly", "source_key, hour",
                "delivered = 0 AND total_clicks = 0 AND human_clicks = 0 AND total_opens = 0 AND person_opens = 0")
        }
        if batch.sources.rows > 0 {
            zero(
                "source_totals", "delta_sources", "source_key",
                "delivered = 0 AND total_clicks = 0 AND human_clicks = 0 AND clicked_customers = 0 AND total_opens = 0 AND machine_opens = 0 AND opened_customers = 0"
            )
        }
        return sql
    }
}
