import EventLog
import LinkTracking
import Logging
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One connection projecting a fixed set of shards of every log, exactly once per
/// (log, shard) (docs/design/sharding.md). It reads each log itself, keeps a fold per
/// (log, shard), and applies each shard's batch in a transaction of its own. Any failure
/// rebuilds its state from the database's checkpoints, so nothing is lost or doubled
/// whatever fails when. Not thread-safe: one thread drives a worker.
public final class ShardWorker {
    /// One (log, shard) of this worker.
    final class ShardState {
        let shard: Int
        var fold = ProjectionFold()
        /// The shard's erasure sequence its fold's list was loaded under (`sync`).
        var erasureSeq: Int64 = 0
        var batch = ProjectionBatch()
        /// The projected LSN, as this worker knows it (moves when a batch commits).
        var checkpoint: UInt64 = 0
        /// After a resync: replay this shard's records from here up to `checkpoint`.
        var replayFrom: UInt64?
        /// Records PostgreSQL refused for their content (LSN → its error): dead letters from
        /// then on (kept across resyncs; restored from `dead_letters` after a restart).
        var refused: [UInt64: String] = [:]
        /// While a batch the database refused is narrowed down: batches of at most `limit`
        /// records until the reader is past `until`.
        var isolation: (until: UInt64, limit: Int)?
        /// The LSN not to project past (a rebuild replaying up to the live checkpoints).
        var target: UInt64?

        init(shard: Int) { self.shard = shard }

        /// Where this shard's checkpoint can move once the log is read up to `read`.
        func through(_ read: UInt64) -> UInt64 { min(read, target ?? .max) }
    }

    final class LogState {
        let directory: String
        let reader: LogReader
        /// Indexed by shard: this worker's shards, nil for the others.
        var shards: [ShardState?]
        let owned: [ShardState]
        var synced = false
        /// The last LSN read (every shard's pending batch covers the log up to here).
        var read: UInt64 = 0
        var pending = 0
        /// This log cannot be read (a damaged segment): it waits, the other logs go on.
        var failure: (message: String, retryAt: ContinuousClock.Instant, backoff: Duration)?

        init(directory: String, archive: String?, shardCount: Int, owned: [Int]) throws {
            self.directory = directory
            reader = try LogReader(directory: directory, archive: archive)
            let states = owned.map(ShardState.init)
            var byShard = [ShardState?](repeating: nil, count: shardCount)
            for state in states { byShard[state.shard] = state }
            shards = byShard
            self.owned = states
        }
    }

    /// A failure of one log's batch (its read, its statements or its commit), so that it
    /// is handled for that log alone when it can be.
    struct LogFailure: Error, CustomStringConvertible {
        let log: LogState
        /// The (log, shard) batch and its records, when the failure came from the database.
        let batch: (state: ShardState, records: Int, first: UInt64, last: UInt64)?
        let underlying: any Error

        var description: String { "\(log.directory): \(underlying)" }

        /// PostgreSQL refused the batch for what it holds, not for its own state: a data
        /// exception (class 22: a byte sequence the database encoding cannot hold, a value
        /// out of range) or a program limit (class 54: an index row over B-tree's size
        /// limit). Retrying the same rows can only fail again, so the rows are isolated.
        var refusedContent: Bool {
            guard batch != nil, let state = (underlying as? PostgresError)?.sqlState else { return false }
            return state.hasPrefix("22") || state.hasPrefix("54")
        }
    }

    /// The shard count of the projection tables this worker was planned for.
    public let shardCount: Int
    /// The shards this worker owns.
    public let shards: [Int]
    private let logs: [LogState]
    private let connect: () throws -> PostgresConnection
    private var store: ProjectionStore?
    /// The months of activity known to have their partition (made before a batch needs them).
    private var partitions: ActivityPartitions
    /// The most records one transaction applies; a worker holds at most 8 times as many.
    private let batchSize: Int
    private let logger: Logger
    /// The inotify watch on every log's directory (`waitForRecords`), made on first wait;
    /// `watchFailed` once it could not be made (the worker then polls).
    private var watch: LogWatch?
    private var watchFailed = false
    /// Where the projection tables are: `clickd_internal`, or a rebuild's shadow schema.
    public let schema: String
    /// False while a rebuild holds its swap transaction open on the connection: batches are
    /// applied inside it (no BEGIN/COMMIT of their own). Set by `drain(to:inTransaction:)`.
    private var ownsTransactions = true
    /// The batch whose upserts and COMMIT the server is running while the next one is
    /// encoded or read (the two overlap: one core folds, the other runs PostgreSQL).
    private var inFlight:
        (
            log: LogState, state: ShardState, records: Int, first: UInt64, last: UInt64, through: UInt64,
            deadLetters: Int, firstError: String?
        )?

    public init(
        logDirectories: [String], shardCount: Int, shards: [Int], batchSize: Int = 4096, logger: Logger,
        schema: String = "clickd_internal", archive: String? = nil, connect: @escaping () throws -> PostgresConnection
    ) throws {
        precondition(ShardFunction.shardCounts.contains(shardCount) && shards.allSatisfy { (0..<shardCount).contains($0) })
        self.shardCount = shardCount
        self.shards = shards
        logs = try logDirectories.map { try LogState(directory: $0, archive: archive, shardCount: shardCount, owned: shards) }
        self.batchSize = max(1, batchSize)
        progress = Progress(logs: logDirectories.count)
        self.schema = schema
        partitions = ActivityPartitions(schema: schema)
        self.logger = logger
        self.connect = connect
    }

    /// The records this worker has applied since it was made.
    public private(set) var applied = 0

    /// Each log's lowest checkpoint of this worker's shards, for other threads to read
    /// while this worker runs (progress, positions).
    final class Progress: Sendable {
        let projected: Mutex<[UInt64]>
        init(logs: Int) { projected = Mutex([UInt64](repeating: 0, count: logs)) }
    }
    let progress: Progress

    private func publish(_ log: LogState) {
        guard let index = logs.firstIndex(where: { $0 === log }) else { return }
        let lowest = log.owned.map(\.checkpoint).min() ?? 0
        progress.projected.withLock { $0[index] = lowest }
    }

    /// Logs that cannot be read right now (each waits with backoff while the others go on).
    public var failingLogs: [FailingLog] {
        logs.compactMap { log in log.failure.map { FailingLog(directory: log.directory, error: $0.message) } }
    }

    /// Projects every log up to its current durable end; returns the records applied.
    /// Stops early, after the batch in flight commits, when `shouldStop` says so; calls
    /// `heartbeat` after every round of the logs.
    ///
    /// One log's trouble holds back no other log: a record PostgreSQL refuses for its content
    /// is isolated (its batch retried in halves until it stands alone) and becomes a dead
    /// letter; a log that cannot be read waits with backoff (`failingLogs`) while the others
    /// are drained. Anything else (the connection lost, the server stopping, the shard count
    /// changed) throws.
    @discardableResult
    public func drain(shouldStop: () -> Bool = { false }, heartbeat: () -> Void = {}) throws -> Int {
        var total = 0
        while true {
            var round = 0
            var retried = false
            for log in logs where !shouldStop() {
                if let failure = log.failure, ContinuousClock.now < failure.retryAt { continue }
                do {
                    round += try step(log, shouldStop: shouldStop)
                    if log.failure != nil, log.synced {
                        logger.info("log readable again", metadata: ["log.directory": "\(log.directory)"])
                        log.failure = nil
                    }
                } catch {
                    // Whatever failed (a read, a statement, the commit of the batch in flight),
                    // every log's state is rebuilt from the database's checkpoints before going on.
                    forgetPositions()
                    guard let failure = error as? LogFailure else { throw error }
                    if failure.refusedContent, ownsTransactions, let batch = failure.batch,
                        !(batch.records == 1 && batch.state.refused[batch.first] != nil)
                    {
                        // (A lone record refused again although it was a dead letter already:
                        // not its content then — that throws below.)
                        isolate(failure.log, batch, failure.underlying)
                    } else if failure.batch == nil, failure.underlying is LogError {
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

    /// What a rebuild needs: projects each (log, shard) up to the LSN `targets` gives it
    /// and no further (a shard `targets` does not name: to the durable end), inside the
    /// caller's open transaction on this worker's connection (`inTransaction`) or in
    /// transactions of its own. Returns the positions reached. A failure inside the caller's
    /// transaction leaves the caller to roll back; this worker then forgets what it knew.
    @discardableResult
    public func drain(
        to targets: ShardTargets, inTransaction: Bool = false, shouldStop: () -> Bool = { false },
        heartbeat: () -> Void = {}
    ) throws -> Int {
        ownsTransactions = !inTransaction
        for log in logs {
            for state in log.owned { state.target = targets.lsn(log.reader.logID, shard: state.shard) }
        }
        defer {
            ownsTransactions = true
            for log in logs { for state in log.owned { state.target = nil } }
        }
        do {
            return try drain(shouldStop: shouldStop, heartbeat: heartbeat)
        } catch {
            if inTransaction { forgetPositions() }
            throw error
        }
    }

    /// Blocks until there is something to drain — a log with durable records past what this
    /// worker has read, a log not yet synced, a log set aside whose retry is due — or until
    /// `timeout` passes or `stop` says so (looked at every 50 ms); returns whether there is.
    /// Waiting is an inotify watch on every log's directory (`LogWatch`): no CPU while idle, and a click wakes the worker as soon as
    /// the edge publishes it as durable. A log whose watermark cannot be read counts as
    /// ready: draining it sets it aside with its error. Without inotify (no instance to be
    /// had: a warning, once), it sleeps up to 100 ms and says yes.
    public func waitForRecords(timeout: Duration, unless stop: () -> Bool = { false }) -> Bool {
        var limit = timeout
        for log in logs {
            if let failure = log.failure { limit = min(limit, max(.zero, failure.retryAt - .now)) }
        }
        if watch == nil, !watchFailed {
            do {
                watch = try LogWatch(directories: logs.map(\.directory))
            } catch {
                watchFailed = true
                logger.warning("cannot watch the logs with inotify; polling them every 100 ms", metadata: ["error": "\(error)"])
            }
        }
        guard let watch else {
            usleep(useconds_t(min(limit, .milliseconds(100)).components.attoseconds / 1_000_000_000_000))
            return true
        }
        return watch.wait(
            timeout: limit,
            until: {
                logs.contains { log in
                    if let failure = log.failure { return ContinuousClock.now >= failure.retryAt }
                    if !log.synced { return true }
                    return (try? log.reader.durableWatermark()).map { $0 >= log.reader.nextLSN } ?? true
                }
            }, unless: stop)
    }

    /// Every (log, shard) of this worker and its checkpoint, as this worker knows it.
    public func shardPositions() -> [ShardPosition] {
        logs.flatMap { log in log.owned.map { ShardPosition(logID: log.reader.logID, shard: $0.shard, lsn: $0.checkpoint) } }
    }

    /// A batch PostgreSQL refused for its content: retried in halves (a batch of one names
    /// the record), then on at full size.
    private func isolate(_ log: LogState, _ batch: (state: ShardState, records: Int, first: UInt64, last: UInt64), _ error: any Error) {
        let state = batch.state
        if batch.records == 1 {
            // The dead letter's text is the same in every run and every rebuild (the server's
            // message names indexes, which differ in a rebuild's shadow tables); the whole
            // message goes to the log line.
            let code = (error as? PostgresError)?.sqlState ?? ""
            let reason = "PostgreSQL refused the record (SQLSTATE \(code), \(code.hasPrefix("22") ? "a data exception" : "a program limit exceeded"))"
            state.refused[batch.first] = reason
            logger.warning(
                "a record the database refuses becomes a dead letter",
                metadata: [
                    "log.directory": "\(log.directory)", "log.lsn": "\(batch.first)", "log.shard": "\(state.shard)", "error": "\(error)",
                ])
            state.isolation = nil
        } else {
            state.isolation = (max(state.isolation?.until ?? 0, batch.last), max(1, batch.records / 2))
        }
    }

    /// A log that cannot be read waits (1 s doubling to a minute) while the others go on.
    private func setAside(_ log: LogState, _ error: any Error) {
        let backoff = min((log.failure?.backoff ?? .milliseconds(500)) * 2, .seconds(60))
        if log.failure?.message != "\(error)" {
            logger.error(
                "cannot read this log; the other logs go on and it is retried with backoff",
                metadata: [
                    "log.directory": "\(log.directory)", "error": "\(error)",
                ])
        }
        log.failure = ("\(error)", .now + backoff, backoff)
    }

    /// Forgets what this worker knows of the projections (after a failure, or after a
    /// transaction it did not own was rolled back): every log is re-read from the
    /// database's checkpoints.
    public func forgetPositions() {
        inFlight = nil
        for log in logs { log.synced = false }
    }

    /// Drops the connection (after it failed: the next use connects again).
    public func disconnect() {
        inFlight = nil
        store = nil
        partitions = ActivityPartitions(schema: schema)
    }

    /// Waits for the batch in flight to commit; only then does its shard's checkpoint move.
    private func settle() throws {
        guard let done = inFlight, let store else { return }
        inFlight = nil
        do {
            try store.finish(ownTransaction: ownsTransactions)
        } catch {
            throw LogFailure(log: done.log, batch: (done.state, done.records, done.first, done.last), underlying: error)
        }
        done.state.checkpoint = done.through
        applied += done.records
        publish(done.log)
        if done.deadLetters > 0 {
            logger.warning(
                "records that do not decode were put in the dead-letter table",
                metadata: [
                    "log.directory": "\(done.log.directory)", "log.shard": "\(done.state.shard)", "log.dead_letters": "\(done.deadLetters)",
                    "error": "\(done.firstError ?? "")",
                ])
        }
    }

    /// Per log: its directory and ID, how far all of this worker's shards are projected
    /// (the lowest of their checkpoints, as this worker knows them), and its durable end.
    /// Safe to call from any thread while the worker runs.
    public func positions() throws -> [LogPosition] {
        let projected = progress.projected.withLock { $0 }
        return try logs.enumerated().map { i, log in
            LogPosition(
                directory: log.directory, logID: log.reader.logID, projected: projected[i],
                durable: try LogReader.durableWatermark(directory: log.directory))
        }
    }

    private func currentStore() throws -> ProjectionStore {
        if let store { return store }
        let db = try connect()
        let made = ProjectionStore(db, schema: schema, shape: try .configured(for: db))
        store = made
        return made
    }

    /// Rebuilds a log's folds from the database: each shard's checkpoint and window start,
    /// the reader positioned at the lowest LSN any shard needs (its records up to its
    /// checkpoint are replayed into its fold, without applying them, from its window start).
    private func sync(_ log: LogState) throws {
        try settle()
        let store = try currentStore()
        // `checkpoint` throws ShardCountChanged when a rebuild has changed the shard count.
        var start = UInt64.max
        for state in log.owned {
            let stored = try store.checkpoint(log.reader.logID, shard: state.shard, shards: shardCount)
            state.fold = ProjectionFold()
            state.erasureSeq = stored.erasureSeq
            state.batch = ProjectionBatch()
            state.checkpoint = stored.lsn
            state.replayFrom = nil
            // Records refused by the database stay dead letters in the replayed window too, as
            // they were when first projected (also after a restart, from the dead-letter table).
            if let windowStart = stored.windowStart, windowStart >= 1 {
                for (lsn, error) in try store.deadLetters(log.reader.logID, shard: state.shard, from: windowStart)
                where state.refused[lsn] == nil {
                    state.refused[lsn] = error
                }
                if windowStart <= stored.lsn { state.replayFrom = windowStart }
            }
            state.fold.refused = state.refused
            start = min(start, state.replayFrom ?? stored.lsn + 1)
        }
        // After the sequences: an erasure committed in between makes the batches' sequence
        // stale, never the list (docs/design/erasure.md, 2a).
        let erased = try store.erasures(shards: log.owned.map(\.shard))
        let activityFrom = try store.activityDroppedBefore()
        for state in log.owned {
            state.fold.erased = ErasureMatcher([erased])
            state.fold.activityFrom = activityFrom
        }
        log.reader.seek(to: start == .max ? 1 : start)
        log.read = log.reader.nextLSN - 1
        log.pending = 0
        log.synced = true
        publish(log)
    }

    /// Reads and folds the next records of `log` into its shards' batches, then applies each
    /// shard's batch in its own transaction (the next one encoded while the previous one
    /// commits). Returns the records applied (0 at the log's durable end).
    private func step(_ log: LogState, shouldStop: () -> Bool) throws -> Int {
        while true {
            if !log.synced {
                do {
                    try sync(log)
                } catch let error as LogError {
                    throw LogFailure(log: log, batch: nil, underlying: error)
                }
            }
            let atEnd = try fill(log)
            var applied = 0
            var moved = false
            // In shard order: every worker locks a log's checkpoint rows in the same order.
            for state in log.owned where !moved {
                if state.batch.records > 0 {
                    let (outcome, records) = try apply(state, of: log)
                    if case .checkpointMoved = outcome { moved = true } else { applied += records }
                } else if case let through = state.through(log.read), state.checkpoint < through,
                    atEnd || through - state.checkpoint >= UInt64(batchSize) * 8
                {
                    // A shard with no records of late: its checkpoint follows the reader, so
                    // that a restart need not re-read what it has no records in.
                    try settle()
                    let windowStart = state.fold.replayStart
                    guard
                        try currentStore().advance(
                            log.reader.logID, shard: state.shard, shards: shardCount, expected: state.checkpoint,
                            through: through, windowStart: windowStart)
                    else {
                        moved = true
                        break
                    }
                    state.checkpoint = through
                    publish(log)
                }
            }
            if moved {
                // Another daemon projected some of these records: take its checkpoints and
                // go on from there (the batches not applied are read again).
                log.synced = false
                if shouldStop() { return applied }
                continue
            }
            log.pending = 0
            return applied
        }
    }

    /// Reads records into the shards' pending batches until a batch is full, the worker
    /// holds its most, the log's durable end (or the rebuild's stop) is reached. Returns
    /// whether it stopped at the end.
    private func fill(_ log: LogState) throws -> Bool {
        let cap = batchSize * 8
        // With targets (a rebuild), nothing past the highest of them is read.
        let targets = log.owned.map { $0.target ?? .max }
        let stop = targets.max() ?? .max
        while log.pending < cap, log.read < stop {
            var full = false
            let chunk = Int(min(UInt64(cap - log.pending), stop - log.read))
            let n: Int
            do {
                n = try log.reader.readWhile(maxRecords: max(1, chunk)) { lsn, payload in
                    log.read = lsn
                    let shard = ShardFunction.shard(ofRecord: payload, lsn: lsn, shards: shardCount)
                    guard let state = log.shards[shard] else { return true }
                    if lsn <= state.checkpoint {
                        if let from = state.replayFrom, lsn >= from { state.fold.replay(lsn: lsn, payload: payload) }
                        return true
                    }
                    if let target = state.target, lsn > target { return true }
                    state.fold.fold(lsn: lsn, payload: payload, into: &state.batch)
                    log.pending += 1
                    var limit = batchSize
                    if let isolation = state.isolation {
                        if state.batch.firstLSN > isolation.until { state.isolation = nil } else { limit = min(limit, isolation.limit) }
                    }
                    if state.batch.records >= limit { full = true }
                    return !full
                }
            } catch {
                // The records before the damage are applied first; the next read throws again.
                if log.pending > 0 { return false }
                throw LogFailure(log: log, batch: nil, underlying: error)
            }
            if full { return false }
            if n == 0 { return true }
        }
        return log.read >= stop
    }

    /// Starts applying one shard's pending batch (after the previous one has committed).
    private func apply(_ state: ShardState, of log: LogState) throws -> (ProjectionStore.Outcome, Int) {
        let store = try currentStore()
        let batch = state.batch
        let through = state.through(log.read)
        let prepared = store.prepare(batch, log: log.reader.logID, shard: state.shard, through: through)
        try settle()
        let failureBatch = (state, batch.records, batch.firstLSN, batch.lastLSN)
        let outcome: ProjectionStore.Outcome
        do {
            // The months of its rows that have no partition yet, made first (migration 0012).
            let months = partitions.missing(batch.activity, now: EventLogConfiguration.wallClockMilliseconds())
            if !months.isEmpty { try partitions.make(months, db: store.db) }
            outcome = try store.begin(
                prepared, log: log.reader.logID, shards: shardCount, expected: state.checkpoint,
                windowStart: state.fold.replayStart, erasureSeq: state.erasureSeq, ownTransaction: ownsTransactions)
        } catch let error as ProjectionStore.ShardCountChanged {
            throw error
        } catch {
            throw LogFailure(log: log, batch: failureBatch, underlying: error)
        }
        state.batch = ProjectionBatch()
        if case .applied = outcome {
            inFlight = (
                log, state, batch.records, batch.firstLSN, batch.lastLSN, through, batch.deadLetters.count,
                batch.deadLetters.first?.error
            )
        }
        return (outcome, batch.records)
    }
}

/// How far one (log, shard) is projected.
public struct ShardPosition: Sendable, Equatable {
    public var logID: LogID
    public var shard: Int
    public var lsn: UInt64
}

/// The LSN each (log, shard) is to be projected to (a rebuild's replay and catch-up).
public struct ShardTargets: Sendable, Equatable {
    public var byLog: [LogID: [Int: UInt64]] = [:]
    /// For a log whose shards are not listed one by one: the same LSN for every shard.
    public var everyShard: [LogID: UInt64] = [:]

    public init(byLog: [LogID: [Int: UInt64]] = [:], everyShard: [LogID: UInt64] = [:]) {
        self.byLog = byLog
        self.everyShard = everyShard
    }

    /// nil: no target (the durable end).
    public func lsn(_ log: LogID, shard: Int) -> UInt64? { byLog[log]?[shard] ?? everyShard[log] }
}

/// A log that cannot be read right now, and why (it is retried with backoff).
public struct FailingLog: Sendable, Equatable {
    public let directory: String
    public let error: String
}

/// How far a log is projected and how far it is durable.
public struct LogPosition: Sendable, Equatable {
    public var directory: String
    public var logID: LogID
    /// The lowest checkpoint of the shards considered.
    public var projected: UInt64
    public var durable: UInt64
}
