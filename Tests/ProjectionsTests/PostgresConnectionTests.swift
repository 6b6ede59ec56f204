import ClickdTestSupport
import Testing

@testable import Projections

/// Integration tests against a real PostgreSQL that the harness starts itself.
@Suite struct PostgresConnectionTests {
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
