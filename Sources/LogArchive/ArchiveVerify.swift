import EventLog

/// `clickd log verify --archive DIR`: checks an archive directory as WAL-G's `wal-verify`
/// checks WAL — for each log, its `LOG` is there and names it, every segment is present
/// and contiguous from LSN 1, and each checks alone (header, frames, seal footer and
/// checksum). Every missing or damaged segment is reported by name; the check goes on
/// past the first problem.
public enum ArchiveVerify {
    public struct Report: Sendable, Equatable {
        public var logID: LogID
        public var segments = 0
        public var records = 0
        public var lastLSN: UInt64 = 0
        public var bytes: Int64 = 0
        /// One line per problem, naming the file.
        public var problems: [String] = []
    }

    /// Verifies the logs `logIDs` (every log the archive holds when nil).
    public static func verify(_ archive: DirectoryArchive, logIDs: [LogID]?) throws -> [Report] {
        let ids = try logIDs ?? archive.logIDs()
        return try ids.map { try verify(archive, logID: $0) }
    }

    static func verify(_ archive: DirectoryArchive, logID: LogID) throws -> Report {
        var report = Report(logID: logID)
        let directory = archive.directory(of: logID)
        guard FileSystem.isDirectory(directory) else {
            report.problems.append("\(directory): missing — the archive holds no log \(logID)")
            return report
        }
        do {
            let metadata = try LogMetadata.read(directory: directory)
            if metadata.logID != logID {
                report.problems.append("\(directory)/LOG: names log \(metadata.logID), not \(logID)")
            }
        } catch {
            report.problems.append("\(directory)/LOG: \(error)")
        }
        // The LSN the next segment must start at (nil after a damaged one: its end is unknown).
        var expected: UInt64? = 1
        for (name, firstLSN) in try SegmentName.list(in: directory) {
            if let expected, firstLSN > expected {
                let missing = SegmentName.fileName(firstLSN: expected)
                report.problems.append("\(directory)/\(missing): missing (LSN \(expected)–\(firstLSN - 1) are not in the archive)")
            } else if let expected, firstLSN < expected {
                report.problems.append("\(directory)/\(name): overlaps the segment before it (which ends at LSN \(expected - 1))")
            }
            do {
                let segment = try SealedSegment.check(path: FileSystem.join(directory, name), fileName: name, logID: logID)
                report.segments += 1
                report.records += segment.records
                report.bytes += segment.bytes
                report.lastLSN = segment.lastLSN
                expected = segment.lastLSN + 1
            } catch {
                report.problems.append("\(directory)/\(name): damaged — \(error)")
                expected = nil
            }
        }
        return report
    }
}
