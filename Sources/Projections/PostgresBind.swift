import EventLog

/// A value bound to a statement's `$n`, as libpq sends it: its type's OID and its bytes in
/// PostgreSQL's binary format (the same encoding as a field of binary COPY) — or, for a
/// `String`, UTF-8 text of an unspecified type that the server infers from the statement,
/// as `'…'` literals are.
public struct PostgresBind: Sendable, Equatable {
    /// The type OID (`pg_type.oid`); 0 lets the server infer the type.
    public let oid: UInt32
    /// Binary (true) or text format.
    public let binary: Bool
    public let bytes: [UInt8]

    // The OIDs of pg_type.dat (PostgreSQL's catalog), stable across releases.
    static let bool: UInt32 = 16, bytea: UInt32 = 17, int8: UInt32 = 20, int4: UInt32 = 23, uuid: UInt32 = 2950
    static let timestamptz: UInt32 = 1184, int8Array: UInt32 = 1016

    static func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian) { Array($0) }
    }
}

/// A Swift value that binds as a PostgreSQL parameter. Each conformance names its SQL
/// type, so that `WHERE lsn = $1` compares numbers, never text.
public protocol PostgresBindable {
    /// Throws when the value has no exact PostgreSQL counterpart (a `UInt64` past bigint).
    func postgresBind() throws -> PostgresBind
}

extension String: PostgresBindable {
    public func postgresBind() -> PostgresBind { PostgresBind(oid: 0, binary: false, bytes: Array(utf8)) }
}

extension Int64: PostgresBindable {
    public func postgresBind() -> PostgresBind { PostgresBind(oid: PostgresBind.int8, binary: true, bytes: PostgresBind.bigEndian(self)) }
}

extension Int: PostgresBindable {
    public func postgresBind() -> PostgresBind { Int64(self).postgresBind() }
}

extension Int32: PostgresBindable {
    public func postgresBind() -> PostgresBind { PostgresBind(oid: PostgresBind.int4, binary: true, bytes: PostgresBind.bigEndian(self)) }
}

/// LSNs and counters: a bigint when they fit (every LSN a log can hold does: a log's LSNs
/// stay below 2^63 — docs/log-format.md).
extension UInt64: PostgresBindable {
    public func postgresBind() throws -> PostgresBind {
        guard let value = Int64(exactly: self) else {
            throw PostgresError(sqlState: nil, message: "\(self) is out of PostgreSQL's bigint range")
        }
        return value.postgresBind()
    }
}

extension Bool: PostgresBindable {
    public func postgresBind() -> PostgresBind { PostgresBind(oid: PostgresBind.bool, binary: true, bytes: [self ? 1 : 0]) }
}

/// bytea, sent as its bytes (no hex text on the way).
extension Array: PostgresBindable where Element == UInt8 {
    public func postgresBind() -> PostgresBind { PostgresBind(oid: PostgresBind.bytea, binary: true, bytes: self) }
}

/// A log's id is a uuid.
extension LogID: PostgresBindable {
    public func postgresBind() -> PostgresBind { PostgresBind(oid: PostgresBind.uuid, binary: true, bytes: bytes) }
}

/// A timestamptz, from milliseconds since 1970-01-01 UTC (clickd's event times).
public struct PostgresTimestamp: PostgresBindable, Sendable {
    public let milliseconds: UInt64
    public init(milliseconds: UInt64) { self.milliseconds = milliseconds }

    public func postgresBind() throws -> PostgresBind {
        // timestamptz is microseconds since 2000-01-01; an event time is bounded by the
        // codec (a UInt64 of milliseconds) but checked here before it is multiplied.
        guard milliseconds <= UInt64(Int64.max / 1000) else {
            throw PostgresError(sqlState: nil, message: "timestamp \(milliseconds) ms is out of PostgreSQL's range")
        }
        let micros = (Int64(milliseconds) - CopyBinary.postgresEpochMs) * 1000
        return PostgresBind(oid: PostgresBind.timestamptz, binary: true, bytes: PostgresBind.bigEndian(micros))
    }
}

/// A bigint[] of LSNs (e.g. `lsn = ANY($3)`), in the array's binary format: dimensions,
/// has-nulls flag, element type, then each dimension's length and lower bound, then each
/// element as its length and bytes.
public struct PostgresBigintArray: PostgresBindable, Sendable {
    public let values: [UInt64]
    public init(_ values: [UInt64]) { self.values = values }

    public func postgresBind() throws -> PostgresBind {
        var bytes =
            PostgresBind.bigEndian(Int32(values.isEmpty ? 0 : 1)) + PostgresBind.bigEndian(Int32(0))
            + PostgresBind.bigEndian(PostgresBind.int8)
        if !values.isEmpty {
            guard let count = Int32(exactly: values.count) else {
                throw PostgresError(sqlState: nil, message: "an array of \(values.count) values is too long for PostgreSQL")
            }
            bytes += PostgresBind.bigEndian(count) + PostgresBind.bigEndian(Int32(1))
            bytes.reserveCapacity(bytes.count + values.count * 12)
            for value in values {
                bytes += PostgresBind.bigEndian(Int32(8)) + (try value.postgresBind()).bytes
            }
        }
        return PostgresBind(oid: PostgresBind.int8Array, binary: true, bytes: bytes)
    }
}
