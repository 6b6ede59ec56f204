/// The fixed 48-byte header at the start of every segment file (see docs/log-format.md).
///
///     0           8         10         12         16              32          40         44       48
///     +-----------+---------+----------+----------+---------------+-----------+----------+--------+
///     | "CLICKDSG" | version | hdr size | reserved | log_id (16 B) | first_lsn | reserved | crc32c |
///     +-----------+---------+----------+----------+---------------+-----------+----------+--------+
///
/// The CRC-32C at 44 covers bytes 0..<44, so no header byte goes unchecked.
public struct SegmentHeader: Equatable, Sendable {
    public static let size = 48
    public static let magic: [UInt8] = Array("CLICKDSG".utf8)
    /// Segment format 2 ends a sealed segment with a `SegmentFooter`; format 1 (logs written
    /// before clickd sealed by time) ends at its last record. Both are read.
    public static let currentVersion: UInt16 = 2
    public static let readableVersions: ClosedRange<UInt16> = 1...2

    public var version: UInt16
    public var logID: LogID
    public var firstLSN: UInt64

    /// Whether this segment, once sealed, ends with a seal footer (format 2 and later).
    public var sealsWithFooter: Bool { version >= 2 }

    public init(version: UInt16 = SegmentHeader.currentVersion, logID: LogID, firstLSN: UInt64) {
        self.version = version
        self.logID = logID
        self.firstLSN = firstLSN
    }

    public func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        bytes.withUnsafeMutableBytes { raw in
            for (i, byte) in Self.magic.enumerated() { raw[i] = byte }
            raw.storeBytes(of: version.littleEndian, toByteOffset: 8, as: UInt16.self)
            raw.storeBytes(of: UInt16(Self.size).littleEndian, toByteOffset: 10, as: UInt16.self)
            for (i, byte) in logID.bytes.enumerated() { raw[16 + i] = byte }
            raw.storeBytes(of: firstLSN.littleEndian, toByteOffset: 32, as: UInt64.self)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<44]))
            raw.storeBytes(of: crc.littleEndian, toByteOffset: 44, as: UInt32.self)
        }
        return bytes
    }

    public enum DecodeError: Error, Equatable {
        case tooShort
        case badMagic
        case badChecksum
        case unsupportedVersion(UInt16)
    }

    public static func decode(_ raw: UnsafeRawBufferPointer) -> Result<SegmentHeader, DecodeError> {
        guard raw.count >= size else { return .failure(.tooShort) }
        guard raw[0..<8].elementsEqual(magic) else { return .failure(.badMagic) }
        let stored = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 44, as: UInt32.self))
        guard stored == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<44])) else {
            return .failure(.badChecksum)
        }
        let version = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
        guard readableVersions.contains(version) else { return .failure(.unsupportedVersion(version)) }
        let logID = LogID(bytes: Array(raw[16..<32]))
        let first = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 32, as: UInt64.self))
        return .success(SegmentHeader(version: version, logID: logID, firstLSN: first))
    }
}

/// Segment files are named after the LSN of their first record: 16 lowercase hex digits
/// and `.seg`, so that names sort in log order.
public enum SegmentName {
    public static let suffix = ".seg"

    public static func fileName(firstLSN: UInt64) -> String {
        Hex.padded(firstLSN, width: 16) + suffix
    }

    /// The first LSN a segment file name stands for, or nil if the name is not a segment's:
    /// exactly 16 lowercase hex digits (no sign, no upper case: `UInt64(_:radix:)` alone
    /// takes `+…`) naming an LSN of 1 or more (LSNs start at 1; a stray `0000000000000000.seg`
    /// would otherwise make `firstLSN - 1` trap).
    public static func firstLSN(of fileName: String) -> UInt64? {
        let utf8 = fileName.utf8
        guard fileName.hasSuffix(suffix), utf8.count == 16 + suffix.utf8.count else { return nil }
        var value: UInt64 = 0
        for c in utf8.prefix(16) {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = value << 4 | UInt64(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = value << 4 | UInt64(c - UInt8(ascii: "a") + 10)
            default: return nil
            }
        }
        return value == 0 ? nil : value
    }
}
