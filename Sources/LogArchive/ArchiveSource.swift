import EventLog

#if canImport(Glibc)
    import Glibc
#endif

/// Where archived files are read back from: an archive directory (`--from DIR`,
/// `--archive-dir DIR`) or an operator's command (`--restore-command`, PostgreSQL's
/// `restore_command` contract: `%f` the file wanted, `%p` where to put it, `%l` the log id;
/// exit 0 only once the whole file is there). What `clickd log restore` and
/// `clickd rebuild` fetch through (docs/design/archive.md, "Restore").
public enum ArchiveSource: Sendable {
    case directory(DirectoryArchive)
    case command(CommandTemplate, timeout: Duration)

    /// The placeholders a restore command may use.
    public static let commandPlaceholders: Set<Character> = ["p", "f", "l"]

    public enum Fetched: Sendable, Equatable {
        case fetched
        /// The archive has no such file (a directory), or the command exited non-zero:
        /// PostgreSQL's contract cannot tell the two apart, so the reason is kept for the
        /// line that reports where the archive ended.
        case unavailable(String)
    }

    /// Puts archived `fileName` of log `logID` at `path` (durably for a directory; a
    /// command's own contract otherwise). A file left at `path` by a failed command is
    /// removed.
    public func fetch(fileName: String, logID: LogID, to path: String) async throws -> Fetched {
        switch self {
        case .directory(let archive):
            let outcome = try await BlockingThread.run(name: "clickd-restore") {
                try archive.fetch(fileName: fileName, logID: logID, to: path)
            }
            return outcome == .fetched ? .fetched : .unavailable("\(archive.directory(of: logID))/\(fileName) does not exist")
        case .command(let template, let timeout):
            let command = template.expand(["p": path, "f": fileName, "l": logID.description])
            let outcome = try await ShellCommand.run(command, timeout: timeout)
            if outcome.succeeded, FileSystem.exists(path) { return .fetched }
            unlink(path)
            let reason =
                outcome.succeeded
                ? "the restore command exited 0 but wrote no \(path): \(command)"
                : "the restore command \(outcome.statusText): \(command)" + (outcome.output.isEmpty ? "" : " — it printed: \(outcome.output)")
            return .unavailable(reason)
        }
    }

    /// The segments the archive holds for `logID`, in LSN order, when it can list them (a
    /// directory); nil for a command, which can only be asked for one file by name.
    public func segmentNames(logID: LogID) throws -> [(name: String, firstLSN: UInt64)]? {
        guard case .directory(let archive) = self else { return nil }
        let directory = archive.directory(of: logID)
        guard FileSystem.isDirectory(directory) else { return [] }
        return try SegmentName.list(in: directory)
    }

    /// The one log id an archive directory holds, for a restore or verify given none;
    /// an error naming the choices when it holds several, or none.
    public func onlyLogID() throws -> LogID {
        guard case .directory(let archive) = self else {
            throw ArchiveError("--log-id is needed with --restore-command (a command cannot list the archive)")
        }
        let ids = try archive.logIDs()
        guard ids.count == 1 else {
            throw ArchiveError(
                ids.isEmpty
                    ? "\(archive.root) holds no archived log (no directory named by a log id)"
                    : "\(archive.root) holds \(ids.count) logs; choose one with --log-id: \(ids.map(\.description).joined(separator: ", "))")
        }
        return ids[0]
    }
}
