import ClickdTestSupport
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
        #expect(views == ["activity", "link_clickers", "link_clicks", "message_stats"])
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
        try db.query("""
            INSERT INTO clickd_internal.source_totals (source_kind, source_id, delivered, total_clicks)
            VALUES ('campaign', '17', 4, 3)
            """)
        try db.query("""
            INSERT INTO clickd_internal.link_clickers (source_kind, source_id, link_id, customer_id, clicks, human_clicks)
            VALUES ('campaign', '17', 'l1', 'a', 1, 1), ('campaign', '17', 'l2', 'a', 1, 1), ('campaign', '17', 'l1', 'b', 1, 0)
            """)
        try db.execute("SET ROLE clickd_analyst")
        #expect(try db.query("SELECT delivered, clicked_customers, total_clicks, click_rate FROM clickd.message_stats")
                == [["4", "1", "3", "0.250000"]])
        for forbidden in ["SELECT * FROM clickd_internal.activity", "SELECT * FROM clickd_internal.checkpoints",
                          "INSERT INTO clickd.activity (customer_id) VALUES ('x')", "DELETE FROM clickd.link_clicks",
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

