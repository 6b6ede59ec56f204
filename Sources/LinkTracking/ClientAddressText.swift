#if canImport(Glibc)
    import Glibc
#endif

/// Client addresses as bytes (4 for IPv4, 16 for IPv6) and text, and who the client of a
/// request is behind trusted proxies. Shared by the edge (the address a click records) and
/// the report (the client its log lines name), so `--trust-proxy` means one thing.
public enum ClientAddressText {
    /// Text for a recorded client address: dotted IPv4, or IPv6 in eight groups; nil for none.
    public static func format(_ bytes: [UInt8]) -> String? {
        switch bytes.count {
        case 4: return bytes.map(String.init).joined(separator: ".")
        case 16:
            return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
        default: return nil
        }
    }

    /// 4 or 16 bytes for an IPv4 or IPv6 address in text, `[…]` allowed around IPv6;
    /// IPv4-mapped IPv6 becomes IPv4. nil for anything else.
    public static func parse(_ text: String) -> [UInt8]? {
        var text = text
        if text.hasPrefix("["), let end = text.firstIndex(of: "]") { text = String(text[text.index(after: text.startIndex)..<end]) }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return unmapped(withUnsafeBytes(of: v6) { Array($0) }) }
        return nil
    }

    /// `::ffff:a.b.c.d` as the 4 bytes of IPv4; any other address unchanged.
    public static func unmapped(_ bytes: [UInt8]) -> [UInt8] {
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff { return Array(bytes[12...]) }
        return bytes
    }

    /// The client of a request that came from `peer`: the peer itself, or — when the peer
    /// is a trusted proxy — the right-most address of `X-Forwarded-For` that is not itself a
    /// trusted proxy. A hop that is not an address stops the walk at the last one trusted
    /// (what lies left of garbage was written by someone we cannot vouch for).
    public static func client(peer: [UInt8], forwardedFor: String?, trusted: [CIDR]) -> [UInt8] {
        guard !trusted.isEmpty, let forwardedFor, trusted.contains(where: { $0.contains(peer) }) else { return peer }
        var candidate = peer
        for hop in forwardedFor.split(separator: ",").reversed() {
            guard let address = parse(hop.trimmingSpaces()) else { return candidate }
            candidate = address
            if !trusted.contains(where: { $0.contains(address) }) { return address }
        }
        return candidate
    }
}

/// An address range, `10.0.0.0/8` or `2001:db8::/32` (a bare address is a /32 or /128):
/// what `--trust-proxy` takes.
public struct CIDR: Sendable, Equatable, CustomStringConvertible {
    public let address: [UInt8]
    public let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let first = parts.first, let address = ClientAddressText.parse(String(first)) else { return nil }
        let bits = address.count * 8
        if parts.count == 2 {
            guard parts[1].utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }), let prefix = Int(parts[1]),
                (0...bits).contains(prefix)
            else { return nil }
            self.prefix = prefix
        } else {
            self.prefix = bits
        }
        self.address = address
    }

    /// Ranges as a command line gives them: each argument one or more, separated by commas;
    /// the failure names the first that is not an address or a range.
    public static func list(_ arguments: [String]) -> Result<[CIDR], InvalidRange> {
        var ranges: [CIDR] = []
        for argument in arguments {
            for part in argument.split(separator: ",", omittingEmptySubsequences: false) {
                let text = String(part).trimmingSpaces()
                guard let range = CIDR(text) else { return .failure(InvalidRange(text: text)) }
                ranges.append(range)
            }
        }
        return .success(ranges)
    }

    public struct InvalidRange: Error, CustomStringConvertible {
        public let text: String
        public var description: String { "'\(text)' is not an address or CIDR range" }
    }

    public func contains(_ other: [UInt8]) -> Bool {
        guard other.count == address.count else { return false }
        var remaining = prefix
        for i in address.indices where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xff : ~(0xff >> UInt8(remaining))
            if address[i] & mask != other[i] & mask { return false }
            remaining -= 8
        }
        return true
    }

    public var description: String { "\(ClientAddressText.format(address) ?? "")/\(prefix)" }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        var s = self[...]
        while let c = s.first, c == " " || c == "\t" { s = s.dropFirst() }
        while let c = s.last, c == " " || c == "\t" { s = s.dropLast() }
        return String(s)
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String { self[...].trimmingSpaces() }
}
