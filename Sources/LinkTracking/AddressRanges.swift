/// A set of address ranges, looked up by binary search: Apple's Private Relay egress
/// ranges (`--apple-egress FILE`, about 10⁵ lines of `CIDR,country,region,city,`), which
/// the edge checks for every open before it truncates the address (docs/design/opens.md).
/// The ranges are merged and sorted once, at load; a lookup is O(log n), no allocation.
public struct AddressRanges: Sendable, Equatable {
    /// Disjoint, sorted, not adjacent: [first, last] of each IPv4 range.
    private var v4: [ClosedRange<UInt32>] = []
    /// Likewise for IPv6.
    private var v6: [ClosedRange<UInt128>] = []

    public static let empty = AddressRanges()

    public init() {}

    public init(_ ranges: [CIDR]) {
        var four: [ClosedRange<UInt32>] = []
        var six: [ClosedRange<UInt128>] = []
        for range in ranges {
            if range.address.count == 4 {
                let start = range.address.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                let host = UInt32(32 - range.prefix)
                let mask: UInt32 = host == 32 ? .max : (1 << host) - 1
                four.append((start & ~mask)...(start | mask))
            } else {
                let start = range.address.reduce(UInt128(0)) { $0 << 8 | UInt128($1) }
                let host = UInt128(128 - range.prefix)
                let mask: UInt128 = host == 128 ? .max : (1 << host) - 1
                six.append((start & ~mask)...(start | mask))
            }
        }
        v4 = Self.merged(four)
        v6 = Self.merged(six)
    }

    /// The ranges of the text of Apple's `egress-ip-ranges.csv`: one range per line, its
    /// first comma-separated field (an address or CIDR); blank lines and `#` comments are
    /// skipped. A line whose first field is no range is an error naming the line.
    public static func parseCSV(_ text: String) throws(AddressRangesError) -> AddressRanges {
        var ranges: [CIDR] = []
        var number = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let field = line.prefix { $0 != "," }.trimmingCharacters(in: " \t\r")
            if field.isEmpty || field.hasPrefix("#") { continue }
            guard let range = CIDR(field) else {
                throw AddressRangesError(line: number, message: "'\(field.prefix(60))' is not an address or CIDR range")
            }
            ranges.append(range)
        }
        return AddressRanges(ranges)
    }

    /// How many disjoint ranges are held (after merging).
    public var count: Int { v4.count + v6.count }

    /// Whether `address` (4 or 16 bytes; anything else is in no range) is in a range.
    public func contains(_ address: [UInt8]) -> Bool {
        switch address.count {
        case 4: Self.search(v4, address.reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        case 16: Self.search(v6, address.reduce(UInt128(0)) { $0 << 8 | UInt128($1) })
        default: false
        }
    }

    static func search<T: FixedWidthInteger>(_ ranges: [ClosedRange<T>], _ value: T) -> Bool {
        // The last range starting at or before `value`.
        var low = 0
        var high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].lowerBound <= value { low = mid + 1 } else { high = mid }
        }
        return low > 0 && ranges[low - 1].upperBound >= value
    }

    static func merged<T: FixedWidthInteger>(_ ranges: [ClosedRange<T>]) -> [ClosedRange<T>] {
        var result: [ClosedRange<T>] = []
        for range in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = result.last, last.upperBound == .max || range.lowerBound <= last.upperBound + 1 {
                result[result.count - 1] = last.lowerBound...max(last.upperBound, range.upperBound)
            } else {
                result.append(range)
            }
        }
        return result
    }
}

public struct AddressRangesError: Error, Equatable, CustomStringConvertible {
    public let line: Int
    public let message: String
    public var description: String { "line \(line): \(message)" }

    public init(line: Int, message: String) {
        self.line = line
        self.message = message
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var s = self[...]
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        return String(s)
    }
}
