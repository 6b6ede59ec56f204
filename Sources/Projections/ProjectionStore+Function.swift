import EventLog
import Foundation

/// The "function" write shape: a whole batch in one call of `clickd_ingest.apply_batch`
/// (migrations/0009_apply_batch.sql, 0010_opens.sql, 0011_erasures.sql), its rows as one array per column. On a Citus
/// coordinator the call is delegated to the worker that holds the batch's shard (the
/// function is distributed by its first argument, co-located with the checkpoints), so
/// no row of the batch crosses the coordinator and the worker commits in one phase
/// (docs/design/citus.md, "Ingest statements on Citus").
extension ProjectionStore {
    /// How a store writes a batch.
    public enum WriteShape: String, Sendable {
        /// COPY into the session's temporary tables, then upserts from them, pipelined
        /// with the COMMIT: the fastest on plain PostgreSQL (docs/benchmarks.md, issues 13, 28).
        case temporaryTables = "tables"
        /// One call of `clickd_ingest.apply_batch` per batch: on Citus, delegated to the
        /// worker that holds the batch's shard.
        case function

        /// The shape for `db`: what `CLICKD_INGEST_SHAPE` (tables | function) says, else the
        /// function on a Citus coordinator — there it takes the batches' rows off the
        /// coordinator, the one node a cluster cannot add more of (docs/design/citus.md) —
        /// and the temporary tables on PostgreSQL.
        public static func configured(for db: PostgresConnection) throws -> WriteShape {
            if let shape = try environmentOverride() { return shape }
            return try CitusLayout.isCoordinator(db) ? .function : .temporaryTables
        }

        /// What `CLICKD_INGEST_SHAPE` names (nil when unset); a name that is no shape is an
        /// error, in one line (the ingest and rebuild commands check it at start).
        public static func environmentOverride() throws -> WriteShape? {
            guard let named = ProcessInfo.processInfo.environment["CLICKD_INGEST_SHAPE"] else { return nil }
            guard let shape = WriteShape(rawValue: named) else { throw WriteShapeError(named: named) }
            return shape
        }
    }

    public struct WriteShapeError: Error, CustomStringConvertible {
        public let named: String
        public var description: String { "CLICKD_INGEST_SHAPE=\(named): the write shapes are tables and function" }
    }

    // The element type OIDs of each table's CopyBinary columns (pg_type.dat).
    static let text: UInt32 = 25, date: UInt32 = 1082, inet: UInt32 = 869
    static let activityTypes: [UInt32] = [
        PostgresBind.int4, PostgresBind.uuid, PostgresBind.int8, text, PostgresBind.timestamptz, text, text, text, text, text, text, text,
        PostgresBind.bool, text, text, inet, text,
    ]
    static let linkTypes: [UInt32] = [
        PostgresBind.uuid, text, text, text, text, PostgresBind.int8, PostgresBind.int8, PostgresBind.timestamptz, PostgresBind.timestamptz,
    ]
    static let clickerTypes: [UInt32] = [
        PostgresBind.uuid, text, PostgresBind.int8, PostgresBind.int8, PostgresBind.timestamptz, PostgresBind.timestamptz,
    ]
    static let dailyTypes: [UInt32] = [PostgresBind.uuid, date, PostgresBind.int8, PostgresBind.int8]
    static let hourlyTypes: [UInt32] = [
        PostgresBind.uuid, PostgresBind.timestamptz, PostgresBind.int8, PostgresBind.int8, PostgresBind.int8, PostgresBind.int8, PostgresBind.int8,
    ]
    static let botDailyTypes: [UInt32] = [PostgresBind.uuid, date, text, PostgresBind.int8]
    static let sourceTypes: [UInt32] = [
        PostgresBind.uuid, text, text, PostgresBind.int8, PostgresBind.int8, PostgresBind.int8, PostgresBind.int8, PostgresBind.int8,
    ]
    /// Source clickers' and source openers' rows.
    static let sourceCustomerTypes: [UInt32] = [PostgresBind.uuid, text, PostgresBind.int8]
    static let openDailyTypes: [UInt32] = [PostgresBind.uuid, date, text, PostgresBind.int8]

    /// The function shape's most bytes of rows per call (`functionArgumentLimit`). One call is
    /// one protocol message, which PostgreSQL caps at 1 GB; on Citus the coordinator sends it
    /// on as SQL text with the arrays as literals, up to ~4 times the binary size (a uuid's 16
    /// bytes are 37 characters, a timestamp's 8 are 30). 64 MiB keeps both far below the cap;
    /// a batch of the default 4,096 records is ~1 MB.
    public static let functionArgumentBytes = 64 << 20

    /// The function's arguments (migrations/0010_opens.sql).
    static let applyBatchArguments = 76
    /// The call, with `$n` for each of the function's arguments.
    static let applyBatchCall = "SELECT clickd_ingest.apply_batch(" + (1...applyBatchArguments).map { "$\($0)" }.joined(separator: ", ") + ")"

    /// Applies `batch` in one call: its own transaction (or, with `ownTransaction: false`,
    /// the caller's). Outcomes as `begin`'s; a checkpoint that moved between the function's
    /// lock and its compare-and-set is an error (SQLSTATE 40001) and the batch is retried.
    func applyByFunction(
        _ batch: PreparedBatch, log: LogID, shards: Int, expected: UInt64, windowStart: UInt64?, erasureSeq: Int64
    ) throws -> Outcome {
        guard let shard = Int32(exactly: batch.shard), let shardCount = Int32(exactly: shards) else {
            throw PostgresError(sqlState: nil, message: "shard \(batch.shard) of \(shards) is out of range")
        }
        // The activity rows without their first two columns (the shard and the log: arguments).
        let activity = batch.activity.columnArrays(Self.activityTypes).dropFirst(2)
        var corrections = CopyBinary()
        var deadLetters = CopyBinary()
        for (reason, lsns) in batch.corrections {
            for lsn in lsns.values {
                corrections.row(2)
                corrections.int64(try Self.bigint(lsn))
                corrections.text(reason)
            }
        }
        for dead in batch.deadLetters {
            deadLetters.row(3)
            deadLetters.int64(try Self.bigint(dead.lsn))
            deadLetters.text(dead.error)
            deadLetters.bytea(dead.payload)
        }
        corrections.end()
        deadLetters.end()
        var parameters: [(any PostgresBindable)?] = [shard, schema, log, shardCount, expected, batch.through, windowStart]
        parameters += activity.map { $0 as any PostgresBindable }
        for arrays in [
            corrections.columnArrays([PostgresBind.int8, Self.text]),
            deadLetters.columnArrays([PostgresBind.int8, Self.text, PostgresBind.bytea]),
            batch.links.columnArrays(Self.linkTypes), batch.clickers.columnArrays(Self.clickerTypes),
            batch.daily.columnArrays(Self.dailyTypes), batch.hourly.columnArrays(Self.hourlyTypes),
            batch.botDaily.columnArrays(Self.botDailyTypes), batch.sources.columnArrays(Self.sourceTypes),
            batch.sourceClickers.columnArrays(Self.sourceCustomerTypes), batch.sourceOpeners.columnArrays(Self.sourceCustomerTypes),
            batch.openDaily.columnArrays(Self.openDailyTypes),
        ] {
            parameters += arrays.map { $0 as any PostgresBindable }
        }
        parameters.append(erasureSeq)
        precondition(
            parameters.count == Self.applyBatchArguments, "apply_batch takes \(Self.applyBatchArguments) arguments, not \(parameters.count)")
        let returned = try db.query(Self.applyBatchCall, parameters).first?[0] ?? ""
        // {applied, lsn, shards}: written or not, the checkpoint (NULL: no row), the shard count.
        let fields = returned.trimmingCharacters(in: ["{", "}"]).split(separator: ",").map(String.init)
        guard fields.count == 3, let found = Int(fields[2]) else {
            throw PostgresError(sqlState: nil, message: "clickd_ingest.apply_batch returned \(returned), not {applied,lsn,shards}")
        }
        if fields[0] == "1" { return .applied }
        if found != shards { throw ShardCountChanged(planned: shards, found: found) }
        // -1: an erasure of the shard came after the batch was folded (migration 0011).
        if fields[1] == "-1" { return .checkpointMoved(expected) }
        guard let current = UInt64(fields[1]) else {
            throw PostgresError(sqlState: nil, message: "log \(log) has no checkpoint row for shard \(batch.shard) in \(schema).checkpoints")
        }
        return .checkpointMoved(current)
    }

    /// An LSN as a bigint (every LSN a log can hold fits: docs/log-format.md).
    static func bigint(_ value: UInt64) throws -> Int64 {
        guard let result = Int64(exactly: value) else {
            throw PostgresError(sqlState: nil, message: "\(value) is out of PostgreSQL's bigint range")
        }
        return result
    }
}

/// A bound field is sent as it is.
extension PostgresBind: PostgresBindable {
    public func postgresBind() -> PostgresBind { self }
}
