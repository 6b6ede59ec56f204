import EventLog

#if canImport(Glibc)
    import Glibc
#endif

/// `clickd log restore`: brings a log back from its archive into a new directory, as
/// PostgreSQL's `restore_command` brings WAL back (docs/design/archive.md, "Restore").
///
/// `LOG` first, then segments in LSN order — each next name is the last one's final LSN
/// + 1, so a command archive, which cannot be listed, is walked the same way as a
/// directory — until the archive has no next segment. Each file is fetched to
/// `<name>.restoring`, checked alone (`SealedSegment.check`: header, every frame, seal
/// footer and checksum), then renamed into place; a damaged one stops the restore with
/// its name. The durable watermark is written and `RESTORED` marks the directory last,
/// so a restore that did not finish leaves no marker (and is run again into a new
/// directory).
public enum LogRestore {
    public struct Outcome: Sendable, Equatable {
        public var logID: LogID
        public var segments = 0
        public var records = 0
        /// The last LSN restored (0: the archive held no segment).
        public var lastLSN: UInt64 = 0
        public var bytes: Int64 = 0
        /// Why the walk stopped: the fetch of the next segment that found nothing.
        public var end = ""
    }

    static let partialSuffix = ".restoring"

    public static func restore(from source: ArchiveSource, logID given: LogID?, into directory: String, sourceText: String) async throws -> Outcome {
        let logID = try given ?? source.onlyLogID()
        try prepare(directory)
        switch try await fetch(LogMetadata.fileName, from: source, logID: logID, into: directory) {
        case .fetched: break
        case .unavailable(let reason):
            throw ArchiveError("the archive has no LOG for log \(logID), so nothing was restored: \(reason)")
        }
        let metadata = try await BlockingThread.run(name: "clickd-restore") { try LogMetadata.read(directory: directory) }
        guard metadata.logID == logID else {
            throw ArchiveError("the archive's LOG for log \(logID) names log \(metadata.logID): the archive is mixed up; nothing was restored")
        }
        var outcome = Outcome(logID: logID)
        var next: UInt64 = 1
        while true {
            let name = SegmentName.fileName(firstLSN: next)
            if case .unavailable(let reason) = try await fetch(name, from: source, logID: logID, into: directory, check: true) {
                outcome.end = reason
                break
            }
            let segment = try await BlockingThread.run(name: "clickd-restore") {
                try SealedSegment.check(path: FileSystem.join(directory, name), fileName: name, logID: logID)
            }
            outcome.segments += 1
            outcome.records += segment.records
            outcome.bytes += segment.bytes
            outcome.lastLSN = segment.lastLSN
            next = segment.lastLSN + 1
        }
        // A listable archive that holds segments past the walk's end has a hole: what lies
        // beyond it cannot be read in sequence.
        if let listed = try source.segmentNames(logID: logID), let beyond = listed.first(where: { $0.firstLSN > next }) {
            throw ArchiveError(
                "the archive lacks \(SegmentName.fileName(firstLSN: next)) (LSN \(next) on) but holds \(beyond.name) after it: restored LSN 1–\(outcome.lastLSN) into \(directory) without marking it restored; find the missing segment, or run 'clickd log verify --archive'"
            )
        }
        let lastLSN = outcome.lastLSN
        let marker = """
            clickd-restored
            log_id \(logID)
            from \(sourceText)
            segments \(outcome.segments)
            last_lsn \(lastLSN)

            """
        try await BlockingThread.run(name: "clickd-restore") {
            try DurableWatermark.write(lastLSN, directory: directory)
            try FileSystem.createDurably(directory: directory, name: RestoredLog.markerName, contents: Array(marker.utf8))
        }
        return outcome
    }

    /// The target must be new or empty: a restore never mixes with another log's files.
    static func prepare(_ directory: String) throws {
        if FileSystem.exists(directory) {
            guard FileSystem.isDirectory(directory) else { throw ArchiveError("\(directory) is not a directory") }
            let names = try FileSystem.list(directory)
            guard names.isEmpty else {
                throw ArchiveError("\(directory) is not empty: restore into a new or empty directory (\(names.count) files there now)")
            }
            return
        }
        if mkdir(directory, 0o750) != 0 {
            throw ArchiveError("cannot create \(directory): \(String(cString: strerror(errno))) (its parent must exist)")
        }
        try FileSystem.syncDirectory(FileSystem.parent(of: directory))
    }

    /// Fetches one file to `<name>.restoring`, checks a segment alone, renames it into
    /// place and syncs the directory.
    private static func fetch(
        _ name: String, from source: ArchiveSource, logID: LogID, into directory: String, check: Bool = false
    ) async throws -> ArchiveSource.Fetched {
        let final = FileSystem.join(directory, name)
        let partial = final + partialSuffix
        let fetched = try await source.fetch(fileName: name, logID: logID, to: partial)
        guard fetched == .fetched else { return fetched }
        try await BlockingThread.run(name: "clickd-restore") {
            do {
                if check { _ = try SealedSegment.check(path: partial, fileName: name, logID: logID) }
                // The command's copy may not be synced; what a restore leaves must be.
                try LogFile(path: partial, flags: O_RDONLY).sync()
                if rename(partial, final) != 0 { throw LogError.system("rename to", path: final) }
                try FileSystem.syncDirectory(directory)
            } catch {
                unlink(partial)
                throw ArchiveError("the archived \(name) of log \(logID) is damaged, so the restore stopped before it: \(error)")
            }
        }
        return .fetched
    }
}
