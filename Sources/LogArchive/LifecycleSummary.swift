import EventLog

#if canImport(Glibc)
    import Glibc
#endif

/// A log directory's lifecycle as `clickd status` shows it, read from its files alone (no
/// edge needed): what waits for the archive and since when, what the disk holds, the
/// followers' holds, and what retention waits for (docs/design/archive.md, "Operator surface").
public struct LifecycleSummary: Sendable, Equatable {
    /// Whether the edge archives this log (it has `archive_status/`).
    public var archiving: Bool
    public var waiting: Int
    /// Seconds since the oldest unarchived sealed segment was sealed.
    public var oldestUnarchivedSeconds: Int64
    public var localSegments: Int
    public var localBytes: Int64
    public var firstLocalLSN: UInt64
    /// `database:needed_from`, or `name:unreadable`.
    public var followers: [String]
    /// What keeps the oldest sealed segment, `--keep-local` aside (the edge's setting is not
    /// in the directory); nil when nothing is sealed.
    public var retentionWaitsFor: String?

    public static func read(logDirectory: String, now: Int64) throws -> LifecycleSummary {
        let logID = try LogMetadata.read(directory: logDirectory).logID
        let status = ArchiveStatus(logDirectory: logDirectory)
        let archiving = FileSystem.isDirectory(status.directory)
        let facts = try Retention.facts(logDirectory: logDirectory, logID: logID, states: try status.states(), now: now)
        let segments = try SegmentName.list(in: logDirectory)
        var bytes: Int64 = 0
        for segment in segments {
            var st = stat()
            if stat(FileSystem.join(logDirectory, segment.name), &st) == 0 { bytes += Int64(st.st_size) }
        }
        let unarchived = archiving ? facts.sealed.filter { !$0.archived } : []
        return LifecycleSummary(
            archiving: archiving, waiting: unarchived.count,
            oldestUnarchivedSeconds: unarchived.first.map { max(0, now - $0.sealedAt) / 1000 } ?? 0,
            localSegments: segments.count, localBytes: bytes, firstLocalLSN: segments.first?.firstLSN ?? 1,
            followers: facts.followers.map { entry in entry.file.map { "\($0.database):\($0.neededFrom)" } ?? "\(entry.name):unreadable" },
            retentionWaitsFor: Retention.plan(facts, keepLocal: .zero, archiving: archiving).waitsFor)
    }
}
