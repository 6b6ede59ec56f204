import LinkTracking
import Testing

@Suite struct ASCIITests {
    func equal(_ bytes: [UInt8], _ lowercase: StaticString) -> Bool {
        bytes.withUnsafeBytes { ASCII.equalsIgnoringCase($0, lowercase) }
    }

    @Test func lettersFoldAndNothingElseDoes() {
        #expect(equal(Array("User-Agent".utf8), "user-agent"))
        #expect(equal(Array("X-FORWARDED-FOR".utf8), "x-forwarded-for"))
        #expect(!equal(Array("user-agent ".utf8), "user-agent"))
        // `| 0x20` would make CR (0x0d) a `-` (0x2d), SUB (0x1a) a `:` (0x3a), `@` a backquote.
        #expect(!equal([0x75, 0x0d, 0x61], "u-a"))
        #expect(!equal([0x73, 0x1a], "s:"))
        #expect(!equal([0x40], "`"))
        for c in UInt8(0)...255 {
            let expected = c == 0x6b || c == 0x4b  // "k" and "K" only
            #expect(equal([c], "k") == expected)
        }
    }

    @Test func spaceIsHTMLWhitespace() {
        #expect((UInt8(0)...255).filter(ASCII.isSpace) == [0x09, 0x0a, 0x0c, 0x0d, 0x20])
        #expect((UInt8(0)...255).filter(ASCII.isLetter).count == 52)
    }
}
