import ClickdTestSupport
import Foundation
import Testing

@testable import LinkTracking

/// The open token (the pixel's, version 2): signed like a link token, verified in the same
/// order with the same errors, and never taken for a link token (nor the reverse).
@Suite struct OpenTokenTests {
    static func token(customer: String = "cust_48213") -> OpenToken {
        OpenToken(
            deliveryID: "dlv_01HXYZ9K2M4N6P8Q", customerID: customer, sourceKind: .newsletter, sourceID: "weekly",
            messageType: .email, issuedAt: 1_790_000_000)
    }

    @Test func roundTripsAndNamesItsKey() throws {
        var rng = SplitMix64(seed: 29)
        let alphabet = Array("abcXYZ019-._~:/?#[]@!$&'()*+,;=%é✓漢😀 ")
        func text(_ max: Int) -> String { String((0..<Int.random(in: 0...max, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }) }
        for _ in 0..<1000 {
            let token = OpenToken(
                deliveryID: text(40), customerID: text(40), sourceKind: LinkToken.SourceKind.allCases.randomElement(using: &rng)!,
                sourceID: text(20), messageType: LinkToken.MessageType.allCases.randomElement(using: &rng)!,
                issuedAt: UInt64.random(in: 0...EventCodec.latestIssuedAt, using: &rng))
            let signed = try Fixtures.ring.sign(token)
            let verified = try Fixtures.ring.verifyOpen(signed).get()
            #expect(verified.token == token && verified.keyID == "new")
        }
        // No destination: these ids make 66 bytes, an 88-character token.
        #expect(try Fixtures.ring.sign(Self.token()).count == 88)
    }

    /// `/c/` takes only link tokens and `/o/` only open tokens: a pixel's token cannot be
    /// replayed as a redirect, nor a link's as an open.
    @Test func neitherKindPassesForTheOther() throws {
        let open = try Fixtures.ring.sign(Self.token())
        let link = try Fixtures.ring.sign(Fixtures.token())
        #expect(Fixtures.ring.verify(open) == .failure(.wrongKind("an open token, not a link token")))
        #expect(Fixtures.ring.verifyOpen(link).map(\.token) == .failure(.wrongKind("a link token, not an open token")))
        #expect(TokenError.wrongKind("").reason == "wrong_kind")
        // The same bytes under the other version byte, signed: still refused by structure,
        // since each version has its own field count.
        var bytes = TokenCodec.decode(open[...])!
        bytes[0] = TokenCodec.version
        let resigned = Array(bytes.dropLast(TokenCodec.macSize))
        let key = KeyRing.makeKey(kid: "new", secret: Fixtures.secretB, created: "2026-06-01T00:00:00Z")
        let text = TokenCodec.encode(resigned + key.prepared.mac(resigned[...]).prefix(TokenCodec.macSize))
        #expect(Fixtures.ring.verify(text) == .failure(.truncated))
    }

    @Test func eachFailureIsTheLinkTokensOne() throws {
        let signed = try Fixtures.ring.sign(Self.token())
        let retired = try KeyRing(keys: [KeyRing.makeKey(kid: "gone", secret: [UInt8](repeating: 0xC3, count: 32), created: "x")]).sign(Self.token())
        #expect(Fixtures.ring.verifyOpen(retired).map(\.token) == .failure(.retiredKey("gone")))
        let stranger = try KeyRing(keys: [KeyRing.makeKey(kid: "who", secret: Fixtures.secretA, created: "x")]).sign(Self.token())
        #expect(Fixtures.ring.verifyOpen(stranger).map(\.token) == .failure(.unknownKey("who")))
        let forged = try KeyRing(keys: [KeyRing.makeKey(kid: "new", secret: Fixtures.secretA, created: "x")]).sign(Self.token())
        #expect(Fixtures.ring.verifyOpen(forged).map(\.token) == .failure(.badSignature))
        let decoded = TokenCodec.decode(signed[...])!
        for cut in 0..<decoded.count {
            let result = Fixtures.ring.verifyOpen(TokenCodec.encode(Array(decoded.prefix(cut))))
            #expect(throws: TokenError.self) { try result.get() }
        }
        // Every single changed byte fails.
        for i in decoded.indices {
            var changed = decoded
            changed[i] ^= 0x40
            #expect(throws: TokenError.self) { try Fixtures.ring.verifyOpen(TokenCodec.encode(changed)).get() }
        }
        #expect(Fixtures.ring.verifyOpen("abc!").map(\.token) == .failure(.malformed("not base64url")))
        // Bit 5 (link id is the destination) means nothing in an open token: refused.
        var flagged = decoded
        flagged[2 + Int(decoded[1])] |= 1 << 5
        #expect(TokenCodec.layout(flagged, expected: TokenCodec.openVersion).map(\.kid) == .failure(.malformed("unknown flags 40")))
        // An id with a control character is never verified.
        let control = try Fixtures.ring.sign(Self.token(customer: "c\u{7}"))
        #expect(Fixtures.ring.verifyOpen(control).map(\.token) == .failure(.invalidField("control character in an id")))
        #expect(Self.token(customer: "c\u{7}").idProblem != nil)
    }

    @Test func theOpenTokenOfALinkIsItsMessages() {
        let link = Fixtures.token()
        let open = OpenToken(of: link)
        #expect(open.deliveryID == link.deliveryID && open.customerID == link.customerID && open.sourceID == link.sourceID)
        #expect(open.sourceKind == link.sourceKind && open.messageType == link.messageType && open.issuedAt == link.issuedAt)
    }
}

/// Opens are classified from the record alone (docs/design/opens.md, "Classification").
@Suite struct OpenClassifierTests {
    static func open(_ ua: String, relay: Bool = false, secondsAfterSigning: UInt64 = 3600) -> OpenEvent {
        OpenEvent(
            occurredAt: (1_790_000_000 + secondsAfterSigning) * 1000, token: OpenTokenTests.token(), keyID: "k", userAgent: ua,
            clientIP: [17, 0, 0, 0], edgeID: "e", appleRelay: relay)
    }

    @Test func eachReasonFirstMatchWins() {
        let person = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Thunderbird/128.0"
        #expect(OpenClassifier.reason(Self.open(person)) == nil)
        #expect(OpenClassifier.reason(Self.open("Mozilla/5.0")) == .appleMPP)
        #expect(OpenClassifier.reason(Self.open(person, relay: true)) == .appleMPP)
        // The relay bit wins over everything, even a scanner's agent or a prefetch.
        #expect(OpenClassifier.reason(Self.open("curl/8.5", relay: true, secondsAfterSigning: 1)) == .appleMPP)
        let gmail = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
        #expect(OpenClassifier.reason(Self.open(gmail)) == .imageProxy)
        #expect(OpenClassifier.reason(Self.open("YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html")) == .imageProxy)
        // A proxy fetches on the person's behalf, even within seconds.
        #expect(OpenClassifier.reason(Self.open(gmail, secondsAfterSigning: 2)) == .imageProxy)
        #expect(OpenClassifier.reason(Self.open("Barracuda Sentinel (EE)")) == .scanner)
        #expect(OpenClassifier.reason(Self.open("python-requests/2.31")) == .scanner)
        #expect(OpenClassifier.reason(Self.open("")) == .scanner)
        #expect(OpenClassifier.reason(Self.open(person, secondsAfterSigning: 9)) == .prefetch)
        #expect(OpenClassifier.reason(Self.open(person, secondsAfterSigning: 10)) == nil)
        #expect(OpenClassifier.Reason.allCases.filter(\.isPersons) == [.imageProxy])
        // Bounded arithmetic: an issued_at near 2^64 built in memory is a prefetch, no trap.
        var far = Self.open(person)
        far.token.issuedAt = UInt64.max - 1
        #expect(OpenClassifier.reason(far) == .prefetch)
    }
}
