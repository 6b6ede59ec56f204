import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Foundation
import LinkTracking
import Logging
import Testing

@testable import Projections

/// Ingestion with several workers, each owning a set of shards (docs/design/sharding.md).
@Suite(.ownThreads) struct WorkersTests {
    typealias I = IngestTests

    /// Two logs of generated records (bots, bursts, repeats, poison records), the second
    /// with customers of its own and some shared with the first.
    static func records(seed: UInt64) -> [[[UInt8]]] {
        var second = burstyRecords(events: 6_000, seed: seed + 1)
        second.insert(EventCodec.encode(I.click(1, customer: "ü-shared", delivery: "dx", link: "L9", sourceID: "s1")), at: 10)
        return [burstyRecords(events: 9_000, seed: seed), second]
    }

    /// `IngestTests.generatedRecords`' mix, and every 40 events a scanner's burst: one
    /// delivery's links opened 3–5 at a time within a second (some batches cut through them).
    static func burstyRecords(events: Int, seed: UInt64) -> [[UInt8]] {
        I.generatedRecords(events: events, seed: seed, burstEvery: 40)
    }

    /// Appends records to a log (a writer opened on the existing log, as a restarted edge does).
    static func append(_ records: ArraySlice<[UInt8]>, to path: String) async throws {
        var configuration = EventLogConfiguration()
        configuration.sync = .none
        configuration.segmentSize = 256 << 10
        let writer = try EventLogWriter(directory: path, configuration: configuration, logger: I.quiet)
        for record in records { _ = try await writer.append(record) }
        writer.close()
    }

    /// What the analysts see, and the write-time distinct counts checked against the rows
    /// they count (in joins, not correlated subqueries: Citus plans these too).
    static func views(_ url: String) throws -> [[String?]] {
        let snapshot =
            try I.snapshot(url) + I.rows(url, "SELECT * FROM clickd.link_clicks_daily ORDER BY 1, 2, 3, 4")
            + I.rows(url, "SELECT * FROM clickd.source_clicks_hourly ORDER BY 1, 2, 3")
            + I.rows(url, "SELECT * FROM clickd.bot_clicks_daily ORDER BY 1, 2, 3, 4")
        // The rollups of migration 0006 say what the activity rows say: per source and hour,
        // and per source, day and bot reason.
        #expect(
            try I.rows(
                url,
                """
                SELECT source_kind, source_id, hour FROM (
                    SELECT source_kind, source_id, hour, delivered AS d, total_clicks AS t, human_clicks AS h
                    FROM clickd.source_clicks_hourly WHERE (delivered, total_clicks, human_clicks) <> (0, 0, 0)) s
                FULL JOIN (
                    SELECT source_kind, source_id, date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
                           count(*) FILTER (WHERE kind = 'delivered') AS d, count(*) FILTER (WHERE kind = 'clicked_link') AS t,
                           count(*) FILTER (WHERE human) AS h
                    FROM clickd.activity GROUP BY 1, 2, 3) a USING (source_kind, source_id, hour)
                WHERE (s.d, s.t, s.h) IS DISTINCT FROM (a.d, a.t, a.h)
                """) == [])
        // A source's all-time clicks and human clicks (migration 0007), likewise.
        #expect(
            try I.rows(
                url,
                """
                SELECT source_kind, source_id FROM clickd.message_stats m
                FULL JOIN (
                    SELECT source_kind, source_id, count(*) FILTER (WHERE kind = 'clicked_link') AS t, count(*) FILTER (WHERE human) AS h
                    FROM clickd.activity GROUP BY 1, 2) a USING (source_kind, source_id)
                WHERE (m.total_clicks, m.human_clicks) IS DISTINCT FROM (a.t, a.h)
                """) == [])
        #expect(
            try I.rows(
                url,
                """
                SELECT source_kind, source_id, day, bot_reason FROM (
                    SELECT source_kind, source_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, bot_reason, count(*) AS clicks
                    FROM clickd.activity WHERE kind = 'clicked_link' AND NOT human GROUP BY 1, 2, 3, 4) a
                FULL JOIN clickd.bot_clicks_daily b USING (source_kind, source_id, day, bot_reason)
                WHERE a.clicks IS DISTINCT FROM b.clicks
                """) == [])
        #expect(
            try I.rows(
                url,
                """
                SELECT l.source_kind, l.source_id, l.link_id FROM clickd.link_clicks l
                LEFT JOIN (SELECT source_kind, source_id, link_id, count(*) AS clickers FROM clickd.link_clickers
                           WHERE human_clicks > 0 GROUP BY 1, 2, 3) c USING (source_kind, source_id, link_id)
                WHERE l.unique_clickers <> coalesce(c.clickers, 0)
                """) == [])
        #expect(
            try I.rows(
                url,
                """
                SELECT m.source_kind, m.source_id FROM clickd.message_stats m
                LEFT JOIN (SELECT source_kind, source_id, count(DISTINCT customer_id) AS customers FROM clickd.link_clickers
                           WHERE human_clicks > 0 GROUP BY 1, 2) c USING (source_kind, source_id)
                WHERE m.clicked_customers <> coalesce(c.customers, 0)
                """) == [])
        #expect(
            try I.rows(
                url,
                """
                SELECT l.source_kind, l.source_id, l.link_id FROM clickd.link_clicks l
                LEFT JOIN (SELECT source_kind, source_id, link_id, sum(total_clicks) AS total, sum(human_clicks) AS human
                           FROM clickd.link_clicks_daily GROUP BY 1, 2, 3) d USING (source_kind, source_id, link_id)
                WHERE (d.total, d.human) IS DISTINCT FROM (l.total_clicks::numeric, l.human_clicks::numeric)
                """) == [])
        // Opens (migration 0010), likewise: per source and hour, per source all time, per
        // source, day and reason; the openers and their distinct count, a human click
        // counting as an open, so never fewer opened than clicked customers.
        let personsOpen = "(kind = 'opened_email' AND (open_reason IS NULL OR open_reason = 'image_proxy')) OR (kind = 'clicked_link' AND human)"
        #expect(
            try I.rows(
                url,
                """
                SELECT source_kind, source_id, hour FROM (
                    SELECT source_kind, source_id, hour, total_opens AS o, person_opens AS p
                    FROM clickd.source_clicks_hourly WHERE (total_opens, person_opens) <> (0, 0)) s
                FULL JOIN (
                    SELECT source_kind, source_id, date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour,
                           count(*) AS o, count(*) FILTER (WHERE open_reason IS NULL OR open_reason = 'image_proxy') AS p
                    FROM clickd.activity WHERE kind = 'opened_email' GROUP BY 1, 2, 3) a USING (source_kind, source_id, hour)
                WHERE (s.o, s.p) IS DISTINCT FROM (a.o, a.p)
                """) == [])
        #expect(
            try I.rows(
                url,
                """
                SELECT source_kind, source_id FROM clickd.message_stats m
                FULL JOIN (
                    SELECT source_kind, source_id, count(*) FILTER (WHERE kind = 'opened_email') AS o,
                           count(*) FILTER (WHERE open_reason IN ('apple_mpp', 'scanner', 'prefetch')) AS machine,
                           count(DISTINCT customer_id) FILTER (WHERE \(personsOpen)) AS opened
                    FROM clickd.activity GROUP BY 1, 2) a USING (source_kind, source_id)
                WHERE (m.total_opens, m.machine_opens, m.opened_customers) IS DISTINCT FROM (a.o, a.machine, a.opened)
                   OR m.opened_customers < m.clicked_customers
                """) == [])
        #expect(
            try I.rows(
                url,
                """
                SELECT source_kind, source_id, day, reason FROM (
                    SELECT source_kind, source_id, (occurred_at AT TIME ZONE 'UTC')::date AS day, open_reason AS reason, count(*) AS opens
                    FROM clickd.activity WHERE kind = 'opened_email' AND open_reason IS NOT NULL GROUP BY 1, 2, 3, 4) a
                FULL JOIN clickd.opens_daily_by_reason b USING (source_kind, source_id, day, reason)
                WHERE a.opens IS DISTINCT FROM b.opens
                """) == [])
        #expect(
            try I.rows(
                url,
                """
                SELECT source_kind, source_id, customer_id FROM clickd.source_openers o
                FULL JOIN (
                    SELECT source_kind, source_id, customer_id, count(*) AS opens FROM clickd.activity
                    WHERE \(personsOpen) GROUP BY 1, 2, 3) a USING (source_kind, source_id, customer_id)
                WHERE o.opens IS DISTINCT FROM a.opens
                """) == [])
        return snapshot
    }

    /// The function shape (`WriteShape.function`: a whole batch in one call of
    /// clickd_ingest.apply_batch, Citus's default) writes, on PostgreSQL, exactly what the
    /// temporary-table shape writes: two logs of bots, bursts (whose corrections take
    /// clickers back to 0 and remove source clickers) and poison records (isolated in
    /// halves down to dead letters), in small batches with 2 workers. So every CI run tests
    /// the function's SQL and arithmetic; make test-citus runs it on the cluster. A shape
    /// that does not exist is refused in one line.
    @Test func theFunctionShapeWritesWhatTheTemporaryTablesWrite() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let logs = [dir.appending("a"), dir.appending("b")]
        for (records, log) in zip(Self.records(seed: 83), logs) { try await I.write(records, to: log) }
        let arguments = ["ingest", "--once", "--workers", "2", "--batch-size", "257"] + logs.flatMap { ["--log", $0] }
        let (tables, function) = (try I.database(), try I.database())
        let a = try ChildProcess.clickd(arguments + ["--database", tables], environment: ["CLICKD_INGEST_SHAPE": "tables"])
        let b = try ChildProcess.clickd(arguments + ["--database", function], environment: ["CLICKD_INGEST_SHAPE": "function"])
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
        let (want, got) = (try Self.views(tables), try Self.views(function))
        #expect(want.count > 1000)
        #expect(try I.rows(function, "SELECT count(DISTINCT open_reason) FROM clickd.activity") == [["4"]])
        let differs = got != want
        #expect(
            !differs, "the function shape differs: \(Set(got).symmetricDifference(Set(want)).prefix(5)) (\(got.count) rows, \(want.count) wanted)")
        #expect(try I.rows(function, "SELECT count(*) FROM clickd_internal.source_clickers WHERE human_clicks <= 0") == [["0"]])
        let dead = "SELECT shard, log_id, lsn, error FROM clickd_internal.dead_letters ORDER BY 1, 2, 3"
        #expect(try I.rows(function, dead) == I.rows(tables, dead))
        #expect(try I.rows(tables, "SELECT count(*) > 0 FROM clickd_internal.dead_letters") == [["t"]])
        let checkpoints = "SELECT shard, log_id, lsn, window_start FROM clickd_internal.checkpoints ORDER BY 1, 2"
        #expect(try I.rows(function, checkpoints) == I.rows(tables, checkpoints))
        #expect(
            try I.rows(function, "SELECT count(*), sum(human_clicks) FROM clickd_internal.link_clickers")
                == I.rows(tables, "SELECT count(*), sum(human_clicks) FROM clickd_internal.link_clickers"))
        let wrong = try ChildProcess.clickd(arguments + ["--database", function], environment: ["CLICKD_INGEST_SHAPE": "values"])
        #expect(wrong.status != 0 && wrong.stderr.contains("CLICKD_INGEST_SHAPE=values: the write shapes are tables and function"), "\(wrong.stderr)")
    }

    /// A batch over the function shape's argument limit is written in the temporary-table
    /// shape instead (COPY streams it; one call is one message, which PostgreSQL caps at
    /// 1 GB): the same rows and checkpoint either way, the temporary tables used only then.
    @Test func aBatchOverTheFunctionsLimitIsCopiedInstead() throws {
        let log = LogID(bytes: Array(0..<16))
        var fold = ProjectionFold()
        let batch = ProjectionFoldTests.fold(
            &fold,
            (0..<40).map { i in
                (UInt64(i + 1), I.click(UInt64(i) * 90_000, customer: "p", delivery: "d\(i)", link: "L\(i % 3)"))
            })
        let shard = ShardFunction.shard(ofCustomer: "p", shards: 32)
        var results: [[[String?]]] = []
        for limit in [ProjectionStore.functionArgumentBytes, 1024] {
            let url = try I.database()
            let db = try PostgresConnection(url)
            var store = ProjectionStore(db, shape: .function)
            store.functionArgumentLimit = limit
            #expect(try store.checkpoint(log, shard: shard, shards: 32).lsn == 0)
            let prepared = store.prepare(batch, log: log, shard: shard, through: 40)
            #expect(prepared.argumentBytes > 1024)
            #expect(try store.begin(prepared, log: log, shards: 32, expected: 0, windowStart: nil) == .applied)
            try store.finish()
            #expect(try store.checkpoint(log, shard: shard, shards: 32).lsn == 40)
            // The temporary tables exist in the session only when the batch was copied.
            #expect(try db.query("SELECT to_regclass('pg_temp.delta_links') IS NOT NULL") == [[limit == 1024 ? "t" : "f"]])
            results.append(try WorkersTests.views(url))
        }
        #expect(results[0] == results[1] && results[0].count > 40)
    }

    /// A worker at the end of its logs waits on their inotify watch (the daemon's follow
    /// loop, instead of sleeping and polling): the wait says "nothing" after its timeout,
    /// with the thread idle, and wakes for a record appended to either log, which the next
    /// drain projects.
    @Test func aWorkerWaitsForRecordsOfAnyOfItsLogs() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let logs = [dir.appending("a"), dir.appending("b")]
        let generated = (0..<2).map { I.generatedRecords(events: 50, seed: UInt64($0)) }
        for (records, log) in zip(generated, logs) { try await Self.append(records[...], to: log) }
        let total = generated.map(\.count).reduce(0, +)
        let url = try I.database()
        let box = HandOff(
            try ShardWorker(logDirectories: logs, shardCount: 32, shards: Array(0..<32), logger: I.quiet) { try PostgresConnection(url) })
        #expect(try box.value.drain() == total)
        let (idle, cpu) = try await onOwnThread { () -> (Bool, Double) in
            let before = threadCPUSeconds()
            let woke = box.value.waitForRecords(timeout: .milliseconds(600))
            return (woke, threadCPUSeconds() - before)
        }
        #expect(!idle)
        #expect(cpu < 0.05, "an idle wait of 600 ms used \(cpu) s of CPU")
        for (i, log) in logs.enumerated().reversed() {
            async let woke = onOwnThread { box.value.waitForRecords(timeout: .seconds(10)) }
            try await Task.sleep(for: .milliseconds(100))
            try await Self.append(
                [EventCodec.encode(I.click(UInt64(9_000_000 + i), customer: "w\(i)", delivery: "dw\(i)", link: "L1"))][...], to: log)
            #expect(try await woke)
            #expect(try box.value.drain() == 1)
        }
        #expect(try I.rows(url, "SELECT count(*) FROM clickd.activity")[0][0] == "\(total + 2)")
    }

    /// The same two logs ingested with 1, 2 and 5 workers, in small batches, each run
    /// stopped and started again (a new ingestor, as a restarted daemon) at random LSNs
    /// while the logs grow: the views equal, row for row, one run with one worker.
    @Test func anyNumberOfWorkersWithRestartsGivesTheSameViews() async throws {
        let logs = Self.records(seed: 41)
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // The reference: whole logs, one worker, one run.
        let whole = [dir.appending("ref-a"), dir.appending("ref-b")]
        for (path, records) in zip(whole, logs) { try await Self.append(records[...], to: path) }
        let reference = try I.database()
        try Ingestor(logDirectories: whole, workers: 1, logger: I.quiet) { try PostgresConnection(reference) }.drain()
        let expected = try Self.views(reference)
        #expect(expected.count > 2000)
        #expect(try I.rows(reference, "SELECT count(*) FROM clickd.activity WHERE bot_reason = 'burst'")[0][0].flatMap { Int($0) } ?? 0 > 50)

        var rng = SplitMix64(seed: 1234)
        for workers in [1, 2, 5] {
            let paths = [dir.appending("w\(workers)-a"), dir.appending("w\(workers)-b")]
            let url = try I.database()
            var written = [0, 0]
            for round in 0..<4 {
                for (i, records) in logs.enumerated() {
                    let end = round == 3 ? records.count : Int.random(in: written[i]...records.count, using: &rng)
                    try await Self.append(records[written[i]..<end], to: paths[i])
                    written[i] = end
                }
                let ingestor = try Ingestor(
                    logDirectories: paths, batchSize: Int.random(in: 7...300, using: &rng), workers: workers,
                    logger: I.quiet
                ) { try PostgresConnection(url) }
                try ingestor.drain()
            }
            #expect(try Self.views(url) == expected, "\(workers) workers")
            let status = try Ingestor(logDirectories: paths, logger: I.quiet) { try PostgresConnection(url) }.status()
            #expect(status.map(\.checkpoint) == logs.map { UInt64($0.count) })
        }
    }

    /// PostgreSQL's stand-in for Citus: every sharded table turned into a table
    /// hash-partitioned on `shard`, a trigger recording each written row's transaction and
    /// shard; ingesting two logs with two workers writes one shard per transaction, and the
    /// views equal those of an unpartitioned run.
    @Test func everyIngestTransactionWritesOneShard() async throws {
        let logs = Self.records(seed: 7)
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let paths = [dir.appending("a"), dir.appending("b")]
        for (path, records) in zip(paths, logs) { try await Self.append(records[...], to: path) }
        let plain = try I.database()
        try Ingestor(logDirectories: paths, batchSize: 200, workers: 2, logger: I.quiet) { try PostgresConnection(plain) }.drain()

        let url = try I.database()
        let db = try PostgresConnection(url)
        defer { db.close() }
        let tables = try db.query(
            """
            SELECT c.table_name FROM information_schema.columns c JOIN pg_class r ON r.oid = ('clickd_internal.' || c.table_name)::regclass
            WHERE c.table_schema = 'clickd_internal' AND c.column_name = 'shard' AND NOT r.relispartition ORDER BY 1
            """
        ).compactMap { $0[0] }
        #expect(
            tables == [
                "activity", "bot_daily", "checkpoints", "dead_letters", "link_clickers", "link_daily", "link_totals", "open_daily",
                "source_clickers", "source_hourly", "source_openers", "source_totals",
            ])
        try db.execute(
            """
            CREATE TABLE public.shard_writes (txid bigint NOT NULL, tbl text NOT NULL, shard integer NOT NULL);
            CREATE FUNCTION public.record_shard_write() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                INSERT INTO public.shard_writes VALUES (txid_current(), TG_TABLE_NAME, CASE WHEN TG_OP = 'DELETE' THEN OLD.shard ELSE NEW.shard END);
                RETURN NULL;
            END $$;
            """)
        try db.execute("BEGIN; SET LOCAL search_path = pg_catalog")
        let views = try db.query(
            """
            SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'clickd' AND c.relkind = 'v'
            """)
        // Activity is partitioned by month already (migration 0012): its trigger alone.
        try db.execute(
            """
            CREATE TRIGGER record_shard_write AFTER INSERT OR UPDATE OR DELETE ON clickd_internal.activity
            FOR EACH ROW EXECUTE FUNCTION public.record_shard_write()
            """)
        for table in tables where table != "activity" {
            try db.execute(
                """
                ALTER TABLE clickd_internal.\(table) RENAME TO \(table)_plain;
                CREATE TABLE clickd_internal.\(table) (LIKE clickd_internal.\(table)_plain INCLUDING ALL) PARTITION BY HASH (shard);
                """)
            for remainder in 0..<4 {
                try db.execute(
                    "CREATE TABLE clickd_internal.\(table)_p\(remainder) PARTITION OF clickd_internal.\(table) FOR VALUES WITH (MODULUS 4, REMAINDER \(remainder))"
                )
            }
            try db.execute(
                """
                CREATE TRIGGER record_shard_write AFTER INSERT OR UPDATE OR DELETE ON clickd_internal.\(table)
                FOR EACH ROW EXECUTE FUNCTION public.record_shard_write()
                """)
        }
        for view in views {
            try db.execute("CREATE OR REPLACE VIEW clickd.\(view[0]!) AS \(view[1]!)")
        }
        for table in tables where table != "activity" { try db.execute("DROP TABLE clickd_internal.\(table)_plain") }
        try db.execute("COMMIT")
        #expect(
            try db.query(
                "SELECT count(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'clickd_internal'"
            )
                == [["\(tables.count)"]])

        try Ingestor(logDirectories: paths, batchSize: 200, workers: 2, logger: I.quiet) { try PostgresConnection(url) }.drain()
        #expect(try Self.views(url) == Self.views(plain))
        let writes = try db.query("SELECT count(*), count(DISTINCT txid) FROM public.shard_writes")[0]
        #expect((writes[0].flatMap { Int($0) } ?? 0) > 20_000, "\(writes)")
        #expect((writes[1].flatMap { Int($0) } ?? 0) > 100, "\(writes)")
        let mixed = try db.query(
            """
            SELECT txid, array_agg(DISTINCT shard), array_agg(DISTINCT tbl) FROM public.shard_writes GROUP BY txid HAVING count(DISTINCT shard) > 1 LIMIT 5
            """)
        #expect(mixed == [], "transactions that wrote more than one shard: \(mixed)")
    }
}
