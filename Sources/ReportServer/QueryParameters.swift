import Foundation

/// A parameter of a report URL that does not parse: the 400 page names it and says what it
/// accepts.
public struct BadParameter: Error, Equatable, CustomStringConvertible {
    public let name: String
    public let expected: String
    public var description: String { "parameter \(name): expected \(expected)" }
}

/// The days a page covers: `from` and `to` are UTC days, `to` included. Default: the 30
/// days ending today. At most 366 days, so that no URL can ask for an unbounded scan.
public struct DayRange: Equatable, Sendable {
    /// Days since 1970-01-01 (UTC).
    public let from: Int
    public let to: Int

    public static let maxDays = 366
    public static let defaultDays = 30

    public init(from: Int, to: Int) {
        self.from = from
        self.to = to
    }

    /// Days in the range (at least 1).
    public var days: Int { to - from + 1 }
    /// The range's start and its end (exclusive), in milliseconds since the epoch.
    public var startMilliseconds: UInt64 { UInt64(from) * 86_400_000 }
    public var endMilliseconds: UInt64 { UInt64(to + 1) * 86_400_000 }

    /// Parses `from`/`to` (YYYY-MM-DD); a missing one defaults around `today`.
    public static func parse(from: String?, to: String?, today: Int) throws(BadParameter) -> DayRange {
        let end = try to.map { s throws(BadParameter) in try day(s, name: "to") } ?? today
        let start = try from.map { s throws(BadParameter) in try day(s, name: "from") } ?? (end - defaultDays + 1)
        guard start <= end else { throw BadParameter(name: "from", expected: "a day on or before `to` (\(format(end)))") }
        guard end - start + 1 <= maxDays else { throw BadParameter(name: "from", expected: "a range of at most \(maxDays) days") }
        return DayRange(from: start, to: end)
    }

    /// Days since the epoch of a `YYYY-MM-DD` between 1970-01-01 and 9999-12-31.
    static func day(_ text: String, name: String) throws(BadParameter) -> Int {
        let expected = "a day as YYYY-MM-DD"
        let b = Array(text.utf8)
        guard b.count == 10, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-") else { throw BadParameter(name: name, expected: expected) }
        func number(_ range: Range<Int>) throws(BadParameter) -> Int {
            var n = 0
            for i in range {
                guard b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") else { throw BadParameter(name: name, expected: expected) }
                n = n * 10 + Int(b[i] - UInt8(ascii: "0"))
            }
            return n
        }
        let (y, m, d) = (try number(0..<4), try number(5..<7), try number(8..<10))
        guard y >= 1970, (1...12).contains(m), d >= 1, d <= daysInMonth(y, m) else { throw BadParameter(name: name, expected: expected) }
        return daysFromCivil(y, m, d)
    }

    static func daysInMonth(_ y: Int, _ m: Int) -> Int {
        switch m {
        case 2: return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Howard Hinnant's days_from_civil (proleptic Gregorian), for y ≥ 1970.
    static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int {
        let y = m <= 2 ? y0 - 1 : y0
        let era = y / 400
        let yoe = y - era * 400
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// `YYYY-MM-DD` of days since the epoch.
    public static func format(_ days: Int) -> String {
        let z = days + 719_468
        let era = z / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        return String(format: "%04d-%02d-%02d", y, m, d)
    }
}
