/// Finds the tags of an HTML document (the `<a>` start tags, the `<img>`s, the last
/// `</body>`) the way a browser's tokenizer does,
/// without building a tree: comments, `<script>`/`<style>` (and the other raw-text
/// elements), CDATA sections, doctypes and processing instructions are skipped; a `<` that
/// does not start a tag is text; an unterminated tag ends the scan (nothing inside it is
/// touched). Byte offsets only: the caller rewrites attribute values and copies every
/// other byte unchanged.
public enum HTMLScanner {
    public struct Attribute: Sendable {
        public var name: Range<Int>
        /// The value's bytes, without quotes; nil for an attribute with no value.
        public var value: Range<Int>?
        /// `"` or `'`, or nil for an unquoted value.
        public var quote: UInt8?
    }

    public struct Anchor: Sendable {
        public var range: Range<Int>
        public var attributes: [Attribute]
    }

    static let rawTextElements: [[UInt8]] = ["script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"]
        .map { Array($0.utf8) }

    /// A start or end tag: its name's bytes, where it is, its attributes.
    public struct Tag: Sendable {
        public var name: Range<Int>
        public var isEnd: Bool
        public var range: Range<Int>
        public var attributes: [Attribute]
    }

    /// Calls `visit` for each `<a …>` start tag, in order.
    public static func anchors(_ bytes: UnsafeBufferPointer<UInt8>, visit: (Anchor) -> Void) {
        tags(bytes) { tag in
            if !tag.isEnd, tag.name.count == 1, bytes[tag.name.lowerBound] | 0x20 == UInt8(ascii: "a") {
                visit(Anchor(range: tag.range, attributes: tag.attributes))
            }
        }
    }

    /// Calls `visit` for each start and end tag outside comments, raw text and the like, in
    /// order; an unterminated tag ends the scan. Returns where the document's unclosed end
    /// begins — the `<` of an unterminated tag, comment, CDATA section, doctype or raw-text
    /// element (what a browser would not show) — or the document's length when nothing is
    /// left open: content inserted there stays outside it.
    @discardableResult
    public static func tags(_ bytes: UnsafeBufferPointer<UInt8>, visit: (Tag) -> Void) -> Int {
        let n = bytes.count
        var i = 0
        var attributes: [Attribute] = []
        /// Whether a construct starting at `lt` and scanned to `end` was closed by `terminator`.
        func closed(_ end: Int, by terminator: StaticString) -> Bool {
            end < n || (end >= terminator.utf8CodeUnitCount && hasPrefix(bytes, end - terminator.utf8CodeUnitCount, terminator))
        }
        while i < n {
            // Find the next '<'.
            guard let lt = nextIndex(of: UInt8(ascii: "<"), in: bytes, from: i) else { return n }
            i = lt + 1
            guard i < n else { return n }
            let c = bytes[i]
            if c == UInt8(ascii: "!") {
                if hasPrefix(bytes, i + 1, "--") {
                    i = endOfComment(bytes, from: i + 3)
                    if !closed(i, by: "-->") { return lt }
                } else if hasPrefix(bytes, i + 1, "[CDATA[") {
                    i = end(of: "]]>", in: bytes, from: i + 8)
                    if !closed(i, by: "]]>") { return lt }
                } else {
                    i = end(of: ">", in: bytes, from: i)
                    if !closed(i, by: ">") { return lt }
                }
                continue
            }
            if c == UInt8(ascii: "?") {
                i = end(of: ">", in: bytes, from: i)
                if !closed(i, by: ">") { return lt }
                continue
            }
            let isEnd = c == UInt8(ascii: "/")
            let nameStart = isEnd ? i + 1 : i
            guard nameStart < n, ASCII.isLetter(bytes[nameStart]) else { continue }  // text, not a tag
            var j = nameStart
            while j < n, !ASCII.isSpace(bytes[j]), bytes[j] != UInt8(ascii: "/"), bytes[j] != UInt8(ascii: ">") { j += 1 }
            let name = nameStart..<j
            attributes.removeAll(keepingCapacity: true)
            guard let tagEnd = parseAttributes(bytes, from: j, into: &attributes) else { return lt }  // unterminated tag
            i = tagEnd
            visit(Tag(name: name, isEnd: isEnd, range: lt..<tagEnd, attributes: attributes))
            if !isEnd, let raw = rawTextElements.first(where: { equalsIgnoringCase(bytes, name, $0) }) {
                i = endOfRawText(bytes, from: i, element: raw)
                if i == n { return lt }  // no end tag: the rest is the element's text
            }
        }
        return n
    }

    /// Whether `tag`'s name is `lower` (ASCII case-insensitive).
    public static func tag(_ tag: Tag, in bytes: UnsafeBufferPointer<UInt8>, isNamed lower: StaticString) -> Bool {
        let name = UnsafeBufferPointer(start: lower.utf8Start, count: lower.utf8CodeUnitCount)
        return tag.name.count == name.count && zip(tag.name, name).allSatisfy { i, c in bytes[i] | 0x20 == c }
    }

    /// Parses attributes from `from` to the tag's closing `>`; returns the offset after it,
    /// or nil when the document ends first.
    static func parseAttributes(_ bytes: UnsafeBufferPointer<UInt8>, from: Int, into attributes: inout [Attribute]) -> Int? {
        let n = bytes.count
        var j = from
        while true {
            while j < n, ASCII.isSpace(bytes[j]) || bytes[j] == UInt8(ascii: "/") { j += 1 }
            guard j < n else { return nil }
            if bytes[j] == UInt8(ascii: ">") { return j + 1 }
            let nameStart = j
            j += 1  // a name may start with '='
            while j < n, !ASCII.isSpace(bytes[j]), bytes[j] != UInt8(ascii: "/"), bytes[j] != UInt8(ascii: ">"), bytes[j] != UInt8(ascii: "=") {
                j += 1
            }
            let name = nameStart..<j
            var k = j
            while k < n, ASCII.isSpace(bytes[k]) { k += 1 }
            guard k < n, bytes[k] == UInt8(ascii: "=") else {
                attributes.append(Attribute(name: name, value: nil, quote: nil))
                continue
            }
            k += 1
            while k < n, ASCII.isSpace(bytes[k]) { k += 1 }
            guard k < n else { return nil }
            let q = bytes[k]
            if q == UInt8(ascii: "\"") || q == UInt8(ascii: "'") {
                guard let close = nextIndex(of: q, in: bytes, from: k + 1) else { return nil }
                attributes.append(Attribute(name: name, value: (k + 1)..<close, quote: q))
                j = close + 1
            } else if q == UInt8(ascii: ">") {
                attributes.append(Attribute(name: name, value: k..<k, quote: nil))
                j = k
            } else {
                var e = k
                while e < n, !ASCII.isSpace(bytes[e]), bytes[e] != UInt8(ascii: ">") { e += 1 }
                attributes.append(Attribute(name: name, value: k..<e, quote: nil))
                j = e
            }
        }
    }

    static func endOfComment(_ bytes: UnsafeBufferPointer<UInt8>, from: Int) -> Int {
        // "<!-->" and "<!--->" close at once, as in browsers.
        if hasPrefix(bytes, from, ">") { return from + 1 }
        if hasPrefix(bytes, from, "->") { return from + 2 }
        return end(of: "-->", in: bytes, from: from)
    }

    static func endOfRawText(_ bytes: UnsafeBufferPointer<UInt8>, from: Int, element: [UInt8]) -> Int {
        var i = from
        while let lt = nextIndex(of: UInt8(ascii: "<"), in: bytes, from: i) {
            let nameStart = lt + 2
            if lt + 1 < bytes.count, bytes[lt + 1] == UInt8(ascii: "/"), nameStart + element.count <= bytes.count,
                equalsIgnoringCase(bytes, nameStart..<(nameStart + element.count), element)
            {
                let after = nameStart + element.count
                if after == bytes.count || ASCII.isSpace(bytes[after]) || bytes[after] == UInt8(ascii: ">") || bytes[after] == UInt8(ascii: "/") {
                    return lt
                }
            }
            i = lt + 1
        }
        return bytes.count
    }

    /// The offset just past the first `terminator` at or after `from`, or the end.
    static func end(of terminator: StaticString, in bytes: UnsafeBufferPointer<UInt8>, from: Int) -> Int {
        let t = UnsafeBufferPointer(start: terminator.utf8Start, count: terminator.utf8CodeUnitCount)
        var i = from
        while let hit = nextIndex(of: t[0], in: bytes, from: i) {
            if hit + t.count <= bytes.count, (0..<t.count).allSatisfy({ bytes[hit + $0] == t[$0] }) { return hit + t.count }
            i = hit + 1
        }
        return bytes.count
    }

    @inline(__always)
    static func nextIndex(of byte: UInt8, in bytes: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        var i = from
        while i < bytes.count {
            if bytes[i] == byte { return i }
            i += 1
        }
        return nil
    }

    static func hasPrefix(_ bytes: UnsafeBufferPointer<UInt8>, _ at: Int, _ prefix: StaticString) -> Bool {
        let count = prefix.utf8CodeUnitCount
        guard at + count <= bytes.count else { return false }
        for k in 0..<count where bytes[at + k] != prefix.utf8Start[k] { return false }
        return true
    }

    static func equalsIgnoringCase(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ lower: [UInt8]) -> Bool {
        lower.withUnsafeBytes { ASCII.equalsIgnoringCase(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes[range])), $0) }
    }
}
