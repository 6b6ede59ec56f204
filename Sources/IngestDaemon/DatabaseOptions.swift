import ArgumentParser
import Foundation
import Projections

/// `--database`, shared by the commands that talk to PostgreSQL.
struct DatabaseOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            """
            PostgreSQL connection URL or conninfo (default: $DATABASE_URL, then libpq's PG* variables).
            """, valueName: "url"))
    var database: String?

    /// --database, else $DATABASE_URL, else "" (libpq's PG* variables).
    var conninfo: String { database ?? ProcessInfo.processInfo.environment["DATABASE_URL"] ?? "" }

    func connect() throws -> PostgresConnection { try PostgresConnection(conninfo) }
}
