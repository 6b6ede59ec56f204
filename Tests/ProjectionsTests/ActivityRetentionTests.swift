import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Foundation
import LinkTracking
import Logging
import Testing

@testable import Projections

/// Activity by month and `--activity-retention` (docs/design/erasure.md, section 4): a drop
/// takes whole months of `activity` and changes no counter, rollup or segment; it is
/// recorded (clickd.retention_drops, clickd status); a rebuild brings no dropped month back;
/// an erasure after the drop still subtracts exactly.
@Suite(.ownThreads) struct ActivityRetentionTests {
    typealias I = IngestTests

    /// Every view but activity: what outlives the raw rows.
    static func aggregates(_ url: String) throws -> [[String?]] {
        try I.rows(url, "SELECT * FROM clickd.link_clicks ORDER BY 1, 2, 3")
            + I.rows(url, "SELECT * FROM clickd.link_clickers ORDER BY 1, 2, 3, 4")
            + I.rows(url, "SELECT * FROM clickd.message_stats ORDER BY 1, 2")
            + I.rows(url, "SELECT * FROM clickd.link_clicks_daily ORDER BY 1, 2, 3, 4")
            + I.rows(url, "SELECT * FROM clickd.source_clicks_hourly ORDER BY 1, 2, 3")
            + I.rows(url, "SELECT * FROM clickd.bot_clicks_daily ORDER BY 1, 2, 3, 4")
            + I.rows(url, "SELECT * FROM clickd.opens_daily_by_reason ORDER BY 1, 2, 3, 4")
            + I.rows(url, "SELECT * FROM clickd.source_openers ORDER BY 1, 2, 3")
    }

    static func activity(_ url: String, where condition: String = "true") throws -> [[String?]] {
        try I.rows(
            url,
            """
            SELECT customer_id, occurred_at, kind, delivery_id, link_id, url, human, bot_reason, user_agent, ip, open_reason
            FROM clickd.activity WHERE \(condition) ORDER BY 2, 1, 3, 4, 5
            """)
    }

    static let day: UInt64 = 86_400_000

    /// WorkersTests' records (clicks, bursts, bot clicks, opens of every reason, deliveries,
    /// undecodable records), moved into `months` consecutive months ending with the current
    /// one: the records are cut into `months` runs, each run keeps its own times (bursts stay
    /// bursts) and starts on its month's 3rd day.
    static func spreadRecords(months: Int, events: Int = 12_000, seed: UInt64 = 41) -> [[UInt8]] {
        let records = I.generatedRecords(events: events, seed: seed, burstEvery: 40)
        var month = ActivityMonth(milliseconds: EventLogConfiguration.wallClockMilliseconds())
        var starts: [UInt64] = []
        for _ in 0..<months {
            starts.insert(month.startMilliseconds + 2 * day, at: 0)
            month = month.previous
        }
        let run = (records.count + months - 1) / months
        return records.enumerated().map { index, record in
            guard let event = try? EventCodec.decode(record) else { return record }
            let start = starts[index / run]
            func move(_ t: inout UInt64) { t = t - I.t0 + start }
            // Tokens are signed in seconds.
            func moveSeconds(_ t: inout UInt64) { t = t + start / 1000 - I.t0 / 1000 }
            switch event {
            case .click(var c):
                move(&c.occurredAt)
                moveSeconds(&c.token.issuedAt)
                return EventCodec.encode(.click(c))
            case .delivered(var d):
                move(&d.occurredAt)
                return EventCodec.encode(.delivered(d))
            case .opened(var o):
                move(&o.occurredAt)
                moveSeconds(&o.token.issuedAt)
                return EventCodec.encode(.opened(o))
            }
        }
    }

    static func ingest(_ log: String, _ url: String, _ extra: [String] = []) throws -> CommandResult {
        try ChildProcess.clickd(["ingest", "--once", "--workers", "2", "--batch-size", "500", "--log", log, "--database", url] + extra)
    }

    @Test func aDropChangesNoAggregateAndARebuildBringsNothingBack() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let records = Self.spreadRecords(months: 20)
        let log = dir.appending("log")
        try await I.write(records, to: log)

        let reference = try I.database()
        #expect(try Self.ingest(log, reference).status == 0)
        let url = try I.database()
        let first = try Self.ingest(log, url, ["--activity-retention", "400d"])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stderr.contains("activity month dropped (retention)"), "a line per drop")

        // The months whose end is 400 days ago or more are gone, each recorded with its rows.
        let now = EventLogConfiguration.wallClockMilliseconds()
        let before = try #require(ActivityRetention.dropBefore(now: now, retention: .seconds(400 * 86_400)))
        let drops = try I.rows(url, "SELECT partition, rows, retention::text FROM clickd.retention_drops ORDER BY range_start")
        var expectedDrops: [[String?]] = []
        var month = ActivityMonth(milliseconds: now)
        for _ in 0..<19 { month = month.previous }
        while month < before {
            let count = try I.rows(
                reference,
                "SELECT count(*) FROM clickd.activity WHERE occurred_at >= '\(month.startTimestamp)' AND occurred_at < '\(month.next.startTimestamp)'"
            )
            expectedDrops.append([month.partitionName, count[0][0], "400 days"])
            month = month.next
        }
        #expect(expectedDrops.count >= 6, "the log spans 20 months")
        #expect(drops == expectedDrops)
        let cut = "occurred_at >= '\(before.startTimestamp)'"
        #expect(try Self.activity(url) == Self.activity(reference, where: cut), "the months kept are whole")
        #expect(try Self.activity(url).count > 0)
        #expect(try I.rows(url, "SELECT dropped_before = '\(before.startTimestamp)' FROM clickd_ingest.activity_retention") == [["t"]])
        // Counters, rollups, segments (first and last clicks included): as if nothing was dropped.
        let aggregates = try Self.aggregates(reference)
        #expect(aggregates.count > 100)
        #expect(try Self.aggregates(url) == aggregates)

        // Again: nothing more to drop; the months ahead exist.
        let again = try Self.ingest(log, url, ["--activity-retention", "400d"])
        #expect(again.status == 0 && !again.stderr.contains("activity month dropped"), "\(again.stderr)")
        #expect(try I.rows(url, "SELECT count(*) FROM clickd.retention_drops") == [["\(expectedDrops.count)"]])
        let current = ActivityMonth(milliseconds: now)
        let held = try I.rows(
            url,
            "SELECT to_regclass('clickd_internal.\(current.partitionName)') IS NOT NULL, to_regclass('clickd_internal.\(current.next.partitionName)') IS NOT NULL"
        )
        #expect(held == [["t", "t"]])

        // The audit line.
        let status = try ChildProcess.clickd(["status", "--log", log, "--database", url])
        #expect(status.status == 0, "\(status.stderr)")
        let line = try #require(status.stdout.split(separator: "\n").first { $0.hasPrefix("activity ") })
        #expect(line.contains("oldest_month=\(before) "), "\(line)")
        #expect(line.contains("newest_month=\(current.next) "), "\(line)")
        #expect(line.contains("retention=400d dropped_before=\(before)-01T00:00:00Z drops=\(expectedDrops.count)"), "\(line)")
        #expect(line.contains("last_drop_rows="), "\(line)")

        // A rebuild replays every record: the counters again, and no dropped month's rows.
        let verify = try ChildProcess.clickd(["rebuild", "--verify", "--log", log, "--database", url])
        #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
        let rebuild = try ChildProcess.clickd(["rebuild", "--log", log, "--database", url])
        #expect(rebuild.status == 0, "\(rebuild.stderr)")
        #expect(try Self.activity(url) == Self.activity(reference, where: cut))
        #expect(try Self.aggregates(url) == aggregates)
        #expect(try I.rows(url, "SELECT count(*) FROM clickd_internal.activity_default") == [["0"]])

        // An erasure after the drop still subtracts exactly: it reads the person's records
        // from the log, not from activity. The reference: the log without them, retained alike.
        let people = ["c7", "c42"]
        let without = records.filter { ErasureTests.customer($0).map { !people.contains($0) } ?? true }
        let logWithout = dir.appending("without")
        try await I.write(without, to: logWithout)
        let forgotten = try I.database()
        #expect(try Self.ingest(logWithout, forgotten, ["--activity-retention", "400d"]).status == 0)
        let erased = try ErasureTests.erase([log], url, people)
        #expect(erased.status == 0, "\(erased.stderr)")
        #expect(try Self.aggregates(url) == Self.aggregates(forgotten))
        #expect(try Self.activity(url) == Self.activity(forgotten))
    }

    /// A row of a month that has no partition (an edge's clock far ahead) goes to the default
    /// partition and moves into its month when the month is made; one of a dropped month is
    /// deleted with it.
    @Test func theDefaultPartitionHoldsAMonthUntilItIsMade() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let now = EventLogConfiguration.wallClockMilliseconds()
        let ahead = ActivityMonth(milliseconds: now).next.next.next
        let shift = ahead.startMilliseconds + Self.day - I.t0
        let log = dir.appending("log")
        try await I.write(
            [
                EventCodec.encode(I.delivered(shift, customer: "a", delivery: "d1")),
                EventCodec.encode(I.click(shift + 1000, customer: "a", delivery: "d1", link: "L1")),
            ], to: log)
        let url = try I.database()
        #expect(try Self.ingest(log, url).status == 0)
        let table = "SELECT tableoid::regclass::text, count(*) FROM clickd_internal.activity GROUP BY 1"
        #expect(try I.rows(url, table) == [["clickd_internal.activity_default", "2"]])
        let status = try ChildProcess.clickd(["status", "--log", log, "--database", url])
        #expect(status.stdout.contains(" default_rows=2 retention=none dropped_before=none drops=0"), "\(status.stdout)")

        // The daemon's pass in that month makes it: the rows move in, nothing changes in the views.
        let views = try I.snapshot(url)
        let logger = Logger(label: "test")
        let connect: @Sendable () throws -> PostgresConnection = { try PostgresConnection(url) }
        let later = ActivityRetention(retention: nil, logger: logger, wallClock: { ahead.startMilliseconds + 3600_000 }, connect: connect)
        let pass = try later.passOnce()
        #expect(pass.made == [ahead, ahead.next])
        #expect(try I.rows(url, table) == [["clickd_internal.\(ahead.partitionName)", "2"]])
        #expect(try I.snapshot(url) == views)

        // 500 days on, with a retention of 400 days: every month up to then is dropped.
        let much = ActivityRetention(
            retention: .seconds(400 * 86_400), logger: logger, wallClock: { ahead.startMilliseconds + 500 * Self.day }, connect: connect)
        let dropped = try much.passOnce()
        #expect(dropped.dropped.contains(ActivityRetention.Drop(month: ahead, rows: 2)))
        #expect(try I.rows(url, "SELECT count(*) FROM clickd.activity") == [["0"]])
        #expect(try I.rows(url, "SELECT sum(total_clicks)::text FROM clickd.link_clicks") == [["1"]])
    }

    @Test func aRetentionShorterThanAMonthOrWithoutUnitIsOneLine() throws {
        for bad in ["400", "30d", "soon", "4000000d"] {
            let result = try ChildProcess.clickd([
                "ingest", "--once", "--log", "/nonexistent", "--database", "postgres://x", "--activity-retention", bad,
            ])
            #expect(result.status != 0)
            // ArgumentParser's error line, then its usage lines.
            let first = result.stderr.split(separator: "\n").first ?? ""
            #expect(first.hasPrefix("Error: --activity-retention must be an age of at least 31d"), "\(bad): \(result.stderr)")
        }
    }

    @Test func monthsAreTheCalendarsInUTC() throws {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var ms: UInt64 = 0
        while ms < 4_200_000_000_000 {  // to 2103
            let date = Date(timeIntervalSince1970: Double(ms) / 1000)
            let parts = calendar.dateComponents([.year, .month], from: date)
            let month = ActivityMonth(milliseconds: ms)
            #expect(month.year == parts.year && month.month == parts.month, "\(ms)")
            let start = calendar.date(from: DateComponents(year: parts.year, month: parts.month, day: 1))!
            #expect(month.startMilliseconds == UInt64(start.timeIntervalSince1970 * 1000), "\(ms)")
            #expect(ActivityMonth(partitionName: month.partitionName) == month)
            ms += 13 * Self.day + 3_600_001
        }
        #expect(ActivityMonth(milliseconds: 1_798_761_599_999).description == "2026-12")
        #expect(ActivityMonth(milliseconds: 1_798_761_600_000).description == "2027-01")
        #expect(ActivityMonth(year: 2026, month: 12).next == ActivityMonth(year: 2027, month: 1))
        for name in ["activity_default", "activity_p2026_13", "activity_p2026-12", "activity_p26_12", "activity_p2026_120"] {
            #expect(ActivityMonth(partitionName: name) == nil, "\(name)")
        }
        // 400 days before 2026-12-07: 2025-11-02, whose month is kept; October 2025 goes.
        let now = ActivityMonth(year: 2026, month: 12).startMilliseconds + 6 * Self.day
        #expect(ActivityRetention.dropBefore(now: now, retention: .seconds(400 * 86_400)) == ActivityMonth(year: 2025, month: 11))
    }
}
