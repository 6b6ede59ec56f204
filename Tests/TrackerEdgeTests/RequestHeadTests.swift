import Testing

@testable import TrackerEdge

@Suite struct RequestHeadTests {
    static func parse(_ text: String, maxLine: Int = 1000, maxHead: Int = 4000) -> RequestHead.Parse {
        Array(text.utf8).withUnsafeBytes { RequestHead.parse($0, maxLineBytes: maxLine, maxHeadBytes: maxHead) }
    }

    static func head(_ text: String) -> RequestHead? {
        if case .complete(let head, let length) = parse(text) {
            #expect(length == text.utf8.count, "the whole head is consumed")
            return head
        }
        return nil
    }

    @Test func readsWhatTheClickRouteNeeds() throws {
        let text =
            "GET /c/abc?x=1 HTTP/1.1\r\nHost: t\r\nuser-AGENT:  Mozilla/5.0 (X11)  \r\nX-Forwarded-For: 1.2.3.4\r\n"
            + "x-forwarded-for: 5.6.7.8, 9.9.9.9\r\n\r\n"
        let head = try #require(Self.head(text))
        #expect(head.method == .get && head.target == "/c/abc?x=1" && head.minorVersion == 1 && head.keepAlive)
        #expect(head.userAgent == "Mozilla/5.0 (X11)")
        #expect(head.forwardedFor == "1.2.3.4,5.6.7.8, 9.9.9.9")
        #expect(!head.hasBody)
        #expect(head.headerBytes == text.utf8.count - "GET /c/abc?x=1 HTTP/1.1\r\n".utf8.count - 2)
        #expect(Self.head("HEAD / HTTP/1.1\r\n\r\n")?.method == .head)
        #expect(Self.head("POST / HTTP/1.1\r\n\r\n")?.method == .other)
        #expect(Self.head("get / HTTP/1.1\r\n\r\n")?.method == .other, "methods are case-sensitive")
    }

    @Test func keepAliveFollowsVersionAndConnection() {
        #expect(Self.head("GET / HTTP/1.1\r\n\r\n")?.keepAlive == true)
        #expect(Self.head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")?.keepAlive == false)
        #expect(Self.head("GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n")?.keepAlive == false)
        #expect(Self.head("GET / HTTP/1.0\r\n\r\n")?.keepAlive == false)
        #expect(Self.head("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")?.keepAlive == true)
        #expect(Self.head("GET / HTTP/1.0\r\nconnection: Keep-Alive, close\r\n\r\n")?.keepAlive == false)
        #expect(Self.head("GET / HTTP/1.0\r\n\r\n")?.version == .http1_0)
        #expect(Self.head("GET / HTTP/1.9\r\n\r\n")?.version == .http1_1)
    }

    @Test func announcedBodiesAreFlagged() {
        #expect(Self.head("POST /c/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n")?.hasBody == false)
        #expect(Self.head("POST /c/x HTTP/1.1\r\nContent-Length: 12\r\n\r\n")?.hasBody == true)
        #expect(Self.head("POST /c/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")?.hasBody == true)
        #expect(Self.head("POST /c/x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n")?.hasBody == true)
        #expect(Self.parse("POST /c/x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n") == .invalid(.badRequest))
        #expect(Self.parse("POST /c/x HTTP/1.1\r\nContent-Length: -1\r\n\r\n") == .invalid(.badRequest))
        #expect(Self.parse("POST /c/x HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n") == .invalid(.badRequest))
    }

    @Test func partialHeadsWaitForMoreBytes() {
        let full = "GET /c/abc HTTP/1.1\r\nHost: t\r\nUser-Agent: u\r\n\r\n"
        let bytes = Array(full.utf8)
        for cut in 0..<bytes.count {
            let parse = Array(bytes[..<cut]).withUnsafeBytes { RequestHead.parse($0, maxLineBytes: 1000, maxHeadBytes: 4000) }
            #expect(parse == .incomplete, "cut at \(cut)")
        }
        // Blank lines before a request are skipped; a pipelined second request is left alone.
        let two = "\r\n" + full + full
        guard case .complete(let head, let length) = Self.parse(two) else {
            Issue.record("not parsed")
            return
        }
        #expect(head.target == "/c/abc" && length == 2 + bytes.count)
    }

    @Test func malformedHeadsAreRefused() {
        for text in [
            "NOT A REQUEST\r\n\r\n", "GET\r\n\r\n", "GET /\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n", "G(T / HTTP/1.1\r\n\r\n", "GET /a\u{7f} HTTP/1.1\r\n\r\n", "GET /ä HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.1\nHost: t\r\n\r\n",  // bare LF
            "GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n",  // bare CR
            "GET / HTTP/1.1\r\nHost : t\r\n\r\n",  // space before the colon
            "GET / HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n",  // obsolete line folding
            "GET / HTTP/1.1\r\n: empty name\r\n\r\n",
            "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
            "GET / HTTP/1.1\r\nX: a\u{1}b\r\n\r\n",  // control character in a value
        ] {
            #expect(Self.parse(text) == .invalid(.badRequest), "\(text.debugDescription)")
        }
        #expect(Self.head("GET / HTTP/1.1\r\nX: tab\there\r\n\r\n") != nil, "a tab is allowed in a value")
    }

    @Test func limitsBoundWhatIsBuffered() {
        // A request line that never ends: 414 once it is longer than its bound.
        #expect(Self.parse("GET /" + String(repeating: "a", count: 200), maxLine: 100) == .invalid(.uriTooLong))
        #expect(Self.parse("GET /" + String(repeating: "a", count: 50), maxLine: 100) == .incomplete)
        // Headers that never end: 431 once the head is longer than its bound, ended or not.
        let many = "GET / HTTP/1.1\r\n" + String(repeating: "X-Filler: 0123456789\r\n", count: 100)
        #expect(Self.parse(many, maxHead: 500) == .invalid(.requestHeaderFieldsTooLarge))
        #expect(Self.parse(many + "\r\n", maxHead: 500) == .invalid(.requestHeaderFieldsTooLarge))
        #expect(Self.parse(many, maxHead: 4000) == .incomplete)
        #expect(Self.head(many + "\r\n")?.headerBytes == 100 * "X-Filler: 0123456789\r\n".utf8.count)
    }

    /// Issue 12, item 2: a stream of CRLF was never consumed (kept, and scanned again on every
    /// read). Empty lines alone are handed back to be dropped, and too many are refused.
    @Test func blankLinesAreHandedBackToBeConsumed() {
        #expect(Self.parse("\r\n") == .blankLines(2))
        #expect(Self.parse("\r\n\r\n\r") == .blankLines(4))
        #expect(Self.parse("\r") == .incomplete)
        #expect(Self.parse(String(repeating: "\r\n", count: 40), maxLine: 100) == .blankLines(80))
        #expect(Self.parse(String(repeating: "\r\n", count: 60), maxLine: 100) == .invalid(.badRequest))
        #expect(Self.parse(String(repeating: "\r\n", count: 60) + "GET / HTTP/1.1\r\n\r\n", maxLine: 100) == .invalid(.badRequest))
    }

    /// The scanner asks for a parse exactly when a head may be complete or a limit is broken,
    /// looking at each byte once however the head is split.
    @Test func theScannerAsksForAParseOnlyWhenItCanSucceedOrFail() {
        let head = Array("GET /c/abc HTTP/1.1\r\nHost: t\r\nUser-Agent: u\r\n\r\n".utf8)
        let lineEnd = "GET /c/abc HTTP/1.1\r\n".utf8.count
        for step in [1, 2, 3, 7, head.count] {
            var scanner = RequestHeadScanner()
            var asked: [Int] = []
            var end = 0
            while end < head.count {
                end = min(head.count, end + step)
                let worth = Array(head[..<end]).withUnsafeBytes { scanner.worthParsing($0, maxLineBytes: 1000, maxHeadBytes: 4000) }
                if worth { asked.append(end) }
            }
            // Once when the request line is whole (a bad one is refused at once), once when the head is.
            let lineSeen = min(head.count, (lineEnd + step - 1) / step * step)
            #expect(asked == (lineSeen == head.count ? [head.count] : [lineSeen, head.count]), "step \(step): \(asked)")
        }
        func worth(_ text: String, maxLine: Int = 1000, maxHead: Int = 4000) -> Bool {
            var scanner = RequestHeadScanner()
            return Array(text.utf8).withUnsafeBytes { scanner.worthParsing($0, maxLineBytes: maxLine, maxHeadBytes: maxHead) }
        }
        #expect(worth("\r\nGET"), "empty lines first: consume them")
        #expect(worth("GET / HTTP/1.1\nHost"), "a bare LF is refused at once")
        #expect(worth("GET /" + String(repeating: "a", count: 200), maxLine: 100), "an endless request line")
        #expect(worth("GET / HTTP/1.1\r\nHost: t\rX"), "a bare CR is refused at once")
        var scanner = RequestHeadScanner()
        let lineThenHeaders = Array(("GET / HTTP/1.1\r\n" + String(repeating: "a", count: 200)).utf8)
        #expect(
            lineThenHeaders.withUnsafeBytes {
                scanner.worthParsing(UnsafeRawBufferPointer(rebasing: $0[..<20]), maxLineBytes: 100, maxHeadBytes: 4000)
            })
        #expect(
            !lineThenHeaders.withUnsafeBytes { scanner.worthParsing($0, maxLineBytes: 100, maxHeadBytes: 4000) },
            "the line ended: the head bound applies")
        #expect(worth("GET / HTTP/1.1\r\n" + String(repeating: "a", count: 600), maxLine: 100, maxHead: 500))
    }
}
