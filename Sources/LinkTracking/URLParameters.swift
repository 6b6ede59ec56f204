/// Appends a message's URL parameters (`utm_source=…`) to a destination while keeping
/// everything already there byte for byte: its query (valueless parameters like `?a&b=1`
/// included), its percent-escapes and its fragment.
public struct URLParameters: Sendable {
    /// Each parameter's percent-encoded key and its whole `key=value` pair, encoded once
    /// per message rather than once per link.
    private let encoded: [(key: [UInt8], pair: [UInt8])]

    public init(_ parameters: [(key: String, value: String)]) {
        encoded = parameters.map { p in
            let key = Self.encode(p.key)
            return (key, key + [UInt8(ascii: "=")] + Self.encode(p.value))
        }
    }

    public var isEmpty: Bool { encoded.isEmpty }

    /// `url` with each parameter appended to its query, unless the query already names that
    /// parameter (the link's own value wins). The existing URL is not re-encoded.
    public func append(to url: String) -> String {
        guard !encoded.isEmpty else { return url }
        var bytes = Array(url.utf8)
        let hash = bytes.firstIndex(of: UInt8(ascii: "#")) ?? bytes.count
        let queryStart = bytes[..<hash].firstIndex(of: UInt8(ascii: "?"))
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + encoded.reduce(0) { $0 + $1.pair.count + 1 } + 1)
        out.append(contentsOf: bytes[..<hash])
        var separator: UInt8? = UInt8(ascii: "?")
        if let queryStart {
            let last = bytes[hash - 1]
            separator = (hash - 1 == queryStart || last == UInt8(ascii: "&")) ? nil : UInt8(ascii: "&")
        }
        var added = false
        for parameter in encoded where !(queryStart.map { Self.query(bytes[($0 + 1)..<hash], names: parameter.key) } ?? false) {
            if let separator { out.append(separator) }
            out.append(contentsOf: parameter.pair)
            separator = UInt8(ascii: "&")
            added = true
        }
        guard added else { return url }
        out.append(contentsOf: bytes[hash...])
        bytes = out
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether `query` has a parameter named `key` (compared as written).
    static func query(_ query: ArraySlice<UInt8>, names key: [UInt8]) -> Bool {
        var start = query.startIndex
        while start <= query.endIndex {
            let end = query[start...].firstIndex(of: UInt8(ascii: "&")) ?? query.endIndex
            let nameEnd = query[start..<end].firstIndex(of: UInt8(ascii: "=")) ?? end
            if query[start..<nameEnd].elementsEqual(key) { return true }
            start = end + 1
        }
        return false
    }

    /// `url` with `parameters` appended (see `append(to:)`).
    public static func append(_ parameters: [(key: String, value: String)], to url: String) -> String {
        URLParameters(parameters).append(to: url)
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters.
    public static func encode(_ text: String) -> [UInt8] {
        LocationURL.percentEncodedBytes(text.utf8) { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                false
            default: true
            }
        }
    }
}
