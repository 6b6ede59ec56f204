import LinkTracking
import NIOHTTP1

/// An HTTP/1.x request head as the click route needs it, parsed straight from the bytes
/// received (RFC 9112, strictly).
///
/// Written by hand instead of NIO's `HTTPRequestDecoder`: that decoder builds an
/// `HTTPRequestHead` with a `String` for the target and for every header name and value,
/// boxed and passed down the pipeline per request — about a tenth of the edge's event-loop
/// time in a profile of bench/edge.sh, more than the parse itself. The click route needs
/// the method, the target, the version and four headers, and reads no bodies: a request
/// that carries one is answered and its connection closed, so no body framing is parsed.
/// What it refuses gets a 4xx: `RequestHeadTests` covers the grammar and its limits.
struct RequestHead: Equatable {
    enum Method: Equatable {
        case get, head
        /// Any other method token; the click route answers it 405.
        case other
    }

    var method: Method
    var target: String
    /// The `y` of `HTTP/1.y` (1.0 or 1.1; a higher `y` is treated as 1.1).
    var minorVersion: Int
    var keepAlive: Bool
    var userAgent: String
    /// Every `X-Forwarded-For` value, joined with commas in order.
    var forwardedFor: String?
    /// Bytes of the header lines, counted as the header limit counts them.
    var headerBytes: Int
    /// A body is announced (`Content-Length` above 0, or `Transfer-Encoding`): the answer
    /// closes the connection, since the body is never read.
    var hasBody: Bool

    var version: HTTPVersion { HTTPVersion(major: 1, minor: minorVersion == 0 ? 0 : 1) }

    enum Parse: Equatable {
        /// More bytes are needed.
        case incomplete
        /// The bytes so far are this many bytes of empty lines (CRLF) before a request line:
        /// the caller consumes them and counts them against the request-line limit, so a
        /// stream of CRLF is neither kept nor scanned again.
        case blankLines(Int)
        /// A head of `length` bytes (the blank line included).
        case complete(RequestHead, length: Int)
        /// Refused with this status; the connection closes after the answer.
        case invalid(HTTPResponseStatus)
    }

    private static let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n"), sp = UInt8(ascii: " "), tab = UInt8(ascii: "\t")

    /// Parses the head at the start of `bytes`. `maxLineBytes` bounds the request line
    /// before its end is seen (414 beyond), `maxHeadBytes` the whole head (431 beyond).
    static func parse(_ bytes: UnsafeRawBufferPointer, maxLineBytes: Int, maxHeadBytes: Int) -> Parse {
        let n = bytes.count
        var i = 0
        // A client may send blank lines between pipelined requests (RFC 9112 §2.2).
        while i + 1 < n, bytes[i] == cr, bytes[i + 1] == lf { i += 2 }
        if i > maxLineBytes { return .invalid(.badRequest) }
        if i == n || (i + 1 == n && bytes[i] == cr) { return i > 0 ? .blankLines(i) : .incomplete }
        let start = i

        guard let lineEnd = Self.lineEnd(bytes, from: i) else {
            return n - start > maxLineBytes ? .invalid(.uriTooLong) : .incomplete
        }
        guard lineEnd >= 0 else { return .invalid(.badRequest) }
        // method SP request-target SP HTTP-version
        guard let firstSpace = index(of: sp, in: bytes, from: i, to: lineEnd), firstSpace > i,
            let secondSpace = index(of: sp, in: bytes, from: firstSpace + 1, to: lineEnd), secondSpace > firstSpace + 1
        else { return .invalid(.badRequest) }
        for k in i..<firstSpace where !isTokenByte(bytes[k]) { return .invalid(.badRequest) }
        let method: Method
        if firstSpace - i == 3, bytes[i] == UInt8(ascii: "G"), bytes[i + 1] == UInt8(ascii: "E"), bytes[i + 2] == UInt8(ascii: "T") {
            method = .get
        } else if firstSpace - i == 4, bytes[i] == UInt8(ascii: "H"), bytes[i + 1] == UInt8(ascii: "E"),
            bytes[i + 2] == UInt8(ascii: "A"), bytes[i + 3] == UInt8(ascii: "D")
        {
            method = .head
        } else {
            method = .other
        }
        for k in (firstSpace + 1)..<secondSpace where bytes[k] <= sp || bytes[k] >= 0x7f { return .invalid(.badRequest) }
        // "HTTP/1.y"
        guard lineEnd - (secondSpace + 1) == 8 else { return .invalid(.badRequest) }
        let v = secondSpace + 1
        guard bytes[v] == UInt8(ascii: "H"), bytes[v + 1] == UInt8(ascii: "T"), bytes[v + 2] == UInt8(ascii: "T"),
            bytes[v + 3] == UInt8(ascii: "P"), bytes[v + 4] == UInt8(ascii: "/"), bytes[v + 5] == UInt8(ascii: "1"),
            bytes[v + 6] == UInt8(ascii: "."), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[v + 7])
        else { return .invalid(.badRequest) }
        let minor = Int(bytes[v + 7] - UInt8(ascii: "0"))
        let target = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(firstSpace + 1)..<secondSpace]), as: UTF8.self)
        i = lineEnd + 2

        var head = RequestHead(
            method: method, target: target, minorVersion: minor, keepAlive: minor >= 1, userAgent: "",
            forwardedFor: nil, headerBytes: 0, hasBody: false)
        var sawClose = false
        var sawKeepAlive = false
        var contentLength: Int?
        while true {
            guard let end = Self.lineEnd(bytes, from: i) else {
                return n - start > maxHeadBytes ? .invalid(.requestHeaderFieldsTooLarge) : .incomplete
            }
            guard end >= 0 else { return .invalid(.badRequest) }
            if end - start > maxHeadBytes { return .invalid(.requestHeaderFieldsTooLarge) }
            if end == i {
                i += 2
                break
            }
            // No obsolete line folding, no space before the colon (RFC 9112 §5.1, §5.2).
            guard let colon = index(of: UInt8(ascii: ":"), in: bytes, from: i, to: end), colon > i else { return .invalid(.badRequest) }
            for k in i..<colon where !isTokenByte(bytes[k]) { return .invalid(.badRequest) }
            var valueStart = colon + 1
            var valueEnd = end
            while valueStart < valueEnd, bytes[valueStart] == sp || bytes[valueStart] == tab { valueStart += 1 }
            while valueEnd > valueStart, bytes[valueEnd - 1] == sp || bytes[valueEnd - 1] == tab { valueEnd -= 1 }
            for k in valueStart..<valueEnd where (bytes[k] < sp && bytes[k] != tab) || bytes[k] == 0x7f { return .invalid(.badRequest) }
            head.headerBytes += end - i + 2
            let name = UnsafeRawBufferPointer(rebasing: bytes[i..<colon])
            let value = UnsafeRawBufferPointer(rebasing: bytes[valueStart..<valueEnd])
            if ASCII.equalsIgnoringCase(name, "user-agent") {
                head.userAgent = String(decoding: value, as: UTF8.self)
            } else if ASCII.equalsIgnoringCase(name, "x-forwarded-for") {
                let text = String(decoding: value, as: UTF8.self)
                head.forwardedFor = head.forwardedFor.map { $0 + "," + text } ?? text
            } else if ASCII.equalsIgnoringCase(name, "connection") {
                forEachListElement(value) { option in
                    if ASCII.equalsIgnoringCase(option, "close") { sawClose = true }
                    if ASCII.equalsIgnoringCase(option, "keep-alive") { sawKeepAlive = true }
                }
            } else if ASCII.equalsIgnoringCase(name, "content-length") {
                guard !value.isEmpty, value.count <= 18, value.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
                else { return .invalid(.badRequest) }
                let length = value.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
                if let contentLength, contentLength != length { return .invalid(.badRequest) }
                contentLength = length
            } else if ASCII.equalsIgnoringCase(name, "transfer-encoding") {
                head.hasBody = true
            }
            i = end + 2
        }
        if (contentLength ?? 0) > 0 { head.hasBody = true }
        head.keepAlive = !sawClose && (minor >= 1 || sawKeepAlive)
        return .complete(head, length: i)
    }

    /// The index of the CR of the first CRLF at or after `from`; nil when the buffer ends
    /// first; -1 for a bare CR or LF, which the grammar never allows inside a head.
    private static func lineEnd(_ bytes: UnsafeRawBufferPointer, from: Int) -> Int? {
        var k = from
        while k < bytes.count {
            if bytes[k] == lf { return -1 }
            if bytes[k] == cr {
                guard k + 1 < bytes.count else { return nil }
                return bytes[k + 1] == lf ? k : -1
            }
            k += 1
        }
        return nil
    }

    private static func index(of byte: UInt8, in bytes: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        var k = from
        while k < to {
            if bytes[k] == byte { return k }
            k += 1
        }
        return nil
    }

    /// RFC 9110 §5.6.2 `tchar`.
    private static func isTokenByte(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(c)
        }
    }

    /// Calls `body` with each element of a comma-separated header list, trimmed.
    private static func forEachListElement(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        while start <= value.count {
            var end = start
            while end < value.count, value[end] != UInt8(ascii: ",") { end += 1 }
            var a = start
            var b = end
            while a < b, value[a] == sp || value[a] == tab { a += 1 }
            while b > a, value[b - 1] == sp || value[b - 1] == tab { b -= 1 }
            if b > a { body(UnsafeRawBufferPointer(rebasing: value[a..<b])) }
            start = end + 1
        }
    }
}

/// Decides when the bytes of a partial request head are worth parsing: once they hold the
/// request line's end, the blank line that ends a head, a bare CR or LF (which the parser
/// refuses at once), or break a limit. A bad header line is answered when the head ends
/// (or outgrows its bound, or its deadline passes). Only the bytes that arrived since the last look are scanned, so a head sent a
/// byte at a time costs O(n), not a parse from its start on every read (issue 12).
struct RequestHeadScanner {
    private var scanned = 0
    private var sawLineEnd = false

    private static let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")

    /// Call after bytes at the front were consumed (a head parsed, blank lines dropped).
    mutating func reset() {
        scanned = 0
        sawLineEnd = false
    }

    mutating func worthParsing(_ bytes: UnsafeRawBufferPointer, maxLineBytes: Int, maxHeadBytes: Int) -> Bool {
        let n = bytes.count
        if n >= 2, bytes[0] == Self.cr, bytes[1] == Self.lf { return true }  // empty lines to consume
        // The common case, a whole head in one read: no scan (the parser reads it anyway).
        if n >= 4, bytes[n - 4] == Self.cr, bytes[n - 3] == Self.lf, bytes[n - 2] == Self.cr, bytes[n - 1] == Self.lf { return true }
        var k = max(0, scanned - 3)
        while k < n {
            if bytes[k] == Self.lf {
                if k == 0 || bytes[k - 1] != Self.cr { return true }  // bare LF: a 400 now
                if !sawLineEnd {
                    // The request line is whole: checked now (a 400 for a bad one at once).
                    sawLineEnd = true
                    scanned = k + 1
                    return true
                }
                if k >= 3, bytes[k - 2] == Self.lf, bytes[k - 3] == Self.cr { return true }
            } else if bytes[k] == Self.cr, k + 1 < n, bytes[k + 1] != Self.lf {
                return true  // bare CR: a 400 now
            }
            k += 1
        }
        scanned = n
        return n > maxHeadBytes || (!sawLineEnd && n > maxLineBytes)
    }
}
