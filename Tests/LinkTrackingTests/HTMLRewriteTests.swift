import ClickdTestSupport
import Foundation
import Testing

@testable import LinkTracking

@Suite struct HTMLRewriteTests {
    /// Rewrites `html` and returns the body with every tracked URL replaced by `[dest]`.
    func rendered(_ html: String, _ options: RewriteOptions = Fixtures.options()) throws -> String {
        let result = try Fixtures.rewrite(html, options)
        var body = String(decoding: result.body, as: UTF8.self)
        for link in result.links {
            guard let tracked = link.trackedURL else { continue }
            #expect(Fixtures.destination(of: tracked) == link.destination)
            body = body.replacingOccurrences(of: tracked, with: "[\(link.destination)]")
        }
        return body
    }

    @Test func tracksHrefsWhateverTheirSpelling() throws {
        let cases: [(String, String)] = [
            (#"<a href="https://a.com/x">"#, #"<a href="[https://a.com/x]">"#),
            (#"<A HREF='https://a.com/x'>"#, #"<A HREF='[https://a.com/x]'>"#),
            (#"<a href=https://a.com/x>"#, #"<a href="[https://a.com/x]">"#),
            (#"<a class="b" id=c href = "https://a.com/x" target=_blank>"#, #"<a class="b" id=c href = "[https://a.com/x]" target=_blank>"#),
            ("<a\n\thref=\"https://a.com/x\"\n>", "<a\n\thref=\"[https://a.com/x]\"\n>"),
            (#"<a href="  https://a.com/x  ">"#, #"<a href="[https://a.com/x]">"#),
            (#"<a href="HTTP://A.com/x">"#, #"<a href="[HTTP://A.com/x]">"#),
            (#"<a/href="https://a.com/x">"#, #"<a/href="[https://a.com/x]">"#),
            (#"<a href="https://a.com/x" href="https://b.com">"#, #"<a href="[https://a.com/x]" href="https://b.com">"#),
        ]
        for (input, expected) in cases { #expect(try rendered(input) == expected, "\(input)") }
    }

    @Test func leavesOptedOutAndNonHTTPLinksAlone() throws {
        let untouched = [
            #"<a class="untracked" href="https://a.com">"#,
            #"<a class="btn  Untracked primary" href="https://a.com">"#,
            #"<a href="https://a.com" clicktracking=off>"#,
            #"<a clicktracking="OFF" href="https://a.com">"#,
            #"<a data-pm-no-track href="https://a.com">"#,
            #"<a ses:no-track href="https://a.com">"#,
            #"<a href="mailto:a@b.com">"#, #"<a href="tel:+123">"#, ##"<a href="#top">"##, #"<a href="/relative">"#,
            #"<a href="page.html">"#, #"<a href="javascript:alert(1)">"#, #"<a href="data:text/html,hi">"#,
            #"<a href="ftp://a.com">"#, #"<a name="x">"#, #"<a href>"#,
            #"<abbr href="https://a.com">"#, #"<area href="https://a.com">"#,
            #"<!-- <a href="https://a.com"> -->"#, #"<!-- <!-- <a href="https://a.com"> -->"#,
            #"<script>document.write('<a href="https://a.com">')</script>"#,
            #"<style>a[href="https://a.com"]{}</style>"#,
            #"<![CDATA[ <a href="https://a.com"> ]]>"#,
            #"<textarea><a href="https://a.com"></textarea>"#,
            "if a <a href=\"https://a.com\" and no closing bracket",
            "3 < 4 and 5 > 4 <3",
        ]
        for html in untouched {
            let result = try Fixtures.rewrite(html)
            #expect(String(decoding: result.body, as: UTF8.self) == html, "\(html)")
            #expect(result.links.allSatisfy { !$0.tracked }, "\(html)")
        }
        // After a comment or script closes, tracking resumes ("<!-->" is a whole, empty comment).
        #expect(try rendered(#"<!--><a href="https://a.com">"#) == #"<!--><a href="[https://a.com]">"#)
        #expect(try rendered(#"<!-- x --><a href="https://a.com">"#) == #"<!-- x --><a href="[https://a.com]">"#)
        #expect(try rendered(#"<script>x</script ><a href="https://a.com">"#) == #"<script>x</script ><a href="[https://a.com]">"#)
        // The summary says why.
        let summary = try Fixtures.rewrite(#"<a class="x untracked" href="https://a.com">a</a><a href="mailto:m@x.y">m</a>"#).links
        #expect(summary.map(\.reason) == [#"opted out (class="untracked")"#, "mailto link"])
    }

    @Test func noTrackingSwitchesEveryLinkOff() throws {
        var options = Fixtures.options()
        options.tracking = false
        let html = #"<a href="https://a.com">a</a> {% cio_link url: "https://b.com" %}"#
        let result = try Fixtures.rewrite(html, options)
        #expect(String(decoding: result.body, as: UTF8.self) == #"<a href="https://a.com">a</a> https://b.com"#)
        #expect(result.links.allSatisfy { !$0.tracked && $0.reason == "tracking is off for this message" })
    }

    @Test func entitiesAreDecodedOnceAndEscapedBack() throws {
        let result = try Fixtures.rewrite(#"<a href="https://a.com/?x=1&amp;y=2&amp;amp;z=&#37;41&#x26;w&copy=3">"#)
        #expect(result.links.first?.destination == "https://a.com/?x=1&y=2&amp;z=%41&w&copy=3")
        #expect(result.links.first?.tracked == true)
        // A base with an ampersand comes back escaped for the attribute.
        var options = Fixtures.options()
        options.baseURL = "https://t.example.com/a&b"
        let escaped = try Fixtures.rewrite(#"<a href='https://a.com'>"#, options)
        #expect(String(decoding: escaped.body, as: UTF8.self).hasPrefix("<a href='https://t.example.com/a&amp;b/c/"))
    }

    @Test func linkIDsAndURLParameters() throws {
        var options = Fixtures.options()
        options.urlParameters = [URLParameter(key: "utm_source", value: "news letter"), URLParameter(key: "utm_medium", value: "email")]
        let result = try Fixtures.rewrite(
            #"<a data-link-id="hero &amp; co" href="https://a.com/p?x#frag">x</a><a href="https://a.com/q?utm_source=mine">y</a>"#, options)
        #expect(result.links[0].id == "hero & co")
        #expect(result.links[0].destination == "https://a.com/p?x&utm_source=news%20letter&utm_medium=email#frag")
        #expect(result.links[1].id == result.links[1].destination, "without data-link-id the id is the destination")
        #expect(result.links[1].destination == "https://a.com/q?utm_source=mine&utm_medium=email", "the link's own value wins")
        let token = try Fixtures.ring.verify(result.links[0].trackedURL!.split(separator: "/").last!).get()
        #expect(token.linkID == "hero & co")
        #expect(token.deliveryID == "d1" && token.customerID == "c1" && token.sourceKind == .newsletter && token.sourceID == "n1")
    }

    @Test func sensitiveLinksStayUntrackedUnlessForced() throws {
        let html =
            #"<a href="https://x.com/reset-password?t=1">r</a><a href="https://s3.aws.com/f.pdf?X-Amz-Signature=ab&X-Amz-Expires=60">f</a><a data-clickd-track="force" href="https://x.com/magic-link/abc">m</a>"#
        let result = try Fixtures.rewrite(html)
        #expect(result.links.map(\.tracked) == [false, false, true])
        #expect(result.warnings.count == 2)
        var options = Fixtures.options()
        options.trackSensitive = true
        #expect(try Fixtures.rewrite(html, options).links.allSatisfy(\.tracked))
    }

    @Test func warnsAboutPersonalDataAndHTTPBase() throws {
        var options = Fixtures.options()
        options.customerID = "jane@example.com"
        options.baseURL = "http://t.example.com"
        let warnings = try Fixtures.rewrite("", options).warnings
        #expect(warnings.contains { $0.contains("customer id 'jane@example.com' looks like an email address") })
        #expect(warnings.contains { $0.contains("HSTS") })
        options.customerID = "+44 7700 900123"
        #expect(try Fixtures.rewrite("", options).warnings.contains { $0.contains("phone number") })
    }

    /// Malformed and random HTML: never a crash, and every byte outside a rewritten href
    /// value is kept: putting each destination back where its tracked URL stands gives
    /// the input again.
    @Test func malformedHTMLLosesNoBytes() throws {
        var rng = SplitMix64(seed: 5)
        let pieces = [
            "<a", " href=", "\"https://a.com/x\"", "'", "\"", ">", "<", "<!--", "-->", "<script>", "</script>", "<![CDATA[", "]]>",
            "&amp;", "text", " ", "\n", "=", "/", "é", "{% if x %}", "%}", "</a>", "<style>", "</style", "<!", "<?", "<a ",
            "<a href=\"https://a.com/x\">", "<a class='x' href=\"https://a.com/x\" ",
        ]
        var trackedSomewhere = 0
        for _ in 0..<3000 {
            let html = (0..<Int.random(in: 1...30, using: &rng)).map { _ in pieces.randomElement(using: &rng)! }.joined()
            let result = try Fixtures.rewrite(html)
            var body = String(decoding: result.body, as: UTF8.self)
            for link in result.links {
                guard let tracked = link.trackedURL else { continue }
                trackedSomewhere += 1
                #expect(Fixtures.destination(of: tracked) == link.destination)
                body = body.replacingOccurrences(of: tracked, with: link.destination)
            }
            #expect(body == html, "\(html)")
        }
        #expect(trackedSomewhere > 100)
        // Truncations of a real message at every offset.
        let email = EmailCorpus.newsletter
        for cut in stride(from: 0, through: email.utf8.count, by: 7) {
            let prefix = String(decoding: Array(email.utf8)[0..<cut], as: UTF8.self)
            var off = Fixtures.options()
            off.tracking = false
            #expect(try Fixtures.rewrite(prefix, off).body == Array(prefix.utf8))
        }
    }
}

/// Issue 12: ids with control characters (a NUL stopped ingestion for good) and
/// destinations too long for the edge (a working link became a dead one).
@Suite struct LinkRefusalTests {
    @Test(arguments: ["a\u{0}b", "tab\there", "\u{7f}", "c1\u{85}", "line\n"])
    func aLinkIDWithAControlCharacterLeavesTheLinkUntracked(_ id: String) throws {
        let attribute = HTMLEntities.escapeAttribute(id)
        let html = "<a data-link-id=\"\(attribute)\" href=\"https://a.com/x\">x</a>"
        let result = try Fixtures.rewrite(html)
        #expect(result.links.count == 1 && !result.links[0].tracked)
        #expect(String(decoding: result.body, as: UTF8.self) == html, "the link stays as written")
        #expect(result.warnings.contains { $0.contains("control character U+") }, "\(result.warnings)")
    }

    @Test func messageIDsWithAControlCharacterAreRefused() throws {
        for (delivery, customer, source) in [("d\u{0}", "c", "s"), ("d", "c\u{0}1", "s"), ("d", "c", "s\u{1b}")] {
            var options = Fixtures.options()
            (options.deliveryID, options.customerID, options.sourceID) = (delivery, customer, source)
            #expect(options.idProblem?.contains("control character") == true)
            let result = try Fixtures.rewrite("<a href=\"https://a.com/x\">x</a>", options)
            #expect(result.links.allSatisfy { !$0.tracked }, "the rewriter itself signs nothing for such a message")
            let request = try JSONDecoder().decode(
                MessageRequest.self,
                from: Data(
                    """
                    {"body": "x", "type": "email", "delivery": \(json(delivery)), "customer": \(json(customer)), "campaign": \(json(source))}
                    """.utf8))
            #expect(throws: MessageRequestError.self) { try request.options(base: "https://t.example.com", issuedAt: 1) }
        }
        // Ordinary non-ASCII ids are fine.
        var options = Fixtures.options()
        options.customerID = "клиент-€-😀"
        #expect(options.idProblem == nil)
    }

    func json(_ text: String) -> String { String(decoding: try! JSONEncoder().encode(text), as: UTF8.self) }

    /// A token signed before this rule (any holder of the key could make one) is refused
    /// by verification: the edge answers 404 and counts it, and nothing reaches the log.
    @Test func aSignedTokenWithAControlCharacterInAnIDDoesNotVerify() throws {
        for id in ["c\u{0}", "\u{1f}", "x\u{9f}"] {
            var token = Fixtures.token()
            token.customerID = id
            let text = KeyRing.sign(token, with: Fixtures.ring.signingKey!)
            #expect(Fixtures.ring.verify(text) == .failure(.invalidField("control character in an id")))
        }
        var token = Fixtures.token()
        token.destination = "https://a.com/\u{7f}"  // destinations are checked by the edge itself (unsafe_destination)
        #expect((try? Fixtures.ring.verify(KeyRing.sign(token, with: Fixtures.ring.signingKey!)).get()) != nil)
    }

    @Test func aDestinationTooLongForTheEdgeIsLeftUntrackedWithAWarning() throws {
        // The longest destination that still fits is tracked; one byte more is not.
        let key = Fixtures.ring.signingKey!
        var length = 12_000
        func token(_ n: Int) -> LinkToken { Fixtures.token("https://a.com/" + String(repeating: "p", count: n)) }
        while KeyRing.sign(token(length + 1), with: key).utf8.count <= TokenCodec.maxTokenLength { length += 1 }
        for (n, tracked) in [(length, true), (length + 1, false), (20_000, false)] {
            let url = "https://a.com/" + String(repeating: "p", count: n)
            var options = Fixtures.options()
            (options.deliveryID, options.customerID, options.sourceID) = ("dlv_01HXYZ9K2M4N6P8Q", "cust_48213", "17")
            options.sourceKind = .campaign
            let result = try Fixtures.rewrite("<a href=\"\(url)\">x</a>", options)
            #expect(result.links[0].tracked == tracked, "\(n)")
            if tracked {
                #expect(Fixtures.destination(of: result.links[0].trackedURL!) == url)
            } else {
                #expect(result.links[0].reason?.hasPrefix(MessageRewriter.tooLongReason) == true)
                #expect(result.warnings.count == 1 && result.warnings[0].contains("the edge accepts \(TokenCodec.maxTokenLength)"))
                #expect(String(decoding: result.body, as: UTF8.self) == "<a href=\"\(url)\">x</a>")
            }
        }
    }
}
