import ArgumentParser
import Foundation
import Projections
import Synchronization

/// The logs a projection command reads, and its batch size (ingest, rebuild).
struct LogsOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A log directory (repeat for each edge's log).", valueName: "dir"))
    var log: [String] = []

    @Option(
        help: """
            Most records per batch: one transaction per (log, shard) batch; a worker reads ahead \
            until a shard's batch is full or it holds 8 times this many records.
            """)
    var batchSize: Int = 4096

    @Option(
        help: ArgumentHelp(
            """
            Connections to project with, each owning a fixed set of shards (default: the number of \
            cores, at most the shard count).
            """, valueName: "n"))
    var workers: Int?

    @Option(
        help: ArgumentHelp(
            """
            An archive directory (what 'clickd edge --archive-dir' writes): segments the edge's \
            retention removed from a log directory are read from DIR/<log id>/. For an archive \
            reached by a command, 'clickd log restore --log-id ID' the log into DIR/ID first.
            """, valueName: "dir"))
    var archiveDir: String?

    func validate() throws {
        if let archiveDir, !FileManager.default.fileExists(atPath: archiveDir) {
            throw ValidationError("--archive-dir \(archiveDir) does not exist")
        }
        if log.isEmpty { throw ValidationError("give at least one --log DIR") }
        if batchSize < 1 || batchSize > 1_000_000 { throw ValidationError("--batch-size must be 1 to 1000000") }
        if let workers, workers < 1 || workers > 1024 { throw ValidationError("--workers must be 1 to 1024") }
        // The write shape's override (docs/design/citus.md): refused here, in one line, rather
        // than by every worker's first connection.
        do {
            _ = try ProjectionStore.WriteShape.environmentOverride()
        } catch {
            throw ValidationError("\(error)")
        }
    }
}
