import Crypto
import ExtrasBase64

/// The signing keys of a tracking domain, read from a key-ring file (docs/link-tokens.md):
///
///     # clickd key ring — keep it secret; one key per line
///     key k7f2 q8Yl…(43 chars)… 2026-11-29T04:00:00Z active
///     key k1a9 Zx3b…            2026-05-01T00:00:00Z retired
///
/// New links are signed with the newest active key (by creation time, then file order);
/// every active key verifies, so links signed before a rotation keep working until their
/// key is marked `retired`.
public struct KeyRing: Sendable {
    public struct Key: Sendable {
        public let kid: String
        public let created: String
        public let retired: Bool
        let secret: [UInt8]
        /// The HMAC state after the key pads, copied for each token.
        let prepared: PreparedHMAC
    }

    public let keys: [Key]
    private let index: [String: Int]
    /// The key new links are signed with; nil when every key is retired.
    public let signingKey: Key?

    public init(keys: [Key]) throws(KeyRingError) {
        var index: [String: Int] = [:]
        for (i, key) in keys.enumerated() {
            if index[key.kid] != nil { throw KeyRingError(line: nil, message: "key id '\(key.kid)' appears twice") }
            index[key.kid] = i
        }
        self.keys = keys
        self.index = index
        signingKey =
            keys.enumerated().filter { !$0.element.retired }
            .max { a, b in (a.element.created, a.offset) < (b.element.created, b.offset) }?.element
    }

    /// Parses the key-ring file's text.
    public static func parse(_ text: String) throws(KeyRingError) -> KeyRing {
        var keys: [Key] = []
        for (n, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            let lineNumber = n + 1
            guard fields[0] == "key" else {
                throw KeyRingError(line: lineNumber, message: "expected 'key KID SECRET CREATED active|retired', found '\(fields[0])'")
            }
            guard fields.count == 5 else {
                throw KeyRingError(line: lineNumber, message: "expected 5 fields (key KID SECRET CREATED active|retired), found \(fields.count)")
            }
            let kid = String(fields[1])
            guard isValidKeyID(kid) else {
                throw KeyRingError(
                    line: lineNumber, message: "key id '\(kid)' must be 1–\(TokenCodec.maxKeyIDLength) characters of A–Z a–z 0–9 . _ -")
            }
            guard let secret = try? Base64.decode(bytes: fields[2].utf8, options: [.base64UrlAlphabet, .omitPaddingCharacter]),
                secret.count == 32
            else {
                throw KeyRingError(line: lineNumber, message: "secret of key '\(kid)' is not 32 bytes of base64url")
            }
            let state = fields[4]
            guard state == "active" || state == "retired" else {
                throw KeyRingError(line: lineNumber, message: "state of key '\(kid)' must be 'active' or 'retired', not '\(state)'")
            }
            keys.append(makeKey(kid: kid, secret: secret, created: String(fields[3]), retired: state == "retired"))
        }
        guard !keys.isEmpty else { throw KeyRingError(line: nil, message: "the key ring holds no keys (generate one with 'clickd keys generate')") }
        return try KeyRing(keys: keys)
    }

    public static func makeKey(kid: String, secret: [UInt8], created: String, retired: Bool = false) -> Key {
        Key(
            kid: kid, created: created, retired: retired, secret: secret,
            prepared: PreparedHMAC(key: secret))
    }

    public static func isValidKeyID(_ kid: String) -> Bool {
        !kid.isEmpty && kid.utf8.count <= TokenCodec.maxKeyIDLength
            && kid.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x2e || c == 0x5f
            }
    }

    /// One key-ring line for a new random 256-bit key.
    public static func generateLine(kid: String, created: String) -> String {
        let secret = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let text = Base64.encodeToString(bytes: secret, options: [.base64UrlAlphabet, .omitPaddingCharacter])
        return "key \(kid) \(text) \(created) active"
    }

    /// Signs `token` with the signing key and returns its text (no base URL).
    public func sign(_ token: LinkToken) throws(KeyRingError) -> String {
        Self.sign(token, with: try signer())
    }

    static func sign(_ token: LinkToken, with key: Key) -> String { seal(TokenCodec.body(token, kid: key.kid), with: key) }

    /// The key new tokens are signed with.
    private func signer() throws(KeyRingError) -> Key {
        guard let key = signingKey else { throw KeyRingError(line: nil, message: "every key in the key ring is retired: add a new one") }
        return key
    }

    /// A token's text: `body` and its MAC under `key`, in base64url.
    private static func seal(_ body: [UInt8], with key: Key) -> String {
        var bytes = body
        bytes.append(contentsOf: key.prepared.mac(bytes[...]).prefix(TokenCodec.macSize))
        return TokenCodec.encode(bytes)
    }

    /// Checks a token's text and returns what it carries, or exactly why it was refused.
    public func verify(_ text: Substring) -> Result<LinkToken, TokenError> {
        verifyNamingKey(text).map(\.token)
    }

    /// `verify`, also returning the id of the key that signed the token.
    public func verifyNamingKey(_ text: Substring) -> Result<(token: LinkToken, keyID: String), TokenError> {
        let bytes: [UInt8]
        let layout: TokenCodec.Layout
        switch signedLayout(text, version: TokenCodec.version) {
        case .success(let found): (bytes, layout) = found
        case .failure(let error): return .failure(error)
        }
        // The fields are read only after the signature holds, straight from the buffer (no
        // array of strings: this runs for every click the edge answers).
        let linkIsDestination = layout.flags & (1 << 5) != 0
        let token: LinkToken? = bytes.withUnsafeBytes { raw in
            func field(_ i: Int) -> String? { TokenCodec.utf8String(UnsafeRawBufferPointer(rebasing: raw[layout.fields[i]])) }
            guard let source = field(0), let delivery = field(1), let customer = field(2),
                let destination = field(layout.fields.count - 1),
                let link = linkIsDestination ? destination : field(3)
            else { return nil }
            return LinkToken(
                destination: destination, deliveryID: delivery, customerID: customer,
                sourceKind: LinkToken.SourceKind(rawValue: (layout.flags >> 3) & 0b11)!, sourceID: source,
                messageType: LinkToken.MessageType(rawValue: layout.flags & 0b111)!,
                linkID: link, issuedAt: layout.issuedAt)
        }
        guard let token else { return .failure(.invalidField("not UTF-8")) }
        // The signer leaves the link id out when it is the destination: written out, it is
        // another spelling of the same token (found by the token fuzz target).
        if !linkIsDestination, token.linkID == token.destination { return .failure(.malformed("link id written out but equal to the destination")) }
        // An id with a control character is never signed now, but links signed before may
        // hold one: refused (404, counted) so it never reaches the log and the database.
        if Self.holdsControlCharacter(bytes, layout.fields.dropLast()) { return .failure(.invalidField("control character in an id")) }
        return .success((token, layout.kid))
    }

    /// Signs the open token `token` with the signing key and returns its text.
    public func sign(_ token: OpenToken) throws(KeyRingError) -> String {
        let key = try signer()
        return Self.seal(TokenCodec.body(token, kid: key.kid), with: key)
    }

    /// Checks an open token's text (the pixel's, `/o/`) and returns what it carries and the
    /// key that signed it, or exactly why it was refused — in the order and with the errors
    /// of a link token's verification; a link token here is `wrongKind`.
    public func verifyOpen(_ text: Substring) -> Result<(token: OpenToken, keyID: String), TokenError> {
        let bytes: [UInt8]
        let layout: TokenCodec.Layout
        switch signedLayout(text, version: TokenCodec.openVersion) {
        case .success(let found): (bytes, layout) = found
        case .failure(let error): return .failure(error)
        }
        let token: OpenToken? = bytes.withUnsafeBytes { raw in
            func field(_ i: Int) -> String? { TokenCodec.utf8String(UnsafeRawBufferPointer(rebasing: raw[layout.fields[i]])) }
            guard let source = field(0), let delivery = field(1), let customer = field(2) else { return nil }
            return OpenToken(
                deliveryID: delivery, customerID: customer, sourceKind: LinkToken.SourceKind(rawValue: (layout.flags >> 3) & 0b11)!,
                sourceID: source, messageType: LinkToken.MessageType(rawValue: layout.flags & 0b111)!, issuedAt: layout.issuedAt)
        }
        guard let token else { return .failure(.invalidField("not UTF-8")) }
        if Self.holdsControlCharacter(bytes, layout.fields[...]) { return .failure(.invalidField("control character in an id")) }
        return .success((token, layout.kid))
    }

    /// The checks both kinds of token share, in order: length, canonical base64url,
    /// structure of `version`, key, MAC. Returns the bytes and their layout.
    private func signedLayout(_ text: Substring, version: UInt8) -> Result<([UInt8], TokenCodec.Layout), TokenError> {
        guard text.utf8.count <= TokenCodec.maxTokenLength else { return .failure(.tooLong(text.utf8.count)) }
        guard let bytes = TokenCodec.decode(text) else { return .failure(.malformed("not base64url")) }
        let layout: TokenCodec.Layout
        switch TokenCodec.layout(bytes, expected: version) {
        case .success(let l): layout = l
        case .failure(let error): return .failure(error)
        }
        guard let keyIndex = index[layout.kid] else { return .failure(.unknownKey(layout.kid)) }
        if keys[keyIndex].retired { return .failure(.retiredKey(layout.kid)) }
        let signed = bytes.withUnsafeBytes { raw in
            keys[keyIndex].prepared.verify(
                UnsafeRawBufferPointer(rebasing: raw[..<layout.macStart]),
                truncatedMAC: UnsafeRawBufferPointer(rebasing: raw[layout.macStart...]))
        }
        guard signed else { return .failure(.badSignature) }
        return .success((bytes, layout))
    }

    /// Whether any of the `fields` of `bytes` holds a control character.
    private static func holdsControlCharacter(_ bytes: [UInt8], _ fields: ArraySlice<Range<Int>>) -> Bool {
        bytes.withUnsafeBytes { raw in fields.contains { LinkToken.hasControlCharacter(UnsafeRawBufferPointer(rebasing: raw[$0])) } }
    }

    public func verify(_ text: String) -> Result<LinkToken, TokenError> { verify(text[...]) }

    public func verifyOpen(_ text: String) -> Result<(token: OpenToken, keyID: String), TokenError> { verifyOpen(text[...]) }
}

/// Compares two byte sequences of equal length in time independent of their contents
/// (the one such compare of clickd: MACs, the admin token).
public func constantTimeEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for (x, y) in zip(a, b) { difference |= x ^ y }
    return difference == 0
}

/// An HMAC-SHA256 (RFC 2104) keyed once: each MAC copies the two hash states left by the
/// key pads instead of hashing the pads again.
///
/// Built from swift-crypto's `SHA256` rather than its `HMAC<SHA256>`, whose methods are
/// generic over `DataProtocol` and not inlinable: every call looked up generic metadata at
/// run time, which was most of the edge's token verification in a profile of
/// bench/edge.sh. `SHA256.update(bufferPointer:)` is concrete. A test checks that the two
/// agree on keys and messages of many lengths
/// (`KeyRingTests.preparedHMACEqualsSwiftCryptoHMAC`).
struct PreparedHMAC: Sendable {
    /// The states after hashing the key XOR ipad and the key XOR opad; copied, never mutated.
    private let inner: SHA256
    private let outer: SHA256

    init(key: [UInt8]) {
        var block = key.count > SHA256.blockByteCount ? SHA256.hash(data: key).withUnsafeBytes { Array($0) } : key
        block += [UInt8](repeating: 0, count: SHA256.blockByteCount - block.count)
        var inner = SHA256()
        var outer = SHA256()
        block.map { $0 ^ 0x36 }.withUnsafeBytes { inner.update(bufferPointer: $0) }
        block.map { $0 ^ 0x5c }.withUnsafeBytes { outer.update(bufferPointer: $0) }
        self.inner = inner
        self.outer = outer
    }

    func code(_ message: UnsafeRawBufferPointer) -> SHA256Digest {
        var inner = self.inner
        inner.update(bufferPointer: message)
        var outer = self.outer
        inner.finalize().withUnsafeBytes { outer.update(bufferPointer: $0) }
        return outer.finalize()
    }

    func mac(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        bytes.withUnsafeBytes { code($0) }.withUnsafeBytes { Array($0) }
    }

    /// Whether `truncatedMAC` is the leading bytes of the MAC of `message`, compared in
    /// constant time, on raw buffers (no arrays on the edge's hot path).
    func verify(_ message: UnsafeRawBufferPointer, truncatedMAC: UnsafeRawBufferPointer) -> Bool {
        code(message).withUnsafeBytes { code in
            truncatedMAC.count <= code.count
                && constantTimeEqual(UnsafeRawBufferPointer(rebasing: code[..<truncatedMAC.count]), truncatedMAC)
        }
    }
}

public struct KeyRingError: Error, Equatable, Sendable, CustomStringConvertible {
    public var line: Int?
    public var message: String

    public var description: String {
        if let line { return "key ring line \(line): \(message)" }
        return "key ring: \(message)"
    }
}
