import ArgumentParser
import EventLog
import Foundation
import LogArchive
import Logging
import Projections
import ServiceLifecycle
import Synchronization

struct RebuildCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rebuild",
        abstract: "Replay every log from its start into fresh projections and swap them in, without downtime.",
        discussion: """
            Builds new projection tables beside the live ones (schema clickd_rebuild) from \
            LSN 1 of every --log with --workers connections, while 'clickd ingest' goes on \
            (with the shard count 'clickd migrate --shards' set last); then, in one short \
            transaction that holds the live checkpoints (ingest daemons wait for it), \
            catches up to them and swaps the new tables in; the analysts' views follow. \
            Queries see the old projections or the new ones, complete, never a half-built \
            one. Give every log the live projections hold. Progress: a bar per log on a \
            terminal, otherwise a line every 5 seconds. Ctrl-C or SIGTERM abandons the \
            rebuild: the new tables are dropped and the live ones are untouched (exit 1).

            --verify rebuilds the same way, then compares the new tables with the live \
            ones, prints each differing row (table=… only_in=live|rebuilt row=…), swaps \
            nothing, and exits 0 when they are equal, 1 when they differ.

            Segments the edge's retention removed from a log directory are read from an \
            archive: --archive-dir DIR reads them from DIR/<log id>/ (what the edge's \
            --archive-dir writes); with --restore-command CMD as well, each log's archived \
            segments are first fetched by CMD (as 'clickd log restore' does, each checked) \
            into DIR/<log id>/, which must not exist yet, and read from there. DIR is left \
            in place: remove it afterwards, or give it again as --archive-dir.
            """
    )

    @OptionGroup var logs: LogsOptions

    @OptionGroup var restore: RestoreCommandOptions

    @OptionGroup var db: DatabaseOptions

    @Flag(help: "Compare the rebuilt tables with the live ones and report differences; swap nothing.")
    var verify = false

    func validate() throws {
        if restore.restoreCommand != nil, logs.archiveDir == nil {
            throw ValidationError("--restore-command needs --archive-dir DIR: the directory the archived segments are fetched into")
        }
    }

    func run() async throws {
        try await runReportingErrors {
            let logger = Logger(label: "clickd.rebuild")
            let signals = EarlySignals()
            if let (source, text) = try restore.source(), let staging = logs.archiveDir {
                try await Self.fetchArchives(logs.log, from: source, text: text, into: staging, logger: logger)
            }
            let connection = try db.connect()
            let database = db
            let rebuilder = try Rebuilder(
                logDirectories: logs.log, db: connection, batchSize: logs.batchSize, workers: logs.workers,
                logger: logger, archive: logs.archiveDir
            ) { try database.connect() }
            // Used by the rebuild's one thread.
            let this = BlockingThread.Handed(rebuilder)
            let verify = self.verify
            let service = RebuildService { shouldStop in try Self.rebuild(this.value, verify: verify, logger: logger, shouldStop: shouldStop) }
            let group = ServiceGroup(
                configuration: .init(
                    services: [.init(service: service, successTerminationBehavior: .gracefullyShutdownGroup)],
                    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            await signals.handOver(to: group)
            try await group.run()
        }
    }

    /// Fetches each log's archived segments into `staging/<log id>/` (`LogRestore`, every
    /// segment checked), where the rebuild reads those its directory no longer has.
    static func fetchArchives(_ directories: [String], from source: ArchiveSource, text: String, into staging: String, logger: Logger) async throws {
        for directory in directories {
            let logID = try LogReader(directory: directory).logID
            let target = FileSystem.join(staging, logID.description)
            if FileSystem.exists(target) {
                throw ValidationFailure(
                    "\(target) exists already: remove it, or rebuild without --restore-command to read it as the archive of log \(logID)")
            }
            let outcome = try await LogRestore.restore(from: source, logID: logID, into: target, sourceText: text)
            logger.info(
                "archived segments fetched",
                metadata: [
                    "log.directory": "\(directory)", "restore.segments": "\(outcome.segments)",
                    "restore.last_lsn": "\(outcome.lastLSN)", "restore.into": "\(target)",
                ])
        }
    }

    /// Prepares, replays and swaps (or verifies); abandons when `shouldStop` says so.
    static func rebuild(_ rebuilder: Rebuilder, verify: Bool, logger: Logger, shouldStop: @escaping @Sendable () -> Bool) throws {
        defer { rebuilder.release() }
        try rebuilder.prepare()
        var progress = RebuildProgress(terminal: isatty(2) == 1, logger: logger)
        // --verify compares at the live checkpoints, so it replays only up to them.
        let limits = verify ? try rebuilder.liveCheckpoints() : ShardTargets()
        let finished: Bool
        do {
            finished = try rebuilder.replay(limits: limits, shouldStop: shouldStop) {
                // Called after every batch; reads the logs' durable ends only when a line is due.
                if progress.due(), let positions = try? rebuilder.ingestor.positions() { progress.show(positions, limits: limits) }
            }
        } catch {
            rebuilder.discard()
            throw error
        }
        guard finished else {
            rebuilder.discard()
            throw RebuildError("rebuild abandoned; the live projections are untouched")
        }
        if verify {
            let differences: [String]
            do { differences = try rebuilder.verify() } catch {
                rebuilder.discard()
                throw error
            }
            rebuilder.discard()
            for line in differences { printOut(line) }
            guard differences.isEmpty else { throw RebuildError("the rebuilt projections differ from the live ones (lines above)") }
            printOut("the rebuilt projections equal the live ones")
            return
        }
        let held: Duration
        do { held = try rebuilder.swap() } catch {
            rebuilder.discard()
            throw error
        }
        let total = try rebuilder.ingestor.positions().reduce(UInt64(0)) { $0 + $1.projected }
        let heldMs = Double(held.components.seconds) * 1000 + Double(held.components.attoseconds) / 1e15
        logger.info(
            "rebuilt projections swapped in",
            metadata: [
                "rebuild.records": "\(total)", "rebuild.seconds": "\(progress.elapsed)",
                "rebuild.swap_lock_ms": "\(String(format: "%.1f", heldMs))",
            ])
    }
}

/// Progress of a rebuild: a bar per log, redrawn in place, on a terminal; a log line every
/// 5 seconds otherwise.
struct RebuildProgress {
    let terminal: Bool
    let logger: Logger
    let started = ContinuousClock.now
    var lastShown = ContinuousClock.now
    var drawn = false

    init(terminal: Bool, logger: Logger) {
        self.terminal = terminal
        self.logger = logger
    }

    var elapsed: String { String(format: "%.1f", seconds(ContinuousClock.now - started)) }

    /// True, once per 250 ms on a terminal and per 5 s otherwise, when a line is due.
    mutating func due() -> Bool {
        let now = ContinuousClock.now
        guard now - lastShown >= (terminal ? .milliseconds(250) : .seconds(5)) else { return false }
        lastShown = now
        return true
    }

    mutating func show(_ positions: [LogPosition], limits: ShardTargets) {
        let time = max(seconds(ContinuousClock.now - started), 0.001)
        var lines: [String] = []
        for p in positions {
            let end = max(limits.byLog[p.logID]?.values.min() ?? limits.everyShard[p.logID] ?? p.durable, 1)
            let done = min(p.projected, end)
            let rate = Double(done) / time
            let eta = rate > 0 ? Double(end - done) / rate : 0
            if terminal {
                let width = 30
                let filled = Int(Double(width) * Double(done) / Double(end))
                lines.append(
                    "\(p.directory) [\(String(repeating: "#", count: filled))\(String(repeating: ".", count: width - filled))] "
                        + "\(done)/\(end) \(Int(rate)) events/s ETA \(Int(eta)) s")
            } else {
                logger.info(
                    "rebuilding",
                    metadata: [
                        "log.directory": "\(p.directory)", "rebuild.done": "\(done)", "rebuild.end": "\(end)",
                        "rebuild.events_per_second": "\(Int(rate))", "rebuild.eta_seconds": "\(Int(eta))",
                    ])
            }
        }
        if terminal {
            // Move back over the previous drawing, then redraw each line.
            var text = drawn ? "\u{1b}[\(lines.count)F" : ""
            for line in lines { text += "\u{1b}[2K" + line + "\n" }
            writeStandardError(text)
            drawn = true
        }
    }

    private func seconds(_ d: Duration) -> Double {
        Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
    }
}
