import EventLog

#if canImport(Glibc)
    import Glibc
#endif

/// The archive status files of one log directory, PostgreSQL's `archive_status`
/// (docs/design/archive.md, docs/log-format.md):
///
///     <log>/archive_status/LOG.done
///     <log>/archive_status/0000000000000001.seg.done
///     <log>/archive_status/000000000003f2a1.seg.ready
///
/// `.ready` is created when the archiver first sees a sealed segment; it becomes `.done`
/// by a rename once the archive holds a durable copy. Every change is made durable
/// (the directory fsynced) before it is acted on, so a crash leaves a state that is
/// either still to do (and done again, harmlessly) or done.
public struct ArchiveStatus: Sendable {
    public static let directoryName = "archive_status"

    public enum State: Sendable, Equatable {
        /// No status file: not yet seen by the archiver.
        case none
        case ready
        case done
    }

    public let logDirectory: String
    public let directory: String

    public init(logDirectory: String) {
        self.logDirectory = logDirectory
        directory = FileSystem.join(logDirectory, Self.directoryName)
    }

    /// Creates the status directory if it is missing (durably) and removes what a crash
    /// left half made (`*.tmp`).
    public func prepare() throws {
        if !FileSystem.isDirectory(directory) {
            if mkdir(directory, 0o750) != 0 && errno != EEXIST { throw LogError.system("mkdir", path: directory) }
            try FileSystem.syncDirectory(logDirectory)
        }
        for name in try FileSystem.list(directory) where name.hasSuffix(".tmp") {
            unlink(FileSystem.join(directory, name))
        }
    }

    /// The state of every file the status directory names, by file name (`LOG`,
    /// `0000000000000001.seg`). Other names are ignored.
    public func states() throws -> [String: State] {
        guard FileSystem.isDirectory(directory) else { return [:] }
        var states: [String: State] = [:]
        for name in try FileSystem.list(directory) {
            if name.hasSuffix(".done") {
                states[String(name.dropLast(5))] = .done
            } else if name.hasSuffix(".ready"), states[String(name.dropLast(6))] != .done {
                // Both exist only if a crash came between a `.done`'s creation and the
                // `.ready`'s removal, which `markDone`'s rename rules out; `.done` wins.
                states[String(name.dropLast(6))] = .ready
            }
        }
        return states
    }

    public func state(of name: String) -> State {
        if FileSystem.exists(FileSystem.join(directory, name + ".done")) { return .done }
        if FileSystem.exists(FileSystem.join(directory, name + ".ready")) { return .ready }
        return .none
    }

    /// `name` is sealed and waits for the archive.
    public func markReady(_ name: String) throws {
        try FileSystem.createDurably(directory: directory, name: name + ".ready", contents: [])
    }

    /// The archive holds a durable copy of `name`: `.ready` renamed to `.done` (created
    /// when there was no `.ready`), the directory synced.
    public func markDone(_ name: String) throws {
        let ready = FileSystem.join(directory, name + ".ready")
        let done = FileSystem.join(directory, name + ".done")
        if FileSystem.exists(ready) {
            if rename(ready, done) != 0 { throw LogError.system("rename to", path: done) }
            try FileSystem.syncDirectory(directory)
        } else if !FileSystem.exists(done) {
            try FileSystem.createDurably(directory: directory, name: name + ".done", contents: [])
        }
    }

    /// Removes `name`'s status files (after retention removed the segment itself).
    public func forget(_ name: String) throws {
        var removed = false
        for suffix in [".done", ".ready"] where unlink(FileSystem.join(directory, name + suffix)) == 0 {
            removed = true
        }
        if removed { try FileSystem.syncDirectory(directory) }
    }
}
