import ArgumentParser
import EventLog

struct LogStatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Print a log's size and LSN range.",
        discussion: """
            Prints one 'key: value' line each: log id, creation time, segments, records, \
            bytes (headers and records), allocated bytes (with the zero-filled space of the \
            segment being written), first and last LSN, the durable end the writer last \
            published, and a \
            torn tail if there is one. Reads (and checks) every record.
            """
    )

    @OptionGroup var log: LogDirectoryArgument

    func run() async throws {
        try await runReportingErrors {
            let scan = try LogScanner.scan(directory: log.directory)
            var lines = [
                "log_id: \(scan.metadata.logID)",
                "created: \(scan.metadata.created)",
                "segments: \(scan.segments.count)",
                "records: \(scan.records)",
                "bytes: \(scan.bytes)",
                "allocated_bytes: \(scan.allocatedBytes)",
                "first_lsn: \(scan.records == 0 ? 0 : scan.firstLSN ?? 0)",
                "last_lsn: \(scan.lastLSN)",
                "durable_end: \(scan.publishedDurable)",
            ]
            if let torn = scan.tornTail {
                lines.append("torn_tail: \(torn.length) bytes at \(torn.path) byte \(torn.offset)")
            }
            printOut(lines.joined(separator: "\n"))
        }
    }
}
