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

    /// The client of a request: the peer, or — when the peer is a trusted proxy — the
    /// right-most address in `X-Forwarded-For` that is not itself a trusted proxy
    /// (`ClientAddressText.client`, which the report shares).
    public static func client(peer: SocketAddress?, forwardedFor: String?, trusted: [CIDR]) -> [UInt8] {
        guard let peerBytes = bytes(of: peer) else { return [] }
        return ClientAddressText.client(peer: peerBytes, forwardedFor: forwardedFor, trusted: trusted)
    }

    /// The peer's address bytes, read from the socket address without going through text
    /// (this runs for every click).
    public static func bytes(of address: SocketAddress?) -> [UInt8]? {
        switch address {
        case .v4(let v4)?: return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6)?: return ClientAddressText.unmapped(withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) })
        default: return nil
        }
    }
}
