import ClickdTestSupport
import Crypto
import Foundation
import Testing

@testable import LinkTracking

@Suite struct KeyRingTests {
    @Test func roundTripsGeneratedTokens() throws {
        var rng = SplitMix64(seed: 3)
        let alphabet = Array("abcXYZ019-._~:/?#[]@!$&'()*+,;=%é✓漢😀 ")
        func text(_ max: Int) -> String { String((0..<Int.random(in: 1...max, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }) }
        for _ in 0..<2000 {
            let token = LinkToken(
                destination: "https://" + text(300), deliveryID: text(40), customerID: text(40),
                sourceKind: LinkToken.SourceKind.allCases.randomElement(using: &rng)!, sourceID: text(20),
                messageType: LinkToken.MessageType.allCases.randomElement(using: &rng)!,
                linkID: Bool.random(using: &rng) ? nil : text(50), issuedAt: UInt64.random(in: 0...UInt64(UInt32.max) * 4, using: &rng))
            let signed = try Fixtures.ring.sign(token)
            #expect(signed.utf8.allSatisfy { TokenCodec.base64URLValue($0) != nil }, "URL-safe")
            #expect(try Fixtures.ring.verify(signed).get() == token)
        }
    }

    /// The hand-assembled HMAC (PreparedHMAC) equals swift-crypto's HMAC<SHA256> for keys
    /// shorter than, equal to and longer than the block, and messages of many lengths.
    @Test func preparedHMACEqualsSwiftCryptoHMAC() {
        var rng = SplitMix64(seed: 11)
        for keyLength in [0, 1, 16, 32, 63, 64, 65, 100, 200] {
            let key = (0..<keyLength).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let prepared = PreparedHMAC(key: key)
            for messageLength in [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 300, 1000] {
                let message = (0..<messageLength).map { _ in UInt8.random(in: 0...255, using: &rng) }
                let expected = Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
                #expect(prepared.mac(message[...]) == expected, "key \(keyLength) bytes, message \(messageLength) bytes")
                let verified = message.withUnsafeBytes { m in
                    expected.withUnsafeBytes { prepared.verify(m, truncatedMAC: UnsafeRawBufferPointer(rebasing: $0[..<16])) }
                }
                #expect(verified)
                var wrong = expected
                wrong[Int.random(in: 0..<16, using: &rng)] ^= 1
                let refused = message.withUnsafeBytes { m in
                    wrong.withUnsafeBytes { prepared.verify(m, truncatedMAC: UnsafeRawBufferPointer(rebasing: $0[..<16])) }
                }
                #expect(!refused)
            }
        }
    }

    @Test func everySingleByteChangeFails() throws {
        let signed = try Fixtures.ring.sign(Fixtures.token())
        let bytes = Array(signed.utf8)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8) + [UInt8(ascii: "="), UInt8(ascii: "."), 0xff]
        var tried = 0
        for i in bytes.indices {
            for replacement in alphabet where replacement != bytes[i] {
                var changed = bytes
                changed[i] = replacement
                let text = String(decoding: changed, as: UTF8.self)
                if case .success = Fixtures.ring.verify(text) { Issue.record("changing byte \(i) to \(replacement) still verified") }
                tried += 1
            }
        }
        #expect(tried > 5_000)
        // Dropping or adding a character fails too.
        for cut in 0..<bytes.count {
            if case .success = Fixtures.ring.verify(String(decoding: bytes[0..<cut], as: UTF8.self)) { Issue.record("prefix \(cut) verified") }
        }
        if case .success = Fixtures.ring.verify(signed + "A") { Issue.record("extended token verified") }
    }

    @Test func eachFailureIsDistinctAndTyped() throws {
        let token = Fixtures.token()
        let signed = try Fixtures.ring.sign(token)
        // Signed by the newest active key.
        #expect(try TokenCodec.layout(TokenCodec.decode(signed[...])!).get().kid == "new")
        let oldOnly = try KeyRing(keys: [KeyRing.makeKey(kid: "old", secret: Fixtures.secretA, created: "2026-01-01T00:00:00Z")])
        let byOld = try oldOnly.sign(token)
        #expect(try Fixtures.ring.verify(byOld).get() == token, "an older active key still verifies")
        let retired = try KeyRing(keys: [KeyRing.makeKey(kid: "gone", secret: [UInt8](repeating: 0xC3, count: 32), created: "x")]).sign(token)
        #expect(Fixtures.ring.verify(retired) == .failure(.retiredKey("gone")))
        let stranger = try KeyRing(keys: [KeyRing.makeKey(kid: "who", secret: Fixtures.secretA, created: "x")]).sign(token)
        #expect(Fixtures.ring.verify(stranger) == .failure(.unknownKey("who")))
        // Same kid, other secret: a forgery.
        let forged = try KeyRing(keys: [KeyRing.makeKey(kid: "new", secret: Fixtures.secretA, created: "x")]).sign(token)
        #expect(Fixtures.ring.verify(forged) == .failure(.badSignature))
        var bytes = TokenCodec.decode(signed[...])!
        bytes[0] = 9
        #expect(Fixtures.ring.verify(TokenCodec.encode(bytes)) == .failure(.unsupportedVersion(9)))
        let decoded = TokenCodec.decode(signed[...])!
        #expect(Fixtures.ring.verify(TokenCodec.encode(Array(decoded.prefix(decoded.count - 17)))) == .failure(.truncated))
        #expect(Fixtures.ring.verify(TokenCodec.encode(Array(decoded.prefix(8)))) == .failure(.truncated))
        #expect(Fixtures.ring.verify("") == .failure(.malformed("not base64url")) || Fixtures.ring.verify("") == .failure(.truncated))
        #expect(Fixtures.ring.verify("abc!def") == .failure(.malformed("not base64url")))
        #expect(
            Fixtures.ring.verify(String(repeating: "A", count: TokenCodec.maxTokenLength + 1)) == .failure(.tooLong(TokenCodec.maxTokenLength + 1)))
        // Every failure has a stable metric name.
        #expect(
            Set(
                [
                    TokenError.malformed(""), .tooLong(0), .truncated, .unsupportedVersion(0), .unknownKey(""), .retiredKey(""),
                    .badSignature, .invalidField(""),
                ].map(\.reason)
            ).count == 8)
    }

    /// Issue 12, item 12: `=` inside the last group of four was taken as padding, so about a
    /// sixteenth of tokens had 16 other spellings that verified. Now a token verifies only in
    /// its canonical spelling: whatever verifies re-encodes to exactly the text given.
    @Test func onlyTheCanonicalSpellingVerifies() throws {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/")
        var spellingsChecked = 0
        for i in 0..<64 {
            let signed = try Fixtures.ring.sign(Fixtures.token("https://example.com/" + String(repeating: "p", count: i)))
            var variants: [String] = [signed + "=", signed + "==", signed + "A", String(signed.dropLast())]
            let chars = Array(signed)
            for position in max(0, chars.count - 4)..<chars.count {
                for c in alphabet where c != chars[position] {
                    var changed = chars
                    changed[position] = c
                    variants.append(String(changed))
                }
                var inserted = chars
                inserted.insert("=", at: position)
                variants.append(String(inserted))
            }
            for variant in variants {
                spellingsChecked += 1
                guard case .success = Fixtures.ring.verify(variant) else { continue }
                Issue.record("a second spelling verified: \(variant) for \(signed)")
            }
            #expect(TokenCodec.encode(TokenCodec.decode(signed[...])!) == signed)
        }
        #expect(spellingsChecked > 10_000)
    }

    @Test func randomGarbageNeverCrashesOrVerifies() {
        var rng = SplitMix64(seed: 11)
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...200, using: &rng)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if case .success = Fixtures.ring.verify(TokenCodec.encode(bytes)) { Issue.record("random bytes verified") }
            if case .success = Fixtures.ring.verify(String(decoding: bytes, as: UTF8.self)) { Issue.record("random text verified") }
        }
    }

    @Test func parsesTheFileFormatAndNamesBadLines() throws {
        let line1 = KeyRing.generateLine(kid: "k1", created: "2026-01-01T00:00:00Z")
        let line2 = KeyRing.generateLine(kid: "k2", created: "2026-02-01T00:00:00Z")
        let ring = try KeyRing.parse("# comment\n\n\(line1)\n\(line2.replacingOccurrences(of: "active", with: "retired"))  # rotated out\n")
        #expect(ring.keys.map(\.kid) == ["k1", "k2"])
        #expect(ring.signingKey?.kid == "k1", "the newest active key signs; k2 is retired")
        let newer = try KeyRing.parse(line1 + "\n" + line2)
        #expect(newer.signingKey?.kid == "k2")
        func error(_ text: String) -> KeyRingError? {
            do {
                _ = try KeyRing.parse(text)
                return nil
            } catch { return error }
        }
        #expect(error("")?.message.contains("no keys") == true)
        #expect(error("\(line1)\nkey k3 short 2026 active")?.line == 2)
        #expect(error("kee k1 x y active")?.line == 1)
        #expect(error(line1.replacingOccurrences(of: "active", with: "maybe"))?.message.contains("active") == true)
        #expect(error("\(line1)\n\(line1)")?.message.contains("twice") == true)
        #expect(error(line1.replacingOccurrences(of: "key k1", with: "key this-key-id-is-too-long"))?.line == 1)
        let allRetired = try KeyRing.parse(line1.replacingOccurrences(of: "active", with: "retired"))
        #expect(allRetired.signingKey == nil)
        #expect(throws: KeyRingError.self) { try allRetired.sign(Fixtures.token()) }
    }
}
