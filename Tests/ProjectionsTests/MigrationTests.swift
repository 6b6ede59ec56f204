import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Foundation
import LinkTracking
import Testing

@testable import Projections

/// `clickd migrate` against a real PostgreSQL started by the harness.
@Suite(.ownThreads) struct MigrationTests {
    static let migrations = RepositoryPaths.root.appendingPathComponent("migrations").path

    func freshDatabase() throws -> String {
        try ThrowawayPostgres.shared.get().createDatabase("m_\(UInt32.random(in: 0...UInt32.max))")
    }

    @Test func freshThenRerunThenTampered() throws {
        let url = try freshDatabase()
        let first = try ChildProcess.clickd(["migrate", "--database", url, "--migrations", Self.migrations])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.hasPrefix("applied: 0001_initial.sql, 0002_checkpoint_window.sql"))
        let again = try ChildProcess.clickd(["migrate", "--database", url, "--migrations", Self.migrations])
        #expect(again.status == 0 && again.stdout.hasPrefix("up to date"))
        let db = try PostgresConnection(url)
        defer { db.close() }
        let views = try db.query("SELECT table_name FROM information_schema.views WHERE table_schema = 'clickd' ORDER BY 1").map { $0[0]! }
        #expect(
            views == [
                "activity", "bot_clicks_daily", "erasures", "link_clickers", "link_clicks", "link_clicks_daily", "message_stats",
                "opens_daily_by_reason", "retention_drops",
                "source_clicks_hourly", "source_openers",
            ])
        // A changed file that was applied is refused, naming it.
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try FileManager.default.copyItem(atPath: Self.migrations, toPath: dir.appending("m"))
        let file = dir.appending("m/0001_initial.sql")
        try (String(contentsOfFile: file, encoding: .utf8) + "\n-- an edit\n").write(toFile: file, atomically: true, encoding: .utf8)
        let tampered = try ChildProcess.clickd(["migrate", "--database", url, "--migrations", dir.appending("m")])
        #expect(tampered.status == 1)
        #expect(tampered.stderr.contains("0001_initial.sql was changed after it was applied"), "\(tampered.stderr)")
        #expect(tampered.stderr.split(separator: "\n").count == 1)
    }

    /// 0004 re-keys the clicker rows by link number: a database projected under 0003 keeps
    /// every clicker row and the same views, and the numbers SQL gave the carried-over links
    /// are the ones the daemon computes (so its next upserts land on the same rows).
    @Test func clickerRowsSurviveTheLinkKeyMigration() throws {
        let url = try freshDatabase()
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.appending("m"), withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: Self.migrations) where name < "0004" && name.hasSuffix(".sql") {
            try FileManager.default.copyItem(atPath: Self.migrations + "/" + name, toPath: dir.appending("m/" + name))
        }
        #expect(try ChildProcess.clickd(["migrate", "--database", url, "--migrations", dir.appending("m")]).status == 0)
        let db = try PostgresConnection(url)
        defer { db.close() }
        let links = [("campaign", "17", "l1"), ("newsletter", "é,1:x", ""), ("campaign", "a", "bc"), ("campaign", "ab", "c")]
        for (kind, source, link) in links {
            // As ingestion makes them: a link's totals are its clickers' sums.
            try db.query(
                """
                INSERT INTO clickd_internal.link_totals (source_kind, source_id, link_id, url, total_clicks, human_clicks, first_click_at, last_click_at)
                VALUES ($1, $2, $3, 'https://a.example/' || $3, 2, 1, '2026-11-01T10:00:00Z', '2026-11-01T11:00:00Z')
                """, [kind, source, link])
            try db.query(
                """
                INSERT INTO clickd_internal.link_clickers (source_kind, source_id, link_id, customer_id, clicks, human_clicks, first_clicked_at, last_clicked_at)
                VALUES ($1, $2, $3, 'a', 1, 1, '2026-11-01T10:00:00Z', '2026-11-01T11:00:00Z'), ($1, $2, $3, 'b', 1, 0, NULL, NULL)
                """, [kind, source, link])
        }
        try db.query(
            """
            INSERT INTO clickd_internal.source_totals
            VALUES ('campaign', '17', 4, 2), ('campaign', 'a', 1, 2), ('campaign', 'ab', 0, 2), ('newsletter', 'é,1:x', 3, 2)
            """)
        // message_stats by the columns it had then (0007 adds human_clicks at the end).
        let queries = [
            "SELECT * FROM clickd.link_clickers ORDER BY 1, 2, 3, 4", "SELECT * FROM clickd.link_clicks ORDER BY 1, 2, 3",
            "SELECT source_kind, source_id, delivered, clicked_customers, total_clicks, click_rate FROM clickd.message_stats ORDER BY 1, 2",
        ]
        let before = try queries.map { try db.query($0) }
        #expect(before[0].count == 8 && before[2].count == 4)
        let upgraded = try ChildProcess.clickd(["migrate", "--database", url, "--migrations", Self.migrations])
        #expect(upgraded.status == 0 && upgraded.stdout.contains("0004_clicker_link_keys.sql"), "\(upgraded.stderr)")
        let after = try queries.map { try db.query($0) }
        #expect(after == before)
        // 0007 fills each source's human clicks from its links': one human click each here.
        #expect(try db.query("SELECT DISTINCT human_clicks FROM clickd.message_stats") == [["1"]])
        for (kind, source, link) in links {
            let number = ProjectionBatch.LinkKey(sourceKind: kind, sourceID: source, linkID: link).number
            #expect(
                try db.query(
                    "SELECT DISTINCT link_key::text FROM clickd_internal.link_totals WHERE (source_kind, source_id, link_id) = ($1, $2, $3)",
                    [kind, source, link]) == [[number]])
            #expect(try db.query("SELECT count(*) FROM clickd_internal.link_clickers WHERE link_key = $1", [number]) == [["2"]])
        }
    }

    /// Rows selected from one database inserted into another, 500 at a time.
    static func transfer(_ from: PostgresConnection, _ select: String, to: PostgresConnection, into table: String) throws -> Int {
        let rows = try from.query(select)
        for start in stride(from: 0, to: rows.count, by: 500) {
            let chunk = rows[start..<min(start + 500, rows.count)]
            let width = chunk.first?.count ?? 0
            var values: [String] = []
            var parameters: [String?] = []
            for row in chunk {
                values.append("(" + (0..<width).map { "$\(parameters.count + $0 + 1)" }.joined(separator: ", ") + ")")
                parameters += row
            }
            try to.query("INSERT INTO \(table) VALUES " + values.joined(separator: ", "), parameters)
        }
        return rows.count
    }

    /// 0005 shards a database projected under 0004: made here from a real ingest (bots,
    /// bursts, repeats, dead letters — one with a NUL in its customer id, whose shard only
    /// clickd can read from its bytes) folded back into 0004's unsharded tables. Its views
    /// read the same before and after; `rebuild --verify` finds the migrated tables equal to
    /// a rebuild from the log; ingestion then goes on from the carried-over checkpoints.
    @Test func anUnshardedDatabaseIsCarriedOver() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // No opens: a database from before migration 0005 cannot have had any (they came in 0010).
        var records = WorkersTests.burstyRecords(events: 8_000, seed: 23).filter { record in
            if case .opened = try? EventCodec.decode(record) { return false }
            return true
        }
        records.insert(EventCodec.encode(IngestTests.click(5, customer: "nul\u{0}id", delivery: "dn", link: "L1", sourceID: "s1")), at: 100)
        let log = dir.appending("log")
        try await WorkersTests.append(records[..<6_000], to: log)
        let sharded = try IngestTests.database()
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", sharded]).status == 0)
        let expected = try WorkersTests.views(sharded)

        let url = try freshDatabase()
        let old = try TemporaryDirectory()
        defer { old.remove() }
        try FileManager.default.createDirectory(atPath: old.appending("m"), withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: Self.migrations) where name < "0005" && name.hasSuffix(".sql") {
            try FileManager.default.copyItem(atPath: Self.migrations + "/" + name, toPath: old.appending("m/" + name))
        }
        #expect(try ChildProcess.clickd(["migrate", "--database", url, "--migrations", old.appending("m")]).status == 0)
        let from = try PostgresConnection(sharded)
        let to = try PostgresConnection(url)
        defer {
            from.close()
            to.close()
        }
        let i = "clickd_internal"
        #expect(
            try Self.transfer(
                from, "SELECT log_id, min(lsn), now(), min(window_start) FROM \(i).checkpoints GROUP BY 1", to: to, into: "\(i).checkpoints") == 1)
        #expect(
            try Self.transfer(
                from,
                """
                SELECT log_id, lsn, customer_id, occurred_at, kind, delivery_id, source_kind, source_id, message_type, link_id, url, human,
                       bot_reason, user_agent, ip FROM \(i).activity
                """, to: to, into: "\(i).activity") > 5_000)
        _ = try Self.transfer(
            from,
            """
            SELECT source_kind, source_id, link_id, min(url), sum(total_clicks), sum(human_clicks), min(first_click_at), max(last_click_at), link_key
            FROM \(i).link_totals GROUP BY link_key, source_kind, source_id, link_id
            """, to: to,
            into: "\(i).link_totals (source_kind, source_id, link_id, url, total_clicks, human_clicks, first_click_at, last_click_at, link_key)")
        _ = try Self.transfer(
            from, "SELECT link_key, customer_id, clicks, human_clicks, first_clicked_at, last_clicked_at FROM \(i).link_clickers",
            to: to, into: "\(i).link_clickers")
        _ = try Self.transfer(
            from, "SELECT source_kind, source_id, sum(delivered), sum(total_clicks) FROM \(i).source_totals GROUP BY 1, 2",
            to: to, into: "\(i).source_totals")
        #expect(
            try Self.transfer(from, "SELECT log_id, lsn, error, payload, recorded_at FROM \(i).dead_letters", to: to, into: "\(i).dead_letters") >= 7)
        // 0004's views over these rows read what the sharded ones read (but the new view).
        let queries = [
            "SELECT * FROM clickd.link_clicks ORDER BY 1, 2, 3", "SELECT * FROM clickd.link_clickers ORDER BY 1, 2, 3, 4",
            "SELECT source_kind, source_id, delivered, clicked_customers, total_clicks, click_rate FROM clickd.message_stats ORDER BY 1, 2",
        ]
        for query in queries { #expect(try to.query(query) == from.query(query), "\(query)") }

        let upgraded = try ChildProcess.clickd(["migrate", "--database", url, "--migrations", Self.migrations])
        #expect(upgraded.status == 0 && upgraded.stdout.contains("0005_shards.sql"), "\(upgraded.stderr)")
        #expect(try WorkersTests.views(url) == expected)
        #expect(
            try to.query("SELECT shard FROM \(i).dead_letters WHERE lsn = 101") == [
                [String(ShardFunction.shard(ofCustomer: "nul\u{0}id", shards: 32))]
            ])
        // Every row equals a rebuild's but the shards' window starts: each got its log's
        // (earlier, or equal: a replay from it rebuilds the same state) ...
        let verify = try ChildProcess.clickd(["rebuild", "--verify", "--log", log, "--database", url])
        let differing = verify.stdout.split(separator: "\n").filter { !$0.hasPrefix("table=checkpoints ") }
        #expect(verify.status == 1 && differing.isEmpty, "\(verify.stdout)\(verify.stderr)")

        // ... until ingestion goes on from them: then nothing differs at all.
        try await WorkersTests.append(records[6_000...], to: log)
        for db in [url, sharded] { #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", db]).status == 0) }
        #expect(try WorkersTests.views(url) == WorkersTests.views(sharded))
        let again = try ChildProcess.clickd(["rebuild", "--verify", "--log", log, "--database", url])
        #expect(again.status == 0, "\(again.stdout)\(again.stderr)")
    }

    @Test func concurrentRunsDoNotRace() throws {
        let url = try freshDatabase()
        let results = Locked<[Int32]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let r = try? ChildProcess.clickd(["migrate", "--database", url, "--migrations", Self.migrations])
            results.mutate { $0.append(r?.status ?? -1) }
        }
        #expect(results.value == [0, 0, 0, 0])
        let db = try PostgresConnection(url)
        defer { db.close() }
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.migrations).filter { $0.hasSuffix(".sql") }.count
        #expect(try db.query("SELECT count(*) FROM clickd_internal.schema_migrations") == [["\(files)"]])
    }

    @Test func analystReadsTheViewsAndNothingElse() throws {
        let url = try freshDatabase()
        #expect(try ChildProcess.clickd(["migrate", "--database", url, "--migrations", Self.migrations]).status == 0)
        let db = try PostgresConnection(url)
        defer { db.close() }
        // Partial rows of two shards, which the views sum.
        let source = LogID.uuidText(ProjectionBatch.SourceKey(sourceKind: "campaign", sourceID: "17").numberBytes)
        try db.query(
            """
            INSERT INTO clickd_internal.source_totals (shard, source_key, source_kind, source_id, delivered, total_clicks, clicked_customers)
            VALUES (0, $1, 'campaign', '17', 3, 2, 1), (1, $1, 'campaign', '17', 1, 1, 0)
            """, [source])
        let l1 = ProjectionBatch.LinkKey(sourceKind: "campaign", sourceID: "17", linkID: "l1").number
        let l2 = ProjectionBatch.LinkKey(sourceKind: "campaign", sourceID: "17", linkID: "l2").number
        try db.query(
            """
            INSERT INTO clickd_internal.link_totals (shard, link_key, source_kind, source_id, link_id, url, total_clicks, human_clicks, unique_clickers)
            VALUES (0, $1, 'campaign', '17', 'l1', 'https://a.example/1', 1, 1, 1), (1, $1, 'campaign', '17', 'l1', 'https://a.example/1', 1, 0, 0),
                   (0, $2, 'campaign', '17', 'l2', 'https://a.example/2', 1, 1, 1)
            """, [l1, l2])
        try db.query(
            """
            INSERT INTO clickd_internal.link_clickers (shard, link_key, customer_id, clicks, human_clicks)
            VALUES (0, $1, 'a', 1, 1), (0, $2, 'a', 1, 1), (1, $1, 'b', 1, 0)
            """, [l1, l2])
        try db.execute("SET ROLE clickd_analyst")
        #expect(
            try db.query("SELECT delivered, clicked_customers, total_clicks, click_rate FROM clickd.message_stats")
                == [["4", "1", "3", "0.250000"]])
        #expect(
            try db.query("SELECT link_id, total_clicks, unique_clickers FROM clickd.link_clicks ORDER BY 1") == [
                ["l1", "2", "1"], ["l2", "1", "1"],
            ])
        #expect(
            try db.query("SELECT link_id, customer_id, human_clicks FROM clickd.link_clickers ORDER BY 1, 2")
                == [["l1", "a", "1"], ["l1", "b", "0"], ["l2", "a", "1"]])
        for forbidden in [
            "SELECT * FROM clickd_internal.activity", "SELECT * FROM clickd_internal.checkpoints",
            "SELECT * FROM clickd_internal.link_daily", "SELECT * FROM clickd_internal.source_clickers",
            "INSERT INTO clickd.activity (customer_id) VALUES ('x')", "DELETE FROM clickd.activity",
            "CREATE TABLE clickd.mine (x int)",
        ] {
            do {
                try db.query(forbidden)
                Issue.record("analyst could run: \(forbidden)")
            } catch let error as PostgresError {
                #expect(error.sqlState == "42501", "\(forbidden): \(error)")
            }
        }
        try db.execute("RESET ROLE")
    }

    @Test func missingDirectoryAndBadDatabaseAreOneLine() throws {
        let r1 = try ChildProcess.clickd(["migrate", "--database", "host=/nonexistent dbname=x", "--migrations", Self.migrations])
        #expect(r1.status == 1 && r1.stderr.contains("cannot connect") && r1.stderr.split(separator: "\n").count == 1)
        let r2 = try ChildProcess.clickd(["migrate", "--migrations", "/nonexistent/migrations"])
        #expect(r2.status == 1 && r2.stderr.contains("migrations directory") && r2.stderr.split(separator: "\n").count == 1)
    }
}
