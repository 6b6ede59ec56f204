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
        /// Records PostgreSQL refused for their content (LSN → its error): dead letters from
        /// then on (kept across resyncs; restored from `dead_letters` after a restart).
        var refused: [UInt64: String] = [:]
        /// While a batch the database refused is narrowed down: smaller batches up to `until`.
        var isolation: (until: UInt64, limit: Int)?
        /// This log cannot be read (a damaged segment): it waits, the other logs go on.
        var failure: (message: String, retryAt: ContinuousClock.Instant, backoff: Duration)?

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
    private var inFlight: (log: LogState, lsns: ClosedRange<UInt64>, deadLetters: Int, firstError: String?)?

    /// A failure of one log's batch (its read, its statements or its commit), so that it
    /// is handled for that log alone when it can be.
    struct LogFailure: Error, CustomStringConvertible {
        let log: LogState
        /// The batch's records, when the failure came from the database.
        let lsns: ClosedRange<UInt64>?
        let underlying: any Error

        var description: String { "\(log.directory): \(underlying)" }

        /// PostgreSQL refused the batch for what it holds, not for its own state: a data
        /// exception (class 22: a byte sequence the database encoding cannot hold, a value
        /// out of range) or a program limit (class 54: an index row over B-tree's size
        /// limit). Retrying the same rows can only fail again, so the rows are isolated.
        var refusedContent: Bool {
            guard lsns != nil, let state = (underlying as? PostgresError)?.sqlState else { return false }
            return state.hasPrefix("22") || state.hasPrefix("54")
        }
    }

    /// Logs that cannot be read right now (each waits with backoff while the others go on).
    public var failingLogs: [(directory: String, error: String)] {
        logs.compactMap { log in log.failure.map { (log.directory, $0.message) } }
    }

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
    ///
    /// One log's trouble holds back no other log: a record PostgreSQL refuses for its content
    /// is isolated (its batch retried in halves until it stands alone) and becomes a dead
    /// letter; a log that cannot be read waits with backoff (`failingLogs`) while the others
    /// are drained. Anything else (the connection lost, the server stopping) throws.
    @discardableResult
    public func drain(shouldStop: () -> Bool = { false }, heartbeat: () -> Void = {}) throws -> Int {
        var total = 0
        while true {
            var round = 0
            var retried = false
            for log in logs where !shouldStop() {
                if let failure = log.failure, ContinuousClock.now < failure.retryAt { continue }
                do {
                    round += try step(log)
                    if log.failure != nil, log.synced {
                        logger.info("log readable again", metadata: ["log.directory": "\(log.directory)"])
                        log.failure = nil
                    }
                } catch {
                    // Whatever failed (a read, a statement, the commit of the batch in flight),
                    // every log's state is rebuilt from the database's checkpoints before going on.
                    forgetPositions()
                    guard let failure = error as? LogFailure else { throw error }
                    if failure.refusedContent, ownsTransactions, let lsns = failure.lsns,
                       !(lsns.count == 1 && failure.log.refused[lsns.lowerBound] != nil) {
                        // (A lone record refused again although it was a dead letter already:
                        // not its content then — that throws below.)
                        isolate(failure.log, lsns, failure.underlying)
                    } else if failure.lsns == nil, failure.underlying is LogError {
                        setAside(failure.log, failure.underlying)
                    } else {
                        throw failure.underlying
                    }
                    retried = true
                }
                heartbeat()
            }
            total += round
            if (round == 0 && !retried) || shouldStop() {
                do {
                    try settle()
                } catch {
                    forgetPositions()
                    throw (error as? LogFailure)?.underlying ?? error
                }
                return total
            }
        }
    }

    /// A batch PostgreSQL refused for its content: retried in halves (a batch of one names
    /// the record), then on at the size that worked until past the refused batch.
    private func isolate(_ log: LogState, _ lsns: ClosedRange<UInt64>, _ error: any Error) {
        let count = Int(lsns.upperBound - lsns.lowerBound + 1)
        let until = max(log.isolation?.until ?? 0, lsns.upperBound)
        if count == 1 {
            // The dead letter's text is the same in every run and every rebuild (the server's
            // message names indexes, which differ in a rebuild's shadow tables); the whole
            // message goes to the log line.
            let state = (error as? PostgresError)?.sqlState ?? ""
            let reason = "PostgreSQL refused the record (SQLSTATE \(state), \(state.hasPrefix("22") ? "a data exception" : "a program limit exceeded"))"
            log.refused[lsns.lowerBound] = reason
            logger.warning("a record the database refuses becomes a dead letter", metadata: [
                "log.directory": "\(log.directory)", "log.lsn": "\(lsns.lowerBound)", "error": "\(error)",
            ])
            // The rest of the refused batch is tried whole again (it may hold no other such record).
            log.isolation = until > lsns.lowerBound ? (until, Int(min(UInt64(batchSize), until - lsns.lowerBound))) : nil
        } else {
            log.isolation = (until, max(1, count / 2))
        }
    }

    /// A log that cannot be read waits (1 s doubling to a minute) while the others go on.
    private func setAside(_ log: LogState, _ error: any Error) {
        let backoff = min((log.failure?.backoff ?? .milliseconds(500)) * 2, .seconds(60))
        if log.failure?.message != "\(error)" {
            logger.error("cannot read this log; the other logs go on and it is retried with backoff", metadata: [
                "log.directory": "\(log.directory)", "error": "\(error)",
            ])
        }
        log.failure = ("\(error)", .now + backoff, backoff)
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
        do {
            try store.finish(ownTransaction: ownsTransactions)
        } catch {
            throw LogFailure(log: done.log, lsns: done.lsns, underlying: error)
        }
        done.log.checkpoint = done.lsns.upperBound
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
        let store = try currentStore()
        let (checkpoint, windowStart) = try store.checkpoint(log.reader.logID)
        log.fold = ProjectionFold()
        // Records refused by the database stay dead letters in the replayed window too, as
        // they were when first projected (also after a restart, from the dead-letter table).
        if let windowStart, windowStart >= 1 {
            for (lsn, error) in try store.deadLetters(log.reader.logID, from: windowStart) where log.refused[lsn] == nil {
                log.refused[lsn] = error
            }
        }
        log.fold.refused = log.refused
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
            if !log.synced {
                do {
                    try sync(log)
                } catch let error as LogError {
                    throw LogFailure(log: log, lsns: nil, underlying: error)
                }
            }
            var batch = ProjectionBatch()
            var limit = batchSize
            if let stop = stopAt[log.reader.logID] {
                let read = log.reader.nextLSN - 1
                guard stop > read else { return 0 }
                limit = Int(min(UInt64(limit), stop - read))
            }
            let first = log.reader.nextLSN
            if let isolation = log.isolation {
                if first > isolation.until { log.isolation = nil } else { limit = min(limit, isolation.limit) }
            }
            let n: Int
            do {
                n = try log.reader.read(maxRecords: limit) { lsn, payload in log.fold.fold(lsn: lsn, payload: payload, into: &batch) }
            } catch {
                throw LogFailure(log: log, lsns: nil, underlying: error)
            }
            guard n > 0 else { return 0 }
            let store = try currentStore()
            let prepared = store.prepare(batch, log: log.reader.logID)
            try settle()
            let outcome: ProjectionStore.Outcome
            do {
                outcome = try store.begin(prepared, log: log.reader.logID, expected: log.checkpoint, windowStart: log.fold.replayStart,
                                          ownTransaction: ownsTransactions)
            } catch {
                throw LogFailure(log: log, lsns: first...batch.lastLSN, underlying: error)
            }
            switch outcome {
            case .applied:
                inFlight = (log, first...batch.lastLSN, batch.deadLetters.count, batch.deadLetters.first?.error)
                return n
            case .checkpointMoved:
                // Another daemon projected these records: take its checkpoint and go on from there.
                log.synced = false
            }
        }
    }
}
