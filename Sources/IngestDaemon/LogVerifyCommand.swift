import ArgumentParser
import EventLog
import LogArchive

struct LogVerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check every record of a log against its checksum and sequence.",
        discussion: """
            Exit status 0: the log is clean, or has only a torn tail (bytes of an interrupted \
            write after the last valid record of the last segment, which the writer cuts off \
            and keeps in a .broken file when it next opens the log); the tail is reported.
            Exit status 1: corruption — a bad record or header in a sealed segment, a gap in \
            the LSN sequence, or lost records the writer had acknowledged as durable. The \
            message names the segment file and byte offset.

            With --archive DIR (an archive directory the edge's --archive-dir writes) it \
            checks the archive instead: for each log (or --log-id), LOG is there, every \
            segment is present and contiguous from LSN 1, and each checks alone (every \
            record, the seal footer and its checksum). Each missing or damaged segment is \
            named; exit status 1 if there is any.
            """
    )

    @Argument(help: ArgumentHelp("The log directory.", valueName: "dir"))
    var directory: String?

    @Option(help: ArgumentHelp("Check this archive directory instead of a log directory.", valueName: "dir"))
    var archive: String?

    @Option(help: ArgumentHelp("With --archive: check only this log.", valueName: "id"))
    var logId: String?

    func validate() throws {
        if (directory == nil) == (archive == nil) { throw ValidationError("give a log directory or --archive DIR (one of them)") }
        if logId != nil, archive == nil { throw ValidationError("--log-id goes with --archive") }
        if let logId, LogID(logId) == nil { throw ValidationError("--log-id \(logId) is not a log id (a LOG file's log_id)") }
    }

    func run() async throws {
        try await runReportingErrors {
            if let archive { return try verifyArchive(archive) }
            let scan = try LogScanner.scan(directory: directory!)
            let range = scan.records == 0 ? "no records" : "LSN \(scan.firstLSN ?? 1)–\(scan.lastLSN)"
            if let torn = scan.tornTail {
                let what = "\(torn.length) bytes at the end of \(torn.path) from byte \(torn.offset) (\(torn.reason))"
                if torn.losesAcknowledged {
                    throw ValidationFailure(
                        "acknowledged records lost: \(what); the writer had published LSN \(scan.publishedDurable) as durable, the log ends at LSN \(scan.lastLSN)"
                    )
                }
                printOut(
                    "torn tail: \(what) — an interrupted write (or one in progress, if a writer is running); the writer cuts it on open and keeps it in a .broken file"
                )
            } else if scan.lastLSN < scan.publishedDurable, let last = scan.segments.last {
                // Records cut cleanly at a frame boundary leave no torn bytes to see.
                throw ValidationFailure(
                    "acknowledged records lost: \(last.path) ends at byte \(last.validEnd) after LSN \(scan.lastLSN), but the writer had published LSN \(scan.publishedDurable) as durable"
                )
            }
            printOut("ok: \(scan.records) records in \(scan.segments.count) segments, \(range), log \(scan.metadata.logID)")
        }
    }

    func verifyArchive(_ root: String) throws {
        guard FileSystem.isDirectory(root) else { throw ValidationFailure("--archive \(root) is not a directory") }
        let reports = try ArchiveVerify.verify(DirectoryArchive(root: root), logIDs: logId.flatMap(LogID.init).map { [$0] })
        guard !reports.isEmpty else { throw ValidationFailure("\(root) holds no archived log (no directory named by a log id)") }
        var problems = 0
        for report in reports {
            for line in report.problems { printError(line) }
            problems += report.problems.count
            let range = report.segments == 0 ? "no records" : "LSN 1–\(report.lastLSN)"
            printOut(
                "\(report.problems.isEmpty ? "ok" : "DAMAGED"): log \(report.logID): \(report.records) records in \(report.segments) segments (\(range), \(report.bytes) bytes)"
                    + (report.problems.isEmpty ? "" : ", \(report.problems.count) problems"))
        }
        if problems > 0 { throw ExitCode.failure }
    }
}
