/// A PostgreSQL failure as an operator needs it: the SQLSTATE, the server's message and
/// the statement that failed.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// Five-character SQLSTATE (e.g. `23505`), or nil for a client-side failure (connection lost).
    public var sqlState: String?
    public var message: String
    public var statement: String?

    public init(sqlState: String?, message: String, statement: String? = nil) {
        self.sqlState = sqlState
        self.message = message
        self.statement = statement
    }

    public var description: String {
        var text = "PostgreSQL: " + message
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let statement { text += " in: " + statement.split(whereSeparator: \.isNewline).joined(separator: " ") }
        return text
    }
}
