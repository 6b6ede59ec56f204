import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Foundation
import LinkTracking
import Testing

@testable import Projections

/// Issue 12, item 6: a record PostgreSQL refuses (a NUL in an id, a value its encoding
/// cannot hold, an index row over B-tree's limit) stopped its log for ever, and every other
/// log of the daemon with it. Now it is a dead letter and nothing else waits.
@Suite(.ownThreads) struct PoisonTests {
    typealias I = IngestTests

    /// A clean log of a newsletter, and a campaign log with records an older clickd signed
    /// and logged: NUL in a customer id and in a delivery id (22021), a customer id too big
    /// for the activity index (54000), and a non-decodable record (an ordinary dead letter).
    /// `poisoned: false` puts undecodable junk at the same LSNs instead: the reference.
    static func logs(_ dir: TemporaryDirectory, poisoned: Bool) async throws -> (campaign: String, newsletter: String, poison: [UInt64]) {
        var rng = SplitMix64(seed: 12)
        let huge = String((0..<3000).map { _ in Character(Unicode.Scalar(UInt8.random(in: 0x21...0x7e, using: &rng))) })
        var campaign: [[UInt8]] = []
        var poison: [UInt64] = []
        for i in 0..<60 {
            campaign.append(EventCodec.encode(I.delivered(UInt64(i) * 1000, customer: "c\(i % 9)", delivery: "d\(i)")))
            campaign.append(EventCodec.encode(I.click(UInt64(i) * 1000 + 60_000, customer: "c\(i % 9)", delivery: "d\(i)", link: "L\(i % 4)")))
            let bad: LinkTracking.TrackingEvent?
            switch i {
            case 7: bad = I.click(70_000, customer: "c\u{0}x", delivery: "p1", link: "L1")
            case 23: bad = I.delivered(80_000, customer: "c1", delivery: "p2\u{0}")
            case 41: bad = I.click(90_000, customer: huge, delivery: "p3", link: "L2")
            default: bad = nil
            }
            if let bad {
                poison.append(UInt64(campaign.count + 1))
                campaign.append(poisoned ? EventCodec.encode(bad) : Array("junk".utf8))
            }
            if i == 50 { campaign.append(Array("not a clickd event".utf8)) }
        }
        var newsletter: [[UInt8]] = []
        for i in 0..<40 {
            newsletter.append(
                EventCodec.encode(I.delivered(UInt64(i) * 500, customer: "n\(i % 5)", delivery: "nd\(i)", source: .newsletter, sourceID: "n1")))
            newsletter.append(
                EventCodec.encode(
                    I.click(
                        UInt64(i) * 500 + 90_000, customer: "n\(i % 5)", delivery: "nd\(i)", link: "N",
                        source: .newsletter, sourceID: "n1")))
        }
        let paths = (dir.appending("campaign"), dir.appending("newsletter"))
        try await I.write(campaign, to: paths.0)
        try await I.write(newsletter, to: paths.1)
        return (paths.0, paths.1, poison)
    }

    @Test func aRecordTheDatabaseRefusesIsADeadLetterAndNoLogWaits() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let reference = try TemporaryDirectory()
        defer { reference.remove() }
        let (campaign, newsletter, poison) = try await Self.logs(dir, poisoned: true)
        let clean = try await Self.logs(reference, poisoned: false)
        let url = try I.database()
        let referenceURL = try I.database()
        // Small batches: the refused records are found by halving batches of 16.
        let ingest = try ChildProcess.clickd(
            ["ingest", "--once", "--batch-size", "16", "--log", campaign, "--log", newsletter, "--database", url],
            timeout: 60)
        #expect(ingest.status == 0, "\(ingest.stderr)")
        let expected = try ChildProcess.clickd(["ingest", "--once", "--log", clean.campaign, "--log", clean.newsletter, "--database", referenceURL])
        #expect(expected.status == 0, "\(expected.stderr)")
        // Every good record is projected as in a run without the poison; both logs are at their end.
        #expect(try I.snapshot(url) == I.snapshot(referenceURL))
        #expect(try I.rows(url, "SELECT sum(total_clicks) FROM clickd.link_clicks") == [["100"]])
        #expect(try I.rows(url, "SELECT DISTINCT lsn FROM clickd_internal.checkpoints ORDER BY 1") == [["80"], ["124"]])
        let dead = try I.rows(url, "SELECT lsn, error FROM clickd_internal.dead_letters ORDER BY lsn")
        #expect(dead.map { UInt64($0[0]!)! } == (poison + [106]).sorted(), "\(dead)")
        #expect(dead[0][1]?.contains("customer id holds a NUL character") == true, "\(dead)")
        #expect(dead[1][1]?.contains("delivery id holds a NUL character") == true, "\(dead)")
        #expect(
            dead[2][1] == "PostgreSQL refused the record (SQLSTATE 54000, a program limit exceeded)"
                && dead[2][1]?.contains("SQLSTATE 54000") == true, "\(dead)")
        #expect(ingest.stderr.contains("a record the database refuses becomes a dead letter"))
        // A restart replays the classifier's window with the same dead letters: nothing changes.
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", campaign, "--log", newsletter, "--database", url]).status == 0)
        #expect(try I.snapshot(url) == I.snapshot(referenceURL))
        // A rebuild finds the same records and agrees row for row.
        let verify = try ChildProcess.clickd(
            ["rebuild", "--verify", "--batch-size", "16", "--log", campaign, "--log", newsletter, "--database", url],
            timeout: 60)
        #expect(verify.status == 0, "\(verify.stdout) \(verify.stderr)")
    }

    /// A database in another encoding than UTF-8 would refuse characters of ordinary ids
    /// and user agents (22P05): `clickd migrate` refuses it with one line.
    @Test func migrateRefusesADatabaseThatIsNotUTF8() throws {
        let url = try ThrowawayPostgres.shared.get().createDatabase("l_\(UInt32.random(in: 0...UInt32.max))", latin1: true)
        let migrated = try ChildProcess.clickd(["migrate", "--database", url, "--migrations", I.migrations])
        #expect(migrated.status == 1)
        #expect(migrated.stderr.contains("the database's encoding is LATIN1; clickd stores UTF-8 text"), "\(migrated.stderr)")
        #expect(migrated.stderr.split(separator: "\n").count == 1)
        #expect(try I.rows(url, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'clickd%'") == [["0"]], "nothing was created")
    }

    /// A log that cannot be read (the first record of a segment damaged) holds back no other
    /// log: they are drained, and `--once` then exits 1 naming the damaged segment.
    @Test func aDamagedLogHoldsBackNoOtherLog() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (_, newsletter, _) = try await Self.logs(dir, poisoned: false)
        let damaged = dir.appending("damaged")
        var configuration = EventLogConfiguration()
        configuration.sync = .none
        configuration.segmentSize = 64 << 10
        let writer = try EventLogWriter(directory: damaged, configuration: configuration, logger: I.quiet)
        for i in 0..<2000 {
            _ = try await writer.append(EventCodec.encode(I.click(UInt64(i) * 10, customer: "x\(i % 7)", delivery: "x\(i)", link: "X")))
        }
        writer.close()
        let segments = try FileManager.default.contentsOfDirectory(atPath: damaged).filter { $0.hasSuffix(".seg") }.sorted()
        #expect(segments.count >= 3)
        let second = damaged + "/" + segments[1]
        try FileDamage.corrupt(second) { $0[48 + 20] ^= 0xff }
        let url = try I.database()
        let ingest = try ChildProcess.clickd(["ingest", "--once", "--log", damaged, "--log", newsletter, "--database", url], timeout: 60)
        #expect(ingest.status == 1)
        let errorLines = ingest.stderr.split(separator: "\n").filter { $0.hasPrefix("clickd: error: ") }
        #expect(errorLines.count == 1 && errorLines[0].contains(second) && errorLines[0].contains("byte 48"), "\(ingest.stderr)")
        // The clean log is projected whole, the damaged one up to the damage.
        #expect(try I.rows(url, "SELECT sum(total_clicks) FROM clickd.link_clicks WHERE source_id = 'n1'") == [["40"]])
        let firstOfSecond = UInt64(segments[1].dropLast(4), radix: 16)!
        #expect(try I.rows(url, "SELECT count(*) FROM clickd.activity WHERE customer_id LIKE 'x%'") == [["\(firstOfSecond - 1)"]])
    }
}
