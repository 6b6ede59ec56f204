import Foundation
import LinkTracking
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// The client address of a request, as the privacy mode allows it to be recorded.
public enum ClientAddress {
    /// IPv4 keeps its first 3 bytes (/24), IPv6 its first 6 (/48), in `.truncated` mode.
    public static func truncate(_ bytes: [UInt8], mode: EdgeConfiguration.IPMode) -> [UInt8] {
        switch mode {
        case .none: return []
        case .full: return bytes
        case .truncated:
            // No address (a peer without one, as a Unix socket has) or a length no address has.
            guard bytes.count == 4 || bytes.count == 16 else { return [] }
            var cut = bytes
            let keep = bytes.count == 4 ? 3 : 6
            for i in keep..<cut.count { cut[i] = 0 }
            return cut
        }
    }
}

/// An address range, `10.0.0.0/8` or `2001:db8::/32` (a bare address is a /32 or /128).
public struct CIDR: Sendable, Equatable, CustomStringConvertible {
    public let address: [UInt8]
    public let prefix: Int

    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let first = parts.first, let address = ClientAddress.parse(String(first)) else { return nil }
        let bits = address.count * 8
        if parts.count == 2 {
            guard let prefix = Int(parts[1]), (0...bits).contains(prefix) else { return nil }
            self.prefix = prefix
        } else {
            self.prefix = bits
        }
        self.address = address
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

    public var description: String { "\(ClientAddress.format(address))/\(prefix)" }
}

extension ClientAddress {
    /// The client of a request: the peer, or — when the peer is a trusted proxy — the
    /// right-most address in `X-Forwarded-For` that is not itself a trusted proxy.
    public static func client(peer: SocketAddress?, forwardedFor: String?, trusted: [CIDR]) -> [UInt8] {
        guard let peerBytes = bytes(of: peer) else { return [] }
        guard !trusted.isEmpty, let forwardedFor, trusted.contains(where: { $0.contains(peerBytes) }) else { return peerBytes }
        let hops = forwardedFor.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        var candidate = peerBytes
        for hop in hops.reversed() {
            guard let address = parse(hop) else { return candidate }  // garbage: stop at what we trust
            candidate = address
            if !trusted.contains(where: { $0.contains(address) }) { return address }
        }
        return candidate
    }

    static func bytes(of address: SocketAddress?) -> [UInt8]? {
        switch address {
        case .v4(let v4)?: return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6)?:
            let b = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff { return Array(b[12...]) }
            return b
        default: return nil
        }
    }

    /// 4 or 16 bytes for an IPv4 or IPv6 address in text (IPv4-mapped IPv6 becomes IPv4).
    public static func parse(_ text: String) -> [UInt8]? {
        var text = text
        if text.hasPrefix("["), let end = text.firstIndex(of: "]") { text = String(text[text.index(after: text.startIndex)..<end]) }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            let b = withUnsafeBytes(of: v6) { Array($0) }
            if b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xff && b[11] == 0xff { return Array(b[12...]) }
            return b
        }
        return nil
    }

    public static func format(_ bytes: [UInt8]) -> String { ClientAddressText.format(bytes) ?? "" }
}
