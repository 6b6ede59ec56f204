import ClickdTestSupport
import Foundation
import Testing

@testable import LinkTracking

@Suite struct EventCodecTests {
    static func click(_ i: Int, method: ClickEvent.Method = .get, linkID: String? = nil) -> ClickEvent {
        ClickEvent(
            occurredAt: 1_790_000_000_000 + UInt64(i), method: method,
            token: LinkToken(
                destination: "https://a.com/p?i=\(i)#f", deliveryID: "d\(i)", customerID: "c\(i % 7)",
                sourceKind: .campaign, sourceID: "17", messageType: .sms, linkID: linkID, issuedAt: 1_789_999_000),
            keyID: "k7f2", userAgent: "Mozilla/5.0 (X11) é", clientIP: [192, 0, 2, 0], edgeID: "edge-1")
    }

    @Test func roundTrips() throws {
        var rng = SplitMix64(seed: 9)
        for i in 0..<500 {
            var c = Self.click(i, method: i % 3 == 0 ? .head : .get, linkID: i % 2 == 0 ? nil : "L\(i)")
            c.clientIP = [[], [10, 0, 0], [198, 51, 100, 0], (0..<16).map { _ in UInt8.random(in: 0...255, using: &rng) }][i % 4]
            if c.clientIP.count == 3 { c.clientIP = [] }
            c.token.messageType = LinkToken.MessageType.allCases[i % 5]
            c.token.sourceKind = LinkToken.SourceKind.allCases[i % 3]
            #expect(try EventCodec.decode(EventCodec.encode(.click(c))) == .click(c))
        }
        let delivered = DeliveredEvent(
            occurredAt: 5, messageType: .email, sourceKind: .newsletter, sourceID: "n1", deliveryID: "d1",
            customerID: "c1", trackedLinks: 25)
        #expect(try EventCodec.decode(EventCodec.encode(.delivered(delivered))) == .delivered(delivered))
    }

    @Test func userAgentIsCroppedOnACharacterBoundary() {
        let long = String(repeating: "é", count: 400)  // 800 bytes
        let cropped = ClickEvent.crop(long)
        #expect(cropped.utf8.count == 512)
        #expect(cropped == String(repeating: "é", count: 256))
        let odd = "a" + String(repeating: "€", count: 200)  // 1 + 600 bytes
        #expect(ClickEvent.crop(odd).utf8.count == 511)
        #expect(ClickEvent.crop("short") == "short")
    }

    @Test func damagedRecordsAreErrorsNeverCrashes() {
        let bytes = EventCodec.encode(.click(Self.click(1)))
        for cut in 0..<bytes.count {
            #expect(throws: EventCodec.DecodeError.self) { try EventCodec.decode(Array(bytes[0..<cut])) }
        }
        #expect(throws: EventCodec.DecodeError.self) { try EventCodec.decode(bytes + [0]) }
        #expect(throws: EventCodec.DecodeError(message: "unknown event version 9")) { try EventCodec.decode([9, 1, 0]) }
        #expect(throws: EventCodec.DecodeError(message: "unknown event kind 7")) { try EventCodec.decode([1, 7, 0]) }
        var rng = SplitMix64(seed: 2)
        for _ in 0..<20_000 {
            let random = (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = try? EventCodec.decode([1] + random)
        }
    }

    /// Issue 12, item 7: an `issued_at` near 2^64 trapped the classifier's `(issuedAt + 3) * 1000`
    /// and `log dump`, on the same record, forever. Past the year 9999 it does not decode (a
    /// dead letter, as `occurred_at` is), and the classifier's arithmetic is checked anyway.
    @Test(arguments: [UInt64.max, UInt64.max - 2, EventCodec.latestIssuedAt + 1])
    func anIssuedAtPastTheYear9999IsADeadLetter(_ issuedAt: UInt64) throws {
        var c = Self.click(1)
        c.token.issuedAt = issuedAt
        #expect(throws: EventCodec.DecodeError(message: "issued_at \(issuedAt) s is after the year 9999")) {
            try EventCodec.decode(EventCodec.encode(.click(c)))
        }
        // An event built in memory is not bounded by the decoder: the rule still cannot trap.
        #expect(ClickClassifier.staticReason(c) == .tooSoon)
        var latest = Self.click(2)
        latest.token.issuedAt = EventCodec.latestIssuedAt
        #expect(try EventCodec.decode(EventCodec.encode(.click(latest))) == .click(latest))
        #expect(ClickClassifier.staticReason(latest) == .tooSoon)
    }
}

/// The `opened` record (kind 3, issue 29).
@Suite struct OpenedRecordTests {
    static func opened(_ i: Int) -> OpenEvent {
        OpenEvent(
            occurredAt: 1_790_000_000_000 + UInt64(i),
            token: OpenToken(
                deliveryID: "d\(i)", customerID: "c\(i % 7)", sourceKind: LinkToken.SourceKind.allCases[i % 3], sourceID: "17",
                messageType: LinkToken.MessageType.allCases[i % 5], issuedAt: 1_789_999_000),
            keyID: "k7f2", userAgent: "Mozilla/5.0 é", clientIP: [[], [198, 51, 100, 0], [UInt8](repeating: 0x20, count: 16)][i % 3],
            edgeID: "edge-1", appleRelay: i % 2 == 0)
    }

    @Test func roundTripsAndShardsByItsCustomer() throws {
        for i in 0..<200 {
            let event = TrackingEvent.opened(Self.opened(i))
            let bytes = EventCodec.encode(event)
            #expect(try EventCodec.decode(bytes) == event)
            #expect(bytes.withUnsafeBytes { EventCodec.customerField($0).map { Array($0) } } == Array("c\(i % 7)".utf8))
            #expect(event.customerID == "c\(i % 7)" && event.occurredAt == 1_790_000_000_000 + UInt64(i))
        }
    }

    @Test func damagedOpenRecordsAreErrors() {
        let bytes = EventCodec.encode(.opened(Self.opened(1)))
        for cut in 0..<bytes.count {
            #expect(throws: EventCodec.DecodeError.self) { try EventCodec.decode(Array(bytes[0..<cut])) }
        }
        #expect(throws: EventCodec.DecodeError.self) { try EventCodec.decode(bytes + [0]) }
        var flags = bytes
        flags[2 + 6] = 0x80  // occurred_at is 6 bytes here; then the flags
        #expect(throws: EventCodec.DecodeError(message: "invalid open flags 128")) { try EventCodec.decode(flags) }
        var address = bytes
        address[address.count - 5] = 5
        #expect(throws: EventCodec.DecodeError.self) { try EventCodec.decode(address) }
    }
}
