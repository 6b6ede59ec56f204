/// Which links are tracked, and what clickd warns about: pure rules on a URL's text.
public enum LinkPolicy {
    /// Why a URL is not tracked at all (whatever the switches say), or nil if it may be.
    public static func untrackableReason(_ url: String) -> String? {
        let lower = url.lowercased()
        if lower.hasPrefix("https://") || lower.hasPrefix("http://") {
            return lower.count > 8 ? nil : "no host"
        }
        if lower.hasPrefix("mailto:") { return "mailto link" }
        if lower.hasPrefix("tel:") || lower.hasPrefix("sms:") { return "telephone link" }
        if lower.hasPrefix("#") { return "link within the page" }
        if lower.hasPrefix("javascript:") { return "javascript: link (never tracked)" }
        if lower.hasPrefix("data:") { return "data: link (never tracked)" }
        if lower.isEmpty { return "empty link" }
        if let colon = lower.firstIndex(of: ":"), lower[..<colon].allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }),
           lower.firstIndex(of: "/").map({ colon < $0 }) ?? true {
            return "not an http(s) link"
        }
        return "relative link"
    }

    /// Query keys that mark a link whose value is a secret or that expires: password resets,
    /// magic logins, signed downloads. Compared case-insensitively.
    static let sensitiveQueryKeys: Set<String> = [
        "token", "access_token", "auth_token", "reset_token", "login_token", "magic_token", "otp", "jwt",
        "signature", "sig", "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
        "x-goog-credential", "key-pair-id", "expires", "se", "sp", "sv",
    ]

    /// Path words of password resets, one-time and magic logins.
    static let sensitivePathWords: [String] = [
        "reset", "password", "passwd", "magic", "one-time", "onetime", "otp", "login-link", "signin-link", "auth/verify",
    ]

    /// Why `url` looks sensitive (a secret or an expiring signature in it), or nil.
    /// Such links are left untracked, with a warning, unless tracking is forced.
    public static func sensitiveReason(_ url: String) -> String? {
        let lower = url.lowercased()
        let beforeFragment = lower.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        let parts = beforeFragment.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = parts.first.map { p in p.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false).dropFirst(3).joined(separator: "/") } ?? ""
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let key = String(pair.prefix { $0 != "=" })
                if sensitiveQueryKeys.contains(key) { return "query parameter '\(key)' looks like a secret or signature" }
            }
        }
        for word in sensitivePathWords where path.contains(word) {
            return "path contains '\(word)' (password reset or one-time login)"
        }
        return nil
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
