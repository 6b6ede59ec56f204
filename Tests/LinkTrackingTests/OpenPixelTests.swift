import Foundation
import Testing

@testable import LinkTracking

/// The open pixel the email rewriter adds (docs/design/opens.md, "The pixel"): once, just
/// before the last `</body>` a browser would see, never when tracking is off, every other
/// byte as it was.
@Suite struct OpenPixelTests {
    static func options(_ type: LinkToken.MessageType = .email) -> RewriteOptions {
        var options = Fixtures.options(type)
        options.openTracking = true
        return options
    }

    /// The body with the one pixel taken out, and the pixel's URL (nil: none or several).
    static func withoutPixel(_ result: RewriteResult) -> (body: String, url: String?) {
        let body = String(decoding: result.body, as: UTF8.self)
        guard let url = result.openPixel else { return (body, nil) }
        let markup = MessageRewriter.pixelMarkup(url)
        let parts = body.components(separatedBy: markup)
        return parts.count == 2 ? (parts.joined(), url) : (body, nil)
    }

    @Test func onePixelBeforeTheLastBodyEndTagABrowserSees() throws {
        let html = """
            <html><body><p>Hi</p><a href="https://a.com/x">x</a><!-- </body> -->\
            <script>var s = "</body>";</script></BODY ></html>
            """
        let result = try MessageRewriter(keyRing: Fixtures.ring).rewrite(Array(html.utf8), options: Self.options())
        let url = try #require(result.openPixel)
        let body = String(decoding: result.body, as: UTF8.self)
        #expect(body.hasSuffix(MessageRewriter.pixelMarkup(url) + "</BODY ></html>"))
        #expect(body.components(separatedBy: "/o/").count == 2, "one pixel")
        // Everything else is what the rewrite without the pixel gives, byte for byte.
        let plain = try MessageRewriter(keyRing: Fixtures.ring).rewrite(Array(html.utf8), options: Fixtures.options())
        #expect(Self.withoutPixel(result).body == String(decoding: plain.body, as: UTF8.self))
        #expect(plain.openPixel == nil && result.links == plain.links)
        // Its token is the message's open token.
        #expect(url.hasPrefix("https://t.example.com/o/"))
        let token = try Fixtures.ring.verifyOpen(String(url.dropFirst("https://t.example.com/o/".count))).get().token
        #expect(
            token
                == OpenToken(
                    deliveryID: "d1", customerID: "c1", sourceKind: .newsletter, sourceID: "n1", messageType: .email, issuedAt: 1_790_000_000))
    }

    @Test func theLastOfSeveralBodyEndsAndTheEndWithoutOne() throws {
        let rewriter = MessageRewriter(keyRing: Fixtures.ring)
        let twice = try rewriter.rewrite(Array("<body>a</body>b</body><a href=\"https://a.com/after\">c</a>".utf8), options: Self.options())
        let url = try #require(twice.openPixel)
        let body = String(decoding: twice.body, as: UTF8.self)
        #expect(body.hasPrefix("<body>a</body>b" + MessageRewriter.pixelMarkup(url) + "</body><a href=\"https://t.example.com/c/"))
        let bare = try rewriter.rewrite(Array("Plain text, no tags".utf8), options: Self.options())
        #expect(String(decoding: bare.body, as: UTF8.self) == "Plain text, no tags" + MessageRewriter.pixelMarkup(bare.openPixel!))
        // An unclosed tag, comment or script at the end would swallow the pixel (a tag could
        // even close over it): the pixel goes before it, and it stays as it was.
        for (text, open) in [
            ("<p>cut <a href=\"https://a.com", "<a href=\"https://a.com"), ("<p>x</p><!-- never closed >", "<!-- never closed >"),
            ("<p>x</p><script>var a = 1", "<script>var a = 1"), ("a<!-->b", ""), ("a<!doctype html", "<!doctype html"),
        ] {
            let result = try rewriter.rewrite(Array(text.utf8), options: Self.options())
            let body = String(decoding: result.body, as: UTF8.self)
            #expect(body.hasSuffix(MessageRewriter.pixelMarkup(result.openPixel!) + open), "\(text) → \(body)")
        }
    }

    @Test func noPixelWhenTrackingIsOffOrOneIsThere() throws {
        let rewriter = MessageRewriter(keyRing: Fixtures.ring)
        let html = Array("<body><a href=\"https://a.com/x\">x</a></body>".utf8)
        var off = Self.options()
        off.tracking = false
        let untracked = try rewriter.rewrite(html, options: off)
        #expect(untracked.body == html && untracked.openPixel == nil, "tracking off: no pixel, no byte changed")
        var noOpens = Self.options()
        noOpens.openTracking = false
        let linksOnly = try rewriter.rewrite(html, options: noOpens)
        #expect(linksOnly.openPixel == nil && linksOnly.links.first?.tracked == true)
        let sms = try rewriter.rewrite(Array("Hi {% cio_link url: \"https://a.com\" track: true %}".utf8), options: Self.options(.sms))
        #expect(sms.openPixel == nil && !String(decoding: sms.body, as: UTF8.self).contains("<img"))
        // A message holding the pixel already (rewritten before, entities and case as written) gets no second.
        let once = try rewriter.rewrite(html, options: Self.options())
        let again = try rewriter.rewrite(once.body, options: Self.options())
        #expect(again.openPixel == nil && again.body == once.body)
        let escaped = Array("<body><IMG SRC='https://t.example.com&#x2F;o/abc'></body>".utf8)
        #expect(try rewriter.rewrite(escaped, options: Self.options()).body == escaped)
        // Another domain's /o/ image is not ours.
        let foreign = try rewriter.rewrite(Array("<img src=\"https://other.example/o/abc\">".utf8), options: Self.options())
        #expect(foreign.openPixel != nil)
        // No active key: no pixel, and a warning.
        let retiredOnly = try KeyRing(keys: [KeyRing.makeKey(kid: "gone", secret: Fixtures.secretA, created: "x", retired: true)])
        let noKey = try MessageRewriter(keyRing: retiredOnly).rewrite(html, options: Self.options())
        #expect(noKey.openPixel == nil && noKey.warnings.contains("no open pixel: every key in the key ring is retired"))
    }
}
