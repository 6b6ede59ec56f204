import ArgumentParser

struct LogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "Inspect, check and restore a click log directory.",
        discussion: """
            A log directory holds numbered segment files (*.seg), a LOG file naming the log, \
            a LOCK file for its single writer and a 'durable' watermark file. These commands \
            only read it (except 'bench', which writes a new log, and 'restore', which brings \
            one back from its archive into a new directory) and are safe to run while the \
            edge is writing. The format is described in docs/log-format.md.
            """,
        subcommands: [LogVerifyCommand.self, LogDumpCommand.self, LogStatsCommand.self, LogRestoreCommand.self, LogBenchCommand.self]
    )
}

struct LogDirectoryArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The log directory.", valueName: "dir"))
    var directory: String
}
