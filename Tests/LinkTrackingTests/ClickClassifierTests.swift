import ClickdTestSupport
import Foundation
import Testing

@testable import LinkTracking

@Suite struct ClickClassifierTests {
    static func click(
        at ms: UInt64, delivery: String = "d1", link: String = "L1", ua: String = "Mozilla/5.0 (Macintosh)",
        method: ClickEvent.Method = .get, issued: UInt64 = 1_000
    ) -> ClickEvent {
        ClickEvent(
            occurredAt: ms, method: method,
            token: LinkToken(
                destination: "https://a.com/\(link)", deliveryID: delivery, customerID: "c", sourceKind: .campaign,
                sourceID: "1", messageType: .email, linkID: link, issuedAt: issued),
            keyID: "k", userAgent: ua, clientIP: [], edgeID: "e")
    }

    @Test func staticRules() {
        var c = ClickClassifier()
        #expect(c.classify(lsn: 1, Self.click(at: 2_000_000)).verdict.botReason == nil)
        #expect(c.classify(lsn: 2, Self.click(at: 2_000_000, method: .head)).verdict.botReason == .prefetch)
        #expect(c.classify(lsn: 3, Self.click(at: 2_000_000, ua: "Mozilla/5.0 (compatible; Googlebot/2.1)")).verdict.botReason == .scannerUserAgent)
        #expect(c.classify(lsn: 4, Self.click(at: 2_000_000, ua: "")).verdict.botReason == .scannerUserAgent)
        #expect(c.classify(lsn: 5, Self.click(at: 2_000_000, ua: "Barracuda Sentinel (EE)")).verdict.botReason == .scannerUserAgent)
        #expect(c.classify(lsn: 6, Self.click(at: 1_002_500, issued: 1_000)).verdict.botReason == .tooSoon)
        #expect(c.classify(lsn: 7, Self.click(at: 1_003_000, issued: 1_000)).verdict.botReason == nil)
    }

    @Test func burstTurnsEarlierClicksIntoBotsWithCorrections() {
        var c = ClickClassifier()
        let t: UInt64 = 5_000_000
        #expect(c.classify(lsn: 1, Self.click(at: t, link: "A")) == (ClickClassifier.Verdict(lsn: 1, botReason: nil), []))
        #expect(c.classify(lsn: 2, Self.click(at: t + 300, link: "B")).corrections.isEmpty)
        // A third distinct link within a second: a scanner opening every link.
        let third = c.classify(lsn: 3, Self.click(at: t + 600, link: "C"))
        #expect(third.verdict.botReason == .burst)
        #expect(third.corrections == [.init(lsn: 1, botReason: .burst), .init(lsn: 2, botReason: .burst)])
        // A fourth joins the burst; nothing is corrected twice.
        let fourth = c.classify(lsn: 4, Self.click(at: t + 700, link: "D"))
        #expect(fourth.verdict.botReason == .burst && fourth.corrections.isEmpty)
    }

    @Test func notABurst() {
        var c = ClickClassifier()
        let t: UInt64 = 5_000_000
        // The same link three times, or three links over more than a second, or three deliveries.
        for (i, link) in ["A", "A", "A"].enumerated() {
            #expect(c.classify(lsn: UInt64(i + 1), Self.click(at: t + UInt64(i) * 100, link: link)).verdict.isHuman)
        }
        var slow = ClickClassifier()
        for (i, link) in ["A", "B", "C"].enumerated() {
            #expect(slow.classify(lsn: UInt64(i + 1), Self.click(at: t + UInt64(i) * 600, link: link)).verdict.isHuman)
        }
        var spread = ClickClassifier()
        for (i, d) in ["d1", "d2", "d3"].enumerated() {
            #expect(spread.classify(lsn: UInt64(i + 1), Self.click(at: t + UInt64(i) * 10, delivery: d, link: "L\(i)")).verdict.isHuman)
        }
    }

    /// The property ingestion relies on: stopping at any click and rebuilding the state by
    /// replaying from `oldestOpenLSN` gives exactly the verdicts of one uninterrupted run.
    @Test func restartAnywhereAgreesWithOneRun() {
        var rng = SplitMix64(seed: 21)
        var correctedInOneRun = 0
        for _ in 0..<40 {
            var time: UInt64 = 10_000_000
            let clicks: [ClickEvent] = (0..<120).map { _ in
                time += UInt64.random(in: 0...400, using: &rng)
                return Self.click(
                    at: time, delivery: "d\(Int.random(in: 0..<4, using: &rng))", link: "L\(Int.random(in: 0..<5, using: &rng))",
                    ua: Int.random(in: 0..<10, using: &rng) == 0 ? "curl/8" : "Mozilla/5.0",
                    method: Int.random(in: 0..<15, using: &rng) == 0 ? .head : .get)
            }
            func apply(
                _ out: (verdict: ClickClassifier.Verdict, corrections: [ClickClassifier.Verdict]),
                to verdicts: inout [UInt64: ClickClassifier.BotReason?]
            ) {
                verdicts[out.verdict.lsn] = out.verdict.botReason
                for correction in out.corrections {
                    #expect(verdicts[correction.lsn]! == nil, "a click is corrected only while human")
                    verdicts[correction.lsn] = correction.botReason
                }
            }
            var oneRun: [UInt64: ClickClassifier.BotReason?] = [:]
            var whole = ClickClassifier()
            for (i, click) in clicks.enumerated() {
                let out = whole.classify(lsn: UInt64(i + 1), click)
                correctedInOneRun += out.corrections.count
                apply(out, to: &oneRun)
            }
            for stop in stride(from: 1, to: clicks.count, by: 7) {
                var verdicts: [UInt64: ClickClassifier.BotReason?] = [:]
                var first = ClickClassifier()
                for i in 0..<stop { apply(first.classify(lsn: UInt64(i + 1), clicks[i]), to: &verdicts) }
                var second = ClickClassifier()
                if let from = first.oldestOpenLSN {
                    for i in Int(from - 1)..<stop { _ = second.classify(lsn: UInt64(i + 1), clicks[i]) }
                }
                for i in stop..<clicks.count { apply(second.classify(lsn: UInt64(i + 1), clicks[i]), to: &verdicts) }
                #expect(verdicts.count == oneRun.count)
                for (lsn, reason) in oneRun where verdicts[lsn]! != reason {
                    Issue.record("stop \(stop): LSN \(lsn) is \(String(describing: verdicts[lsn]!)), one run says \(String(describing: reason))")
                }
            }
        }
        #expect(correctedInOneRun > 50, "the streams must exercise bursts that correct earlier clicks")
    }
}
