import ClickdTestSupport
import Foundation
import Testing

@testable import LinkTracking

/// The cases that break other trackers: what a person reaches is byte for byte the
/// destination that was signed.
@Suite struct URLFidelityTests {
    static let corpus = URLCorpus.destinations

    @Test(arguments: corpus)
    func signedDestinationComesBackExactly(url: String) throws {
        #expect(url.utf8.count < 9000)
        let token = Fixtures.token(url)
        let verified = try Fixtures.ring.verify(try Fixtures.ring.sign(token)).get()
        #expect(Array(verified.destination.utf8) == Array(url.utf8))
        // The same URL in an email href (escaped for HTML) comes back decoded exactly once.
        let html = "<a href=\"\(HTMLEntities.escapeAttribute(url))\">x</a>"
        let result = try Fixtures.rewrite(html)
        #expect(result.links.count == 1)
        #expect(result.links[0].tracked)
        #expect(Fixtures.destination(of: result.links[0].trackedURL!).map { Array($0.utf8) } == Array(url.utf8))
    }

    @Test func neverTracked() throws {
        for url in [
            "javascript:alert(1)", "JavaScript:void(0)", "data:text/html;base64,PHNjcmlwdD4=", "vbscript:x", "mailto:a@b.c",
            "tel:+1", "#x", "/a", "a/b", "//example.com/a", "https://",
        ] {
            #expect(LinkPolicy.untrackableReason(url) != nil, "\(url)")
            let result = try Fixtures.rewrite("<a href=\"\(url)\">x</a> {% cio_link url: \"\(url)\" %}")
            #expect(result.links.allSatisfy { !$0.tracked }, "\(url)")
        }
    }

    @Test func urlParametersKeepEverythingThere() {
        let p = [(key: "utm_source", value: "news"), (key: "utm_campaign", value: "spring sale/2026")]
        let cases: [(String, String)] = [
            ("https://a.com", "https://a.com?utm_source=news&utm_campaign=spring%20sale%2F2026"),
            ("https://a.com/p?x", "https://a.com/p?x&utm_source=news&utm_campaign=spring%20sale%2F2026"),
            ("https://a.com/p?x&y=1#f?g", "https://a.com/p?x&y=1&utm_source=news&utm_campaign=spring%20sale%2F2026#f?g"),
            ("https://a.com/p?", "https://a.com/p?utm_source=news&utm_campaign=spring%20sale%2F2026"),
            ("https://a.com/p?a=%2F&", "https://a.com/p?a=%2F&utm_source=news&utm_campaign=spring%20sale%2F2026"),
            ("https://a.com/p?utm_source=own#x", "https://a.com/p?utm_source=own&utm_campaign=spring%20sale%2F2026#x"),
        ]
        for (url, expected) in cases { #expect(URLParameters.append(p, to: url) == expected, "\(url)") }
        #expect(URLParameters.append([], to: "https://a.com/?x#y") == "https://a.com/?x#y")
    }

    @Test func sensitiveAndPersonal() {
        for url in [
            "https://a.com/reset-password/abc", "https://a.com/users/password/edit?reset_token=x", "https://a.com/login?token=abc",
            "https://b.s3.amazonaws.com/f.pdf?X-Amz-Algorithm=AWS4&X-Amz-Signature=ff", "https://cdn.com/f?Expires=1&Signature=x&Key-Pair-Id=k",
            "https://a.com/auth/magic-link?code=1", "https://a.com/one-time/abc",
        ] {
            #expect(LinkPolicy.sensitiveReason(url) != nil, "\(url)")
        }
        for url in ["https://a.com/products/1?color=red", "https://a.com/shop?tokenized=no"] {
            #expect(LinkPolicy.sensitiveReason(url) == nil, "\(url)")
        }
        #expect(LinkPolicy.personalDataReason("jane.doe@example.com") != nil)
        #expect(LinkPolicy.personalDataReason("+14155550123") != nil)
        #expect(LinkPolicy.personalDataReason("cust_48213") == nil)
        #expect(LinkPolicy.personalDataReason("dlv_01HXYZ9K2M4N6P8Q") == nil)
    }
}
