import ArgumentParser
import Foundation
import Logging
import Projections
import Synchronization
import TrackerEdge

struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Project click logs into PostgreSQL, exactly once.",
        discussion: """
            Follows each --log (one per edge), reading only up to its durable end, and \
            applies each batch — activity rows, per-link totals, clickers, per-source counts, \
            and the log's checkpoint — in one transaction with a compare-and-set on the \
            checkpoint, so that crashes and a second daemon can neither lose nor double a \
            click. Records that do not decode go to clickd_internal.dead_letters. With --once \
            it drains every log to its current end and exits 0. SIGTERM finishes the batch \
            in flight and exits. Under systemd (Type=notify) it sends READY, WATCHDOG, \
            STATUS and STOPPING. PostgreSQL unavailable: it retries with backoff and logs \
            once per change of state. Run 'clickd migrate' first.
            """
    )

    @Option(help: ArgumentHelp("A log directory (repeat for each edge's log).", valueName: "dir"))
    var log: [String] = []

    @OptionGroup var db: DatabaseOptions

    @Flag(help: "Drain every log to its current durable end, then exit.")
    var once = false

    @Option(help: "Most records per batch (one transaction each; a batch takes what is durable, up to this).")
    var batchSize: Int = 20000

    func validate() throws {
        if log.isEmpty { throw ValidationError("give at least one --log DIR") }
        if batchSize < 1 || batchSize > 1_000_000 { throw ValidationError("--batch-size must be 1 to 1000000") }
    }

    func run() async throws {
        try await runReportingErrors {
            let logger = Logger(label: "clickd.ingest")
            let database = db
            let ingestor = try Ingestor(logDirectories: log, batchSize: batchSize, logger: logger) { try database.connect() }
            if once {
                let n = try ingestor.drain()
                logger.info("drained", metadata: ["ingest.records": "\(n)"])
                return
            }
            let stop = Atomic<Bool>(false)
            for number in [SIGTERM, SIGINT] { signal(number, SIG_IGN) }
            let sources = [SIGTERM, SIGINT].map { number in
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { stop.store(true, ordering: .relaxed) }
                source.resume()
                return source
            }
            // Under systemd (Type=notify): READY once the logs are open, WATCHDOG while the loop
            // turns (also while PostgreSQL is down: the daemon is alive and retrying; a
            // restart would not help), STATUS on each change of state, STOPPING on SIGTERM.
            let systemd = SystemdNotifier(environment: ProcessInfo.processInfo.environment)
            var lastWatchdog = ContinuousClock.now
            logger.info("ingesting", metadata: ["ingest.logs": "\(log.joined(separator: ","))"])
            systemd.notify("READY=1\nSTATUS=ingesting")
            await ingestor.run(shouldStop: { stop.load(ordering: .relaxed) }, heartbeat: {
                if let interval = systemd.watchdogInterval, ContinuousClock.now - lastWatchdog >= interval {
                    systemd.notify("WATCHDOG=1")
                    lastWatchdog = .now
                }
            }, state: { systemd.notify("STATUS=\($0)") })
            systemd.notify("STOPPING=1")
            sources.forEach { $0.cancel() }
            logger.info("stopped")
        }
    }
}
