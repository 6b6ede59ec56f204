/// Lower-case hexadecimal text, the one formatter clickd uses for bytes and numbers
/// (segment names, checksums in errors, UUIDs, dumped payloads).
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Two digits per byte, no separator, no prefix.
    public static func string(_ bytes: some Sequence<UInt8>) -> String {
        var text: [UInt8] = []
        text.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// `value` in at least `width` digits, zero-padded on the left.
    public static func padded(_ value: some FixedWidthInteger & UnsignedInteger, width: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}
