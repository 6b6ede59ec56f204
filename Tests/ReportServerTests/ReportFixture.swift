import ClickdTestSupport
import EventLog
import Foundation
import LinkTracking
import Logging
import Projections
import ReportServer

/// A database seeded through the real write path (a log, `Ingestor`), a read-only role for
/// the report, and the report server built by `buildReport` — the composition root
/// `clickd report` calls — in this process on a free port.
enum ReportFixture {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    static let migrations = RepositoryPaths.root.appendingPathComponent("migrations").path
    /// 2026-11-20T00:00:00Z
    static let t0: UInt64 = 1_795_132_800_000
    /// The fixed "today" of the pages: 2026-11-25.
    static let today = 20_782

    /// Hostile text in ids and URLs: markup, quotes, a right-to-left override, formulas.
    static let hostileCampaign = "<script>alert(1)</script>\"'"
    static let hostileLink = "\"'><img src=x>"
    static let rtlCustomer = "c-\u{202E}gnp.exe"
    static let formulaCustomer = "=HYPERLINK(\"http://x\")"
    static let hostileURL = "https://shop.example.com/p?q=<script>&a=\"b\"&c='d'"

    static func click(
        _ ms: UInt64, customer: String, delivery: String, link: String, source: LinkToken.SourceKind = .campaign, sourceID: String = "17",
        url: String? = nil, ua: String = "Mozilla/5.0 (iPhone)", method: ClickEvent.Method = .get
    ) -> TrackingEvent {
        .click(
            ClickEvent(
                occurredAt: t0 + ms, method: method,
                token: LinkToken(
                    destination: url ?? "https://shop.example.com/\(link)", deliveryID: delivery, customerID: customer,
                    sourceKind: source, sourceID: sourceID, messageType: .email, linkID: link, issuedAt: (t0 - 3_600_000) / 1000),
                keyID: "k", userAgent: ua, clientIP: [203, 0, 113, 0], edgeID: "e1"))
    }

    /// An open of the pixel; `signedAgo` is how long before it the pixel was signed.
    static func opened(
        _ ms: UInt64, customer: String, delivery: String, source: LinkToken.SourceKind = .campaign, sourceID: String = "17",
        ua: String = "Mozilla/5.0 (Macintosh) Thunderbird/128.0", relay: Bool = false, signedAgo: UInt64 = 3_600_000
    ) -> TrackingEvent {
        .opened(
            OpenEvent(
                occurredAt: t0 + ms,
                token: OpenToken(
                    deliveryID: delivery, customerID: customer, sourceKind: source, sourceID: sourceID, messageType: .email,
                    issuedAt: (t0 + ms - signedAgo) / 1000),
                keyID: "k", userAgent: ua, clientIP: [198, 51, 100, 0], edgeID: "e1", appleRelay: relay))
    }

    static func delivered(_ ms: UInt64, customer: String, delivery: String, source: LinkToken.SourceKind = .campaign, sourceID: String = "17")
        -> TrackingEvent
    {
        .delivered(
            DeliveredEvent(
                occurredAt: t0 + ms, messageType: .email, sourceKind: source, sourceID: sourceID, deliveryID: delivery, customerID: customer,
                trackedLinks: 3))
    }

    /// A campaign and a newsletter with bots, a burst, repeats; a person with both kinds of
    /// events; hostile ids.
    static func events() -> [TrackingEvent] {
        var e: [TrackingEvent] = []
        let hour: UInt64 = 3_600_000
        for i in 0..<40 { e.append(delivered(UInt64(i) * 1000, customer: "c\(i)", delivery: "d\(i)")) }
        // Campaign 17: hero clicked by 12 people (c0 three times), footer by 5; a scanner, a
        // HEAD prefetch, and a burst of one delivery's links within a second.
        for i in 0..<12 { e.append(click(2 * hour + UInt64(i) * 60_000, customer: "c\(i)", delivery: "d\(i)", link: "hero")) }
        e.append(click(30 * hour, customer: "c0", delivery: "d0", link: "hero"))
        e.append(click(50 * hour, customer: "c0", delivery: "d0", link: "hero"))
        for i in 20..<25 { e.append(click(3 * hour + UInt64(i) * 1000, customer: "c\(i)", delivery: "d\(i)", link: "footer")) }
        e.append(click(4 * hour, customer: "c30", delivery: "d30", link: "hero", ua: "curl/8.4.0"))
        e.append(click(4 * hour + 5000, customer: "c31", delivery: "d31", link: "footer", method: .head))
        for (n, link) in ["hero", "footer", "terms", "privacy"].enumerated() {
            e.append(click(5 * hour + UInt64(n) * 100, customer: "c32", delivery: "d32", link: link))
        }
        // Opens of campaign 17: six people (c0 twice), two through Gmail's proxy, Apple's
        // fetches of eight (four by the relay's address, four by its user agent), a scanner
        // and a prefetch. With the 17 human clickers (a click is an open): 17 opened.
        for i in 0..<6 { e.append(opened(hour + UInt64(i) * 1000, customer: "c\(i)", delivery: "d\(i)")) }
        e.append(opened(30 * hour + 500, customer: "c0", delivery: "d0"))
        for i in 6..<8 {
            e.append(opened(hour + UInt64(i) * 1000, customer: "c\(i)", delivery: "d\(i)", ua: "Mozilla/5.0 (via ggpht.com GoogleImageProxy)"))
        }
        for i in 20..<28 {
            e.append(
                opened(
                    UInt64(i) * 1000 + 60_000, customer: "c\(i)", delivery: "d\(i)", ua: i < 24 ? "Mozilla/5.0 (iPhone)" : "Mozilla/5.0",
                    relay: i < 24))
        }
        e.append(opened(2 * hour, customer: "c30", delivery: "d30", ua: "Mimecast Security Scanner"))
        e.append(opened(33_000, customer: "c33", delivery: "d33", signedAgo: 2_000))
        // Newsletter n-1: its own deliveries and clicks.
        for i in 0..<10 { e.append(delivered(hour + UInt64(i), customer: "c\(i)", delivery: "n\(i)", source: .newsletter, sourceID: "n-1")) }
        for i in 0..<4 {
            e.append(click(6 * hour + UInt64(i) * 1000, customer: "c\(i)", delivery: "n\(i)", link: "read", source: .newsletter, sourceID: "n-1"))
        }
        // ... and opens: the four clickers and five more (9 of 10 opened: a higher open rate than 17's).
        for i in 0..<9 {
            e.append(opened(6 * hour - 60_000 + UInt64(i) * 1000, customer: "c\(i)", delivery: "n\(i)", source: .newsletter, sourceID: "n-1"))
        }
        // Hostile text.
        e.append(delivered(7 * hour, customer: rtlCustomer, delivery: "dh", sourceID: hostileCampaign))
        e.append(click(8 * hour, customer: rtlCustomer, delivery: "dh", link: hostileLink, sourceID: hostileCampaign, url: hostileURL))
        e.append(delivered(7 * hour, customer: formulaCustomer, delivery: "df", sourceID: hostileCampaign))
        e.append(click(8 * hour + 1000, customer: formulaCustomer, delivery: "df", link: hostileLink, sourceID: hostileCampaign, url: hostileURL))
        return e
    }

    /// A migrated database holding `events()`, and a role that can only read it. The
    /// blocking parts (libpq, child processes, the ingestor) run off Swift's cooperative
    /// threads, which the servers under test need.
    static func seededDatabase() async throws -> (owner: String, reader: String) {
        let name = "r_\(UInt32.random(in: 0...UInt32.max))"
        let owner = try await onOwnThread { () throws -> String in
            let owner = try ThrowawayPostgres.shared.get().createDatabase(name)
            let migrated = try ChildProcess.clickd(["migrate", "--database", owner, "--migrations", migrations])
            guard migrated.status == 0 else { throw TestSupportError("migrate failed: \(migrated.stderr)") }
            return owner
        }
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let log = dir.appending("log")
        var configuration = EventLogConfiguration()
        configuration.sync = .none
        let writer = try EventLogWriter(directory: log, configuration: configuration, logger: quiet)
        for event in events() { _ = try await writer.append(EventCodec.encode(event)) }
        writer.close()
        try await onOwnThread {
            try Ingestor(logDirectories: [log], workers: 1, logger: quiet) { try PostgresConnection(owner) }.drain()
            let db = try PostgresConnection(owner)
            defer { db.close() }
            // Role names are the cluster's: one per database.
            try db.execute("CREATE ROLE \(name)_reader LOGIN; GRANT clickd_analyst TO \(name)_reader")
        }
        return (owner, owner.replacingOccurrences(of: "user=\(ownerUser(owner))", with: "user=\(name)_reader"))
    }

    static func ownerUser(_ conninfo: String) -> String {
        conninfo.split(separator: " ").first { $0.hasPrefix("user=") }.map { String($0.dropFirst(5)) } ?? ""
    }

    /// Rows of `sql` on `url` (off the cooperative threads).
    static func rows(_ url: String, _ sql: String) async throws -> [[String?]] {
        try await onOwnThread {
            let db = try PostgresConnection(url)
            defer { db.close() }
            return try db.query(sql)
        }
    }
}

/// A report server running in this process.
final class InProcessReport: Sendable {
    let report: Report
    let port: Int
    private let running: Task<Void, any Error>

    init(conninfo: String, logger: Logger = ReportFixture.quiet, configure: (inout ReportSetup) -> Void = { _ in }) async throws {
        var setup = ReportSetup(conninfo: conninfo)
        setup.port = 0
        setup.stopSignals = []
        setup.today = { ReportFixture.today }
        setup.version = "test"
        configure(&setup)
        report = try await buildReport(setup, logger: logger)
        let services = report.services
        running = Task { try await services.run() }
        port = try await report.port()
    }

    /// GET `target` on a thread of its own (the server's handlers need Swift's cooperative
    /// threads; a blocking socket call must not hold one).
    func get(_ target: String, headers: [(String, String)] = []) async throws -> HTTPTestConnection.Response {
        let port = self.port
        return try await onOwnThread {
            try HTTPTestConnection(port: port).request("GET", target, headers: headers + [("Connection", "close")])
        }
    }

    func stop() async throws {
        await report.services.triggerGracefulShutdown()
        try await running.value
    }
}

extension HTTPTestConnection.Response {
    var text: String { String(decoding: body, as: UTF8.self) }
}

/// Keeps every log record, for tests of what the report logs.
final class RecordedLog: Sendable {
    struct Record: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
    }

    private let records = Locked<[Record]>([])

    var logger: Logger {
        Logger(label: "test") { _ in Handler(log: self) }
    }

    var all: [Record] { records.value }

    struct Handler: LogHandler {
        let log: RecordedLog
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var fields: [String: String] = [:]
            for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { fields[key] = "\(value)" }
            let record = Record(level: event.level, message: "\(event.message)", metadata: fields)
            log.records.mutate { $0.append(record) }
        }
    }
}
