import ClickdTestSupport
import EventLog
import Foundation
import Testing

@testable import Projections

/// `clickd migrate` against a real PostgreSQL started by the harness.
@Suite struct MigrationTests {
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
        #expect(views == ["activity", "link_clickers", "link_clicks", "link_clicks_daily", "message_stats"])
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
            try db.query("""
                INSERT INTO clickd_internal.link_totals (source_kind, source_id, link_id, url, total_clicks, human_clicks, first_click_at, last_click_at)
                VALUES ($1, $2, $3, 'https://a.example/' || $3, 2, 1, '2026-11-01T10:00:00Z', '2026-11-01T11:00:00Z')
                """, [kind, source, link])
            try db.query("""
                INSERT INTO clickd_internal.link_clickers (source_kind, source_id, link_id, customer_id, clicks, human_clicks, first_clicked_at, last_clicked_at)
                VALUES ($1, $2, $3, 'a', 1, 1, '2026-11-01T10:00:00Z', '2026-11-01T11:00:00Z'), ($1, $2, $3, 'b', 1, 0, NULL, NULL)
                """, [kind, source, link])
        }
        try db.query("""
            INSERT INTO clickd_internal.source_totals
            VALUES ('campaign', '17', 4, 2), ('campaign', 'a', 1, 2), ('campaign', 'ab', 0, 2), ('newsletter', 'é,1:x', 3, 2)
            """)
        let queries = ["SELECT * FROM clickd.link_clickers ORDER BY 1, 2, 3, 4", "SELECT * FROM clickd.link_clicks ORDER BY 1, 2, 3",
                       "SELECT * FROM clickd.message_stats ORDER BY 1, 2"]
        let before = try queries.map { try db.query($0) }
        #expect(before[0].count == 8 && before[2].count == 4)
        let upgraded = try ChildProcess.clickd(["migrate", "--database", url, "--migrations", Self.migrations])
        #expect(upgraded.status == 0 && upgraded.stdout.contains("0004_clicker_link_keys.sql"), "\(upgraded.stderr)")
        let after = try queries.map { try db.query($0) }
        #expect(after == before)
        for (kind, source, link) in links {
            let number = ProjectionBatch.LinkKey(sourceKind: kind, sourceID: source, linkID: link).number
            #expect(try db.query("SELECT DISTINCT link_key::text FROM clickd_internal.link_totals WHERE (source_kind, source_id, link_id) = ($1, $2, $3)",
                                 [kind, source, link]) == [[number]])
            #expect(try db.query("SELECT count(*) FROM clickd_internal.link_clickers WHERE link_key = $1", [number]) == [["2"]])
        }
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
        try db.query("""
            INSERT INTO clickd_internal.source_totals (shard, source_key, source_kind, source_id, delivered, total_clicks, clicked_customers)
            VALUES (0, $1, 'campaign', '17', 3, 2, 1), (1, $1, 'campaign', '17', 1, 1, 0)
            """, [source])
        let l1 = ProjectionBatch.LinkKey(sourceKind: "campaign", sourceID: "17", linkID: "l1").number
        let l2 = ProjectionBatch.LinkKey(sourceKind: "campaign", sourceID: "17", linkID: "l2").number
        try db.query("""
            INSERT INTO clickd_internal.link_totals (shard, link_key, source_kind, source_id, link_id, url, total_clicks, human_clicks, unique_clickers)
            VALUES (0, $1, 'campaign', '17', 'l1', 'https://a.example/1', 1, 1, 1), (1, $1, 'campaign', '17', 'l1', 'https://a.example/1', 1, 0, 0),
                   (0, $2, 'campaign', '17', 'l2', 'https://a.example/2', 1, 1, 1)
            """, [l1, l2])
        try db.query("""
            INSERT INTO clickd_internal.link_clickers (shard, link_key, customer_id, clicks, human_clicks)
            VALUES (0, $1, 'a', 1, 1), (0, $2, 'a', 1, 1), (1, $1, 'b', 1, 0)
            """, [l1, l2])
        try db.execute("SET ROLE clickd_analyst")
        #expect(try db.query("SELECT delivered, clicked_customers, total_clicks, click_rate FROM clickd.message_stats")
                == [["4", "1", "3", "0.250000"]])
        #expect(try db.query("SELECT link_id, total_clicks, unique_clickers FROM clickd.link_clicks ORDER BY 1") == [["l1", "2", "1"], ["l2", "1", "1"]])
        #expect(try db.query("SELECT link_id, customer_id, human_clicks FROM clickd.link_clickers ORDER BY 1, 2")
                == [["l1", "a", "1"], ["l1", "b", "0"], ["l2", "a", "1"]])
        for forbidden in ["SELECT * FROM clickd_internal.activity", "SELECT * FROM clickd_internal.checkpoints",
                          "SELECT * FROM clickd_internal.link_daily", "SELECT * FROM clickd_internal.source_clickers",
                          "INSERT INTO clickd.activity (customer_id) VALUES ('x')", "DELETE FROM clickd.activity",
                          "CREATE TABLE clickd.mine (x int)"] {
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

