import EventLog
import Logging
import ServiceLifecycle
import Synchronization

/// Tells each followed log what this database still needs of it: writes
/// `<log>/followers/<database id>` (`FollowerFile`) every `interval`, from the committed
/// checkpoints — so it never says more is projected than is — and the edge's retention
/// removes nothing a restarted daemon would read again (docs/design/archive.md, "Retention").
///
/// `needed_from` is the lowest over the log's shards of where a restarted worker starts
/// reading: the classifier's replay start when it has one, else the checkpoint + 1; a shard
/// with no checkpoint row yet needs the log from LSN 1.
public final class FollowerReporter: Service, Sendable {
    let logDirectories: [String]
    let interval: Duration
    let logger: Logger
    let connect: @Sendable () throws -> PostgresConnection
    let wallClock: @Sendable () -> UInt64
    private let written = Mutex(0)

    public init(
        logDirectories: [String], interval: Duration = .seconds(10), logger: Logger,
        wallClock: @escaping @Sendable () -> UInt64 = EventLogConfiguration.wallClockMilliseconds,
        connect: @escaping @Sendable () throws -> PostgresConnection
    ) {
        self.logDirectories = logDirectories
        self.interval = interval
        self.logger = logger
        self.wallClock = wallClock
        self.connect = connect
    }

    /// Passes that wrote every follower file they had to (tests wait for one).
    public var passesWritten: Int { written.withLock { $0 } }

    public func run() async throws {
        // A log directory without followers/ (an edge older than this), or the database
        // away: retention holds the log meanwhile, which is safe.
        await runPeriodically(
            name: "clickd-followers", interval: interval, logger: logger,
            failure: "cannot write follower files; the edges hold their logs meanwhile", recovered: "follower files are written again"
        ) { try self.reportOnce() }
    }

    /// Reads this database's id and checkpoints, and writes every log's follower file.
    public func reportOnce() throws {
        let db = try connect()
        defer { db.close() }
        let identity: [[String?]]
        do {
            identity = try db.query("SELECT id::text FROM clickd_internal.database_identity")
        } catch let error as PostgresError where error.sqlState == "42P01" {
            throw PostgresError(sqlState: error.sqlState, message: "the database has no clickd_internal.database_identity: run clickd migrate")
        }
        guard let id = identity.first?[0] ?? nil, FollowerFile.isValidDatabaseID(id) else {
            throw PostgresError(sqlState: nil, message: "clickd_internal.database_identity holds no id: run clickd migrate")
        }
        let store = ProjectionStore(db)
        let shards = try store.shardCount()
        var erasures = try ErasureListState(database: id, store: store)
        var covered: [UInt64] = []
        var failures: [String] = []
        for directory in logDirectories {
            // An edge that keeps everything (no archiving, no --keep-local) makes no followers/.
            guard FileSystem.isDirectory(FollowerFile.directory(of: directory)) else { continue }
            do {
                let logID = try LogReader(directory: directory).logID
                var needed = [UInt64](repeating: 1, count: shards)
                for row in try db.query("SELECT shard, lsn, window_start FROM clickd_internal.checkpoints WHERE log_id = $1", [logID]) {
                    guard let shard = row[0].flatMap({ Int($0) }), (0..<shards).contains(shard), let lsn = row[1].flatMap({ UInt64($0) })
                    else { continue }
                    let resume = lsn + 1
                    needed[shard] = row[2].flatMap { UInt64($0) }.map { max(1, min($0, resume)) } ?? resume
                }
                let file = FollowerFile(logID: logID, database: id, neededFrom: needed.min() ?? 1, updated: wallClock())
                try file.write(logDirectory: directory)
                if let until = try tellErasures(&erasures, logDirectory: directory) { covered.append(until) }
            } catch {
                failures.append("\(directory): \(error)")
            }
        }
        // A person's records are gone from the logs once every followed log's edge says its
        // segments are clean for this list through the time of the request.
        if erasures.count > 0, covered.count == logDirectories.count, let until = covered.min() {
            let marked = try db.query(
                """
                UPDATE clickd_ingest.erasures SET log_clean_at = now()
                 WHERE log_clean_at IS NULL AND requested_at <= to_timestamp($1::bigint / 1000.0) RETURNING erasure_id
                """, [until])
            if !marked.isEmpty {
                logger.notice("erased people are gone from every followed log", metadata: ["erasures": "\(marked.count)"])
            }
        }
        if !failures.isEmpty { throw FollowerReportError(failures.joined(separator: "; ")) }
        written.withLock { $0 += 1 }
    }
}

extension FollowerReporter {
    /// This database's erasure list as the edges see it: named by its size and newest request
    /// (the list only grows), read in full only when an edge's file must be written.
    struct ErasureListState {
        let database: String
        let revision: String
        let count: Int
        let store: ProjectionStore
        private var file: ErasuresFile?

        init(database: String, store: ProjectionStore) throws {
            let row = try store.db.query(
                "SELECT count(*), coalesce(max((extract(epoch FROM requested_at) * 1000)::bigint), 0) FROM clickd_ingest.erasures"
            ).first
            count = row?[0].flatMap { Int($0) } ?? 0
            revision = "\(count)-\(row?[1] ?? "0")"
            self.database = database
            self.store = store
        }

        /// Every erased person's MAC, forever (a person erased may still click an old link).
        mutating func load() throws -> ErasuresFile {
            if let file { return file }
            let rows = try store.db.query(
                "SELECT customer_mac, (extract(epoch FROM requested_at) * 1000)::bigint FROM clickd_ingest.erasures ORDER BY customer_mac")
            let entries = rows.compactMap { row -> ErasuresFile.Entry? in
                guard let mac = row[0].flatMap(ProjectionStore.bytea), let at = row[1].flatMap({ UInt64($0) }) else { return nil }
                return ErasuresFile.Entry(mac: mac, requestedAt: at)
            }
            let loaded = ErasuresFile(
                database: database, revision: "\(entries.count)-\(entries.map(\.requestedAt).max() ?? 0)", key: try store.erasureKey(), macs: entries)
            file = loaded
            return loaded
        }
    }

    /// Writes the log's erasures file when the edge's copy is not this list (an fsync only
    /// when the list changed), and returns how far the edge says the log is clean for it
    /// (ms since the epoch; nil: not yet, or an edge that makes no erasures/).
    func tellErasures(_ erasures: inout ErasureListState, logDirectory: String) throws -> UInt64? {
        guard erasures.count > 0, FileSystem.isDirectory(ErasuresFile.directory(of: logDirectory)) else { return nil }
        if ErasuresFile.revision(logDirectory: logDirectory, database: erasures.database) != erasures.revision {
            try erasures.load().write(logDirectory: logDirectory)
        }
        let done = ErasureStatus.read(logDirectory: logDirectory).done[erasures.database]
        return done?.revision == erasures.revision ? done?.coveredUntil : nil
    }
}

struct FollowerReportError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
