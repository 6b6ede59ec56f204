/// Text for a recorded client address: dotted IPv4, or IPv6 in eight groups; nil for none.
public enum ClientAddressText {
    public static func format(_ bytes: [UInt8]) -> String? {
        switch bytes.count {
        case 4: return bytes.map(String.init).joined(separator: ".")
        case 16:
            return stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
        default: return nil
        }
    }
}
