import Foundation
import Synchronization

/// A destination as the edge sends it in `Location`: plain ASCII, what a browser's URL
/// parser would have navigated to (the WHATWG URL Standard's serialization of an http(s)
/// URL: percent-encoded userinfo, path, query and fragment; the host through IDNA to
/// punycode; IPv4 and IPv6 hosts in their canonical forms; the default port dropped; `.`
/// and `..` segments resolved). A destination that is already ASCII is sent as signed,
/// byte for byte: a browser parses it the same either way, and the edge's hot path does
/// not touch it. Written by hand: none of the packages this project may use implements the
/// URL Standard or IDNA (Foundation's `URL` refuses non-ASCII text on Linux).
///
/// IDNA is UTS #46 without its tables: labels are mapped by NFKC and Unicode lowercasing,
/// with the code points UTS #46 ignores removed and the ideographic full stops taken as
/// dots, which agrees with the tables for the letters, digits and symbols of real domain
/// names; a label is then punycoded (RFC 3492). docs/edge.md, "Location".
public enum LocationURL {
    /// `destination` for the `Location` header: itself when it is ASCII, else its WHATWG
    /// serialization; a destination the URL parser would refuse (no browser navigates to it)
    /// has its non-ASCII bytes percent-encoded instead, so that the header stays ASCII.
    public static func header(for destination: String) -> String {
        if destination.utf8.allSatisfy({ $0 < 0x80 }) { return destination }
        return serialize(destination) ?? percentEncoded(Array(destination.utf8)) { $0 >= 0x80 }
    }

    /// The WHATWG serialization of an absolute http or https URL, or nil if the URL parser
    /// fails on it (or it is not http(s)).
    public static func serialize(_ input: String) -> String? {
        // Leading and trailing C0 controls and spaces go; tabs and newlines anywhere go.
        let all = Array(input.utf8).filter { $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }
        let start = all.firstIndex { $0 > 0x20 } ?? all.endIndex
        let end = all.lastIndex { $0 > 0x20 }.map { $0 + 1 } ?? start
        let bytes = Array(all[start..<max(start, end)])
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return nil }
        let scheme = String(decoding: bytes[..<colon], as: UTF8.self).lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        var rest = bytes[(colon + 1)...]
        // A special scheme ignores any slashes (and backslashes) before the authority.
        while let first = rest.first, first == UInt8(ascii: "/") || first == UInt8(ascii: "\\") { rest = rest.dropFirst() }
        let authorityEnd =
            rest.firstIndex { [UInt8(ascii: "/"), UInt8(ascii: "\\"), UInt8(ascii: "?"), UInt8(ascii: "#")].contains($0) } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var tail = rest[authorityEnd...]

        // userinfo@host:port — the last @ ends the userinfo; earlier ones are part of it.
        var userinfo = ""
        var hostPort = authority
        if let at = authority.lastIndex(of: UInt8(ascii: "@")) {
            let info = authority[..<at]
            hostPort = authority[(at + 1)...]
            let split = info.firstIndex(of: UInt8(ascii: ":"))
            let username = percentEncoded(Array(info[..<(split ?? info.endIndex)]), where: inUserinfoSet)
            let password = split.map { percentEncoded(Array(info[($0 + 1)...]), where: inUserinfoSet) } ?? ""
            if !username.isEmpty || !password.isEmpty {
                userinfo = username + (password.isEmpty ? "" : ":" + password) + "@"
            }
        }
        var hostBytes = hostPort
        var port: String?
        let closingBracket = hostPort.lastIndex(of: UInt8(ascii: "]"))
        if let portColon = hostPort.lastIndex(of: UInt8(ascii: ":")), closingBracket.map({ $0 < portColon }) ?? true {
            hostBytes = hostPort[..<portColon]
            let digits = hostPort[(portColon + 1)...]
            guard digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
            if !digits.isEmpty {
                // Bounded before arithmetic: at most 5 significant digits.
                let significant = digits.drop { $0 == 0x30 }
                guard significant.count <= 5 else { return nil }
                let value = significant.reduce(0) { $0 * 10 + Int($1 - 0x30) }
                guard value <= 65_535 else { return nil }
                if value != (scheme == "https" ? 443 : 80) { port = String(value) }
            }
        }
        guard !hostBytes.isEmpty, let host = self.host(Array(hostBytes)) else { return nil }

        // The path: segments split at / and \, `.` and `..` resolved, each percent-encoded.
        var segments: [String] = []
        var pathEnd = tail.firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? tail.endIndex
        let path = tail[..<pathEnd]
        if !path.isEmpty {
            let parts = path.dropFirst().split(omittingEmptySubsequences: false) { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\") }
            for (i, part) in parts.enumerated() {
                let last = i == parts.count - 1
                // Only a segment of at most 6 bytes can be a dot segment (`%2e%2e`).
                let lowered = part.count <= 6 ? String(decoding: part, as: UTF8.self).lowercased() : ""
                if [".", "%2e"].contains(lowered) {
                    if last { segments.append("") }
                } else if ["..", ".%2e", "%2e.", "%2e%2e"].contains(lowered) {
                    if !segments.isEmpty { segments.removeLast() }
                    if last { segments.append("") }
                } else {
                    segments.append(percentEncoded(Array(part), where: inPathSet))
                }
            }
        }
        var result = scheme + "://" + userinfo + host + (port.map { ":" + $0 } ?? "") + "/" + segments.joined(separator: "/")
        tail = tail[pathEnd...]
        if tail.first == UInt8(ascii: "?") {
            pathEnd = tail.firstIndex(of: UInt8(ascii: "#")) ?? tail.endIndex
            result += "?" + percentEncoded(Array(tail[tail.index(after: tail.startIndex)..<pathEnd]), where: inSpecialQuerySet)
            tail = tail[pathEnd...]
        }
        if tail.first == UInt8(ascii: "#") {
            result += "#" + percentEncoded(Array(tail.dropFirst()), where: inFragmentSet)
        }
        return result
    }

    // The URL Standard's percent-encode sets, as tables by byte (every byte >= 0x7F is in
    // all of them): looked up per byte of every non-ASCII destination the edge redirects to.
    static func set(_ extra: String, plus base: [Bool]? = nil) -> [Bool] {
        var table = base ?? (0..<256).map { $0 < 0x20 || $0 >= 0x7F }
        for b in extra.utf8 { table[Int(b)] = true }
        return table
    }
    static let fragmentSet = set(" \"<>`")
    static let querySet = set(" \"#<>")
    static let specialQuerySet = set("'", plus: querySet)
    static let pathSet = set("?^`{}", plus: querySet)
    static let userinfoSet = set("/:;=@[\\]|", plus: pathSet)
    /// The forbidden domain code points (ASCII): C0 controls, DEL and these.
    static let forbiddenDomainSet = set(" #/:<>?@[\\]^|%", plus: (0..<256).map { $0 < 0x20 || $0 == 0x7F })
    static func inFragmentSet(_ b: UInt8) -> Bool { fragmentSet[Int(b)] }
    static func inSpecialQuerySet(_ b: UInt8) -> Bool { specialQuerySet[Int(b)] }
    static func inPathSet(_ b: UInt8) -> Bool { pathSet[Int(b)] }
    static func inUserinfoSet(_ b: UInt8) -> Bool { userinfoSet[Int(b)] }

    static func percentEncoded(_ bytes: [UInt8], where encode: (UInt8) -> Bool) -> String {
        String(decoding: percentEncodedBytes(bytes, where: encode), as: UTF8.self)
    }

    /// `bytes` with each byte `encode` picks written `%XX` (upper-case hex): the one
    /// percent-encoder of LinkTracking (URLParameters uses it too).
    static func percentEncodedBytes(_ bytes: some Collection<UInt8>, where encode: (UInt8) -> Bool) -> [UInt8] {
        let hex: StaticString = "0123456789ABCDEF"
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        for b in bytes {
            if encode(b) {
                out += [UInt8(ascii: "%"), hex.utf8Start[Int(b >> 4)], hex.utf8Start[Int(b & 15)]]
            } else {
                out.append(b)
            }
        }
        return out
    }

    /// The host parser for a special scheme: an IPv6 address in brackets, else the
    /// percent-decoded text through IDNA, then an IPv4 address if its last label is a number.
    static func host(_ bytes: [UInt8]) -> String? {
        if bytes.first == UInt8(ascii: "[") {
            guard bytes.last == UInt8(ascii: "]"), bytes.count > 2 else { return nil }
            return ipv6(String(decoding: bytes.dropFirst().dropLast(), as: UTF8.self)).map { "[" + $0 + "]" }
        }
        let decoded = bytes.contains(UInt8(ascii: "%")) ? percentDecoded(bytes) : bytes
        let ascii: String
        if decoded.allSatisfy({ $0 < 0x80 }) {
            // An ASCII host needs only lower-casing (UTS #46 maps nothing else in ASCII).
            ascii = String(decoding: decoded.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
        } else {
            guard let text = String(validating: decoded, as: UTF8.self), let mapped = cachedDomainToASCII(text) else { return nil }
            ascii = mapped
        }
        guard !ascii.isEmpty, !ascii.utf8.contains(where: { forbiddenDomainSet[Int($0)] }) else { return nil }
        var labels = ascii.split(separator: ".", omittingEmptySubsequences: false)
        if labels.count > 1, labels.last == "" { labels.removeLast() }
        if let last = labels.last, isNumericLabel(last) { return ipv4(labels) }
        return ascii
    }

    static func percentDecoded(_ bytes: [UInt8]) -> [UInt8] {
        func hexValue(_ b: UInt8) -> UInt8? {
            switch b {
            case 0x30...0x39: b - 0x30
            case 0x41...0x46: b - 0x41 + 10
            case 0x61...0x66: b - 0x61 + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            if bytes[i] == UInt8(ascii: "%"), i + 2 < bytes.count, let high = hexValue(bytes[i + 1]), let low = hexValue(bytes[i + 2]) {
                out.append(high << 4 | low)
                i += 3
            } else {
                out.append(bytes[i])
                i += 1
            }
        }
        return out
    }

    /// Code points UTS #46 maps to nothing (soft hyphen, combining grapheme joiner,
    /// Mongolian variation selectors, zero width space, word joiner, variation selectors,
    /// the byte-order mark).
    static func ignored(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00AD, 0x034F, 0x180B...0x180D, 0x200B, 0x2060, 0xFE00...0xFE0F, 0xFEFF: true
        default: false
        }
    }

    /// IDNA results of recent non-ASCII hosts: Foundation's normalization is most of a
    /// serialization's cost (bench/edge-ab.sh with a non-ASCII DESTINATION, docs/benchmarks.md),
    /// and a campaign's links share a few hosts. At most 1,024 entries (emptied when full).
    static let idnaCache = Mutex<[String: String?]>([:])

    static func cachedDomainToASCII(_ domain: String) -> String? {
        if let hit = idnaCache.withLock({ $0[domain] }) { return hit }
        let result = domainToASCII(domain)
        idnaCache.withLock { cache in
            if cache.count >= 1024 { cache.removeAll(keepingCapacity: true) }
            cache[domain] = .some(result)
        }
        return result
    }

    /// Domain to ASCII (see the type's comment for the mapping), label by label.
    static func domainToASCII(_ domain: String) -> String? {
        var scalars = String.UnicodeScalarView()
        for scalar in domain.unicodeScalars where !ignored(scalar) {
            // The full stops UTS #46 maps to ".": ideographic, fullwidth, halfwidth.
            scalars.append([0x3002, 0xFF0E, 0xFF61].contains(scalar.value) ? "." : scalar)
        }
        let mapped = String(scalars).precomposedStringWithCompatibilityMapping.lowercased().precomposedStringWithCanonicalMapping
        var labels: [String] = []
        for label in mapped.split(separator: ".", omittingEmptySubsequences: false) {
            if label.unicodeScalars.allSatisfy(\.isASCII) {
                labels.append(String(label))
            } else {
                guard let encoded = punycode(Array(label.unicodeScalars)) else { return nil }
                labels.append("xn--" + encoded)
            }
        }
        let result = labels.joined(separator: ".")
        // A label or a name past DNS's limits is still a host to the URL Standard (its
        // VerifyDnsLength is false): no length check here.
        return result
    }

    /// RFC 3492's encoding of one label (without the `xn--`); nil on overflow.
    static func punycode(_ input: [Unicode.Scalar]) -> String? {
        let base = 36
        let tMin = 1
        let tMax = 26
        let skew = 38
        let damp = 700
        func digit(_ d: Int) -> Character { Character(Unicode.Scalar(UInt8(d < 26 ? 0x61 + d : 0x30 + d - 26))) }
        func adapt(_ delta: Int, _ points: Int, _ first: Bool) -> Int {
            var delta = first ? delta / damp : delta / 2
            delta += delta / points
            var k = 0
            while delta > ((base - tMin) * tMax) / 2 {
                delta /= base - tMin
                k += base
            }
            return k + (base - tMin + 1) * delta / (delta + skew)
        }
        let codes = input.map { Int($0.value) }
        var output = String(input.filter(\.isASCII).map(Character.init))
        let basic = output.count
        var handled = basic
        if basic > 0 { output.append("-") }
        var n = 0x80
        var delta = 0
        var bias = 72
        while handled < codes.count {
            guard let m = codes.filter({ $0 >= n }).min() else { return nil }
            // Bounded: a label's code points and length keep delta far below Int's range,
            // but the RFC's overflow check is kept.
            let (step, overflow) = (m - n).multipliedReportingOverflow(by: handled + 1)
            guard !overflow, delta <= Int.max - step else { return nil }
            delta += step
            n = m
            for c in codes {
                if c < n { delta += 1 }
                if c == n {
                    var q = delta
                    var k = base
                    while true {
                        let t = k <= bias ? tMin : (k >= bias + tMax ? tMax : k - bias)
                        if q < t { break }
                        output.append(digit(t + (q - t) % (base - t)))
                        q = (q - t) / (base - t)
                        k += base
                    }
                    output.append(digit(q))
                    bias = adapt(delta, handled + 1, handled == basic)
                    delta = 0
                    handled += 1
                }
            }
            delta += 1
            n += 1
        }
        return output
    }

    /// Whether the URL Standard's IPv4 parser takes a host ending in this label: all
    /// decimal digits, or `0x`/`0X` followed by hex digits (or nothing).
    static func isNumericLabel(_ label: Substring) -> Bool {
        if !label.isEmpty, label.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) { return true }
        let lower = label.lowercased()
        return lower.hasPrefix("0x") && lower.dropFirst(2).allSatisfy(\.isHexDigit)
    }

    /// The URL Standard's IPv4 parser (decimal, octal with a leading 0, hex with 0x; the
    /// last part may fill the remaining bytes), serialized dotted-decimal; nil on failure.
    static func ipv4(_ labels: [Substring]) -> String? {
        guard labels.count <= 4 else { return nil }
        var numbers: [UInt64] = []
        for label in labels {
            guard !label.isEmpty else { return nil }
            var text = Substring(label.lowercased())
            var radix = 10
            if text.hasPrefix("0x") {
                radix = 16
                text = text.dropFirst(2)
            } else if text.count > 1, text.hasPrefix("0") {
                radix = 8
                text = text.dropFirst()
            }
            // Bounded before arithmetic: more than 12 digits cannot be an IPv4 part.
            let significant = text.drop { $0 == "0" }
            guard significant.count <= 12 else { return nil }
            if text.isEmpty {
                numbers.append(0)
            } else {
                guard let value = UInt64(text, radix: radix) else { return nil }
                numbers.append(value)
            }
        }
        guard numbers.dropLast().allSatisfy({ $0 <= 255 }), let last = numbers.last else { return nil }
        guard last < UInt64(1) << (8 * UInt64(5 - numbers.count)) else { return nil }
        var address = last
        for (i, part) in numbers.dropLast().enumerated() { address += part << (8 * UInt64(3 - i)) }
        return (0..<4).map { String((address >> (8 * UInt64(3 - $0))) & 0xFF) }.joined(separator: ".")
    }

    /// An IPv6 address (the text between the brackets) in the URL Standard's form: lower-case
    /// hex pieces, the first longest run of two or more zero pieces as `::`; nil if invalid.
    static func ipv6(_ text: String) -> String? {
        var address = in6_addr()
        guard inet_pton(AF_INET6, text, &address) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: address) { Array($0) }
        let pieces = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var best: (start: Int, length: Int)?
        var i = 0
        while i < 8 {
            guard pieces[i] == 0 else {
                i += 1
                continue
            }
            var j = i
            while j < 8, pieces[j] == 0 { j += 1 }
            if j - i >= 2, j - i > (best?.length ?? 0) { best = (i, j - i) }
            i = j
        }
        var out = ""
        var index = 0
        while index < 8 {
            if let best, index == best.start {
                out += index == 0 ? "::" : ":"
                index += best.length
                continue
            }
            out += String(pieces[index], radix: 16)
            if index < 7 { out += ":" }
            index += 1
        }
        return out
    }
}
