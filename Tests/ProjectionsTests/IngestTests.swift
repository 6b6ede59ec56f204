import ClickdTestSupport
import ClickdTestTraits
import EventLog
import Foundation
import LinkTracking
import Logging
import Testing

@testable import Projections

/// `clickd ingest` end to end: a real log, a real PostgreSQL, the analysts' views.
@Suite(.ownThreads) struct IngestTests {
    static let migrations = RepositoryPaths.root.appendingPathComponent("migrations").path
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    static func database() throws -> String {
        let url = try ThrowawayPostgres.shared.get().createDatabase("i_\(UInt32.random(in: 0...UInt32.max))")
        let migrated = try ChildProcess.clickd(["migrate", "--database", url, "--migrations", migrations])
        guard migrated.status == 0 else { throw TestSupportError("migrate failed: \(migrated.stderr)") }
        return url
    }

    static let t0: UInt64 = 1_790_000_000_000  // ms

    static func click(
        _ ms: UInt64, customer: String, delivery: String, link: String, source: LinkToken.SourceKind = .campaign,
        sourceID: String = "17", ua: String = "Mozilla/5.0 (iPhone)", method: ClickEvent.Method = .get,
        ip: [UInt8] = [203, 0, 113, 0]
    ) -> LinkTracking.TrackingEvent {
        .click(
            ClickEvent(
                occurredAt: t0 + ms, method: method,
                token: LinkToken(
                    destination: "https://shop.example.com/\(link)", deliveryID: delivery, customerID: customer,
                    sourceKind: source, sourceID: sourceID, messageType: .email, linkID: link,
                    issuedAt: (t0 - 3_600_000) / 1000),
                keyID: "k", userAgent: ua, clientIP: ip, edgeID: "e1"))
    }

    static func delivered(
        _ ms: UInt64, customer: String, delivery: String, source: LinkToken.SourceKind = .campaign,
        sourceID: String = "17"
    ) -> LinkTracking.TrackingEvent {
        .delivered(
            DeliveredEvent(
                occurredAt: t0 + ms, messageType: .email, sourceKind: source, sourceID: sourceID,
                deliveryID: delivery, customerID: customer, trackedLinks: 3))
    }

    /// An open of `delivery`'s pixel; `issued` (ms after t0) is when the pixel was signed
    /// (an hour before t0 unless given: no prefetch).
    static func opened(
        _ ms: UInt64, customer: String, delivery: String, source: LinkToken.SourceKind = .campaign, sourceID: String = "17",
        ua: String = "Mozilla/5.0 (Windows NT 10.0) Thunderbird/128.0", appleRelay: Bool = false, issued: UInt64? = nil
    ) -> LinkTracking.TrackingEvent {
        .opened(
            OpenEvent(
                occurredAt: t0 + ms,
                token: OpenToken(
                    deliveryID: delivery, customerID: customer, sourceKind: source, sourceID: sourceID, messageType: .email,
                    issuedAt: issued.map { (t0 + $0) / 1000 } ?? (t0 - 3_600_000) / 1000),
                keyID: "k", userAgent: ua, clientIP: [198, 51, 100, 0], edgeID: "e1", appleRelay: appleRelay))
    }

    /// The user agents of generated opens, each with the reason it gives (nil: a person's).
    static let openAgents: [(ua: String, relay: Bool)] = [
        ("Mozilla/5.0 (Windows NT 10.0) Thunderbird/128.0", false), ("Mozilla/5.0", false),
        ("Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)", false),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)", true), ("Barracuda Sentinel (EE)", false),
        ("Mozilla/5.0 (Macintosh) AppleWebKit/605.1.15", false),
    ]

    static func write(_ records: [[UInt8]], to path: String) async throws {
        var configuration = EventLogConfiguration()
        configuration.sync = .none
        configuration.segmentSize = 1 << 20
        let writer = try EventLogWriter(directory: path, configuration: configuration, logger: quiet)
        for record in records { _ = try await writer.append(record) }
        writer.close()
    }

    /// Waits (at most `timeout` seconds) until `clickd status` says the log is projected
    /// through `lsn` with no lag; false if it never was.
    static func waitUntilProjected(_ log: String, _ url: String, through lsn: Int, timeout: TimeInterval = 60) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try ChildProcess.clickd(["status", "--log", log, "--database", url]).stdout.contains("checkpoint=\(lsn) lag_events=0") { return true }
            usleep(100_000)
        }
        return false
    }

    static func rows(_ url: String, _ sql: String) throws -> [[String?]] {
        let db = try PostgresConnection(url)
        defer { db.close() }
        return try db.query(sql)
    }

    @Test func knownEventsGiveExactViews() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let events: [LinkTracking.TrackingEvent] = [
            Self.delivered(0, customer: "c1", delivery: "d1"), Self.delivered(0, customer: "c2", delivery: "d2"),
            Self.delivered(0, customer: "c3", delivery: "d3"), Self.delivered(0, customer: "c4", delivery: "d4"),
            Self.delivered(0, customer: "c5", delivery: "n-d5", source: .newsletter, sourceID: "n1"),
            Self.delivered(0, customer: "c6", delivery: "n-d6", source: .newsletter, sourceID: "n1"),
            Self.click(60_000, customer: "c1", delivery: "d1", link: "A"),
            Self.click(90_000, customer: "c1", delivery: "d1", link: "A"),
            Self.click(95_000, customer: "c2", delivery: "d2", link: "A", method: .head),
            Self.click(96_000, customer: "c3", delivery: "d3", link: "A", ua: "python-requests/2.31"),
            Self.click(120_000, customer: "c1", delivery: "d1", link: "B"),
            // A scanner opening every link of c4's message within a second.
            Self.click(200_000, customer: "c4", delivery: "d4", link: "A"),
            Self.click(200_200, customer: "c4", delivery: "d4", link: "B"),
            Self.click(200_400, customer: "c4", delivery: "d4", link: "C"),
            Self.click(300_000, customer: "c5", delivery: "n-d5", link: "N", source: .newsletter, sourceID: "n1"),
        ]
        // A poison record (valid checksum, not an event) between good ones.
        var records = events.map { EventCodec.encode($0) }
        records.insert(Array("not a clickd event".utf8), at: 7)
        let log = dir.appending("log")
        try await Self.write(records, to: log)
        let url = try Self.database()
        let ingest = try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url])
        #expect(ingest.status == 0, "\(ingest.stderr)")
        #expect(ingest.stderr.contains("dead-letter"))

        #expect(
            try Self.rows(
                url,
                """
                SELECT source_id, link_id, url, total_clicks, human_clicks, unique_clickers FROM clickd.link_clicks ORDER BY 1, 2
                """) == [
                    ["17", "A", "https://shop.example.com/A", "5", "2", "1"],
                    ["17", "B", "https://shop.example.com/B", "2", "1", "1"],
                    ["17", "C", "https://shop.example.com/C", "1", "0", "0"],
                    ["n1", "N", "https://shop.example.com/N", "1", "1", "1"],
                ])
        #expect(
            try Self.rows(
                url, "SELECT source_kind, source_id, delivered, clicked_customers, total_clicks, click_rate FROM clickd.message_stats ORDER BY 2")
                == [
                    ["campaign", "17", "4", "1", "8", "0.250000"],
                    ["newsletter", "n1", "2", "1", "1", "0.500000"],
                ])
        #expect(
            try Self.rows(url, "SELECT customer_id, clicks, human_clicks FROM clickd.link_clickers WHERE link_id = 'A' ORDER BY 1") == [
                ["c1", "2", "2"], ["c2", "1", "0"], ["c3", "1", "0"], ["c4", "1", "0"],
            ])
        #expect(
            try Self.rows(
                url,
                """
                SELECT customer_id, kind, link_id, human, bot_reason FROM clickd.activity WHERE kind = 'clicked_link' ORDER BY occurred_at
                """) == [
                    ["c1", "clicked_link", "A", "t", nil], ["c1", "clicked_link", "A", "t", nil],
                    ["c2", "clicked_link", "A", "f", "prefetch"], ["c3", "clicked_link", "A", "f", "scanner_user_agent"],
                    ["c1", "clicked_link", "B", "t", nil],
                    ["c4", "clicked_link", "A", "f", "burst"], ["c4", "clicked_link", "B", "f", "burst"], ["c4", "clicked_link", "C", "f", "burst"],
                    ["c5", "clicked_link", "N", "t", nil],
                ])
        #expect(try Self.rows(url, "SELECT count(*) FROM clickd.activity WHERE kind = 'delivered'") == [["6"]])
        #expect(try Self.rows(url, "SELECT lsn, error FROM clickd_internal.dead_letters") == [["8", "unknown event version 110"]])
        // Again: nothing changes.
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url]).status == 0)
        #expect(try Self.rows(url, "SELECT sum(total_clicks) FROM clickd.link_clicks") == [["9"]])
        #expect(try Self.rows(url, "SELECT DISTINCT lsn FROM clickd_internal.checkpoints") == [["\(records.count)"]])
        let status = try ChildProcess.clickd(["status", "--log", log, "--database", url])
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("durable_end=\(records.count) checkpoint=\(records.count) lag_events=0"), "\(status.stdout)")
        #expect(status.stdout.contains("dead_letters=1"))
    }

    /// The views, in a canonical order, for comparing two databases.
    /// Every column of `activity` arrives as the event said: binary COPY's timestamps,
    /// addresses of both families, NULLs, and text that text COPY would have escaped.
    @Test func activityRowsKeepEveryValue() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 0x34]
        let events: [LinkTracking.TrackingEvent] = [
            Self.delivered(1, customer: "ann", delivery: "d1"),
            Self.click(60_999, customer: "ann", delivery: "d1", link: "A", ua: "tab\there, back\\slash, new\nline, é 🙂"),
            Self.click(61_000, customer: "bob\tby", delivery: "d2", link: "A", ua: "Mozilla/5.0", ip: v6),
            Self.click(62_005, customer: "cy", delivery: "d3", link: "A", ip: []),
        ]
        let log = dir.appending("log")
        try await Self.write(events.map { EventCodec.encode($0) }, to: log)
        let url = try Self.database()
        let ingest = try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", url])
        #expect(ingest.status == 0, "\(ingest.stderr)")
        let rows = try Self.rows(
            url,
            """
            SELECT lsn, customer_id, (extract(epoch FROM occurred_at) * 1000)::bigint, kind, delivery_id, source_kind, source_id,
                   message_type, link_id, url, human, bot_reason, user_agent, ip::text
            FROM clickd_internal.activity ORDER BY lsn
            """)
        let t = IngestTests.t0
        #expect(
            rows == [
                ["1", "ann", "\(t + 1)", "delivered", "d1", "campaign", "17", "email", nil, nil, nil, nil, nil, nil],
                [
                    "2", "ann", "\(t + 60_999)", "clicked_link", "d1", "campaign", "17", "email", "A", "https://shop.example.com/A", "t", nil,
                    "tab\there, back\\slash, new\nline, é 🙂", "203.0.113.0/32",
                ],
                [
                    "3", "bob\tby", "\(t + 61_000)", "clicked_link", "d2", "campaign", "17", "email", "A", "https://shop.example.com/A", "t", nil,
                    "Mozilla/5.0", "2001:db8::1234/128",
                ],
                [
                    "4", "cy", "\(t + 62_005)", "clicked_link", "d3", "campaign", "17", "email", "A", "https://shop.example.com/A", "t", nil,
                    "Mozilla/5.0 (iPhone)", nil,
                ],
            ])
        #expect(
            try Self.rows(url, "SELECT link_id, total_clicks, first_click_at = to_timestamp(\(t + 60_999) / 1000.0) FROM clickd.link_clicks")
                == [["A", "3", "t"]])
        #expect(
            try Self.rows(url, "SELECT customer_id, clicks FROM clickd.link_clickers ORDER BY 1") == [["ann", "1"], ["bob\tby", "1"], ["cy", "1"]])
    }

    static func snapshot(_ url: String) throws -> [[String?]] {
        try rows(url, "SELECT * FROM clickd.link_clicks ORDER BY 1, 2, 3")
            + rows(url, "SELECT * FROM clickd.link_clickers ORDER BY 1, 2, 3, 4")
            + rows(url, "SELECT * FROM clickd.message_stats ORDER BY 1, 2")
            + rows(
                url,
                "SELECT customer_id, occurred_at, kind, delivery_id, link_id, human, bot_reason, open_reason FROM clickd.activity ORDER BY 2, 1, 3, 4, 5"
            )
            + rows(url, "SELECT * FROM clickd.source_clicks_hourly ORDER BY 1, 2, 3")
            + rows(url, "SELECT * FROM clickd.bot_clicks_daily ORDER BY 1, 2, 3, 4")
            + rows(url, "SELECT * FROM clickd.opens_daily_by_reason ORDER BY 1, 2, 3, 4")
            + rows(url, "SELECT * FROM clickd.source_openers ORDER BY 1, 2, 3")
    }

    static func generatedLog(_ path: String, events: Int, seed: UInt64) async throws {
        try await write(generatedRecords(events: events, seed: seed), to: path)
    }

    /// Clicks, opens and deliveries of 300 customers in 5 sources, with prefetches, scanners,
    /// machine opens of every reason, bursts, repeats, and a poison record every 997; with `burstEvery`, also a scanner's
    /// burst that often (one delivery's links opened 3–5 at a time within a second).
    static func generatedRecords(events: Int, seed: UInt64, burstEvery: Int? = nil) -> [[UInt8]] {
        var rng = SplitMix64(seed: seed)
        var time: UInt64 = 0
        var records: [[UInt8]] = []
        for i in 0..<events {
            time += UInt64.random(in: 0...300, using: &rng)
            let customer = "c\(Int.random(in: 0..<300, using: &rng))"
            let delivery = "d-\(customer)-\(Int.random(in: 0..<3, using: &rng))"
            let source = "s\(Int.random(in: 0..<5, using: &rng))"
            if i % 5 == 0 {
                records.append(EventCodec.encode(Self.delivered(time, customer: customer, delivery: delivery, sourceID: source)))
            } else if let burstEvery, i % burstEvery == 1 {
                for link in 0..<Int.random(in: 3...5, using: &rng) {
                    time += UInt64.random(in: 0...150, using: &rng)
                    records.append(EventCodec.encode(Self.click(time, customer: customer, delivery: delivery, link: "L\(link)", sourceID: source)))
                }
            } else {
                records.append(
                    EventCodec.encode(
                        Self.click(
                            time, customer: customer, delivery: delivery, link: "L\(Int.random(in: 0..<6, using: &rng))",
                            sourceID: source, ua: Int.random(in: 0..<12, using: &rng) == 0 ? "curl/8" : "Mozilla/5.0",
                            method: Int.random(in: 0..<20, using: &rng) == 0 ? .head : .get)))
            }
            if i % 997 == 500 { records.append([0xde, 0xad]) }
            // Opens of the same delivery, of every reason (chosen by `i`: the random stream,
            // and so the clicks, are those of the logs before opens).
            if i % 4 == 2 {
                let agent = Self.openAgents[(i / 4) % Self.openAgents.count]
                let prefetch = i % 24 == 2  // a person's agent (index 0), 4 s after signing
                records.append(
                    EventCodec.encode(
                        Self.opened(
                            time, customer: customer, delivery: delivery, sourceID: source, ua: agent.ua, appleRelay: agent.relay,
                            issued: prefetch ? time - min(time, 4000) : nil)))
            }
        }
        return records
    }

    /// A generated log and a database that ingested it in one uninterrupted run.
    static func logAndReference(_ dir: TemporaryDirectory, events: Int, seed: UInt64) async throws -> (log: String, reference: String) {
        let log = dir.appending("log")
        try await generatedLog(log, events: events, seed: seed)
        let reference = try database()
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", reference]).status == 0)
        return (log, reference)
    }

    /// kill -9 of a 2-worker daemon at random moments while ingesting, then --once with one
    /// worker: the same views as one run.
    @Test func kill9AnywhereEqualsOneRun() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (log, reference) = try await Self.logAndReference(dir, events: 30_000, seed: 5)
        let victim = try Self.database()
        let before = try ChildProcess.clickd(["status", "--log", log, "--database", victim])
        #expect(before.stdout.contains("checkpoint=0 lag_events="), "\(before.stdout)")
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let child = try ChildProcess.startClickd(["ingest", "--log", log, "--database", victim, "--batch-size", "700", "--workers", "2"])
            usleep(UInt32.random(in: 20_000...200_000, using: &rng))
            kill(child.processIdentifier, SIGKILL)
            child.waitUntilExit()
        }
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", victim, "--workers", "1"]).status == 0)
        let expected = try Self.snapshot(reference)
        let got = try Self.snapshot(victim)
        #expect(expected.count > 1000)
        #expect(got == expected)
    }

    /// Two daemons on the same log at once, with 1 and 3 workers (their shards overlap):
    /// the same views as one run.
    @Test func twoDaemonsAtOnceEqualOneRun() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (log, reference) = try await Self.logAndReference(dir, events: 20_000, seed: 8)
        let shared = try Self.database()
        let results = Locked<[Int32]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { i in
            let r = try? ChildProcess.clickd([
                "ingest", "--once", "--log", log, "--database", shared, "--batch-size", "500",
                "--workers", i == 0 ? "1" : "3",
            ])
            results.mutate { $0.append(r?.status ?? -1) }
        }
        #expect(results.value == [0, 0])
        #expect(try Self.snapshot(shared) == Self.snapshot(reference))
    }

    /// PostgreSQL taken down while the daemon ingests — cleanly and as a crash, three times —
    /// and brought back: the daemon retries with backoff, says so once per change of state,
    /// resumes, and the views equal one run. The daemon follows a log that grows by 5,000
    /// events just before each outage and 5,000 more during it, and each outage waits until
    /// the daemon has resumed from the one before: every outage hits a daemon with work in
    /// hand.
    @Test func postgresOutagesEqualOneRun() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let log = dir.appending("log")
        let records = Self.generatedRecords(events: 40_000, seed: 13)
        let chunk = (records.count + 3) / 4
        try await Self.write(Array(records[0..<chunk]), to: log)
        let cluster = try ThrowawayPostgres()
        defer { cluster.stop() }
        let victim = try cluster.createDatabase("outage")
        #expect(try ChildProcess.clickd(["migrate", "--database", victim, "--migrations", Self.migrations]).status == 0)
        let errors = dir.appending("ingest.err")
        #expect(FileManager.default.createFile(atPath: errors, contents: nil))
        func said() -> (failing: Int, resumed: Int) {
            let text = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
            return (text.components(separatedBy: "ingestion failing").count - 1, text.components(separatedBy: "ingestion resumed").count - 1)
        }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: RepositoryPaths.product("clickd"))
        child.arguments = ["ingest", "--log", log, "--database", victim, "--batch-size", "100"]
        child.standardError = FileHandle(forWritingAtPath: errors)
        try child.run()
        // The daemon is up and ingesting before the first outage (one that came while it
        // starts would test start-up instead).
        var started = false
        let startDeadline = Date().addingTimeInterval(60)
        while !started, Date() < startDeadline {
            started = !(try ChildProcess.clickd(["status", "--log", log, "--database", victim]).stdout.contains("checkpoint=0 "))
            if !started { usleep(20_000) }
        }
        #expect(started)
        for round in 0..<3 {
            let before = said().failing
            // Half a chunk that the daemon starts on, then the outage, then the other half
            // while the server is down: whether the outage caught a transaction in flight
            // or the daemon between them, it has records it cannot write until the end.
            let start = (round + 1) * chunk
            let middle = start + chunk / 2
            let end = min(records.count, start + chunk)
            try await Self.write(Array(records[start..<middle]), to: log)
            usleep(UInt32.random(in: 0...50_000))
            try cluster.stopServer(immediate: round == 1)
            try await Self.write(Array(records[middle..<end]), to: log)
            usleep(700_000)
            try cluster.startServer()
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline, case let now = said(), !(now.failing > before && now.resumed == now.failing) { usleep(50_000) }
            let now = said()
            let state = (try? ChildProcess.clickd(["status", "--log", log, "--database", victim]).stdout) ?? ""
            let daemonSaid = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
            #expect(now.failing > before && now.resumed == now.failing, "round \(round): \(now); \(state); \(daemonSaid)")
        }
        let deadline = Date().addingTimeInterval(120)
        var caughtUp = false
        while !caughtUp, Date() < deadline {
            let status = try ChildProcess.clickd(["status", "--log", log, "--database", victim])
            caughtUp = status.stdout.contains("lag_events=0")
            if !caughtUp { usleep(200_000) }
        }
        #expect(caughtUp)
        kill(child.processIdentifier, SIGTERM)
        child.waitUntilExit()
        #expect(child.terminationStatus == 0)
        let reference = try Self.database()
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", reference]).status == 0)
        #expect(try Self.snapshot(victim) == Self.snapshot(reference))
    }

    /// Under systemd: READY, WATCHDOG while it works, STOPPING on SIGTERM — which takes
    /// effect after the batch in flight, not at the end of the log; what is left is
    /// projected by the next run as if nothing had happened.
    @Test func systemdNotificationsAndPromptStop() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let (log, reference) = try await Self.logAndReference(dir, events: 30_000, seed: 21)
        let victim = try Self.database()
        let systemd = try NotifyListener(path: dir.appending("notify.sock"))
        let child = Process()
        child.executableURL = URL(fileURLWithPath: RepositoryPaths.product("clickd"))
        child.arguments = ["ingest", "--log", log, "--database", victim, "--batch-size", "20"]
        child.environment = ProcessInfo.processInfo.environment.merging(["NOTIFY_SOCKET": systemd.path, "WATCHDOG_USEC": "100000"]) { $1 }
        child.standardError = FileHandle.nullDevice
        try child.run()
        var seen: [String] = []
        while seen.filter({ $0.contains("WATCHDOG=1") }).count < 3, let message = systemd.receive() { seen.append(message) }
        #expect(seen.first?.hasPrefix("READY=1") == true, "\(seen)")
        #expect(seen.filter { $0.contains("WATCHDOG=1") }.count == 3, "\(seen)")
        kill(child.processIdentifier, SIGTERM)
        #expect(systemd.waitFor("STOPPING=1"))
        child.waitUntilExit()
        #expect(child.terminationStatus == 0)
        let status = try ChildProcess.clickd(["status", "--log", log, "--database", victim])
        #expect(!status.stdout.contains("lag_events=0"), "stopped before the end of the log: \(status.stdout)")
        #expect(try ChildProcess.clickd(["ingest", "--once", "--log", log, "--database", victim]).status == 0)
        #expect(try Self.snapshot(victim) == Self.snapshot(reference))
    }
}
