import EventLog
import Foundation
import LinkTracking
import Logging
import Synchronization

/// Follows logs and projects them into PostgreSQL, exactly once per (log, shard)
/// (docs/design/ingest.md, docs/design/sharding.md): `workers` threads, each a
/// `ShardWorker` with its own connection owning the shards `s` with `s mod workers = k`.
/// The shard count is read from the database; should a rebuild change it, the workers are
/// planned again.
public final class Ingestor {
    private let logDirectories: [String]
    private let batchSize: Int
    private let requestedWorkers: Int?
    private let logger: Logger
    private let connect: () throws -> PostgresConnection
    /// Where the projection tables are: `clickd_internal`, or a rebuild's shadow schema.
    public let schema: String
    /// An archive directory segments removed from the logs are read from (a rebuild's).
    let archive: String?
    private var workers: [ShardWorker] = []

    /// `workers`: how many connections (default: the number of cores), at most the shard count.
    public init(
        logDirectories: [String], batchSize: Int = 4096, workers: Int? = nil, logger: Logger,
        schema: String = "clickd_internal", archive: String? = nil, connect: @escaping () throws -> PostgresConnection
    ) throws {
        // The logs are opened now, so that a missing one is an error before anything runs.
        for directory in logDirectories { _ = try LogReader(directory: directory) }
        self.logDirectories = logDirectories
        self.batchSize = batchSize
        requestedWorkers = workers
        self.schema = schema
        self.archive = archive
        self.logger = logger
        self.connect = connect
    }

    /// The default number of workers: one per core.
    public static var defaultWorkers: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// Plans the workers for the shard count the database has (once, and again when it changed).
    private func plan() throws -> [ShardWorker] {
        if !workers.isEmpty { return workers }
        let db = try connect()
        let shards = try ProjectionStore(db, schema: schema).shardCount()
        db.close()
        let count = max(1, min(requestedWorkers ?? Self.defaultWorkers, shards))
        workers = try (0..<count).map { k in
            try ShardWorker(
                logDirectories: logDirectories, shardCount: shards, shards: Array(stride(from: k, to: shards, by: count)),
                batchSize: batchSize, logger: count > 1 ? logger.with("ingest.worker", "\(k)") : logger, schema: schema,
                archive: archive, connect: connect)
        }
        if count > 1 {
            logger.info("workers planned", metadata: ["ingest.workers": "\(count)", "ingest.shards": "\(shards)"])
        }
        return workers
    }

    /// Logs that cannot be read right now (each waits with backoff while the others go on).
    public var failingLogs: [FailingLog] {
        var seen: Set<String> = []
        return workers.flatMap(\.failingLogs).filter { seen.insert($0.directory).inserted }
    }

    /// Projects every log up to its current durable end with every worker at once; returns
    /// the records applied. Stops early, after each worker's batch in flight commits, when
    /// `shouldStop` says so; calls `heartbeat` (on the calling thread) at least every 100 ms.
    @discardableResult
    public func drain(shouldStop: @escaping @Sendable () -> Bool = { false }, heartbeat: () -> Void = {}) throws -> Int {
        try drain(to: ShardTargets(), shouldStop: shouldStop, heartbeat: heartbeat)
    }

    /// `drain`, with each (log, shard) projected no further than `targets` (a rebuild's replay).
    @discardableResult
    public func drain(to targets: ShardTargets, shouldStop: @escaping @Sendable () -> Bool = { false }, heartbeat: () -> Void = {}) throws -> Int {
        while true {
            let planned = try plan()
            let results = Self.inParallel(planned, heartbeat: heartbeat) { worker in
                try worker.drain(to: targets, shouldStop: shouldStop)
            }
            var applied = 0
            var firstError: (any Error)?
            var replan = false
            for result in results {
                switch result {
                case .success(let n): applied += n
                case .failure(let error as ProjectionStore.ShardCountChanged):
                    logger.info("\(error)")
                    replan = true
                case .failure(let error): firstError = firstError ?? error
                }
            }
            if let firstError { throw firstError }
            if replan {
                workers = []
                continue
            }
            return applied
        }
    }

    /// Follows the logs until `shouldStop` says so (each worker's batch in flight is
    /// committed first), each worker retrying with backoff while PostgreSQL is unavailable
    /// (one log line per change of state, also told to `state`). `heartbeat` is called at
    /// least every 100 ms — also while retrying: the daemon is alive.
    ///
    /// The loop runs on a thread of its own (`BlockingThread`), as its workers do: it blocks
    /// (libpq, joining the workers).
    public func run(
        shouldStop: @escaping @Sendable () -> Bool, heartbeat: @escaping @Sendable () -> Void = {},
        state: @escaping @Sendable (String) -> Void = { _ in }
    ) async {
        let this = BlockingThread.Handed(self)
        // `follow` does not throw.
        _ = try? await BlockingThread.run(name: "clickd-ingest") {
            this.value.follow(shouldStop: shouldStop, heartbeat: heartbeat, state: state)
        }
    }

    /// `run`'s loop, on the calling thread.
    private func follow(shouldStop: @escaping @Sendable () -> Bool, heartbeat: () -> Void, state: (String) -> Void) {
        // What is failing, by worker (-1: planning), set from the workers' threads.
        final class Failures: Sendable { let value = Mutex<[Int: String]>([:]) }
        let failures = Failures()
        var told = ""
        func tell() {
            let failing = failures.value.withLock { $0.sorted { $0.key < $1.key }.first?.value }
            let now = failing.map { "failing, retrying with backoff: \($0)" } ?? "ingesting"
            if now != told {
                state(now)
                told = now
            }
        }
        var backoff: Duration = .milliseconds(100)
        tell()
        while !shouldStop() {
            let planned: [ShardWorker]
            do {
                planned = try plan()
                failures.value.withLock { $0[-1] = nil }
                backoff = .milliseconds(100)
            } catch {
                if failures.value.withLock({ $0[-1] }) == nil {
                    logger.error("ingestion failing; retrying with backoff", metadata: ["error": "\(error)"])
                }
                failures.value.withLock { $0[-1] = "\(error)" }
                tell()
                heartbeat()
                Self.sleep(until: .now + backoff, unless: shouldStop)
                backoff = min(backoff * 2, .seconds(5))
                continue
            }
            tell()
            let replan = StopFlag()
            let logger = self.logger
            let follow: @Sendable (ShardWorker) throws -> Int = { worker in
                let id = worker.shards.first ?? 0
                Self.follow(
                    worker, logger: logger, shouldStop: { shouldStop() || replan.isSet },
                    replan: { replan.set() },
                    failing: { message in failures.value.withLock { $0[id] = message } })
                return 0
            }
            _ = Self.inParallel(
                planned,
                heartbeat: {
                    heartbeat()
                    tell()
                }, follow)
            if replan.isSet { workers = [] }
        }
        tell()
    }

    /// One worker's loop: drain, wait, again; failures retried with backoff (reported
    /// through `failing`, nil once it works again); a changed shard count ends it (`replan`).
    private static func follow(
        _ worker: ShardWorker, logger: Logger, shouldStop: () -> Bool, replan: () -> Void,
        failing: (String?) -> Void
    ) {
        var failed = false
        var backoff: Duration = .milliseconds(100)
        while !shouldStop() {
            do {
                let applied = try worker.drain(shouldStop: shouldStop)
                if failed {
                    logger.info("ingestion resumed")
                    failing(nil)
                    failed = false
                    backoff = .milliseconds(100)
                }
                if applied == 0 { waitForRecords(worker, unless: shouldStop) }
            } catch is ProjectionStore.ShardCountChanged {
                replan()
                return
            } catch {
                if !failed {
                    logger.error("ingestion failing; retrying with backoff", metadata: ["error": "\(error)"])
                    failed = true
                }
                failing("\(error)")
                worker.disconnect()
                sleep(until: .now + backoff, unless: shouldStop)
                backoff = min(backoff * 2, .seconds(5))
            }
        }
    }

    /// Waits (inotify, no CPU) until `worker` has records to drain, or until `stop` says so.
    private static func waitForRecords(_ worker: ShardWorker, unless stop: () -> Bool) {
        while !stop(), !worker.waitForRecords(timeout: .seconds(60), unless: stop) {}
    }

    /// Sleeps in steps of 20 ms until `deadline`, or until `stop` says so.
    private static func sleep(until deadline: ContinuousClock.Instant, unless stop: () -> Bool) {
        while ContinuousClock.now < deadline, !stop() {
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    /// Runs `body` for each worker on a thread of its own (blocking libpq calls stay off
    /// Swift's cooperative threads), calling `heartbeat` on the calling thread every 100 ms
    /// meanwhile.
    static func inParallel(
        _ workers: [ShardWorker], heartbeat: () -> Void,
        _ body: @escaping @Sendable (ShardWorker) throws -> Int
    ) -> [Result<Int, any Error>] {
        // @unchecked: each worker is used by its one thread only, the results slot by its
        // thread only, and read after every thread has finished.
        final class Slot: @unchecked Sendable {
            let worker: ShardWorker
            var result: Result<Int, any Error> = .success(0)
            init(_ worker: ShardWorker) { self.worker = worker }
        }
        let slots = workers.map(Slot.init)
        let group = DispatchGroup()
        for slot in slots {
            group.enter()
            let thread = Thread {
                slot.result = Result { try body(slot.worker) }
                group.leave()
            }
            thread.name = "clickd-ingest-worker"
            thread.start()
        }
        while group.wait(timeout: .now() + .milliseconds(100)) == .timedOut { heartbeat() }
        heartbeat()
        return slots.map(\.result)
    }

    /// Per log: how far every shard is projected (the lowest checkpoint) and its durable end.
    public func positions() throws -> [LogPosition] {
        let planned = try plan()
        var result: [LogPosition] = []
        for worker in planned {
            for (i, position) in try worker.positions().enumerated() {
                if i < result.count { result[i].projected = min(result[i].projected, position.projected) } else { result.append(position) }
            }
        }
        return result
    }

    /// Per log, from the database: durable end, the checkpoints of its shards, dead letters.
    public func status() throws -> [LogStatus] {
        let db = try connect()
        defer { db.close() }
        let store = ProjectionStore(db, schema: schema)
        let shards = try store.shardCount()
        return try logDirectories.map { directory in
            let reader = try LogReader(directory: directory)
            let found = try store.checkpoints(reader.logID)
            let checkpoints = (0..<shards).map { found[$0] ?? 0 }
            let dead = Int(try db.query("SELECT count(*) FROM \(schema).dead_letters WHERE log_id = $1", [reader.logID])[0][0]!)!
            return LogStatus(
                directory: directory, logID: reader.logID, durable: try reader.durableWatermark(), shards: checkpoints,
                deadLetters: dead)
        }
    }
}

/// A log as `clickd status` shows it.
public struct LogStatus: Sendable, Equatable {
    public var directory: String
    public var logID: LogID
    public var durable: UInt64
    /// Each shard's checkpoint, by shard.
    public var shards: [UInt64]
    public var deadLetters: Int
    /// What is surely projected: the lowest checkpoint of the shards.
    public var checkpoint: UInt64 { shards.min() ?? 0 }
}

extension Logger {
    /// A copy with one more metadata value.
    func with(_ key: String, _ value: String) -> Logger {
        var copy = self
        copy[metadataKey: key] = "\(value)"
        return copy
    }
}
