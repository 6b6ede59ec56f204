/// LEB128 varints (7 bits a byte, low group first, high bit = more follow) as tokens and log
/// events spell their numbers — in one canonical spelling only: no trailing zero group
/// (`0x80 0x00` for 0) and no bits past 64, so that no two byte strings stand for one value.
/// Found by the `token` fuzz target, where a non-minimal varint verified and signed back
/// differently (Tests/Fuzz/Corpus/token/crash-36dd…); events read the same way, so a record
/// has one spelling too.
public enum Varint {
    public enum Failure: Error, Equatable {
        /// The bytes end inside the varint.
        case truncated
        /// Not the canonical spelling, or more than 64 bits.
        case invalid
    }

    /// The varint at `index` in `bytes`; `index` moves past it.
    @inline(__always)
    public static func read(_ bytes: UnsafeRawBufferPointer, at index: inout Int) throws(Failure) -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard index < bytes.count else { throw .truncated }
            let byte = bytes[index]
            index += 1
            // The tenth byte holds bit 63 alone.
            if shift == 63, byte > 1 { throw .invalid }
            value |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 {
                if shift > 0, byte == 0 { throw .invalid }
                return value
            }
            shift += 7
        }
    }

    /// Appends `value` in its canonical spelling.
    public static func append(_ value: UInt64, to out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }
}
