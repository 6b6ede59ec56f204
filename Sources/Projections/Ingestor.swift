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

    public init(logDirectories: [String], batchSize: Int = 5000, logger: Logger, connect: @escaping () throws -> PostgresConnection) throws {
        logs = try logDirectories.map { try LogState(directory: $0) }
        self.batchSize = batchSize
        self.logger = logger
        self.connect = connect
    }

    /// Projects every log up to its current durable end; returns the records applied.
    @discardableResult
    public func drain() throws -> Int {
        var total = 0
        while true {
            var round = 0
            for log in logs { round += try step(log) }
            total += round
            if round == 0 { return total }
        }
    }

    /// Follows the logs until `shouldStop` says so, retrying with backoff while PostgreSQL
    /// is unavailable (one log line per change of state).
    public func run(shouldStop: @Sendable () -> Bool) async {
        var failing = false
        var backoff: Duration = .milliseconds(100)
        while !shouldStop() {
            do {
                let applied = try drain()
                if failing {
                    logger.info("ingestion resumed")
                    failing = false
                    backoff = .milliseconds(100)
                }
                if applied == 0 { try? await Task.sleep(for: .milliseconds(100)) }
            } catch {
                if !failing {
                    logger.error("ingestion failing; retrying with backoff", metadata: ["error": "\(error)"])
                    failing = true
                }
                store = nil
                for log in logs { log.synced = false }
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    /// Per log: durable end, projected checkpoint, dead letters.
    public func status() throws -> [(directory: String, logID: LogID, durable: UInt64, checkpoint: UInt64, deadLetters: Int)] {
        let store = try currentStore()
        return try logs.map { log in
            let durable = try log.reader.durableWatermark()
            let checkpoint = try store.checkpoint(log.reader.logID).lsn
            let dead = Int(try store.db.query("SELECT count(*) FROM clickd_internal.dead_letters WHERE log_id = $1",
                                              ["\(log.reader.logID)"])[0][0]!)!
            return (log.directory, log.reader.logID, durable, checkpoint, dead)
        }
    }

    private func currentStore() throws -> ProjectionStore {
        if let store { return store }
        let made = ProjectionStore(try connect())
        store = made
        return made
    }

    /// Rebuilds a log's fold from the database: replays the classifier's window up to the
    /// checkpoint (without applying it) and positions the reader after the checkpoint.
    private func sync(_ log: LogState) throws {
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

    private func step(_ log: LogState) throws -> Int {
        if !log.synced { try sync(log) }
        var batch = ProjectionBatch()
        let n: Int
        do {
            n = try log.reader.read(maxRecords: batchSize) { lsn, payload in log.fold.fold(lsn: lsn, payload: payload, into: &batch) }
        } catch {
            log.synced = false
            throw error
        }
        guard n > 0 else { return 0 }
        do {
            switch try currentStore().apply(batch, log: log.reader.logID, expected: log.checkpoint, windowStart: log.fold.replayStart) {
            case .applied:
                log.checkpoint = batch.lastLSN
                if !batch.deadLetters.isEmpty {
                    logger.warning("records that do not decode were put in the dead-letter table", metadata: [
                        "log.directory": "\(log.directory)", "log.dead_letters": "\(batch.deadLetters.count)",
                        "error": "\(batch.deadLetters[0].error)",
                    ])
                }
                return n
            case .checkpointMoved:
                // Another daemon projected these records: take its checkpoint and go on.
                log.synced = false
                return 0
            }
        } catch {
            log.synced = false
            throw error
        }
    }
}
