/// Human or bot: a pure, deterministic function of the log (docs/design/ingest.md).
///
/// Clicks are fed in log order. The first three rules look at one click; the burst rule
/// looks at the same delivery's clicks of the last second, so a later click can turn
/// earlier, already-classified clicks into bot clicks: those come back as `corrections`.
/// The state is only that one-second window; `oldestOpenLSN` says where to start
/// re-reading the log to rebuild it after a restart: feed the clicks from there up to the
/// checkpoint again and ignore what they return (it was applied before), then go on.
public struct ClickClassifier: Sendable {
    public enum BotReason: String, Sendable, Equatable, CaseIterable {
        case prefetch
        case scannerUserAgent = "scanner_user_agent"
        case tooSoon = "too_soon"
        case burst
    }

    public struct Verdict: Sendable, Equatable {
        public var lsn: UInt64
        /// nil for a human click.
        public var botReason: BotReason?
        public var isHuman: Bool { botReason == nil }
    }

    public struct Rules: Sendable {
        /// Clicks this soon after the link was signed are a scanner's.
        public var tooSoonSeconds: UInt64 = 3
        /// A delivery with clicks on this many distinct links within `burstWindowMilliseconds`.
        public var burstDistinctLinks = 3
        public var burstWindowMilliseconds: UInt64 = 1000
        public init() {}
    }

    private struct Recent: Sendable {
        var lsn: UInt64
        /// The oldest click held when this one was classified: replaying from there
        /// rebuilds this click's window exactly.
        var windowStart: UInt64
        var at: UInt64
        var delivery: DeliveryKey
        var linkID: String
        var botReason: BotReason?
    }

    /// A delivery is one message to one person; keyed by both, so that a sending system
    /// reusing a delivery id for two people cannot make one person's clicks a burst of the
    /// other's — and a delivery's clicks are in one shard (docs/design/sharding.md).
    private struct DeliveryKey: Hashable, Sendable {
        var customerID: String
        var deliveryID: String
    }

    public let rules: Rules
    /// User agents seen recently and whether they are scanners (they repeat a lot).
    private var scannerCache: [String: Bool] = [:]
    /// Clicks of the last window, in log order; `recent[i]` is click number `base + i`.
    private var recent: [Recent] = []
    private var head = 0
    private var base = 0
    /// The numbers of each delivery's clicks still in `recent[head...]`, oldest first, so
    /// that the burst rule looks at one delivery's clicks, not at every click of the window.
    private var byDelivery: [DeliveryKey: [Int]] = [:]

    public init(rules: Rules = Rules()) { self.rules = rules }

    /// Where a replay must start to rebuild the state after the last click fed (nil when
    /// no window is open).
    public var oldestOpenLSN: UInt64? { head < recent.count ? recent[head].windowStart : nil }

    /// Classifies one click; `corrections` are earlier clicks this one turned into bot clicks.
    public mutating func classify(lsn: UInt64, _ click: ClickEvent) -> (verdict: Verdict, corrections: [Verdict]) {
        // Forget clicks that have left every window.
        while head < recent.count, recent[head].at + rules.burstWindowMilliseconds < click.occurredAt {
            // Each delivery's clicks leave in log order: this one is first in its list.
            let delivery = recent[head].delivery
            if byDelivery[delivery]!.count == 1 { byDelivery[delivery] = nil } else { byDelivery[delivery]!.removeFirst() }
            head += 1
        }
        if head > 1024, head * 2 > recent.count {
            recent.removeFirst(head)
            base += head
            head = 0
        }
        var reason: BotReason?
        if click.method == .head {
            reason = .prefetch
        } else {
            let scanner: Bool
            if let cached = scannerCache[click.userAgent] {
                scanner = cached
            } else {
                scanner = Self.isScanner(userAgent: click.userAgent)
                if scannerCache.count >= 4096 { scannerCache.removeAll(keepingCapacity: true) }
                scannerCache[click.userAgent] = scanner
            }
            reason = scanner ? .scannerUserAgent : Self.staticReason(click, rules: rules, skipUserAgent: true)
        }
        var corrections: [Verdict] = []
        let delivery = DeliveryKey(customerID: click.token.customerID, deliveryID: click.token.deliveryID)
        recent.append(
            Recent(
                lsn: lsn, windowStart: head < recent.count ? recent[head].lsn : lsn, at: click.occurredAt, delivery: delivery,
                linkID: click.token.linkID, botReason: reason))
        // The burst rule: distinct links of this delivery within the window ending now.
        byDelivery[delivery, default: []].append(base + recent.count - 1)
        var links: Set<String> = []
        var members: [Int] = []
        for number in byDelivery[delivery]! where recent[number - base].at + rules.burstWindowMilliseconds >= click.occurredAt {
            links.insert(recent[number - base].linkID)
            members.append(number - base)
        }
        if links.count >= rules.burstDistinctLinks {
            for i in members where i != recent.count - 1 && recent[i].botReason == nil {
                recent[i].botReason = .burst
                corrections.append(Verdict(lsn: recent[i].lsn, botReason: .burst))
            }
            if reason == nil {
                reason = .burst
                recent[recent.count - 1].botReason = .burst
            }
        }
        return (Verdict(lsn: lsn, botReason: reason), corrections)
    }

    /// The rules that need no other click.
    public static func staticReason(_ click: ClickEvent, rules: Rules = Rules(), skipUserAgent: Bool = false) -> BotReason? {
        if click.method == .head { return .prefetch }
        if !skipUserAgent, isScanner(userAgent: click.userAgent) { return .scannerUserAgent }
        // Checked: a decoded issued_at is bounded (EventCodec), an event built in memory may not be.
        let (soonest, overflow) = click.token.issuedAt.addingReportingOverflow(rules.tooSoonSeconds)
        let (soonestMilliseconds, overflowMs) = soonest.multipliedReportingOverflow(by: 1000)
        if overflow || overflowMs || click.occurredAt < soonestMilliseconds { return .tooSoon }
        return nil
    }

    /// Link scanners, previewers, crawlers and HTTP libraries, matched case-insensitively.
    static let scannerMarkers: [String] = [
        "bot", "crawler", "spider", "slurp", "preview", "fetcher", "scanner", "headless",
        "facebookexternalhit", "whatsapp", "telegram", "skypeuripreview", "embedly", "quora link",
        "barracuda", "mimecast", "proofpoint", "ironport", "symantec", "trend micro", "sophos", "fortiguard",
        "zscaler", "forcepoint", "microsoft office", "ms-office", "msoffice", "safelinks",
        "python-requests", "python-urllib", "aiohttp", "curl/", "wget/", "go-http-client", "java/", "okhttp",
        "apache-httpclient", "libwww-perl", "node-fetch", "axios/",
    ]

    static let scannerMarkerBytes: [[UInt8]] = scannerMarkers.map { Array($0.utf8) }

    /// Byte-level and ASCII-case-insensitive: this runs for every click (measured: the
    /// `String` version was three quarters of ingestion's CPU).
    public static func isScanner(userAgent: String) -> Bool {
        var ua = Array(userAgent.utf8)
        if ua.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return true }
        for i in ua.indices where ua[i] >= 0x41 && ua[i] <= 0x5a { ua[i] |= 0x20 }
        return ua.withUnsafeBufferPointer { hay in
            scannerMarkerBytes.contains { needle in Self.contains(hay, needle) }
        }
    }

    static func contains(_ hay: UnsafeBufferPointer<UInt8>, _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, needle.count <= hay.count else { return false }
        var i = 0
        let last = hay.count - needle.count
        while i <= last {
            if hay[i] == first {
                var k = 1
                while k < needle.count, hay[i + k] == needle[k] { k += 1 }
                if k == needle.count { return true }
            }
            i += 1
        }
        return false
    }
}
