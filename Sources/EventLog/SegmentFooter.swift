/// The 64-byte seal footer that ends every sealed segment of segment format 2
/// (docs/log-format.md, docs/design/archive.md): with it a segment can be checked alone —
/// in an archive, after a restore — and a copy cut short at a frame boundary cannot pass
/// for a whole one.
///
///     0          8         10        12         16          24         32        40           48          56        60       64
///     +----------+---------+---------+----------+-----------+----------+---------+------------+-----------+---------+--------+
///     | "CLKDSEAL"| version | size=64 | reserved | first_lsn | last_lsn | records | footer_off | sealed_at | segcrc  | crc32c |
///     +----------+---------+---------+----------+-----------+----------+---------+------------+-----------+---------+--------+
///
/// `segcrc` is the CRC-32C of bytes `0..<footer_off` of the segment (header and frames);
/// `crc32c` covers the footer's bytes `0..<60`. Read as a record frame, the magic's first
/// four bytes are a length of 0x444B4C43, over the 1 MiB limit: no reader takes a footer
/// for a record.
public struct SegmentFooter: Equatable, Sendable {
    public static let size = 64
    public static let magic: [UInt8] = Array("CLKDSEAL".utf8)
    public static let currentVersion: UInt16 = 1

    public var firstLSN: UInt64
    public var lastLSN: UInt64
    public var records: UInt64
    /// The footer's offset in the segment: the bytes of the header and the frames.
    public var offset: Int64
    /// When the writer sealed the segment, in milliseconds since the Unix epoch.
    public var sealedAt: UInt64
    /// CRC-32C of the segment's bytes before the footer.
    public var segmentChecksum: UInt32

    public init(firstLSN: UInt64, lastLSN: UInt64, records: UInt64, offset: Int64, sealedAt: UInt64, segmentChecksum: UInt32) {
        self.firstLSN = firstLSN
        self.lastLSN = lastLSN
        self.records = records
        self.offset = offset
        self.sealedAt = sealedAt
        self.segmentChecksum = segmentChecksum
    }

    public func encoded() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        bytes.withUnsafeMutableBytes { raw in
            for (i, byte) in Self.magic.enumerated() { raw[i] = byte }
            raw.storeBytes(of: Self.currentVersion.littleEndian, toByteOffset: 8, as: UInt16.self)
            raw.storeBytes(of: UInt16(Self.size).littleEndian, toByteOffset: 10, as: UInt16.self)
            raw.storeBytes(of: firstLSN.littleEndian, toByteOffset: 16, as: UInt64.self)
            raw.storeBytes(of: lastLSN.littleEndian, toByteOffset: 24, as: UInt64.self)
            raw.storeBytes(of: records.littleEndian, toByteOffset: 32, as: UInt64.self)
            raw.storeBytes(of: UInt64(offset).littleEndian, toByteOffset: 40, as: UInt64.self)
            raw.storeBytes(of: sealedAt.littleEndian, toByteOffset: 48, as: UInt64.self)
            raw.storeBytes(of: segmentChecksum.littleEndian, toByteOffset: 56, as: UInt32.self)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<60]))
            raw.storeBytes(of: crc.littleEndian, toByteOffset: 60, as: UInt32.self)
        }
        return bytes
    }

    /// Whether `bytes` (where a frame or a footer may start) begin with the footer's magic,
    /// so far as they go: at least one byte, and every byte there agreeing.
    public static func startsWithMagic(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let n = min(bytes.count, magic.count)
        return n > 0 && bytes[0..<n].elementsEqual(magic[0..<n])
    }

    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case tooShort
        case badMagic
        case badChecksum
        case unsupportedVersion(UInt16)
        /// A field that contradicts another (count against LSN range, offset out of range).
        case inconsistent(String)

        public var description: String {
            switch self {
            case .tooShort: "the seal footer is incomplete"
            case .badMagic: "no seal footer magic"
            case .badChecksum: "the seal footer's checksum does not match"
            case .unsupportedVersion(let v): "seal footer version \(v) is not known to this clickd"
            case .inconsistent(let why): "the seal footer is inconsistent (\(why))"
            }
        }
    }

    /// Decodes the footer at the start of `raw`. Every field is bounded before it is used:
    /// the LSN range against the record count, the offset against the smallest segment.
    public static func decode(_ raw: UnsafeRawBufferPointer) -> Result<SegmentFooter, DecodeError> {
        guard raw.count >= size else { return .failure(.tooShort) }
        guard raw[0..<8].elementsEqual(magic) else { return .failure(.badMagic) }
        let stored = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 60, as: UInt32.self))
        guard stored == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<60])) else { return .failure(.badChecksum) }
        let version = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt16.self))
        guard version == currentVersion else { return .failure(.unsupportedVersion(version)) }
        let declared = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 10, as: UInt16.self))
        guard declared == UInt16(size) else { return .failure(.inconsistent("size \(declared), expected \(size)")) }
        let first = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        let last = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        let records = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 32, as: UInt64.self))
        let offset = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 40, as: UInt64.self))
        guard first >= 1, last >= first else { return .failure(.inconsistent("LSNs \(first)–\(last)")) }
        guard records == last - first + 1 else {
            return .failure(.inconsistent("\(records) records for LSNs \(first)–\(last)"))
        }
        let smallest = UInt64(SegmentHeader.size) + records * UInt64(RecordFrame.headerSize + 1)
        guard records <= UInt64(Int64.max) / UInt64(RecordFrame.headerSize + 1), offset >= smallest, offset <= UInt64(Int64.max) else {
            return .failure(.inconsistent("offset \(offset) cannot hold \(records) records"))
        }
        return .success(
            SegmentFooter(
                firstLSN: first, lastLSN: last, records: records, offset: Int64(offset),
                sealedAt: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 48, as: UInt64.self)),
                segmentChecksum: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 56, as: UInt32.self))))
    }
}
