import Foundation

/// Clicks over time for a source: buckets (hours when the range is under 7 days, days
/// beyond), every bucket of the range present (zeros included), and the bar chart drawn
/// from them as SVG numbers. Pure: the page renders it through its template, which escapes
/// every text in it (the title names the source).
struct ClicksChart {
    struct Bucket: Equatable {
        /// The bucket's start, milliseconds since the epoch (UTC).
        var start: UInt64
        var total: Int64
        var human: Int64
    }

    static let hourlyBelowDays = 7
    let hourly: Bool
    let buckets: [Bucket]

    /// `rows`: (bucket start in ms, total, human) as the database gave them, any order, only
    /// the non-empty ones.
    init(range: DayRange, rows: [(UInt64, Int64, Int64)]) {
        hourly = range.days < Self.hourlyBelowDays
        let step: UInt64 = hourly ? 3_600_000 : 86_400_000
        var byStart: [UInt64: (Int64, Int64)] = [:]
        for (start, total, human) in rows {
            let bucket = start - start % step
            byStart[bucket, default: (0, 0)].0 += total
            byStart[bucket, default: (0, 0)].1 += human
        }
        var buckets: [Bucket] = []
        var t = range.startMilliseconds
        while t < range.endMilliseconds {
            let counts = byStart[t] ?? (0, 0)
            buckets.append(Bucket(start: t, total: counts.0, human: counts.1))
            t += step
        }
        self.buckets = buckets
    }

    /// A bucket's label: `2026-11-20 14:00` by the hour, `2026-11-20` by the day.
    func label(_ bucket: Bucket) -> String {
        let day = DayRange.format(Int(bucket.start / 86_400_000))
        guard hourly else { return day }
        return day + String(format: " %02d:00", Int(bucket.start % 86_400_000 / 3_600_000))
    }

    static let width = 720.0
    static let height = 200.0
    static let top = 10.0
    static let bottom = 24.0
    static let left = 40.0

    /// The bars (x, y, width, height), the largest count's axis label, and the axis labels
    /// along the bottom (x, text) — every number as SVG takes it.
    func drawing(includeBots: Bool) -> (bars: [[String: String]], maximum: Int64, ticks: [[String: String]]) {
        let values = buckets.map { includeBots ? $0.total : $0.human }
        let maximum = max(values.max() ?? 0, 1)
        let plotWidth = Self.width - Self.left - 4
        let plotHeight = Self.height - Self.top - Self.bottom
        let slot = plotWidth / Double(max(buckets.count, 1))
        var bars: [[String: String]] = []
        for (i, value) in values.enumerated() where value > 0 {
            let h = plotHeight * Double(value) / Double(maximum)
            bars.append([
                "x": Self.number(Self.left + Double(i) * slot + slot * 0.1), "y": Self.number(Self.top + plotHeight - h),
                "width": Self.number(max(slot * 0.8, 0.5)), "height": Self.number(h), "label": "\(label(buckets[i])): \(value)",
            ])
        }
        // About six labels along the bottom.
        let every = max(1, buckets.count / 6)
        var ticks: [[String: String]] = []
        for i in stride(from: 0, to: buckets.count, by: every) {
            ticks.append(["x": Self.number(Self.left + Double(i) * slot), "text": hourly ? String(label(buckets[i]).suffix(11)) : label(buckets[i])])
        }
        return (bars, maximum, ticks)
    }

    static func number(_ value: Double) -> String { String(format: "%.1f", value) }
}
