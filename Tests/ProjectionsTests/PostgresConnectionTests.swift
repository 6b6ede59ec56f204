import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Testing

@testable import Projections

/// Integration tests against a real PostgreSQL that the harness starts itself.
@Suite(.ownThreads) struct PostgresConnectionTests {
    func connect() throws -> PostgresConnection {
        try PostgresConnection(ThrowawayPostgres.shared.get().conninfo)
    }

    @Test func boundParametersRoundTrip() throws {
        let db = try connect()
        defer { db.close() }
        let rows = try db.query("SELECT $1::int + 1, $2::text, $3::text IS NULL", ["41", "héllo'; DROP TABLE x; --", nil])
        #expect(rows == [["42", "héllo'; DROP TABLE x; --", "t"]])
    }

    @Test func errorsCarrySQLStateMessageAndStatement() throws {
        let db = try connect()
        defer { db.close() }
        do {
            try db.query("SELECT 1 / $1::int", ["0"])
            Issue.record("division by zero succeeded")
        } catch let error as PostgresError {
            #expect(error.sqlState == "22012")
            #expect(error.message.contains("division by zero"))
            #expect(error.statement == "SELECT 1 / $1::int")
        }
    }

    @Test func typedBindsKeepTheirTypes() throws {
        let db = try connect()
        defer { db.close() }
        let log = LogID(bytes: (0..<16).map { UInt8($0 * 17) })
        let payload: [UInt8] = [0, 1, 0x5C, 0x27, 0xFF]
        let rows = try db.query(
            """
            SELECT pg_typeof($1)::text, $1 + 1, pg_typeof($2)::text, $2 = -7, pg_typeof($3)::text, $3::text, pg_typeof($4)::text,
                   encode($4, 'hex'), $5 AND true, ($6 AT TIME ZONE 'UTC')::text, pg_typeof($7)::text, $7::text, $8::bigint IS NULL
            """,
            [
                Int64.max - 1, Int32(-7), log, payload, true, PostgresTimestamp(milliseconds: 1_767_225_600_123),
                PostgresBigintArray([3, 1, UInt64(Int64.max)]), nil as Int64?,
            ])
        #expect(
            rows == [
                [
                    "bigint", "\(Int64.max)", "integer", "t", "uuid", LogID.uuidText(log.bytes), "bytea",
                    "00015c27ff", "t", "2026-01-01 00:00:00.123", "bigint[]", "{3,1,\(Int64.max)}", "t",
                ]
            ])
        // Numbers are compared as numbers: "10" < "9" as text, not as bigint.
        #expect(try db.query("SELECT $1 < $2", [UInt64(9), UInt64(10)]) == [["t"]])
        #expect(try db.query("SELECT cardinality($1)", [PostgresBigintArray([])]) == [["0"]])
    }

    @Test func valuesWithoutAPostgresCounterpartAreRefused() throws {
        let db = try connect()
        defer { db.close() }
        #expect(throws: PostgresError.self) { try db.query("SELECT $1", [UInt64(Int64.max) + 1]) }
        #expect(throws: PostgresError.self) { try db.query("SELECT $1", [PostgresTimestamp(milliseconds: .max)]) }
        #expect(try db.query("SELECT 1") == [["1"]])
    }

    @Test func transactionsCommitRollBackAndRollBackOnThrow() throws {
        let db = try connect()
        defer { db.close() }
        try db.execute("CREATE TEMP TABLE t (v int)")
        try db.transaction { try db.query("INSERT INTO t VALUES (1)") }
        try db.transactionEnding { () throws -> ((), PostgresConnection.TransactionEnd) in
            try db.query("INSERT INTO t VALUES (2)")
            return ((), .rollback)
        }
        struct Stop: Error {}
        #expect(throws: Stop.self) {
            try db.transaction {
                try db.query("INSERT INTO t VALUES (3)")
                throw Stop()
            }
        }
        // A transaction whose statements sent behind it fail is rolled back by finishTransaction.
        try db.transactionEnding { () throws -> ((), PostgresConnection.TransactionEnd) in
            try db.query("INSERT INTO t VALUES (4)")
            return ((), .commitSent(after: "SELECT 1 / 0"))
        }
        #expect(throws: PostgresError.self) { try db.finishTransaction() }
        try db.transactionEnding { () throws -> ((), PostgresConnection.TransactionEnd) in
            try db.query("INSERT INTO t VALUES (5)")
            return ((), .commitSent(after: "SELECT 1"))
        }
        try db.finishTransaction()
        #expect(try db.query("SELECT array_agg(v ORDER BY v)::text FROM t") == [["{1,5}"]])
    }

    @Test func badConnectionIsAClearError() throws {
        #expect(throws: PostgresError.self) { _ = try PostgresConnection("host=/nonexistent-socket-dir dbname=x connect_timeout=2") }
    }

    @Test func separateDatabasesForSeparateTests() throws {
        let pg = try ThrowawayPostgres.shared.get()
        let url = try pg.createDatabase("scratch_\(UInt32.random(in: 0...UInt32.max))")
        let db = try PostgresConnection(url)
        defer { db.close() }
        try db.query("CREATE TABLE t (v int)")
        try db.query("INSERT INTO t VALUES ($1), ($2)", ["1", "2"])
        #expect(try db.query("SELECT sum(v) FROM t") == [["3"]])
    }
}
