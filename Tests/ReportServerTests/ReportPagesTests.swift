import ClickdTestSupport
import Foundation
import HummingbirdBcrypt
import LinkTracking
import Projections
import Testing

@testable import ReportServer

/// The report pages rendered in process against a seeded, real PostgreSQL: the numbers on
/// each page are the views' numbers (checked by SQL on the views), hostile text stays text,
/// and errors say what went wrong.
@Suite struct ReportPagesTests {
    /// One seeded database for the suite, made on first use.
    static let seeding = Task { try await ReportFixture.seededDatabase() }

    @Test func theSourcesPageShowsTheViewsFigures() async throws {
        let (owner, reader) = try await Self.seeding.value
        let report = try await InProcessReport(conninfo: reader)
        let page = try await report.get("/")
        #expect(page.status == 200)
        #expect(page.header("Content-Type") == "text/html; charset=utf-8")
        #expect(page.header("Content-Security-Policy")?.hasPrefix("default-src 'none'; style-src 'self'; img-src 'self'") == true)
        let html = page.text
        #expect(!html.contains("<script"), "no script at all")
        #expect(html.contains("2026-10-27 to 2026-11-25"), "the default range, the 30 days ending today, is shown")
        let stats = try await ReportFixture.rows(
            owner, "SELECT source_kind, source_id, delivered, total_clicks, click_rate, human_clicks FROM clickd.message_stats")
        for row in stats {
            let kind = row[0]!
            let id = row[1]!
            let href = "/sources/\(kind)/\(PageContext.encodeSegment(id))?"
            #expect(html.contains(href), "\(kind) \(id) links to its overview")
            let rate = Shown.percent(row[4])
            #expect(html.contains("<td>\(Shown.count(row[2]))</td><td>"), "delivered of \(id)")
            #expect(
                html.contains("<td>\(rate)</td><td>\(Shown.count(row[3]))</td><td>\(Shown.count(row[5]))</td>"), "rate, clicks, human clicks of \(id)"
            )
        }
        // Sorted by delivered, most first, by default: campaign 17 (40) before n-1 (10).
        let seventeen = try #require(html.range(of: "campaign 17</bdi>"))
        let newsletter = try #require(html.range(of: "newsletter n-1</bdi>"))
        #expect(seventeen.lowerBound < newsletter.lowerBound)
        let ascending = try await report.get("/?sort=delivered").text
        #expect(
            try #require(ascending.range(of: "newsletter n-1</bdi>")).lowerBound < (try #require(ascending.range(of: "campaign 17</bdi>"))).lowerBound
        )
        // The CSV twin.
        let csv = try await report.get("/sources.csv")
        #expect(csv.status == 200)
        #expect(csv.header("Content-Disposition") == "attachment; filename=\"sources.csv\"")
        let lines = csv.text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(
            lines.first
                == "source_kind,source_id,delivered,clicked_customers,click_rate,total_clicks,human_clicks,opened_customers,open_rate,click_to_open_rate,machine_opens"
        )
        #expect(lines.count == 1 + (try await ReportFixture.rows(owner, "SELECT count(*) FROM clickd.message_stats")[0][0].flatMap { Int($0) } ?? -1))
        #expect(lines.contains { $0.hasPrefix("campaign,17,40,") })
        // Campaign 17: hero 12 + 2 repeats, footer 5, a scanner, a prefetch, a burst of 4 = 25
        // clicks, of which 19 human (the fixture's events).
        let seventeenStats = try #require(stats.first { $0[0] == "campaign" && $0[1] == "17" })
        #expect(seventeenStats[3] == "25" && seventeenStats[5] == "19", "\(seventeenStats.map { $0 ?? "-" })")
        #expect(lines.contains { $0.hasPrefix("campaign,17,40,") && $0.contains(",25,19,") })
        // Opens (the fixture's): 17 opened of 40 (6 people, 2 through a proxy, the other 9
        // by clicking), 10 machine opens (8 Apple, a scanner, a prefetch), 17 of 17 clicked.
        #expect(lines.contains { $0 == "campaign,17,40,17,0.425000,25,19,17,0.425000,1.000000,10" }, "\(lines)")
        let opens = try await ReportFixture.rows(
            owner, "SELECT source_kind, source_id, opened_customers, open_rate, click_to_open_rate, machine_opens FROM clickd.message_stats")
        for row in opens {
            #expect(
                html.contains(
                    "<td>\(Shown.count(row[2]))</td><td>\(Shown.percent(row[3]))</td><td>\(Shown.percent(row[4]))</td><td>\(Shown.count(row[5]))</td></tr>"
                ),
                "open figures of \(row[1]!)")
        }
        // Sorted by open rate, most first: n-1 (90 %) before 17 (42.5 %); its CSV alike.
        let byOpenRate = try await report.get("/?sort=-open-rate").text
        #expect(byOpenRate.contains("Open rate</a> ▼"))
        #expect(
            try #require(byOpenRate.range(of: "newsletter n-1</bdi>")).lowerBound
                < (try #require(byOpenRate.range(of: "campaign 17</bdi>"))).lowerBound)
        let csvByOpenRate = try await report.get("/sources.csv?sort=-open-rate").text.components(separatedBy: "\r\n")
        let n1 = try #require(csvByOpenRate.firstIndex { $0.hasPrefix("newsletter,n-1,10,4,0.400000,4,4,9,0.900000,0.444444,0") }, "\(csvByOpenRate)")
        let c17 = try #require(csvByOpenRate.firstIndex { $0.hasPrefix("campaign,17,") })
        #expect(n1 < c17)
        // Sorted by human clicks, most first.
        let byHuman = try await report.get("/?sort=-human").text
        #expect(byHuman.contains("Human clicks</a> ▼"))
        #expect(
            try #require(byHuman.range(of: "campaign 17</bdi>")).lowerBound < (try #require(byHuman.range(of: "newsletter n-1</bdi>"))).lowerBound)
        try await report.stop()
    }

    @Test func theOverviewShowsTilesAndTopClickedLinksInOrder() async throws {
        let (owner, reader) = try await Self.seeding.value
        let report = try await InProcessReport(conninfo: reader)
        let html = try await report.get("/sources/campaign/17").text
        let stats = try await ReportFixture.rows(
            owner,
            "SELECT delivered, clicked_customers, click_rate, total_clicks FROM clickd.message_stats WHERE source_kind = 'campaign' AND source_id = '17'"
        )[0]
        #expect(html.contains("<span class=\"figure\">\(Shown.count(stats[0]))</span> delivered"))
        #expect(html.contains("<span class=\"figure\">\(Shown.percent(stats[2]))</span> of recipients clicked (\(Shown.count(stats[1])) people)"))
        #expect(html.contains("<span class=\"figure\">\(Shown.count(stats[3]))</span> clicks, repeats included"))
        // Opens beside clicks, and who fetched the pixel.
        #expect(html.contains("<span class=\"figure\">42.5 %</span> opened (17 people)"), "\(html)")
        #expect(html.contains("<span class=\"figure\">100.0 %</span> click-to-open"))
        // 19 fetches: 7 people's own (c0 twice), 2 through a proxy, 8 Apple's, a scanner, a prefetch.
        #expect(html.contains("all time: 19 fetches, 10 of them machines'"))
        for row in [
            "Opened by the person</th><td>7</td><td>36.8 %</td><td>yes</td>",
            "Opened through an image proxy</th><td>2</td><td>10.5 %</td><td>yes</td>",
            "Apple Mail Privacy Protection</th><td>8</td><td>42.1 %</td><td>no</td>", "Security scanner</th><td>1</td><td>5.3 %</td><td>no</td>",
            "Prefetched</th><td>1</td><td>5.3 %</td><td>no</td>",
        ] {
            #expect(html.contains(row), "\(row)")
        }
        let bots = try await ReportFixture.rows(
            owner,
            "SELECT sum(total_clicks - human_clicks)::float8 / sum(total_clicks) FROM clickd.link_clicks WHERE source_kind = 'campaign' AND source_id = '17'"
        )[0]
        #expect(html.contains("<span class=\"figure\">\(Shown.percent(bots[0].flatMap(Double.init)))</span> of clicks by bots"))
        let links = try await ReportFixture.rows(
            owner,
            "SELECT link_id, total_clicks, human_clicks, unique_clickers FROM clickd.link_clicks WHERE source_kind = 'campaign' AND source_id = '17' ORDER BY total_clicks DESC, link_id"
        )
        #expect(links.count == 4 && links[0][0] == "hero")
        var position = html.startIndex
        for link in links {
            let row = "<tr><th scope=\"row\"><bdi>\(link[0]!)</bdi></th>"
            let found = try #require(html.range(of: row, range: position..<html.endIndex), "\(link[0]!) in order")
            position = found.upperBound
            let segment = "/sources/campaign/17/links/\(link[0]!)?from=2026-10-27&amp;to=2026-11-25&amp;bots=exclude\">\(Shown.count(link[3]))</a>"
            #expect(html.contains(segment), "the unique count of \(link[0]!) links to its segment")
            #expect(html.contains("<td>\(Shown.count(link[1]))</td><td>\(Shown.count(link[2]))</td>"))
        }
        let csv = try await report.get("/sources/campaign/17.csv").text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(csv.dropFirst().map { $0.components(separatedBy: ",")[0] } == links.map { $0[0]! })
        try await report.stop()
    }

    /// Clicks over time: by the hour under 7 days, by the day beyond; every bucket of the
    /// range in the table (zeros included), the same numbers as the hourly view; the SVG is
    /// described for a screen reader and its text escaped.
    @Test func theChartFollowsTheRangeAndItsTableIsTheView() async throws {
        let (owner, reader) = try await Self.seeding.value
        let report = try await InProcessReport(conninfo: reader)
        let hours = try await ReportFixture.rows(
            owner,
            """
            SELECT to_char(hour, 'YYYY-MM-DD HH24:00'), total_clicks, human_clicks FROM clickd.source_clicks_hourly
            WHERE source_kind = 'campaign' AND source_id = '17' AND total_clicks > 0 ORDER BY 1
            """)
        #expect(hours.count >= 4)
        let hourly = try await report.get("/sources/campaign/17?from=2026-11-20&to=2026-11-22").text
        #expect(hourly.contains("<title id=\"chart-title\">Clicks on campaign 17 by the hour</title>"))
        #expect(hourly.contains("<caption>Clicks over time, by the Hour (UTC)."))
        #expect(hourly.components(separatedBy: "<tr><th scope=\"row\">2026-11-2").count - 1 == 72, "72 hours, empty ones included")
        for h in hours { #expect(hourly.contains("<tr><th scope=\"row\">\(h[0]!)</th><td>\(h[1]!)</td><td>\(h[2]!)</td></tr>"), "\(h)") }
        #expect(hourly.contains("<tr><th scope=\"row\">2026-11-20 07:00</th><td>0</td><td>0</td></tr>"))
        let human = hours.reduce(0) { $0 + Int($1[2]!)! }
        let total = hours.reduce(0) { $0 + Int($1[1]!)! }
        #expect(hourly.contains("Bar chart of human clicks per hour from 2026-11-20 to 2026-11-22 (UTC): \(human) in all"))
        let withBots = try await report.get("/sources/campaign/17?from=2026-11-20&to=2026-11-22&bots=include").text
        #expect(withBots.contains("Bar chart of clicks, bots included per hour from 2026-11-20 to 2026-11-22 (UTC): \(total) in all"))
        #expect(withBots.components(separatedBy: "<rect ").count - 1 == hours.count, "one bar per hour with clicks")
        // A week or more: by the day.
        let daily = try await report.get("/sources/campaign/17?from=2026-11-19&to=2026-11-25").text
        #expect(daily.contains("by the day</title>"))
        #expect(daily.components(separatedBy: "<tr><th scope=\"row\">2026-11-").count - 1 == 7)
        let days = try await ReportFixture.rows(
            owner,
            """
            SELECT to_char(hour, 'YYYY-MM-DD'), sum(total_clicks), sum(human_clicks) FROM clickd.source_clicks_hourly
            WHERE source_kind = 'campaign' AND source_id = '17' GROUP BY 1 ORDER BY 1
            """)
        for d in days { #expect(daily.contains("<tr><th scope=\"row\">\(d[0]!)</th><td>\(d[1]!)</td><td>\(d[2]!)</td></tr>"), "\(d)") }
        // The table's CSV twin.
        let csv = try await report.get("/sources/campaign/17/clicks.csv?from=2026-11-20&to=2026-11-22").text
        let lines = csv.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(lines.first == "hour_utc,total_clicks,human_clicks" && lines.count == 73)
        #expect(lines.dropFirst().reduce(0) { $0 + Int($1.split(separator: ",")[1])! } == total)
        // The hostile source's chart: its title is text.
        let hostile = try await report.get(
            "/sources/campaign/\(PageContext.encodeSegment(ReportFixture.hostileCampaign))?from=2026-11-20&to=2026-11-22"
        ).text
        #expect(hostile.contains("<title id=\"chart-title\">Clicks on campaign &lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39; by the hour</title>"))
        try await report.stop()
    }

    /// Bot clicks by reason and by source in the range: the same counts as the activity rows.
    @Test func theBotsPageCountsEachReason() async throws {
        let (owner, reader) = try await Self.seeding.value
        let report = try await InProcessReport(conninfo: reader)
        let expected = try await ReportFixture.rows(
            owner,
            "SELECT bot_reason, count(*) FROM clickd.activity WHERE kind = 'clicked_link' AND NOT human GROUP BY 1 ORDER BY 2 DESC, 1")
        #expect(expected.count >= 3, "a scanner, a prefetch and a burst: \(expected)")
        let html = try await report.get("/bots?from=2026-11-20&to=2026-11-22").text
        for r in expected { #expect(html.contains("<tr><th scope=\"row\">\(r[0]!)</th><td>\(r[1]!)</td></tr>"), "\(r)") }
        let bySource = try await ReportFixture.rows(
            owner,
            "SELECT source_kind || ',' || source_id || ',' || bot_reason || ',' || count(*) FROM clickd.activity WHERE kind = 'clicked_link' AND NOT human GROUP BY source_kind, source_id, bot_reason ORDER BY 1"
        ).map { $0[0]! }
        let csv = try await report.get("/bots.csv?from=2026-11-20&to=2026-11-22").text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(csv.first == "source_kind,source_id,bot_reason,clicks")
        #expect(csv.dropFirst().sorted() == bySource.sorted())
        let reasons = try await report.get("/bots/reasons.csv?from=2026-11-20&to=2026-11-22").text.components(separatedBy: "\r\n").filter {
            !$0.isEmpty
        }
        #expect(reasons.dropFirst().map { String($0.split(separator: ",")[0]) } == expected.map { $0[0]! })
        // Outside the range, nothing.
        #expect(try await report.get("/bots?from=2026-10-01&to=2026-10-31").text.contains("No bot clicks in the range."))
        try await report.stop()
    }

    /// Customer.io's condition "clicked a tracked link matching https://…*": `*` matches
    /// anything, LIKE's own `%` and `_` match themselves; by source, since a day; size,
    /// members and CSV as SQL on the views says.
    @Test func theSegmentByURLPattern() async throws {
        let (owner, reader) = try await Self.seeding.value
        let report = try await InProcessReport(conninfo: reader)
        func members(_ filter: String) async throws -> [String] {
            try await ReportFixture.rows(
                owner,
                """
                SELECT DISTINCT c.customer_id FROM clickd.link_clickers c JOIN clickd.link_clicks l USING (source_kind, source_id, link_id)
                WHERE c.human_clicks > 0 AND \(filter) ORDER BY 1
                """
            ).map { $0[0]! }
        }
        let hero = try await members("l.url LIKE 'https://shop.example.com/h%'")
        #expect(hero.count == 12)
        let page = try await report.get("/segments/clicked-link?url=" + PageContext.encodeQuery("https://shop.example.com/h*")).text
        #expect(page.contains("<span class=\"figure\">12</span> people clicked a matching link"))
        for m in hero { #expect(page.contains("<bdi>\(m)</bdi></a></th>"), "\(m)") }
        let everyone = try await members("l.url LIKE '%shop.example.com/%' AND l.source_kind = 'newsletter' AND l.source_id = 'n-1'")
        let newsletter = try await report.get("/segments/clicked-link?url=*shop.example.com/*&source=newsletter/n-1&since=").text
        #expect(newsletter.contains("<span class=\"figure\">\(everyone.count)</span>"), "\(everyone)")
        let since = try await report.get("/segments/clicked-link?url=*/hero&since=2026-11-22").text
        #expect(since.contains("<span class=\"figure\">1</span>") && since.contains("<bdi>c0</bdi>"), "only c0 clicked hero on the 22nd")
        // `%` and `_` are not wildcards; markup in a pattern is text.
        let literal = try await report.get("/segments/clicked-link?url=" + PageContext.encodeQuery("https://shop.example.com/%_<b>")).text
        #expect(literal.contains("<span class=\"figure\">0</span>") && literal.contains("No tracked link matches."))
        #expect(literal.contains("matching <bdi>https://shop.example.com/%_&lt;b&gt;</bdi>"))
        let hostile = try await report.get("/segments/clicked-link?url=" + PageContext.encodeQuery("*?q=<script>*")).text
        #expect(hostile.contains("<span class=\"figure\">2</span>"))
        let csv = try await report.get("/segments/clicked-link.csv?url=" + PageContext.encodeQuery("https://shop.example.com/h*")).text
        let lines = csv.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(lines.first == "customer_id,clicks,human_clicks,links,first_clicked_at,last_clicked_at")
        #expect(lines.dropFirst().map { String($0.split(separator: ",")[0]) } == hero)
        for (query, name) in [("", "parameter url"), ("url=x&source=flyer/1", "parameter source"), ("url=x&since=soon", "parameter since")] {
            let bad = try await report.get("/segments/clicked-link?" + query)
            #expect(bad.status == 400 && bad.text.contains(name), "\(query)")
        }
        try await report.stop()
    }

    @Test func theSegmentIsTheUniqueClickersAndItsCSVStreams() async throws {
        let (owner, reader) = try await Self.seeding.value
        let report = try await InProcessReport(conninfo: reader)
        let html = try await report.get("/sources/campaign/17/links/hero").text
        let members = try await ReportFixture.rows(
            owner,
            "SELECT customer_id, clicks FROM clickd.link_clickers WHERE source_kind = 'campaign' AND source_id = '17' AND link_id = 'hero' AND human_clicks > 0 ORDER BY customer_id"
        )
        let size = try await ReportFixture.rows(owner, "SELECT unique_clickers FROM clickd.link_clicks WHERE source_id = '17' AND link_id = 'hero'")[
            0][0]!
        #expect(Int(size) == members.count)
        #expect(html.contains("<span class=\"figure\">\(size)</span> people clicked it"))
        for m in members { #expect(html.contains("<bdi>\(m[0]!)</bdi></a></th><td>\(m[1]!)</td>")) }
        #expect(!html.contains("<bdi>c30</bdi>"), "the scanner's customer clicked as a bot only")
        let withBots = try await report.get("/sources/campaign/17/links/hero?bots=include").text
        #expect(withBots.contains("<bdi>c30</bdi>"))
        let csv = try await report.get("/sources/campaign/17/links/hero.csv")
        #expect(csv.header("Transfer-Encoding") == "chunked")
        let lines = csv.text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
        #expect(lines.dropFirst().map { $0.components(separatedBy: ",")[0] } == members.map { $0[0]! })
        try await report.stop()
    }

    @Test func aPersonsActivityExpandsEachClick() async throws {
        let (_, reader) = try await Self.seeding.value
        let report = try await InProcessReport(conninfo: reader)
        let html = try await report.get("/people/c0").text
        #expect(html.components(separatedBy: "<details>").count - 1 == 4, "three clicks on hero and one on read")
        #expect(html.contains("Delivered <bdi>email d0</bdi>"))
        #expect(html.contains("<dt>Classified</dt><dd>human</dd>"))
        #expect(html.contains("<dt>Address</dt><dd>203.0.113.0</dd>"))
        // Newest first: the click at 50 h comes before the one at 30 h.
        #expect(try #require(html.range(of: "2026-11-22 02:00:00")).lowerBound < (try #require(html.range(of: "2026-11-21 06:00:00"))).lowerBound)
        let scanner = try await report.get("/people/c30").text
        #expect(scanner.contains("<dd>bot: "), "a bot click says why")
        try await report.stop()
    }

    @Test func hostileTextStaysTextInHTMLAndCSV() async throws {
        let (_, reader) = try await Self.seeding.value
        let report = try await InProcessReport(conninfo: reader)
        let overview = try await report.get("/sources/campaign/\(PageContext.encodeSegment(ReportFixture.hostileCampaign))")
        #expect(overview.status == 200)
        let html = overview.text
        #expect(!html.contains("<script>"), "no markup from ids or URLs")
        #expect(!html.contains("<img src=x>"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;"))
        #expect(html.contains("<bdi>&quot;&#39;&gt;&lt;img src=x&gt;</bdi>"))
        #expect(html.contains("<bdi>https://shop.example.com/p?q=&lt;script&gt;&amp;a=&quot;b&quot;&amp;c=&#39;d&#39;</bdi>"))
        let segment = try await report.get(
            "/sources/campaign/\(PageContext.encodeSegment(ReportFixture.hostileCampaign))/links/\(PageContext.encodeSegment(ReportFixture.hostileLink))"
        )
        #expect(segment.status == 200)
        #expect(segment.text.contains("<bdi>\(ReportFixture.rtlCustomer)</bdi>"), "a right-to-left override is isolated")
        let csv = try await report.get(
            "/sources/campaign/\(PageContext.encodeSegment(ReportFixture.hostileCampaign))/links/\(PageContext.encodeSegment(ReportFixture.hostileLink)).csv"
        )
        #expect(csv.text.contains("\r\n\"'=HYPERLINK(\"\"http://x\"\")\",1,1,"), "the formula is quoted and prefixed: \(csv.text)")
        let disposition = try #require(csv.header("Content-Disposition"))
        #expect(!disposition.dropFirst("attachment; filename=\"".count).dropLast().contains("\""))
        try await report.stop()
    }

    @Test func unknownThingsAre404AndMalformedParameters400() async throws {
        let (_, reader) = try await Self.seeding.value
        let report = try await InProcessReport(conninfo: reader)
        for (path, says) in [
            ("/sources/campaign/nope", "No campaign nope has been delivered or clicked."),
            ("/sources/flyer/17", "There is no source kind flyer"),
            ("/sources/campaign/17/links/nope", "No link nope of campaign 17 has been clicked."),
            ("/people/nobody", "Customer nobody has no deliveries, opens or clicks."),
            ("/nothing/here", "There is no report page at this address."),
        ] {
            let page = try await report.get(path)
            #expect(page.status == 404, "\(path)")
            #expect(page.text.contains(says), "\(path): \(page.text)")
        }
        for (query, names) in [
            ("from=2026-13-01", "parameter from"), ("to=yesterday", "parameter to"), ("from=2026-11-20&to=2026-11-01", "parameter from"),
            ("from=2024-01-01&to=2026-01-01", "at most 366 days"), ("bots=maybe", "parameter bots"), ("sort=password", "parameter sort"),
            ("after=%%%", "parameter after"), ("after=bm90IGEgY3Vyc29y", "parameter after"),
            ("after=" + Cursor.encode(["1e999; DROP", "campaign", "17"]), "parameter after"), ("bots=include&bots=exclude", "parameter bots"),
        ] {
            let page = try await report.get("/?" + query)
            #expect(page.status == 400, "\(query)")
            #expect(page.text.contains(names), "\(query): \(page.text)")
        }
        let farFuture = try await report.get("/people/c0?after=" + Cursor.encode(["999999999999999999", "0"]))
        #expect(farFuture.status == 400 && farFuture.text.contains("parameter after"))
        let posted = try await onOwnThread { [port = report.port] in
            try HTTPTestConnection(port: port).request("POST", "/", headers: [("Content-Length", "0")])
        }
        #expect(posted.status == 405)
        try await report.stop()
    }

    @Test func aWritableRoleIsRefusedWithOneLine() async throws {
        let (owner, _) = try await Self.seeding.value
        // The cluster's owner is a superuser.
        await #expect { try await InProcessReport(conninfo: owner) } throws: { error in
            "\(error)".contains("has SUPERUSER, so it can write")
        }
        // A role granted INSERT on one internal table.
        let name = "w_\(UInt32.random(in: 0...UInt32.max))"
        try await onOwnThread {
            let db = try PostgresConnection(owner)
            defer { db.close() }
            try db.execute("CREATE ROLE \(name) LOGIN; GRANT clickd_analyst TO \(name); GRANT INSERT ON clickd_internal.link_daily TO \(name)")
        }
        let writer = owner.replacingOccurrences(of: "user=\(ReportFixture.ownerUser(owner))", with: "user=\(name)")
        await #expect { try await InProcessReport(conninfo: writer) } throws: { error in
            "\(error)"
                == "role \"\(name)\" has INSERT on clickd_internal.link_daily, so it can write; connect as a read-only role (for example: CREATE ROLE reports LOGIN; GRANT clickd_analyst TO reports)"
        }
        try await onOwnThread {
            let db = try PostgresConnection(owner)
            defer { db.close() }
            try db.execute("REVOKE INSERT ON clickd_internal.link_daily FROM \(name); GRANT CREATE ON SCHEMA clickd TO \(name)")
        }
        await #expect { try await InProcessReport(conninfo: writer) } throws: { error in "\(error)".contains("can CREATE in schema clickd") }
    }

    @Test func withAnAuthFileEveryPageAsksForCredentials() async throws {
        let (_, reader) = try await Self.seeding.value
        let hash = Bcrypt.hash("s3cret pass", cost: 4)
        let y = "$2y$" + hash.dropFirst(4)  // as htpasswd -B writes it
        let auth = try AuthFile(text: "# marketers\nana:\(hash)\nbo:\(y)\n", path: "users")
        let report = try await InProcessReport(conninfo: reader) { $0.auth = auth }
        let anonymous = try await report.get("/")
        #expect(anonymous.status == 401)
        #expect(anonymous.header("WWW-Authenticate") == "Basic realm=\"clickd\", charset=\"UTF-8\"")
        #expect(try await report.get("/report.css").status == 401)
        func basic(_ user: String, _ password: String) -> [(String, String)] {
            [("Authorization", "Basic " + Data("\(user):\(password)".utf8).base64EncodedString())]
        }
        #expect(try await report.get("/", headers: basic("ana", "wrong")).status == 401)
        #expect(try await report.get("/", headers: basic("nobody", "s3cret pass")).status == 401)
        #expect(try await report.get("/", headers: basic("ana", "s3cret pass")).status == 200)
        #expect(try await report.get("/", headers: basic("bo", "s3cret pass")).status == 200)
        #expect(try await report.get("/", headers: basic("ana", "s3cret pass")).status == 200, "remembered")
        try await report.stop()
        #expect(throws: AuthFile.Invalid.self) { try AuthFile(text: "ana:$apr1$abc$def\n", path: "users") }
        #expect(throws: AuthFile.Invalid.self) { try AuthFile(text: "# nobody\n", path: "users") }
    }

    @Test func aBasePathPrefixesEveryURL() async throws {
        let (_, reader) = try await Self.seeding.value
        let report = try await InProcessReport(conninfo: reader) { $0.basePath = "/clicks" }
        #expect(try await report.get("/").status == 404)
        let page = try await report.get("/clicks/")
        #expect(page.status == 200)
        #expect(page.text.contains("href=\"/clicks/report.css\""))
        #expect(page.text.contains("href=\"/clicks/sources/campaign/17?"))
        #expect(try await report.get("/clicks").status == 200)
        #expect(try await report.get("/clicks/report.css").header("Content-Type") == "text/css; charset=utf-8")
        try await report.stop()
    }

    /// `--trust-proxy`: from a trusted peer, `X-Forwarded-Prefix` goes before `--base-path` in
    /// every link and `X-Forwarded-For` names the client in the access line; from any other
    /// peer both are ignored. A malformed prefix from a trusted proxy is a 400 naming it.
    @Test func aTrustedProxysForwardedHeadersShapeLinksAndLogLines() async throws {
        let (_, reader) = try await Self.seeding.value
        let log = RecordedLog()
        let proxied = try await InProcessReport(conninfo: reader, logger: log.logger) {
            $0.basePath = "/r"
            $0.trustedProxies = [CIDR("10.0.0.0/8")!, CIDR("127.0.0.1")!]
        }
        let forwarded = [("X-Forwarded-For", "198.51.100.4, 203.0.113.9"), ("X-Forwarded-For", "10.1.2.3"), ("X-Forwarded-Prefix", "/clicks/")]
        let page = try await proxied.get("/r/sources/campaign/17", headers: forwarded)
        #expect(page.status == 200)
        #expect(page.text.contains("href=\"/clicks/r/report.css\""))
        #expect(page.text.contains("href=\"/clicks/r/sources/campaign/17/links/hero?"), "Top Clicked Links' segment links")
        #expect(!page.text.contains("href=\"/r/"), "no link without the proxy's prefix")
        let missing = try await proxied.get("/r/people/nobody-at-all", headers: forwarded)
        #expect(missing.status == 404 && missing.text.contains("href=\"/clicks/r/report.css\""))
        // The right-most address that is not a trusted proxy; repeated header lines are one list.
        let lines = log.all.filter { $0.message == "request" }
        #expect(lines.count == 2, "\(log.all)")
        #expect(lines.first?.metadata["client.address"] == "203.0.113.9")
        #expect(lines.first?.metadata["http.status"] == "200")
        #expect(lines.first?.metadata["http.target"] == "/r/sources/campaign/17")
        #expect(lines.last?.metadata["http.status"] == "404")
        // No header: the peer itself, and links under --base-path alone.
        let direct = try await proxied.get("/r/")
        #expect(direct.text.contains("href=\"/r/report.css\""))
        #expect(log.all.last?.metadata["client.address"] == "127.0.0.1")
        for bad in ["clicks", "/a//b", "/a b", "/<x>"] {
            let refused = try await proxied.get("/r/", headers: [("X-Forwarded-Prefix", bad)])
            #expect(refused.status == 400, "\(bad)")
            #expect(refused.text.contains("X-Forwarded-Prefix"), "\(bad)")
        }
        let twice = try await proxied.get(
            "/r/", headers: [("X-Forwarded-Prefix", "/a"), ("X-Forwarded-Prefix", "/b"), ("X-Forwarded-For", "192.0.2.44")])
        #expect(twice.status == 400)
        let warning = log.all.last { $0.message == "bad header from a trusted proxy" }
        #expect(warning?.level == .warning && warning?.metadata["client.address"] == "192.0.2.44")
        #expect(log.all.last?.metadata["http.status"] == "400" && log.all.last?.metadata["client.address"] == "192.0.2.44")
        try await proxied.stop()

        // The same headers from a peer that is not trusted change nothing.
        let strangerLog = RecordedLog()
        let direct2 = try await InProcessReport(conninfo: reader, logger: strangerLog.logger) {
            $0.basePath = "/r"
            $0.trustedProxies = [CIDR("10.0.0.0/8")!]
        }
        let ignored = try await direct2.get("/r/sources/campaign/17", headers: forwarded)
        #expect(ignored.status == 200)
        #expect(ignored.text.contains("href=\"/r/report.css\"") && !ignored.text.contains("/clicks/"))
        #expect(strangerLog.all.last?.metadata["client.address"] == "127.0.0.1")
        #expect(try await direct2.get("/r/", headers: [("X-Forwarded-Prefix", "not a path")]).status == 200, "ignored, not refused")
        try await direct2.stop()
    }

    /// A wrong password is one warning naming the client and the user; a browser's first,
    /// credential-less request is not.
    @Test func refusedSignInsAreLogged() async throws {
        let (_, reader) = try await Self.seeding.value
        let auth = try AuthFile(text: "ana:\(Bcrypt.hash("s3cret pass", cost: 4))\n", path: "users")
        let log = RecordedLog()
        let report = try await InProcessReport(conninfo: reader, logger: log.logger) { $0.auth = auth }
        #expect(try await report.get("/").status == 401)
        #expect(!log.all.contains { $0.message == "sign-in refused" })
        let wrong = [("Authorization", "Basic " + Data("ana:guess".utf8).base64EncodedString())]
        #expect(try await report.get("/", headers: wrong).status == 401)
        let refusals = log.all.filter { $0.message == "sign-in refused" }
        #expect(refusals.count == 1 && refusals.first?.level == .warning)
        #expect(refusals.first?.metadata["user"] == "ana" && refusals.first?.metadata["client.address"] == "127.0.0.1")
        let right = [("Authorization", "Basic " + Data("ana:s3cret pass".utf8).base64EncodedString())]
        #expect(try await report.get("/", headers: right).status == 200)
        #expect(log.all.last?.metadata["user"] == "ana" && log.all.last?.metadata["http.status"] == "200")
        try await report.stop()
    }

    /// PostgreSQL down: every page is a 503 with a retry hint, the server keeps running, and
    /// pages come back with the database.
    @Test func theDatabaseDownIsA503AndTheServerRecovers() async throws {
        let (cluster, reader) = try await onOwnThread { () throws -> (ThrowawayPostgres, String) in
            let cluster = try ThrowawayPostgres()
            let url = try cluster.createDatabase("report_outage")
            #expect(try ChildProcess.clickd(["migrate", "--database", url, "--migrations", ReportFixture.migrations]).status == 0)
            let db = try PostgresConnection(url)
            // Committed for good before the crash below: the throwaway cluster runs with
            // synchronous_commit off, and an immediate stop loses what the WAL writer had not
            // written yet (this role, once).
            try db.execute("SET synchronous_commit = on; CREATE ROLE outage_reader LOGIN; GRANT clickd_analyst TO outage_reader")
            db.close()
            return (cluster, url.replacingOccurrences(of: "user=\(ReportFixture.ownerUser(url))", with: "user=outage_reader"))
        }
        defer { cluster.stop() }
        let report = try await InProcessReport(conninfo: reader)
        #expect(try await report.get("/").status == 200)
        // A restart nobody saw: the idle connection is dead, and the next page must not be a
        // 503 for it (the call is made again on a new connection).
        try await onOwnThread {
            try cluster.stopServer(immediate: false)
            try cluster.startServer()
        }
        #expect(try await report.get("/").status == 200)
        try await onOwnThread { try cluster.stopServer(immediate: true) }
        let down = try await report.get("/")
        #expect(down.status == 503)
        #expect(down.header("Retry-After") == "5")
        #expect(down.text.contains("PostgreSQL cannot be reached right now."))
        #expect(try await report.get("/sources.csv").status == 503)
        try await onOwnThread { try cluster.startServer() }
        let back = try await report.get("/")
        #expect(back.status == 200, "\(back.status): \(back.text)")
        try await report.stop()
    }
}
