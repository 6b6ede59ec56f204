import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Foundation
import Testing

@testable import Projections

/// make test-citus asks for the tier.
let citusTierAsked = ProcessInfo.processInfo.environment["CLICKD_TEST_CITUS"] == "1"

/// Tier 3 on a real Citus cluster (docs/scale-out.md, docs/design/citus.md): a coordinator
/// and two workers on this machine (scripts/throwaway-citus), the installed Citus extension.
/// An explicit tier: `make test-citus` (CLICKD_TEST_CITUS=1) runs it, and then it fails —
/// never skips — when Citus is not installed; `make test` leaves it out.
@Suite(.ownThreads, .enabled(if: citusTierAsked, "the Citus tier: make test-citus (CLICKD_TEST_CITUS=1)"))
struct CitusTests {
    typealias I = IngestTests

    /// A migrated database on the cluster; `clickd migrate` lays the tables out itself.
    static func database(_ prefix: String = "c") throws -> (url: String, migrate: CommandResult) {
        let url = try ThrowawayCitus.shared.get().createDatabase("\(prefix)_\(UInt32.random(in: 0...UInt32.max))")
        let migrate = try ChildProcess.clickd(["migrate", "--database", url, "--migrations", I.migrations])
        guard migrate.status == 0 else { throw TestSupportError("migrate failed: \(migrate.stderr)") }
        return (url, migrate)
    }

    /// Every table of `schema` with a `shard` column is distributed by it in the live
    /// checkpoints' co-location group; every other one is a reference table.
    static func expectLaidOut(_ url: String, schema: String = "clickd_internal") throws {
        let misplaced = try I.rows(
            url,
            """
            SELECT c.relname, p.partmethod, p.colocationid
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_dist_partition p ON p.logicalrelid = c.oid
            WHERE n.nspname = '\(schema)' AND c.relkind = 'r' AND NOT (
              CASE WHEN EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'shard')
                   THEN p.partmethod = 'h' AND column_to_column_name(p.logicalrelid, p.partkey) = 'shard'
                        AND p.colocationid = (SELECT colocationid FROM pg_dist_partition WHERE logicalrelid = 'clickd_internal.checkpoints'::regclass)
                   ELSE p.partmethod = 'n' AND p.repmodel = 't' END)
            """)
        #expect(misplaced == [], "tables not laid out for Citus: \(misplaced)")
        // The ingest function is delegated by its shard argument, in the checkpoints' group.
        #expect(
            try I.rows(
                url,
                """
                SELECT o.distribution_argument_index = 0 AND o.colocationid = p.colocationid
                FROM pg_dist_object o, pg_dist_partition p
                WHERE o.objid = 'clickd_ingest.apply_batch'::regproc AND p.logicalrelid = 'clickd_internal.checkpoints'::regclass
                """) == [["t"]])
        #expect(try I.rows(url, "SELECT count(*) > 0 FROM pg_dist_node WHERE noderole = 'primary' AND groupid > 0") == [["t"]])
    }

    static func expectEqualViews(_ url: String, _ reference: String, _ what: String) throws {
        let (got, want) = (try WorkersTests.views(url), try WorkersTests.views(reference))
        let (gotSet, wantSet) = (Set(got), Set(want))
        #expect(
            got == want, "\(what): missing \(want.filter { !gotSet.contains($0) }.prefix(5)) extra \(got.filter { !wantSet.contains($0) }.prefix(5))")
        #expect(want.count > 1000)
    }

    /// `clickd migrate` distributes the tables itself, says where clickd's shards went, and
    /// is idempotent; `clickd ingest` with 1 and 2 workers gives views equal to a plain
    /// PostgreSQL ingest of the same two logs, row for row.
    @Test func migrateLaysOutAndIngestEqualsPlainPostgreSQL() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let logs = [dir.appending("a"), dir.appending("b")]
        for (records, log) in zip(WorkersTests.records(seed: 61), logs) { try await I.write(records, to: log) }
        let reference = try I.database()
        let arguments = logs.flatMap { ["--log", $0] }
        #expect(try ChildProcess.clickd(["ingest", "--once", "--database", reference] + arguments).status == 0)

        for workers in ["1", "2"] {
            let (url, migrate) = try Self.database()
            #expect(migrate.stdout.contains("citus: clickd_internal: checkpoints activity"), "\(migrate.stdout)")
            #expect(migrate.stdout.contains("distributed by shard, co-located (32 Citus shards)"), "\(migrate.stdout)")
            #expect(migrate.stdout.contains("schema_migrations sharding reference tables"), "\(migrate.stdout)")
            let prefix = "citus: clickd's 32 shards by node: "
            let perNode = migrate.stdout.split(separator: "\n").first { $0.hasPrefix(prefix) }?.dropFirst(prefix.count) ?? ""
            let counts = perNode.split(separator: " ").compactMap { $0.split(separator: "=").last.flatMap { Int($0) } }
            #expect(counts.count == 2 && counts.reduce(0, +) == 32, "\(migrate.stdout)")
            try Self.expectLaidOut(url)
            let again = try ChildProcess.clickd(["migrate", "--database", url, "--migrations", I.migrations])
            #expect(again.status == 0 && again.stdout.hasPrefix("up to date") && !again.stdout.contains("placed"), "\(again.stdout)")

            // One worker in the temporary-table shape, two in Citus's default, the function shape.
            let shape = workers == "1" ? "tables" : "function"
            let ingest = try ChildProcess.clickd(
                ["ingest", "--once", "--database", url, "--workers", workers, "--batch-size", "500"] + arguments,
                environment: shape == "tables" ? ["CLICKD_INGEST_SHAPE": shape] : [:])
            #expect(ingest.status == 0, "\(ingest.stderr)")
            try Self.expectEqualViews(url, reference, "--workers \(workers), the \(shape) shape")
            // Every call of the function ran on a worker (Citus delegated it; the nodes
            // count function calls: scripts/throwaway-citus sets track_functions).
            let calls = "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions WHERE schemaname = 'clickd_ingest' AND funcname = 'apply_batch'"
            let onWorkers = try I.rows(url, "SELECT sum(result::bigint) FROM run_command_on_workers($$\(calls)$$)")
            let onCoordinator = try I.rows(url, calls)
            if shape == "function" {
                #expect(
                    onCoordinator == [["0"]] && (Int(onWorkers.first?[0] ?? "") ?? 0) >= 32,
                    "calls: coordinator \(onCoordinator), workers \(onWorkers)")
            }
        }
    }

    /// `clickd erase` on the cluster (the list on the coordinator, each shard's subtraction
    /// routed to its worker): the views equal a plain PostgreSQL database erased alike.
    @Test func erasureEqualsPlainPostgreSQL() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let logs = [dir.appending("a"), dir.appending("b")]
        for (records, log) in zip(WorkersTests.records(seed: 61), logs) { try await I.write(records, to: log) }
        let reference = try I.database()
        let (url, _) = try Self.database()
        let people = ErasureTests.erased + (0..<20).map { "c\($0 * 11)" }
        for database in [reference, url] {
            let arguments = logs.flatMap { ["--log", $0] } + ["--database", database]
            #expect(try ChildProcess.clickd(["ingest", "--once", "--workers", "2"] + arguments).status == 0)
            let erased = try ChildProcess.clickd(["erase"] + arguments + people.flatMap { ["--customer", $0] })
            #expect(erased.status == 0, "\(erased.stderr)")
        }
        try Self.expectEqualViews(url, reference, "after the erasure")
        #expect(try I.rows(url, "SELECT count(*), count(erased_at) FROM clickd.erasures") == [["\(people.count)", "\(people.count)"]])
    }

    /// Activity by month on the cluster: the partitioned table and each month's partition
    /// distributed like the rest (new months made by the writers and the daemon's pass
    /// included), `--activity-retention` dropping the same months with the same rows as on
    /// plain PostgreSQL, and a rebuild from the log agreeing.
    @Test func retentionEqualsPlainPostgreSQL() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let log = dir.appending("log")
        try await I.write(ActivityRetentionTests.spreadRecords(months: 16, events: 6_000, seed: 43), to: log)
        let reference = try I.database()
        let (url, _) = try Self.database()
        for database in [reference, url] {
            let ingest = try ActivityRetentionTests.ingest(log, database, ["--activity-retention", "400d"])
            #expect(ingest.status == 0, "\(ingest.stderr)")
        }
        try Self.expectLaidOut(url)
        let drops = "SELECT partition, range_start, range_end, rows FROM clickd.retention_drops ORDER BY range_start"
        #expect(try I.rows(url, drops) == I.rows(reference, drops))
        #expect(try I.rows(url, drops).count >= 2)
        #expect(try ActivityRetentionTests.aggregates(url) == ActivityRetentionTests.aggregates(reference))
        #expect(try ActivityRetentionTests.activity(url) == ActivityRetentionTests.activity(reference))
        let verify = try RebuildTests.rebuild(["--verify", "--log", log, "--database", url])
        #expect(verify.status == 0 && verify.stdout.contains("the rebuilt projections equal the live ones"), "\(verify.stdout)\(verify.stderr)")
        let rebuilt = try RebuildTests.rebuild(["--log", log, "--database", url])
        #expect(rebuilt.status == 0, "\(rebuilt.stderr)")
        try Self.expectLaidOut(url)
        #expect(try ActivityRetentionTests.activity(url) == ActivityRetentionTests.activity(reference))
    }

    /// kill -9 of a two-worker daemon at random moments while it ingests into the cluster,
    /// then a `--once` run: the same views as one plain PostgreSQL run (nothing lost, nothing
    /// counted twice: Citus commits a transaction on its one worker, or not at all).
    @Test func kill9OfADaemonLosesNothing() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (log, reference) = try await I.logAndReference(dir, events: 30_000, seed: 67)
        let (url, _) = try Self.database()
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<8 {
            let child = try ChildProcess.startClickd(["ingest", "--log", log, "--database", url, "--batch-size", "700", "--workers", "2"])
            usleep(UInt32.random(in: 200_000...900_000, using: &rng))
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
        }
        let mid = try I.rows(url, "SELECT count(*) FROM clickd.activity")
        #expect(Int(mid.first?[0] ?? "") ?? 0 > 0, "the daemon projected nothing before it was killed")
        let once = try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url])
        #expect(once.status == 0, "\(once.stderr)")
        try Self.expectEqualViews(url, reference, "after kill -9")
        // Citus's own two-phase commits of the killed sessions leave nothing prepared on the
        // workers once it has recovered them (its maintenance daemon does so every minute).
        _ = try I.rows(url, "SELECT recover_prepared_transactions()")
        #expect(
            try I.rows(url, "SELECT result FROM run_command_on_workers('SELECT count(*) FROM pg_prepared_xacts')") == [["0"], ["0"]])
    }

    /// `clickd rebuild --verify`, a rebuild while a daemon follows a growing log, and a
    /// re-shard (migrate --shards 64 + rebuild) on the cluster: the shadow tables are
    /// distributed beside the live ones, the swap is one Citus accepts, and the views equal
    /// a plain PostgreSQL ingest; the analysts keep their rights.
    @Test func rebuildAndReshard() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let all = WorkersTests.burstyRecords(events: 16_000, seed: 71)
        let log = dir.appending("log")
        try await WorkersTests.append(all[..<8_000], to: log)
        let (url, _) = try Self.database()
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url, "--workers", "2"]).status == 0)

        let clean = try RebuildTests.rebuild(["--verify", "--log", log, "--database", url])
        #expect(clean.status == 0 && clean.stdout.contains("the rebuilt projections equal the live ones"), "\(clean.stdout)\(clean.stderr)")
        _ = try I.rows(
            url,
            """
            UPDATE clickd_internal.link_totals SET total_clicks = total_clicks + 5
            WHERE (shard, link_key) = (SELECT shard, link_key FROM clickd_internal.link_totals ORDER BY shard, link_key LIMIT 1)
            """)
        let tampered = try RebuildTests.rebuild(["--verify", "--log", log, "--database", url])
        #expect(tampered.status == 1 && tampered.stdout.split(separator: "\n").count == 2, "\(tampered.stdout)\(tampered.stderr)")

        let daemon = try ChildProcess.startClickd(["ingest", "--log", log, "--database", url, "--workers", "2", "--batch-size", "300"])
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        try await WorkersTests.append(all[8_000..<12_000], to: log)
        let rebuilt = try RebuildTests.rebuild(["--log", log, "--database", url])
        #expect(rebuilt.status == 0, "\(rebuilt.stderr)")
        try Self.expectLaidOut(url)

        let migrate = try ChildProcess.clickd(["migrate", "--database", url, "--migrations", I.migrations, "--shards", "64"])
        #expect(migrate.stdout.contains("clickd rebuild will rebuild them with 64"), "\(migrate.stdout)")
        try await WorkersTests.append(all[12_000...], to: log)
        let resharded = try RebuildTests.rebuild(["--log", log, "--database", url])
        #expect(resharded.status == 0, "\(resharded.stderr)")
        #expect(try I.rows(url, "SELECT shards, next_shards FROM clickd_internal.sharding") == [["64", "64"]])
        try Self.expectLaidOut(url)
        #expect(try I.waitUntilProjected(log, url, through: all.count, timeout: 90))
        kill(daemon.processIdentifier, SIGTERM)
        daemon.waitUntilExit()
        #expect(try I.rows(url, "SELECT count(DISTINCT shard) FROM clickd_internal.checkpoints") == [["64"]])
        #expect(try I.rows(url, "SELECT count(*) FROM pg_namespace WHERE nspname IN ('clickd_rebuild', 'clickd_retired')") == [["0"]])

        let reference = try I.database()
        let whole = dir.appending("whole")
        try await WorkersTests.append(all[...], to: whole)
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", whole, "--database", reference]).status == 0)
        try Self.expectEqualViews(url, reference, "after rebuild and re-shard")

        // As a login role granted clickd_analyst (Citus connects to the workers as the
        // querying role itself, so SET ROLE to the NOLOGIN group role cannot reach them).
        let owner = try PostgresConnection(url)
        defer { owner.close() }
        let reader = "reader_\(UInt32.random(in: 0...UInt32.max))"
        try owner.execute("CREATE ROLE \(reader) LOGIN; GRANT clickd_analyst TO \(reader)")
        let user = url.split(separator: " ").first { $0.hasPrefix("user=") } ?? ""
        let db = try PostgresConnection(url.replacingOccurrences(of: String(user), with: "user=\(reader)"))
        defer { db.close() }
        #expect(try db.query("SELECT count(*) > 0 FROM clickd.link_clicks") == [["t"]])
        do {
            try db.query("DELETE FROM clickd_internal.activity")
            Issue.record("the analyst could delete rebuilt rows")
        } catch let error as PostgresError {
            #expect(error.sqlState == "42501")
        }
    }

    /// `clickd report --listen 127.0.0.1:0 --database URL` and the port it listens on.
    static func report(_ url: String) throws -> (Process, LineCollector, Int) {
        let child = Process()
        child.executableURL = URL(fileURLWithPath: RepositoryPaths.product("clickd"))
        child.arguments = ["report", "--listen", "127.0.0.1:0", "--database", url]
        let errors = Pipe()
        child.standardError = errors
        let lines = LineCollector(errors.fileHandleForReading)
        try child.run()
        let listening = try lines.waitFor { $0.contains("report listening") || $0.hasPrefix("clickd: error:") }
        let port = Int(listening.split(separator: " ").first { $0.hasPrefix("report.listen=") }?.split(separator: ":").last ?? "") ?? 0
        return (child, lines, port)
    }

    /// A login role granted clickd_analyst, and `url` with it as the user.
    static func reader(_ url: String) throws -> String {
        let owner = try PostgresConnection(url)
        defer { owner.close() }
        let name = "reader_\(UInt32.random(in: 0...UInt32.max))"
        try owner.execute("CREATE ROLE \(name) LOGIN; GRANT clickd_analyst TO \(name)")
        let user = url.split(separator: " ").first { $0.hasPrefix("user=") } ?? ""
        return url.replacingOccurrences(of: String(user), with: "user=\(name)")
    }

    static func get(_ port: Int, _ target: String) throws -> (status: Int, body: String) {
        let result = try ChildProcess.run("/usr/bin/curl", ["-sS", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(target)"])
        guard result.status == 0, let cut = result.stdout.lastIndex(of: "\n") else { throw TestSupportError("curl \(target): \(result.stderr)") }
        return (Int(result.stdout[result.stdout.index(after: cut)...]) ?? 0, String(result.stdout[..<cut]))
    }

    /// Every report page and CSV the pages link to, crawled from the sources page, answers
    /// on the coordinator as a read-only role, byte for byte what it answers on plain
    /// PostgreSQL holding the same log; a role that can write a shard on a worker is refused.
    @Test func theReportPagesEqualPlainPostgreSQL() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (log, reference) = try await I.logAndReference(dir, events: 12_000, seed: 73)
        let (url, _) = try Self.database("r")
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url, "--workers", "2"]).status == 0)
        let (plain, plainLines, plainPort) = try Self.report(try Self.reader(reference))
        defer { plain.terminate() }
        let readerURL = try Self.reader(url)
        let (citus, citusLines, citusPort) = try Self.report(readerURL)
        defer { citus.terminate() }
        #expect(plainPort > 0 && citusPort > 0, "\(plainLines.lines) \(citusLines.lines)")

        // The generated clicks are on 2026-09-21 (IngestTests.t0).
        let range = "from=2026-09-01&to=2026-09-30"
        // The URL segment is a form (no page links to a result): asked for by hand.
        let segment = "url=https%3A%2F%2Fshop.example.com%2FL%2A&\(range)"
        var queue = [
            "/?\(range)", "/sources.csv?\(range)", "/bots?\(range)", "/bots.csv?\(range)", "/bots/reasons.csv?\(range)",
            "/segments/clicked-link?\(segment)", "/segments/clicked-link.csv?\(segment)",
        ]
        var seen = Set(queue)
        var pages = 0
        var kinds: Set<String> = []
        while let target = queue.first, pages < 60 {
            queue.removeFirst()
            pages += 1
            let (want, got) = (try Self.get(plainPort, target), try Self.get(citusPort, target))
            #expect(want.status == 200, "plain PostgreSQL \(target): \(want.status)")
            #expect(got.status == want.status && got.body == want.body, "\(target): \(got.status) on Citus, \(want.status) on PostgreSQL")
            kinds.insert(String(target.split(separator: "/").first ?? "/"))
            for match in want.body.matches(of: /href="(\/[^"]*)"/) {
                let link = String(match.1).replacingOccurrences(of: "&amp;", with: "&")
                guard !link.hasSuffix(".css"), !link.hasSuffix(".svg"), !seen.contains(link) else { continue }
                seen.insert(link)
                queue.append(link)
            }
        }
        print("citus report pages compared: \(pages)")
        #expect(pages >= 20, "only \(pages) pages reached: \(seen.sorted())")
        for path in ["/sources/", "/people/", "/segments/clicked-link"] {
            #expect(seen.contains { $0.hasPrefix(path) }, "no \(path) page was linked: \(seen.sorted().prefix(20))")
        }

        // INSERT on one shard of one worker, granted behind the coordinator's back.
        let cluster = try ThrowawayCitus.shared.get()
        let database = url.split(separator: " ").first { $0.hasPrefix("dbname=") }.map { String($0.dropFirst(7)) } ?? ""
        let worker = try PostgresConnection(cluster.node(1, database: database))
        defer { worker.close() }
        try worker.execute("SET citus.show_shards_for_app_name_prefixes = '*'")
        let shard =
            try worker.query(
                """
                SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = 'clickd_internal' AND c.relname LIKE 'link\\_daily\\_%' AND c.relkind = 'r' ORDER BY 1 LIMIT 1
                """
            ).first?[0] ?? ""
        #expect(!shard.isEmpty)
        let role = readerURL.split(separator: " ").first { $0.hasPrefix("user=") }.map { String($0.dropFirst(5)) } ?? ""
        try worker.execute("SET citus.enable_ddl_propagation = off; GRANT INSERT ON \(shard) TO \(role)")
        let refused = try ChildProcess.clickd(["report", "--listen", "127.0.0.1:0", "--database", readerURL])
        #expect(refused.status == 1)
        let lines = refused.stderr.split(separator: "\n").filter { !$0.contains("level=") }
        #expect(
            lines.count == 1 && lines[0].contains("has INSERT on \(shard) on Citus worker ") && lines[0].contains("so it can write"),
            "\(refused.stderr)")
    }
}
