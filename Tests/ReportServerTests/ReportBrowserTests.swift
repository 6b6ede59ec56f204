import ClickdTestSupport
import Foundation
import Testing

@testable import ReportServer

/// The pages in headless Chromium (Tests/Browser/report_pages.py, selenium): the report
/// runs in process on a free loopback port over the seeded database; what the script checks
/// against comes from SQL on the same views. `make test` installs Chromium, its driver and
/// selenium (`scripts/install-deps --browser`); without them this test fails, it does not
/// skip. Screenshots: .build/report-screenshots/.
@Suite struct ReportBrowserTests {
    static let python = RepositoryPaths.root.appendingPathComponent(".build/browser-venv/bin/python").path
    static let script = RepositoryPaths.root.appendingPathComponent("Tests/Browser/report_pages.py").path

    @Test func aMarketerFollowsThePagesInChromium() async throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.python) && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver"),
            "the browser test needs Chromium, chromium-driver and selenium: run scripts/install-deps --browser (make test does)")
        let (owner, reader) = try await ReportPagesTests.seeding.value
        let links = try await ReportFixture.rows(
            owner,
            "SELECT link_id, total_clicks, human_clicks, unique_clickers FROM clickd.link_clicks WHERE source_kind = 'campaign' AND source_id = '17' ORDER BY total_clicks DESC, link_id"
        )
        let members = try await ReportFixture.rows(
            owner,
            "SELECT customer_id FROM clickd.link_clickers WHERE source_kind = 'campaign' AND source_id = '17' AND link_id = 'hero' AND human_clicks > 0 ORDER BY customer_id"
        ).map { $0[0]! }
        let c0 = try await ReportFixture.rows(
            owner, "SELECT url FROM clickd.activity WHERE customer_id = 'c0' AND kind = 'clicked_link' ORDER BY occurred_at DESC")
        let hours = try await ReportFixture.rows(
            owner, "SELECT count(*) FROM clickd.source_clicks_hourly WHERE source_kind = 'campaign' AND source_id = '17' AND human_clicks > 0")
        let reasons = try await ReportFixture.rows(
            owner, "SELECT bot_reason FROM clickd.bot_clicks_daily GROUP BY 1 ORDER BY sum(clicks) DESC, 1")
        let opens = try await ReportFixture.rows(
            owner,
            """
            SELECT source_kind || ' ' || source_id, opened_customers::text, open_rate::text, click_to_open_rate::text, machine_opens::text
            FROM clickd.message_stats ORDER BY open_rate DESC NULLS LAST, source_kind DESC, source_id DESC
            """)
        let reasonsOf17 = try await ReportFixture.rows(
            owner,
            "SELECT reason, sum(opens)::text FROM clickd.opens_daily_by_reason WHERE source_kind = 'campaign' AND source_id = '17' GROUP BY 1 ORDER BY 1"
        )
        let c0Opens = try await ReportFixture.rows(owner, "SELECT count(*) FROM clickd.activity WHERE customer_id = 'c0' AND kind = 'opened_email'")
        let expected: [String: Any] = [
            "by_open_rate": opens.map { $0[0]! },
            "opens": opens.map {
                [
                    "source": $0[0]!, "opened": Shown.count($0[1]), "open_rate": Shown.percent($0[2]), "click_to_open": Shown.percent($0[3]),
                    "machine_opens": Shown.count($0[4]),
                ]
            },
            "reasons_17": Dictionary(uniqueKeysWithValues: reasonsOf17.map { ($0[0]!, $0[1]!) }),
            "c0_opens": Int(c0Opens[0][0] ?? "") ?? -1,
            "hours_with_human_clicks": Int(hours[0][0] ?? "") ?? -1, "bot_reasons": reasons.map { $0[0]! },
            "range": "2026-10-27 to 2026-11-25",
            "links": links.map { ["link_id": $0[0]!, "total_clicks": $0[1]!, "human_clicks": $0[2]!, "unique_clickers": $0[3]!] },
            "hero_members": members, "c0_clicks": c0.count, "c0_newest_url": c0.first?[0] ?? "",
            "hostile_overview": "/sources/campaign/" + PageContext.encodeSegment(ReportFixture.hostileCampaign),
            "hostile_id": ReportFixture.hostileCampaign,
        ]
        let out = RepositoryPaths.root.appendingPathComponent(".build/report-screenshots").path
        try? FileManager.default.removeItem(atPath: out)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let expectations = out + "/expected.json"
        try JSONSerialization.data(withJSONObject: expected, options: [.sortedKeys]).write(to: URL(fileURLWithPath: expectations))

        let report = try await InProcessReport(conninfo: reader)
        let base = "http://127.0.0.1:\(report.port)"
        let result = try await onOwnThread { try ChildProcess.run(Self.python, [Self.script, base, expectations, out], timeout: 180) }
        try await report.stop()
        #expect(result.status == 0, "report_pages.py: \(result.stdout)\(result.stderr)")
        for page in ["1-sources", "2-overview", "3-segment", "4-person", "5-overview-range", "6-hostile", "7-bots", "8-sources-by-open-rate"] {
            #expect(FileManager.default.fileExists(atPath: "\(out)/\(page).png"), "screenshot \(page)")
        }
    }
}
