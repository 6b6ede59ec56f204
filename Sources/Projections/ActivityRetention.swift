import EventLog
import Logging
import ServiceLifecycle
import Synchronization

/// A month (UTC) of `activity`: the partition of migration 0012 that holds its rows
/// (`activity_pYYYY_MM`, from its first instant to the next month's).
public struct ActivityMonth: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let year: Int
    /// 1…12.
    public let month: Int

    public init(year: Int, month: Int) {
        precondition((1...12).contains(month))
        self.year = year
        self.month = month
    }

    /// The month of an instant in milliseconds since 1970 (UTC). `milliseconds` is a
    /// record's time; up to year 292,278,994 the arithmetic cannot overflow.
    public init(milliseconds: UInt64) {
        // Days to a civil date: H. Hinnant's algorithm (days_from_civil's inverse), exact
        // for every day after 1970; Foundation's Calendar costs a microsecond a row.
        let z = Int(milliseconds / 86_400_000) + 719_468
        let era = z / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let m = mp < 10 ? mp + 3 : mp - 9
        self.init(year: yearOfEra + era * 400 + (m <= 2 ? 1 : 0), month: m)
    }

    /// Its first instant, in milliseconds since 1970.
    public var startMilliseconds: UInt64 {
        // days_from_civil (H. Hinnant).
        let y = month <= 2 ? year - 1 : year
        let era = y / 400
        let yearOfEra = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let dayOfYear = (153 * mp + 2) / 5
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return UInt64(max(0, era * 146_097 + dayOfEra - 719_468)) * 86_400_000
    }

    public var next: ActivityMonth { month == 12 ? ActivityMonth(year: year + 1, month: 1) : ActivityMonth(year: year, month: month + 1) }
    public var previous: ActivityMonth { month == 1 ? ActivityMonth(year: year - 1, month: 12) : ActivityMonth(year: year, month: month - 1) }

    /// `activity_p2026_12`.
    public var partitionName: String { "activity_p" + String(format: "%04d_%02d", year, month) }

    /// The month a partition's name names; nil for any other table.
    public init?(partitionName name: String) {
        let digits = name.utf8
        guard name.hasPrefix("activity_p"), digits.count == 17, Array(digits)[14] == UInt8(ascii: "_"),
            let year = Int(name.dropFirst(10).prefix(4)), let month = Int(name.suffix(2)), (1...12).contains(month)
        else { return nil }
        self.init(year: year, month: month)
    }

    /// `2026-12-01 00:00:00+00`: a timestamptz literal of its first instant.
    public var startTimestamp: String { String(format: "%04d-%02d-01 00:00:00+00", year, month) }

    /// `2026-12`.
    public var description: String { String(format: "%04d-%02d", year, month) }

    public static func < (a: Self, b: Self) -> Bool { (a.year, a.month) < (b.year, b.month) }
}

/// The months of `activity` a writer has seen made (one per connection): before a batch
/// is written, the months of its rows that have no partition yet are made — a past month a
/// rebuild or a late edge brings, or this month should the daemon's pass not have run —
/// each in a statement of its own, so that no row goes to the default partition that a
/// month could hold. A month more than one ahead of the wall clock is not made: an edge
/// whose clock is years fast puts its rows in the default partition, not a table a month.
struct ActivityPartitions {
    let schema: String
    private var known: Set<ActivityMonth> = []
    /// The last month met, as milliseconds: rows within it need no date arithmetic.
    private var fast: Range<UInt64> = 0..<0

    init(schema: String) { self.schema = schema }

    /// The months of `rows` to make (not known to exist, not past next month).
    mutating func missing(_ rows: [ProjectionBatch.ActivityRow], now: UInt64) -> [ActivityMonth] {
        var result: Set<ActivityMonth> = []
        let ahead = ActivityMonth(milliseconds: now).next
        for row in rows where !fast.contains(row.occurredAt) {
            let month = ActivityMonth(milliseconds: row.occurredAt)
            if known.contains(month) {
                fast = month.startMilliseconds..<month.next.startMilliseconds
            } else if month <= ahead {
                result.insert(month)
            }
        }
        return result.sorted()
    }

    /// Makes the months `missing` found (each its own transaction unless `inTransaction`:
    /// a rebuild's swap makes them in its own).
    mutating func make(_ months: [ActivityMonth], db: PostgresConnection) throws {
        for month in months {
            try db.query("SELECT clickd_ingest.ensure_activity_partition($1, $2::timestamptz)", [schema, month.startTimestamp])
            known.insert(month)
        }
    }
}

/// Keeps `clickd_internal.activity` partitioned ahead and, with a retention, bounded
/// (docs/design/erasure.md, section 4): every `interval`, makes this month's and the next
/// month's partitions, and drops each month whose end is older than the retention — a
/// DROP, counted and recorded in `clickd.retention_drops` — and the default partition's
/// rows older than the drops. Counters and segments are kept at write time: a drop changes
/// none of them.
public final class ActivityRetention: Service, Sendable {
    /// How long activity is kept; nil: for ever (partitions are still made ahead).
    public let retention: Duration?
    let interval: Duration
    let logger: Logger
    let wallClock: @Sendable () -> UInt64
    let connect: @Sendable () throws -> PostgresConnection
    private let passes = Mutex(0)

    /// One month dropped.
    public struct Drop: Sendable, Equatable {
        public var month: ActivityMonth
        public var rows: Int64
    }

    /// What a pass did.
    public struct Pass: Sendable, Equatable {
        public var made: [ActivityMonth] = []
        public var dropped: [Drop] = []
        /// Rows of the default partition before the drops (a clock's oddities), deleted.
        public var defaultRowsDeleted: Int64 = 0
    }

    public init(
        retention: Duration?, interval: Duration = .seconds(600), logger: Logger,
        wallClock: @escaping @Sendable () -> UInt64 = EventLogConfiguration.wallClockMilliseconds,
        connect: @escaping @Sendable () throws -> PostgresConnection
    ) {
        self.retention = retention
        self.interval = interval
        self.logger = logger
        self.wallClock = wallClock
        self.connect = connect
    }

    /// Passes that completed (tests wait for one).
    public var passesDone: Int { passes.withLock { $0 } }

    public func run() async throws {
        // On failure ingestion goes on: rows of a month without its partition go to the
        // default partition, and move into the month when it is made.
        await runPeriodically(
            name: "clickd-retention", interval: interval, logger: logger, failure: "cannot keep the activity partitions",
            recovered: "activity partitions are kept again"
        ) { _ = try self.passOnce() }
    }

    /// The months before this one are dropped at `now` (nil: none is): those whose end is
    /// at most `now − retention`.
    public static func dropBefore(now: UInt64, retention: Duration) -> ActivityMonth? {
        let keep = UInt64(max(0, retention.components.seconds)) * 1000
        guard now > keep else { return nil }
        // The month holding the horizon is kept: its end is after it.
        return ActivityMonth(milliseconds: now - keep)
    }

    /// One pass: this month and the next made; with a retention, the old months dropped,
    /// each in a transaction of its own, oldest first.
    @discardableResult
    public func passOnce() throws -> Pass {
        let db = try connect()
        defer { db.close() }
        let now = wallClock()
        var pass = Pass()
        let month = ActivityMonth(milliseconds: now)
        for wanted in [month, month.next] {
            if try db.query("SELECT clickd_ingest.ensure_activity_partition('clickd_internal', $1::timestamptz)", [wanted.startTimestamp])
                == [["t"]]
            {
                pass.made.append(wanted)
            }
        }
        if let retention, let before = Self.dropBefore(now: now, retention: retention) {
            let keep = max(0, retention.components.seconds)
            let seconds = keep % 86_400 == 0 ? "\(keep / 86_400) days" : "\(keep) seconds"
            for dropped in try Self.months(db, schema: "clickd_internal") where dropped < before {
                let rows = try db.query(
                    "SELECT clickd_ingest.drop_activity_partition('clickd_internal', $1, $2::interval)", [dropped.partitionName, seconds])
                guard let n = rows.first?[0].flatMap({ Int64($0) }) else { continue }
                pass.dropped.append(Drop(month: dropped, rows: n))
                logger.notice(
                    "activity month dropped (retention)",
                    metadata: ["retention.month": "\(dropped)", "retention.rows": "\(n)", "retention.keep": "\(seconds)"])
            }
            // What the default partition holds of the dropped months (rows that came late,
            // or of an edge's clock far behind) goes with them.
            let deleted = try db.query(
                """
                WITH d AS (DELETE FROM clickd_internal.activity_default
                           WHERE occurred_at < (SELECT dropped_before FROM clickd_ingest.activity_retention) RETURNING 1)
                SELECT count(*) FROM d
                """)
            pass.defaultRowsDeleted = deleted.first?[0].flatMap { Int64($0) } ?? 0
            if pass.defaultRowsDeleted > 0 {
                logger.notice(
                    "activity rows of dropped months deleted from the default partition",
                    metadata: ["retention.rows": "\(pass.defaultRowsDeleted)"])
            }
        }
        logger.info(
            "activity partitions kept",
            metadata: [
                "retention.made": "\(pass.made.map(\.description).joined(separator: ","))",
                "retention.dropped": "\(pass.dropped.count)",
                "retention.dropped_rows": "\(pass.dropped.reduce(0) { $0 + $1.rows })",
            ])
        passes.withLock { $0 += 1 }
        return pass
    }

    /// The months `<schema>.activity` has a partition of, oldest first.
    static func months(_ db: PostgresConnection, schema: String) throws -> [ActivityMonth] {
        try db.query(
            """
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = to_regclass($1) ORDER BY 1
            """, ["\(schema).activity"]
        )
        .compactMap { $0[0].flatMap(ActivityMonth.init(partitionName:)) }.sorted()
    }
}

extension ActivityRetention {
    /// `clickd status`'s line of activity's months and the retention's drops: the months
    /// held, the default partition's rows, the retention last dropped with, the instant
    /// before which activity is gone, and the last drop (no ids: months and counts).
    public static func statusLine(_ db: PostgresConnection) throws -> String {
        let months = try months(db, schema: "clickd_internal")
        let row =
            try db.query(
                """
                SELECT (SELECT count(*) FROM clickd_internal.activity_default),
                       (SELECT round(extract(epoch FROM retention) / 86400)::bigint FROM clickd_ingest.activity_retention),
                       (SELECT to_char(dropped_before AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') FROM clickd_ingest.activity_retention),
                       (SELECT count(*) FROM clickd_ingest.retention_drops),
                       d.partition, d.rows, to_char(d.dropped_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                FROM (SELECT 1) one
                LEFT JOIN LATERAL (SELECT * FROM clickd_ingest.retention_drops ORDER BY dropped_at DESC, range_start DESC LIMIT 1) d ON true
                """
            ).first ?? []
        func field(_ i: Int) -> String? { i < row.count ? row[i] : nil }
        var line =
            "activity months=\(months.count) oldest_month=\(months.first.map(\.description) ?? "none") "
            + "newest_month=\(months.last.map(\.description) ?? "none") default_rows=\(field(0) ?? "0") "
            + "retention=\(field(1).map { "\($0)d" } ?? "none") dropped_before=\(field(2) ?? "none") drops=\(field(3) ?? "0")"
        if let partition = field(4), let month = ActivityMonth(partitionName: partition) {
            line += " last_drop=\(month) last_drop_rows=\(field(5) ?? "0") last_drop_at=\(field(6) ?? "")"
        }
        return line
    }
}
