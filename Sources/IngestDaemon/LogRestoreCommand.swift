import ArgumentParser
import EventLog
import LogArchive

/// `--restore-command CMD` and its timeout: PostgreSQL's `restore_command` (log restore,
/// rebuild).
struct RestoreCommandOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Fetch each archived file by running CMD under /bin/sh: %f the file wanted (LOG or a segment name), %p where to put it, %l the log id, %% a %. Exit 0 only once the whole file is there; non-zero means the archive has no such file.",
            valueName: "cmd"))
    var restoreCommand: String?

    @Option(help: ArgumentHelp("Seconds one restore command may run before it is stopped.", valueName: "s"))
    var restoreTimeout: Double = 300

    func validate() throws {
        guard (1...86_400).contains(restoreTimeout) else { throw ValidationError("--restore-timeout must be 1 to 86400 seconds") }
        _ = try source()
    }

    /// The command as an archive source, and how it is named in lines and the RESTORED
    /// marker; nil without --restore-command.
    func source() throws -> (ArchiveSource, String)? {
        guard let restoreCommand else { return nil }
        do {
            let template = try CommandTemplate(restoreCommand, placeholders: ArchiveSource.commandPlaceholders)
            return (.command(template, timeout: .milliseconds(Int64(restoreTimeout * 1000))), "command \(template.text)")
        } catch {
            throw ValidationError("--restore-command: \(error)")
        }
    }
}

/// Where a command reads an archive from: `--from DIR` (an archive directory, as the
/// edge's `--archive-dir` writes it) or `--restore-command CMD` (`%f`, `%p`, `%l`).
struct ArchiveSourceOptions: ParsableArguments {
    @Option(name: .customLong("from"), help: ArgumentHelp("The archive directory (what the edge's --archive-dir wrote).", valueName: "dir"))
    var from: String?

    @OptionGroup var command: RestoreCommandOptions

    @Option(help: ArgumentHelp("The log to restore (needed with --restore-command; with --from, when the archive holds several).", valueName: "id"))
    var logId: String?

    func validate() throws {
        if (from == nil) == (command.restoreCommand == nil) { throw ValidationError("give --from DIR or --restore-command CMD (one of them)") }
        if let logId, LogID(logId) == nil { throw ValidationError("--log-id \(logId) is not a log id (a LOG file's log_id)") }
        _ = try source()
    }

    var logID: LogID? { logId.flatMap(LogID.init) }

    /// The source, and how it is named in lines and the RESTORED marker.
    func source() throws -> (ArchiveSource, String) {
        if let from {
            guard FileSystem.isDirectory(from) else { throw ValidationError("--from \(from) is not a directory") }
            return (.directory(DirectoryArchive(root: from)), "directory \(from)")
        }
        guard let command = try command.source() else { throw ValidationError("give --from DIR or --restore-command CMD (one of them)") }
        return command
    }
}

struct LogRestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Bring a log back from its archive into a new directory.",
        discussion: """
            Fetches LOG, then every segment in LSN order until the archive has no next one, \
            checking each alone (header, every record, seal footer and checksum) before it \
            is renamed into place; then writes the durable watermark and a RESTORED file. \
            DIR must be new or empty. A damaged segment, or a hole in an archive directory, \
            stops the restore with the file's name and exit status 1 (no RESTORED file).

            A restored log is read by 'clickd ingest' and 'clickd rebuild' like any other, \
            and never appended to: 'clickd edge' refuses it (its archive may lack the tail \
            the lost disk held). After a lost disk, start the edge on a new directory.
            """
    )

    @OptionGroup var archive: ArchiveSourceOptions

    @Argument(help: ArgumentHelp("The directory to restore into (new or empty; its parent must exist).", valueName: "dir"))
    var directory: String

    func run() async throws {
        try await runReportingErrors {
            let (source, text) = try archive.source()
            let outcome = try await LogRestore.restore(from: source, logID: archive.logID, into: directory, sourceText: text)
            let range = outcome.segments == 0 ? "no records" : "LSN 1–\(outcome.lastLSN)"
            printOut(
                "restored log \(outcome.logID): \(outcome.records) records in \(outcome.segments) segments (\(range), \(outcome.bytes) bytes) into \(directory)"
            )
            printOut("the archive ends there: \(outcome.end)")
        }
    }
}
