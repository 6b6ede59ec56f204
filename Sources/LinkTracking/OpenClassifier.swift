/// A person's open or a machine's: a pure function of the open record alone, so a
/// rebuild gives every open the verdict it had (docs/design/opens.md, "Classification").
///
/// First match wins:
/// - `apple_mpp`: Apple Mail Privacy Protection fetches every image of a message when the
///   device syncs, read or not, through Apple's relays. Recognised by the edge's
///   `appleRelay` bit (the full address was in Apple's published egress ranges) or by the
///   user agent those fetches send, `Mozilla/5.0` and nothing else.
/// - `imageProxy`: a webmail's image proxy (Gmail's `GoogleImageProxy`, Yahoo's
///   `YahooMailProxy`) fetched it when the person opened the message; the person did open,
///   only the time may be a cache's. Counted as a person's open, shown apart.
/// - `scanner`: the user agents the click classifier takes for scanners
///   (`ClickClassifier.isScanner`: gateways, link checkers, HTTP libraries).
/// - `prefetch`: within `prefetchSeconds` of the pixel's signing (the message was rendered
///   to be sent): no person opens a message that fast.
public enum OpenClassifier {
    public enum Reason: String, Sendable, Equatable, CaseIterable {
        case appleMPP = "apple_mpp"
        case imageProxy = "image_proxy"
        case scanner
        case prefetch

        /// Whether an open of this reason counts as the person's (an image proxy's does).
        public var isPersons: Bool { self == .imageProxy }
    }

    /// Opens this soon after the pixel was signed are a machine's.
    public static let prefetchSeconds: UInt64 = 10

    /// The user agent Apple's MPP fetches send.
    public static let appleMPPUserAgent = "Mozilla/5.0"

    /// Image proxies' user-agent markers, matched ASCII-case-insensitively.
    static let proxyMarkers: [[UInt8]] = ["googleimageproxy", "ggpht.com", "yahoomailproxy"].map { Array($0.utf8) }

    /// The reason `open` is a machine's or a proxy's, nil for a person's own fetch.
    public static func reason(_ open: OpenEvent) -> Reason? {
        if open.appleRelay || open.userAgent == appleMPPUserAgent { return .appleMPP }
        if isImageProxy(userAgent: open.userAgent) { return .imageProxy }
        if ClickClassifier.isScanner(userAgent: open.userAgent) { return .scanner }
        // A decoded issued_at is bounded (EventCodec); one built in memory may not be.
        let (soonest, overflow) = open.token.issuedAt.addingReportingOverflow(prefetchSeconds)
        let (soonestMilliseconds, overflowMs) = soonest.multipliedReportingOverflow(by: 1000)
        if overflow || overflowMs || open.occurredAt < soonestMilliseconds { return .prefetch }
        return nil
    }

    /// Whether the user agent names a webmail's image proxy.
    public static func isImageProxy(userAgent: String) -> Bool {
        var ua = Array(userAgent.utf8)
        for i in ua.indices where ua[i] >= 0x41 && ua[i] <= 0x5a { ua[i] |= 0x20 }
        return ua.withUnsafeBufferPointer { hay in proxyMarkers.contains { ClickClassifier.contains(hay, $0) } }
    }
}
