import Testing

@testable import ReportServer

/// The chart's buckets and drawing, pure.
@Suite struct ClicksChartTests {
    static let day = 20_777  // 2026-11-20

    @Test func hoursUnderAWeekEveryBucketPresent() {
        let range = DayRange(from: Self.day, to: Self.day + 1)
        let start = range.startMilliseconds
        let chart = ClicksChart(range: range, rows: [(start + 3 * 3_600_000, 5, 4), (start + 30 * 3_600_000, 2, 0)])
        #expect(chart.hourly)
        #expect(chart.buckets.count == 48)
        #expect(chart.buckets[3] == .init(start: start + 3 * 3_600_000, total: 5, human: 4))
        #expect(chart.buckets[30].total == 2 && chart.buckets[30].human == 0)
        #expect(chart.buckets.reduce(0) { $0 + $1.total } == 7)
        #expect(chart.label(chart.buckets[3]) == "2026-11-20 03:00")
        let drawing = chart.drawing(includeBots: false)
        #expect(drawing.bars.count == 1 && drawing.maximum == 4, "human clicks only: hour 30 has none")
        #expect(chart.drawing(includeBots: true).bars.count == 2)
    }

    @Test func aWeekOrMoreIsByTheDay() {
        let range = DayRange(from: Self.day, to: Self.day + 6)
        let start = range.startMilliseconds
        let chart = ClicksChart(
            range: range, rows: [(start + 3 * 3_600_000, 5, 4), (start + 20 * 3_600_000, 1, 1), (start + 2 * 86_400_000 + 5, 3, 3)])
        #expect(!chart.hourly)
        #expect(chart.buckets.count == 7)
        #expect(chart.buckets[0] == .init(start: start, total: 6, human: 5))
        #expect(chart.buckets[2].total == 3)
        #expect(chart.label(chart.buckets[6]) == "2026-11-26")
        #expect(DayRange.format(Self.day) == "2026-11-20")
    }

    @Test func dayRangesParseAndRefuse() throws {
        #expect(try DayRange.parse(from: nil, to: nil, today: Self.day) == DayRange(from: Self.day - 29, to: Self.day))
        #expect(try DayRange.parse(from: "2026-11-20", to: "2026-11-20", today: 0).days == 1)
        #expect(try DayRange.parse(from: "2024-02-29", to: "2024-03-01", today: 0).days == 2)
        for (from, to) in [("2026-02-29", "2026-03-01"), ("1969-12-31", "1970-01-01"), ("2026-1-01", "2026-01-02"), ("２０２６-01-01", "2026-01-02")] {
            #expect(throws: BadParameter.self) { try DayRange.parse(from: from, to: to, today: 0) }
        }
    }

    @Test func csvQuotesAndGuardsFormulas() {
        #expect(CSV.row(["a", "b,c", "d\"e", "f\r\ng"]) == "a,\"b,c\",\"d\"\"e\",\"f\r\ng\"\r\n")
        for start in ["=", "+", "-", "@", "\t", "\r"] {
            let cell = CSV.cell(start + "1+1")
            #expect(cell.hasPrefix("'") || cell.hasPrefix("\"'"), "\(start.debugDescription): \(cell)")
        }
        #expect(CSV.cell("plain") == "plain")
        #expect(CSV.cell("") == "")
    }
}
