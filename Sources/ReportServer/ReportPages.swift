import Foundation
import Projections

/// A page's answer before it becomes HTTP: HTML, a CSV (streamed in chunks), or a problem.
public enum PageResult: Sendable {
    case html(title: String, body: String)
    /// `fetch(after)` returns the next rows of CSV text and the cursor after them (nil: done).
    case csv(filename: String, header: [String], fetch: @Sendable (String?) async throws -> (rows: [[String]], after: String?))
    case notFound(String)
}

/// What every page gets from a request: its parameters, validated, and how to write links.
public struct PageContext: Sendable {
    public var base: String
    public var range: DayRange
    public var includeBots: Bool
    public var sort: String?
    public var after: String?

    /// The range and bot parameters, as every link of a page carries them.
    var keptQuery: [(String, String)] {
        [("from", DayRange.format(range.from)), ("to", DayRange.format(range.to)), ("bots", includeBots ? "include" : "exclude")]
    }

    /// `base` + the segments, each percent-encoded, + `suffix` (".csv") + the query.
    func link(_ segments: [String], suffix: String = "", query extra: [(String, String)] = []) -> String {
        var path = base + "/" + segments.map(Self.encodeSegment).joined(separator: "/")
        // An id that itself ends in ".csv" must not read as the CSV twin: its dot is encoded.
        if suffix.isEmpty, path.hasSuffix(".csv") { path = String(path.dropLast(4)) + "%2Ecsv" }
        return path + suffix + "?" + (keptQuery + extra).map { Self.encodeQuery($0.0) + "=" + Self.encodeQuery($0.1) }.joined(separator: "&")
    }

    static let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)

    static func encodeSegment(_ s: String) -> String {
        var out = ""
        for byte in s.utf8 {
            if unreserved.contains(byte) { out.append(Character(Unicode.Scalar(byte))) } else { out += String(format: "%%%02X", byte) }
        }
        return out
    }

    static func encodeQuery(_ s: String) -> String { encodeSegment(s) }
}

/// Numbers as a page shows them.
enum Shown {
    static func count(_ text: String?) -> String {
        guard let text, let n = Int64(text) else { return "0" }
        let digits = Array(String(n.magnitude))
        var out = ""
        for (i, d) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out += "," }
            out.append(d)
        }
        return (n < 0 ? "-" : "") + out
    }

    /// A fraction 0…1 as a percentage with one decimal; "–" when there is none.
    static func percent(_ fraction: Double?) -> String {
        guard let fraction, fraction.isFinite else { return "–" }
        return String(format: "%.1f %%", fraction * 100)
    }

    static func percent(_ text: String?) -> String { percent(text.flatMap(Double.init)) }
}

/// SQL for a UTC time as the pages show it.
func shownTime(_ column: String) -> String { "to_char(\(column), 'YYYY-MM-DD HH24:MI:SS')" }

/// The pages. Each reads views of schema `clickd` only, with bound values.
public struct ReportPages: Sendable {
    let database: ReportDatabase

    public init(database: ReportDatabase) { self.database = database }

    static let sourceKinds: Set<String> = ["campaign", "newsletter", "transactional"]
    static let pageSize = 100
    /// Rows per query of a streamed CSV (bench/report.sh: 10,000 rows of a segment are
    /// ~1 MB of text; each chunk is written before the next is read).
    static let csvChunk = 10_000

    // MARK: - Sources

    /// Sortable columns of the sources table: (parameter, label, SQL expression).
    static let sourceColumns: [(key: String, label: String, sql: String)] = [
        ("source", "Source", "source_kind || '/' || source_id"),
        ("delivered", "Delivered", "delivered"),
        ("clicked", "Clicked customers", "clicked_customers"),
        ("rate", "Click rate", "coalesce(click_rate, -1)"),
        ("clicks", "Total clicks", "total_clicks"),
        ("human", "Human clicks", "human_clicks"),
        ("opened", "Opened customers", "opened_customers"),
        ("open-rate", "Open rate", "coalesce(open_rate, -1)"),
        ("click-to-open", "Click-to-open", "coalesce(click_to_open_rate, -1)"),
        ("machine-opens", "Machine opens", "machine_opens"),
    ]
    /// The sources CSV's columns: the table's, in its order (the open figures last, as they
    /// came in issue 29, so that scripts reading the first seven still do).
    static let sourceCSVColumns = [
        "source_kind", "source_id", "delivered", "clicked_customers", "click_rate", "total_clicks", "human_clicks", "opened_customers",
        "open_rate", "click_to_open_rate", "machine_opens",
    ]

    /// `sort` as (column, descending); the default is the most delivered first.
    static func sortOrder(_ sort: String?, columns: [String], defaultKey: String) throws(BadParameter) -> (String, Bool) {
        guard let sort else { return (defaultKey, true) }
        let descending = sort.hasPrefix("-")
        let key = descending ? String(sort.dropFirst()) : sort
        guard columns.contains(key) else { throw BadParameter(name: "sort", expected: "one of \(columns.joined(separator: ", ")), or - before one") }
        return (key, descending)
    }

    func sourceRows(_ context: PageContext, limit: Int, after: String?) async throws -> (rows: [[String?]], after: String?) {
        let (key, descending) = try Self.sortOrder(context.sort, columns: Self.sourceColumns.map(\.key), defaultKey: "delivered")
        let expression = Self.sourceColumns.first { $0.key == key }!.sql
        // Keyset: (sort value, kind, id) of the last row shown, as the cursor carries it.
        let cursor: [String]?
        if let after {
            // The sort value is bound as text and cast to numeric: only a plain decimal may pass
            // (anything else would be the database's error, a 500, not the client's 400).
            guard let decoded = Cursor.decode(after), decoded.count == 3,
                key == "source"
                    || (decoded[0].utf8.count <= 40 && Double(decoded[0]) != nil && decoded[0].utf8.allSatisfy { "-.0123456789".utf8.contains($0) })
            else { throw BadParameter(name: "after", expected: "a cursor from a Next link") }
            cursor = decoded
        } else {
            cursor = nil
        }
        let op = descending ? "<" : ">"
        let direction = descending ? "DESC" : "ASC"
        let valueType = key == "source" ? "text" : "numeric"
        let sql = """
            SELECT source_kind, source_id, delivered, clicked_customers, click_rate, total_clicks, human_clicks, opened_customers, open_rate,
                   click_to_open_rate, machine_opens, (\(expression))::text
            FROM clickd.message_stats
            WHERE $1::text IS NULL OR ((\(expression))::\(valueType), source_kind, source_id) \(op) ($1::\(valueType), $2::text, $3::text)
            ORDER BY (\(expression))::\(valueType) \(direction), source_kind \(direction), source_id \(direction)
            LIMIT $4
            """
        let rows = try await database.read { db in try db.query(sql, [cursor?[0], cursor?[1], cursor?[2], Int64(limit + 1)]) }
        let more = rows.count > limit
        let shown = Array(rows.prefix(limit))
        let sortValue = Self.sourceCSVColumns.count
        let next = more ? shown.last.map { Cursor.encode([$0[sortValue] ?? "", $0[0] ?? "", $0[1] ?? ""]) } : nil
        return (shown, next)
    }

    public func sources(_ context: PageContext, csv: Bool) async throws -> PageResult {
        if csv {
            return .csv(filename: "sources.csv", header: Self.sourceCSVColumns) { after in
                let (rows, next) = try await sourceRows(context, limit: 2000, after: after)
                return (rows.map { Array($0.prefix(Self.sourceCSVColumns.count)).map { $0 ?? "" } }, next)
            }
        }
        let (rows, next) = try await sourceRows(context, limit: Self.pageSize, after: context.after)
        let (key, descending) = try Self.sortOrder(context.sort, columns: Self.sourceColumns.map(\.key), defaultKey: "delivered")
        let columns: [[String: Any]] = Self.sourceColumns.map { column in
            let flip = column.key == key && descending ? column.key : "-" + column.key
            return [
                "label": column.label, "href": context.link([], query: [("sort", flip)]),
                "sorted": column.key == key ? (descending ? "▼" : "▲") : "",
            ]
        }
        let shown: [[String: Any]] = rows.map { r in
            [
                "kind": r[0] ?? "", "id": r[1] ?? "", "href": context.link(["sources", r[0] ?? "", r[1] ?? ""]),
                "delivered": Shown.count(r[2]), "clickedCustomers": Shown.count(r[3]), "clickRate": Shown.percent(r[4]),
                "totalClicks": Shown.count(r[5]), "humanClicks": Shown.count(r[6]), "openedCustomers": Shown.count(r[7]),
                "openRate": Shown.percent(r[8]), "clickToOpen": Shown.percent(r[9]), "machineOpens": Shown.count(r[10]),
            ]
        }
        let sortQuery = context.sort.map { [("sort", $0)] } ?? []
        let body = Templates.render(
            "sources",
            [
                "range": ["from": DayRange.format(context.range.from), "to": DayRange.format(context.range.to)],
                "bots": context.includeBots, "columns": columns, "rows": shown,
                "csv": context.link(["sources"], suffix: ".csv", query: sortQuery),
                "next": next.map { context.link([], query: sortQuery + [("after", $0)]) } ?? false,
            ])
        return .html(title: "Sources", body: body)
    }

    // MARK: - A source's overview

    public func overview(kind: String, id: String, _ context: PageContext, csv: Bool) async throws -> PageResult {
        guard Self.sourceKinds.contains(kind) else { return .notFound("There is no source kind \(kind): campaign, newsletter or transactional.") }
        let stats = try await database.read { db in
            try db.query(
                """
                SELECT delivered, clicked_customers, click_rate, total_clicks, opened_customers, open_rate, click_to_open_rate, total_opens,
                       machine_opens
                FROM clickd.message_stats WHERE source_kind = $1 AND source_id = $2
                """, [kind, id])
        }
        guard let s = stats.first else { return .notFound("No \(kind) \(id) has been delivered or clicked.") }
        let linkSQL = """
            SELECT link_id, url, total_clicks, human_clicks, unique_clickers, \(shownTime("first_click_at")), \(shownTime("last_click_at"))
            FROM clickd.link_clicks WHERE source_kind = $1 AND source_id = $2
            ORDER BY total_clicks DESC, link_id
            """
        if csv {
            return .csv(
                filename: "top-clicked-links-\(kind)-\(id).csv",
                header: ["link_id", "url", "total_clicks", "human_clicks", "unique_clickers", "first_click_at", "last_click_at"]
            ) { after in
                guard after == nil else { return ([], nil) }
                let rows = try await database.read { db in try db.query(linkSQL, [kind, id]) }
                return (rows.map { $0.map { $0 ?? "" } }, nil)
            }
        }
        let chart = try await clicksChart(kind: kind, id: id, range: context.range)
        let (links, clicks, reasons) = try await database.read { db in
            (
                try db.query(linkSQL + " LIMIT 100", [kind, id]),
                try db.query(
                    "SELECT coalesce(sum(total_clicks), 0), coalesce(sum(human_clicks), 0) FROM clickd.link_clicks WHERE source_kind = $1 AND source_id = $2",
                    [kind, id]),
                try db.query(
                    "SELECT reason, sum(opens)::text FROM clickd.opens_daily_by_reason WHERE source_kind = $1 AND source_id = $2 GROUP BY 1",
                    [kind, id])
            )
        }
        let opens = Self.opensByReason(total: Int64(s[7] ?? "") ?? 0, reasons: reasons)
        let total = Int64(clicks.first?[0] ?? "") ?? 0
        let human = Int64(clicks.first?[1] ?? "") ?? 0
        let body = Templates.render(
            "overview",
            [
                "kind": kind, "id": id,
                "range": ["from": DayRange.format(context.range.from), "to": DayRange.format(context.range.to)],
                "bots": context.includeBots,
                "delivered": Shown.count(s[0]), "clickedCustomers": Shown.count(s[1]), "clickRate": Shown.percent(s[2]),
                "totalClicks": Shown.count(s[3]),
                "openedCustomers": Shown.count(s[4]), "openRate": Shown.percent(s[5]), "clickToOpen": Shown.percent(s[6]),
                "totalOpens": Shown.count(s[7]), "machineOpens": Shown.count(s[8]), "opens": opens, "anyOpens": !opens.isEmpty,
                "botShare": total > 0 ? Shown.percent(Double(total - human) / Double(total)) : "–",
                "csv": context.link(["sources", kind, id], suffix: ".csv"),
                "chart": Self.chartModel(chart, kind: kind, id: id, context),
                "links": links.map { l -> [String: Any] in
                    [
                        "linkID": l[0] ?? "", "url": l[1] ?? "", "totalClicks": Shown.count(l[2]), "humanClicks": Shown.count(l[3]),
                        "uniqueClickers": Shown.count(l[4]), "segment": context.link(["sources", kind, id, "links", l[0] ?? ""]),
                        "firstClick": l[5] ?? "", "lastClick": l[6] ?? "",
                    ]
                },
            ])
        return .html(title: "\(kind) \(id)", body: body)
    }

    /// The open reasons in the overview's order, with what each means to a marketer.
    static let openReasons: [(reason: String, label: String, persons: Bool, meaning: String)] = [
        ("", "Opened by the person", true, "their mail app fetched the pixel as they read the email"),
        (
            "image_proxy", "Opened through an image proxy", true,
            "Gmail's or Yahoo's proxy fetched it when the person opened the email (later opens come from its cache, unseen)"
        ),
        (
            "apple_mpp", "Apple Mail Privacy Protection", false,
            "Apple fetches every image when the device syncs, read or not: not a sign anyone looked"
        ),
        ("scanner", "Security scanner", false, "a mail gateway or link checker fetched it on delivery"),
        ("prefetch", "Prefetched", false, "fetched within 10 seconds of sending: too soon for a person"),
    ]

    /// A source's opens by reason (all time), for the overview's table: a person's own
    /// fetches are the total less every reason's.
    static func opensByReason(total: Int64, reasons: [[String?]]) -> [[String: Any]] {
        guard total > 0 else { return [] }
        var byReason: [String: Int64] = [:]
        for row in reasons { byReason[row[0] ?? ""] = Int64(row[1] ?? "") ?? 0 }
        byReason[""] = total - byReason.values.reduce(0, +)
        return openReasons.compactMap { entry in
            guard let opens = byReason[entry.reason], opens > 0 else { return nil }
            return [
                "label": entry.label, "opens": Shown.count(String(opens)), "share": Shown.percent(Double(opens) / Double(total)),
                "persons": entry.persons ? "yes" : "no", "meaning": entry.meaning,
            ]
        }
    }

    /// A source's clicks over `range` from `clickd.source_clicks_hourly`, bucketed.
    func clicksChart(kind: String, id: String, range: DayRange) async throws -> ClicksChart {
        let rows = try await database.read { db in
            try db.query(
                """
                SELECT (extract(epoch FROM hour) * 1000)::bigint::text, total_clicks, human_clicks FROM clickd.source_clicks_hourly
                WHERE source_kind = $1 AND source_id = $2 AND hour >= $3 AND hour < $4
                """,
                [kind, id, PostgresTimestamp(milliseconds: range.startMilliseconds), PostgresTimestamp(milliseconds: range.endMilliseconds)])
        }
        return ClicksChart(
            range: range,
            rows: rows.compactMap { r in
                guard let start = r[0].flatMap(UInt64.init), let total = r[1].flatMap(Int64.init), let human = r[2].flatMap(Int64.init) else {
                    return nil
                }
                return (start, total, human)
            })
    }

    /// The chart and its table, as the overview template takes them.
    static func chartModel(_ chart: ClicksChart, kind: String, id: String, _ context: PageContext) -> [String: Any] {
        let drawing = chart.drawing(includeBots: context.includeBots)
        let unit = chart.hourly ? "hour" : "day"
        let what = context.includeBots ? "clicks, bots included" : "human clicks"
        let total = chart.buckets.reduce(Int64(0)) { $0 + $1.total }
        let human = chart.buckets.reduce(Int64(0)) { $0 + $1.human }
        return [
            "title": "Clicks on \(kind) \(id) by the \(unit)",
            "desc":
                "Bar chart of \(what) per \(unit) from \(DayRange.format(context.range.from)) to \(DayRange.format(context.range.to)) (UTC): "
                + "\(Shown.count(String(context.includeBots ? total : human))) in all, at most \(Shown.count(String(drawing.maximum))) in one \(unit). The table below holds the numbers.",
            "unit": chart.hourly ? "Hour (UTC)" : "Day (UTC)", "bars": drawing.bars, "ticks": drawing.ticks,
            "maximum": Shown.count(String(drawing.maximum)), "total": Shown.count(String(total)), "human": Shown.count(String(human)),
            "rows": chart.buckets.map { ["label": chart.label($0), "total": Shown.count(String($0.total)), "human": Shown.count(String($0.human))] },
            "csv": context.link(["sources", kind, id, "clicks"], suffix: ".csv"),
        ]
    }

    /// The chart's table as CSV: every bucket of the range.
    public func clicksOverTime(kind: String, id: String, _ context: PageContext) async throws -> PageResult {
        guard Self.sourceKinds.contains(kind) else { return .notFound("There is no source kind \(kind): campaign, newsletter or transactional.") }
        let chart = try await clicksChart(kind: kind, id: id, range: context.range)
        let lines = chart.buckets.map { [chart.label($0), String($0.total), String($0.human)] }
        return .csv(filename: "clicks-\(kind)-\(id).csv", header: [chart.hourly ? "hour_utc" : "day_utc", "total_clicks", "human_clicks"]) { after in
            after == nil ? (lines, nil) : ([], nil)
        }
    }

    // MARK: - Bot clicks

    /// Bot clicks in the range by source and reason (one query; the totals by reason are
    /// summed from its rows).
    public func bots(_ context: PageContext, csv: Bool, byReason: Bool) async throws -> PageResult {
        let range = context.range
        let (first, last) = (DayRange.format(range.from), DayRange.format(range.to))
        let sources = try await database.read { db in
            try db.query(
                """
                SELECT source_kind, source_id, bot_reason, sum(clicks)::bigint FROM clickd.bot_clicks_daily WHERE day BETWEEN $1::date AND $2::date
                GROUP BY 1, 2, 3 ORDER BY 1, 2, 4 DESC, 3
                """, [first, last])
        }
        var totals: [String: Int64] = [:]
        for r in sources { totals[r[2] ?? "", default: 0] += Int64(r[3] ?? "") ?? 0 }
        let reasons = totals.sorted { ($1.value, $0.key) < ($0.value, $1.key) }
        if csv {
            let rows = byReason ? reasons.map { [$0.key, String($0.value)] } : sources.map { $0.map { $0 ?? "" } }
            let header = byReason ? ["bot_reason", "clicks"] : ["source_kind", "source_id", "bot_reason", "clicks"]
            return .csv(filename: byReason ? "bot-clicks-by-reason.csv" : "bot-clicks-by-source.csv", header: header) { after in
                after == nil ? (rows, nil) : ([], nil)
            }
        }
        let body = Templates.render(
            "bots",
            [
                "range": ["from": DayRange.format(range.from), "to": DayRange.format(range.to)], "bots": context.includeBots,
                "reasons": reasons.map { ["reason": $0.key, "clicks": Shown.count(String($0.value))] },
                "sources": sources.map { r -> [String: Any] in
                    [
                        "kind": r[0] ?? "", "id": r[1] ?? "", "href": context.link(["sources", r[0] ?? "", r[1] ?? ""]), "reason": r[2] ?? "",
                        "clicks": Shown.count(r[3]),
                    ]
                },
                "reasonsCSV": context.link(["bots", "reasons"], suffix: ".csv"), "sourcesCSV": context.link(["bots"], suffix: ".csv"),
            ])
        return .html(title: "Bot clicks", body: body)
    }

    // MARK: - The clicked-link segment

    func memberRows(kind: String, id: String, link: String, bots: Bool, limit: Int, after: String?) async throws -> [[String?]] {
        let sql = """
            SELECT customer_id, clicks, human_clicks, \(shownTime("first_clicked_at")), \(shownTime("last_clicked_at"))
            FROM clickd.link_clickers
            WHERE source_kind = $1 AND source_id = $2 AND link_id = $3 AND ($4 OR human_clicks > 0)
              AND ($5::text IS NULL OR customer_id > $5::text)
            ORDER BY customer_id
            LIMIT $6
            """
        return try await database.read { db in try db.query(sql, [kind, id, link, bots, after, Int64(limit)]) }
    }

    public func segment(kind: String, id: String, link: String, _ context: PageContext, csv: Bool) async throws -> PageResult {
        guard Self.sourceKinds.contains(kind) else { return .notFound("There is no source kind \(kind): campaign, newsletter or transactional.") }
        let found = try await database.read { db in
            try db.query(
                "SELECT url, unique_clickers FROM clickd.link_clicks WHERE source_kind = $1 AND source_id = $2 AND link_id = $3",
                [kind, id, link])
        }
        guard let l = found.first else { return .notFound("No link \(link) of \(kind) \(id) has been clicked.") }
        let bots = context.includeBots
        if csv {
            return .csv(
                filename: "clicked-\(kind)-\(id)-\(link).csv",
                header: ["customer_id", "clicks", "human_clicks", "first_clicked_at", "last_clicked_at"]
            ) { after in
                let rows = try await memberRows(kind: kind, id: id, link: link, bots: bots, limit: Self.csvChunk, after: after)
                return (rows.map { $0.map { $0 ?? "" } }, rows.count == Self.csvChunk ? rows.last?[0] ?? nil : nil)
            }
        }
        let size: String
        if bots {
            size =
                try await database.read { db in
                    try db.query(
                        "SELECT count(*) FROM clickd.link_clickers WHERE source_kind = $1 AND source_id = $2 AND link_id = $3",
                        [kind, id, link])
                }.first?[0] ?? "0"
        } else {
            size = l[1] ?? "0"
        }
        let rows = try await memberRows(kind: kind, id: id, link: link, bots: bots, limit: Self.pageSize + 1, after: context.after)
        let shown = rows.prefix(Self.pageSize)
        let body = Templates.render(
            "segment",
            [
                "kind": kind, "id": id, "linkID": link, "url": l[0] ?? "", "size": Shown.count(size), "bots": bots,
                "source": context.link(["sources", kind, id]),
                "csv": context.link(["sources", kind, id, "links", link], suffix: ".csv"),
                "members": shown.map { m -> [String: Any] in
                    [
                        "customer": m[0] ?? "", "person": context.link(["people", m[0] ?? ""]), "clicks": Shown.count(m[1]),
                        "humanClicks": Shown.count(m[2]), "firstClick": m[3] ?? "", "lastClick": m[4] ?? "",
                    ]
                },
                "next": rows.count > Self.pageSize
                    ? context.link(["sources", kind, id, "links", link], query: [("after", shown.last?[0] ?? "")]) : false,
            ])
        return .html(title: "Clicked \(link) · \(kind) \(id)", body: body)
    }

    // MARK: - The segment "clicked a tracked link matching …"

    /// A segment pattern (`*` any characters, everything else itself) as a LIKE pattern
    /// with `\` as its escape.
    static func likePattern(_ pattern: String) -> String {
        var out = ""
        for ch in pattern {
            switch ch {
            case "*": out += "%"
            case "%", "_", "\\": out += "\\" + String(ch)
            default: out.append(ch)
            }
        }
        return out
    }

    public struct URLSegment: Sendable {
        var pattern: String
        var source: (kind: String, id: String)?
        var since: Int?
    }

    /// `url` (required, at most 2,048 characters), `source=kind/id`, `since=YYYY-MM-DD`.
    static func urlSegment(url: String?, source: String?, since: String?) throws(BadParameter) -> URLSegment {
        guard let url, !url.isEmpty, url.utf8.count <= 2048 else {
            throw BadParameter(name: "url", expected: "a URL pattern of at most 2,048 characters, * matching anything")
        }
        var segment = URLSegment(pattern: url)
        if let source {
            let parts = source.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2, sourceKinds.contains(parts[0]), !parts[1].isEmpty else {
                throw BadParameter(name: "source", expected: "kind/id, kind one of campaign, newsletter, transactional")
            }
            segment.source = (parts[0], parts[1])
        }
        if let since { segment.since = try DayRange.day(since, name: "since") }
        return segment
    }

    static let urlSegmentFilter = """
        (c.source_kind, c.source_id, c.link_id) IN (
            SELECT source_kind, source_id, link_id FROM clickd.link_clicks
            WHERE url LIKE $1 ESCAPE '\\' AND ($2::text IS NULL OR (source_kind = $2 AND source_id = $3)))
          AND ($4 OR c.human_clicks > 0) AND ($5::timestamptz IS NULL OR c.last_clicked_at >= $5)
        """

    func urlSegmentMembers(_ segment: URLSegment, bots: Bool, limit: Int, after: String?) async throws -> [[String?]] {
        let since = segment.since.map { PostgresTimestamp(milliseconds: UInt64($0) * 86_400_000) }
        let like = Self.likePattern(segment.pattern)
        let sql = """
            SELECT c.customer_id, sum(c.clicks)::bigint, sum(c.human_clicks)::bigint, count(*), \(shownTime("min(c.first_clicked_at)")),
                   \(shownTime("max(c.last_clicked_at)"))
            FROM clickd.link_clickers c
            WHERE \(Self.urlSegmentFilter) AND ($6::text IS NULL OR c.customer_id > $6)
            GROUP BY c.customer_id ORDER BY c.customer_id LIMIT $7
            """
        return try await database.read { db in
            try db.query(sql, [like, segment.source?.kind, segment.source?.id, bots, since, after, Int64(limit)])
        }
    }

    public func urlSegment(url: String?, source: String?, since: String?, _ context: PageContext, csv: Bool) async throws -> PageResult {
        // The page's form sends its empty fields: empty is absent.
        let source = source.flatMap { $0.isEmpty ? nil : $0 }
        let since = since.flatMap { $0.isEmpty ? nil : $0 }
        let segment = try Self.urlSegment(url: url, source: source, since: since)
        let bots = context.includeBots
        var extra: [(String, String)] = [("url", segment.pattern)]
        if let source { extra.append(("source", source)) }
        if let since { extra.append(("since", since)) }
        if csv {
            return .csv(
                filename: "clicked-link-segment.csv",
                header: ["customer_id", "clicks", "human_clicks", "links", "first_clicked_at", "last_clicked_at"]
            ) { after in
                let rows = try await urlSegmentMembers(segment, bots: bots, limit: 5000, after: after)
                return (rows.map { $0.map { $0 ?? "" } }, rows.count == 5000 ? rows.last?[0] ?? nil : nil)
            }
        }
        let like = Self.likePattern(segment.pattern)
        let sinceTime = segment.since.map { PostgresTimestamp(milliseconds: UInt64($0) * 86_400_000) }
        let (links, size) = try await database.read { db in
            (
                try db.query(
                    """
                    SELECT source_kind, source_id, link_id, url, unique_clickers FROM clickd.link_clicks
                    WHERE url LIKE $1 ESCAPE '\\' AND ($2::text IS NULL OR (source_kind = $2 AND source_id = $3))
                    ORDER BY source_kind, source_id, link_id LIMIT 101
                    """, [like, segment.source?.kind, segment.source?.id]),
                try db.query(
                    "SELECT count(DISTINCT c.customer_id) FROM clickd.link_clickers c WHERE \(Self.urlSegmentFilter)",
                    [like, segment.source?.kind, segment.source?.id, bots, sinceTime]
                ).first?[0] ?? "0"
            )
        }
        let rows = try await urlSegmentMembers(segment, bots: bots, limit: Self.pageSize + 1, after: context.after)
        let shown = rows.prefix(Self.pageSize)
        let body = Templates.render(
            "urlSegment",
            [
                "pattern": segment.pattern, "source": source ?? "", "since": segment.since.map(DayRange.format) ?? "",
                "size": Shown.count(size), "bots": bots, "moreLinks": links.count > 100,
                "links": links.prefix(100).map { l -> [String: Any] in
                    [
                        "kind": l[0] ?? "", "id": l[1] ?? "", "linkID": l[2] ?? "", "url": l[3] ?? "", "uniqueClickers": Shown.count(l[4]),
                        "href": context.link(["sources", l[0] ?? "", l[1] ?? "", "links", l[2] ?? ""]),
                    ]
                },
                "members": shown.map { m -> [String: Any] in
                    [
                        "customer": m[0] ?? "", "person": context.link(["people", m[0] ?? ""]), "clicks": Shown.count(m[1]),
                        "humanClicks": Shown.count(m[2]), "links": Shown.count(m[3]), "firstClick": m[4] ?? "", "lastClick": m[5] ?? "",
                    ]
                },
                "csv": context.link(["segments", "clicked-link"], suffix: ".csv", query: extra),
                "next": rows.count > Self.pageSize
                    ? context.link(["segments", "clicked-link"], query: extra + [("after", shown.last?[0] ?? "")]) : false,
            ])
        return .html(title: "Clicked a link matching \(segment.pattern)", body: body)
    }

    // MARK: - A person's activity

    static let activityColumns = [
        "occurred_at", "kind", "delivery_id", "source_kind", "source_id", "message_type", "link_id", "url", "human", "bot_reason",
        "user_agent", "ip", "open_reason",
    ]

    /// Newest first; the cursor is (time in microseconds, rows already shown at that time).
    func activityRows(customer: String, limit: Int, after: String?) async throws -> (rows: [[String?]], after: String?) {
        let before: (micros: Int64, skip: Int64)?
        if let after {
            // Microseconds since the epoch up to year 9999 (what to_timestamp takes), and fewer
            // rows at one instant than a person could have.
            guard let c = Cursor.decode(after), c.count == 2, let micros = Int64(c[0]), (0...253_402_300_799_000_000).contains(micros),
                let skip = Int64(c[1]), skip >= 0, skip < 1_000_000
            else {
                throw BadParameter(name: "after", expected: "a cursor from an Older link")
            }
            before = (micros, skip)
        } else {
            before = nil
        }
        let sql = """
            SELECT \(shownTime("occurred_at")), kind, delivery_id, source_kind, source_id, message_type, link_id, url, human::text,
                   bot_reason, user_agent, host(ip), (extract(epoch FROM occurred_at) * 1000000)::bigint::text, open_reason
            FROM clickd.activity
            WHERE customer_id = $1 AND ($2::bigint IS NULL OR occurred_at <= to_timestamp($2::bigint / 1000000.0))
            ORDER BY occurred_at DESC, delivery_id DESC, kind DESC, link_id DESC NULLS LAST, user_agent DESC NULLS LAST
            OFFSET $3 LIMIT $4
            """
        let rows = try await database.read { db in try db.query(sql, [customer, before?.micros, before?.skip ?? 0, Int64(limit + 1)]) }
        let shown = Array(rows.prefix(limit))
        guard rows.count > limit, let last = shown.last?[12] else { return (shown, nil) }
        // Rows at the last time shown, including those shown on earlier pages.
        let atLast = Int64(shown.filter { $0[12] == last }.count) + (before?.micros == Int64(last) ? before!.skip : 0)
        return (shown, Cursor.encode([last, String(atLast)]))
    }

    public func person(customer: String, _ context: PageContext, csv: Bool) async throws -> PageResult {
        if csv {
            return .csv(filename: "activity-\(customer).csv", header: Self.activityColumns) { after in
                let (rows, next) = try await activityRows(customer: customer, limit: 2000, after: after)
                return (rows.map { (Array($0.prefix(12)) + [$0[13]]).map { $0 ?? "" } }, next)
            }
        }
        let (rows, next) = try await activityRows(customer: customer, limit: 50, after: context.after)
        if rows.isEmpty && context.after == nil { return .notFound("Customer \(customer) has no deliveries, opens or clicks.") }
        let body = Templates.render(
            "person",
            [
                "customer": customer, "csv": context.link(["people", customer], suffix: ".csv"),
                "events": rows.map { r -> [String: Any] in
                    [
                        "at": r[0] ?? "", "click": r[1] == "clicked_link", "deliveryID": r[2] ?? "", "kind": r[3] ?? "", "id": r[4] ?? "",
                        "source": context.link(["sources", r[3] ?? "", r[4] ?? ""]), "messageType": r[5] ?? "", "linkID": r[6] ?? "",
                        "url": r[7] ?? "", "human": r[8] == "true", "botReason": r[9] ?? "", "userAgent": r[10] ?? "", "ip": r[11] ?? "not recorded",
                        "open": r[1] == "opened_email",
                        "openedAs": Self.openReasons.first { $0.reason == (r[13] ?? "") }.map { $0.persons ? "by the person" : $0.label } ?? "",
                    ]
                },
                "next": next.map { context.link(["people", customer], query: [("after", $0)]) } ?? false,
            ])
        return .html(title: "Activity of \(customer)", body: body)
    }
}

/// The keyset cursor of a Next link: values joined by NUL, base64url. Opaque to the reader;
/// a tampered one is a 400, never SQL (its values are bound).
enum Cursor {
    static func encode(_ values: [String]) -> String {
        Data(values.joined(separator: "\u{0}").utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) -> [String]? {
        guard text.utf8.count <= 4096 else { return nil }
        var b64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while b64.utf8.count % 4 != 0 { b64 += "=" }
        guard let data = Data(base64Encoded: b64), let s = String(data: data, encoding: .utf8) else { return nil }
        return s.split(separator: "\u{0}", omittingEmptySubsequences: false).map(String.init)
    }
}
