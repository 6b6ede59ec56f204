/// Byte tests shared by clickd's hand-written scanners (HTML, the `cio_link` tag, HTTP request
/// heads): one definition each, so that the scanners cannot drift apart.
public enum ASCII {
    /// HTML's ASCII whitespace (and Liquid's): space, tab, LF, CR, form feed.
    @inline(__always) public static func isSpace(_ c: UInt8) -> Bool {
        c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d || c == 0x0c
    }

    @inline(__always) public static func isLetter(_ c: UInt8) -> Bool { (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a }

    /// Whether `bytes` equal `lowercase` (lower-case ASCII) with ASCII letters compared
    /// without case. Only letters fold: `| 0x20` alone would also take CR for `-` and SUB
    /// for `:`.
    @inline(__always)
    public static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ lowercase: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count == lowercase.count else { return false }
        for i in 0..<bytes.count {
            let a = bytes[i]
            let b = lowercase[i]
            if a != b, (a | 0x20) != b || b < 0x61 || b > 0x7a { return false }
        }
        return true
    }

    @inline(__always)
    public static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ lowercase: StaticString) -> Bool {
        equalsIgnoringCase(bytes, UnsafeRawBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount))
    }
}
