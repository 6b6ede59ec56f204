#if canImport(Glibc)
    import Glibc
#endif

/// What a full read of a log directory found: used by the writer's recovery, by
/// `clickd log verify` and by `clickd log stats`.
public struct LogScan: Sendable {
    public struct Segment: Sendable {
        public var fileName: String
        public var path: String
        public var firstLSN: UInt64
        /// LSN of the last valid record, or `firstLSN - 1` when the segment holds none.
        public var lastLSN: UInt64
        public var records: Int
        /// Offset just past the last valid record; zeros (preallocated space) may follow.
        public var validEnd: Int64
        public var fileSize: Int64
        /// The segment format (`SegmentHeader.version`; 0 when the header itself is torn).
        public var version: UInt16 = SegmentHeader.currentVersion
        /// The seal footer, in a sealed segment of format 2.
        public var footer: SegmentFooter?
        /// CRC-32C of the segment's bytes `0..<validEnd` (what a seal footer's `segcrc` covers).
        public var checksum: UInt32 = 0
    }

    /// Bytes at the end of the last segment that do not form valid records: what a crash
    /// mid-write leaves. Recovery cuts them off and keeps them in a `.broken` file.
    public struct TornTail: Sendable {
        public var path: String
        public var offset: Int64
        public var length: Int64
        public var reason: String
        /// True when records the writer had acknowledged as durable are among the cut bytes:
        /// then this is not an ordinary torn write but lost data.
        public var losesAcknowledged: Bool
    }

    public var directory: String
    public var metadata: LogMetadata
    public var segments: [Segment]
    public var tornTail: TornTail?
    /// The watermark as the writer last published it.
    public var publishedDurable: UInt64

    public var firstLSN: UInt64? { segments.first.map(\.firstLSN) }
    /// The LSN of the last valid record (0 for an empty log).
    public var lastLSN: UInt64 { segments.last.map(\.lastLSN) ?? 0 }
    public var records: Int { segments.reduce(0) { $0 + $1.records } }
    /// Bytes of headers and records (what the log holds).
    public var bytes: Int64 { segments.reduce(0) { $0 + $1.validEnd } }
    /// Bytes the segment files take, preallocated space included.
    public var allocatedBytes: Int64 { segments.reduce(0) { $0 + $1.fileSize } }
}

public enum LogScanner {
    /// Reads every segment of the log in `directory` and checks every record.
    /// Throws `.corrupt` (naming the file and byte offset) for anything but a torn tail in
    /// the last segment, which is reported in the result.
    /// `visit` sees each valid record in order (lsn, payload, segment path, offset).
    public static func scan(
        directory: String,
        visit: ((UInt64, UnsafeRawBufferPointer, String, Int64) throws -> Void)? = nil
    ) throws -> LogScan {
        let metadata = try LogMetadata.read(directory: directory)
        let published = try DurableWatermark.read(directory: directory)
        let names = try segmentNames(directory: directory)
        var segments: [LogScan.Segment] = []
        var tornTail: LogScan.TornTail?
        var expected: UInt64? = nil
        for (index, entry) in names.enumerated() {
            let isLast = index == names.count - 1
            let path = FileSystem.join(directory, entry.name)
            let file = try LogFile(path: path, flags: O_RDONLY)
            let size = try file.size()
            if isLast && size < Int64(SegmentHeader.size) {
                // A segment whose header never fully reached the disk holds no records.
                let damagedEnd = try endOfNonZeroBytes(file: file, from: 0, size: size)
                tornTail = LogScan.TornTail(
                    path: path, offset: 0, length: damagedEnd, reason: "incomplete segment header",
                    losesAcknowledged: (expected ?? entry.firstLSN) <= published)
                segments.append(
                    LogScan.Segment(
                        fileName: entry.name, path: path, firstLSN: entry.firstLSN,
                        lastLSN: entry.firstLSN - 1, records: 0, validEnd: 0, fileSize: size))
                if let expected, entry.firstLSN != expected {
                    throw LogError(
                        .corrupt,
                        "segment \(path) starts at LSN \(entry.firstLSN) but the previous segment ends at LSN \(expected - 1): records are missing",
                        path: path, offset: 0)
                }
                break
            }
            let header = try readHeader(file: file, nameLSN: entry.firstLSN, logID: metadata.logID)
            if let expected, header.firstLSN != expected {
                throw LogError(
                    .corrupt,
                    "segment \(path) starts at LSN \(header.firstLSN) but the previous segment ends at LSN \(expected - 1): records are missing",
                    path: path, offset: 0)
            }
            let (segment, damage) = try walk(file, name: entry.name, header: header, size: size, sealed: !isLast) { lsn, payload, offset in
                try visit?(lsn, payload, path, offset)
            }
            if let damage {
                // Zeros to the end are preallocated space, not damage.
                let damagedEnd = try endOfNonZeroBytes(file: file, from: damage.offset, size: size)
                if damagedEnd > damage.offset {
                    tornTail = LogScan.TornTail(
                        path: path, offset: damage.offset, length: damagedEnd - damage.offset, reason: damage.reason,
                        losesAcknowledged: segment.lastLSN < published)
                }
            }
            expected = segment.lastLSN + 1
            segments.append(segment)
        }
        return LogScan(
            directory: directory, metadata: metadata, segments: segments,
            tornTail: tornTail, publishedDurable: published)
    }

    /// Reads one segment's frames after its header, checking the LSN sequence, the seal
    /// footer (against the running checksum) and, for a `sealed` segment, that it is whole:
    /// damage there, or a format-2 segment without its footer, is corruption. In the open
    /// segment the first frame that does not decode ends it: returned as `damage` (a torn
    /// tail, or preallocated zeros) for the caller to judge.
    static func walk(
        _ file: LogFile, name: String, header: SegmentHeader, size: Int64, sealed: Bool,
        visit: (UInt64, UnsafeRawBufferPointer, Int64) throws -> Void = { _, _, _ in }
    ) throws -> (LogScan.Segment, damage: (offset: Int64, reason: String)?) {
        let path = file.path
        let headerChecksum = CRC32C.checksum(header.encoded())
        var segment = LogScan.Segment(
            fileName: name, path: path, firstLSN: header.firstLSN,
            lastLSN: header.firstLSN - 1, records: 0,
            validEnd: Int64(SegmentHeader.size), fileSize: size, version: header.version, checksum: headerChecksum)
        var cursor = FrameCursor(file: file, offset: Int64(SegmentHeader.size), checksumSeed: headerChecksum)
        while true {
            switch try cursor.step() {
            case .record(let lsn, let offset, let payload):
                guard lsn == segment.lastLSN + 1 else {
                    throw LogError(
                        .corrupt, "segment \(path) byte \(offset): record has LSN \(lsn), expected \(segment.lastLSN + 1)",
                        path: path, offset: offset)
                }
                try cursor.bytes.withUnsafeBytes { raw in try visit(lsn, UnsafeRawBufferPointer(rebasing: raw[payload]), offset) }
                segment.lastLSN = lsn
                segment.records += 1
                segment.validEnd = cursor.offset
                segment.checksum = cursor.checksum ?? 0
            case .seal(let offset, let footer):
                try checkSeal(footer, at: offset, of: segment, header: header, fileSize: size)
                segment.footer = footer
                return (segment, nil)
            case .end:
                if sealed, header.sealsWithFooter {
                    throw LogError(
                        .corrupt,
                        "sealed segment \(path) ends at byte \(segment.validEnd) without its seal footer: it was cut short (restore it from the archive)",
                        path: path, offset: segment.validEnd)
                }
                return (segment, nil)
            case .incomplete(let offset, let reason), .invalid(let offset, let reason):
                guard !sealed else {
                    throw LogError(.corrupt, "sealed segment \(path) is corrupt at byte \(offset): \(reason)", path: path, offset: offset)
                }
                return (segment, (offset, reason))
            }
        }
    }

    /// Checks a seal footer against the segment it ends: its version, LSN range, count,
    /// offset and checksum, and that nothing follows it.
    static func checkSeal(_ footer: SegmentFooter, at offset: Int64, of segment: LogScan.Segment, header: SegmentHeader, fileSize: Int64) throws {
        let path = segment.path
        func corrupt(_ why: String) -> LogError {
            LogError(.corrupt, "segment \(path) has a seal footer at byte \(offset) that \(why)", path: path, offset: offset)
        }
        guard header.sealsWithFooter else { throw corrupt("a format-\(header.version) segment never has") }
        guard footer.firstLSN == segment.firstLSN, footer.lastLSN == segment.lastLSN, Int(footer.records) == segment.records else {
            throw corrupt(
                "says LSNs \(footer.firstLSN)–\(footer.lastLSN) (\(footer.records) records) but the segment holds \(segment.firstLSN)–\(segment.lastLSN) (\(segment.records))"
            )
        }
        guard footer.offset == offset else { throw corrupt("says it is at byte \(footer.offset)") }
        guard footer.segmentChecksum == segment.checksum else {
            throw corrupt(
                "does not match the segment's bytes (checksum \(RecordFrame.hex(footer.segmentChecksum)), computed \(RecordFrame.hex(segment.checksum)))"
            )
        }
        guard fileSize == offset + Int64(SegmentFooter.size) else {
            throw corrupt("is followed by \(fileSize - offset - Int64(SegmentFooter.size)) more bytes")
        }
    }

    /// The offset just past the last non-zero byte in `[from, size)` of `file`, or `from`
    /// when that range is all zeros.
    ///
    /// Every open of a log scans its last segment's preallocated tail (64 MiB by default):
    /// a chunk is compared with the zero page by `memcmp` and only a chunk that holds data
    /// is searched byte by byte. A closure per byte cost 1.4 s of CPU per open in a debug
    /// build (every `clickd status` and `ingest` of the test suite) and 20 ms in release.
    static func endOfNonZeroBytes(file: LogFile, from: Int64, size: Int64) throws -> Int64 {
        var end = from
        var offset = from
        var chunk = [UInt8](repeating: 0, count: SegmentPreparer.zeros.count)
        while offset < size {
            let start = offset
            let last: Int? = try chunk.withUnsafeMutableBytes { raw in
                let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[0..<Int(min(Int64(raw.count), size - offset))]), at: offset)
                guard n > 0 else { return nil }
                offset += Int64(n)
                let allZero = SegmentPreparer.zeros.withUnsafeBytes { zeros in memcmp(raw.baseAddress!, zeros.baseAddress!, n) == 0 }
                guard !allZero else { return -1 }
                var index = n - 1
                while raw[index] == 0 { index -= 1 }  // memcmp found a non-zero byte
                return index
            }
            guard let last else { break }
            if last >= 0 { end = start + Int64(last) + 1 }
        }
        return end
    }

    /// Segment files sorted by first LSN. A file that ends in `.seg` but is not named as a
    /// segment is (16 lowercase hex digits, LSN 1 or more) is an error that names it: it
    /// is not ignored, since it may be a segment renamed by hand, and not trusted.
    static func segmentNames(directory: String) throws -> [(name: String, firstLSN: UInt64)] {
        var names: [(name: String, firstLSN: UInt64)] = []
        for name in try FileSystem.list(directory) where name.hasSuffix(SegmentName.suffix) {
            guard let lsn = SegmentName.firstLSN(of: name) else {
                let path = FileSystem.join(directory, name)
                throw LogError(
                    .corrupt,
                    "\(path) is not a segment name (16 lowercase hex digits of a first LSN of 1 or more, then .seg): move it out of the log directory",
                    path: path)
            }
            names.append((name, lsn))
        }
        return names.sorted { $0.firstLSN < $1.firstLSN }
    }

    static func readHeader(file: LogFile, nameLSN: UInt64, logID: LogID) throws -> SegmentHeader {
        let raw = try file.read(count: SegmentHeader.size, at: 0)
        let decoded = raw.withUnsafeBytes { SegmentHeader.decode($0) }
        let header: SegmentHeader
        switch decoded {
        case .success(let h): header = h
        case .failure(.unsupportedVersion(let v)):
            throw LogError(
                .unsupportedVersion,
                "segment \(file.path) is segment format \(v); this clickd reads formats \(SegmentHeader.readableVersions.lowerBound) to \(SegmentHeader.readableVersions.upperBound) only — use a newer clickd",
                path: file.path, offset: 8)
        case .failure(let problem):
            throw LogError(.corrupt, "segment \(file.path) has an invalid header at byte 0 (\(problem))", path: file.path, offset: 0)
        }
        guard header.logID == logID else {
            throw LogError(
                .corrupt,
                "segment \(file.path) belongs to log \(header.logID), not to this log \(logID)",
                path: file.path, offset: 16)
        }
        guard header.firstLSN == nameLSN else {
            throw LogError(
                .corrupt,
                "segment \(file.path) header says first LSN \(header.firstLSN), its name says \(nameLSN)",
                path: file.path, offset: 32)
        }
        return header
    }
}
