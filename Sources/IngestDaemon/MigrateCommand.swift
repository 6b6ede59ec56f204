import ArgumentParser
import Foundation
import Logging
import Projections

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Create or upgrade clickd's tables and views in PostgreSQL.",
        discussion: """
            Applies the numbered SQL files of the migrations directory in order, each in \
            its own transaction, under an advisory lock so that two runs cannot race, and \
            records each one's checksum. Running it again applies nothing; a file changed \
            after it was applied is refused. Creates schema clickd (the analysts' views), \
            schema clickd_internal (the projection tables) and the role clickd_analyst \
            (may read schema clickd, nothing else).

            --shards S fixes the projections' shard count when the schema is made (default \
            32; a shard is a function of the customer id; the workers of 'clickd ingest' \
            each own a set of shards). Given later with another count, it is recorded for \
            the next 'clickd rebuild', which rebuilds the projections with it.

            On a Citus coordinator (the database has the citus extension) it then lays the \
            tables out: every table with a shard column distributed by it, co-located with \
            the checkpoints (citus.shard_count Citus shards), the others reference tables; \
            it lets clickd_analyst read clickd_internal (Citus checks the querying role on \
            the shards) and prints how many of clickd's shards each node holds. A Citus \
            worker is refused. docs/scale-out.md, "Tier 3".
            """
    )

    @OptionGroup var db: DatabaseOptions

    @Option(
        help: ArgumentHelp(
            """
            The migrations directory (default: $CLICKD_MIGRATIONS, then ./migrations, then the one \
            beside the clickd source tree this binary was built in).
            """, valueName: "dir"))
    var migrations: String?

    @Option(help: ArgumentHelp("The shard count of the projections (1 to 1024; default 32 for a new schema).", valueName: "s"))
    var shards: Int?

    func validate() throws {
        if let shards, !ShardFunction.shardCounts.contains(shards) { throw ValidationError("--shards must be 1 to 1024") }
    }

    func run() async throws {
        try await runReportingErrors {
            let directory = try Self.migrationsDirectory(migrations)
            let migrator = Migrator(directory: directory)
            _ = try migrator.migrations()  // a bad directory is reported before connecting
            let connection = try db.connect()
            defer { connection.close() }
            var notes: [String] = []
            let applied = try migrator.migrate(connection, shards: shards) { notes.append($0) }
            printOut(applied.isEmpty ? "up to date (\(directory))" : "applied: " + applied.joined(separator: ", "))
            for note in notes { printOut(note) }
        }
    }

    static func migrationsDirectory(_ given: String?) throws -> String {
        if let given { return given }
        if let env = ProcessInfo.processInfo.environment["CLICKD_MIGRATIONS"], !env.isEmpty { return env }
        var candidates = ["migrations"]
        // .build/<triple>/<config>/clickd → the repository's migrations/.
        let exe = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        var dir = exe.deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(dir.appendingPathComponent("migrations").path)
            dir = dir.deletingLastPathComponent()
        }
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: $0 + "/0001_initial.sql") }) { return found }
        throw ValidationFailure("no migrations directory found (looked in \(candidates.joined(separator: ", "))); give --migrations DIR")
    }
}
