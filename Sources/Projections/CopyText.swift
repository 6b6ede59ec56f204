#if canImport(Glibc)
import Glibc
#endif
import LinkTracking

/// Rows in PostgreSQL's COPY text format, built without interpolating values into SQL.
struct CopyText {
    private(set) var bytes: [UInt8] = []
    private var columns = 0

    mutating func field(_ text: String?) {
        if columns > 0 { bytes.append(0x09) }
        columns += 1
        guard let text else {
            bytes += [0x5c, 0x4e]  // \N
            return
        }
        if !text.utf8.contains(where: { $0 == 0x5c || $0 == 0x09 || $0 == 0x0a || $0 == 0x0d }) {
            bytes.append(contentsOf: text.utf8)
            return
        }
        for byte in text.utf8 {
            switch byte {
            case 0x5c: bytes += [0x5c, 0x5c]
            case 0x09: bytes += [0x5c, 0x74]
            case 0x0a: bytes += [0x5c, 0x6e]
            case 0x0d: bytes += [0x5c, 0x72]
            default: bytes.append(byte)
            }
        }
    }

    mutating func field(_ value: Int64) { field(String(value)) }

    /// The formatted second last used (timestamps of a batch share most of their seconds).
    private var lastSecond: (UInt64, [UInt8]) = (UInt64.max, [])

    /// A timestamptz from milliseconds since the epoch, or NULL.
    mutating func timestamp(_ ms: UInt64?) {
        guard let ms else { return field(nil) }
        if columns > 0 { bytes.append(0x09) }
        columns += 1
        let second = ms / 1000
        if lastSecond.0 != second {
            let text = Self.timestamp(second * 1000)
            lastSecond = (second, Array(text.utf8.prefix(19)))  // "YYYY-MM-DD HH:MM:SS"
        }
        bytes.append(contentsOf: lastSecond.1)
        let millis = Int(ms % 1000)
        bytes += [0x2e, UInt8(48 + millis / 100), UInt8(48 + millis / 10 % 10), UInt8(48 + millis % 10), 0x2b, 0x30, 0x30]  // .mmm+00
    }

    mutating func endRow() {
        bytes.append(0x0a)
        columns = 0
    }

    static func timestamp(_ ms: UInt64) -> String {
        var t = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let millis = Int(ms % 1000)
        let frac = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(frac)+00"
    }

    static func inet(_ bytes: [UInt8]) -> String? { ClientAddressText.format(bytes) }
}
