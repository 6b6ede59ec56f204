import Logging
import NIOPosix
import Projections
import Synchronization

/// The report's way to PostgreSQL: libpq connections (blocking), each used on a thread of
/// its own `NIOThreadPool` — never on an event loop or Swift's cooperative pool. A query
/// borrows a connection for one call and gives it back; a lost connection is dropped and the
/// next call opens a new one, so the report outlives a database restart.
public final class ReportDatabase: Sendable {
    let conninfo: String
    public let pool: NIOThreadPool
    private let idle = Mutex<[Box]>([])

    /// A connection handed between the pool's threads (one user at a time, by construction).
    final class Box: @unchecked Sendable {
        let connection: PostgresConnection
        init(_ connection: PostgresConnection) { self.connection = connection }
    }

    /// The database cannot be reached (or went away mid-query): the page is a 503.
    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    public init(conninfo: String, threads: Int) {
        self.conninfo = conninfo
        pool = NIOThreadPool(numberOfThreads: max(1, threads))
        pool.start()
    }

    /// Runs `body` with a connection on one of the pool's threads. An idle connection may
    /// have died with its server (libpq only finds out on use): when one fails that way the
    /// call is made once more on a new connection, so a restarted database costs no 503.
    public func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await pool.runIfActive { [self] in
            var fresh = false
            while true {
                let (box, reused) = try take(fresh: fresh)
                do {
                    let result = try body(box.connection)
                    give(box)
                    return result
                } catch {
                    if box.connection.isOpen {
                        give(box)
                        if let failure = error as? PostgresError, Self.meansUnavailable(failure) { throw Unavailable(description: failure.message) }
                        throw error
                    }
                    if reused && !fresh {
                        fresh = true
                        continue
                    }
                    throw Unavailable(description: "the connection to PostgreSQL was lost: \(error)")
                }
            }
        }
    }

    /// SQLSTATE classes that say the server cannot serve now (connection exception, operator
    /// intervention: shutting down, starting up) rather than that the query is wrong.
    static func meansUnavailable(_ error: PostgresError) -> Bool {
        guard let state = error.sqlState else { return true }
        return state.hasPrefix("08") || state.hasPrefix("57P")
    }

    /// An idle connection (unless `fresh`), else a new one; and whether it was idle.
    private func take(fresh: Bool) throws -> (Box, reused: Bool) {
        if !fresh, let box = idle.withLock({ $0.popLast() }), box.connection.isOpen { return (box, true) }
        do {
            let connection = try PostgresConnection(conninfo)
            // Times as UTC text, and no write even if a check were ever missed.
            try connection.execute("SET TIME ZONE 'UTC'; SET default_transaction_read_only = on; SET statement_timeout = '10s'")
            return (Box(connection), false)
        } catch {
            throw Unavailable(description: "\(error)")
        }
    }

    private func give(_ box: Box) {
        idle.withLock { $0.append(box) }
    }

    /// Closes the idle connections and stops the threads (after the listener has stopped).
    public func shutdown() async {
        let boxes = idle.withLock { boxes in
            defer { boxes.removeAll() }
            return boxes
        }
        for box in boxes { box.connection.close() }
        try? await pool.shutdownGracefully()
    }
}

/// Why the report will not start on a database: one line, for the operator.
public struct ReportRefusal: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The start-up checks of docs/design/report.md: the views are there, and the role can
/// only read. A role that could write is refused — the report is for people who must not be
/// able to change the numbers by accident or by an injected query.
public enum ReportStartChecks {
    /// The views the pages read.
    static let views = [
        "activity", "link_clicks", "link_clickers", "message_stats", "link_clicks_daily", "source_clicks_hourly", "bot_clicks_daily",
    ]
    static let writePrivileges = ["INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"]

    public static func check(_ db: PostgresConnection) throws {
        let role = try db.query("SELECT current_user, rolsuper, rolbypassrls, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        guard let row = role.first, let name = row[0] else { throw ReportRefusal("cannot read the role's attributes") }
        let hint = "connect as a read-only role (for example: CREATE ROLE reports LOGIN; GRANT clickd_analyst TO reports)"
        for (index, attribute) in ["SUPERUSER", "BYPASSRLS", "CREATEROLE"].enumerated() where row[index + 1] == "t" {
            throw ReportRefusal("role \"\(name)\" has \(attribute), so it can write; \(hint)")
        }
        let writable = try db.query(
            """
            SELECT n.nspname, c.relname, p.privilege
            FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            CROSS JOIN unnest($1::text[]) WITH ORDINALITY AS p(privilege, rank)
            WHERE n.nspname IN ('clickd', 'clickd_internal') AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
              AND has_table_privilege(c.oid, p.privilege)
            ORDER BY n.nspname, c.relname, p.rank
            LIMIT 1
            """, ["{" + writePrivileges.joined(separator: ",") + "}"])
        if let w = writable.first, let schema = w[0], let table = w[1], let privilege = w[2] {
            throw ReportRefusal("role \"\(name)\" has \(privilege) on \(schema).\(table), so it can write; \(hint)")
        }
        let creatable = try db.query(
            "SELECT nspname FROM pg_namespace WHERE nspname IN ('clickd', 'clickd_internal') AND has_schema_privilege(oid, 'CREATE') ORDER BY 1 LIMIT 1"
        )
        if let schema = creatable.first?[0] {
            throw ReportRefusal("role \"\(name)\" can CREATE in schema \(schema ?? ""), so it can write; \(hint)")
        }
        try checkCitusWorkers(db, role: name, hint: hint)
        let present = try db.query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'clickd' AND c.relkind = 'v'"
        ).compactMap { $0[0] }
        if let missing = views.first(where: { !present.contains($0) }) {
            throw ReportRefusal("view clickd.\(missing) is missing (or not readable by \"\(name)\"): run clickd migrate with this clickd")
        }
        for view in views {
            let readable = try db.query("SELECT has_table_privilege($1, 'SELECT')", ["clickd." + view])
            guard readable.first?[0] == "t" else {
                throw ReportRefusal("role \"\(name)\" cannot read clickd.\(view); GRANT clickd_analyst TO \"\(name)\"")
            }
        }
    }

    /// On a Citus coordinator, the same check on every worker node: the pages' queries
    /// reach the shards there as this role (Citus checks the querying role's rights on the
    /// shards, docs/design/citus.md), so a role that could write a shard directly, or is a
    /// superuser there, is refused too. Checked through `run_command_on_workers`, which
    /// connects to each worker as this role; a worker that cannot be checked refuses.
    static func checkCitusWorkers(_ db: PostgresConnection, role name: String, hint: String) throws {
        guard try CitusLayout.isCoordinator(db) else { return }
        let privileges = writePrivileges.map { "'\($0)'" }.joined(separator: ",")
        // One text per worker: the first way this role could write there, or ''.
        let probe = """
            SELECT coalesce((SELECT CASE WHEN rolsuper THEN 'is a superuser' WHEN rolbypassrls THEN 'has BYPASSRLS' WHEN rolcreaterole THEN 'has CREATEROLE' END
                             FROM pg_roles WHERE rolname = current_user),
                            (SELECT 'has ' || p.privilege || ' on ' || n.nspname || '.' || c.relname
                             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                             CROSS JOIN unnest(ARRAY[\(privileges)]) WITH ORDINALITY AS p(privilege, rank)
                             WHERE n.nspname IN ('clickd', 'clickd_internal') AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
                               AND has_table_privilege(c.oid, p.privilege)
                             ORDER BY n.nspname, c.relname, p.rank LIMIT 1),
                            (SELECT 'can CREATE in schema ' || nspname FROM pg_namespace
                             WHERE nspname IN ('clickd', 'clickd_internal') AND has_schema_privilege(oid, 'CREATE') ORDER BY 1 LIMIT 1),
                            '')
            """
        for row in try db.query("SELECT nodename || ':' || nodeport, success, result FROM run_command_on_workers($1) ORDER BY 1", [probe]) {
            let node = row[0] ?? "?"
            guard row[1] == "t" else {
                throw ReportRefusal("cannot check role \"\(name)\"'s rights on Citus worker \(node): \(row[2] ?? "")")
            }
            if let problem = row[2], !problem.isEmpty {
                throw ReportRefusal("role \"\(name)\" \(problem) on Citus worker \(node), so it can write; \(hint)")
            }
        }
    }
}
