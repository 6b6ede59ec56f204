#if canImport(Glibc)
    import Glibc
#endif

/// One sealed segment file checked alone, wherever it lies — in a log directory, in an
/// archive, just fetched by a restore: its header (log id, first LSN against its name),
/// every frame and the LSN sequence, and its seal footer with the checksum of every byte
/// before it (docs/log-format.md). What the archiver checks before it ships a segment,
/// and what a restore and `clickd log verify --archive` check after.
public struct SealedSegment: Sendable, Equatable {
    public var fileName: String
    public var firstLSN: UInt64
    public var lastLSN: UInt64
    public var records: Int
    /// The file's size in bytes (footer included).
    public var bytes: Int64
    /// The segment format; a format-1 segment has no footer and is checked frame by frame only.
    public var version: UInt16
    public var footer: SegmentFooter?

    /// Checks the segment at `path`, named `fileName`, as a sealed segment of log `logID`.
    /// Throws `.corrupt` naming the file and byte offset for anything wrong, `.io` when it
    /// cannot be read.
    public static func check(path: String, fileName: String, logID: LogID) throws -> SealedSegment {
        guard let nameLSN = SegmentName.firstLSN(of: fileName) else {
            throw LogError(.invalidArgument, "\(fileName) is not a segment name (16 lowercase hex digits and .seg)", path: path)
        }
        let file = try LogFile(path: path, flags: O_RDONLY)
        let size = try file.size()
        guard size >= Int64(SegmentHeader.size) else {
            throw LogError(.corrupt, "segment \(path) is \(size) bytes, shorter than its header", path: path, offset: 0)
        }
        let header = try LogScanner.readHeader(file: file, nameLSN: nameLSN, logID: logID)
        let (segment, _) = try LogScanner.walk(file, name: fileName, header: header, size: size, sealed: true)
        guard segment.records > 0 else {
            throw LogError(.corrupt, "sealed segment \(path) holds no records", path: path, offset: Int64(SegmentHeader.size))
        }
        return SealedSegment(
            fileName: fileName, firstLSN: segment.firstLSN, lastLSN: segment.lastLSN, records: segment.records,
            bytes: size, version: header.version, footer: segment.footer)
    }
}

extension SegmentName {
    /// The segment files in `directory`, in LSN order. A file ending in `.seg` that is not
    /// named as a segment is an error that names it.
    public static func list(in directory: String) throws -> [(name: String, firstLSN: UInt64)] {
        try LogScanner.segmentNames(directory: directory)
    }
}
