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

    func connect() throws -> PostgresConnection {
        let conninfo = database ?? ProcessInfo.processInfo.environment["DATABASE_URL"] ?? ""
        return try PostgresConnection(conninfo)
    }
}
