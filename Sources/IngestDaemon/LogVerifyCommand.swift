import ArgumentParser
import EventLog

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
            """
    )

    @OptionGroup var log: LogDirectoryArgument

    func run() async throws {
        try await runReportingErrors {
            let scan = try LogScanner.scan(directory: log.directory)
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
}
