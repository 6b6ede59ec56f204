/// A `{% cio_link url: "…" track: true url_params: true link_id: "…" %}` tag: the way to
/// track links in SMS, push, webhook and Slack messages (and in email too).
public struct LinkTag: Equatable, Sendable {
    /// The bytes of the whole tag, `{%` to `%}`, in the message.
    public var range: Range<Int>
    public var url: String
    public var track: Bool = true
    public var urlParams: Bool = true
    public var linkID: String?
    /// Track even if the URL looks sensitive.
    public var force: Bool = false
}

/// A message that cannot be rewritten safely: where and why.
public struct RewriteError: Error, Equatable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String

    public var description: String { "line \(line), column \(column): \(message)" }

    /// Line and column (1-based, in characters) of byte `offset` of `bytes`.
    static func at(_ offset: Int, in bytes: UnsafeBufferPointer<UInt8>, _ message: String) -> RewriteError {
        var line = 1
        var lineStart = 0
        for i in 0..<min(offset, bytes.count) where bytes[i] == UInt8(ascii: "\n") {
            line += 1
            lineStart = i + 1
        }
        let column = String(decoding: UnsafeBufferPointer(rebasing: bytes[lineStart..<min(offset, bytes.count)]), as: UTF8.self).count + 1
        return RewriteError(line: line, column: column, message: message)
    }
}

/// Finds `cio_link` tags. Other `{% … %}` tags are not clickd's and are left alone; a
/// malformed `cio_link` tag is an error, never passed through.
public enum LinkTagParser {
    public static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws(RewriteError) -> [LinkTag] {
        var tags: [LinkTag] = []
        var i = 0
        let n = bytes.count
        while i + 1 < n {
            guard bytes[i] == UInt8(ascii: "{"), bytes[i + 1] == UInt8(ascii: "%") else {
                i += 1
                continue
            }
            let start = i
            var j = i + 2
            if j < n, bytes[j] == UInt8(ascii: "-") { j += 1 }  // Liquid's whitespace control
            skipSpace(bytes, &j)
            let nameStart = j
            while j < n, isNameByte(bytes[j]) { j += 1 }
            guard String(decoding: UnsafeBufferPointer(rebasing: bytes[nameStart..<j]), as: UTF8.self) == "cio_link" else {
                i += 2
                continue
            }
            tags.append(try parseArguments(bytes, tagStart: start, from: j))
            i = tags.last!.range.upperBound
        }
        return tags
    }

    private static func parseArguments(_ bytes: UnsafeBufferPointer<UInt8>, tagStart: Int, from: Int) throws(RewriteError) -> LinkTag {
        let n = bytes.count
        var j = from
        var tag = LinkTag(range: tagStart..<tagStart, url: "")
        var seenURL = false
        var seen: Set<String> = []
        while true {
            skipSpace(bytes, &j)
            if j < n, bytes[j] == UInt8(ascii: ",") {
                j += 1
                skipSpace(bytes, &j)
            }
            if j < n, bytes[j] == UInt8(ascii: "-"), j + 2 < n, bytes[j + 1] == UInt8(ascii: "%"), bytes[j + 2] == UInt8(ascii: "}") {
                j += 1
            }
            if j + 1 < n, bytes[j] == UInt8(ascii: "%"), bytes[j + 1] == UInt8(ascii: "}") {
                j += 2
                break
            }
            if j >= n { throw RewriteError.at(tagStart, in: bytes, "cio_link tag is not closed with %}") }
            let nameStart = j
            while j < n, isNameByte(bytes[j]) { j += 1 }
            let name = String(decoding: UnsafeBufferPointer(rebasing: bytes[nameStart..<j]), as: UTF8.self)
            guard !name.isEmpty else {
                throw RewriteError.at(j, in: bytes, "unexpected '\(Character(Unicode.Scalar(bytes[j])))' in cio_link tag")
            }
            skipSpace(bytes, &j)
            guard j < n, bytes[j] == UInt8(ascii: ":") else {
                throw RewriteError.at(j, in: bytes, "expected ':' after '\(name)' in cio_link tag")
            }
            j += 1
            skipSpace(bytes, &j)
            let valueStart = j
            let value: String
            if j < n, bytes[j] == UInt8(ascii: "\"") || bytes[j] == UInt8(ascii: "'") {
                let quote = bytes[j]
                j += 1
                let inner = j
                while j < n, bytes[j] != quote { j += 1 }
                guard j < n else { throw RewriteError.at(valueStart, in: bytes, "unterminated string in cio_link tag") }
                value = String(decoding: UnsafeBufferPointer(rebasing: bytes[inner..<j]), as: UTF8.self)
                j += 1
            } else {
                while j < n, !ASCII.isSpace(bytes[j]), bytes[j] != UInt8(ascii: ","),
                    !(bytes[j] == UInt8(ascii: "%") && j + 1 < n && bytes[j + 1] == UInt8(ascii: "}"))
                { j += 1 }
                value = String(decoding: UnsafeBufferPointer(rebasing: bytes[valueStart..<j]), as: UTF8.self)
                guard !value.isEmpty else { throw RewriteError.at(valueStart, in: bytes, "missing value for '\(name)' in cio_link tag") }
            }
            guard seen.insert(name).inserted else { throw RewriteError.at(nameStart, in: bytes, "'\(name)' given twice in cio_link tag") }
            switch name {
            case "url":
                tag.url = value.trimmingASCIIWhitespace()
                seenURL = true
            case "link_id": tag.linkID = value
            case "track": tag.track = try bool(value, name, bytes, valueStart)
            case "url_params": tag.urlParams = try bool(value, name, bytes, valueStart)
            case "force": tag.force = try bool(value, name, bytes, valueStart)
            default:
                throw RewriteError.at(
                    nameStart, in: bytes, "unknown argument '\(name)' in cio_link tag (known: url, track, url_params, link_id, force)")
            }
        }
        guard seenURL, !tag.url.isEmpty else { throw RewriteError.at(tagStart, in: bytes, "cio_link tag has no url") }
        tag.range = tagStart..<j
        return tag
    }

    private static func bool(_ value: String, _ name: String, _ bytes: UnsafeBufferPointer<UInt8>, _ at: Int) throws(RewriteError) -> Bool {
        switch value.lowercased() {
        case "true": return true
        case "false": return false
        default: throw RewriteError.at(at, in: bytes, "'\(name)' must be true or false, not '\(value)'")
        }
    }

    @inline(__always) static func isNameByte(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "_")
    }
    static func skipSpace(_ bytes: UnsafeBufferPointer<UInt8>, _ j: inout Int) {
        while j < bytes.count, ASCII.isSpace(bytes[j]) { j += 1 }
    }
}

extension String {
    func trimmingASCIIWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\n" || f == "\r" || f == "\u{0C}" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" || l == "\r" || l == "\u{0C}" { s = s.dropLast() }
        return String(s)
    }
}
