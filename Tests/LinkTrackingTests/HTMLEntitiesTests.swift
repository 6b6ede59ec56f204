import Testing

@testable import LinkTracking

/// Issue 12, item 13: only 24 named references were decoded, so an href with `&eacute;`
/// (or any of the standard's other names) was signed with the reference left literal and
/// the person landed on the wrong URL. Decoding is now the WHATWG tokenizer's, in an
/// attribute value.
@Suite struct HTMLEntitiesTests {
    static func decode(_ text: String) -> String { HTMLEntities.decode(Array(text.utf8)[...]) }

    @Test func theWholeNamedTableIsThere() {
        #expect(HTMLEntities.named.count == 2231)
        // A sample of the standard's table (https://html.spec.whatwg.org/multipage/named-characters.html).
        let sample: [(String, String)] = [
            ("eacute;", "é"), ("Eacute;", "É"), ("amp;", "&"), ("amp", "&"), ("AMP;", "&"), ("nbsp;", "\u{A0}"),
            ("euro;", "€"), ("hellip;", "…"), ("rsquo;", "’"), ("Tab;", "\t"), ("NewLine;", "\n"), ("zwnj;", "\u{200C}"),
            ("CounterClockwiseContourIntegral;", "∳"), ("NotNestedGreaterGreater;", "⪢\u{338}"), ("fjlig;", "fj"),
            ("bne;", "=\u{20E5}"), ("copy", "©"), ("not", "¬"), ("yuml", "ÿ"), ("Afr;", "\u{1D504}"),
        ]
        for (name, expected) in sample {
            #expect(HTMLEntities.named[name] == expected, "\(name)")
            #expect(Self.decode("https://a.com/?q=&\(name)") == "https://a.com/?q=" + expected, "\(name)")
        }
        // Every name of the table decodes to its text, followed by a character that ends it.
        for (name, text) in HTMLEntities.named {
            #expect(Self.decode("&" + name + " ") == text + " ", "\(name)")
        }
    }

    @Test func legacyNamesWithoutTheSemicolon() {
        #expect(Self.decode("https://a.com/?a=1&copy=2") == "https://a.com/?a=1&copy=2", "before = : literal in an attribute")
        #expect(Self.decode("https://a.com/?a=1&copyx") == "https://a.com/?a=1&copyx", "before an alphanumeric: literal")
        #expect(Self.decode("https://a.com/?a=1&copy;x") == "https://a.com/?a=1©x")
        #expect(Self.decode("x&copy.y") == "x©.y", "a legacy name ends at any other character")
        #expect(Self.decode("x&amp") == "x&")
        #expect(Self.decode("&notin;") == "∉" && Self.decode("&notit;") == "&notit;", "longest match; in an attribute `not` before `i` stays")
        #expect(Self.decode("&noti;") == "&noti;")
        #expect(Self.decode("&hellip") == "&hellip" && Self.decode("&eacute") == "é", "hellip needs its semicolon; eacute is a legacy name")
        #expect(Self.decode("&unknown;") == "&unknown;" && Self.decode("& amp;") == "& amp;" && Self.decode("&") == "&")
        #expect(Self.decode("&&amp;&") == "&&&")
    }

    @Test func numericReferences() {
        #expect(Self.decode("&#37;41&#x26;&#X2f;") == "%41&/")
        #expect(Self.decode("&#233") == "é" && Self.decode("&#xe9x") == "éx", "the semicolon is optional")
        #expect(Self.decode("&#0;") == "\u{FFFD}" && Self.decode("&#xD800;") == "\u{FFFD}" && Self.decode("&#x110000;") == "\u{FFFD}")
        #expect(Self.decode("&#99999999999999999999;") == "\u{FFFD}", "no overflow")
        #expect(Self.decode("&#x80;&#x99;&#150;") == "€™–", "0x80–0x9F are Windows-1252")
        #expect(Self.decode("&#x81;") == "\u{81}", "unassigned in Windows-1252: kept")
        #expect(Self.decode("&#;") == "&#;" && Self.decode("&#x;") == "&#x;" && Self.decode("&#xg") == "&#xg")
    }

    /// Through the rewriter: the person lands on the URL the browser would have opened.
    @Test func hrefsAreSignedAsTheBrowserReadsThem() throws {
        let result = try Fixtures.rewrite(#"<a href="https://a.com/caf&eacute;?x=1&amp;y=&hellip;&z=&#x80;">x</a>"#)
        #expect(result.links.first?.destination == "https://a.com/café?x=1&y=…&z=€")
    }
}
