import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Foundation
import LinkTracking
import Testing

@testable import Projections

/// `clickd erase` (docs/design/erasure.md, 2a): after it, every view equals a database that
/// ingested the logs without those people — also while a 2-worker daemon ingests and the
/// edge keeps writing their records; a rebuild brings nobody back; a second run changes nothing.
@Suite(.ownThreads) struct ErasureTests {
    typealias I = IngestTests
    static let erased = ["c7", "c42", "ü-shared"]

    static func customer(_ record: [UInt8]) -> String? {
        record.withUnsafeBytes { EventCodec.customerField($0).map { String(decoding: $0, as: UTF8.self) } }
    }

    /// The two logs of WorkersTests, and a database that ingested them without the erased people.
    static func logsAndReference(_ dir: TemporaryDirectory, erased: [String] = erased) async throws -> (
        logs: [[[UInt8]]], reference: String
    ) {
        let logs = WorkersTests.records(seed: 83)
        let without = logs.map { $0.filter { Self.customer($0).map { !erased.contains($0) } ?? true } }
        #expect(zip(logs, without).allSatisfy { $0.count > $1.count + 20 }, "the erased people have records in both logs")
        let paths = [dir.appending("ref-a"), dir.appending("ref-b")]
        for (records, path) in zip(without, paths) { try await I.write(records, to: path) }
        let reference = try I.database()
        let options: [String] = paths.flatMap { ["--log", $0] } + ["--database", reference]
        let ingest = try ChildProcess.clickd(["ingest", "--once", "--workers", "2"] + options)
        #expect(ingest.status == 0, "\(ingest.stderr)")
        return (logs, reference)
    }

    static func erase(_ logs: [String], _ url: String, _ people: [String] = erased) throws -> CommandResult {
        try ChildProcess.clickd(["erase", "--database", url] + eraseOptions(logs, people))
    }

    static func eraseOptions(_ logs: [String], _ people: [String]) -> [String] {
        logs.flatMap { ["--log", $0] } + people.flatMap { ["--customer", $0] }
    }

    @Test func erasedPeopleLeaveNothingAndComeNotBack() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (records, reference) = try await Self.logsAndReference(dir)
        let logs = [dir.appending("a"), dir.appending("b")]
        for (r, path) in zip(records, logs) { try await I.write(r, to: path) }
        let url = try I.database()
        let arguments: [String] = logs.flatMap { ["--log", $0] } + ["--database", url]
        #expect(try ChildProcess.clickd(["ingest", "--once", "--workers", "2", "--batch-size", "333"] + arguments).status == 0)
        let want = try WorkersTests.views(reference)
        #expect(try WorkersTests.views(url) != want, "before: the people count")

        let erased = try Self.erase(logs, url)
        #expect(erased.status == 0, "\(erased.stderr)")
        #expect(erased.stdout.contains("erased: 3 people (3 new)"), "\(erased.stdout)")
        let got = try WorkersTests.views(url)
        #expect(got == want, "differs: \(Set(got).symmetricDifference(Set(want)).prefix(6))")
        #expect(try I.rows(url, "SELECT count(*) FROM clickd.activity WHERE customer_id IN ('c7', 'c42', 'ü-shared')") == [["0"]])
        #expect(try I.rows(url, "SELECT count(*), count(erased_at) FROM clickd.erasures") == [["3", "3"]])
        // The list holds no id in clear.
        #expect(
            try I.rows(url, "SELECT count(*) FROM clickd_ingest.erasures WHERE position(convert_to('c42', 'UTF8') IN customer_mac) > 0") == [["0"]])
        // Again: nothing changes. Ingestion of the same logs again: nobody comes back.
        #expect(try Self.erase(logs, url).stdout.contains("(0 new), 0 records"))
        #expect(try ChildProcess.clickd(["ingest", "--once", "--workers", "2"] + arguments).status == 0)
        #expect(try WorkersTests.views(url) == want)
        // A rebuild from the logs drops them too.
        let rebuilt = try ChildProcess.clickd(["rebuild"] + arguments)
        #expect(rebuilt.status == 0, "\(rebuilt.stderr)")
        #expect(try WorkersTests.views(url) == want)
    }

    /// A 2-worker daemon follows the logs while the edge's records keep coming (the erased
    /// people's among them) and the erasure runs in the middle: afterwards the views equal the
    /// reference, so no batch folded before the erasure wrote them after it.
    @Test func anErasureWhileIngestionRuns() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (records, reference) = try await Self.logsAndReference(dir)
        let logs = [dir.appending("a"), dir.appending("b")]
        for (r, path) in zip(records, logs) { try await WorkersTests.append(r[..<(r.count / 2)], to: path) }
        let url = try I.database()
        let follow: [String] = ["ingest", "--workers", "2", "--batch-size", "97"] + logs.flatMap { ["--log", $0] } + ["--database", url]
        let daemon = try ChildProcess.startClickd(follow)
        defer {
            kill(daemon.processIdentifier, SIGTERM)
            daemon.waitUntilExit()
        }
        usleep(300_000)
        async let erasing = onOwnThread { try Self.erase(logs, url) }
        for (r, path) in zip(records, logs) { try await WorkersTests.append(r[(r.count / 2)...], to: path) }
        let erased = try await erasing
        #expect(erased.status == 0, "\(erased.stderr)")
        for (r, path) in zip(records, logs) { #expect(try I.waitUntilProjected(path, url, through: r.count)) }
        let (got, want) = (try WorkersTests.views(url), try WorkersTests.views(reference))
        #expect(got == want, "differs: \(Set(got).symmetricDifference(Set(want)).prefix(6))")
    }

    /// `kill -9` of `clickd erase` in the middle: held at one shard (the test locks its
    /// checkpoints), the shards before it are erased whole and the others not at all; the
    /// run again finishes, and the views equal the reference.
    @Test func kill9InTheMiddleOfAnErasure() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let people = (0..<40).map { "c\($0 * 7)" }
        let (records, reference) = try await Self.logsAndReference(dir, erased: people)
        let logs = [dir.appending("a"), dir.appending("b")]
        for (r, path) in zip(records, logs) { try await I.write(r, to: path) }
        let url = try I.database()
        #expect(try ChildProcess.clickd(["ingest", "--once", "--workers", "2"] + logs.flatMap { ["--log", $0] } + ["--database", url]).status == 0)
        let shards = try ProjectionStore(PostgresConnection(url)).shardCount()
        let theirs = Set(people.map { ShardFunction.shard(ofCustomer: $0, shards: shards) }).sorted()
        #expect(theirs.count >= 4, "the people are spread over shards: \(theirs)")
        let held = theirs[theirs.count / 2]

        let holder = try PostgresConnection(url)
        defer { holder.close() }
        try holder.execute("BEGIN")
        _ = try holder.query("SELECT lsn FROM clickd_internal.checkpoints WHERE shard = $1 FOR UPDATE", [held])
        let eraser = try ChildProcess.startClickd(["erase", "--database", url] + Self.eraseOptions(logs, people))
        // Until the eraser waits for the held shard's lock.
        var waiting = false
        for _ in 0..<200 where !waiting {
            usleep(50_000)
            waiting =
                try I.rows(url, "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%checkpoints%FOR UPDATE%'")
                != [["0"]]
        }
        #expect(waiting, "the eraser reached the held shard")
        kill(eraser.processIdentifier, SIGKILL)
        eraser.waitUntilExit()
        try holder.execute("ROLLBACK")

        // Whole shards: those before the held one erased (no row of the people left), the
        // held one and those after untouched (their rows all there).
        let done = try I.rows(url, "SELECT DISTINCT shard FROM clickd_ingest.erasures WHERE erased_at IS NOT NULL ORDER BY 1").map { Int($0[0]!)! }
        #expect(done == theirs.filter { $0 < held }, "erased: \(done), held: \(held)")
        for shard in theirs {
            let rows = try I.rows(
                url,
                "SELECT count(*) FROM clickd_internal.activity WHERE shard = \(shard) AND customer_id IN (\(people.map { "'\($0)'" }.joined(separator: ",")))"
            )
            #expect((rows == [["0"]]) == (shard < held), "shard \(shard): \(rows)")
        }
        let again = try Self.erase(logs, url, people)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.contains("erased: 40 people (0 new)"), "\(again.stdout)")
        let (got, want) = (try WorkersTests.views(url), try WorkersTests.views(reference))
        #expect(got == want, "differs: \(Set(got).symmetricDifference(Set(want)).prefix(6))")
    }

    /// What is not a sum: a link's URL (here carrying the person's own parameter) and its
    /// first and last click are taken from the clicks that stay.
    @Test func aLinksURLAndTimesComeFromTheClicksThatStay() async throws {
        func click(_ ms: UInt64, _ customer: String) -> [UInt8] {
            guard case .click(var event) = I.click(ms, customer: customer, delivery: "d-\(customer)", link: "L1") else { return [] }
            event.token.destination = "https://shop.example.com/L1?u=\(customer)"
            return EventCodec.encode(.click(event))
        }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let records = [click(1_000, "c1"), click(9_000, "c9"), click(2_000, "c1"), click(3_000, "c2")]
        let (log, ref) = (dir.appending("log"), dir.appending("ref"))
        try await I.write(records, to: log)
        try await I.write(records.filter { Self.customer($0) != "c9" }, to: ref)
        let (url, reference) = (try I.database(), try I.database())
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url]).status == 0)
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", ref, "--database", reference]).status == 0)
        let query = "SELECT url, unique_clickers, total_clicks, first_click_at, last_click_at FROM clickd.link_clicks"
        #expect(try I.rows(url, query).first?[0] == "https://shop.example.com/L1?u=c9")
        let erased = try Self.erase([log], url, ["c9"])
        #expect(erased.status == 0, "\(erased.stderr)")
        let got = try I.rows(url, query)
        #expect(got.first?[0] == "https://shop.example.com/L1?u=c2" && got.first?[1] == "2", "\(got)")
        #expect(got == (try I.rows(reference, query)))
        #expect(try WorkersTests.views(url) == WorkersTests.views(reference))
    }

    /// A segment whose records of a person are redaction records (kind 4, the same LSNs:
    /// what the log's rewrite will leave) projects as a log without them: skipped, no dead
    /// letter, the checkpoint through the end; `log dump` shows them as redacted.
    @Test func redactionRecordsCountForNothing() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let records = WorkersTests.records(seed: 83)[1]
        let redacted = records.map { Self.customer($0) == "c42" ? EventCodec.redaction : $0 }
        #expect(redacted.filter { $0 == EventCodec.redaction }.count > 10)
        let (log, ref) = (dir.appending("log"), dir.appending("ref"))
        try await I.write(redacted, to: log)
        try await I.write(records.filter { Self.customer($0) != "c42" }, to: ref)
        let (url, reference) = (try I.database(), try I.database())
        #expect(try ChildProcess.clickd(["ingest", "--once", "--workers", "2", "--log", log, "--database", url]).status == 0)
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", ref, "--database", reference]).status == 0)
        #expect(try WorkersTests.views(url) == WorkersTests.views(reference))
        // The generator's own poison records are dead letters in both; no redaction record is.
        let letters = "SELECT count(*), count(*) FILTER (WHERE error LIKE '%kind 4%') FROM clickd_internal.dead_letters"
        let (got, want) = (try I.rows(url, letters), try I.rows(reference, letters))
        #expect(got == want && got.first?[1] == "0", "\(got) \(want)")
        #expect(try I.waitUntilProjected(log, url, through: records.count))
        let dump = try ChildProcess.clickd(["log", "dump", log])
        let first = redacted.firstIndex(of: EventCodec.redaction)! + 1
        #expect(dump.stdout.contains("lsn=\(first) bytes=2 redacted\n"), "\(dump.stdout.prefix(300))")
        #expect(!dump.stdout.contains("c42"))
        redacted[first - 1].withUnsafeBytes { raw in
            #expect(EventCodec.isRedaction(raw) && EventCodec.customerField(raw) == nil)
            #expect(throws: EventCodec.DecodeError.self) { try EventCodec.decode(raw) }
        }
    }
}
