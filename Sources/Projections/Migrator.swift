import Crypto
import Foundation
import Logging

/// Applies `migrations/NNNN_name.sql` in order: each in its own transaction, under an
/// advisory lock (two runs cannot race), recording version, name and SHA-256 checksum in
/// `clickd_internal.schema_migrations`. An applied file that has changed since is refused;
/// running again applies nothing.
public struct Migrator {
    public struct Migration: Equatable, Sendable {
        public var version: Int
        public var name: String
        public var sql: String
        public var checksum: String
    }

    /// Arbitrary, fixed: the key of the advisory lock that serialises migrators.
    static let lockKey: Int64 = 7_160_310_842_977_211

    public let directory: String
    let logger: Logger

    public init(directory: String, logger: Logger = Logger(label: "clickd.migrate")) {
        self.directory = directory
        self.logger = logger
    }

    /// The migration files, in order. Names must be `NNNN_name.sql` with unique numbers.
    public func migrations() throws -> [Migration] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw MigrationError("cannot read the migrations directory \(directory) (give --migrations DIR)")
        }
        var result: [Migration] = []
        for name in names.sorted() where name.hasSuffix(".sql") {
            guard let underscore = name.firstIndex(of: "_"), let version = Int(name[..<underscore]), version > 0 else {
                throw MigrationError("\(directory)/\(name): a migration's name must be NNNN_name.sql")
            }
            guard let data = FileManager.default.contents(atPath: directory + "/" + name), let sql = String(data: data, encoding: .utf8) else {
                throw MigrationError("cannot read \(directory)/\(name)")
            }
            if let previous = result.last, previous.version == version {
                throw MigrationError("\(previous.name) and \(name) have the same number")
            }
            let checksum = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
            result.append(Migration(version: version, name: name, sql: sql, checksum: checksum))
        }
        guard !result.isEmpty else { throw MigrationError("no migrations (*.sql) in \(directory)") }
        return result
    }

    /// The migration that shards the projections, and whose rows need clickd's own code
    /// (the shard of each dead letter, from its bytes) before it commits.
    static let shardingVersion = 5

    /// Applies what is not applied yet; returns the names applied by this run.
    /// `shards`: the shard count of a schema created now (default 32); given for a schema
    /// sharded already with another count, it becomes the count the next `clickd rebuild`
    /// builds with (`nextShards` says what was done).
    @discardableResult
    public func migrate(_ db: PostgresConnection, shards: Int? = nil) throws -> [String] {
        try migrate(db, shards: shards, report: { _ in })
    }

    public func migrate(_ db: PostgresConnection, shards: Int?, report: (String) -> Void) throws -> [String] {
        if let shards, !ShardFunction.shardCounts.contains(shards) {
            throw MigrationError("--shards must be between \(ShardFunction.shardCounts.lowerBound) and \(ShardFunction.shardCounts.upperBound)")
        }
        let all = try migrations()
        // Ids, URLs and user agents are any Unicode: a database in another encoding would
        // refuse some of them (or, before clickd spoke UTF-8 to it, store mojibake).
        let encoding = try db.query("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()")
        if let name = encoding.first?[0] ?? nil, name != "UTF8" {
            throw MigrationError(
                "the database's encoding is \(name); clickd stores UTF-8 text: create the database with ENCODING 'UTF8' (createdb -E UTF8 -T template0)"
            )
        }
        try db.query("SELECT pg_advisory_lock($1)", [Self.lockKey])
        defer { _ = try? db.query("SELECT pg_advisory_unlock($1)", [Self.lockKey]) }
        try db.execute(
            """
            CREATE SCHEMA IF NOT EXISTS clickd_internal;
            CREATE TABLE IF NOT EXISTS clickd_internal.schema_migrations (
                version    integer     PRIMARY KEY,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            );
            """)
        var applied: [Int: (name: String, checksum: String)] = [:]
        for row in try db.query("SELECT version, name, checksum FROM clickd_internal.schema_migrations") {
            applied[Int(row[0]!)!] = (row[1]!, row[2]!)
        }
        var done: [String] = []
        for migration in all {
            if let recorded = applied[migration.version] {
                guard recorded.checksum == migration.checksum else {
                    throw MigrationError(
                        """
                        \(migration.name) was changed after it was applied (recorded checksum \(recorded.checksum.prefix(12))…, \
                        file \(migration.checksum.prefix(12))…): restore the applied version and put changes in a new migration
                        """)
                }
                continue
            }
            do {
                try db.transaction {
                    try db.query("SELECT set_config('clickd.shards', $1, true)", [String(shards ?? ShardFunction.defaultShards)])
                    try db.execute(migration.sql)
                    if migration.version == Self.shardingVersion { try Self.shardDeadLetters(db) }
                    try db.query(
                        "INSERT INTO clickd_internal.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        [migration.version, migration.name, migration.checksum])
                }
            } catch {
                throw MigrationError("\(migration.name) failed and was rolled back: \(error)")
            }
            logger.info("migration applied", metadata: ["migration": "\(migration.name)"])
            done.append(migration.name)
        }
        if let shards, applied[Self.shardingVersion] != nil {
            let current = try db.query("SELECT shards, next_shards FROM clickd_internal.sharding")
            if let row = current.first, let live = row[0].flatMap({ Int($0) }) {
                if live != shards || row[1].flatMap({ Int($0) }) != shards {
                    try db.query("UPDATE clickd_internal.sharding SET next_shards = $1", [shards])
                    report(
                        live == shards
                            ? "the projections have \(live) shards; the next clickd rebuild keeps \(live)"
                            : "the projections have \(live) shards; clickd rebuild will rebuild them with \(shards)")
                }
            }
        }
        if try CitusLayout.isCoordinator(db) {
            try CitusLayout.apply(db, schema: "clickd_internal", report: report)
            if let shards = try db.query("SELECT shards FROM clickd_internal.sharding").first?[0].flatMap({ Int($0) }) {
                let nodes = try CitusLayout.shardsPerNode(db, schema: "clickd_internal", shards: shards)
                report("citus: clickd's \(shards) shards by node: " + nodes.map { "\($0.node)=\($0.shards)" }.joined(separator: " "))
            }
        }
        return done
    }

    /// Migration 0005 gives each dead letter a placeholder shard: here it gets the shard of
    /// its bytes, as the daemon assigns one (`ShardFunction.shard(ofRecord:…)`).
    static func shardDeadLetters(_ db: PostgresConnection) throws {
        guard let shards = try db.query("SELECT shards FROM clickd_internal.sharding").first?[0].flatMap({ Int($0) }) else { return }
        for row in try db.query("SELECT shard, log_id, lsn, payload FROM clickd_internal.dead_letters") {
            guard let old = row[0].flatMap({ Int($0) }), let log = row[1], let lsn = row[2].flatMap({ UInt64($0) }),
                let bytes = row[3].flatMap(PostgresConnection.byteaBytes)
            else { continue }
            let shard = bytes.withUnsafeBytes { ShardFunction.shard(ofRecord: $0, lsn: lsn, shards: shards) }
            if shard != old {
                try db.query(
                    "UPDATE clickd_internal.dead_letters SET shard = $1 WHERE shard = $2 AND log_id = $3 AND lsn = $4",
                    [shard, old, log, lsn])
            }
        }
    }

}

public struct MigrationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
