/// Rows in PostgreSQL's binary COPY format (`COPY … FROM STDIN (FORMAT binary)`): each
/// value as its length and its bytes, so the server parses no text (numbers, timestamps,
/// UUIDs and addresses were a sixth of its work under text COPY) and nothing needs escaping.
/// libpq only transports COPY data; the format is specified in PostgreSQL's COPY
/// documentation ("Binary Format"), hence this encoder.
struct CopyBinary {
    private(set) var rows = 0
    /// The signature `PGCOPY\n\377\r\n\0`, no flags, no header extension; then the rows.
    private var data: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00] + [0, 0, 0, 0] + [0, 0, 0, 0]
    private var ended = false
    /// Fields still owed to the current row (checked in debug builds).
    private var owed = 0

    /// The rows and the format's trailer, once `end()` has been called.
    var bytes: [UInt8] {
        precondition(ended, "CopyBinary.end() not called")
        return data
    }

    /// Starts a row of `fields` values.
    mutating func row(_ fields: Int16) {
        precondition(!ended)
        assert(owed == 0, "the previous row lacks \(owed) fields")
        owed = Int(fields)
        rows += 1
        append(UInt16(bitPattern: fields))
    }

    /// Appends the trailer: no more rows.
    mutating func end() {
        assert(owed == 0, "the last row lacks \(owed) fields")
        if !ended { append(UInt16.max) }
        ended = true
    }

    mutating func text(_ value: String?) {
        guard let value else { return null() }
        length(UInt32(value.utf8.count))
        data.append(contentsOf: value.utf8)
    }

    mutating func int64(_ value: Int64) {
        length(8)
        append(UInt64(bitPattern: value))
    }

    mutating func int32(_ value: Int32) {
        length(4)
        append(UInt32(bitPattern: value))
    }

    /// PostgreSQL's date: days since 2000-01-01, from days since 1970-01-01.
    mutating func date(daysSince1970 days: Int64) {
        int32(Int32(days - 10_957))
    }

    mutating func bool(_ value: Bool?) {
        guard let value else { return null() }
        length(1)
        data.append(value ? 1 : 0)
    }

    /// A uuid from its 16 bytes.
    mutating func uuid(_ bytes: [UInt8]) {
        precondition(bytes.count == 16)
        length(16)
        data.append(contentsOf: bytes)
    }

    /// The microseconds since 2000-01-01 UTC of PostgreSQL's timestamptz, from milliseconds
    /// since 1970.
    static let postgresEpochMs: Int64 = 946_684_800_000

    /// A timestamptz from milliseconds since the epoch, or NULL.
    mutating func timestamp(_ ms: UInt64?) {
        guard let ms else { return null() }
        int64((Int64(ms) - Self.postgresEpochMs) * 1000)
    }

    /// An inet from 4 (IPv4) or 16 (IPv6) address bytes; any other length is NULL. The
    /// header is the server's: family (PGSQL_AF_INET 2, PGSQL_AF_INET6 3), prefix bits,
    /// is-cidr, address length.
    mutating func inet(_ address: [UInt8]) {
        switch address.count {
        case 4:
            length(8)
            data += [2, 32, 0, 4]
        case 16:
            length(20)
            data += [3, 128, 0, 16]
        default: return null()
        }
        data.append(contentsOf: address)
    }

    mutating func bytea(_ value: [UInt8]) {
        length(UInt32(value.count))
        data.append(contentsOf: value)
    }

    private mutating func null() { length(UInt32.max) }

    /// A field's length word (`UInt32.max`: NULL); its bytes follow.
    private mutating func length(_ count: UInt32) {
        owed -= 1
        append(count)
    }

    private mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { data.append(contentsOf: $0) }
    }
}

extension CopyBinary {
    /// The array type OID of each element type the encoder writes (pg_type.dat).
    static let arrayTypes: [UInt32: UInt32] = [
        PostgresBind.bool: 1000, PostgresBind.bytea: 1001, PostgresBind.int4: 1007, PostgresBind.int8: 1016, 25: 1009,
        PostgresBind.timestamptz: 1185, 1082: 1182, 869: 1041, PostgresBind.uuid: 2951,
    ]

    /// The rows as one array per column (`types`: the columns' element OIDs), each in the
    /// binary array format — dimensions, has-nulls flag, element type, length and lower
    /// bound, then every element as its length and bytes, which is a COPY field's encoding,
    /// so the fields are moved, not re-encoded: the arrays `clickd_ingest.apply_batch`
    /// takes (`ProjectionStore+Function.swift`). Reads only what this encoder wrote, so a
    /// malformed buffer is a programming error.
    func columnArrays(_ types: [UInt32]) -> [PostgresBind] {
        precondition(rows <= Int(Int32.max), "CopyBinary: more rows than an array holds")
        var columns = [[UInt8]](repeating: [], count: types.count)
        var nulls = [Bool](repeating: false, count: types.count)
        if rows > 0 {
            bytes.withUnsafeBufferPointer { data in
                var at = 19  // signature, flags, header extension length
                func integer(_ count: Int) -> Int {
                    precondition(at + count <= data.count, "CopyBinary: a row runs past the buffer")
                    defer { at += count }
                    return data[at..<at + count].reduce(0) { $0 << 8 | Int($1) }
                }
                for _ in 0..<rows {
                    let fields = integer(2)
                    precondition(fields == types.count, "CopyBinary: a row of \(fields) fields, \(types.count) types")
                    for column in 0..<fields {
                        let start = at
                        let length = Int32(truncatingIfNeeded: integer(4))
                        if length < 0 { nulls[column] = true } else { at += Int(length) }
                        precondition(at <= data.count, "CopyBinary: a field runs past the buffer")
                        columns[column].append(contentsOf: data[start..<at])
                    }
                }
            }
        }
        return zip(types, zip(columns, nulls)).map { type, column in
            guard let arrayType = Self.arrayTypes[type] else { preconditionFailure("CopyBinary: no array type for OID \(type)") }
            var bytes = PostgresBind.bigEndian(Int32(rows > 0 ? 1 : 0)) + PostgresBind.bigEndian(Int32(column.1 ? 1 : 0))
            bytes += PostgresBind.bigEndian(type)
            if rows > 0 {
                bytes += PostgresBind.bigEndian(Int32(rows)) + PostgresBind.bigEndian(Int32(1))
                bytes += column.0
            }
            return PostgresBind(oid: arrayType, binary: true, bytes: bytes)
        }
    }
}
