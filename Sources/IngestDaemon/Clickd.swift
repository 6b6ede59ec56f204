import ArgumentParser

@main
struct Clickd: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "clickd",
        abstract: "Event-sourced link click tracking: signed links, a durable click log, SQL projections.",
        discussion: """
            clickd keeps every click in an append-only, checksummed write-ahead log (the source \
            of truth) and projects it into PostgreSQL for analysts.

            Logs are written as one line per event to stderr (readable text on a terminal). \
            Set CLICKD_LOG_LEVEL to trace, debug, info (default), warning or error.

            Exit status: 0 on success, 1 when the command failed (one line on stderr says why), \
            64 for a usage error.
            """,
        version: "clickd \(version)",
        subcommands: [
            EdgeCommand.self, EraseCommand.self, IngestCommand.self, KeysCommand.self, LinksCommand.self, LogCommand.self, MigrateCommand.self,
            RebuildCommand.self,
            ReportCommand.self, StatusCommand.self,
        ]
    )
}
