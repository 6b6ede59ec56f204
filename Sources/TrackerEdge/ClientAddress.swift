import NIOCore

/// The client address of a request, as the privacy mode allows it to be recorded.
public enum ClientAddress {
    /// The address bytes of `address` (4 or 16), cut as `mode` says.
    public static func record(_ address: SocketAddress?, mode: EdgeConfiguration.IPMode) -> [UInt8] {
        guard mode != .none, let address else { return [] }
        var bytes: [UInt8]
        switch address {
        case .v4(let v4):
            bytes = withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6):
            bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            // An IPv4-mapped IPv6 address is recorded as the IPv4 address it is.
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff { bytes = Array(bytes[12...]) }
        default:
            return []
        }
        return truncate(bytes, mode: mode)
    }

    /// IPv4 keeps its first 3 bytes (/24), IPv6 its first 6 (/48), in `.truncated` mode.
    public static func truncate(_ bytes: [UInt8], mode: EdgeConfiguration.IPMode) -> [UInt8] {
        switch mode {
        case .none: return []
        case .full: return bytes
        case .truncated:
            var cut = bytes
            let keep = bytes.count == 4 ? 3 : 6
            for i in keep..<cut.count { cut[i] = 0 }
            return cut
        }
    }
}
