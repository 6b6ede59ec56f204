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
    static let lockKey = "7160310842977211"

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

    /// Applies what is not applied yet; returns the names applied by this run.
    @discardableResult
    public func migrate(_ db: PostgresConnection) throws -> [String] {
        let all = try migrations()
        // Ids, URLs and user agents are any Unicode: a database in another encoding would
        // refuse some of them (or, before clickd spoke UTF-8 to it, store mojibake).
        let encoding = try db.query("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()")
        if let name = encoding.first?[0] ?? nil, name != "UTF8" {
            throw MigrationError("the database's encoding is \(name); clickd stores UTF-8 text: create the database with ENCODING 'UTF8' (createdb -E UTF8 -T template0)")
        }
        try db.query("SELECT pg_advisory_lock($1::bigint)", [Self.lockKey])
        defer { _ = try? db.query("SELECT pg_advisory_unlock($1::bigint)", [Self.lockKey]) }
        try db.execute("""
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
                    throw MigrationError("""
                        \(migration.name) was changed after it was applied (recorded checksum \(recorded.checksum.prefix(12))…, \
                        file \(migration.checksum.prefix(12))…): restore the applied version and put changes in a new migration
                        """)
                }
                continue
            }
            try db.execute("BEGIN")
            do {
                try db.execute(migration.sql)
                try db.query("INSERT INTO clickd_internal.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                             [String(migration.version), migration.name, migration.checksum])
                try db.execute("COMMIT")
            } catch {
                _ = try? db.execute("ROLLBACK")
                throw MigrationError("\(migration.name) failed and was rolled back: \(error)")
            }
            logger.info("migration applied", metadata: ["migration": "\(migration.name)"])
            done.append(migration.name)
        }
        return done
    }
}

public struct MigrationError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
