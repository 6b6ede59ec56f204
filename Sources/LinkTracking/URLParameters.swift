/// Appends a message's URL parameters (`utm_source=…`) to a destination while keeping
/// everything already there byte for byte: its query (valueless parameters like `?a&b=1`
/// included), its percent-escapes and its fragment.
public enum URLParameters {
    /// `url` with each of `parameters` appended to its query, unless the query already
    /// names that parameter (the link's own value wins). Keys and values are
    /// percent-encoded here; the existing URL is not re-encoded.
    public static func append(_ parameters: [(key: String, value: String)], to url: String) -> String {
        guard !parameters.isEmpty else { return url }
        var bytes = Array(url.utf8)
        var fragment: [UInt8] = []
        if let hash = bytes.firstIndex(of: UInt8(ascii: "#")) {
            fragment = Array(bytes[hash...])
            bytes.removeSubrange(hash...)
        }
        let queryStart = bytes.firstIndex(of: UInt8(ascii: "?"))
        let existing: Set<String> = queryStart.map { start in
            Set(bytes[(start + 1)...].split(separator: UInt8(ascii: "&")).map { pair in
                String(decoding: pair.prefix { $0 != UInt8(ascii: "=") }, as: UTF8.self)
            })
        } ?? []
        let added = parameters.filter { !existing.contains(encode($0.key)) }
        guard !added.isEmpty else { return url }
        if queryStart == nil {
            bytes.append(UInt8(ascii: "?"))
        } else if let last = bytes.last, last != UInt8(ascii: "?"), last != UInt8(ascii: "&") {
            bytes.append(UInt8(ascii: "&"))
        }
        bytes.append(contentsOf: added.map { encode($0.key) + "=" + encode($0.value) }.joined(separator: "&").utf8)
        return String(decoding: bytes + fragment, as: UTF8.self)
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters.
    public static func encode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 15)]], as: UTF8.self)
            }
        }
        return out
    }
}
