import EventLog
import LinkTracking
import Logging

/// Follows logs and projects them into PostgreSQL, exactly once (docs/design/ingest.md).
/// One connection, logs taken in turn; any failure rebuilds every log's state from the
/// database's checkpoints, so nothing is lost or doubled whatever fails when.
public final class Ingestor {
    final class LogState {
        let directory: String
        let reader: LogReader
        var fold = ProjectionFold()
        var checkpoint: UInt64 = 0
        var synced = false

        init(directory: String) throws {
            self.directory = directory
            reader = try LogReader(directory: directory)
        }
    }

    private let logs: [LogState]
    private let connect: () throws -> PostgresConnection
    private var store: ProjectionStore?
    private let batchSize: Int
    private let logger: Logger
    /// Where the projection tables are: `clickd_internal`, or a rebuild's shadow schema.
    public let schema: String
    /// False while a rebuild holds its swap transaction open on the connection: batches are
    /// applied inside it (no BEGIN/COMMIT of their own).
    public var ownsTransactions = true
    /// Per log, the LSN not to read past (a rebuild catching up to the live checkpoints).
    public var stopAt: [LogID: UInt64] = [:]
    /// The batch whose upserts and COMMIT the server is running while the next batch is
    /// read and folded (the two overlap: one core folds, the other runs PostgreSQL).
    private var inFlight: (log: LogState, lastLSN: UInt64, deadLetters: Int, firstError: String?)?

    public init(logDirectories: [String], batchSize: Int = 20000, logger: Logger, schema: String = "clickd_internal",
                connect: @escaping () throws -> PostgresConnection) throws {
        logs = try logDirectories.map { try LogState(directory: $0) }
        self.batchSize = batchSize
        self.schema = schema
        self.logger = logger
        self.connect = connect
    }

    /// Projects every log up to its current durable end; returns the records applied.
    /// Stops early, after the batch in flight commits, when `shouldStop` says so; calls
    /// `heartbeat` after every batch (the systemd watchdog is fed from it).
    @discardableResult
    public func drain(shouldStop: () -> Bool = { false }, heartbeat: () -> Void = {}) throws -> Int {
        do {
            var total = 0
            while true {
                var round = 0
                for log in logs where !shouldStop() {
                    round += try step(log)
                    heartbeat()
                }
                total += round
                if round == 0 || shouldStop() {
                    try settle()
                    return total
                }
            }
        } catch {
            // Whatever failed (a read, a statement, the commit of the batch in flight), every
            // log's state is rebuilt from the database's checkpoints before going on.
            forgetPositions()
            throw error
        }
    }

    /// Forgets what this process knows of the projections (after a failure, or after a
    /// transaction it did not own was rolled back): every log is re-read from the
    /// database's checkpoints.
    public func forgetPositions() {
        inFlight = nil
        for log in logs { log.synced = false }
    }

    /// Waits for the batch in flight to commit; only then does its log's checkpoint move.
    private func settle() throws {
        guard let done = inFlight, let store else { return }
        inFlight = nil
        try store.finish(ownTransaction: ownsTransactions)
        done.log.checkpoint = done.lastLSN
        if done.deadLetters > 0 {
            logger.warning("records that do not decode were put in the dead-letter table", metadata: [
                "log.directory": "\(done.log.directory)", "log.dead_letters": "\(done.deadLetters)",
                "error": "\(done.firstError ?? "")",
            ])
        }
    }

    /// Follows the logs until `shouldStop` says so (the batch in flight is committed first),
    /// retrying with backoff while PostgreSQL is unavailable (one log line per change of
    /// state, also told to `state`). `heartbeat` is called at least every 100 ms of
    /// following and after every batch — also while retrying: the daemon is alive.
    public func run(shouldStop: @Sendable () -> Bool, heartbeat: () -> Void = {}, state: (String) -> Void = { _ in }) async {
        var failing = false
        var backoff: Duration = .milliseconds(100)
        state("ingesting")
        while !shouldStop() {
            heartbeat()
            do {
                let applied = try drain(shouldStop: shouldStop, heartbeat: heartbeat)
                if failing {
                    state("ingesting")
                    logger.info("ingestion resumed")
                    failing = false
                    backoff = .milliseconds(100)
                }
                if applied == 0 { try? await Task.sleep(for: .milliseconds(100)) }
            } catch {
                if !failing {
                    state("failing, retrying with backoff: \(error)")
                    logger.error("ingestion failing; retrying with backoff", metadata: ["error": "\(error)"])
                    failing = true
                }
                store = nil
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    /// Per log: its directory and ID, how far it is projected (as this process knows it),
    /// and its durable end.
    public func positions() throws -> [(directory: String, logID: LogID, projected: UInt64, durable: UInt64)] {
        try logs.map { ($0.directory, $0.reader.logID, $0.checkpoint, try $0.reader.durableWatermark()) }
    }

    /// Per log: durable end, projected checkpoint, dead letters.
    public func status() throws -> [(directory: String, logID: LogID, durable: UInt64, checkpoint: UInt64, deadLetters: Int)] {
        try settle()
        let store = try currentStore()
        return try logs.map { log in
            let durable = try log.reader.durableWatermark()
            let checkpoint = try store.checkpoint(log.reader.logID).lsn
            let dead = Int(try store.db.query("SELECT count(*) FROM \(schema).dead_letters WHERE log_id = $1",
                                              ["\(log.reader.logID)"])[0][0]!)!
            return (log.directory, log.reader.logID, durable, checkpoint, dead)
        }
    }

    private func currentStore() throws -> ProjectionStore {
        if let store { return store }
        let made = ProjectionStore(try connect(), schema: schema)
        store = made
        return made
    }

    /// Rebuilds a log's fold from the database: replays the classifier's window up to the
    /// checkpoint (without applying it) and positions the reader after the checkpoint.
    private func sync(_ log: LogState) throws {
        try settle()
        let (checkpoint, windowStart) = try currentStore().checkpoint(log.reader.logID)
        log.fold = ProjectionFold()
        if let windowStart, windowStart >= 1, windowStart <= checkpoint {
            log.reader.seek(to: windowStart)
            var done = false
            while !done {
                let n = try log.reader.read(maxRecords: batchSize) { lsn, payload in
                    if lsn <= checkpoint { log.fold.replay(lsn: lsn, payload: payload) } else { done = true }
                }
                if n == 0 || log.reader.nextLSN > checkpoint { done = true }
            }
        }
        log.reader.seek(to: checkpoint + 1)
        log.checkpoint = checkpoint
        log.synced = true
    }

    /// Reads and folds the next batch of `log` (while the previous batch commits), then
    /// starts applying it. Returns the records applied (0 at the log's durable end).
    private func step(_ log: LogState) throws -> Int {
        while true {
            if !log.synced { try sync(log) }
            var batch = ProjectionBatch()
            var limit = batchSize
            if let stop = stopAt[log.reader.logID] {
                let read = log.reader.nextLSN - 1
                guard stop > read else { return 0 }
                limit = Int(min(UInt64(limit), stop - read))
            }
            let n = try log.reader.read(maxRecords: limit) { lsn, payload in log.fold.fold(lsn: lsn, payload: payload, into: &batch) }
            guard n > 0 else { return 0 }
            let store = try currentStore()
            let prepared = store.prepare(batch, log: log.reader.logID)
            try settle()
            switch try store.begin(prepared, log: log.reader.logID, expected: log.checkpoint, windowStart: log.fold.replayStart,
                                   ownTransaction: ownsTransactions) {
            case .applied:
                inFlight = (log, batch.lastLSN, batch.deadLetters.count, batch.deadLetters.first?.error)
                return n
            case .checkpointMoved:
                // Another daemon projected these records: take its checkpoint and go on from there.
                log.synced = false
            }
        }
    }
}
