import CLibPQ

#if canImport(Glibc)
    import Glibc
#endif

/// A thin, synchronous libpq connection. Values are always bound parameters, typed
/// (`PostgresBindable`: numbers, bytea, uuids and timestamps in binary); SQL is never built
/// from values. Transactions go through `transaction`. Not thread-safe: one task at a time.
public final class PostgresConnection {
    private var connection: OpaquePointer?
    /// The SQL sent by `send` whose results `finish` has not collected yet.
    private var inFlight: String?

    /// Connects with a libpq connection string or URL (`postgresql://…`, `host=… port=…`).
    /// An empty string uses libpq's `PG*` environment variables alone.
    public init(_ conninfo: String) throws {
        let conn = PQconnectdb(conninfo)
        guard let conn, PQstatus(conn) == CONNECTION_OK else {
            let message = conn.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            PQfinish(conn)
            throw PostgresError(sqlState: nil, message: "cannot connect: " + message.trimmingTrailingWhitespace())
        }
        // Server NOTICEs ("already exists, skipping") are not errors and not for stderr.
        PQsetNoticeProcessor(conn, { _, _ in }, nil)
        // clickd's strings are UTF-8. The client encoding otherwise defaults to the
        // database's, and a LATIN1 database would store UTF-8 bytes as mojibake instead of
        // converting them (or refusing what it cannot hold, SQLSTATE 22P05).
        guard PQsetClientEncoding(conn, "UTF8") == 0 else {
            let message = String(cString: PQerrorMessage(conn))
            PQfinish(conn)
            throw PostgresError(sqlState: nil, message: "cannot set the client encoding to UTF8: " + message.trimmingTrailingWhitespace())
        }
        connection = conn
    }

    deinit { PQfinish(connection) }

    /// False once the connection is closed or lost (the server went away): a pool drops it.
    public var isOpen: Bool { connection.map { PQstatus($0) == CONNECTION_OK } ?? false }

    public func close() {
        PQfinish(connection)
        connection = nil
    }

    /// Runs `sql` with `$1…$n` bound to `parameters` (nil is a NULL of the type the statement
    /// gives that parameter, e.g. `$1::bigint`; every other value typed by
    /// its `PostgresBindable` conformance) and returns the rows as text (nil for NULL).
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresBindable)?] = []) throws -> [[String?]] {
        guard let connection else { throw PostgresError(sqlState: nil, message: "connection is closed", statement: sql) }
        try finish()
        let binds = try parameters.map { try $0?.postgresBind() }
        let result = withParameters(binds) { types, values, lengths, formats in
            PQexecParams(connection, sql, Int32(binds.count), types, values, lengths, formats, 0)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
            break
        default:
            throw error(from: result, statement: sql)
        }
        let rows = Int(PQntuples(result))
        let columns = Int(PQnfields(result))
        return (0..<rows).map { row in
            (0..<columns).map { column in
                PQgetisnull(result, Int32(row), Int32(column)) == 1
                    ? nil : String(cString: PQgetvalue(result, Int32(row), Int32(column)))
            }
        }
    }

    /// How `transaction` ends a transaction whose body returned.
    public enum TransactionEnd: Sendable {
        case commit
        /// Nothing it did is kept (a comparison that must change nothing, a compare-and-set
        /// that found another value).
        case rollback
        /// `statements` and the COMMIT are sent behind the body without waiting
        /// (`send`): the server runs them while the caller prepares its next work.
        /// `finishTransaction()` collects the outcome, and rolls back if they failed.
        case commitSent(after: String)
    }

    /// Runs `body` in a transaction: BEGIN, then what `body` returns says how it ends; when
    /// `body` throws, ROLLBACK and the error is rethrown. The one place clickd writes
    /// BEGIN, COMMIT and ROLLBACK.
    @discardableResult
    public func transactionEnding<R>(_ body: () throws -> (R, TransactionEnd)) throws -> R {
        try execute("BEGIN")
        do {
            let (result, end) = try body()
            switch end {
            case .commit: try execute("COMMIT")
            case .rollback: try execute("ROLLBACK")
            case .commitSent(let statements): try send(statements + ";COMMIT;")
            }
            return result
        } catch {
            // The transaction may be aborted or still open: either way it ends here, and a
            // connection that cannot even roll back is broken (its next use reports that).
            _ = try? execute("ROLLBACK")
            throw error
        }
    }

    /// A transaction that commits when `body` returns (`transactionEnding`).
    @discardableResult
    public func transaction<R>(_ body: () throws -> R) throws -> R {
        try transactionEnding { (try body(), TransactionEnd.commit) }
    }

    /// Waits for the statements and the COMMIT of a `.commitSent` transaction; when they
    /// failed, rolls the (aborted) transaction back and throws their error.
    public func finishTransaction() throws {
        do {
            try finish()
        } catch {
            _ = try? execute("ROLLBACK")
            throw error
        }
    }

    /// The bytes of a `bytea` value as the server prints it (`\\x…`), through libpq's own
    /// decoder; nil if it is not one.
    public static func byteaBytes(_ text: String) -> [UInt8]? {
        var length = 0
        guard let decoded = PQunescapeBytea(text, &length) else { return nil }
        defer { PQfreemem(decoded) }
        return Array(UnsafeBufferPointer(start: decoded, count: length))
    }

    /// Runs SQL text that may hold several statements and no parameters (migrations,
    /// transaction control). Never pass values in it: use `query` with bound parameters.
    public func execute(_ sql: String) throws {
        guard let connection else { throw PostgresError(sqlState: nil, message: "connection is closed", statement: sql) }
        try finish()
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return
        default:
            throw error(from: result, statement: sql.count > 200 ? String(sql.prefix(200)) + "…" : sql)
        }
    }

    /// `COPY … FROM STDIN` with `data` in the format the statement names (clickd sends
    /// binary rows: `CopyBinary`).
    public func copy(_ sql: String, data: [UInt8]) throws {
        guard let connection else { throw PostgresError(sqlState: nil, message: "connection is closed", statement: sql) }
        try finish()
        let start = PQexec(connection, sql)
        let status = PQresultStatus(start)
        if status != PGRES_COPY_IN {
            defer { PQclear(start) }
            throw error(from: start, statement: sql)
        }
        PQclear(start)
        var ok = true
        if !data.isEmpty {
            ok = data.withUnsafeBufferPointer { buffer in
                buffer.withMemoryRebound(to: CChar.self) { PQputCopyData(connection, $0.baseAddress, Int32($0.count)) == 1 }
            }
        }
        ok = PQputCopyEnd(connection, nil) == 1 && ok
        var failure: PostgresError?
        while let result = PQgetResult(connection) {
            if PQresultStatus(result) != PGRES_COMMAND_OK, failure == nil { failure = error(from: result, statement: sql) }
            PQclear(result)
        }
        if let failure { throw failure }
        if !ok {
            throw PostgresError(sqlState: nil, message: String(cString: PQerrorMessage(connection)).trimmingTrailingWhitespace(), statement: sql)
        }
    }

    /// Sends SQL text like `execute` takes (no parameters, no values in it) without waiting:
    /// the server runs it while the caller does other work; `finish` collects the outcome.
    /// Any other call on the connection finishes it first.
    public func send(_ sql: String) throws {
        guard let connection else { throw PostgresError(sqlState: nil, message: "connection is closed", statement: sql) }
        try finish()
        guard PQsendQuery(connection, sql) == 1 else {
            throw PostgresError(sqlState: nil, message: String(cString: PQerrorMessage(connection)).trimmingTrailingWhitespace(), statement: sql)
        }
        inFlight = sql
    }

    /// Waits for what `send` sent; throws the first error among its statements.
    public func finish() throws {
        guard let sql = inFlight, let connection else { return }
        inFlight = nil
        var failure: PostgresError?
        while let result = PQgetResult(connection) {
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY: break
            default: if failure == nil { failure = error(from: result, statement: sql.count > 200 ? String(sql.prefix(200)) + "…" : sql) }
            }
            PQclear(result)
        }
        if let failure { throw failure }
    }

    private func error(from result: OpaquePointer?, statement: String) -> PostgresError {
        let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        let primary = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
        let message = primary ?? String(cString: PQerrorMessage(connection)).trimmingTrailingWhitespace()
        return PostgresError(sqlState: state, message: message, statement: statement)
    }
}

/// Calls `body` with libpq's parallel arrays for `binds` (types, values, lengths,
/// formats); nil binds stay NULL.
func withParameters<R>(
    _ binds: [PostgresBind?],
    _ body: (UnsafePointer<Oid>?, UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> R
) -> R {
    let types = binds.map { Oid($0?.oid ?? 0) }
    let lengths = binds.map { Int32($0?.bytes.count ?? 0) }
    let formats = binds.map { Int32($0?.binary == true ? 1 : 0) }
    // Text values end in a NUL for libpq; binary ones are read by their length.
    let buffers: [UnsafeMutablePointer<CChar>?] = binds.map { bind in
        bind.map { bind in
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: bind.bytes.count + 1)
            bind.bytes.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress ?? UnsafeRawPointer(buffer), byteCount: raw.count)
            }
            buffer[bind.bytes.count] = 0
            return buffer
        }
    }
    defer { for buffer in buffers { buffer?.deallocate() } }
    let values = buffers.map { $0.map { UnsafePointer($0) } }
    return types.withUnsafeBufferPointer { t in
        values.withUnsafeBufferPointer { v in
            lengths.withUnsafeBufferPointer { l in
                formats.withUnsafeBufferPointer { f in
                    body(t.baseAddress, v.baseAddress, l.baseAddress, f.baseAddress)
                }
            }
        }
    }
}

extension String {
    func trimmingTrailingWhitespace() -> String {
        var s = Substring(self)
        while let last = s.last, last.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
