import EventLog
import LinkTracking

#if canImport(Glibc)
    import Glibc
#endif

/// The edge's erasure pass over its log (docs/design/erasure.md, section 3): reads the
/// erasures files the ingest daemons wrote (`<log>/erasures/`), and rewrites every sealed
/// segment — on this disk, and its copy in an `--archive-dir` archive — that holds a record
/// of an erased person, each such record replaced by the redaction record at its LSN
/// (`SegmentRewrite`). Run by the archiver before it ships, so a segment sealed with such a
/// record is archived already clean.
///
/// Progress is kept in `<log>/erasure_status` (`ErasureStatus`): the segments checked
/// against the current lists, so a pass reads only what was sealed since (or everything
/// again when a list changed: one sequential read of the log). Once every segment is clean
/// it writes `done` for each list, which the daemon turns into `log_clean_at`.
///
/// A command archive (`--archive-command`) cannot be rewritten by clickd: a segment archived
/// there before its rewrite is recorded `stale`, and the pass reports itself blocked, with
/// the segments named, until the operator replaces those archived copies (docs/deploy.md).
struct LogEraser {
    let logDirectory: String
    let logID: LogID
    let destination: ArchiverConfiguration.Destination
    let wallClock: @Sendable () -> Int64

    struct Outcome: Sendable, Equatable {
        /// Segment files (local and archived) read by this pass.
        var checked = 0
        /// Segment files rewritten.
        var rewritten = 0
        /// Records replaced by redaction records.
        var replaced = 0
        var bytesRead: Int64 = 0
        /// People listed in the erasures files.
        var people = 0
        var status = ErasureStatus()
        /// The oldest request not yet done in this log (ms since the epoch), if any.
        var oldestPending: UInt64?
        /// The lists this pass checked against (what `finish` may say is done).
        var files: [ErasuresFile] = []
        /// The first LSN on this disk (1: nothing was removed by retention).
        var firstLocalLSN: UInt64 = 1
        /// The status as it is on the disk (written again only when it changed: passes run
        /// every few seconds).
        var onDisk = ErasureStatus()
    }

    /// Where segments fetched from a command archive are rewritten (emptied at every pass).
    var scratch: String { FileSystem.join(logDirectory, "erasing") }

    /// One pass. `states`: the archive status of each segment.
    func pass(states: [String: ArchiveStatus.State]) throws -> Outcome {
        var outcome = Outcome()
        try SegmentRewrite.removeStale(in: logDirectory)
        if FileSystem.isDirectory(scratch) {
            for name in try FileSystem.list(scratch) { unlink(FileSystem.join(scratch, name)) }
        }
        let files = try ErasuresFile.readAll(logDirectory: logDirectory)
        let lists = files.map { "\($0.database)=\($0.revision)" }.sorted()
        var status = ErasureStatus.read(logDirectory: logDirectory)
        outcome.onDisk = status
        if status.lists != lists {
            status.lists = lists
            status.clean = []
            status.archiveCleanBelow = 1
            status.done = status.done.filter { done in files.contains { $0.database == done.key && $0.revision == done.value.revision } }
        }
        var matcher = ErasureMatcher(files.map { ErasureList(key: $0.key, macs: Set($0.macs.map(\.mac))) })
        outcome.people = files.reduce(0) { $0 + $1.macs.count }
        outcome.files = files
        guard !matcher.isEmpty else {
            outcome.status = status
            return outcome
        }

        let local = try SegmentName.list(in: logDirectory)
        let sealedLocal = Set(local.dropLast().map(\.name))
        var archived: Set<String> = []
        var archiveDirectory: String?
        if case .directory(let archive) = destination {
            let directory = archive.directory(of: logID)
            if FileSystem.isDirectory(directory) {
                try SegmentRewrite.removeStale(in: directory)
                archived = Set(try SegmentName.list(in: directory).map(\.name))
                archiveDirectory = directory
            }
        }
        for name in sealedLocal.union(archived).sorted() where !status.clean.contains(name) {
            if sealedLocal.contains(name) {
                let path = FileSystem.join(logDirectory, name)
                let archivedByCommand: Bool
                if case .command = destination { archivedByCommand = states[name] == .done } else { archivedByCommand = false }
                let result = try SegmentRewrite.rewrite(
                    path: path, fileName: name, logID: logID, replacement: EventCodec.redaction,
                    beforeRename: {
                        // The command archive's copy keeps the old bytes: say so durably first.
                        guard archivedByCommand else { return }
                        status.stale.insert(name)
                        try status.write(logDirectory: logDirectory)
                        outcome.onDisk = status
                    }, replace: { _, payload in matcher.holds(record: payload) })
                count(result, into: &outcome)
            }
            if archived.contains(name), let archiveDirectory {
                let result = try SegmentRewrite.rewrite(
                    path: FileSystem.join(archiveDirectory, name), fileName: name, logID: logID, replacement: EventCodec.redaction,
                    replace: { _, payload in matcher.holds(record: payload) })
                count(result, into: &outcome)
            }
            status.clean.insert(name)
        }
        // Segments checked while still on this disk need no fetch once retention removes
        // them: the command archive's part moves past them (stale ones are handled apart).
        if case .command = destination {
            for (index, segment) in local.enumerated().dropLast()
            where segment.firstLSN == status.archiveCleanBelow && status.clean.contains(segment.name) {
                status.archiveCleanBelow = local[index + 1].firstLSN
            }
        }
        outcome.firstLocalLSN = local.first?.firstLSN ?? 1
        outcome.status = status
        try finish(&outcome)
        return outcome
    }

    /// Says what is left (`blocked`), and for each list whether every segment is clean
    /// (`done`, with the time every record before which lies in a clean segment), and writes
    /// the status. Run after a pass, and again after the archiver replaced a command
    /// archive's copies.
    func finish(_ outcome: inout Outcome) throws {
        var status = outcome.status
        var blocked: [String] = []
        if case .command = destination, outcome.firstLocalLSN > status.archiveCleanBelow {
            blocked.append(
                "segments from LSN \(status.archiveCleanBelow) to \(outcome.firstLocalLSN - 1) were removed from this disk and are only in the command archive: give the edge --restore-command and --archive-replace-command to rewrite them there"
            )
        }
        if !status.stale.isEmpty {
            blocked.append(
                "\(status.stale.count) segments archived by --archive-command before they were rewritten still hold erased people in the archive (\(status.stale.sorted().prefix(3).joined(separator: ", "))\(status.stale.count > 3 ? ", …" : "")): give the edge --archive-replace-command, or replace each archived copy with the rewritten file of the same name and remove its stale line from \(ErasureStatus.fileName)"
            )
        }
        status.blocked = blocked.isEmpty ? nil : blocked.joined(separator: "; ")
        if status.blocked == nil {
            // Every record before the newest seal lies in a checked segment; when nothing was
            // written since it (the open segment is empty), every record there is.
            let now = UInt64(max(0, wallClock()))
            let local = try SegmentName.list(in: logDirectory)
            let newestSeal = try local.dropLast().last.flatMap { try Self.seal(of: FileSystem.join(logDirectory, $0.name)) }
            var covered = newestSeal?.sealedAt ?? 0
            let watermark = try LogReader.durableWatermark(directory: logDirectory)
            if watermark == 0 || watermark == newestSeal?.lastLSN { covered = now }
            for file in outcome.files where !file.macs.isEmpty {
                status.done[file.database] = ErasureStatus.Done(revision: file.revision, coveredUntil: covered)
            }
        }
        outcome.oldestPending = nil
        for file in outcome.files {
            let done = status.done[file.database].flatMap { $0.revision == file.revision ? $0.coveredUntil : nil } ?? 0
            for entry in file.macs where entry.requestedAt > done {
                outcome.oldestPending = min(outcome.oldestPending ?? entry.requestedAt, entry.requestedAt)
            }
        }
        if status != outcome.onDisk {
            try status.write(logDirectory: logDirectory)
            outcome.onDisk = status
        }
        outcome.status = status
    }

    /// A matcher of the pass's lists (for segments fetched from a command archive).
    func matcher(_ outcome: Outcome) -> ErasureMatcher {
        ErasureMatcher(outcome.files.map { ErasureList(key: $0.key, macs: Set($0.macs.map(\.mac))) })
    }

    private func count(_ result: SegmentRewrite.Outcome, into outcome: inout Outcome) {
        outcome.checked += 1
        outcome.bytesRead += result.bytesRead
        outcome.replaced += result.replaced
        if result.replaced > 0 { outcome.rewritten += 1 }
    }

    /// The last LSN and `sealed_at` of the sealed segment at `path`, from its footer (nil for
    /// a format-1 segment, which has none).
    static func seal(of path: String) throws -> (lastLSN: UInt64, sealedAt: UInt64)? {
        let file = try LogFile(path: path, flags: O_RDONLY)
        defer { file.close() }
        let size = try file.size()
        guard size >= Int64(SegmentHeader.size + SegmentFooter.size) else { return nil }
        let bytes = try file.read(count: SegmentFooter.size, at: size - Int64(SegmentFooter.size))
        guard case .success(let footer) = bytes.withUnsafeBytes({ SegmentFooter.decode($0) }) else { return nil }
        return (footer.lastLSN, footer.sealedAt)
    }
}
