import Crypto
import ExtrasBase64

#if canImport(Glibc)
    import Glibc
#endif

/// The token formats (docs/link-tokens.md). Binary, then base64url without padding:
///
///     version(1) | kid length(1) | kid | flags(1) | issued_at(varint)
///     | source_id | delivery_id | customer_id | [link_id] | destination   (each: varint length + UTF-8)
///     | mac(16)
///
/// Version 1 is a link token; version 2 an open token (the pixel's), which ends after
/// `customer_id`. `flags`: bits 0–2 message type, bits 3–4 source kind, bit 5 "link id is
/// the destination" (then `link_id` is left out; always 0 in an open token). `mac` is
/// HMAC-SHA256 over everything before it, keyed with the key named by `kid`, truncated to
/// 128 bits.
public enum TokenCodec {
    /// A link token's version (`/c/`).
    public static let version: UInt8 = 1
    /// An open token's version (`/o/`).
    public static let openVersion: UInt8 = 2
    public static let macSize = 16
    /// The longest token accepted, in characters (an 8 KB URL and long ids fit).
    public static let maxTokenLength = 16_384
    public static let maxKeyIDLength = 16

    /// The signed bytes (everything before the MAC) for `token` under key `kid`.
    static func body(_ token: LinkToken, kid: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(
            32 + token.destination.utf8.count + token.deliveryID.utf8.count + token.customerID.utf8.count
                + token.sourceID.utf8.count + (token.linkID == token.destination ? 0 : token.linkID.utf8.count))
        out.append(version)
        out.append(UInt8(kid.utf8.count))
        out.append(contentsOf: kid.utf8)
        let linkIsDestination = token.linkID == token.destination
        out.append(token.messageType.rawValue | (token.sourceKind.rawValue << 3) | (linkIsDestination ? 1 << 5 : 0))
        Varint.append(token.issuedAt, to: &out)
        appendField(token.sourceID, to: &out)
        appendField(token.deliveryID, to: &out)
        appendField(token.customerID, to: &out)
        if !linkIsDestination { appendField(token.linkID, to: &out) }
        appendField(token.destination, to: &out)
        return out
    }

    /// The signed bytes of an open token under key `kid`.
    static func body(_ token: OpenToken, kid: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(32 + token.deliveryID.utf8.count + token.customerID.utf8.count + token.sourceID.utf8.count)
        out.append(openVersion)
        out.append(UInt8(kid.utf8.count))
        out.append(contentsOf: kid.utf8)
        out.append(token.messageType.rawValue | (token.sourceKind.rawValue << 3))
        Varint.append(token.issuedAt, to: &out)
        appendField(token.sourceID, to: &out)
        appendField(token.deliveryID, to: &out)
        appendField(token.customerID, to: &out)
        return out
    }

    static func appendField(_ text: String, to out: inout [UInt8]) {
        Varint.append(UInt64(text.utf8.count), to: &out)
        out.append(contentsOf: text.utf8)
    }

    static func encode(_ bytes: [UInt8]) -> String {
        Base64.encodeToString(bytes: bytes, options: [.base64UrlAlphabet, .omitPaddingCharacter])
    }

    /// Decodes base64url, refusing any text that is not the canonical encoding of its
    /// bytes (so no two tokens decode to the same bytes).
    ///
    /// Canonical means `encode(decode(t)) == t`. ExtrasBase64 takes an `=` inside the last
    /// group of four as padding even with `.omitPaddingCharacter`, so about one token in 16
    /// had 16 other spellings that verified (issue 12). Refusing every byte outside the
    /// base64url alphabet, a length of 1 mod 4 (no byte count encodes to it) and non-zero
    /// unused bits of the last character leaves exactly the canonical text: checked here as
    /// bytes, without encoding the token again on the edge's hot path
    /// (`KeyRingTests.onlyTheCanonicalSpellingVerifies` and the token fuzz target assert the identity).
    static func decode(_ text: Substring) -> [UInt8]? {
        let utf8 = text.utf8
        guard utf8.count % 4 != 1 else { return nil }
        let alphabetOnly =
            utf8.withContiguousStorageIfAvailable { $0.allSatisfy(isBase64URLByte) }
            ?? utf8.allSatisfy(isBase64URLByte)
        guard alphabetOnly,
            let bytes = try? Base64.decode(bytes: utf8, options: [.base64UrlAlphabet, .omitPaddingCharacter])
        else { return nil }
        // The last character may carry unused low bits; they must be zero.
        if let last = text.utf8.last, bytes.count % 3 != 0 {
            guard let value = base64URLValue(last) else { return nil }
            let unusedBits = bytes.count % 3 == 1 ? 4 : 2
            if value & ((1 << unusedBits) - 1) != 0 { return nil }
        }
        return bytes
    }

    /// The bytes as a string if they are valid UTF-8. `String(decoding:)` has a fast,
    /// non-generic path for buffers and repairs invalid input, so the result is valid exactly
    /// when it holds the same bytes; `String(validating:)` went through generic code that
    /// looked up type metadata on every call (profile of bench/edge.sh).
    static func utf8String(_ bytes: UnsafeRawBufferPointer) -> String? {
        var text = String(decoding: bytes, as: UTF8.self)
        let same = text.withUTF8 { $0.count == bytes.count && (bytes.isEmpty || memcmp($0.baseAddress!, bytes.baseAddress!, bytes.count) == 0) }
        return same ? text : nil
    }

    @inline(__always) static func isBase64URLByte(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z"))
            || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) || c == UInt8(ascii: "-") || c == UInt8(ascii: "_")
    }

    static func base64URLValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "-"): 62
        case UInt8(ascii: "_"): 63
        default: nil
        }
    }

    /// The parts of a token's bytes, located without trusting anything yet.
    struct Layout {
        var kid: String
        var flags: UInt8
        var issuedAt: UInt64
        var fields: [Range<Int>]  // source, delivery, customer, [link, destination]
        var macStart: Int
    }

    /// Splits `bytes` into its parts, checking only structure (lengths, version): a token
    /// of version `expected` (`version` or `openVersion`); the other known version is
    /// `wrongKind`.
    static func layout(_ bytes: [UInt8], expected: UInt8 = version) -> Result<Layout, TokenError> {
        guard bytes.count >= 3 else { return .failure(.truncated) }
        guard bytes[0] == expected else {
            if bytes[0] == version { return .failure(.wrongKind("a link token, not an open token")) }
            if bytes[0] == openVersion { return .failure(.wrongKind("an open token, not a link token")) }
            return .failure(.unsupportedVersion(bytes[0]))
        }
        let kidLength = Int(bytes[1])
        guard kidLength >= 1, kidLength <= maxKeyIDLength else { return .failure(.malformed("key id length \(kidLength)")) }
        var i = 2 + kidLength
        guard i + 1 <= bytes.count else { return .failure(.truncated) }
        guard let kid = bytes.withUnsafeBytes({ utf8String(UnsafeRawBufferPointer(rebasing: $0[2..<i])) }) else {
            return .failure(.malformed("key id is not UTF-8"))
        }
        let flags = bytes[i]
        i += 1
        guard flags & 0b1100_0000 == 0, flags & 0b111 < 5, (flags >> 3) & 0b11 < 3, expected == version || flags & (1 << 5) == 0
        else {
            return .failure(.malformed("unknown flags \(flags)"))
        }
        guard let issued = readVarint(bytes, &i) else { return .failure(.truncated) }
        guard issued <= EventCodec.latestIssuedAt else { return .failure(.malformed("issued_at \(issued) is after the year 9999")) }
        let count = expected == openVersion ? 3 : flags & (1 << 5) != 0 ? 4 : 5
        var fields: [Range<Int>] = []
        fields.reserveCapacity(count)
        for _ in 0..<count {
            guard let length = readVarint(bytes, &i), length <= UInt64(bytes.count) else { return .failure(.truncated) }
            let end = i + Int(length)
            guard end <= bytes.count - macSize else { return .failure(.truncated) }
            fields.append(i..<end)
            i = end
        }
        guard i + macSize <= bytes.count else { return .failure(.truncated) }
        guard i + macSize == bytes.count else { return .failure(.malformed("\(bytes.count - i - macSize) trailing bytes")) }
        return .success(Layout(kid: kid, flags: flags, issuedAt: issued, fields: fields, macStart: i))
    }

    /// A varint in its canonical spelling (`Varint`), nil if there is none at `i`.
    static func readVarint(_ bytes: [UInt8], _ i: inout Int) -> UInt64? {
        bytes.withUnsafeBytes { raw in try? Varint.read(raw, at: &i) }
    }
}
