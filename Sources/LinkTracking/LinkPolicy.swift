/// Which links are tracked, and what clickd warns about: pure rules on a URL's text.
public enum LinkPolicy {
    /// Why a URL is not tracked at all (whatever the switches say), or nil if it may be.
    public static func untrackableReason(_ url: String) -> String? {
        // Control characters could split the edge's Location header: never sign them.
        if url.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) { return "contains control characters" }
        var utf8 = url.utf8
        if hasPrefixIgnoringCase(utf8, "https://") || hasPrefixIgnoringCase(utf8, "http://") {
            return utf8.count > (hasPrefixIgnoringCase(utf8, "https://") ? 8 : 7) ? nil : "no host"
        }
        if hasPrefixIgnoringCase(utf8, "mailto:") { return "mailto link" }
        if hasPrefixIgnoringCase(utf8, "tel:") || hasPrefixIgnoringCase(utf8, "sms:") { return "telephone link" }
        if utf8.first == UInt8(ascii: "#") { return "link within the page" }
        if hasPrefixIgnoringCase(utf8, "javascript:") { return "javascript: link (never tracked)" }
        if hasPrefixIgnoringCase(utf8, "data:") { return "data: link (never tracked)" }
        if utf8.isEmpty { return "empty link" }
        utf8 = url.utf8
        if let colon = utf8.firstIndex(of: UInt8(ascii: ":")),
            utf8[..<colon].allSatisfy({ isASCIIAlphanumeric($0) || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }),
            utf8.firstIndex(of: UInt8(ascii: "/")).map({ colon < $0 }) ?? true
        {
            return "not an http(s) link"
        }
        return "relative link"
    }

    /// Query keys that mark a link whose value is a secret or that expires: password resets,
    /// magic logins, signed downloads. Compared case-insensitively.
    static let sensitiveQueryKeys: [[UInt8]] = [
        "token", "access_token", "auth_token", "reset_token", "login_token", "magic_token", "otp", "jwt",
        "signature", "sig", "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
        "x-goog-credential", "key-pair-id", "expires", "se", "sp", "sv",
    ].map { Array($0.utf8) }

    /// Path words of password resets, one-time and magic logins.
    static let sensitivePathWords: [[UInt8]] = [
        "reset", "password", "passwd", "magic", "one-time", "onetime", "otp", "login-link", "signin-link", "auth/verify",
    ].map { Array($0.utf8) }

    /// Why `url` looks sensitive (a secret or an expiring signature in it), or nil.
    /// Such links are left untracked, with a warning, unless tracking is forced. Works on
    /// the URL's bytes (this runs for every link of every message).
    public static func sensitiveReason(_ url: String) -> String? {
        var bytes = Array(url.utf8)
        for i in bytes.indices where bytes[i] >= 0x41 && bytes[i] <= 0x5a { bytes[i] |= 0x20 }
        let end = bytes.firstIndex(of: UInt8(ascii: "#")) ?? bytes.count
        let query = bytes[..<end].firstIndex(of: UInt8(ascii: "?"))
        // The path starts at the third '/' (after "scheme://host").
        var slashes = 0
        var pathStart = query ?? end
        for i in 0..<(query ?? end) where bytes[i] == UInt8(ascii: "/") {
            slashes += 1
            if slashes == 3 {
                pathStart = i
                break
            }
        }
        if let query {
            var keyStart = query + 1
            while keyStart < end {
                let pairEnd = bytes[keyStart..<end].firstIndex(of: UInt8(ascii: "&")) ?? end
                let keyEnd = bytes[keyStart..<pairEnd].firstIndex(of: UInt8(ascii: "=")) ?? pairEnd
                let key = bytes[keyStart..<keyEnd]
                if sensitiveQueryKeys.contains(where: { $0.elementsEqual(key) }) {
                    return "query parameter '\(String(decoding: key, as: UTF8.self))' looks like a secret or signature"
                }
                keyStart = pairEnd + 1
            }
        }
        let path = bytes[pathStart..<(query ?? end)]
        for word in sensitivePathWords where contains(path, word) {
            return "path contains '\(String(decoding: word, as: UTF8.self))' (password reset or one-time login)"
        }
        return nil
    }

    static func contains(_ haystack: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count, let first = needle.first else { return false }
        var i = haystack.startIndex
        let last = haystack.endIndex - needle.count
        while i <= last {
            if haystack[i] == first, haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }

    static func hasPrefixIgnoringCase(_ utf8: String.UTF8View, _ prefix: StaticString) -> Bool {
        var index = utf8.startIndex
        for k in 0..<prefix.utf8CodeUnitCount {
            guard index != utf8.endIndex else { return false }
            var c = utf8[index]
            if c >= 0x41 && c <= 0x5a { c |= 0x20 }
            if c != prefix.utf8Start[k] { return false }
            index = utf8.index(after: index)
        }
        return true
    }

    @inline(__always) static func isASCIIAlphanumeric(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a)
    }

    /// Why an id looks like personal data (it travels readable in every link), or nil.
    public static func personalDataReason(_ id: String) -> String? {
        if let at = id.firstIndex(of: "@"), id[id.index(after: at)...].contains("."), at != id.startIndex {
            return "looks like an email address"
        }
        let digits = id.filter(\.isNumber).count
        if digits >= 8, id.allSatisfy({ $0.isNumber || " +-().".contains($0) }), id.hasPrefix("+") || digits >= 10 {
            return "looks like a phone number"
        }
        return nil
    }
}
