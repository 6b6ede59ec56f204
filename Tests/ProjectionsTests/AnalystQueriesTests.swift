import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Foundation
import LinkTracking
import Testing

/// docs/analysts.md cannot rot: every ```sql block in it runs, as written, with psql as
/// the role clickd_analyst, against a database seeded with a campaign and a newsletter,
/// and must succeed and return rows.
@Suite(.ownThreads) struct AnalystQueriesTests {
    static let day: UInt64 = 86_400_000

    /// Campaign 42 (links hero, pricing, footer) sent once to 30 people; newsletter
    /// "weekly" sent on three days; human clicks, repeats, a prefetch and a scanner; opens,
    /// people's and Apple's.
    static func seed() -> [[UInt8]] {
        var events: [LinkTracking.TrackingEvent] = []
        for c in 0..<30 {
            events.append(IngestTests.delivered(UInt64(c) * 1000, customer: "cust-\(c)", delivery: "c42-\(c)", sourceID: "42"))
        }
        for c in 0..<30 {
            let at = 600_000 + UInt64(c) * 5000
            if c % 2 == 0 { events.append(IngestTests.click(at, customer: "cust-\(c)", delivery: "c42-\(c)", link: "pricing", sourceID: "42")) }
            if c % 5 == 0 { events.append(IngestTests.click(at + 2000, customer: "cust-\(c)", delivery: "c42-\(c)", link: "hero", sourceID: "42")) }
            if c == 7 {
                for repeatAt in [at, at + 60_000, at + 120_000] {
                    events.append(IngestTests.click(repeatAt, customer: "cust-7", delivery: "c42-7", link: "footer", sourceID: "42"))
                }
            }
            if c == 1 { events.append(IngestTests.click(at, customer: "cust-1", delivery: "c42-1", link: "pricing", sourceID: "42", method: .head)) }
            if c == 3 { events.append(IngestTests.click(at, customer: "cust-3", delivery: "c42-3", link: "hero", sourceID: "42", ua: "curl/8.5")) }
            // Opens: a third of the people, and Apple's fetch of every fifth message.
            if c % 3 == 0 { events.append(IngestTests.opened(at - 1000, customer: "cust-\(c)", delivery: "c42-\(c)", sourceID: "42")) }
            if c % 5 == 1 {
                events.append(
                    IngestTests.opened(UInt64(c) * 1000 + 2000, customer: "cust-\(c)", delivery: "c42-\(c)", sourceID: "42", appleRelay: true))
            }
        }
        for d in 0..<3 {
            let start = UInt64(d) * day + 3_600_000
            for c in 0..<30 {
                events.append(
                    IngestTests.delivered(
                        start + UInt64(c) * 1000, customer: "cust-\(c)", delivery: "w\(d)-\(c)", source: .newsletter, sourceID: "weekly"))
            }
            for c in 0..<30 where c % 3 == d {
                events.append(
                    IngestTests.click(
                        start + 900_000 + UInt64(c) * 1000, customer: "cust-\(c)", delivery: "w\(d)-\(c)", link: "read-more",
                        source: .newsletter, sourceID: "weekly"))
            }
        }
        return events.sorted { $0.occurredAt < $1.occurredAt }.map(EventCodec.encode)
    }

    static func sqlBlocks(_ markdown: String) -> [String] {
        var blocks: [String] = []
        var current: [Substring]? = nil
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil, line == "```sql" {
                current = []
            } else if current != nil, line == "```" {
                blocks.append(current!.joined(separator: "\n") + "\n")
                current = nil
            } else if current != nil {
                current!.append(line)
            }
        }
        return blocks
    }

    @Test func everyQueryOfTheGuideRunsAndReturnsRows() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let log = dir.appending("log")
        try await IngestTests.write(Self.seed(), to: log)
        let url = try IngestTests.database()
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url]).status == 0)

        let guide = try String(contentsOfFile: RepositoryPaths.root.appendingPathComponent("docs/analysts.md").path, encoding: .utf8)
        let blocks = Self.sqlBlocks(guide)
        #expect(blocks.count == 8)
        for (i, block) in blocks.enumerated() {
            let file = dir.appending("q\(i).sql")
            try block.write(toFile: file, atomically: true, encoding: .utf8)
            // psql runs in the temporary directory, where \copy writes its file.
            let result = try ChildProcess.run(
                "/bin/sh",
                [
                    "-c", "cd \"$0\" && exec psql \"$1\" -X -q -v ON_ERROR_STOP=1 --csv -c 'SET ROLE clickd_analyst' -f \"$2\"",
                    dir.path, url, file,
                ])
            #expect(result.status == 0, "query \(i): \(result.stderr)\n\(block)")
            if block.contains("segment.csv") {
                let csv = (try? String(contentsOfFile: dir.appending("segment.csv"), encoding: .utf8)) ?? ""
                let lines = csv.split(separator: "\n")
                #expect(lines.first == "customer_id,human_clicks,first_clicked_at,last_clicked_at", "\(csv)")
                // Even-numbered people clicked pricing; cust-1's click was a prefetch.
                #expect(lines.count == 16, "\(csv)")
            } else {
                #expect(result.stdout.split(separator: "\n").count >= 2, "query \(i) returned no rows:\n\(block)")
            }
        }
    }
}
