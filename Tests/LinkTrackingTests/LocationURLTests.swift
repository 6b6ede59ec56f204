import ClickdTestSupport
import Testing

@testable import LinkTracking

/// The edge's Location for non-ASCII destinations (issue 29): the URL Standard's
/// serialization, ASCII only. The expected values are Chromium's `new URL(s).href`
/// (LocationURLBrowserTests compares the whole corpus with a running Chromium).
@Suite struct LocationURLTests {
    @Test func nonASCIIDestinationsAreSerializedAsABrowserWould() {
        let cases: [(String, String)] = [
            ("https://bücher.example/straße?q=größe", "https://xn--bcher-kva.example/stra%C3%9Fe?q=gr%C3%B6%C3%9Fe"),
            (
                "https://例え.テスト/パス?クエリ=値#断片",
                "https://xn--r8jz45g.xn--zckzah/%E3%83%91%E3%82%B9?%E3%82%AF%E3%82%A8%E3%83%AA=%E5%80%A4#%E6%96%AD%E7%89%87"
            ),
            ("https://a.example/café", "https://a.example/caf%C3%A9"),
            ("https://example.com/emoji/😀?x=🎉", "https://example.com/emoji/%F0%9F%98%80?x=%F0%9F%8E%89"),
            ("https://ＥＸＡＭＰＬＥ．com/ä", "https://example.com/%C3%A4"),
            ("https://0x7f.1/é", "https://127.0.0.1/%C3%A9"),
            ("https://[2001:DB8:0:0:0:0:0:1]:443/é", "https://[2001:db8::1]/%C3%A9"),
            ("https://user:pä@ex.com/é", "https://user:p%C3%A4@ex.com/%C3%A9"),
            ("https://ex.com/a/./b/../c/é", "https://ex.com/a/c/%C3%A9"),
            ("https://ex.com:0443/é", "https://ex.com/%C3%A9"),
            ("https://ex.com/é?a='\"<>`#f\"<>`", "https://ex.com/%C3%A9?a=%27%22%3C%3E`#f%22%3C%3E%60"),
            ("https://ex.com\\é\\x", "https://ex.com/%C3%A9/x"),
            ("https://faß.de/é", "https://xn--fa-hia.de/%C3%A9"),
            ("https://ex.com/%zz/é", "https://ex.com/%zz/%C3%A9"),
            ("https://münchen.de:8080/é", "https://xn--mnchen-3ya.de:8080/%C3%A9"),
        ]
        for (destination, expected) in cases {
            #expect(LocationURL.header(for: destination) == expected, "\(destination)")
        }
    }

    /// ASCII destinations are sent as signed, byte for byte (the hot path touches nothing).
    @Test func asciiDestinationsAreSentAsSigned() {
        for destination in URLCorpus.destinations where destination.utf8.allSatisfy({ $0 < 0x80 }) {
            #expect(LocationURL.header(for: destination) == destination)
        }
    }

    /// What the URL parser refuses (a host it cannot parse, a port out of range) still gets
    /// an ASCII Location: the non-ASCII bytes percent-encoded. Every Location is ASCII.
    @Test func unparseableDestinationsStillGetAnASCIILocation() {
        #expect(LocationURL.serialize("https://ex.com:99999/é") == nil)
        #expect(LocationURL.header(for: "https://ex.com:99999/é") == "https://ex.com:99999/%C3%A9")
        #expect(LocationURL.serialize("https://[::1/é") == nil)
        #expect(LocationURL.serialize("https://ex<ample.com/é") == nil)
        #expect(LocationURL.serialize("https://192.168.0.257/é") == nil)
        #expect(LocationURL.serialize("ftp://ex.com/é") == nil)
        for destination in URLCorpus.destinations + URLCorpus.nonASCII {
            #expect(LocationURL.header(for: destination).utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "\(destination)")
        }
    }

    /// RFC 3492's sample strings (section 7.1).
    @Test func punycodeMatchesRFC3492() {
        let samples: [(String, String)] = [
            (
                "\u{0644}\u{064A}\u{0647}\u{0645}\u{0627}\u{0628}\u{062A}\u{0643}\u{0644}\u{0645}\u{0648}\u{0634}\u{0639}\u{0631}\u{0628}\u{064A}\u{061F}",
                "egbpdaj6bu4bxfgehfvwxn"
            ),
            ("\u{4ED6}\u{4EEC}\u{4E3A}\u{4EC0}\u{4E48}\u{4E0D}\u{8BF4}\u{4E2D}\u{6587}", "ihqwcrb4cv8a8dqg056pqjye"),
            ("3\u{5E74}B\u{7D44}\u{91D1}\u{516B}\u{5148}\u{751F}", "3B-ww4c5e180e575a65lsy2b"),
            ("bücher", "bcher-kva"),
        ]
        for (text, encoded) in samples {
            #expect(LocationURL.punycode(Array(text.unicodeScalars)) == encoded)
        }
    }
}
