import Foundation
import Testing

@testable import LinkTracking

@Suite struct LinkTagTests {
    func tags(_ text: String) throws -> [LinkTag] {
        try Array(text.utf8).withUnsafeBufferPointer { (raw) throws(RewriteError) in try LinkTagParser.parse(raw) }
    }

    @Test func parsesEverySpelling() throws {
        let forms = [
            #"{% cio_link url: "https://a.com/x" track: true url_params: true %}"#,
            #"{%cio_link url:"https://a.com/x"%}"#,
            #"{%- cio_link   url: 'https://a.com/x'   -%}"#,
            "{% cio_link\n  url: https://a.com/x\n  track: true\n%}",
            #"{% cio_link track: true, url_params: true, url: "https://a.com/x" %}"#,
        ]
        for form in forms {
            let parsed = try tags(form)
            #expect(parsed.count == 1, "\(form)")
            #expect(parsed.first?.url == "https://a.com/x", "\(form)")
            #expect(parsed.first?.track == true && parsed.first?.urlParams == true, "\(form)")
            #expect(parsed.first?.range == 0..<form.utf8.count, "\(form)")
        }
        let full = try tags(#"x {% cio_link link_id: "promo" url_params: false track: FALSE url: "https://a.com" %} y"#)[0]
        #expect(full.linkID == "promo" && !full.track && !full.urlParams)
        #expect(try tags("{% if x %}{{ name }}{% endif %} {% cio_linkage %}").isEmpty)
    }

    @Test func malformedTagsAreErrorsWithLineAndColumn() {
        let bad: [(String, Int, Int, String)] = [
            ("hi\n  {% cio_link track: true %}", 2, 3, "no url"),
            ("{% cio_link url: \"https://a.com\" ", 1, 1, "not closed"),
            ("ab {% cio_link url: https://a.com colour: red %}", 1, 35, "unknown argument 'colour'"),
            ("{% cio_link url: \"https://a.com %}", 1, 18, "unterminated string"),
            ("{% cio_link url: https://a.com track: maybe %}", 1, 39, "must be true or false"),
            ("{% cio_link url https://a.com %}", 1, 17, "expected ':'"),
            ("é {% cio_link url: x url: y %}", 1, 22, "given twice"),
            ("{% cio_link url: %}", 1, 18, "missing value"),
        ]
        for (text, line, column, message) in bad {
            do {
                _ = try tags(text)
                Issue.record("accepted: \(text)")
            } catch let error as RewriteError {
                #expect(error.line == line && error.column == column, "\(text): \(error)")
                #expect(error.message.contains(message), "\(text): \(error)")
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
    }

    @Test func tagsInEveryMessageType() throws {
        for type in LinkToken.MessageType.allCases {
            var options = Fixtures.options(type)
            options.urlParameters = [URLParameter(key: "utm_source", value: "sms")]
            let text =
                #"Your order: {% cio_link url: "https://a.com/o?id=1&x" link_id: "order" %} — or {% cio_link url: "https://a.com/help" track: false %}"#
            let result = try Fixtures.rewrite(text, options)
            let body = String(decoding: result.body, as: UTF8.self)
            #expect(result.links.count == 2)
            #expect(result.links[0].tracked && result.links[0].id == "order")
            #expect(result.links[0].destination == "https://a.com/o?id=1&x&utm_source=sms")
            #expect(!result.links[1].tracked && result.links[1].reason == "track: false")
            // track: false writes the plain, parameterised URL.
            #expect(body.hasSuffix(type == .email ? "https://a.com/help?utm_source=sms" : "https://a.com/help?utm_source=sms"))
            #expect(body.hasPrefix("Your order: https://t.example.com/c/"))
            let token = try Fixtures.ring.verify(result.links[0].trackedURL!.split(separator: "/").last!).get()
            #expect(token.messageType == type)
        }
        // In SMS a bare URL is not a link to track; in email an <a href> that a tag produced is not tracked twice.
        let sms = try Fixtures.rewrite("visit https://a.com", Fixtures.options(.sms))
        #expect(sms.links.isEmpty && String(decoding: sms.body, as: UTF8.self) == "visit https://a.com")
        let email = try Fixtures.rewrite(#"<a href="{% cio_link url: "https://a.com/?a=1&b=2" track: false %}">x</a>"#)
        #expect(String(decoding: email.body, as: UTF8.self) == #"<a href="https://a.com/?a=1&amp;b=2">x</a>"#)
        #expect(email.links.count == 1)
    }
}
