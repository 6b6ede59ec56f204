import ArgumentParser
import Foundation
import Logging
import Projections

struct EraseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "erase",
        abstract: "Forget people in the projections: their rows, and everything they counted in.",
        discussion: """
            Records each person in the erasure list (clickd_ingest.erasures: the MAC of the id, \
            never the id), then, shard by shard in one transaction each, subtracts what the \
            person's records counted in every figure (unique clickers and openers, clicked and \
            opened customers, totals, daily and hourly rollups), deletes their rows, and makes \
            ingestion and rebuilds drop their records from then on. The figures then equal a \
            projection of the logs without them. Safe while ingestion runs; idempotent (run it \
            again after a failure). Reads the people's records from every --log (and \
            --archive-dir for segments retention removed). Then it tells each --log's edge \
            (DIR/erasures/, as clickd ingest does every 10 s), which rewrites the sealed \
            segments and archived copies holding their records within its --erase-within; \
            log_clean_at is set once every followed log says so (docs/design/erasure.md). The \
            operator's view: clickd.erasures.
            """
    )

    @Option(help: ArgumentHelp("A customer id to erase (repeatable).", valueName: "id"))
    var customer: [String] = []

    @Option(help: ArgumentHelp("A file of customer ids, one a line (blank lines skipped).", valueName: "file"))
    var file: String?

    @Option(help: ArgumentHelp("A log directory (repeat for each edge's log).", valueName: "dir"))
    var log: [String] = []

    @Option(help: ArgumentHelp("An archive directory holding segments retention removed from the logs.", valueName: "dir"))
    var archiveDir: String?

    @OptionGroup var db: DatabaseOptions

    func validate() throws {
        if log.isEmpty { throw ValidationError("give at least one --log DIR") }
        if customer.isEmpty && file == nil { throw ValidationError("give --customer ID or --file FILE") }
        if customer.contains(where: \.isEmpty) { throw ValidationError("--customer may not be empty") }
    }

    func run() async throws {
        try await runReportingErrors {
            var ids = customer
            if let file {
                guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                    throw ValidationFailure("cannot read \(file) as UTF-8 text")
                }
                ids += text.split(whereSeparator: \.isNewline).map { String($0) }.filter { !$0.allSatisfy(\.isWhitespace) }
            }
            let connection = try db.connect()
            defer { connection.close() }
            let report = try Eraser(db: connection, logDirectories: log, archive: archiveDir).erase(customers: ids)
            printOut("erased: \(ids.count) people (\(report.recorded) new), \(report.records) records subtracted in \(report.shards) shards")
            // The edges learn the list now rather than at the daemon's next report.
            do {
                let database = db
                try FollowerReporter(logDirectories: log, logger: Logger(label: "clickd.erase")) { try database.connect() }.reportOnce()
            } catch {
                printError("warning: the edges' erasures files were not written now (clickd ingest writes them every 10 s): \(error)")
            }
        }
    }
}
